/* Request heads (httphead.h). Thread: any. */
#include "net/httphead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

#define HEX_BASE 16

static const struct {
    const char *name;
    bool single;
} field_names[HH_COUNT_] = {
    [HH_HOST] = {"host", true},
    [HH_ORIGIN] = {"origin", true},
    [HH_AUTHORIZATION] = {"authorization", true},
    [HH_CONTENT_TYPE] = {"content-type", true},
    [HH_CONTENT_LENGTH] = {"content-length", false},
    [HH_TRANSFER_ENCODING] = {"transfer-encoding", false},
    [HH_X_FORWARDED_FOR] = {"x-forwarded-for", false},
    [HH_IF_NONE_MATCH] = {"if-none-match", false},
    [HH_X_SWITCHBOARD_KEY] = {"x-switchboard-key", true},
    [HH_X_TWILIO_SIGNATURE] = {"x-twilio-signature", true},
    [HH_UPGRADE] = {"upgrade", false},
    [HH_CONNECTION] = {"connection", false},
    [HH_SEC_WEBSOCKET_KEY] = {"sec-websocket-key", true},
    [HH_SEC_WEBSOCKET_VERSION] = {"sec-websocket-version", false},
};

int httphead_end(const uint8_t *buf, size_t len)
{
    size_t line = 0; /* start of the current line */
    bool started = false;
    size_t lim = len < HTTPHEAD_MAX ? len : HTTPHEAD_MAX;
    for (size_t i = 0; i < lim; i++) {
        if (buf[i] != '\n')
            continue;
        size_t n = i - line; /* the line without its LF */
        bool empty = n == 0 || (n == 1 && buf[line] == '\r');
        if (empty && started)
            return (int)(i + 1);
        if (!empty)
            started = true;
        line = i + 1;
    }
    return len >= HTTPHEAD_MAX ? -EMSGSIZE : 0;
}

