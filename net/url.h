/*
 * url: the one URL parser of net/, on libcurl's URL API (curl_url), for the outbound WebSockets
 * (ws://, wss://) and outbound HTTP (http://, https://). Nothing in net/ splits URLs by hand.
 * Thread: any (no I/O, no shared state).
 */
#ifndef SB_NET_URL_H
#define SB_NET_URL_H

#include <stdbool.h>

#define URL_SCHEME_MAX 8
#define URL_HOST_MAX   256

typedef struct url_parts {
    char scheme[URL_SCHEME_MAX]; /* lower case, e.g. "wss" */
    char host[URL_HOST_MAX];     /* a name or an address; an IPv6 address without brackets */
    int port;                    /* the URL's, or the scheme's default (80 or 443) */
    bool tls;                    /* wss:// or https:// */
    bool userinfo;               /* the URL names a user or password */
    char *target;                /* path and query as sent in a request line ("/" at least);
                                    owned, freed by url_parts_destroy() */
} url_parts_t;

/*
 * Parses url, an absolute URL whose scheme is one of the NULL-terminated schemes (compared
 * without case), into *out. Refuses (-EINVAL, *out left empty) a URL curl cannot parse, another
 * scheme, no host, a host longer than URL_HOST_MAX - 1, or port 0. The path is kept as written
 * (no dot-segment removal); a fragment is dropped. Returns 0, -EINVAL, or -ENOMEM when curl
 * cannot allocate its handle.
 */
int url_parse(const char *url, const char *const *schemes, url_parts_t *out);

/* Frees what url_parse() allocated; out may be zeroed or already destroyed. */
void url_parts_destroy(url_parts_t *out);

#endif
