/* Request framing and Host rules (httpreq.h). Thread: any. */
#include "net/httpreq.h"

#include "net/httphead.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

/* 2^53 has 16 digits; anything longer is refused before it could overflow. */
#define CL_MAX_DIGITS 16
#define CL_MAX        (1ull << 53)
#define PORT_DIGITS   5

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

int httpreq_content_length(const char *v, uint64_t *out)
{
    bool have = false;
    uint64_t first = 0;
    if (v == NULL)
        return -EINVAL;
    for (;;) {
        while (blank(*v))
            v++;
        uint64_t n = 0;
        int digits = 0;
        while (*v >= '0' && *v <= '9') {
            if (++digits > CL_MAX_DIGITS)
                return -EINVAL;
            n = n * 10 + (uint64_t)(*v++ - '0');
        }
        while (blank(*v))
            v++;
        if (digits == 0 || n > CL_MAX || (*v != ',' && *v != '\0'))
            return -EINVAL;
        if (have && n != first)
            return -EINVAL; /* two different lengths: which one frames the body is ambiguous */
        first = n;
        have = true;
        if (*v == '\0')
            break;
        v++;
    }
    *out = first;
    return 0;
}

bool httpreq_te_is_chunked(const char *v)
{
    if (v == NULL)
        return false;
    while (blank(*v))
        v++;
    size_t n = strlen(v);
    while (n > 0 && blank(v[n - 1]))
        n--;
    return n == strlen("chunked") && strncasecmp(v, "chunked", n) == 0;
}

enum {
    CH_SIZE = 0,   /* hex digits of a chunk size */
    CH_SIZE_WS,    /* blanks after the size: only an extension or the CR may follow */
    CH_EXT,        /* a chunk extension, skipped up to the CR */
    CH_SIZE_LF,    /* the LF of the size line */
    CH_DATA,       /* chunk data */
    CH_DATA_CR,    /* the CRLF after chunk data */
    CH_DATA_LF,    /* */
    CH_TRAILER,    /* the start of a trailer line, or the CR of the empty line that ends it all */
    CH_TRAILER_IN, /* inside a trailer field, skipped up to its CR */
    CH_TRAILER_LF, /* */
    CH_FINAL_LF,   /* the LF of the last, empty line */
    CH_DONE,
};

httpreq_chunked_rc_t httpreq_chunked_feed(httpreq_chunked_t *st, const uint8_t *in, size_t len,
                                          sbuf_t *out, size_t max, size_t *used)
{
    size_t i = 0;
    httpreq_chunked_rc_t rc = HTTPREQ_CHUNKED_MORE;
    while (i < len && rc == HTTPREQ_CHUNKED_MORE) {
        uint8_t c = in[i];
        switch (st->state) {
        case CH_SIZE: {
            int h = httphead_hexval(c);
            if (h >= 0) {
                st->left = st->left * 16 + (uint64_t)h;
                st->size_digits = true;
                /* Checked per digit, so the size never overflows. */
                if (st->left > max - out->len)
                    rc = HTTPREQ_CHUNKED_TOO_BIG;
            } else if (!st->size_digits) {
                rc = HTTPREQ_CHUNKED_MALFORMED;
            } else if (c == '\r') {
                st->state = CH_SIZE_LF;
            } else if (c == ';') {
                st->state = CH_EXT;
            } else if (blank((char)c)) {
                st->state = CH_SIZE_WS;
            } else {
                rc = HTTPREQ_CHUNKED_MALFORMED;
            }
            i++;
            break;
        }
        case CH_SIZE_WS:
            if (c == ';')
                st->state = CH_EXT;
            else if (c == '\r')
                st->state = CH_SIZE_LF;
            else if (!blank((char)c))
                rc = HTTPREQ_CHUNKED_MALFORMED;
            i++;
            break;
        case CH_EXT:
            if (c == '\r')
                st->state = CH_SIZE_LF;
            else if (c == '\n')
                rc = HTTPREQ_CHUNKED_MALFORMED;
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n') {
                rc = HTTPREQ_CHUNKED_MALFORMED;
                break;
            }
            st->state = st->left ? CH_DATA : CH_TRAILER;
            i++;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > st->left)
                n = (size_t)st->left;
            sbuf_append(out, in + i, n);
            st->left -= n;
            i += n;
            if (st->left == 0)
                st->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (c != (st->state == CH_DATA_CR ? '\r' : '\n')) {
                rc = HTTPREQ_CHUNKED_MALFORMED;
                break;
            }
            if (st->state == CH_DATA_LF) {
                st->size_digits = false;
                st->left = 0;
                st->state = CH_SIZE;
            } else {
                st->state = CH_DATA_LF;
            }
            i++;
            break;
        case CH_TRAILER:
            st->state = c == '\r' ? CH_FINAL_LF : CH_TRAILER_IN;
            if (c == '\n')
                rc = HTTPREQ_CHUNKED_MALFORMED;
            i++;
            break;
        case CH_TRAILER_IN:
            if (c == '\r')
                st->state = CH_TRAILER_LF;
            else if (c == '\n')
                rc = HTTPREQ_CHUNKED_MALFORMED;
            i++;
            break;
        case CH_TRAILER_LF:
        case CH_FINAL_LF:
            if (c != '\n') {
                rc = HTTPREQ_CHUNKED_MALFORMED;
                break;
            }
            st->state = st->state == CH_FINAL_LF ? CH_DONE : CH_TRAILER;
            i++;
            break;
        default: /* CH_DONE */
            rc = HTTPREQ_CHUNKED_DONE;
            break;
        }
    }
    if (rc == HTTPREQ_CHUNKED_MORE && st->state == CH_DONE)
        rc = HTTPREQ_CHUNKED_DONE;
    if (used)
        *used = i;
    return rc;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

