/*
 * The send path: what actors call to write to a connection (net_ws_send_*, net_ws_close,
 * net_http_respond), the inbox that carries it to the connection's network thread, and the
 * per-connection queue of frames waiting for the socket.
 *
 * An actor's frame is built once, with LWS_PRE bytes of headroom, and posted to the owning
 * thread's MPSC inbox; only the push that makes the inbox non-empty writes the thread's eventfd,
 * so a burst of sends wakes the thread once. The thread drains a batch (send_inbox_net), drops
 * frames whose connection has gone, and hands the rest to the connection's type: server
 * connections (ws.c, http.c) and outbound ones (wsc.c) frame and write their own.
 */
#include <ck_pr.h>
#include <string.h>
#include <sys/eventfd.h>

#include "base/util.h"
#include "net/net_int.h"
#include "net/srv.h"
#include "net/wsframe.h"

/* ---- Frames and the inbox (any thread) ------------------------------------------------------ */

static void out_free(msg_t *m)
{
    net_out_t *o = (net_out_t *)m;
    free(o->extra_headers);
    msg_block_free(o);
}

net_out_t *net_out_new(conn_id_t c, out_kind_t kind, size_t len)
{
    /* The frame's bytes are the caller's to fill: only the header is zeroed. */
    net_out_t *o = (net_out_t *)msg_new_head(0, sizeof(net_out_t) + LWS_PRE + len + 1,
                                             sizeof(net_out_t));
    o->buf[LWS_PRE + len] = '\0';
    o->hdr.free_fn = out_free;
    o->conn = c;
    o->kind = (uint8_t)kind;
    o->len = len;
    return o;
}

void net_post_thread(netthr_t *thr, net_out_t *o)
{
    /*
     * One wake per batch: only the push that made the inbox non-empty signals, and only when
     * the thread may be asleep in poll. An awake thread looks at its inbox before it polls
     * (thread.c, on_flush_prepare): it sets `polling`, then reads the inbox's count; we pushed
     * (a full barrier: the count's fetch-and-add), then read `polling`. One of us sees the
     * other's write, so the message is never left behind a sleeping thread.
     */
    if (mbox_push_mp(&thr->inbox, &o->hdr) == MBOX_WAS_EMPTY) {
        ck_pr_fence_memory();
        if (ck_pr_load_int(&thr->polling))
            eventfd_write(thr->wake_fd, 1);
    }
}

void net_post(net_out_t *o)
{
    unsigned idx = (unsigned)(o->conn >> NET_ID_THREAD_SHIFT);
    if (g_net.threads == NULL || idx >= (unsigned)g_net.n_threads) {
        msg_free(&o->hdr);
        return;
    }
    net_post_thread(&g_net.threads[idx], o);
}

/* ---- The send API (any thread) -------------------------------------------------------------- */

void net_ws_send_text(conn_id_t c, const char *s, size_t len)
{
    net_out_t *o = net_out_new(c, OUT_TEXT, len);
    memcpy(o->buf + LWS_PRE, s, len);
    net_post(o);
}

void net_ws_send_text2(conn_id_t c, const char *a, size_t alen, const char *b, size_t blen)
{
    /* The second frame is framed here (a server's header is pure, no mask); ws.c frames the
     * first as it does any message. */
    uint8_t hdr[WSF_SERVER_HEADER_MAX];
    size_t hb = wsf_server_header(hdr + sizeof(hdr), blen, WSF_OP_TEXT);
    net_out_t *o = net_out_new(c, OUT_TEXT, alen + hb + blen);
    uint8_t *p = o->buf + LWS_PRE;
    memcpy(p, a, alen);
    memcpy(p + alen, hdr + sizeof(hdr) - hb, hb);
    memcpy(p + alen + hb, b, blen);
    o->first_len = alen;
    net_post(o);
}

void net_ws_send_binary(conn_id_t c, const void *p, size_t len)
{
    net_out_t *o = net_out_new(c, OUT_BINARY, len);
    if (len > 0)
        memcpy(o->buf + LWS_PRE, p, len);
    net_post(o);
}

void net_ws_protocol_error(conn_id_t c, const char *code, const char *message)
{
    size_t n = strlen(message);
    net_out_t *o = net_out_new(c, OUT_PROTO_ERROR, n);
    str_copy(o->text, code, sizeof(o->text));
    memcpy(o->buf + LWS_PRE, message, n);
    o->buf[LWS_PRE + n] = '\0';
    net_post(o);
}

void net_ws_close(conn_id_t c, ws_close_t why)
{
    net_out_t *o = net_out_new(c, OUT_CLOSE, 0);
    o->why = (uint8_t)why;
    net_post(o);
}

