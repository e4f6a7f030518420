/*
 * Outbound WebSockets (the upstream Realtime connections) on the network threads.
 *
 * An actor asks with net_wsc_connect(); the request travels through the inbox of the network
 * thread that owns the caller's client socket. That thread resolves the host with
 * uv_getaddrinfo (libuv's thread pool: lws 4.1.6 would block the loop in getaddrinfo), then
 * connects with the numeric address as `address` and the name as `host` (SNI and certificate
 * checks use `host`). The socket is an lws raw client: the opening handshake (wshs.c), the
 * frames (wsframe.c) and, for wss://, the TLS (tlsc.c) are ours (net/DESIGN.md, "Outbound
 * WebSockets"). Frames are written through the same out queue as server connections.
 * Thread: net, except net_wsc_connect().
 */
#include <arpa/inet.h>
#include <ck_pr.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"
#include "net/tlsc.h"
#include "net/url.h"
#include "net/wsproto.h"

#define WSC_URL_MAX  2048
/* The upgrade request: the URL's path, the host, a bearer token and fixed headers. */
#define WSC_REQUEST_MAX  (WSC_URL_MAX + URL_HOST_MAX + 1024)
#define WSC_HS_TIMEOUT_S 20 /* from the socket's connect to the 101 (lws's own context timeout) */
#define WSC_TLS_CHUNK    16384 /* a TLS record's worth of plaintext or ciphertext */

/* What an OUT_CONNECT message carries after its net_out_t header. */
typedef struct wsc_req {
    actor_t *target; /* a reference, moved to the connection */
    uint64_t cookie;
    size_t max_msg;
    url_parts_t url; /* the target moves to the connection */
    char *bearer;
} wsc_req_t;

static wsc_req_t *req_of(net_out_t *o)
{
    return (wsc_req_t *)(void *)(o->buf + LWS_PRE);
}

static void connect_msg_free(msg_t *m)
{
    wsc_req_t *r = req_of((net_out_t *)m);
    if (r->target)
        actor_unref(r->target);
    url_parts_destroy(&r->url);
    if (r->bearer) {
        memset(r->bearer, 0, strlen(r->bearer));
        free(r->bearer);
    }
    free(m);
}

int net_wsc_connect(conn_id_t near, const char *url, const char *bearer, actor_t *target,
                    uint64_t cookie, size_t max_msg_bytes)
{
    static const char *const schemes[] = {"ws", "wss", NULL};
    url_parts_t u;
    if (strlen(url) > WSC_URL_MAX || url_parse(url, schemes, &u) != 0)
        return -EINVAL;
    if (u.userinfo) { /* never sent: refuse rather than drop credentials silently */
        url_parts_destroy(&u);
        return -EINVAL;
    }
    net_out_t *o = net_out_new(near, OUT_CONNECT, sizeof(wsc_req_t));
    o->hdr.free_fn = connect_msg_free;
    wsc_req_t *r = req_of(o);
    actor_ref(target);
    r->target = target;
    r->cookie = cookie;
    r->max_msg = max_msg_bytes;
    r->url = u;
    r->bearer = bearer ? xstrdup(bearer) : NULL;
    net_post(o);
    return 0;
}

/* Posts the end of an outbound connection to its actor, once. */
static void report_closed(conn_t *c, bool never_opened, int http_status, const char *failure)
{
    if (c->target == NULL)
        return;
    net_ws_closed_msg_t *m = MSG_NEW(net_ws_closed_msg_t, NET_MSG_WS_CLOSED);
    m->conn = c->id;
    m->cookie = c->wsc->cookie;
    m->never_opened = never_opened;
    m->http_status = http_status;
    m->why = c->close_why;
    m->by_server = c->close_why != WS_CLOSE_NONE;
    m->code = m->by_server ? ws_close_code(c->close_why)
                           : (c->peer_close_code ? c->peer_close_code : WS_CODE_ABNORMAL);
    str_copy(m->reason, m->by_server ? ws_close_reason(c->close_why) : (failure ? failure : ""),
             sizeof(m->reason));
    actor_send(c->target, &m->hdr);
    actor_unref(c->target);
    c->target = NULL;
}

void wsc_report_closed_net(conn_t *c)
{
    report_closed(c, !c->wsc->opened, 0, "connection lost");
}

