/*
 * WebSocket server side of the network threads: upgrade checks, message limits, JSON parsing
 * and protocol errors, ping/pong, ordered writes and closes (SPEC 5, 14). lws frames and parses
 * these connections' frames; the outbound connections' own framing is in wsc.c.
 * Thread: net (every function here).
 */
#include <ck_pr.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/srv.h"
#include "net/wsproto.h"

/* lws 4.1's own opcode for a close frame (private-lib-roles-ws.h: LWS_WRITE_CLOSE 4), which
 * lws_write() accepts; the public header leaves it out because lws_close_reason() normally
 * sends the frame. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)

static const net_ws_route_t *find_route(const char *path)
{
    for (int i = 0; i < g_net.n_ws_routes; i++)
        if (strcmp(g_net.ws_routes[i]->path, path) == 0)
            return g_net.ws_routes[i];
    return NULL;
}

static void send_error_net(srv_conn_t *c, const char *code, const char *message)
{
    sbuf_t b = SBUF_INIT;
    net_error_json(&b, true, code, message);
    net_out_t *o = net_out_new(c->base.id, OUT_TEXT, b.len);
    memcpy(o->buf + LWS_PRE, b.data, b.len);
    sbuf_destroy(&b);
    send_queue_data(&c->base, o); /* bounded: a client may send errors and never read */
}

static void send_text_net(srv_conn_t *c, const char *s)
{
    size_t n = strlen(s);
    net_out_t *o = net_out_new(c->base.id, OUT_TEXT, n);
    memcpy(o->buf + LWS_PRE, s, n);
    send_queue_data(&c->base, o); /* bounded: a client may ping and never read */
}

bool ws_is_open(const srv_conn_t *c)
{
    return c->state == CONN_WS_OPEN;
}

/*
 * Closes with why's code and reason after what is queued. A client that does not take its
 * frames (more than out_cap or NET_OUT_MAX_BYTES waiting) is closed at once as
 * WS_CLOSE_TOO_SLOW instead (send.c).
 */
void ws_close_net(srv_conn_t *c, ws_close_t why)
{
    if (c->state != CONN_WS_OPEN || why <= WS_CLOSE_NONE || why >= WS_CLOSE_COUNT_)
        return;
    c->state = CONN_WS_CLOSING;
    c->close_why = why;
    send_queue_close(&c->base, why);
}

/* A protocol error (invalid_json, invalid_event, unsupported_event): answer it, and close the
 * socket (too many errors) when it is the NET_ERR_WINDOW-th within NET_ERR_WINDOW_S seconds. */
void ws_protocol_error_net(srv_conn_t *c, const char *code, const char *message)
{
    if (c->state != CONN_WS_OPEN)
        return;
    uint64_t now = clock_now_ns();
    send_error_net(c, code, message);
    c->err_ts[c->err_n % NET_ERR_WINDOW] = now;
    c->err_n++;
    /* The ring holds the last NET_ERR_WINDOW error times; the oldest is the next to go. */
    uint64_t oldest = c->err_ts[c->err_n % NET_ERR_WINDOW];
    if (c->err_n >= NET_ERR_WINDOW && now - oldest <= NET_ERR_WINDOW_S * NS_PER_SEC)
        ws_close_net(c, WS_CLOSE_TOO_MANY_ERRORS);
}

/* Tells the actor that the client sent a frame it will not see (ping, protocol error), for
 * routes that track client activity (the voice session's idle timeout). */
static void post_activity(srv_conn_t *c, bool refused)
{
    if (c->target == NULL || !c->ws_route->track_activity)
        return;
    net_ws_activity_msg_t *m = MSG_NEW(net_ws_activity_msg_t, NET_MSG_WS_ACTIVITY);
    m->conn = c->base.id;
    m->refused = refused;
    actor_send(c->target, &m->hdr);
}

void ws_drain_net(srv_conn_t *c)
{
    send_error_net(c, "server_shutting_down", "the server is shutting down");
    ws_close_net(c, WS_CLOSE_SHUTDOWN);
}

