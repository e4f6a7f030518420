/*
 * httpreq: the pure parts of reading an HTTP request that libwebsockets leaves to us (SPEC 14
 * "Requests", "Origins"): the Content-Length value, chunked request bodies, and what a Host
 * header names. lws 4.1.6 parses the head itself but takes the first of several Content-Length
 * values, reads "abc" as 0, and hands a chunked body over as raw bytes; http.c uses these to
 * refuse or decode what lws would misread. Thread: any (no I/O, no shared state).
 */
#ifndef SB_NET_HTTPREQ_H
#define SB_NET_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

/*
 * Parses a Content-Length value as lws hands it over: several headers, or one header holding a
 * list, arrive joined by ','. Digits only, optional blanks around each element; a list is
 * accepted only when every element is the same number (RFC 9110 8.6). Returns 0 with *out set,
 * or -EINVAL for an empty, malformed or conflicting value, or a number over 2^53.
 */
int httpreq_content_length(const char *v, uint64_t *out);

/* The Transfer-Encoding value names exactly the chunked coding (case-insensitive, blanks
 * around it allowed); anything else (other codings, lists) is refused by the caller. */
bool httpreq_te_is_chunked(const char *v);

/* Decoder state of a chunked body (RFC 9112 7.1). Zero it to start. */
typedef struct httpreq_chunked {
    uint8_t state;
    bool size_digits; /* the size line has at least one digit */
    uint64_t left;    /* bytes of the current chunk still to come */
} httpreq_chunked_t;

typedef enum httpreq_chunked_rc {
    HTTPREQ_CHUNKED_MORE = 0,  /* everything consumed, the body is not complete */
    HTTPREQ_CHUNKED_DONE,      /* the last chunk and the trailer section have arrived */
    HTTPREQ_CHUNKED_MALFORMED, /* not chunked framing */
    HTTPREQ_CHUNKED_TOO_BIG,   /* the decoded body would exceed max */
} httpreq_chunked_rc_t;

/*
 * Decodes len bytes of a chunked body, appending the data to out, which never grows past max
 * bytes. Chunk extensions and trailer fields are skipped. Bytes after the end (DONE) are left
 * unread; *used (may be NULL) says how many were consumed.
 */
httpreq_chunked_rc_t httpreq_chunked_feed(httpreq_chunked_t *st, const uint8_t *in, size_t len,
                                          sbuf_t *out, size_t max, size_t *used);

/*
 * Copies the host part of a Host header value ("name[:port]", "[v6][:port]") into out (without
 * brackets, lower-cased). Returns false when the value is malformed or does not fit.
 */
bool httpreq_host_name(const char *host_header, char *out, size_t outlen);

/* The host part (as from httpreq_host_name()) is localhost, an IPv4 loopback literal
 * (127.0.0.0/8) or ::1. */
bool httpreq_host_is_loopback(const char *name);

/*
 * The Host header names this service: the loopback names above, or `listen_host` (the listen
 * address; NULL or a wildcard matches nothing), or `public_host` (NULL when unset), compared
 * without case and without the port. A rebinding page's Host (evil.example) is not ours.
 */
bool httpreq_host_is_ours(const char *host_header, const char *listen_host,
                          const char *public_host);

#endif