void wsc_free(conn_t *c)
{
    wsc_t *w = c->wsc;
    if (w == NULL)
        return;
    free(w->host);
    free(w->path);
    free(w->hs_buf);
    tlsc_free(w->tlsc);
    if (w->bearer) {
        memset(w->bearer, 0, strlen(w->bearer));
        free(w->bearer);
    }
    free(w);
    c->wsc = NULL;
}

/* Connection attempt after DNS: the conn is freed here when lws refuses at once. */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    conn_t *c = req->data;
    wsc_t *w = c->wsc;
    char addr[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res) {
        const void *a = res->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        inet_ntop(res->ai_family, a, addr, sizeof(addr));
    }
    uv_freeaddrinfo(res);
    if (addr[0] == '\0' || c->thr->stopping) {
        report_closed(c, true, 0, "dns failure");
        wsc_free(c);
        conn_free(c);
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->thr->ctx;
    ci.vhost = c->thr->vh;
    ci.address = addr;
    ci.port = w->port;
    ci.path = w->path;
    ci.host = w->host;
    ci.origin = NULL;
    /*
     * A raw socket: the handshake, the frames and (for wss://) the TLS are ours, because lws
     * 4.1.6 parses a client's frames one byte at a time and cannot do TLS on a raw client
     * (net/DESIGN.md, "Outbound WebSockets"; tlsc.h).
     */
    ci.ssl_connection = 0;
    ci.method = "RAW";
    ci.local_protocol_name = "switchboard";
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    if (lws_client_connect_via_info(&ci) == NULL) {
        /* Failed before or after a wsi existed; WSI_DESTROY may already have reported it. */
        if (c->wsi == NULL && c->target) {
            report_closed(c, true, 0, "connect failed");
            wsc_free(c);
            conn_free(c);
        }
    }
}

