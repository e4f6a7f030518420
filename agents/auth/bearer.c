/* The bearer checks of the server-to-server API (auth.h). Thread: any. */
#include <sodium.h>
#include <string.h>

#include "agents/auth/auth.h"
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