void ws_sweep_net(srv_conn_t *c, uint64_t now_ns)
{
    if (c->state == CONN_WS_OPEN &&
        send_keepalive(&c->base, c->last_rx_ns, &c->last_ping_ns, now_ns))
        ws_close_net(c, WS_CLOSE_PING_TIMEOUT);
}

static void post_closed(srv_conn_t *c)
{
    if (c->target == NULL)
        return;
    net_ws_closed_msg_t *m = netmsg_closed_new(c->base.id, c->close_why, c->peer_close_code);
    actor_send(c->target, &m->hdr);
    actor_unref(c->target);
    c->target = NULL;
}

static void on_established(struct lws *wsi, srv_conn_t *c)
{
    char path[256];
    c->state = CONN_WS_OPEN;
    ck_pr_inc_int(&c->base.thr->ws_open);
    c->last_rx_ns = c->last_ping_ns = clock_now_ns();
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
        path[0] = '\0';
    http_resolve_peer(c);
    char *origin = http_hdr_dup(wsi, WSI_TOKEN_ORIGIN);
    bool origin_ok = http_origin_allowed(wsi, origin);
    free(origin);
    c->ws_route = find_route(path);
    if (c->ws_route == NULL) {
        ws_close_net(c, WS_CLOSE_UNAUTHORIZED);
        return;
    }
    if (!origin_ok) {
        ws_close_net(c, WS_CLOSE_FORBIDDEN_ORIGIN);
        return;
    }
    if (net_draining()) {
        ws_close_net(c, WS_CLOSE_SHUTDOWN);
        return;
    }
    char *query = http_query_dup(wsi);
    ws_close_t why = WS_CLOSE_AT_CAPACITY;
    c->target = c->ws_route->target(c->ws_route->arg, &c->peer, query, &why);
    if (c->target == NULL) {
        free(query);
        ws_close_net(c, why);
        return;
    }
    net_ws_open_msg_t *m = MSG_NEW(net_ws_open_msg_t, NET_MSG_WS_OPEN);
    m->conn = c->base.id;
    m->path = c->ws_route->path;
    m->query = query;
    m->peer = c->peer;
    m->hdr.free_fn = netmsg_open_free;
    actor_send(c->target, &m->hdr);
}

/* A whole text message has arrived. */
static void on_text(srv_conn_t *c, const char *s, size_t len)
{
    metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_IN][METRIC_KIND_TEXT], 1);
    cJSON *j = NULL;
    bool refused = true;
    switch (wsp_classify_untyped(s, len, c->ws_route->types, c->ws_route->untyped, &j)) {
    case WSP_PING_TEXT:
        refused = false;
        send_text_net(c, "pong");
        break;
    case WSP_PING_EVENT:
        refused = false;
        send_text_net(c, "{\"type\":\"pong\"}");
        break;
    case WSP_INVALID_JSON:
        ws_protocol_error_net(c, "invalid_json", "the frame is not valid JSON");
        break;
    case WSP_INVALID_EVENT:
        ws_protocol_error_net(c, "invalid_event",
                              "an event is a JSON object with a string \"type\"");
        break;
    case WSP_UNSUPPORTED: {
        char msg[160];
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        snprintf(msg, sizeof(msg), "event type \"%.100s\" is not supported here",
                 type->valuestring);
        cJSON_Delete(j);
        ws_protocol_error_net(c, "unsupported_event", msg);
        break;
    }
    case WSP_EVENT:
        if (c->target == NULL) {
            cJSON_Delete(j);
            return;
        }
        net_ws_text_msg_t *m = MSG_NEW(net_ws_text_msg_t, NET_MSG_WS_TEXT);
        m->hdr.free_fn = netmsg_text_free;
        m->conn = c->base.id;
        m->json = j;
        m->type = cJSON_GetObjectItemCaseSensitive(j, "type")->valuestring;
        m->len = len;
        actor_send(c->target, &m->hdr);
        return; /* the actor sees this frame itself */
    }
    post_activity(c, refused);
}

