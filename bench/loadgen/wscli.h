/*
 * wscli: a bench session's WebSocket client, on a nonblocking TCP socket watched by a uv_poll_t,
 * with the framing, handshake and TLS the service's own upstream client uses (net/wsframe.c,
 * net/wshs.c, net/wsmsg.c, net/tlsc.c) and none of libwebsockets. See DESIGN.md, "Transport".
 *
 * Writes: the owner frames whole runs of frames itself (wsf_client_frame_append) and hands them
 * to wscli_send(), which calls send() at once; what the socket does not take is kept (txq.h) and
 * POLLOUT is watched only until it has drained, when drained() tells the owner it may send
 * again. Reads: one recv() per readable event into the connection's buffer; every whole frame in
 * it is parsed where it lies, and a message in one frame is handed to message() in place. A frame
 * larger than the buffer, or a fragmented message, is reassembled (up to max_msg bytes; larger
 * messages are dropped and counted by too_big()). Pings are answered with pongs; a peer's close
 * is echoed and the socket closed; wscli_close() sends ours and waits for the peer's.
 *
 * Callbacks run on the loop's thread, from poll events or from the wscli_* call that caused them
 * (wscli_send, wscli_close and wscli_abort may end the connection, and then call ended() before
 * they return). ended() is called exactly once for a connection wscli_connect() started; after
 * it, the wscli_t must not be used (it is freed once its handle has closed). A wscli_connect()
 * that fails calls nothing.
 *
 * Thread: the loop's thread only.
 */
#ifndef SB_BENCH_WSCLI_H
#define SB_BENCH_WSCLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define WSCLI_RX_BYTES       16384 /* a connection's read buffer: holds a whole response head */
#define WSCLI_KEPT_MAX_BYTES (256u << 10) /* bytes kept for a socket that does not drain */
#define WSCLI_ERROR_MAX      120
#define WSCLI_CLOSE_TEXT_MAX 64

typedef struct wscli wscli_t;

/* How a connection ended. */
typedef struct wscli_end {
    bool opened;      /* the upgrade had succeeded */
    int http_status;  /* the handshake's status when it was not an upgrade; else 0 */
    bool peer_closed; /* the peer's close frame came (code and text below) */
    int close_code;   /* its code, exactly as sent; 0 when it had none */
    char close_text[WSCLI_CLOSE_TEXT_MAX];
    bool close_sent;             /* ours had been sent */
    char error[WSCLI_ERROR_MAX]; /* why, when it ended otherwise: "" after a close handshake or
                                    wscli_abort(c, NULL) */
} wscli_end_t;

typedef struct wscli_ops {
    /* The upgrade succeeded: frames may be sent. */
    void (*open)(void *arg);
    /* A whole message; p (n bytes, not terminated) is valid during the call only. */
    void (*message)(void *arg, bool binary, const uint8_t *p, size_t n);
    /* A message over max_msg bytes was dropped. */
    void (*too_big)(void *arg);
    /* The bytes kept for the socket have all been sent. */
    void (*drained)(void *arg);
    /* The connection has ended (see the contract above). */
    void (*ended)(void *arg, const wscli_end_t *e);
} wscli_ops_t;

typedef struct wscli_cfg {
    const struct sockaddr *addr; /* numeric: nothing is resolved on the loop */
    socklen_t addr_len;
    const char *host_hdr; /* the Host header */
    const char *path;     /* path and query */
    const char *bearer;   /* Authorization: Bearer …, or NULL */
    const char *tls_host; /* NULL for ws://; else TLS, with SNI and verification of this name */
    size_t max_msg;
} wscli_cfg_t;

/*
 * Starts connecting to cfg->addr and upgrading to cfg->path; the strings are copied. On success
 * sets *out and returns 0: ops (which must outlive the connection) are called with arg from then
 * on. Returns -errno when the socket or the TLS client cannot be set up, or the request does not
 * fit (nothing is called then).
 */
int wscli_connect(uv_loop_t *loop, const wscli_cfg_t *cfg, const wscli_ops_t *ops, void *arg,
                  wscli_t **out);

/*
 * Sends n bytes of whole client frames (masked, back to back), or keeps what the socket does not
 * take. Only after open() and before our close. Returns 0, or -errno when the connection has
 * ended (ended() has been called).
 */
int wscli_send(wscli_t *c, const void *p, size_t n);

/*
 * As wscli_send(), for a run that ends with our close frame: nothing more is sent, and the
 * connection waits for the peer's close (or wscli_abort()).
 */
int wscli_send_close(wscli_t *c, const void *p, size_t n);

/* Sends our close frame with code (no reason) and waits for the peer's. Before the upgrade has
 * succeeded, drops the connection instead. */
void wscli_close(wscli_t *c, uint16_t code);

/* True while bytes are kept for the socket: drained() follows. */
bool wscli_blocked(const wscli_t *c);

/* Drops the connection now (no close frame); why is the end's error, or NULL. ended() is called
 * before it returns. */
void wscli_abort(wscli_t *c, const char *why);

#endif