void net_http_respond(conn_id_t c, int status, const char *body, size_t len,
                      const char *extra_headers)
{
    net_http_respond_typed(c, status, NULL, body, len, extra_headers);
}

void net_http_respond_typed(conn_id_t c, int status, const char *content_type, const char *body,
                            size_t len, const char *extra_headers)
{
    net_out_t *o = net_out_new(c, OUT_HTTP, body ? len : 0);
    if (content_type)
        str_copy(o->text, content_type, sizeof(o->text));
    o->code = (uint16_t)status;
    if (body)
        memcpy(o->buf + LWS_PRE, body, len);
    if (extra_headers)
        o->extra_headers = xstrdup(extra_headers);
    net_post(o);
}

/* ---- Per-connection queue (network thread) -------------------------------------------------- */

void send_queue(net_conn_t *c, net_out_t *o)
{
    o->hdr.link.next = NULL;
    if (c->out_tail)
        c->out_tail->hdr.link.next = &o->hdr.link;
    else
        c->out_head = o;
    c->out_tail = o;
    if (o->kind != OUT_CLOSE) {
        c->out_count++;
        c->out_bytes += o->len;
    }
    lws_callback_on_writable(c->wsi);
}

/* Bytes waiting to be sent to c's peer: our queue, and what lws holds of the frame it is writing
 * (lws_write() takes a whole frame, hands the socket what it will take, at most about
 * pt_serv_buf_size at a time, and keeps the rest on the wsi's buflist_out; we hand it the next
 * frame only when that is empty, so it never holds more than one frame). The kernel's send
 * buffer is not ours to count: it is not this process's memory. */
static size_t unsent(const net_conn_t *c)
{
    if (c->kind == NET_CONN_SERVER)
        return srv_unsent((const srv_conn_t *)c);
    return lws_partial_buffered(c->wsi) ? c->lws_held : 0;
}

static size_t out_pending(const net_conn_t *c)
{
    return c->out_bytes + unsent(c);
}

static void too_slow(net_conn_t *c, net_out_t *o);

bool send_queue_data(net_conn_t *c, net_out_t *o)
{
    if (c->out_count >= g_net.cfg.out_cap || out_pending(c) + o->len > NET_OUT_MAX_BYTES) {
        too_slow(c, o);
        return false;
    }
    send_queue(c, o);
    return true;
}

static net_out_t *pop(net_conn_t *c)
{
    net_out_t *o = c->out_head;
    if (o == NULL)
        return NULL;
    c->out_head = (net_out_t *)o->hdr.link.next;
    if (c->out_head == NULL)
        c->out_tail = NULL;
    if (o->kind != OUT_CLOSE) {
        c->out_count--;
        c->out_bytes -= o->len;
    }
    return o;
}

net_out_t *send_next(net_conn_t *c)
{
    net_out_t *o = pop(c);
    if (o && (o->kind == OUT_TEXT || o->kind == OUT_BINARY))
        c->lws_held = o->len; /* the caller hands it to lws now */
    return o;
}

void send_clear(net_conn_t *c)
{
    net_out_t *o;
    while ((o = pop(c)) != NULL)
        msg_free(&o->hdr);
}

void send_queue_close(net_conn_t *c, ws_close_t why)
{
    net_out_t *o = net_out_new(c->id, OUT_CLOSE, 0);
    o->why = (uint8_t)why;
    send_queue(c, o);
    send_arm_close_kill(c);
}

void send_arm_close_kill(net_conn_t *c)
{
    /*
     * If the peer does not read, the close frame may never leave: do not wait forever. A server
     * connection is a raw socket to lws, which would first spend up to 5 s more trying to flush
     * what it holds (core-net/close.c, LRS_FLUSHING_BEFORE_CLOSE); its own timer (srv.c) drops
     * the socket instead.
     */
    if (c->kind == NET_CONN_SERVER)
        lws_set_timer_usecs(c->wsi, (lws_usec_t)NET_CLOSE_KILL_S * LWS_US_PER_SEC);
    else
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, NET_CLOSE_KILL_S);
}

bool send_keepalive(net_conn_t *c, uint64_t last_rx_ns, uint64_t *last_ping_ns, uint64_t now_ns)
{
    if (now_ns - last_rx_ns >= (uint64_t)NET_PONG_TIMEOUT_S * NS_PER_SEC)
        return true;
    if (now_ns - *last_ping_ns >= (uint64_t)NET_PING_INTERVAL_S * NS_PER_SEC) {
        *last_ping_ns = now_ns;
        send_queue(c, net_out_new(c->id, OUT_PING, 0));
    }
    return false;
}

/* ---- Draining the inbox (network thread) ---------------------------------------------------- */

