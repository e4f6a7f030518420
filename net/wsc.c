/*
 * Outbound WebSockets (the upstream Realtime connections) on the network threads.
 *
 * An actor asks with net_wsc_connect(); the request travels through the inbox of the network
 * thread that owns the caller's client socket. That thread resolves the host with
 * uv_getaddrinfo (libuv's thread pool: lws 4.1.6 would block the loop in getaddrinfo), then
 * connects with the numeric address as `address` and the name as `host` (SNI and certificate
 * checks use `host`). The socket is an lws raw client: the opening handshake (wshs.c), the
 * frames (wsframe.c) and, for wss://, the TLS (tlsc.c) are ours (net/DESIGN.md, "Outbound
 * WebSockets"). Frames wait in the same per-connection queue as server connections' (send.c),
 * but this file alone frames, masks and parses an outbound connection's frames, and the server
 * files never see a wsc_conn_t.
 * Thread: net, except net_wsc_connect().
 */
#include <arpa/inet.h>
#include <ck_pr.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net_int.h"
#include "net/tlsc.h"
#include "net/url.h"
#include "net/wshs.h"
#include "net/wsmsg.h"
#include "net/wsproto.h"

#define WSC_URL_MAX 2048
/* The upgrade request: the URL's path, the host, a bearer token and fixed headers. */
#define WSC_REQUEST_MAX  (WSC_URL_MAX + URL_HOST_MAX + 1024)
#define WSC_HS_TIMEOUT_S 20 /* from the socket's connect to the 101 (lws's own context timeout) */
#define WSC_TLS_CHUNK    16384 /* a TLS record's worth of plaintext or ciphertext */

typedef enum wsc_state {
    WSC_CONNECTING, /* DNS, then TCP, then (wss://) TLS */
    WSC_UPGRADING,  /* the upgrade request is out; waiting for the 101 */
    WSC_OPEN,       /* frames flow both ways */
    WSC_CLOSING,    /* our close is queued or sent: no more data frames out */
    WSC_CLOSED,     /* lws has closed the socket */
} wsc_state_t;

/* An outbound WebSocket. [owner: its network thread] */
typedef struct wsc_conn {
    net_conn_t base; /* first: the table and the send path see this */
    wsc_state_t state;
    bool opened;      /* reached WSC_OPEN (WS_CLOSED's never_opened; the open count) */
    actor_t *target;  /* holds a reference until WS_CLOSED has been posted */
    actor_t *text_to; /* NULL, or where text messages go instead (a reference) */
    uint64_t cookie;
    char *host;   /* for SNI, certificate checks and the Host header */
    char *path;   /* path and query */
    char *bearer; /* NULL = no Authorization header */
    int port;
    bool tls;
    size_t max_msg;
    char key[WSHS_KEY_CHARS + 1]; /* our Sec-WebSocket-Key */
    char *hs_buf;                 /* the response head so far (NULL once upgraded) */
    size_t hs_len;
    wsf_rx_t rx;              /* frames from the server: our own parser, not lws's */
    wsmsg_t msg;              /* the message being reassembled */
    struct tlsc *tlsc;        /* wss://: our TLS over the raw socket (tlsc.h); NULL for ws:// */
    bool tls_started;         /* the ClientHello is out */
    bool tls_up;              /* the TLS handshake is done */
    ws_close_t close_why;     /* why we closed it; WS_CLOSE_NONE while we have not */
    uint16_t peer_close_code; /* from the server's close frame; 0 when none came */
    uint64_t last_rx_ns;
    uint64_t last_ping_ns;
    uv_getaddrinfo_t dns;
} wsc_conn_t;

static wsc_conn_t *wsc_of(net_conn_t *c)
{
    return (wsc_conn_t *)c; /* base is the first member */
}

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
    msg_block_free(m);
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

/* What OUT_ROUTE carries after its net_out_t header: the actor, a reference until taken. */
static void route_msg_free(msg_t *m)
{
    actor_t *to;
    memcpy(&to, ((net_out_t *)m)->buf + LWS_PRE, sizeof(to));
    if (to)
        actor_unref(to);
    msg_block_free(m);
}

