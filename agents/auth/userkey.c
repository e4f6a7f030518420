/* Anonymous chat users and their userKeys (userkey.h). Thread: any. */
#include "agents/auth/userkey.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#define USERKEY_SEP '.'

/* A domain of its own, so the server key never signs the same bytes for two purposes. */
static const char mac_domain[] = "switchboard chat user v1:";

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void userkey_new_anon(char out[USERKEY_ANON_LEN + 1])
{
    uint8_t rnd[USERKEY_ANON_BYTES];
    randombytes_buf(rnd, sizeof(rnd));
    memcpy(out, USERKEY_ANON_PREFIX, sizeof(USERKEY_ANON_PREFIX) - 1);
    sodium_bin2hex(out + sizeof(USERKEY_ANON_PREFIX) - 1, 2 * USERKEY_ANON_BYTES + 1, rnd,
                   sizeof(rnd));
}

bool userkey_is_anon(const char *user_id)
{
    size_t pl = sizeof(USERKEY_ANON_PREFIX) - 1;
    return strlen(user_id) == USERKEY_ANON_LEN && memcmp(user_id, USERKEY_ANON_PREFIX, pl) == 0 &&
           is_lower_hex(user_id + pl, USERKEY_ANON_LEN - pl);
}

static void mac_of(const uint8_t secret[USERKEY_SECRET_BYTES], const char *user_id,
                   uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, USERKEY_SECRET_BYTES);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)mac_domain, sizeof(mac_domain) - 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)user_id, strlen(user_id));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

int userkey_make(const uint8_t secret[USERKEY_SECRET_BYTES], const char *user_id,
                 char out[USERKEY_LEN + 1])
{
    if (!userkey_is_anon(user_id))
        return -EINVAL;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    mac_of(secret, user_id, mac);
    memcpy(out, user_id, USERKEY_ANON_LEN);
    out[USERKEY_ANON_LEN] = USERKEY_SEP;
    sodium_bin2hex(out + USERKEY_ANON_LEN + 1, USERKEY_MAC_HEX + 1, mac, sizeof(mac));
    return 0;
}

bool userkey_check(const uint8_t secret[USERKEY_SECRET_BYTES], const char *key,
                   char user_id[USERKEY_ANON_LEN + 1])
{
    if (key == NULL || strlen(key) != USERKEY_LEN || key[USERKEY_ANON_LEN] != USERKEY_SEP)
        return false;
    char id[USERKEY_ANON_LEN + 1];
    memcpy(id, key, USERKEY_ANON_LEN);
    id[USERKEY_ANON_LEN] = '\0';
    uint8_t given[crypto_auth_hmacsha256_BYTES], want[crypto_auth_hmacsha256_BYTES];
    const char *hex = key + USERKEY_ANON_LEN + 1;
    if (!userkey_is_anon(id) || !is_lower_hex(hex, USERKEY_MAC_HEX) ||
        sodium_hex2bin(given, sizeof(given), hex, USERKEY_MAC_HEX, NULL, NULL, NULL) != 0)
        return false;
    mac_of(secret, id, want);
    bool ok = sodium_memcmp(given, want, sizeof(want)) == 0;
    sodium_memzero(want, sizeof(want));
    if (ok)
        memcpy(user_id, id, sizeof(id));
    return ok;
}
