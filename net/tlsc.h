/*
 * tlsc: the TLS client of the outbound WebSockets (wss://), on OpenSSL memory BIOs.
 *
 * Why not lws's TLS: the outbound connections are raw lws sockets (net/DESIGN.md, "Outbound
 * WebSockets"), and lws 4.1.6 cannot put TLS on a raw client: lws_client_connect_via_info()
 * starts the TLS handshake before the socket exists (core-net/connect.c, the "RAW" branch, with
 * LWS_WITH_SYS_ASYNC_DNS off as Debian builds it) and fails with EBADF. So lws carries the
 * ciphertext and this file does the TLS: the peer's certificate is checked against the system
 * store (SSL_CERT_FILE / SSL_CERT_DIR apply) and against the host name (or IP literal), SNI is the
 * host name, ALPN is http/1.1 only.
 *
 * Thread: one network thread per tlsc_t; each thread keeps its own SSL_CTX while it has clients.
 */
#ifndef SB_NET_TLSC_H
#define SB_NET_TLSC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tlsc tlsc_t;

/* A client for host, or NULL when OpenSSL cannot set one up. Thread: net. */
tlsc_t *tlsc_new(const char *host);
void tlsc_free(tlsc_t *t);

/* Hands ciphertext from the socket to TLS. Returns 0, or -1 when memory runs out. */
int tlsc_feed(tlsc_t *t, const void *in, size_t len);

/* Drives the handshake: 1 when it is done, 0 when it waits for the peer, -1 on failure (the
 * reason is logged). Call again after each tlsc_feed() until it returns 1. */
int tlsc_handshake(tlsc_t *t);

/* Decrypts into buf: the bytes, 0 when no whole record is waiting, -1 when the peer closed or
 * the stream is broken. */
ssize_t tlsc_read(tlsc_t *t, void *buf, size_t cap);

/* Encrypts len bytes (always all of them, into the outgoing ciphertext). 0 or -1. */
int tlsc_write(tlsc_t *t, const void *p, size_t len);

/* Why the peer's certificate was refused (OpenSSL's text for the verify result), or NULL when
 * it was not. */
const char *tlsc_verify_error(const tlsc_t *t);

/* Takes up to cap bytes of ciphertext waiting for the socket; returns how many (0: none). */
size_t tlsc_take_out(tlsc_t *t, void *buf, size_t cap);

#endif
