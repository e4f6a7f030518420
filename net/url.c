/*
 * The URL parser of net/ (url.h): libcurl's curl_url, so the service accepts what curl itself
 * would fetch, and IPv6 literals, ports and query strings are split by one tested parser.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "net/url.h"

#define URL_PORT_HTTP  80
#define URL_PORT_HTTPS 443
#define URL_PORT_MAX   65535

static bool scheme_allowed(const char *scheme, const char *const *schemes)
{
    for (size_t i = 0; schemes[i]; i++)
        if (strcasecmp(scheme, schemes[i]) == 0)
            return true;
    return false;
}

/*
 * Copies curl's host into out without the brackets of an IPv6 literal; false when too long or
 * when it holds a byte a Host header or a TLS name cannot carry. curl hands the host back
 * %-decoded, so "ws://%7f/" would otherwise give a host of one DEL byte.
 */
static bool copy_host(const char *h, char *out, size_t cap)
{
    size_t n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == 0x7f || h[i] == '/')
            return false;
    memcpy(out, h, n);
    out[n] = '\0';
    return true;
}

static int parse(CURLU *u, const char *url, const char *const *schemes, url_parts_t *out)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pass = NULL, *path = NULL,
         *query = NULL;
    int rc = -EINVAL;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS) !=
            CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        !scheme_allowed(scheme, schemes) || strlen(scheme) >= sizeof(out->scheme) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        !copy_host(host, out->host, sizeof(out->host)))
        goto done;
    str_copy(out->scheme, scheme, sizeof(out->scheme)); /* curl gives it in lower case */
    out->tls = strcmp(out->scheme, "wss") == 0 || strcmp(out->scheme, "https") == 0;
    out->port = out->tls ? URL_PORT_HTTPS : URL_PORT_HTTP;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
        long v = strtol(port, NULL, 10); /* curl has checked the digits and the range */
        if (v <= 0 || v > URL_PORT_MAX)
            goto done;
        out->port = (int)v;
    }
    out->userinfo = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
                    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK;
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto done;
    bool has_query = curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK;
    size_t pl = strlen(path), ql = has_query ? strlen(query) : 0;
    out->target = xmalloc(pl + (has_query ? 1 + ql : 0) + 1);
    memcpy(out->target, path, pl);
    if (has_query) {
        out->target[pl] = '?';
        memcpy(out->target + pl + 1, query, ql);
    }
    out->target[pl + (has_query ? 1 + ql : 0)] = '\0';
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(pass);
    curl_free(path);
    curl_free(query);
    return rc;
}

int url_parse(const char *url, const char *const *schemes, url_parts_t *out)
{
    memset(out, 0, sizeof(*out));
    if (url == NULL)
        return -EINVAL;
    CURLU *u = curl_url();
    if (u == NULL)
        return -ENOMEM;
    int rc = parse(u, url, schemes, out);
    curl_url_cleanup(u);
    if (rc != 0)
        url_parts_destroy(out);
    return rc;
}

void url_parts_destroy(url_parts_t *out)
{
    free(out->target);
    memset(out, 0, sizeof(*out));
}
