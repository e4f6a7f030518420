/*
 * libFuzzer target: url_parse() (net/url.c), the one URL parser of net/, which takes the URLs
 * of outbound WebSockets and HTTP requests (the upstream, MCP servers, webhooks) from
 * configuration and from the agent config file. The input is the URL (up to its first NUL).
 * What url.h promises is checked on every success: a scheme of the list, a non-empty host
 * without brackets that fits, a port in range (the scheme's default when none), TLS exactly for
 * wss and https, and a request target that starts with '/' and has no fragment or raw space;
 * on failure the result is left empty. The host has no space, control character or '/' (it
 * goes into request headers). A URL reassembled from the parts gives the same parts (below).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/url.h"

static const char *const schemes[] = {"ws", "wss", "http", "https", NULL};

static void check(const url_parts_t *u)
{
    size_t hl = strlen(u->host);
    if (hl == 0 || hl >= URL_HOST_MAX || u->host[0] == '[' || u->host[hl - 1] == ']')
        abort();
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)u->host[i] <= ' ' || u->host[i] == 0x7f || u->host[i] == '/')
            abort(); /* it goes into the Host header and the TLS name as it is */
    if (u->port <= 0 || u->port > 65535)
        abort();
    bool tls = strcmp(u->scheme, "wss") == 0 || strcmp(u->scheme, "https") == 0;
    bool known = false;
    for (size_t i = 0; schemes[i]; i++)
        known |= strcmp(u->scheme, schemes[i]) == 0;
    if (!known || u->tls != tls)
        abort();
    if (u->target == NULL || u->target[0] != '/' || strpbrk(u->target, "# \r\n") != NULL)
        abort();
}

/* Parses the URL made of u's parts into *w; it must parse. */
static void reparse(const url_parts_t *u, url_parts_t *w)
{
    size_t cap = strlen(u->host) + strlen(u->target) + 32;
    char *again = malloc(cap);
    bool v6 = strchr(u->host, ':') != NULL;
    snprintf(again, cap, "%s://%s%s%s:%d%s", u->scheme, v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port, u->target);
    if (url_parse(again, schemes, w) != 0)
        abort();
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = strndup((const char *)data, size);
    url_parts_t u;
    int rc = url_parse(url, schemes, &u);
    if (rc != 0) {
        if (u.target != NULL || u.host[0] != '\0' || u.port != 0)
            abort();
    } else {
        check(&u);
    }
    /*
     * Again from its parts: scheme://[host]:port/target parses, with the same scheme, port and
     * target. The host may change once (curl hands it back %-decoded but not yet normalised:
     * "%31" comes back as "1", which then reads as the address 0.0.0.1), then no more. Not for
     * a host with '%' ("%%41" comes back as "%A", which would decode again).
     */
    if (rc == 0 && strchr(u.host, '%') == NULL) {
        url_parts_t w, x;
        reparse(&u, &w);
        if (strcmp(w.scheme, u.scheme) != 0 || w.port != u.port || w.tls != u.tls ||
            strcmp(w.target, u.target) != 0 || w.userinfo)
            abort();
        if (strchr(w.host, '%') == NULL) {
            reparse(&w, &x);
            if (strcmp(x.host, w.host) != 0 || strcmp(x.target, w.target) != 0)
                abort();
            url_parts_destroy(&x);
        }
        url_parts_destroy(&w);
    }
    url_parts_destroy(&u);
    free(url);
    return 0;
}
