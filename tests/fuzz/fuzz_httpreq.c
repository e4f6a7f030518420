/*
 * libFuzzer target: the pure parts of reading an HTTP request (net/httpreq.c), where request
 * smuggling shapes are refused: Content-Length values, chunked bodies and Host headers.
 *
 * The first byte picks the mode; the rest is the input.
 *   0  Content-Length: against a plainly written reference (every ','-separated element digits
 *      with optional blanks, all equal, at most 2^53).
 *   1  a chunked body: decoded whole and decoded in pieces (piece sizes from the input's first
 *      bytes) must give the same result, the same body and the same bytes consumed; the body
 *      never grows past its limit; and a body that decodes is re-encoded and decoded again to
 *      the same bytes.
 *   2  a Host header: the name is lower case and never longer than the header; a loopback name
 *      is always one of ours; a name is ours when it is the listen host (not a wildcard).
 *   3  a request head (net/httphead.c): its end is found the same way in every prefix; a head
 *      that parses has a token method, a target of visible ASCII, values without CR, LF or NUL
 *      inside the store; a target's decoded path never holds a control byte, a "." or ".."
 *      segment; query values decode within their bounds.
 * Any disagreement aborts.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/httphead.h"
#include "net/httpreq.h"

#define BODY_MAX  4096
#define PIECES    8
#define NAME_MAX_ 256

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The reference reading of a Content-Length value. */
static int ref_content_length(const char *v, uint64_t *out)
{
    bool have = false;
    uint64_t first = 0;
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        size_t a = 0, b = len;
        while (a < b && blank(p[a]))
            a++;
        while (b > a && blank(p[b - 1]))
            b--;
        if (a == b || b - a > 16)
            return -EINVAL;
        uint64_t n = 0;
        for (size_t i = a; i < b; i++) {
            if (!isdigit((unsigned char)p[i]))
                return -EINVAL;
            n = n * 10 + (uint64_t)(p[i] - '0');
        }
        if (n > (1ull << 53) || (have && n != first))
            return -EINVAL;
        first = n;
        have = true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = first;
    return 0;
}

static void check_content_length(const uint8_t *data, size_t size)
{
    char *v = strndup((const char *)data, size);
    uint64_t got = 0, want = 0;
    int rc = httpreq_content_length(v, &got), ref = ref_content_length(v, &want);
    if ((rc == 0) != (ref == 0) || (rc == 0 && got != want)) {
        fprintf(stderr, "content-length \"%s\": %d/%llu, reference %d/%llu\n", v, rc,
                (unsigned long long)got, ref, (unsigned long long)want);
        abort();
    }
    free(v);
}

typedef struct decoded {
    httpreq_chunked_rc_t rc;
    size_t used;
    sbuf_t body;
} decoded_t;

/* Feeds in[0..len) in pieces of the given sizes (cycled), stopping at the first verdict. */
static decoded_t decode(const uint8_t *in, size_t len, const uint8_t *sizes, size_t n_sizes)
{
    decoded_t d = {HTTPREQ_CHUNKED_MORE, 0, SBUF_INIT};
    httpreq_chunked_t st = {0};
    size_t off = 0, k = 0;
    while (off < len) {
        size_t piece = n_sizes ? (size_t)sizes[k++ % n_sizes] % 17 + 1 : len - off;
        if (piece > len - off)
            piece = len - off;
        size_t used = 0;
        d.rc = httpreq_chunked_feed(&st, in + off, piece, &d.body, BODY_MAX, &used);
        if (d.body.len > BODY_MAX)
            abort();
        if (d.rc == HTTPREQ_CHUNKED_MORE && used != piece)
            abort(); /* MORE means everything was consumed */
        off += used;
        if (d.rc != HTTPREQ_CHUNKED_MORE)
            break;
    }
    d.used = off;
    return d;
}

