/*
 * httphead: reading an HTTP/1.1 request head (RFC 9112 2-5) for the server connections, which
 * read their own bytes (net/DESIGN.md, "Server connections"). The request line, the header
 * fields the service uses, and the request target split into a decoded path and a raw query.
 * Anything that is not plainly HTTP/1.x is refused with a reason rather than guessed at: a
 * target that is not a path, whitespace before a field's colon, folded lines, control bytes,
 * a second Host. Pure: no I/O, no shared state. Thread: any.
 */
#ifndef SB_NET_HTTPHEAD_H
#define SB_NET_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPHEAD_MAX        8192 /* a head (request line, fields, blank line) longer is 431 */
#define HTTPHEAD_MAX_FIELDS 100
#define HTTPHEAD_METHOD_MAX 16

/* The fields the service reads. Repeated fields are joined by ", " in arrival order (RFC 9110
 * 5.3), except the ones marked single, where a second copy is an error. */
typedef enum httphead_field {
    HH_HOST,                  /* single */
    HH_ORIGIN,                /* single */
    HH_AUTHORIZATION,         /* single */
    HH_CONTENT_TYPE,          /* single */
    HH_CONTENT_LENGTH,        /* joined: httpreq_content_length() judges a list */
    HH_TRANSFER_ENCODING,     /* joined */
    HH_X_FORWARDED_FOR,       /* joined */
    HH_IF_NONE_MATCH,         /* joined */
    HH_X_SWITCHBOARD_KEY,     /* single */
    HH_X_TWILIO_SIGNATURE,    /* single */
    HH_UPGRADE,               /* joined */
    HH_CONNECTION,            /* joined */
    HH_SEC_WEBSOCKET_KEY,     /* single */
    HH_SEC_WEBSOCKET_VERSION, /* joined */
    HH_COUNT_
} httphead_field_t;

typedef struct httphead {
    char method[HTTPHEAD_METHOD_MAX]; /* as sent (a token, case kept) */
    char *target;                     /* the raw request target, as sent */
    int minor;                        /* HTTP/1.<minor>: 0 or 1 */
    char *fields[HH_COUNT_];          /* NUL-terminated values, NULL when absent */
    char *store;                      /* owns target and the values */
} httphead_t;

/*
 * Finds the end of the head in the len bytes at buf: returns the head's length through its
 * blank line, 0 when more bytes are needed, or -EMSGSIZE when none ends within HTTPHEAD_MAX.
 * Empty lines before the request line belong to the head (RFC 9112 2.2). Lines end with LF,
 * optionally after a CR.
 */
int httphead_end(const uint8_t *buf, size_t len);

/*
 * Parses the complete head (the len bytes httphead_end() measured) into h, which the caller
 * frees with httphead_free() whatever the result. Returns 0; -EINVAL with *why set (a message
 * for a 400 answer); -EMSGSIZE when there are more than HTTPHEAD_MAX_FIELDS fields (431).
 * The method is only checked to be a token; which methods exist is the caller's business.
 */
int httphead_parse(httphead_t *h, const uint8_t *buf, size_t len, const char **why);

void httphead_free(httphead_t *h);

/*
 * Splits an origin-form target into its %-decoded path (written to out, outlen bytes) and its
 * raw query (*query points into target, after the '?', "" when none; a '#' ends it). Returns 0;
 * -EINVAL for a target that is not a path ("*", absolute form), a bad %-escape, a decoded NUL
 * or control byte; -ENOENT for a path with a "." or ".." segment (nothing is served at such a
 * path); -ENOSPC when the path does not fit.
 */
int httphead_path(const char *target, char *out, size_t outlen, const char **query);

/* The value of hex digit c, or -1. */
int httphead_hexval(int c);

/* The comma-separated list v (a Connection or Upgrade value) holds token, in any case. */
bool httphead_has_token(const char *v, const char *token);

/*
 * %-decodes one query value (also '+' as a space) from the n bytes at in into out (outlen
 * bytes, NUL-terminated). Returns its length, or -1 for a bad escape, a decoded NUL, or a value
 * that does not fit.
 */
int httphead_query_decode(const char *in, size_t n, char *out, size_t outlen);

#endif
