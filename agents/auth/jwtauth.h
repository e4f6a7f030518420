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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jwtauth_status {
    JWTAUTH_OK = 0,
    JWTAUTH_NO_SECRET,      /* the service has no JWT secret */
    JWTAUTH_MALFORMED,      /* not a JWT, or the signature does not verify */
    JWTAUTH_BAD_ALGORITHM,  /* the header names another algorithm than HS256 */
    JWTAUTH_NO_EXPIRY,      /* the payload has no numeric exp */
    JWTAUTH_EXPIRED,        /* exp <= now */
    JWTAUTH_UNKNOWN_TENANT, /* the `tenant` claim names no tenant of the service (auth_jwt()) */
} jwtauth_status_t;

#define JWTAUTH_SUB_MAX    255
#define JWTAUTH_TENANT_MAX 64 /* longer than any tenant id, so a longer claim never matches one */

/* The claims a verified token hands back ("" when absent or not a string). */
typedef struct jwtauth_claims {
    char sub[JWTAUTH_SUB_MAX + 1];
    char tenant[JWTAUTH_TENANT_MAX + 1];
    bool has_tenant; /* the payload has a `tenant` claim (of any type) */
} jwtauth_claims_t;

/*
 * Verifies token with secret as of now_s (Unix seconds). On JWTAUTH_OK, sub receives the
 * payload's `sub` ("" when it has none or it is not a string; truncated to sub_len - 1 bytes,
 * so callers comparing it give a buffer longer than any id they accept). sub may be NULL.
 */
jwtauth_status_t jwtauth_verify(const char *token, const char *secret, int64_t now_s, char *sub,
                                size_t sub_len);
/* The same, handing back the claims (out may be NULL; a claim too long is cut, see sub above). */
jwtauth_status_t jwtauth_verify_claims(const char *token, const char *secret, int64_t now_s,
                                       jwtauth_claims_t *out);

/*
 * The `tenant` claim of token's payload, read WITHOUT verifying anything: only to choose the
 * secret the token must then verify with (SPEC 16), never to trust. Returns 1 with the claim in
 * out (cut to outlen - 1 bytes), 0 when the payload has no `tenant` claim, -1 when the token is
 * not a JWT with a JSON object payload or the claim is not a string.
 */
int jwtauth_peek_tenant(const char *token, char *out, size_t outlen);

/* The client-facing words for a status ("invalid token", "token expired", ...). */
const char *jwtauth_reason(jwtauth_status_t st);

#endif
