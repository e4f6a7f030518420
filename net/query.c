/*
 * The query-string lookup of net.h (net_query_get, %-decoding the value), a pure function: a file
 * of its own so that it links without the network threads (the actor unit tests link a fake
 * network). Thread: any.
 */
#include <string.h>

#include "net/httphead.h"
#include "net/net.h"

int net_query_get(const char *query, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return httphead_query_decode(p + nl + 1, seg - nl - 1, out, outlen);
        p = end ? end + 1 : NULL;
    }
    return -1;
}
