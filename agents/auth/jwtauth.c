/*
 * jwtauth: HS256 JWT verification with libjwt (see jwtauth.h).
 */
#include "agents/auth/jwtauth.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* Longest token looked at; real ones are a few hundred bytes. */
#define JWTAUTH_TOKEN_MAX 8192

jwtauth_status_t jwtauth_verify(const char *token, const char *secret, int64_t now_s, char *sub,
                                size_t sub_len)
{
    if (sub && sub_len)
        sub[0] = '\0';
    if (secret == NULL || secret[0] == '\0')
        return JWTAUTH_NO_SECRET;
    if (token == NULL || token[0] == '\0' || strlen(token) > JWTAUTH_TOKEN_MAX)
        return JWTAUTH_MALFORMED;
    jwt_t *jwt = NULL;
    /* With a key, libjwt verifies the signature of every algorithm but "none"; the algorithm
     * itself is checked below. */
    if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0 ||
        jwt == NULL)
        return JWTAUTH_MALFORMED;
    jwtauth_status_t st = JWTAUTH_OK;
    char *payload = NULL;
    cJSON *claims = NULL;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        st = JWTAUTH_BAD_ALGORITHM;
        goto done;
    }
    payload = jwt_get_grants_json(jwt, NULL);
    claims = payload ? cJSON_Parse(payload) : NULL;
    if (!cJSON_IsObject(claims)) {
        st = JWTAUTH_MALFORMED;
        goto done;
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    if (!cJSON_IsNumber(exp)) {
        st = JWTAUTH_NO_EXPIRY;
        goto done;
    }
    if (exp->valuedouble <= (double)now_s) {
        st = JWTAUTH_EXPIRED;
        goto done;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    if (sub && sub_len && cJSON_IsString(s))
        str_copy(sub, s->valuestring, sub_len);
done:
    cJSON_Delete(claims);
    free(payload);
    jwt_free(jwt);
    return st;
}

const char *jwtauth_reason(jwtauth_status_t st)
{
    switch (st) {
    case JWTAUTH_OK:
        return "ok";
    case JWTAUTH_NO_SECRET:
        return "JWT authentication is not configured";
    case JWTAUTH_BAD_ALGORITHM:
        return "the token must be signed with HS256";
    case JWTAUTH_NO_EXPIRY:
        return "the token has no exp claim";
    case JWTAUTH_EXPIRED:
        return "the token has expired";
    default:
        return "invalid token";
    }
}
