/*
 * jwtauth: the HS256 JSON Web Tokens of /ws/chat and /ws/agent (SPEC 5.3, 5.4, 14 "Agent runs").
 *
 * A token is good when it is a compact JWS whose header says HS256 (and nothing else: "none" and
 * the RSA/EC algorithms are refused, so a key meant for HMAC is never used another way), whose
 * signature verifies with the secret, and whose payload is a JSON object with a numeric `exp`
 * strictly after now (no leeway). `sub`, when the payload has a string one, is handed back.
 * No secret (SWITCHBOARD_JWT_SECRET unset or empty) means every token fails.
 *
 * Pure: no globals, no I/O (libjwt only computes). Thread: any.
 */
#ifndef SB_AGENTS_JWTAUTH_H
#define SB_AGENTS_JWTAUTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum jwtauth_status {
    JWTAUTH_OK = 0,
    JWTAUTH_NO_SECRET,     /* the service has no JWT secret */
    JWTAUTH_MALFORMED,     /* not a JWT, or the signature does not verify */
    JWTAUTH_BAD_ALGORITHM, /* the header names another algorithm than HS256 */
    JWTAUTH_NO_EXPIRY,     /* the payload has no numeric exp */
    JWTAUTH_EXPIRED,       /* exp <= now */
} jwtauth_status_t;

#define JWTAUTH_SUB_MAX 255

/*
 * Verifies token with secret as of now_s (Unix seconds). On JWTAUTH_OK, sub receives the
 * payload's `sub` ("" when it has none or it is not a string; truncated to sub_len - 1 bytes,
 * so callers comparing it give a buffer longer than any id they accept). sub may be NULL.
 */
jwtauth_status_t jwtauth_verify(const char *token, const char *secret, int64_t now_s, char *sub,
                                size_t sub_len);

/* The client-facing words for a status ("invalid token", "token expired", ...). */
const char *jwtauth_reason(jwtauth_status_t st);

#endif