void net_wsc_route_text(conn_id_t c, actor_t *to)
{
    net_out_t *o = net_out_new(c, OUT_ROUTE, sizeof(actor_t *));
    o->hdr.free_fn = route_msg_free;
    if (to)
        actor_ref(to);
    memcpy(o->buf + LWS_PRE, &to, sizeof(to));
    net_post(o);
}

void wsc_route_net(net_conn_t *base, net_out_t *o)
{
    wsc_conn_t *c = wsc_of(base);
    if (c->target == NULL)
        return; /* closed: nothing more will be posted (o's free drops the reference) */
    if (c->text_to)
        actor_unref(c->text_to);
    memcpy(&c->text_to, o->buf + LWS_PRE, sizeof(c->text_to));
    memset(o->buf + LWS_PRE, 0, sizeof(c->text_to)); /* taken */
}

/* Posts the end of an outbound connection to its actor, once. failure: why it never opened or
 * was lost (the reason text when we did not close it ourselves). */
static void report_closed(wsc_conn_t *c, int http_status, const char *failure)
{
    if (c->target == NULL)
        return;
    net_ws_closed_msg_t *m = netmsg_closed_new(c->base.id, c->close_why, c->peer_close_code);
    m->cookie = c->cookie;
    m->never_opened = !c->opened;
    m->http_status = http_status;
    if (!m->by_server)
        str_copy(m->reason, failure ? failure : "", sizeof(m->reason));
    actor_send(c->target, &m->hdr);
    actor_unref(c->target);
    c->target = NULL;
    if (c->text_to) {
        actor_unref(c->text_to);
        c->text_to = NULL;
    }
}

/* The socket has gone: no longer counted as open. */
static void set_closed(wsc_conn_t *c)
{
    if (c->state == WSC_CLOSED)
        return;
    if (c->opened)
        ck_pr_dec_int(&c->base.thr->ws_open);
    c->state = WSC_CLOSED;
}

static void conn_free(wsc_conn_t *c)
{
    if (c->text_to)
        actor_unref(c->text_to);
    free(c->host);
    free(c->path);
    free(c->hs_buf);
    tlsc_free(c->tlsc);
    if (c->bearer) {
        memset(c->bearer, 0, strlen(c->bearer));
        free(c->bearer);
    }
    wsmsg_destroy(&c->msg);
    send_clear(&c->base);
    conntab_remove(&c->base);
    free(c);
}

/* Reports a connection that ends before lws has a socket for it, and frees it. */
static void fail_early(wsc_conn_t *c, const char *failure)
{
    report_closed(c, 0, failure);
    conn_free(c);
}

void wsc_destroy_net(net_conn_t *base)
{
    wsc_conn_t *c = wsc_of(base);
    set_closed(c);
    report_closed(c, 0, "connection lost"); /* nothing when already reported */
    conn_free(c);
}

bool wsc_is_open(const net_conn_t *c)
{
    return ((const wsc_conn_t *)c)->state == WSC_OPEN;
}

void wsc_close_net(net_conn_t *base, ws_close_t why)
{
    wsc_conn_t *c = wsc_of(base);
    if (c->state != WSC_OPEN || why <= WS_CLOSE_NONE || why >= WS_CLOSE_COUNT_)
        return; /* not open yet (the actor has no id before WS_OPEN), or closing already */
    c->state = WSC_CLOSING;
    c->close_why = why;
    send_queue_close(&c->base, why);
}

void wsc_sweep_net(net_conn_t *base, uint64_t now_ns)
{
    wsc_conn_t *c = wsc_of(base);
    if (c->state == WSC_OPEN && send_keepalive(base, c->last_rx_ns, &c->last_ping_ns, now_ns))
        wsc_close_net(base, WS_CLOSE_PING_TIMEOUT);
}