static void check_chunked(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t n_sizes = data[0] % PIECES;
    if (size < 1 + n_sizes)
        return;
    const uint8_t *sizes = data + 1, *in = data + 1 + n_sizes;
    size_t len = size - 1 - n_sizes;
    decoded_t whole = decode(in, len, NULL, 0), parts = decode(in, len, sizes, n_sizes);
    /* Where the input ends early both say MORE; past a verdict the piecewise run stops at the
     * same byte, so consumed counts agree whenever a verdict was reached. */
    if (whole.rc != parts.rc || whole.body.len != parts.body.len ||
        (whole.body.len && memcmp(whole.body.data, parts.body.data, whole.body.len) != 0) ||
        (whole.rc != HTTPREQ_CHUNKED_MORE && whole.rc != HTTPREQ_CHUNKED_MALFORMED &&
         whole.used != parts.used)) {
        fprintf(stderr, "chunked: whole %d/%zu/%zu, pieces %d/%zu/%zu\n", whole.rc, whole.used,
                whole.body.len, parts.rc, parts.used, parts.body.len);
        abort();
    }
    if (whole.rc == HTTPREQ_CHUNKED_DONE) {
        /* Re-encoded as one chunk, it decodes to the same body. */
        sbuf_t enc = SBUF_INIT;
        char head[32];
        if (whole.body.len) {
            snprintf(head, sizeof(head), "%zx\r\n", whole.body.len);
            sbuf_puts(&enc, head);
            sbuf_append(&enc, whole.body.data, whole.body.len);
            sbuf_puts(&enc, "\r\n");
        }
        sbuf_puts(&enc, "0\r\n\r\n");
        decoded_t again = decode((const uint8_t *)enc.data, enc.len, NULL, 0);
        if (again.rc != HTTPREQ_CHUNKED_DONE || again.used != enc.len ||
            again.body.len != whole.body.len ||
            (whole.body.len && memcmp(again.body.data, whole.body.data, whole.body.len) != 0))
            abort();
        sbuf_destroy(&again.body);
        sbuf_destroy(&enc);
    }
    sbuf_destroy(&whole.body);
    sbuf_destroy(&parts.body);
}

static void check_host(const uint8_t *data, size_t size)
{
    char *h = strndup((const char *)data, size);
    char name[NAME_MAX_];
    if (httpreq_host_name(h, name, sizeof(name))) {
        if (strlen(name) > strlen(h))
            abort();
        for (const char *p = name; *p; p++)
            if (isupper((unsigned char)*p))
                abort();
        if (httpreq_host_is_loopback(name) && !httpreq_host_is_ours(h, NULL, NULL))
            abort();
        bool wildcard = strcmp(name, "0.0.0.0") == 0 || strcmp(name, "::") == 0;
        if (name[0] && !wildcard && strchr(name, ':') == NULL &&
            !httpreq_host_is_ours(h, name, NULL))
            abort(); /* the listen host is ours (a wildcard listen address names no host) */
    }
    (void)httpreq_host_is_ours(h, "0.0.0.0", h);
    free(h);
}

static void check_head(const uint8_t *in, size_t n)
{
    int end = httphead_end(in, n);
    if (end > (int)n || (end < 0 && end != -EMSGSIZE))
        abort();
    if (end > 0 && n > 1 && httphead_end(in, (size_t)end - 1) > 0)
        abort(); /* the first blank line ends it: no shorter prefix is a head */
    if (end <= 0)
        return;
    httphead_t h;
    const char *why = NULL;
    int rc = httphead_parse(&h, in, (size_t)end, &why);
    if (rc == -EINVAL && why == NULL)
        abort();
    if (rc == 0) {
        for (const char *m = h.method; *m; m++)
            if (*m <= ' ' || *m >= 0x7f)
                abort();
        for (const char *t = h.target; *t; t++)
            if (*t <= ' ' || *t >= 0x7f)
                abort();
        for (int i = 0; i < HH_COUNT_; i++)
            if (h.fields[i] && strpbrk(h.fields[i], "\r\n"))
                abort();
        char path[256];
        const char *query = NULL;
        int prc = httphead_path(h.target, path, sizeof(path), &query);
        if (prc == 0) {
            for (const char *p = path; *p; p++)
                if ((unsigned char)*p < ' ' || *p == 0x7f)
                    abort();
            if (strstr(path, "/../") || strstr(path, "/./"))
                abort();
            char v[64];
            int vl = httphead_query_decode(query, strlen(query), v, sizeof(v));
            if (vl >= (int)sizeof(v) || (vl >= 0 && (size_t)vl != strlen(v)))
                abort();
        }
    }
    httphead_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
        check_content_length(data + 1, size - 1);
        break;
    case 1:
        check_chunked(data + 1, size - 1);
        break;
    case 2:
        check_host(data + 1, size - 1);
        break;
    default:
        check_head(data + 1, size - 1);
        break;
    }
    return 0;
}
