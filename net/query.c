/*
 * The query-string lookup of net.h (net_query_get), a pure function: a file of its own so that
 * it links without the network threads (the actor unit tests link a fake network).
 * Thread: any.
 */
#include <string.h>

#include "net/net.h"

int net_query_get(const char *query, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = seg - nl - 1;
            if (vl + 1 > outlen)
                return -1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return (int)vl;
        }
        p = end ? end + 1 : NULL;
    }
    return -1;
}