/* Connection attempt after DNS: the conn is freed here when lws refuses at once. */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    wsc_conn_t *c = req->data;
    netthr_t *thr = c->base.thr;
    char addr[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res) {
        const void *a = res->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        inet_ntop(res->ai_family, a, addr, sizeof(addr));
    }
    uv_freeaddrinfo(res);
    if (addr[0] == '\0' || thr->stopping) {
        fail_early(c, "dns failure");
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = thr->ctx;
    ci.vhost = thr->vh;
    ci.address = addr;
    ci.port = c->port;
    ci.path = c->path;
    ci.host = c->host;
    ci.origin = NULL;
    /*
     * A raw socket: the handshake, the frames and (for wss://) the TLS are ours, because lws
     * 4.1.6 parses a client's frames one byte at a time and cannot do TLS on a raw client
     * (net/DESIGN.md, "Outbound WebSockets"; tlsc.h).
     */
    ci.ssl_connection = 0;
    ci.method = "RAW";
    ci.local_protocol_name = "switchboard";
    ci.opaque_user_data = &c->base;
    ci.pwsi = &c->base.wsi;
    thr->adopting = &c->base;
    thr->adopting_freed = false;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    thr->adopting = NULL;
    /* Failed before or after a wsi existed: when one did, WSI_DESTROY reports (and frees) c. */
    if (wsi == NULL && !thr->adopting_freed && c->base.wsi == NULL && c->target)
        fail_early(c, "connect failed");
}

