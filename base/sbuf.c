/* Growable byte buffer and RFC 8259 string escaping; see sbuf.h. */
#include "base/sbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* First allocation, in bytes; later growth doubles so appends are amortised O(1). */
#define SBUF_MIN_CAP_BYTES 64

/* U+FFFD REPLACEMENT CHARACTER in UTF-8: stands in for each byte that is not valid UTF-8. */
#define SBUF_UTF8_REPLACEMENT     "\xEF\xBF\xBD"
#define SBUF_UTF8_REPLACEMENT_LEN 3

/* Room for the longest escape we emit, "\u00XX", plus its terminator. */
#define SBUF_ESCAPE_MAX_BYTES 8

void sbuf_init(sbuf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sbuf_destroy(sbuf_t *b)
{
    free(b->data);
    sbuf_init(b);
}

void sbuf_reserve(sbuf_t *b, size_t n)
{
    if (unlikely(n > SIZE_MAX / 2 - b->len)) {
        fprintf(stderr, "fatal: sbuf of %zu bytes cannot grow by %zu\n", b->len, n);
        abort();
    }
    size_t need = b->len + n + 1; /* + the terminator */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : SBUF_MIN_CAP_BYTES;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void sbuf_append(sbuf_t *b, const void *p, size_t n)
{
    sbuf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sbuf_puts(sbuf_t *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}

void sbuf_putc(sbuf_t *b, char c)
{
    sbuf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void sbuf_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

/*
 * Formats straight into the spare capacity; only when that is too small does it grow the buffer
 * to the exact size vsnprintf reported and format a second time. A format error leaves the
 * buffer as it was.
 */
void sbuf_vprintf(sbuf_t *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    if (n >= 0 && (size_t)n >= room) {
        sbuf_reserve(b, (size_t)n);
        n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (n < 0) {
        if (b->data)
            b->data[b->len] = '\0';
        return;
    }
    b->len += (size_t)n;
}

size_t sbuf_utf8_seq_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    if (c < 0x80)
        return 1;

    /* Unicode 15, table 3-7: the lead byte fixes the length and the range of the second byte. */
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    if (n < len || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (u[i] < 0x80 || u[i] > 0xBF)
            return 0;
    return len;
}

/* True for the bytes RFC 8259 lets through unescaped in a string (ASCII part only). */
static int json_plain_ascii(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

void sbuf_json_strn(sbuf_t *b, const char *s, size_t n)
{
    /* Most strings need no escaping: reserve once for the common case. */
    sbuf_reserve(b, n + 2);
    sbuf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run of bytes that pass through unchanged in one append. */
        size_t start = i;
        for (;;) {
            unsigned char c = (unsigned char)s[i];
            if (json_plain_ascii(c)) {
                i++;
            } else if (c >= 0x80) {
                size_t l = sbuf_utf8_seq_len(s + i, n - i);
                if (l == 0)
                    break;
                i += l;
            } else {
                break;
            }
            if (i >= n)
                break;
        }
        sbuf_append(b, s + start, i - start);
        if (i >= n)
            break;

        unsigned char c = (unsigned char)s[i++];
        char esc[SBUF_ESCAPE_MAX_BYTES];
        switch (c) {
        case '"':
            sbuf_append(b, "\\\"", 2);
            break;
        case '\\':
            sbuf_append(b, "\\\\", 2);
            break;
        case '\n':
            sbuf_append(b, "\\n", 2);
            break;
        case '\r':
            sbuf_append(b, "\\r", 2);
            break;
        case '\t':
            sbuf_append(b, "\\t", 2);
            break;
        case '\b':
            sbuf_append(b, "\\b", 2);
            break;
        case '\f':
            sbuf_append(b, "\\f", 2);
            break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                sbuf_append(b, esc, 6);
            } else {
                /* A byte that is not valid UTF-8: JSON text must be UTF-8, so replace it. */
                sbuf_append(b, SBUF_UTF8_REPLACEMENT, SBUF_UTF8_REPLACEMENT_LEN);
            }
            break;
        }
    }
    sbuf_putc(b, '"');
}

/* A NULL string is written as the JSON literal null, which is what optional fields want. */
void sbuf_json_str(sbuf_t *b, const char *s)
{
    if (s == NULL) {
        sbuf_append(b, "null", 4);
        return;
    }
    sbuf_json_strn(b, s, strlen(s));
}

char *sbuf_take(sbuf_t *b)
{
    char *p = b->data ? b->data : xstrdup("");
    sbuf_init(b);
    return p;
}

void sbuf_reset(sbuf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sbuf_xml_text(sbuf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            sbuf_puts(b, "&amp;");
            break;
        case '<':
            sbuf_puts(b, "&lt;");
            break;
        case '>':
            sbuf_puts(b, "&gt;");
            break;
        case '"':
            sbuf_puts(b, "&quot;");
            break;
        case '\'':
            sbuf_puts(b, "&#39;");
            break;
        default:
            sbuf_putc(b, *s);
        }
    }
}