void wsc_start_net(netthr_t *thr, net_out_t *o)
{
    wsc_req_t *r = req_of(o);
    conn_t *c = conn_new(thr, NULL);
    if (c == NULL)
        return; /* a full slot table */
    c->target = r->target; /* the reference moves to the connection */
    r->target = NULL;
    c->state = CONN_WS_CLOSING; /* not writable until established */
    wsc_t *w = xcalloc(1, sizeof(*w));
    c->wsc = w;
    w->cookie = r->cookie;
    w->host = xstrdup(r->url.host);
    w->path = r->url.target;
    r->url.target = NULL;
    w->port = r->url.port;
    w->tls = r->url.tls;
    w->max_msg = r->max_msg;
    w->bearer = r->bearer;
    r->bearer = NULL;
    w->dns.data = c;
    if (w->tls && (w->tlsc = tlsc_new(w->host)) == NULL) {
        report_closed(c, true, 0, "tls setup failed");
        wsc_free(c);
        conn_free(c);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char ports[8];
    snprintf(ports, sizeof(ports), "%d", w->port);
    int rc = uv_getaddrinfo(&thr->loop, &w->dns, on_resolved, w->host, ports, &hints);
    if (rc != 0) {
        report_closed(c, true, 0, "dns failure");
        wsc_free(c);
        conn_free(c);
    }
}

static bool span_is(wsp_span_t s, const char *lit)
{
    return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/*
 * The event as cJSON. Audio deltas (25 a second per session, ~1.4 KB) skip cJSON's parser: when
 * wsp_scan_event() vouches for the text, a tree with only the members the upstream actor reads
 * (type, delta, item_id) is built from it. The names are those of agents/voice/events.c
 * events_is_audio_delta(); anything else is parsed in full.
 */
static cJSON *parse_event(const char *s, size_t len)
{
    static const char *const names[] = {"type", "delta", "item_id"};
    wsp_span_t f[ARRAY_LEN(names)];
    if (wsp_scan_event(s, len, names, ARRAY_LEN(names), f) && f[1].p &&
        (span_is(f[0], "response.output_audio.delta") || span_is(f[0], "response.audio.delta"))) {
        return wsp_scan_tree(names, f, ARRAY_LEN(names));
    }
    return cJSON_ParseWithLength(s, len);
}

static void on_text(conn_t *c, const char *s, size_t len)
{
    cJSON *j = parse_event(s, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        log_warn("wsc.invalid_event", LOG_S("host", c->wsc->host), LOG_I("bytes", len));
        cJSON_Delete(j);
        return;
    }
    if (c->target == NULL) {
        cJSON_Delete(j);
        return;
    }
    net_ws_text_msg_t *m = MSG_NEW(net_ws_text_msg_t, NET_MSG_WS_TEXT);
    m->hdr.free_fn = net_text_msg_free;
    m->hdr.sent_ns = c->last_rx_ns; /* the relay latency starts here */
    m->conn = c->id;
    m->json = j;
    m->type = type->valuestring;
    m->len = len;
    actor_send(c->target, &m->hdr);
}

/* Sends what TLS has encrypted so far. */
static int flush_tls(struct lws *wsi, wsc_t *w)
{
    uint8_t buf[WSC_TLS_CHUNK];
    size_t n;
    while ((n = tlsc_take_out(w->tlsc, buf, sizeof(buf))) > 0)
        if (lws_write(wsi, buf, n, LWS_WRITE_RAW) < (int)n)
            return -1;
    return 0;
}

int wsc_send_net(struct lws *wsi, conn_t *c, const void *p, size_t len)
{
    wsc_t *w = c->wsc;
    if (w->tlsc)
        return tlsc_write(w->tlsc, p, len) < 0 ? -1 : flush_tls(wsi, w);
    /* LWS_WRITE_RAW: lws sends the bytes as they are (or keeps the rest on a partial write). */
    return lws_write(wsi, (unsigned char *)p, len, LWS_WRITE_RAW) < (int)len ? -1 : 0;
}

/* Writes one control frame now (lws buffers what the socket does not take). */
static int write_control(struct lws *wsi, conn_t *c, unsigned op, const uint8_t *payload,
                         size_t len)
{
    uint8_t f[WSF_HEADER_MAX + WSF_CONTROL_MAX];
    if (len > WSF_CONTROL_MAX)
        len = WSF_CONTROL_MAX;
    memcpy(f + WSF_HEADER_MAX, payload, len);
    size_t h = wsf_client_frame(f + WSF_HEADER_MAX, len, op);
    return wsc_send_net(wsi, c, f + WSF_HEADER_MAX - h, h + len);
}

/* A close code a peer may send (RFC 6455 7.4); others are reported as a protocol error. */
static uint16_t peer_close_code(const uint8_t *p, size_t len)
{
    if (len < 2)
        return len == 0 ? WS_CODE_NO_STATUS : WS_CODE_PROTOCOL;
    uint16_t code = (uint16_t)(p[0] << 8 | p[1]);
    bool ok = (code >= WS_CODE_NORMAL && code <= WS_CODE_UNSUPPORTED) ||
              (code >= WS_CODE_INVALID_DATA && code <= WS_CODE_BAD_GATEWAY) ||
              (code >= WS_CODE_APP_MIN && code <= WS_CODE_APP_MAX);
    return ok ? code : WS_CODE_PROTOCOL;
}

/* Closes at once (our close frame, then the socket): returns -1 for lws. */
static int fail_now(struct lws *wsi, conn_t *c, ws_close_t why)
{
    if (c->close_why == WS_CLOSE_NONE) {
        c->close_why = why;
        uint16_t code = ws_close_code(why);
        const char *reason = ws_close_reason(why);
        uint8_t p[WSF_CONTROL_MAX];
        size_t rl = strlen(reason);
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)(code & 0xff);
        memcpy(p + 2, reason, rl);
        write_control(wsi, c, WSF_OP_CLOSE, p, 2 + rl);
    }
    return -1;
}

/* A data chunk: reassembles it (or takes a whole single-frame message as it is). */
static void on_data(conn_t *c, const wsf_chunk_t *ch)
{
    wsc_t *w = c->wsc;
    if (c->state != CONN_WS)
        return; /* closing: the rest is not for the actor */
    if (ch->first) {
        c->rx_len = 0;
        c->rx_binary = ch->binary;
    }
    if (c->rx_len + ch->len + ch->frame_left > w->max_msg) {
        c->rx_len = 0;
        conn_close(c, WS_CLOSE_TOO_BIG);
        return;
    }
    const uint8_t *msg = ch->data;
    size_t len = ch->len;
    if (!(ch->first && ch->last)) {
        if (c->rx_len + ch->len > c->rx_cap) {
            size_t cap = c->rx_cap ? c->rx_cap : 4096;
            while (cap < c->rx_len + ch->len + ch->frame_left)
                cap *= 2;
            c->rx = xrealloc(c->rx, cap + 1);
            c->rx_cap = cap;
        }
        memcpy(c->rx + c->rx_len, ch->data, ch->len);
        c->rx_len += ch->len;
        if (!ch->last)
            return;
        msg = c->rx;
        len = c->rx_len;
        c->rx_len = 0;
    }
    if (c->rx_binary)
        return; /* the Realtime API sends text only; binary is ignored as before */
    if (!wsp_utf8_valid(msg, len))
        conn_close(c, WS_CLOSE_BAD_UTF8);
    else
        on_text(c, (const char *)msg, len);
}

/* Frames from the server; returns -1 when the socket is to close. */
static int on_frames(struct lws *wsi, conn_t *c, const uint8_t *p, size_t n)
{
    wsf_chunk_t ch;
    int rc;
    while ((rc = wsf_rx_next(&c->wsc->rx, &p, &n, &ch)) == 1) {
        switch (ch.kind) {
        case WSF_DATA:
            on_data(c, &ch);
            break;
        case WSF_PING:
            if (c->close_why == WS_CLOSE_NONE && write_control(wsi, c, WSF_OP_PONG, ch.data, ch.len) < 0)
                return -1;
            break;
        case WSF_PONG:
            break; /* last_rx_ns is what the ping sweep looks at */
        case WSF_CLOSE:
            /* RFC 6455 5.5.1: echo the close unless ours went first, then drop the socket. */
            c->peer_close_code = peer_close_code(ch.data, ch.len);
            if (c->close_why == WS_CLOSE_NONE)
                write_control(wsi, c, WSF_OP_CLOSE, ch.data, ch.len >= 2 ? 2 : 0);
            return -1;
        }
    }
    if (rc < 0)
        return fail_now(wsi, c, WS_CLOSE_PROTOCOL_ERROR);
    return 0;
}

/* The upgraded socket is open: the same steps as lws's CLIENT_ESTABLISHED took before. */
static int established(struct lws *wsi, conn_t *c, const char *request_id)
{
    wsc_t *w = c->wsc;
    w->opened = true;
    c->state = CONN_WS;
    c->last_rx_ns = c->last_ping_ns = clock_now_ns();
    ck_pr_inc_int(&c->thr->ws_open);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (c->target == NULL)
        return -1;
    net_ws_open_msg_t *m = MSG_NEW(net_ws_open_msg_t, NET_MSG_WS_OPEN);
    m->hdr.free_fn = net_open_msg_free;
    m->conn = c->id;
    m->query = xstrdup("");
    m->cookie = w->cookie;
    str_copy(m->request_id, request_id, sizeof(m->request_id));
    actor_send(c->target, &m->hdr);
    return 0;
}

/* Bytes before the upgrade: the response head, perhaps followed by the first frames. */
static int on_handshake_rx(struct lws *wsi, conn_t *c, const uint8_t *in, size_t len)
{
    wsc_t *w = c->wsc;
    size_t room = WSHS_RESPONSE_MAX - w->hs_len;
    size_t take = len < room ? len : room;
    if (w->hs_buf == NULL)
        w->hs_buf = xmalloc(WSHS_RESPONSE_MAX);
    memcpy(w->hs_buf + w->hs_len, in, take);
    w->hs_len += take;
    wshs_response_t r;
    int hl = wshs_parse_response(w->hs_buf, w->hs_len, w->key, &r);
    if (hl == 0)
        return 0;
    if (hl < 0) {
        report_closed(c, true, 0, "bad handshake response");
        return -1;
    }
    if (!r.upgraded) {
        log_info("wsc.connect_error", LOG_S("host", w->host), LOG_I("http_status", r.status),
                 LOG_S("error", "ws upgrade refused"));
        report_closed(c, true, r.status, "ws upgrade refused");
        return -1;
    }
    /* What followed the head in this read is frames (the head is at most what we copied). */
    size_t used = (size_t)hl - (w->hs_len - take);
    free(w->hs_buf);
    w->hs_buf = NULL;
    w->hs_len = 0;
    if (established(wsi, c, r.request_id) < 0)
        return -1;
    return on_frames(wsi, c, in + used, len - used);
}

/* The socket (and TLS) is up: send the upgrade request. */
static int send_handshake(struct lws *wsi, conn_t *c)
{
    wsc_t *w = c->wsc;
    if (w->hs_sent)
        return 0;
    w->hs_sent = true;
    wshs_new_key(w->key);
    unsigned char *buf = xmalloc(LWS_PRE + WSC_REQUEST_MAX);
    int n =
        wshs_request((char *)buf + LWS_PRE, WSC_REQUEST_MAX, w->host, w->path, w->bearer, w->key);
    if (w->bearer) {
        memset(w->bearer, 0, strlen(w->bearer)); /* no longer needed: reconnects ask anew */
        free(w->bearer);
        w->bearer = NULL;
    }
    int rc = n < 0 ? -1 : wsc_send_net(wsi, c, buf + LWS_PRE, (size_t)n);
    memset(buf, 0, LWS_PRE + WSC_REQUEST_MAX);
    free(buf);
    if (rc < 0) {
        report_closed(c, true, 0, "handshake not sent");
        return -1;
    }
    return 0;
}

/* Plaintext from the server: the response head, then frames. */
static int on_plain(struct lws *wsi, conn_t *c, const uint8_t *p, size_t n)
{
    return c->wsc->opened ? on_frames(wsi, c, p, n) : on_handshake_rx(wsi, c, p, n);
}

static int tls_failed(conn_t *c)
{
    report_closed(c, true, 0, "tls handshake failed"); /* a no-op once open: then "closed" */
    return -1;
}

/* Ciphertext from the server: finish the TLS handshake (then send the upgrade), decrypt. */
static int on_tls_rx(struct lws *wsi, conn_t *c, const uint8_t *in, size_t len)
{
    wsc_t *w = c->wsc;
    if (tlsc_feed(w->tlsc, in, len) < 0)
        return -1;
    if (!w->tls_up) {
        int r = tlsc_handshake(w->tlsc);
        if (r < 0 || flush_tls(wsi, w) < 0)
            return tls_failed(c);
        if (r == 0)
            return 0;
        w->tls_up = true;
        if (send_handshake(wsi, c) < 0)
            return -1;
    }
    uint8_t buf[WSC_TLS_CHUNK];
    ssize_t n;
    while ((n = tlsc_read(w->tlsc, buf, sizeof(buf))) > 0)
        if (on_plain(wsi, c, buf, (size_t)n) < 0)
            return -1;
    /* A read may have produced TLS output of its own (a key update answer). */
    if (flush_tls(wsi, w) < 0 || n < 0)
        return -1;
    return 0;
}

int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, conn_t *c, void *in, size_t len)
{
    wsc_t *w = c->wsc;
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED: /* plain TCP */
    case LWS_CALLBACK_RAW_ADOPT:     /* after TLS (client-http.c, the "RAW" method) */
        /* After TLS this comes before lws moves the wsi to its raw role: write from WRITEABLE. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, WSC_HS_TIMEOUT_S);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        c->last_rx_ns = clock_now_ns();
        return w->tlsc ? on_tls_rx(wsi, c, in, len) : on_plain(wsi, c, in, len);
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (w->opened)
            return ws_writeable_net(wsi, c);
        if (w->tlsc && !w->tls_started) {
            w->tls_started = true;
            return tlsc_handshake(w->tlsc) < 0 || flush_tls(wsi, w) < 0 ? tls_failed(c) : 0;
        }
        return w->tlsc ? 0 : send_handshake(wsi, c);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        int status = (int)lws_http_client_http_response(wsi);
        log_info("wsc.connect_error", LOG_S("host", w->host), LOG_I("http_status", status),
                 LOG_S("error", in ? (const char *)in : ""));
        report_closed(c, true, status, in ? (const char *)in : "connect error");
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE:
        if (c->state == CONN_WS || c->state == CONN_WS_CLOSING) {
            if (w->opened)
                ck_pr_dec_int(&c->thr->ws_open);
            c->state = CONN_HTTP;
        }
        report_closed(c, !w->opened, 0, "closed");
        return 0;
    default:
        return 1;
    }
}
