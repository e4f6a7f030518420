/*
 * WebSocket server side of the network threads (SPEC 5, 14): the upgrade (RFC 6455 4.2), the
 * client's frames read by our own parser (wsframe.c: masks required, control frames checked),
 * message limits, JSON parsing and protocol errors, ping/pong, ordered writes and the closing
 * handshake. lws only carries the bytes (a raw socket). Thread: net (every function here).
 */
#include <ck_pr.h>
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/srv.h"
#include "net/wshs.h"
#include "net/wsproto.h"

#define WS_UPGRADE_RESPONSE_MAX 160

const net_ws_route_t *ws_find_route(const char *path)
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

/* Posts the event j (taken) of the len-byte frame to the connection's actor. */
static void post_text(srv_conn_t *c, cJSON *j, size_t len)
{
    if (c->target == NULL) {
        cJSON_Delete(j);
        return;
    }
    net_ws_text_msg_t *m = MSG_NEW(net_ws_text_msg_t, NET_MSG_WS_TEXT);
    m->hdr.free_fn = netmsg_text_free;
    m->hdr.sent_ns = c->last_rx_ns; /* a phone's media: the relay latency starts here */
    m->conn = c->base.id;
    m->json = j;
    m->type = cJSON_GetObjectItemCaseSensitive(j, "type")->valuestring;
    m->len = len;
    actor_send(c->target, &m->hdr);
}

/* Posts what the route's fast reader found in a text frame: its bytes, one copy, no tree. */
static void post_fast(srv_conn_t *c, const net_ws_fast_t *f)
{
    if (c->target == NULL)
        return;
    net_ws_binary_msg_t *m = netmsg_fast_new(c->base.id, f, c->last_rx_ns);
    actor_send(c->target, &m->hdr); /* a phone's media: the relay latency starts at last_rx_ns */
}

/* A whole text message has arrived. */
static void on_text(srv_conn_t *c, const char *s, size_t len)
{
    metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_IN][METRIC_KIND_TEXT], 1);
    cJSON *j = NULL;
    bool refused = true;
    net_ws_fast_t f = {0};
    if (c->ws_route->fast && c->ws_route->fast(s, len, &f)) {
        post_fast(c, &f);
        return; /* the actor sees this frame itself */
    }
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
        post_text(c, j, len);
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
        (net_ws_binary_msg_t *)msg_new_head(NET_MSG_WS_BINARY, sizeof(net_ws_binary_msg_t) + len,
                                             sizeof(net_ws_binary_msg_t));
    m->hdr.flags = MSG_F_AUDIO;
    m->hdr.sent_ns = c->last_rx_ns; /* the relay latency starts here */
    m->conn = c->base.id;
    m->kind = 0;
    m->num = -1;
    m->len = len;
    memcpy(m->data, p, len);
    actor_send(c->target, &m->hdr);
}

/* The connection is a WebSocket now: checks origin, drain and the route's admission, and tells
 * the route's actor it opened (or closes it with the reason). */
static void on_established(srv_conn_t *c)
{
    c->state = CONN_WS_OPEN;
    ck_pr_inc_int(&c->base.thr->ws_open);
    c->last_rx_ns = c->last_ping_ns = clock_now_ns();
    bool origin_ok = http_origin_allowed(c->head.fields[HH_HOST], c->head.fields[HH_ORIGIN]);
    if (!origin_ok) {
        ws_close_net(c, WS_CLOSE_FORBIDDEN_ORIGIN);
        return;
    }
    if (net_draining()) {
        ws_close_net(c, WS_CLOSE_SHUTDOWN);
        return;
    }
    char *query = xstrdup(c->query ? c->query : "");
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
    const char *origin = c->head.fields[HH_ORIGIN];
    m->origin = origin ? xstrdup(origin) : NULL;
    m->same_origin = http_same_origin(c->head.fields[HH_HOST], origin);
    m->hdr.free_fn = netmsg_open_free;
    actor_send(c->target, &m->hdr);
}

/*
 * The upgrade (RFC 6455 4.2.1): a GET with Upgrade: websocket on a WebSocket route. Connection
 * must name upgrade, the version be 13 and the key base64 of 16 bytes; no extension and no
 * subprotocol is ever accepted. Then 101, and the bytes after the head are frames.
 */