bool httpreq_host_name(const char *h, char *out, size_t outlen)
{
    if (h == NULL || outlen == 0)
        return false;
    while (blank(*h))
        h++;
    size_t n = strlen(h);
    while (n > 0 && blank(h[n - 1]))
        n--;
    const char *name = h, *port = NULL;
    size_t nl;
    if (n > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (close == NULL)
            return false;
        name = h + 1;
        nl = (size_t)(close - name);
        size_t rest = n - (size_t)(close + 1 - h);
        if (rest > 0) {
            if (close[1] != ':')
                return false;
            port = close + 2;
        }
        struct in6_addr a6;
        char buf[INET6_ADDRSTRLEN];
        if (nl == 0 || nl >= sizeof(buf))
            return false;
        memcpy(buf, name, nl);
        buf[nl] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return false;
    } else {
        const char *colon = memchr(h, ':', n);
        nl = colon ? (size_t)(colon - h) : n;
        if (colon)
            port = colon + 1;
        if (nl == 0)
            return false;
        for (size_t i = 0; i < nl; i++)
            if (!name_char(h[i]))
                return false;
    }
    if (port) {
        size_t pl = n - (size_t)(port - h);
        if (pl == 0 || pl > PORT_DIGITS)
            return false;
        for (size_t i = 0; i < pl; i++)
            if (port[i] < '0' || port[i] > '9')
                return false;
    }
    if (nl >= outlen)
        return false;
    for (size_t i = 0; i < nl; i++)
        out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    out[nl] = '\0';
    return true;
}

bool httpreq_host_is_loopback(const char *name)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(name, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* A configured host names us unless it is unset or a wildcard address. */
static bool same_host(const char *name, const char *configured)
{
    if (configured == NULL || *configured == '\0')
        return false;
    char bare[256];
    size_t n = strlen(configured);
    if (configured[0] == '[' && n >= 2 && configured[n - 1] == ']') {
        configured++;
        n -= 2;
    }
    if (n >= sizeof(bare))
        return false;
    memcpy(bare, configured, n);
    bare[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if ((inet_pton(AF_INET, bare, &a4) == 1 && a4.s_addr == htonl(INADDR_ANY)) ||
        (inet_pton(AF_INET6, bare, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6)))
        return false;
    return strcasecmp(name, bare) == 0;
}

bool httpreq_host_is_ours(const char *host_header, const char *listen_host, const char *public_host)
{
    char name[256];
    if (!httpreq_host_name(host_header, name, sizeof(name)))
        return false;
    return httpreq_host_is_loopback(name) || same_host(name, listen_host) ||
           same_host(name, public_host);
}
