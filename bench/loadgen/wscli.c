/* A bench session's WebSocket client on a raw socket; see wscli.h. */
#include "bench/loadgen/wscli.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "bench/loadgen/txq.h"
#include "net/tlsc.h"
#include "net/wsframe.h"
#include "net/wshs.h"
#include "net/wsmsg.h"

#define WSCLI_TLS_CHUNK       16384 /* a TLS record's worth of ciphertext */
#define WSCLI_REQUEST_MAX     4096  /* the upgrade request: path, Host, bearer and fixed headers */
#define WSCLI_ERROR_READS_MAX 64    /* reads after POLLERR, before the socket's error */

typedef enum wscli_state {
    WSCLI_TCP,       /* connect() in flight: waiting for POLLOUT */
    WSCLI_TLS,       /* the TLS handshake */
    WSCLI_UPGRADING, /* the upgrade request is out; waiting for the 101 */
    WSCLI_OPEN,      /* frames both ways (after our close: theirs only) */
    WSCLI_ENDED,     /* the socket is closed; the handle is closing */
} wscli_state_t;

struct wscli {
    uv_poll_t poll; /* data = this */
    int fd;
    int events; /* what poll watches: UV_READABLE, UV_WRITABLE */
    wscli_state_t state;
    const wscli_ops_t *ops;
    void *arg;
    size_t max_msg;
    char *request; /* the upgrade request, until it is sent */
    size_t request_len;
    char key[WSHS_KEY_CHARS + 1];
    tlsc_t *tls; /* NULL for ws:// */
    txq_t tx;
    uint8_t *rx; /* WSCLI_RX_BYTES: the response head, then frames */
    size_t rx_have;
    wsf_rx_t frames;
    wsmsg_t msg;
    bool discarding; /* the rest of a message over max_msg */
    wscli_end_t end;
};

/* TLS's ciphertext, both ways: only ever used within one callback. */
static _Thread_local uint8_t tl_tls_buf[WSCLI_TLS_CHUNK];

static void on_poll(uv_poll_t *h, int status, int events);

static void on_handle_closed(uv_handle_t *h)
{
    wscli_t *c = h->data;
    tlsc_free(c->tls);
    txq_destroy(&c->tx);
    wsmsg_destroy(&c->msg);
    free(c->rx);
    free(c->request);
    free(c);
}

/* Ends the connection now, once: the socket is closed and ended() called. */
static void finish(wscli_t *c)
{
    if (c->state == WSCLI_ENDED)
        return;
    c->state = WSCLI_ENDED;
    /* The handle lets go of the descriptor (epoll's entry included) before it is closed. */
    uv_close((uv_handle_t *)&c->poll, on_handle_closed);
    close(c->fd);
    c->fd = -1;
    c->ops->ended(c->arg, &c->end);
}

/* As finish(), with a printf-style reason for the end's error. */
__attribute__((format(printf, 2, 3))) static void fail(wscli_t *c, const char *fmt, ...)
{
    if (c->state == WSCLI_ENDED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->end.error, sizeof(c->end.error), fmt, ap);
    va_end(ap);
    finish(c);
}

static void watch(wscli_t *c, int events)
{
    if (c->state == WSCLI_ENDED || events == c->events)
        return;
    /* uv_poll_start removes and re-adds the epoll entry: done only when the set changes. */
    c->events = events;
    uv_poll_start(&c->poll, events, on_poll);
}

/* Hands n bytes to the socket (kept if it is full). 0, or -errno after end(). */
static int put_raw(wscli_t *c, const void *p, size_t n)
{
    int rc = txq_send(&c->tx, c->fd, p, n, WSCLI_KEPT_MAX_BYTES);
    if (rc == -ENOBUFS) {
        fail(c, "the bench's send buffer is full: the peer does not read");
        return rc;
    }
    if (rc < 0) {
        fail(c, "connection lost: send: %s", strerror(-rc));
        return rc;
    }
    if (txq_pending(&c->tx))
        watch(c, UV_READABLE | UV_WRITABLE);
    return 0;
}