void ws_upgrade_net(srv_conn_t *c, const net_ws_route_t *route)
{
    char accept[WSHS_ACCEPT_CHARS + 1];
    const char *version = c->head.fields[HH_SEC_WEBSOCKET_VERSION];
    if (!httphead_has_token(c->head.fields[HH_CONNECTION], "upgrade") ||
        !wshs_accept(c->head.fields[HH_SEC_WEBSOCKET_KEY], accept) || c->body_left > 0 ||
        c->chunked) {
        c->close_after = true;
        http_error_net(c, 400, "invalid_request", "not a valid WebSocket upgrade request", NULL);
        return;
    }
    if (version == NULL || strcmp(version, "13") != 0) {
        c->close_after = true;
        http_error_net(c, 426, "invalid_request", "only WebSocket version 13 is spoken here",
                       "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    unsigned char resp[LWS_PRE + WS_UPGRADE_RESPONSE_MAX];
    int n = snprintf((char *)resp + LWS_PRE, WS_UPGRADE_RESPONSE_MAX,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (srv_write(c, resp + LWS_PRE, (size_t)n) != 0) {
        lws_set_timeout(c->base.wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
        return;
    }
    c->ws_route = route;
    on_established(c);
    httphead_free(&c->head);
    memset(&c->head, 0, sizeof(c->head));
    c->query = NULL;
    if (c->in.len > 0) { /* frames that came with the head */
        sbuf_t early = c->in;
        sbuf_init(&c->in);
        ws_rx_net(c, (uint8_t *)early.data, early.len);
        sbuf_destroy(&early);
    }
}

/* Closes at once (after the frame lws may be holding) with why, for a client breaking RFC 6455
 * or a limit: what is queued is dropped, and nothing more is read. */
static void fail_now(srv_conn_t *c, ws_close_t why)
{
    if (c->state != CONN_WS_OPEN)
        return;
    c->state = CONN_WS_CLOSING;
    c->close_why = why;
    send_clear(&c->base);
    send_queue_close(&c->base, why);
}

/* A data chunk: reassembled, checked and handed on when the message is whole. */
static void on_data(srv_conn_t *c, const wsf_chunk_t *ch)
{
    bool binary = ch->first ? ch->binary : c->rx.binary;
    size_t max = binary ? c->ws_route->max_binary_bytes : c->ws_route->max_text_bytes;
    if (binary && max == 0)
        max = c->ws_route->max_text_bytes; /* refused anyway; bound the buffering */
    const uint8_t *msg;
    size_t n;
    int rc = wsmsg_add(&c->rx, ch, max, &msg, &n);
    if (rc == WSMSG_TOO_BIG) {
        fail_now(c, WS_CLOSE_TOO_BIG);
        return;
    }
    if (rc == WSMSG_MORE)
        return;
    if (!binary && !wsp_utf8_valid(msg, n)) {
        fail_now(c, WS_CLOSE_BAD_UTF8);
        return;
    }
    if (binary)
        on_binary(c, msg, n);
    else
        on_text(c, (const char *)msg, n);
}

/*
 * The client's close frame. A valid one is answered with a close frame carrying the same code
 * (RFC 6455 5.5.1) and the socket is closed once it has left; a one-byte payload or a code a
 * peer may not send is answered 1002, a reason that is not UTF-8 1007 (RFC 6455 7.4.1, 8.1).
 */
static void on_peer_close(srv_conn_t *c, const uint8_t *p, size_t len)
{
    c->peer_close_code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : WS_CODE_NO_STATUS;
    if (len == 1 || (len >= 2 && !ws_close_code_valid(c->peer_close_code))) {
        fail_now(c, WS_CLOSE_PROTOCOL_ERROR);
        return;
    }
    if (len > 2 && !wsp_utf8_valid(p + 2, len - 2)) {
        fail_now(c, WS_CLOSE_BAD_UTF8);
        return;
    }
    if (c->state != CONN_WS_OPEN)
        return; /* our own close is on its way: the exchange is complete */
    c->state = CONN_WS_CLOSING;
    send_clear(&c->base);
    net_out_t *o = net_out_new(c->base.id, OUT_CLOSE, len);
    o->why = WS_CLOSE_NONE; /* an echo of the peer's code and reason */
    memcpy(o->buf + LWS_PRE, p, len);
    send_queue(&c->base, o);
    send_arm_close_kill(&c->base);
}

void ws_rx_net(srv_conn_t *c, uint8_t *p, size_t len)
{
    c->last_rx_ns = clock_now_ns();
    const uint8_t *q = p;
    size_t n = len;
    wsf_chunk_t ch;
    while (c->state == CONN_WS_OPEN) {
        int rc = wsf_rx_next(&c->frames, &q, &n, &ch);
        if (rc == 0)
            return;
        if (rc < 0) {
            fail_now(c, WS_CLOSE_PROTOCOL_ERROR);
            return;
        }
        switch (ch.kind) {
        case WSF_DATA:
            on_data(c, &ch);
            break;
        case WSF_PING: {
            net_out_t *o = net_out_new(c->base.id, OUT_PONG, ch.len);
            memcpy(o->buf + LWS_PRE, ch.data, ch.len);
            send_queue_data(&c->base, o); /* bounded: a client may ping and never read */
            break;
        }
        case WSF_PONG:
            break;
        case WSF_CLOSE:
            on_peer_close(c, ch.data, ch.len);
            return;
        }
    }
    /* Closing: the rest of what the client sends is not read. */
}

/* Frames the payload of o (LWS_PRE headroom before it) as one whole frame and writes it. */
/* The message's frame header goes before it; after a first message of first_len bytes come
 * whole frames (net_ws_send_text2), written with it. */
static int write_frame(srv_conn_t *c, net_out_t *o, unsigned opcode)
{
    uint8_t *p = o->buf + LWS_PRE;
    size_t h = wsf_server_header(p, o->first_len ? o->first_len : o->len, opcode);
    return srv_write(c, p - h, o->len + h);
}

int ws_write_data_net(srv_conn_t *c, net_out_t *o)
{
    bool text = o->kind == OUT_TEXT;
    metric_inc(
        &g_metrics.ws_frames_total[METRIC_DIR_OUT][text ? METRIC_KIND_TEXT : METRIC_KIND_BINARY],
        o->first_len ? 2 : 1);
    return write_frame(c, o, text ? WSF_OP_TEXT : WSF_OP_BINARY);
}

/* Writes our close frame: why's code and reason, or (WS_CLOSE_NONE) the peer's close payload
 * in o echoed. */
static void write_close(srv_conn_t *c, const net_out_t *o)
{
    ws_close_t why = (ws_close_t)o->why;
    unsigned char frame[LWS_PRE + 2 + WSF_CONTROL_MAX];
    uint8_t *p = frame + LWS_PRE;
    size_t len = o->len;
    if (why != WS_CLOSE_NONE) {
        uint16_t code = ws_close_code(why);
        const char *reason = ws_close_reason(why);
        size_t rl = strlen(reason);
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)(code & 0xff);
        memcpy(p + 2, reason, rl);
        len = 2 + rl;
    } else {
        memcpy(p, o->buf + LWS_PRE, len); /* at most WSF_CONTROL_MAX: it came in a control frame */
    }
    size_t h = wsf_server_header(p, len, WSF_OP_CLOSE);
    srv_write(c, p - h, len + h);
}

int ws_writeable_net(srv_conn_t *c)
{
    net_out_t *o = send_next(&c->base);
    if (o == NULL)
        return 0;
    int rc = 0;
    switch (o->kind) {
    case OUT_CLOSE:
        /* RFC 6455 7.1.1: the server starts the TCP close after its close frame (and reads
         * the client's close until the client ends its side). */
        write_close(c, o);
        msg_free(&o->hdr);
        return srv_finish(c);
    case OUT_PING:
        rc = write_frame(c, o, WSF_OP_PING);
        break;
    case OUT_PONG:
        rc = write_frame(c, o, WSF_OP_PONG);
        break;
    default:
        rc = ws_write_data_net(c, o);
    }
    msg_free(&o->hdr);
    if (rc == 0 && c->base.out_head)
        lws_callback_on_writable(c->base.wsi);
    return rc;
}

void ws_closed_net(srv_conn_t *c)
{
    if (c->state == CONN_WS_OPEN || c->state == CONN_WS_CLOSING) {
        ck_pr_dec_int(&c->base.thr->ws_open);
        c->state = CONN_WS_CLOSED; /* counted and reported once */
        post_closed(c);
    }
}
