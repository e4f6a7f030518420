/*
 * Outbound WebSockets (the upstream Realtime connections) on the network threads.
 *
 * An actor asks with net_wsc_connect(); the request travels through the inbox of the network
 * thread that owns the caller's client socket. That thread resolves the host with
 * uv_getaddrinfo (libuv's thread pool: lws 4.1.6 would block the loop in getaddrinfo), then
 * connects with the numeric address as `address` and the name as `host` (SNI and certificate
 * checks use `host`). Frames are written through the same out queue as server connections.
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
#include "net/wsproto.h"

#define WSC_URL_MAX  2048
#define WSC_HOST_MAX 256

/* What an OUT_CONNECT message carries after its net_out_t header. */
typedef struct wsc_req {
    actor_t *target; /* a reference, moved to the connection */
    uint64_t cookie;
    size_t max_msg;
    char *url;
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
    free(r->url);
    if (r->bearer) {
        memset(r->bearer, 0, strlen(r->bearer));
        free(r->bearer);
    }
    free(m);
}

/* Splits ws[s]://host[:port]/path?query; returns 0 or -EINVAL. */
static int parse_url(const char *url, bool *tls, char *host, size_t hostlen, int *port,
                     const char **path)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        *tls = false;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        *tls = true;
        p = url + 6;
    } else {
        return -EINVAL;
    }
    const char *end = p + strcspn(p, "/?");
    const char *colon = NULL;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return -EINVAL;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - p - 1) >= hostlen)
            return -EINVAL;
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = '\0';
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        const char *he = colon ? colon : end;
        if (he == p || (size_t)(he - p) >= hostlen)
            return -EINVAL;
        memcpy(host, p, (size_t)(he - p));
        host[he - p] = '\0';
    }
    *port = *tls ? 443 : 80;
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || v <= 0 || v > 65535)
            return -EINVAL;
        *port = (int)v;
    }
    *path = *end ? end : "/";
    return 0;
}

int net_wsc_connect(conn_id_t near, const char *url, const char *bearer, actor_t *target,
                    uint64_t cookie, size_t max_msg_bytes)
{
    bool tls;
    char host[WSC_HOST_MAX];
    int port;
    const char *path;
    if (strlen(url) > WSC_URL_MAX || parse_url(url, &tls, host, sizeof(host), &port, &path) != 0)
        return -EINVAL;
    net_out_t *o = net_out_new(near, OUT_CONNECT, sizeof(wsc_req_t));
    o->hdr.free_fn = connect_msg_free;
    wsc_req_t *r = req_of(o);
    actor_ref(target);
    r->target = target;
    r->cookie = cookie;
    r->max_msg = max_msg_bytes;
    r->url = xstrdup(url);
    r->bearer = bearer ? xstrdup(bearer) : NULL;
    net_post(o);
    return 0;
}

/* Posts the end of an outbound connection to its actor, once. */
static void report_closed(conn_t *c, bool never_opened, int http_status, const char *why)
{
    if (c->target == NULL)
        return;
    net_ws_closed_msg_t *m = MSG_NEW(net_ws_closed_msg_t, NET_MSG_WS_CLOSED);
    m->conn = c->id;
    m->cookie = c->wsc->cookie;
    m->never_opened = never_opened;
    m->http_status = http_status;
    m->by_server = c->close_by_server;
    m->code = c->close_by_server ? c->close_code : (c->peer_close_code ? c->peer_close_code : 1006);
    str_copy(m->reason, c->close_by_server ? c->close_reason : (why ? why : ""), sizeof(m->reason));
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
    ci.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
    ci.protocol = NULL; /* no Sec-WebSocket-Protocol: what OpenAI expects */
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
    bool tls;
    char host[WSC_HOST_MAX];
    int port;
    const char *path;
    conn_t *c = conn_new(thr, NULL);
    if (c == NULL || parse_url(r->url, &tls, host, sizeof(host), &port, &path) != 0) {
        if (c)
            conn_free(c);
        return; /* net_wsc_connect() validated the url; only a full slot table lands here */
    }
    c->target = r->target; /* the reference moves to the connection */
    r->target = NULL;
    c->state = CONN_WS_CLOSING; /* not writable until established */
    wsc_t *w = xcalloc(1, sizeof(*w));
    c->wsc = w;
    w->cookie = r->cookie;
    w->host = xstrdup(host);
    w->path = xstrdup(path);
    w->port = port;
    w->tls = tls;
    w->max_msg = r->max_msg;
    w->bearer = r->bearer;
    r->bearer = NULL;
    w->dns.data = c;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char ports[8];
    snprintf(ports, sizeof(ports), "%d", port);
    int rc = uv_getaddrinfo(&thr->loop, &w->dns, on_resolved, host, ports, &hints);
    if (rc != 0) {
        report_closed(c, true, 0, "dns failure");
        wsc_free(c);
        conn_free(c);
    }
}