/* Sends what TLS has encrypted. */
static int flush_tls(wscli_t *c)
{
    size_t n;
    while ((n = tlsc_take_out(c->tls, tl_tls_buf, sizeof(tl_tls_buf))) > 0)
        if (put_raw(c, tl_tls_buf, n) < 0)
            return -1;
    return 0;
}

/* Sends n bytes of the WebSocket stream: through TLS for wss://. */
static int put(wscli_t *c, const void *p, size_t n)
{
    if (c->tls == NULL)
        return put_raw(c, p, n);
    if (tlsc_write(c->tls, p, n) < 0) {
        fail(c, "tls write failed");
        return -EPROTO;
    }
    return flush_tls(c);
}

/* Sends one control frame (a pong, a close). */
static int put_control(wscli_t *c, unsigned op, const uint8_t *payload, size_t len)
{
    uint8_t f[WSF_HEADER_MAX + WSF_CONTROL_MAX];
    size_t at = 0;
    if (len > WSF_CONTROL_MAX)
        len = WSF_CONTROL_MAX;
    if (len > 0)
        memcpy(f + WSF_HEADER_MAX, payload, len);
    wsf_client_frame_append(f, &at, len, op);
    return put(c, f, at);
}

static void send_request(wscli_t *c)
{
    c->state = WSCLI_UPGRADING;
    if (put(c, c->request, c->request_len) < 0)
        return;
    free(c->request);
    c->request = NULL;
}

/* ---- Reading ------------------------------------------------------------------------------ */

static void on_close_frame(wscli_t *c, const uint8_t *p, size_t len)
{
    c->end.peer_closed = true;
    if (len >= 2) {
        c->end.close_code = p[0] << 8 | p[1];
        size_t n =
            len - 2 < sizeof(c->end.close_text) - 1 ? len - 2 : sizeof(c->end.close_text) - 1;
        memcpy(c->end.close_text, p + 2, n);
        c->end.close_text[n] = '\0';
    }
    /* RFC 6455 5.5.1: echo the code unless ours went first; then the socket goes. */
    if (!c->end.close_sent && put_control(c, WSF_OP_CLOSE, p, len >= 2 ? 2 : 0) < 0)
        return;
    finish(c);
}

static void on_chunk(wscli_t *c, const wsf_chunk_t *ch)
{
    switch (ch->kind) {
    case WSF_DATA: {
        if (ch->first)
            c->discarding = false;
        if (c->discarding)
            return;
        const uint8_t *msg;
        size_t len;
        int rc = wsmsg_add(&c->msg, ch, c->max_msg, &msg, &len);
        if (rc == WSMSG_TOO_BIG) {
            c->discarding = !ch->last;
            c->ops->too_big(c->arg);
        } else if (rc == WSMSG_DONE) {
            c->ops->message(c->arg, c->msg.binary, msg, len);
        }
        return;
    }
    case WSF_PING:
        if (!c->end.close_sent)
            put_control(c, WSF_OP_PONG, ch->data, ch->len);
        return;
    case WSF_PONG:
        return;
    case WSF_CLOSE:
        on_close_frame(c, ch->data, ch->len);
        return;
    }
}

/*
 * Parses the frames in n bytes at p, then keeps what is left (the start of a frame) at the
 * buffer's start. A frame that fits in the buffer is parsed only once it is whole, so its
 * message is handed on where it lies; a larger one goes through in pieces and is reassembled.
 */
static void on_frames(wscli_t *c, const uint8_t *p, size_t n)
{
    wsf_chunk_t ch;
    while (n > 0 && c->state == WSCLI_OPEN) {
        if (!c->frames.in_frame && c->frames.hdr_have == 0) {
            size_t need = wsf_frame_size(p, n);
            if (need == 0 || (need > n && need <= WSCLI_RX_BYTES))
                break;
        }
        int rc = wsf_rx_next(&c->frames, &p, &n, &ch);
        if (rc < 0) {
            uint8_t f[WSF_HEADER_MAX + 2];
            size_t at = 0;
            wsf_client_close_append(f, &at, WS_CODE_PROTOCOL);
            if (!c->end.close_sent && put(c, f, at) < 0)
                return;
            fail(c, "protocol error in the peer's frames");
            return;
        }
        if (rc == 0)
            break;
        on_chunk(c, &ch);
    }
    if (c->state == WSCLI_ENDED)
        return;
    memmove(c->rx, p, n);
    c->rx_have = n;
}

