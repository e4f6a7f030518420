/*
 * The server connection's life (srv.h): created when the listener accepts a socket, freed when
 * lws destroys it, and the route of lws's raw-socket callbacks to the HTTP side (http.c) or,
 * once upgraded, the WebSocket side (ws.c). Thread: net (every function here).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "net/srv.h"

srv_conn_t *srv_conn_new(netthr_t *thr, const uint8_t peer16[16])
{
    if (!peerlim_try_add(peer16, http_peer_trusted(peer16)))
        return NULL;
    srv_conn_t *c = xcalloc(1, sizeof(*c));
    c->base.kind = NET_CONN_SERVER;
    if (conntab_add(thr, &c->base) != 0) {
        peerlim_remove(peer16);
        free(c);
        return NULL;
    }
    memcpy(c->raw_peer, peer16, 16);
    memcpy(c->counted, peer16, 16);
    c->state = CONN_HTTP;
    c->frames.server = true;
    sbuf_init(&c->in);
    sbuf_init(&c->pend);
    sbuf_init(&c->body);
    return c;
}

bool srv_recount(srv_conn_t *c, const uint8_t addr16[16])
{
    if (memcmp(c->counted, addr16, 16) == 0)
        return true;
    if (!peerlim_try_add(addr16, false))
        return false;
    peerlim_remove(c->counted);
    memcpy(c->counted, addr16, 16);
    return true;
}

void srv_destroy_net(srv_conn_t *c)
{
    ws_closed_net(c); /* a WebSocket lws drops without RAW_CLOSE still reports its end (once) */
    send_clear(&c->base);
    http_conn_destroy(c);
    sbuf_destroy(&c->in);
    sbuf_destroy(&c->pend);
    wsmsg_destroy(&c->rx);
    conntab_remove(&c->base);
    peerlim_remove(c->counted);
    free(c);
}

static int sock_of(const srv_conn_t *c)
{
    return lws_get_socket_fd(c->base.wsi);
}

size_t srv_unsent(const srv_conn_t *c)
{
    if (g_net.tls)
        return lws_partial_buffered(c->base.wsi) ? c->base.lws_held : 0;
    return c->pend.len - c->pend_off;
}

int srv_write(srv_conn_t *c, void *p, size_t len)
{
    if (g_net.tls)
        return lws_write(c->base.wsi, p, len, LWS_WRITE_RAW) < (int)len ? -1 : 0;
    size_t sent = 0;
    if (srv_unsent(c) == 0) {
        ssize_t n = send(sock_of(c), p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        sent = n > 0 ? (size_t)n : 0;
    }
    if (sent < len) {
        if (c->pend_off == c->pend.len) {
            sbuf_reset(&c->pend);
            c->pend_off = 0;
        }
        sbuf_append(&c->pend, (const char *)p + sent, len - sent);
        lws_callback_on_writable(c->base.wsi);
    }
    return 0;
}

/* Sends what is pending; returns 1 while some is left, 0 when all has gone, -1 on error. */
static int flush_pending(srv_conn_t *c)
{
    if (g_net.tls || srv_unsent(c) == 0)
        return 0;
    ssize_t n =
        send(sock_of(c), c->pend.data + c->pend_off, srv_unsent(c), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -1;
    if (n > 0)
        c->pend_off += (size_t)n;
    if (srv_unsent(c) > 0) {
        lws_callback_on_writable(c->base.wsi);
        return 1;
    }
    sbuf_reset(&c->pend);
    c->pend_off = 0;
    return 0;
}

/* Everything written has left: shut our side and linger, or (TLS) let lws close. */
static int linger(srv_conn_t *c)
{
    if (g_net.tls)
        return -1; /* lws sends what it holds before it closes */
    shutdown(sock_of(c), SHUT_WR);
    c->lingering = true;
    lws_set_timer_usecs(c->base.wsi, (lws_usec_t)NET_CLOSE_KILL_S * LWS_US_PER_SEC);
    return 0;
}

int srv_finish(srv_conn_t *c)
{
    c->finishing = true;
    if (srv_unsent(c) > 0 && !g_net.tls)
        return 0; /* linger() once it has left (srv_callback, RAW_WRITEABLE) */
    return linger(c);
}

int srv_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                 size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_RAW_RX:
        if (c->lingering)
            return 0; /* dropped: we are only waiting for the peer's end */
        if (c->state == CONN_HTTP) {
            sbuf_append(&c->in, in, len);
            http_rx_net(c);
        } else {
            ws_rx_net(c, in, len); /* lws's read buffer: ours to unmask in place */
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE: {
        int rc = flush_pending(c);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        if (c->lingering)
            return 0;
        if (c->finishing)
            return linger(c);
        return c->state == CONN_HTTP ? http_writeable_net(c) : ws_writeable_net(c);
    }
    case LWS_CALLBACK_TIMER:
        if (c->lingering)
            return -1; /* the peer did not close in time */
        if (c->state == CONN_HTTP)
            return http_deadline_net(c);
        if (c->state == CONN_WS_OPEN)
            return 0; /* the deadline of the request that upgraded (lws 4.1.6 has no working
                         cancel: LWS_SET_TIMER_USEC_CANCEL fires the timer at once) */
        /* A WebSocket's close frame did not leave in time (send_arm_close_kill()): the peer does
         * not read. Shut the socket so that lws drops it instead of flushing. */
        shutdown(lws_get_socket_fd(wsi), SHUT_RDWR);
        return -1;
    case LWS_CALLBACK_RAW_CLOSE:
        ws_closed_net(c);
        return 0;
    default:
        return 0;
    }
}