static bool conn_is_open(const net_conn_t *c)
{
    return c->kind == NET_CONN_SERVER ? ws_is_open((const srv_conn_t *)c) : wsc_is_open(c);
}

static void conn_close(net_conn_t *c, ws_close_t why)
{
    if (c->kind == NET_CONN_SERVER)
        ws_close_net(srv_conn_of(c), why);
    else
        wsc_close_net(c, why);
}

/* A peer that lets more than the bound pile up is closed rather than holding our memory. */
static void too_slow(net_conn_t *c, net_out_t *o)
{
    msg_free(&o->hdr);
    send_clear(c);
    conn_close(c, WS_CLOSE_TOO_SLOW);
}

/* A text or binary frame for an open WebSocket of either direction. */
static void send_data(net_conn_t *c, net_out_t *o)
{
    if (!conn_is_open(c)) {
        msg_free(&o->hdr);
        return;
    }
    /*
     * Nothing queued and the socket takes data: write now. Asking lws for a writeable callback
     * instead toggles POLLOUT, which libuv turns into two epoll_ctl calls per frame. This runs
     * from our own uv callback, not inside an lws callback. What the socket does not take is
     * kept (srv.c for server sockets, lws for outbound ones); unsent() then says so and later
     * frames queue. (lws_send_pipe_choked() would also poll() the socket: one more syscall per
     * frame.)
     */
    if (c->out_head == NULL && unsent(c) == 0) {
        c->lws_held = o->len;
        int rc = c->kind == NET_CONN_SERVER ? ws_write_data_net(srv_conn_of(c), o)
                                            : wsc_write_data_net(c, o);
        msg_free(&o->hdr);
        if (rc != 0)
            conn_close(c, WS_CLOSE_INTERNAL);
        return;
    }
    send_queue_data(c, o);
}

/* A frame or request for one connection; o is freed or kept here. */
static void handle_conn_out(netthr_t *thr, net_out_t *o)
{
    net_conn_t *c = conntab_lookup(thr, o->conn);
    if (c == NULL) {
        msg_free(&o->hdr); /* the connection has gone */
        return;
    }
    bool server = c->kind == NET_CONN_SERVER;
    switch (o->kind) {
    case OUT_TEXT:
    case OUT_BINARY:
        send_data(c, o);
        return;
    case OUT_HTTP:
        if (server) {
            http_respond_net(srv_conn_of(c), o);
            return;
        }
        break;
    case OUT_CLOSE:
        conn_close(c, (ws_close_t)o->why);
        break;
    case OUT_PROTO_ERROR:
        if (server)
            ws_protocol_error_net(srv_conn_of(c), o->text, (const char *)o->buf + LWS_PRE);
        break;
    case OUT_ROUTE:
        if (!server)
            wsc_route_net(c, o);
        break;
    default:
        break;
    }
    msg_free(&o->hdr);
}

/* Closes every open server WebSocket for shutdown; outbound ones close with their sessions. */
static void drain_net(netthr_t *thr)
{
    for (uint32_t i = 0; i < thr->conns.n_slots; i++) {
        net_conn_t *c = thr->conns.slots[i];
        if (c && c->kind == NET_CONN_SERVER && ws_is_open(srv_conn_of(c)))
            ws_drain_net(srv_conn_of(c));
    }
}

static void handle_out(netthr_t *thr, net_out_t *o)
{
    switch (o->kind) {
    case OUT_STOP:
        thr->stopping = true; /* torn down at the end of this wake (thread.c) */
        break;
    case OUT_DRAIN:
        drain_net(thr);
        break;
    case OUT_CONNECT:
        wsc_start_net(thr, o);
        break;
    case OUT_FETCH:
    case OUT_FETCH_CANCEL:
        fetch_command_net(thr, o);
        break;
    case OUT_REDIS:
        redis_command_net(thr, o);
        break;
    case OUT_REDIS_SUB:
        redis_sub_command_net(thr, o);
        break;
    case OUT_PG:
        pg_command_net(thr, o);
        break;
    case OUT_PROC_SPAWN:
    case OUT_PROC_WRITE:
    case OUT_PROC_KILL:
    case OUT_PROC_SHUTDOWN:
        proc_command_net(thr, o); /* frees o */
        return;
    default:
        handle_conn_out(thr, o);
        return;
    }
    msg_free(&o->hdr);
}

bool send_inbox_net(netthr_t *thr)
{
    for (int i = 0; i < NET_INBOX_BATCH; i++) {
        msg_t *m = mbox_pop_sc(&thr->inbox);
        if (m == NULL)
            break;
        handle_out(thr, (net_out_t *)m);
    }
    return mbox_done_sc(&thr->inbox) > 0;
}