/* The response head, perhaps followed by the first frames. */
static void on_head(wscli_t *c)
{
    wshs_response_t r;
    int hl = wshs_parse_response((const char *)c->rx, c->rx_have, c->key, &r);
    if (hl == 0)
        return;
    if (hl < 0) {
        fail(c, "upgrade failed: %s", hl == -EMSGSIZE ? "response head too long" : "bad response");
        return;
    }
    if (!r.upgraded) {
        c->end.http_status = r.status;
        fail(c, "upgrade failed: HTTP %d%s", r.status,
             r.status == 101 ? " without a valid upgrade" : "");
        return;
    }
    c->state = WSCLI_OPEN;
    c->end.opened = true;
    c->ops->open(c->arg);
    on_frames(c, c->rx + hl, c->rx_have - (size_t)hl);
}

/* Plaintext has been added to the buffer. */
static void on_plain(wscli_t *c)
{
    if (c->state == WSCLI_UPGRADING)
        on_head(c);
    else if (c->state == WSCLI_OPEN)
        on_frames(c, c->rx, c->rx_have);
}

/* The peer closed the socket, or reading failed. */
static void on_eof(wscli_t *c, int err)
{
    const char *how = err ? strerror(err) : "closed by the peer";
    switch (c->state) {
    case WSCLI_TLS:
        fail(c, "tls handshake failed: %s", how);
        break;
    case WSCLI_UPGRADING:
        fail(c, "upgrade failed: connection %s", err ? how : "closed");
        break;
    default:
        fail(c, "connection lost%s%s", err ? ": " : "", err ? how : "");
    }
}

/* Ciphertext: the handshake's next step, then the plaintext it decrypts. */
static void on_tls_bytes(wscli_t *c, size_t n)
{
    if (tlsc_feed(c->tls, tl_tls_buf, n) < 0) {
        fail(c, "tls: out of memory");
        return;
    }
    if (c->state == WSCLI_TLS) {
        int r = tlsc_handshake(c->tls);
        if (flush_tls(c) < 0)
            return;
        if (r < 0) {
            const char *why = tlsc_verify_error(c->tls);
            fail(c, "tls handshake failed%s%s", why ? ": " : "", why ? why : "");
            return;
        }
        if (r == 0)
            return;
        send_request(c);
    }
    ssize_t got = 0;
    while (c->state != WSCLI_ENDED &&
           (got = tlsc_read(c->tls, c->rx + c->rx_have, WSCLI_RX_BYTES - c->rx_have)) > 0) {
        c->rx_have += (size_t)got;
        on_plain(c);
    }
    /* A read may have produced TLS output of its own (a key update's answer). */
    if (c->state != WSCLI_ENDED && flush_tls(c) == 0 && got < 0)
        on_eof(c, 0);
}

/* One recv() per readable event. */
static void on_readable(wscli_t *c)
{
    uint8_t *dst = c->tls ? tl_tls_buf : c->rx + c->rx_have;
    size_t room = c->tls ? sizeof(tl_tls_buf) : WSCLI_RX_BYTES - c->rx_have;
    ssize_t n;
    do {
        n = recv(c->fd, dst, room, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        on_eof(c, n < 0 ? errno : 0);
        return;
    }
    if (c->tls) {
        on_tls_bytes(c, (size_t)n);
        return;
    }
    c->rx_have += (size_t)n;
    on_plain(c);
}

/* ---- The socket --------------------------------------------------------------------------- */

static void on_connected(wscli_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        fail(c, "connect failed: %s", strerror(err));
        return;
    }
    watch(c, UV_READABLE);
    if (c->tls == NULL) {
        send_request(c);
        return;
    }
    c->state = WSCLI_TLS;
    if (tlsc_handshake(c->tls) < 0) {
        fail(c, "tls handshake failed");
        return;
    }
    flush_tls(c);
}