static void on_text(conn_t *c, const char *s, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(s, len);
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

int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, conn_t *c, void *in, size_t len)
{
    wsc_t *w = c->wsc;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;
        if (w->bearer) {
            char auth[512];
            int n = snprintf(auth, sizeof(auth), "Bearer %s", w->bearer);
            if (n <= 0 || (size_t)n >= sizeof(auth) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                             (unsigned char *)auth, n, p, end))
                return -1;
            memset(auth, 0, sizeof(auth));
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
        /* Response headers are readable only here (reference 3). */
        if (lws_hdr_custom_copy(wsi, w->request_id, sizeof(w->request_id), "x-request-id:", 13) < 0)
            w->request_id[0] = '\0';
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        w->opened = true;
        c->state = CONN_WS;
        c->last_rx_ns = c->last_ping_ns = clock_now_ns();
        ck_pr_inc_int(&c->thr->ws_open);
        if (c->target == NULL)
            return -1;
        net_ws_open_msg_t *m = MSG_NEW(net_ws_open_msg_t, NET_MSG_WS_OPEN);
        m->hdr.free_fn = net_open_msg_free;
        m->conn = c->id;
        m->query = xstrdup("");
        m->cookie = w->cookie;
        str_copy(m->request_id, w->request_id, sizeof(m->request_id));
        actor_send(c->target, &m->hdr);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        c->last_rx_ns = clock_now_ns();
        /* Never return -1 here mid-frame: lws 4.1.6 overflows its buffer (reference 4). */
        if (w->rx_discard || c->state != CONN_WS) {
            if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0 &&
                w->rx_discard) {
                w->rx_discard = false;
                conn_close(c, 1009, "message too big");
            }
            return 0;
        }
        int rc = ws_reassemble_net(wsi, c, in, len, w->max_msg);
        if (rc < 0) {
            w->rx_discard = true;
            c->rx_len = 0;
            if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
                w->rx_discard = false;
                conn_close(c, 1009, "message too big");
            }
            return 0;
        }
        if (rc == 1) {
            if (!c->rx_binary && !wsp_utf8_valid(c->rx, c->rx_len))
                conn_close(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "bad utf8"); /* at a boundary */
            else if (!c->rx_binary)
                on_text(c, (const char *)c->rx, c->rx_len);
            c->rx_len = 0;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return ws_writeable_net(wsi, c);
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        c->last_rx_ns = clock_now_ns();
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        int status = (int)lws_http_client_http_response(wsi);
        log_info("wsc.connect_error", LOG_S("host", w->host), LOG_I("http_status", status),
                 LOG_S("error", in ? (const char *)in : ""));
        report_closed(c, true, status, in ? (const char *)in : "connect error");
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->state == CONN_WS || c->state == CONN_WS_CLOSING) {
            if (w->opened)
                ck_pr_dec_int(&c->thr->ws_open);
            c->state = CONN_HTTP;
        }
        report_closed(c, !w->opened, 0, "closed");
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return 1; /* shared with the server side */
    default:
        return 1;
    }
}