void wsc_start_net(netthr_t *thr, net_out_t *o)
{
    wsc_req_t *r = req_of(o);
    wsc_conn_t *c = xcalloc(1, sizeof(*c));
    c->base.kind = NET_CONN_CLIENT;
    if (conntab_add(thr, &c->base) != 0) {
        free(c);
        return; /* a full slot table */
    }
    c->state = WSC_CONNECTING;
    c->target = r->target; /* the reference moves to the connection */
    r->target = NULL;
    c->cookie = r->cookie;
    c->host = xstrdup(r->url.host);
    c->path = r->url.target;
    r->url.target = NULL;
    c->port = r->url.port;
    c->tls = r->url.tls;
    c->max_msg = r->max_msg;
    c->bearer = r->bearer;
    r->bearer = NULL;
    c->dns.data = c;
    if (c->tls && (c->tlsc = tlsc_new(c->host)) == NULL) {
        fail_early(c, "tls setup failed");
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char ports[8];
    snprintf(ports, sizeof(ports), "%d", c->port);
    if (uv_getaddrinfo(&thr->loop, &c->dns, on_resolved, c->host, ports, &hints) != 0)
        fail_early(c, "dns failure");
}

static void on_text(wsc_conn_t *c, const char *s, size_t len)
{
    net_ws_binary_msg_t *fast = netmsg_audio_delta_new(c->base.id, s, len, c->last_rx_ns);
    if (fast != NULL) {
        if (c->target != NULL)
            actor_send(c->text_to ? c->text_to : c->target, &fast->hdr);
        else
            msg_free(&fast->hdr);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(s, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        log_warn("wsc.invalid_event", LOG_S("host", c->host), LOG_I("bytes", len));
        cJSON_Delete(j);
        return;
    }
    if (c->target == NULL) {
        cJSON_Delete(j);
        return;
    }
    net_ws_text_msg_t *m = MSG_NEW(net_ws_text_msg_t, NET_MSG_WS_TEXT);
    m->hdr.free_fn = netmsg_text_free;
    m->hdr.sent_ns = c->last_rx_ns; /* the relay latency starts here */
    if (strcmp(type->valuestring, "response.output_audio.delta") == 0 ||
        strcmp(type->valuestring, "response.audio.delta") == 0)
        m->hdr.flags = MSG_F_AUDIO; /* droppable under backpressure, as the client's audio */
    m->conn = c->base.id;
    m->json = j;
    m->type = type->valuestring;
    m->len = len;
    actor_send(c->text_to ? c->text_to : c->target, &m->hdr);
}

/* Sends what TLS has encrypted so far. */
static int flush_tls(struct lws *wsi, wsc_conn_t *c)
{
    uint8_t buf[WSC_TLS_CHUNK];
    size_t n;
    while ((n = tlsc_take_out(c->tlsc, buf, sizeof(buf))) > 0)
        if (lws_write(wsi, buf, n, LWS_WRITE_RAW) < (int)n)
            return -1;
    return 0;
}

/* Sends len bytes of whole frames (through TLS for wss://); lws keeps what the socket does not
 * take. Returns 0, or -1 when the connection is to close. */
static int send_raw(struct lws *wsi, wsc_conn_t *c, const void *p, size_t len)
{
    if (c->tlsc)
        return tlsc_write(c->tlsc, p, len) < 0 ? -1 : flush_tls(wsi, c);
    /* LWS_WRITE_RAW: lws sends the bytes as they are (or keeps the rest on a partial write). */
    return lws_write(wsi, (unsigned char *)p, len, LWS_WRITE_RAW) < (int)len ? -1 : 0;
}

/* Writes one control frame now (lws buffers what the socket does not take). */
static int write_control(struct lws *wsi, wsc_conn_t *c, unsigned op, const uint8_t *payload,
                         size_t len)
{
    uint8_t f[WSF_HEADER_MAX + WSF_CONTROL_MAX];
    if (len > WSF_CONTROL_MAX)
        len = WSF_CONTROL_MAX;
    if (len > 0)
        memcpy(f + WSF_HEADER_MAX, payload, len);
    size_t h = wsf_client_frame(f + WSF_HEADER_MAX, len, op);
    return send_raw(wsi, c, f + WSF_HEADER_MAX - h, h + len);
}

/* Writes the close frame of why (our close; the socket is dropped after it). */
static void write_close(struct lws *wsi, wsc_conn_t *c, ws_close_t why)
{
    uint16_t code = ws_close_code(why);
    const char *reason = ws_close_reason(why);
    uint8_t p[WSF_CONTROL_MAX];
    size_t rl = strlen(reason);
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)(code & 0xff);
    memcpy(p + 2, reason, rl);
    write_control(wsi, c, WSF_OP_CLOSE, p, 2 + rl);
}

int wsc_write_data_net(net_conn_t *base, net_out_t *o)
{
    bool text = o->kind == OUT_TEXT;
    if (o->first_len)
        return -1; /* net_ws_send_text2 frames for a server: not ours to mask */
    metric_inc(
        &g_metrics.ws_frames_total[METRIC_DIR_OUT][text ? METRIC_KIND_TEXT : METRIC_KIND_BINARY],
        1);
    /*
     * One whole masked frame, its header written into the LWS_PRE headroom, that lws sends (or
     * buffers on a partial write) as opaque bytes, so frames never interleave.
     */
    unsigned char *p = o->buf + LWS_PRE;
    size_t h = wsf_client_frame(p, o->len, text ? WSF_OP_TEXT : WSF_OP_BINARY);
    return send_raw(base->wsi, wsc_of(base), p - h, h + o->len);
}

/* Writes the next queued frame; returns -1 to close the connection. */
static int on_writeable(struct lws *wsi, wsc_conn_t *c)
{
    net_out_t *o = send_next(&c->base);
    if (o == NULL)
        return 0;
    int rc = 0;
    switch (o->kind) {
    case OUT_CLOSE:
        write_close(wsi, c, (ws_close_t)o->why);
        rc = -1; /* as on the server side: our close frame, then the socket */
        break;
    case OUT_PING:
        rc = write_control(wsi, c, WSF_OP_PING, NULL, 0) < 0 ? -1 : 0;
        break;
    default:
        rc = wsc_write_data_net(&c->base, o);
    }
    msg_free(&o->hdr);
    if (rc == 0 && c->base.out_head)
        lws_callback_on_writable(wsi);
    return rc;
}

/* The code of a server's close frame; one it may not send is reported as a protocol error. */
static uint16_t peer_close_code(const uint8_t *p, size_t len)
{
    if (len < 2)
        return len == 0 ? WS_CODE_NO_STATUS : WS_CODE_PROTOCOL;
    uint16_t code = (uint16_t)(p[0] << 8 | p[1]);
    return ws_close_code_valid(code) ? code : WS_CODE_PROTOCOL;
}

/* Closes at once (our close frame, then the socket): returns -1 for lws. */
static int fail_now(struct lws *wsi, wsc_conn_t *c, ws_close_t why)
{
    if (c->close_why == WS_CLOSE_NONE) {
        c->close_why = why;
        write_close(wsi, c, why);
    }
    return -1;
}

/* A data chunk: a whole message in one chunk is parsed where it lies, others are reassembled. */
static void on_data(wsc_conn_t *c, const wsf_chunk_t *ch)
{
    if (c->state != WSC_OPEN)
        return; /* closing: the rest is not for the actor */
    const uint8_t *msg;
    size_t len;
    int rc = wsmsg_add(&c->msg, ch, c->max_msg, &msg, &len);
    if (rc == WSMSG_TOO_BIG) {
        wsc_close_net(&c->base, WS_CLOSE_TOO_BIG);
        return;
    }
    if (rc == WSMSG_MORE || c->msg.binary)
        return; /* the Realtime API sends text only; binary is ignored as before */
    if (!wsp_utf8_valid(msg, len))
        wsc_close_net(&c->base, WS_CLOSE_BAD_UTF8);
    else
        on_text(c, (const char *)msg, len);
}

/* Frames from the server; returns -1 when the socket is to close. */
static int on_frames(struct lws *wsi, wsc_conn_t *c, const uint8_t *p, size_t n)
{
    wsf_chunk_t ch;
    int rc;
    while ((rc = wsf_rx_next(&c->rx, &p, &n, &ch)) == 1) {
        switch (ch.kind) {
        case WSF_DATA:
            on_data(c, &ch);
            break;
        case WSF_PING:
            if (c->close_why == WS_CLOSE_NONE &&
                write_control(wsi, c, WSF_OP_PONG, ch.data, ch.len) < 0)
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
static int established(struct lws *wsi, wsc_conn_t *c, const char *request_id)
{
    c->opened = true;
    c->state = WSC_OPEN;
    c->last_rx_ns = c->last_ping_ns = clock_now_ns();
    ck_pr_inc_int(&c->base.thr->ws_open);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (c->target == NULL)
        return -1;
    net_ws_open_msg_t *m = MSG_NEW(net_ws_open_msg_t, NET_MSG_WS_OPEN);
    m->hdr.free_fn = netmsg_open_free;
    m->conn = c->base.id;
    m->query = xstrdup("");
    m->cookie = c->cookie;
    str_copy(m->request_id, request_id, sizeof(m->request_id));
    actor_send(c->target, &m->hdr);
    return 0;
}

/* Bytes before the upgrade: the response head, perhaps followed by the first frames. */
static int on_handshake_rx(struct lws *wsi, wsc_conn_t *c, const uint8_t *in, size_t len)
{
    size_t room = WSHS_RESPONSE_MAX - c->hs_len;
    size_t take = len < room ? len : room;
    if (c->hs_buf == NULL)
        c->hs_buf = xmalloc(WSHS_RESPONSE_MAX);
    memcpy(c->hs_buf + c->hs_len, in, take);
    c->hs_len += take;
    wshs_response_t r;
    int hl = wshs_parse_response(c->hs_buf, c->hs_len, c->key, &r);
    if (hl == 0)
        return 0;
    if (hl < 0) {
        report_closed(c, 0, "bad handshake response");
        return -1;
    }
    if (!r.upgraded) {
        log_info("wsc.connect_error", LOG_S("host", c->host), LOG_I("http_status", r.status),
                 LOG_S("error", "ws upgrade refused"));
        report_closed(c, r.status, "ws upgrade refused");
        return -1;
    }
    /* What followed the head in this read is frames (the head is at most what we copied). */
    size_t used = (size_t)hl - (c->hs_len - take);
    free(c->hs_buf);
    c->hs_buf = NULL;
    c->hs_len = 0;
    if (established(wsi, c, r.request_id) < 0)
        return -1;
    return on_frames(wsi, c, in + used, len - used);
}

/* The socket (and TLS) is up: send the upgrade request, once. */
static int send_handshake(struct lws *wsi, wsc_conn_t *c)
{
    if (c->state != WSC_CONNECTING)
        return 0;
    c->state = WSC_UPGRADING;
    wshs_new_key(c->key);
    unsigned char *buf = xmalloc(LWS_PRE + WSC_REQUEST_MAX);
    int n =
        wshs_request((char *)buf + LWS_PRE, WSC_REQUEST_MAX, c->host, c->path, c->bearer, c->key);
    if (c->bearer) {
        memset(c->bearer, 0, strlen(c->bearer)); /* no longer needed: reconnects ask anew */
        free(c->bearer);
        c->bearer = NULL;
    }
    int rc = n < 0 ? -1 : send_raw(wsi, c, buf + LWS_PRE, (size_t)n);
    memset(buf, 0, LWS_PRE + WSC_REQUEST_MAX);
    free(buf);
    if (rc < 0) {
        report_closed(c, 0, "handshake not sent");
        return -1;
    }
    return 0;
}

/* Plaintext from the server: the response head, then frames. */
static int on_plain(struct lws *wsi, wsc_conn_t *c, const uint8_t *p, size_t n)
{
    return c->opened ? on_frames(wsi, c, p, n) : on_handshake_rx(wsi, c, p, n);
}

static int tls_failed(wsc_conn_t *c)
{
    report_closed(c, 0, "tls handshake failed");
    return -1;
}

/* Ciphertext from the server: finish the TLS handshake (then send the upgrade), decrypt. */
static int on_tls_rx(struct lws *wsi, wsc_conn_t *c, const uint8_t *in, size_t len)
{
    if (tlsc_feed(c->tlsc, in, len) < 0)
        return -1;
    if (!c->tls_up) {
        int r = tlsc_handshake(c->tlsc);
        if (r < 0 || flush_tls(wsi, c) < 0)
            return tls_failed(c);
        if (r == 0)
            return 0;
        c->tls_up = true;
        if (send_handshake(wsi, c) < 0)
            return -1;
    }
    uint8_t buf[WSC_TLS_CHUNK];
    ssize_t n;
    while ((n = tlsc_read(c->tlsc, buf, sizeof(buf))) > 0)
        if (on_plain(wsi, c, buf, (size_t)n) < 0)
            return -1;
    /* A read may have produced TLS output of its own (a key update answer). */
    if (flush_tls(wsi, c) < 0 || n < 0)
        return -1;
    return 0;
}

/* The socket is writeable: our queued frames once open; before that, TLS and the upgrade. */
static int on_raw_writeable(struct lws *wsi, wsc_conn_t *c)
{
    if (c->opened)
        return on_writeable(wsi, c);
    if (c->state != WSC_CONNECTING)
        return 0; /* upgrading: nothing to write until the 101 */
    if (c->tlsc == NULL)
        return send_handshake(wsi, c);
    if (!c->tls_started) {
        c->tls_started = true;
        return tlsc_handshake(c->tlsc) < 0 || flush_tls(wsi, c) < 0 ? tls_failed(c) : 0;
    }
    return 0; /* the upgrade follows the TLS handshake (on_tls_rx) */
}

int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, net_conn_t *base, void *in,
                 size_t len)
{
    wsc_conn_t *c = wsc_of(base);
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED: /* plain TCP */
    case LWS_CALLBACK_RAW_ADOPT:     /* after TLS (client-http.c, the "RAW" method) */
        /* After TLS this comes before lws moves the wsi to its raw role: write from WRITEABLE. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, WSC_HS_TIMEOUT_S);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        c->last_rx_ns = clock_now_ns();
        return c->tlsc ? on_tls_rx(wsi, c, in, len) : on_plain(wsi, c, in, len);
    case LWS_CALLBACK_RAW_WRITEABLE:
        return on_raw_writeable(wsi, c);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        int status = (int)lws_http_client_http_response(wsi);
        log_info("wsc.connect_error", LOG_S("host", c->host), LOG_I("http_status", status),
                 LOG_S("error", in ? (const char *)in : ""));
        report_closed(c, status, in ? (const char *)in : "connect error");
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE:
        set_closed(c);
        report_closed(c, 0, "closed");
        return 0;
    default:
        return 1;
    }
}
