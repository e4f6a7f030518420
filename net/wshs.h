/*
 * wshs: the client's side of the RFC 6455 opening handshake (section 4.1), for the outbound
 * connections that speak WebSocket over a raw libwebsockets socket (net/DESIGN.md, "Outbound
 * WebSockets"). Pure: no I/O. Thread: any.
 */
#ifndef SB_NET_WSHS_H
#define SB_NET_WSHS_H

#include <stdbool.h>
#include <stddef.h>

#define WSHS_KEY_CHARS      24   /* base64 of 16 random bytes */
#define WSHS_ACCEPT_CHARS   28   /* base64 of a SHA-1 */
#define WSHS_RESPONSE_MAX   8192 /* a longer response head is refused */
#define WSHS_REQUEST_ID_MAX 64

/*
 * Writes the upgrade request for path on host into buf (cap bytes): GET, Host, Upgrade,
 * Connection, Sec-WebSocket-Key (key, WSHS_KEY_CHARS characters), Sec-WebSocket-Version 13 and,
 * when bearer is not NULL, Authorization. No subprotocol and no extension are offered. Returns
 * the request's length, or -ENOSPC when it does not fit, or -EINVAL when a value holds CR or LF.
 */
int wshs_request(char *buf, size_t cap, const char *host, const char *path, const char *bearer,
                 const char *key);

/*
 * The server's side: when key is a Sec-WebSocket-Key a client may send (base64 of 16 bytes),
 * writes the Sec-WebSocket-Accept value for it into out (WSHS_ACCEPT_CHARS + 1 bytes) and
 * returns true.
 */
bool wshs_accept(const char *key, char *out);

/* Fills key (WSHS_KEY_CHARS + 1 bytes) with a fresh random Sec-WebSocket-Key. */
void wshs_new_key(char *key);

typedef struct wshs_response {
    int status;    /* the HTTP status */
    bool upgraded; /* 101 with the right Upgrade, Connection and Sec-WebSocket-Accept, and no
                      extension or subprotocol we did not offer */
    char request_id[WSHS_REQUEST_ID_MAX]; /* x-request-id, "" when absent (truncated) */
} wshs_response_t;

/*
 * Parses the response head at buf (len bytes so far) to the handshake sent with key. Returns the
 * head's length (through the blank line) when it is complete, with *out filled; 0 when more is
 * needed; -EMSGSIZE when no head ends within WSHS_RESPONSE_MAX; -EINVAL for a malformed status
 * line. Bytes after the head are the first frames.
 */
int wshs_parse_response(const char *buf, size_t len, const char *key, wshs_response_t *out);

#endif
