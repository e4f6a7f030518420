/*
 * jwtauth: HS256 JWT verification with libjwt (see jwtauth.h); the unverified peek at the
 * tenant claim decodes the payload with libsodium's base64url.
 */
#include "agents/auth/jwtauth.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* Longest token looked at; real ones are a few hundred bytes. */
#define JWTAUTH_TOKEN_MAX 8192

jwtauth_status_t jwtauth_verify(const char *token, const char *secret, int64_t now_s, char *sub,
                                size_t sub_len)
{
    jwtauth_claims_t c;
    jwtauth_status_t st = jwtauth_verify_claims(token, secret, now_s, &c);
    if (sub && sub_len)
        str_copy(sub, st == JWTAUTH_OK ? c.sub : "", sub_len);
    return st;
}

/* Copies the string claim name of claims into out, "" when absent or not a string. */
static void claim_str(const cJSON *claims, const char *name, char *out, size_t outlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    str_copy(out, cJSON_IsString(v) ? v->valuestring : "", outlen);
}

jwtauth_status_t jwtauth_verify_claims(const char *token, const char *secret, int64_t now_s,
                                       jwtauth_claims_t *out)
{
    jwtauth_claims_t scratch;
    if (out == NULL)
        out = &scratch;
    memset(out, 0, sizeof(*out));
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
    claim_str(claims, "sub", out->sub, sizeof(out->sub));
    claim_str(claims, "tenant", out->tenant, sizeof(out->tenant));
    out->has_tenant = cJSON_GetObjectItemCaseSensitive(claims, "tenant") != NULL;
done:
    cJSON_Delete(claims);
    free(payload);
    jwt_free(jwt);
    return st;
}

int jwtauth_peek_tenant(const char *token, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    const char *dot1 = token ? strchr(token, '.') : NULL;
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL || strlen(token) > JWTAUTH_TOKEN_MAX)
        return -1;
    size_t b64_len = (size_t)(dot2 - dot1 - 1), len = 0;
    unsigned char *json = xmalloc(b64_len + 1);
    int rc = -1;
    if (sodium_base642bin(json, b64_len, dot1 + 1, b64_len, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0) {
        cJSON *claims = cJSON_ParseWithLength((const char *)json, len);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(claims, "tenant");
        if (cJSON_IsObject(claims))
            rc = t == NULL ? 0 : cJSON_IsString(t) ? 1 : -1;
        if (rc == 1 && outlen)
            str_copy(out, t->valuestring, outlen);
        cJSON_Delete(claims);
    }
    free(json);
    return rc;
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
    case JWTAUTH_UNKNOWN_TENANT:
        return "the token names no tenant of this service";
    default:
        return "invalid token";
    }
}
