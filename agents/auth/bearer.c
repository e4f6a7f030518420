/* The bearer checks of the server-to-server API (auth.h). Thread: any. */
#include <sodium.h>
#include <string.h>

#include "agents/auth/auth.h"
#include "agents/tenant/tenant.h"
#include "base/config.h"

#define BEARER_PREFIX "Bearer "

bool auth_bearer_ok(const char *authorization, const char *secret)
{
    if (authorization == NULL || secret == NULL)
        return false;
    size_t pl = strlen(BEARER_PREFIX);
    if (strncmp(authorization, BEARER_PREFIX, pl) != 0)
        return false;
    const char *given = authorization + pl;
    size_t n = strlen(secret);
    return strlen(given) == n && sodium_memcmp(given, secret, n) == 0;
}

bool auth_api_ok(const net_http_msg_t *req)
{
    if (g_config->api_secret)
        return auth_bearer_ok(req->authorization, g_config->api_secret);
    return req->peer.loopback && req->loopback_host; /* a rebinding page's Host is not loopback */
}

/* The token of a `Bearer <token>` header, or NULL. */
static const char *bearer_token(const char *authorization)
{
    size_t pl = strlen(BEARER_PREFIX);
    if (authorization == NULL || strncmp(authorization, BEARER_PREFIX, pl) != 0)
        return NULL;
    return authorization + pl;
}

bool auth_api_scope(const net_http_msg_t *req, tenant_t **tenant)
{
    *tenant = NULL;
    if (g_config->api_secret && auth_bearer_ok(req->authorization, g_config->api_secret))
        return true;
    const char *given = bearer_token(req->authorization);
    if (given && (*tenant = tenants_by_api_secret(given)) != NULL)
        return true;
    return g_config->api_secret == NULL && req->peer.loopback && req->loopback_host;
}

tenant_t *auth_bearer_tenant(const net_http_msg_t *req)
{
    const char *given = bearer_token(req->authorization);
    return given ? tenants_by_api_secret(given) : NULL;
}