static void on_binary(srv_conn_t *c, const uint8_t *p, size_t len)
{
    metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_IN][METRIC_KIND_BINARY], 1);
    if (c->ws_route->max_binary_bytes == 0) {
        ws_protocol_error_net(c, "unsupported_event", "binary frames are not accepted here");
        post_activity(c, true);
        return;
    }
    if (c->target == NULL)
        return;
    net_ws_binary_msg_t *m =
        (net_ws_binary_msg_t *)msg_new(NET_MSG_WS_BINARY, sizeof(net_ws_binary_msg_t) + len);
    m->hdr.flags = MSG_F_AUDIO;
    m->hdr.sent_ns = c->last_rx_ns; /* the relay latency starts here */
    m->conn = c->base.id;
    m->len = len;
    memcpy(m->data, p, len);
    actor_send(c->target, &m->hdr);
}

/* Sets the close frame lws sends when the callback returns -1 (it works from RECEIVE and
 * WS_PEER_INITIATED_CLOSE, and from WS_SERVER_DROP_PROTOCOL when lws closes by itself). */
static void close_now(struct lws *wsi, ws_close_t why)
{
    const char *reason = ws_close_reason(why);
    lws_close_reason(wsi, (enum lws_close_status)ws_close_code(why), (unsigned char *)reason,
                     strlen(reason));
}

/* Closes at once with why, for a client breaking RFC 6455; returns -1 for lws. */
static int fail_now(struct lws *wsi, srv_conn_t *c, ws_close_t why)
{
    if (c->state == CONN_WS_OPEN) {
        c->state = CONN_WS_CLOSING;
        c->close_why = why;
    }
    close_now(wsi, why);
    return -1;
}

/* A chunk from a client; returns -1 (after setting the close) when the message is too big. */
static int on_receive(struct lws *wsi, srv_conn_t *c, const void *in, size_t len)
{
    c->last_rx_ns = clock_now_ns();
    if (c->state != CONN_WS_OPEN)
        return 0; /* closing: ignore the rest */
    wsf_chunk_t ch = {.kind = WSF_DATA,
                      .data = in,
                      .len = len,
                      .binary = lws_frame_is_binary(wsi),
                      .first = lws_is_first_fragment(wsi),
                      .frame_left = lws_remaining_packet_payload(wsi)};
    ch.last = lws_is_final_fragment(wsi) && ch.frame_left == 0;
    bool binary = ch.first ? ch.binary : c->rx.binary;
    size_t max = binary ? c->ws_route->max_binary_bytes : c->ws_route->max_text_bytes;
    if (binary && max == 0)
        max = c->ws_route->max_text_bytes; /* refused anyway; bound the buffering */
    const uint8_t *msg;
    size_t n;
    int rc = wsmsg_add(&c->rx, &ch, max, &msg, &n);
    if (rc == WSMSG_TOO_BIG) /* the server side may return -1 mid-frame (unlike wsc.c) */
        return fail_now(wsi, c, WS_CLOSE_TOO_BIG);
    if (rc == WSMSG_MORE)
        return 0;
    if (!binary && !wsp_utf8_valid(msg, n)) {
        /* What lws did when it validated: 1007, and the end is reported as the peer's. */
        close_now(wsi, WS_CLOSE_BAD_UTF8);
        return -1;
    }
    if (binary)
        on_binary(c, msg, n);
    else
        on_text(c, (const char *)msg, n);
    return 0;
}

