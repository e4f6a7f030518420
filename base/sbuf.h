/*
 * sbuf: a growable byte buffer for building responses, log lines and JSON text.
 * Thread: owner (a buffer is used by one thread at a time).
 */
#ifndef SB_BASE_SBUF_H
#define SB_BASE_SBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sbuf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} sbuf_t;

#define SBUF_INIT                                                                                  \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void sbuf_init(sbuf_t *b);
void sbuf_destroy(sbuf_t *b);
/* Ensures room for n more bytes (plus the terminator). */
void sbuf_reserve(sbuf_t *b, size_t n);
void sbuf_append(sbuf_t *b, const void *p, size_t n);
void sbuf_puts(sbuf_t *b, const char *s);
void sbuf_putc(sbuf_t *b, char c);
__attribute__((format(printf, 2, 3))) void sbuf_printf(sbuf_t *b, const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void sbuf_vprintf(sbuf_t *b, const char *fmt, va_list ap);
/* Appends s with &, <, >, " and ' written as entities: text or an attribute value in HTML or
 * XML (TwiML). */
void sbuf_xml_text(sbuf_t *b, const char *s);
/* Appends s as a JSON string literal, quotes included. */
void sbuf_json_str(sbuf_t *b, const char *s);
void sbuf_json_strn(sbuf_t *b, const char *s, size_t n);
/* Hands the buffer to the caller (free() it); the sbuf is left empty. */
char *sbuf_take(sbuf_t *b);
void sbuf_reset(sbuf_t *b);

/*
 * Returns the length (1 to 4) of the well-formed UTF-8 sequence at the start of s, which has
 * n > 0 readable bytes, or 0 when those bytes do not begin one (a stray continuation byte, an
 * overlong form, a surrogate, a code point above U+10FFFF or a sequence cut short by n).
 * Shared by the JSON escaper here and the log line formatter. Thread: any (pure).
 */
size_t sbuf_utf8_seq_len(const char *s, size_t n);

#endif