static void on_writable(wscli_t *c)
{
    int rc = txq_flush(&c->tx, c->fd);
    if (rc < 0) {
        fail(c, "connection lost: send: %s", strerror(-rc));
        return;
    }
    if (txq_pending(&c->tx))
        return;
    watch(c, UV_READABLE);
    if (c->state == WSCLI_OPEN && !c->end.close_sent)
        c->ops->drained(c->arg);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    wscli_t *c = h->data;
    if (c->state == WSCLI_TCP) {
        on_connected(c);
        return;
    }
    if (status < 0) {
        /* libuv reports POLLERR as UV_EBADF and stops watching: read what the socket still
         * holds (a close frame may precede a reset), then its real error. */
        for (int i = 0; i < WSCLI_ERROR_READS_MAX && c->state != WSCLI_ENDED; i++)
            on_readable(c);
        fail(c, "connection lost: socket error");
        return;
    }
    if (events & UV_READABLE)
        on_readable(c);
    if ((events & UV_WRITABLE) && c->state != WSCLI_ENDED)
        on_writable(c);
}

/* ---- Public ------------------------------------------------------------------------------- */

/* A nonblocking TCP socket without Nagle's delay, connecting to addr. */
static int open_socket(const struct sockaddr *addr, socklen_t addr_len, int *out)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        (connect(fd, addr, addr_len) != 0 && errno != EINPROGRESS)) {
        int err = errno;
        close(fd);
        return -err;
    }
    *out = fd;
    return 0;
}

int wscli_connect(uv_loop_t *loop, const wscli_cfg_t *cfg, const wscli_ops_t *ops, void *arg,
                  wscli_t **out)
{
    wscli_t *c = xcalloc(1, sizeof(*c));
    c->fd = -1;
    c->ops = ops;
    c->arg = arg;
    c->max_msg = cfg->max_msg;
    wshs_new_key(c->key);
    c->request = xmalloc(WSCLI_REQUEST_MAX);
    int n =
        wshs_request(c->request, WSCLI_REQUEST_MAX, cfg->host_hdr, cfg->path, cfg->bearer, c->key);
    int rc = n < 0 ? n : 0;
    c->request_len = n < 0 ? 0 : (size_t)n;
    if (rc == 0 && cfg->tls_host && (c->tls = tlsc_new(cfg->tls_host)) == NULL)
        rc = -EPROTO;
    if (rc == 0)
        rc = open_socket(cfg->addr, cfg->addr_len, &c->fd);
    if (rc == 0 && (rc = uv_poll_init_socket(loop, &c->poll, c->fd)) != 0)
        close(c->fd);
    if (rc != 0) {
        tlsc_free(c->tls);
        free(c->request);
        free(c);
        return rc;
    }
    c->rx = xmalloc(WSCLI_RX_BYTES);
    c->poll.data = c;
    c->state = WSCLI_TCP;
    c->events = UV_WRITABLE; /* the connect's outcome */
    uv_poll_start(&c->poll, UV_WRITABLE, on_poll);
    *out = c;
    return 0;
}

int wscli_send(wscli_t *c, const void *p, size_t n)
{
    if (c->state != WSCLI_OPEN || c->end.close_sent)
        return -EPIPE;
    return put(c, p, n);
}

int wscli_send_close(wscli_t *c, const void *p, size_t n)
{
    int rc = wscli_send(c, p, n);
    if (rc == 0)
        c->end.close_sent = true;
    return rc;
}

void wscli_close(wscli_t *c, uint16_t code)
{
    if (c->state != WSCLI_OPEN) {
        finish(c);
        return;
    }
    if (c->end.close_sent)
        return;
    uint8_t f[WSF_HEADER_MAX + 2];
    size_t at = 0;
    wsf_client_close_append(f, &at, code);
    wscli_send_close(c, f, at);
}

bool wscli_blocked(const wscli_t *c)
{
    return txq_pending(&c->tx);
}

void wscli_abort(wscli_t *c, const char *why)
{
    if (why)
        fail(c, "%s", why);
    else
        finish(c);
}
