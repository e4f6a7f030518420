/*
 * userkey: anonymous chat users and the keys that let a browser tab come back as one (SPEC 14
 * "Voice sessions").
 *
 * An openly minted chat token belongs to a new user "anon_<16 hex>". The answer carries that
 * user's userKey, "<userId>.<64 hex>": the userId and HMAC-SHA256 of it under the server's user
 * key (kept in the database, so keys survive restarts). Presenting the userKey later proves the
 * user without any state on the server: the HMAC is recomputed and compared in constant time.
 * Only anonymous users have keys; a named user needs a JWT or a token minted with the API secret.
 *
 * Pure: no globals, no I/O (libsodium only computes). Thread: any.
 */
#ifndef SB_AGENTS_AUTH_USERKEY_H
#define SB_AGENTS_AUTH_USERKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USERKEY_SECRET_BYTES 32 /* the server's key (store_keys_t.user_key) */
#define USERKEY_ANON_PREFIX  "anon_"
#define USERKEY_ANON_BYTES   8 /* random bytes of an anonymous userId: 16 hex */
#define USERKEY_ANON_LEN     (sizeof(USERKEY_ANON_PREFIX) - 1 + 2 * USERKEY_ANON_BYTES)
#define USERKEY_MAC_HEX      64
#define USERKEY_LEN          (USERKEY_ANON_LEN + 1 + USERKEY_MAC_HEX) /* "<userId>.<mac>" */

/* Writes a new random anonymous userId, "anon_<16 hex>", into out. */
void userkey_new_anon(char out[USERKEY_ANON_LEN + 1]);
/* True when user_id has the shape of an anonymous userId. */
bool userkey_is_anon(const char *user_id);
/*
 * Writes the userKey of the anonymous user_id under secret into out. Returns 0, or -EINVAL
 * when user_id is not an anonymous userId.
 */
int userkey_make(const uint8_t secret[USERKEY_SECRET_BYTES], const char *user_id,
                 char out[USERKEY_LEN + 1]);
/*
 * Checks key against secret: true when it is the userKey of an anonymous user, whose userId is
 * then written into user_id. The MAC is compared in constant time; anything malformed is false.
 */
bool userkey_check(const uint8_t secret[USERKEY_SECRET_BYTES], const char *key,
                   char user_id[USERKEY_ANON_LEN + 1]);

#endif
