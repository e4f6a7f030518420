/*
 * The JWTs of /ws/chat and /ws/agent with tenants (auth.h, SPEC 16): the `tenant` claim says
 * whose secret the token must verify with. Thread: any.
 */
#include <string.h>

#include "agents/auth/auth.h"
#include "base/config.h"

jwtauth_status_t auth_jwt(const char *token, int64_t now_s, jwtauth_claims_t *claims,
                          tenant_t **tenant)
{
    char named[JWTAUTH_TENANT_MAX + 1];
    *tenant = NULL;
    int peek = jwtauth_peek_tenant(token, named, sizeof(named));
    if (peek < 0)
        return JWTAUTH_MALFORMED;
    tenant_t *t = peek ? tenants_get(named) : tenants_default();
    if (t == NULL)
        return JWTAUTH_UNKNOWN_TENANT;
    const char *secret = t->cfg.access.jwt_secret ? t->cfg.access.jwt_secret : g_config->jwt_secret;
    jwtauth_status_t st = jwtauth_verify_claims(token, secret, now_s, claims);
    /* The claim that chose the secret must be the one the signature covers as libjwt read it:
     * a payload the two readers see differently (a duplicated key) is refused. */
    if (st == JWTAUTH_OK &&
        (claims->has_tenant != (peek == 1) || (peek == 1 && strcmp(claims->tenant, named) != 0)))
        st = JWTAUTH_MALFORMED;
    if (st != JWTAUTH_OK) {
        tenant_unref(t);
        return st;
    }
    *tenant = t;
    return JWTAUTH_OK;
}