/* RFC 9110 5.6.2 tchar. */
static bool tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte allowed in a field value: visible ASCII, blanks and obs-text; no other controls. */
static bool value_byte(uint8_t c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

static bool blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* The line at *p (up to, not including, its LF or CRLF); advances *p past the line end. A CR
 * anywhere but right before the LF makes the line invalid (*bad). */
static size_t next_line(const uint8_t **p, const uint8_t *end, bool *bad)
{
    const uint8_t *s = *p, *lf = memchr(s, '\n', (size_t)(end - s));
    if (lf == NULL)
        lf = end;
    size_t n = (size_t)(lf - s);
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (memchr(s, '\r', n) != NULL)
        *bad = true;
    *p = lf < end ? lf + 1 : end;
    return n;
}

static int field_index(const uint8_t *name, size_t n)
{
    for (int i = 0; i < HH_COUNT_; i++)
        if (strlen(field_names[i].name) == n &&
            strncasecmp((const char *)name, field_names[i].name, n) == 0)
            return i;
    return -1;
}

typedef struct span {
    int field;
    const uint8_t *v;
    size_t n;
} span_t;

/* Writes each field's values, joined by ", " in arrival order, into the store at *cursor. */
static int join_fields(httphead_t *h, const span_t *spans, int n_spans, char *cursor,
                       const char **why)
{
    for (int i = 0; i < HH_COUNT_; i++) {
        char *out = NULL;
        for (int k = 0; k < n_spans; k++) {
            if (spans[k].field != i)
                continue;
            if (out && field_names[i].single) {
                *why = i == HH_HOST ? "more than one Host header"
                                    : "a header that must be single is repeated";
                return -EINVAL;
            }
            if (out) {
                memcpy(cursor, ", ", 2);
                cursor += 2;
            } else {
                out = cursor;
            }
            memcpy(cursor, spans[k].v, spans[k].n);
            cursor += spans[k].n;
        }
        if (out) {
            *cursor++ = '\0';
            h->fields[i] = out;
        }
    }
    return 0;
}

static int parse_request_line(httphead_t *h, const uint8_t *s, size_t n, char **cursor,
                              const char **why)
{
    const uint8_t *sp1 = memchr(s, ' ', n);
    if (sp1 == NULL || sp1 == s || (size_t)(sp1 - s) >= sizeof(h->method)) {
        *why = "the request line is malformed";
        return -EINVAL;
    }
    for (const uint8_t *q = s; q < sp1; q++)
        if (!tchar(*q)) {
            *why = "the method is not a token";
            return -EINVAL;
        }
    memcpy(h->method, s, (size_t)(sp1 - s));
    h->method[sp1 - s] = '\0';
    const uint8_t *t = sp1 + 1, *end = s + n;
    const uint8_t *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (sp2 == NULL || sp2 == t) {
        *why = "the request line is malformed";
        return -EINVAL;
    }
    for (const uint8_t *q = t; q < sp2; q++)
        if (*q <= ' ' || *q >= 0x7f) {
            *why = "the request target holds a byte that is not visible ASCII";
            return -EINVAL;
        }
    const uint8_t *v = sp2 + 1;
    size_t vl = (size_t)(end - v);
    if (vl != 8 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1')) {
        *why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
        return -EINVAL;
    }
    h->minor = v[7] - '0';
    size_t tl = (size_t)(sp2 - t);
    memcpy(*cursor, t, tl);
    (*cursor)[tl] = '\0';
    h->target = *cursor;
    *cursor += tl + 1;
    return 0;
}

int httphead_parse(httphead_t *h, const uint8_t *buf, size_t len, const char **why)
{
    memset(h, 0, sizeof(*h));
    *why = "the request head is malformed";
    /* The target and every value fit in the head's bytes, plus ", " or a NUL per line. */
    h->store = xmalloc(len + 3 * (HTTPHEAD_MAX_FIELDS + 2));
    span_t spans[HTTPHEAD_MAX_FIELDS];
    int n_spans = 0;
    char *cursor = h->store;
    const uint8_t *p = buf, *end = buf + len;
    bool bad = false;
    size_t n;
    const uint8_t *s;
    do { /* empty lines before the request line are skipped (RFC 9112 2.2) */
        s = p;
        n = next_line(&p, end, &bad);
    } while (n == 0 && p < end);
    if (bad || n == 0)
        return -EINVAL;
    int rc = parse_request_line(h, s, n, &cursor, why);
    if (rc != 0)
        return rc;
    int count = 0;
    for (;;) {
        s = p;
        n = next_line(&p, end, &bad);
        if (bad) {
            *why = "a bare CR in the request head";
            return -EINVAL;
        }
        if (n == 0)
            return join_fields(h, spans, n_spans, cursor, why); /* the blank line */
        if (++count > HTTPHEAD_MAX_FIELDS)
            return -EMSGSIZE;
        if (blank(s[0])) {
            *why = "folded header lines are not accepted";
            return -EINVAL;
        }
        const uint8_t *colon = memchr(s, ':', n);
        if (colon == NULL || colon == s) {
            *why = "a header line without a name and a colon";
            return -EINVAL;
        }
        for (const uint8_t *q = s; q < colon; q++)
            if (!tchar(*q)) {
                *why = "a header name holds a byte that is not a token character";
                return -EINVAL; /* whitespace before the colon included (RFC 9112 5.1) */
            }
        const uint8_t *v = colon + 1, *ve = s + n;
        while (v < ve && blank(*v))
            v++;
        while (ve > v && blank(ve[-1]))
            ve--;
        for (const uint8_t *q = v; q < ve; q++)
            if (!value_byte(*q)) {
                *why = "a header value holds a control byte";
                return -EINVAL;
            }
        int i = field_index(s, (size_t)(colon - s));
        if (i >= 0)
            spans[n_spans++] = (span_t){i, v, (size_t)(ve - v)};
    }
}

void httphead_free(httphead_t *h)
{
    free(h->store);
    h->store = NULL;
}

int httphead_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX at in[0..2]; returns the byte or -1. */
static int pct(const char *in, size_t left)
{
    if (left < 3)
        return -1;
    int a = httphead_hexval((unsigned char)in[1]), b = httphead_hexval((unsigned char)in[2]);
    return a < 0 || b < 0 ? -1 : a * HEX_BASE + b;
}

int httphead_path(const char *target, char *out, size_t outlen, const char **query)
{
    if (target[0] != '/')
        return -EINVAL;
    size_t tl = strcspn(target, "?#");
    *query = "";
    if (target[tl] == '?') {
        *query = target + tl + 1;
        /* The query ends at a '#' (a fragment should not be sent; if it is, it is not ours). */
    }
    size_t o = 0;
    for (size_t i = 0; i < tl; i++) {
        int c = (unsigned char)target[i];
        if (c == '%') {
            c = pct(target + i, tl - i);
            if (c <= 0 || c < ' ' || c == 0x7f)
                return -EINVAL;
            i += 2;
        }
        if (o + 1 >= outlen)
            return -ENOSPC;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    /* Dot segments (after decoding, so %2e%2e counts): nothing here is served at such a path. */
    for (const char *seg = out; seg != NULL; seg = strchr(seg + 1, '/')) {
        const char *a = seg + 1;
        size_t sl = strcspn(a, "/");
        if ((sl == 1 && a[0] == '.') || (sl == 2 && a[0] == '.' && a[1] == '.'))
            return -ENOENT;
    }
    return 0;
}

bool httphead_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(v, token, tl) == 0)
            return true;
        v += n;
    }
    return false;
}

int httphead_query_decode(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            c = pct(in + i, n - i);
            if (c <= 0)
                return -1;
            i += 2;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return (int)o;
}
