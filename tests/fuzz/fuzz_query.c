/*
 * libFuzzer target: net_query_get() (net/query.c), the lookup every WebSocket and HTTP handler
 * runs on the request's query string (sessionId, token, rate, page, limit), against a plainly
 * written reference: the first segment with that name, its value %-decoded ('+' a space), -1
 * for a bad escape, a decoded NUL or a value that does not fit. The first byte is the output
 * buffer's size (allocated to exactly that, so ASan sees a write past it); the second picks the
 * name, one the product asks for or, when it is past the list, the bytes up to the first '\n'; the
 * rest is the query, ending at its first NUL as a C string does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

static const char *const names[] = {"sessionId", "token", "rate", "page", "limit", ""};

/* The value of the first "&"-separated segment that is name, '=', value; NULL when none. */
static const char *ref_find(const char *query, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *seg = query;; seg++) {
        size_t len = strcspn(seg, "&");
        if (len > nl && memcmp(seg, name, nl) == 0 && seg[nl] == '=') {
            *vlen = len - nl - 1;
            return seg + nl + 1;
        }
        seg += len;
        if (*seg == '\0')
            return NULL;
    }
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes v (n bytes) into out (cap bytes); the decoded length, or -1. */
static int ref_decode(const char *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hex(v[i + 1]), b = hex(v[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return -1;
            c = a * 16 + b;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (int)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t outlen = data[0];
    size_t pick = data[1];
    data += 2;
    size -= 2;
    char *name;
    if (pick < sizeof(names) / sizeof(names[0])) {
        name = strdup(names[pick]);
    } else {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl ? (size_t)(nl - data) : size;
        name = strndup((const char *)data, n);
        data += nl ? n + 1 : n;
        size -= nl ? n + 1 : n;
    }
    char *query = strndup((const char *)data, size);
    char *out = malloc(outlen ? outlen : 1);

    size_t vlen = 0;
    const char *v = ref_find(query, name, &vlen);
    char *ref = malloc(outlen ? outlen : 1);
    int want = v ? ref_decode(v, vlen, ref, outlen) : -1;
    int got = net_query_get(query, name, out, outlen);
    if (got != want)
        abort();
    if (got >= 0 && (memcmp(out, ref, (size_t)got) != 0 || out[got] != '\0'))
        abort();
    free(ref);

    free(out);
    free(query);
    free(name);
    return 0;
}