int ws_write_data_net(srv_conn_t *c, net_out_t *o)
{
    bool text = o->kind == OUT_TEXT;
    metric_inc(
        &g_metrics.ws_frames_total[METRIC_DIR_OUT][text ? METRIC_KIND_TEXT : METRIC_KIND_BINARY],
        1);
    int n =
        lws_write(c->base.wsi, o->buf + LWS_PRE, o->len, text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
    return n < (int)o->len ? -1 : 0;
}

/* Writes the next queued frame; returns -1 to close the connection. */
static int on_writeable(struct lws *wsi, srv_conn_t *c)
{
    net_out_t *o = send_next(&c->base);
    if (o == NULL)
        return 0;
    int rc = 0;
    switch (o->kind) {
    case OUT_CLOSE: {
        /*
         * We write the close frame ourselves and drop the socket. With this lws build, the
         * documented lws_close_reason() + return -1 works from RECEIVE but, from
         * SERVER_WRITEABLE, dropped the socket without sending the frame (peers saw 1006).
         * RFC 6455 7.1.1 lets the server close TCP right after its close frame.
         */
        ws_close_t why = (ws_close_t)o->why;
        uint16_t code = ws_close_code(why);
        const char *reason = ws_close_reason(why);
        size_t rl = strlen(reason);
        unsigned char frame[LWS_PRE + 2 + WSF_CONTROL_MAX];
        frame[LWS_PRE] = (unsigned char)(code >> 8);
        frame[LWS_PRE + 1] = (unsigned char)(code & 0xff);
        memcpy(frame + LWS_PRE + 2, reason, rl);
        lws_write(wsi, frame + LWS_PRE, 2 + rl, WS_WRITE_CLOSE);
        rc = -1;
        break;
    }
    case OUT_PING:
        lws_write(wsi, o->buf + LWS_PRE, 0, LWS_WRITE_PING);
        break;
    default:
        rc = ws_write_data_net(c, o);
    }
    msg_free(&o->hdr);
    if (rc == 0 && c->base.out_head)
        lws_callback_on_writable(wsi);
    return rc;
}

/*
 * The client's close frame (after lws has turned codes below 1000, 1004-1006 and 1012-2999 into
 * 1002). A valid one is echoed by lws when we return 0 (RFC 6455 5.5.1). lws passes codes of
 * 5000 and up, a one-byte payload and any reason bytes as they are: those are answered 1002, and
 * a reason that is not UTF-8 1007 (RFC 6455 7.4.1, 8.1), instead of the echo.
 */
static int on_peer_close(struct lws *wsi, srv_conn_t *c, const uint8_t *p, size_t len)
{
    c->peer_close_code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : WS_CODE_NO_STATUS;
    if (len == 1 || (len >= 2 && !ws_close_code_valid(c->peer_close_code)))
        return fail_now(wsi, c, WS_CLOSE_PROTOCOL_ERROR);
    if (len > 2 && !wsp_utf8_valid(p + 2, len - 2))
        return fail_now(wsi, c, WS_CLOSE_BAD_UTF8);
    return 0;
}

/* The socket is still there for a close frame: not at EOF, no error pending. */
static bool socket_usable(struct lws *wsi)
{
    uint8_t b;
    ssize_t n = recv(lws_get_socket_fd(wsi), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/*
 * lws is closing an open WebSocket that neither we nor the client closed. lws refuses some frames
 * by returning -1 without setting a close reason, and then drops the socket without a close
 * frame: a control frame with a 16- or 64-bit length (a ping or close over 125 bytes) and a
 * 64-bit length with its top bit set (roles/ws/ops-ws.c, lws_ws_rx_sm). This callback comes just
 * before lws decides whether to send a close frame (core-net/close.c: close_via_role_protocol
 * sends one when a reason is set), so setting 1002 here gets it sent. Frames lws refuses with a
 * reason of its own (RSV bits, reserved opcodes, fragmented control frames, stray
 * continuations) already close 1002 and are left alone, as are a socket at EOF or in error and
 * the teardown of the thread, when no frame can or need be sent.
 */
static void on_lws_closing(struct lws *wsi, srv_conn_t *c)
{
    if (c->state != CONN_WS_OPEN || c->peer_close_code != 0 || c->base.thr->stopping ||
        lws_get_close_length(wsi) != 0 || !socket_usable(wsi))
        return;
    fail_now(wsi, c, WS_CLOSE_PROTOCOL_ERROR);
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        on_established(wsi, c);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, c, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        c->last_rx_ns = clock_now_ns();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return on_peer_close(wsi, c, in, len);
    case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
        on_lws_closing(wsi, c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c->state == CONN_WS_OPEN || c->state == CONN_WS_CLOSING) {
            ck_pr_dec_int(&c->base.thr->ws_open);
            c->state = CONN_WS_CLOSED; /* counted and reported once */
            post_closed(c);
        }
        return 0;
    default:
        return 1;
    }
}
