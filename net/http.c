/*
 * HTTP side of the network threads: requests, bodies, routing, CORS, error bodies and response
 * writing (SPEC 4), plus the client address and origin rules shared with WebSockets (SPEC 14).
 * Thread: net (every function here).
 */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/httpreq.h"
#include "net/srv.h"

#define HTTP_HDR_BUF       4096
#define HTTP_QUERY_MAX     2048
#define CORS_METHODS       "GET, POST, DELETE, OPTIONS"
#define CORS_HEADERS       "Content-Type, Authorization"
#define CORS_MAX_AGE_S     "600"
#define CTYPE_JSON         "application/json"
#define HTTP_HOST_MAX      256
#define HTTP_XFF_ENTRY_MAX 64 /* longest X-Forwarded-For element we try to parse */
#define US_PER_MS          1000

char *http_hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0)
        return NULL;
    char *s = xmalloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, s, n + 1, tok) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static char *custom_hdr_dup(struct lws *wsi, const char *name_colon)
{
    int nl = (int)strlen(name_colon);
    int n = lws_hdr_custom_length(wsi, name_colon, nl);
    if (n <= 0)
        return NULL;
    char *s = xmalloc((size_t)n + 1);
    if (lws_hdr_custom_copy(wsi, s, n + 1, name_colon, nl) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* URI arguments come from lws already %-decoded, one fragment per name=value; join with '&'. */
char *http_query_dup(struct lws *wsi)
{
    sbuf_t b = SBUF_INIT;
    char frag[HTTP_QUERY_MAX];
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++) {
        if (i)
            sbuf_putc(&b, '&');
        sbuf_puts(&b, frag);
    }
    if (b.data == NULL)
        return xstrdup("");
    return sbuf_take(&b);
}

static bool is_loopback(const uint8_t a[16])
{
    static const uint8_t v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v6_loop, 16) == 0)
        return true;
    return memcmp(a, v4_mapped, 12) == 0 && a[12] == 127;
}

bool http_peer_trusted(const uint8_t a[16])
{
    if (g_config == NULL)
        return false; /* programs and tests without a service configuration */
    for (size_t i = 0; i < g_config->n_trusted_proxies; i++)
        if (cidr_contains(&g_config->trusted_proxies[i], a))
            return true;
    return false;
}

static void set_peer(net_peer_t *p, const uint8_t a[16])
{
    memcpy(p->addr16, a, 16);
    p->loopback = is_loopback(a);
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, v4_mapped, 12) == 0)
        inet_ntop(AF_INET, a + 12, p->ip, sizeof(p->ip));
    else
        inet_ntop(AF_INET6, a, p->ip, sizeof(p->ip));
}

static bool parse_addr(const char *s, uint8_t out[16])
{
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

/*
 * The client address: the socket's peer, or, when that peer is a trusted proxy, the right-most
 * X-Forwarded-For element that is not itself a trusted proxy. An element that is not an address
 * (empty, a name, garbage) ends the walk with the unspecified address "::": a client we cannot
 * name is neither loopback nor the proxy (SPEC 14), whatever the proxy's own address is.
 */
void http_resolve_peer(srv_conn_t *c)
{
    static const uint8_t unknown[16];
    uint8_t addr[16];
    memcpy(addr, c->raw_peer, 16);
    char *xff =
        http_peer_trusted(addr) ? http_hdr_dup(c->base.wsi, WSI_TOKEN_X_FORWARDED_FOR) : NULL;
    /* Several X-Forwarded-For headers arrive joined by ',' (lws_hdr_copy()), in order. */
    for (char *end = xff ? xff + strlen(xff) : NULL; end != NULL;) {
        char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        char *t = start, *e = end;
        while (t < e && (*t == ' ' || *t == '\t'))
            t++;
        while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char entry[HTTP_XFF_ENTRY_MAX];
        uint8_t a[16];
        size_t n = (size_t)(e - t);
        if (n == 0 || n >= sizeof(entry)) {
            memcpy(addr, unknown, 16);
            break;
        }
        memcpy(entry, t, n);
        entry[n] = '\0';
        if (!parse_addr(entry, a)) {
            memcpy(addr, unknown, 16);
            break;
        }
        memcpy(addr, a, 16);
        if (!http_peer_trusted(a) || start == xff)
            break;
        end = start - 1;
    }
    free(xff);
    set_peer(&c->peer, addr);
}

bool http_origin_allowed(struct lws *wsi, const char *origin)
{
    if (origin == NULL || g_config->allow_any_origin)
        return true;
    for (size_t i = 0; i < g_config->n_allowed_origins; i++)
        if (strcasecmp(g_config->allowed_origins[i], origin) == 0)
            return true;
    /*
     * The request's own scheme and Host are allowed (SPEC 14), but only when that Host is one
     * of ours: a DNS-rebinding page sends its own name as Host and as Origin.
     */
    char host[HTTP_HOST_MAX];
    if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0 ||
        !httpreq_host_is_ours(host, g_net.cfg.host, NULL))
        return false;
    char self[300];
    snprintf(self, sizeof(self), "%s://%s", g_net.tls ? "https" : "http", host);
    return strcasecmp(self, origin) == 0;
}

static unsigned request_method(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes tok;
        unsigned m;
    } map[] = {
        {WSI_TOKEN_GET_URI, NET_GET},         {WSI_TOKEN_POST_URI, NET_POST},
        {WSI_TOKEN_OPTIONS_URI, NET_OPTIONS}, {WSI_TOKEN_PUT_URI, NET_PUT},
        {WSI_TOKEN_PATCH_URI, NET_PATCH},     {WSI_TOKEN_DELETE_URI, NET_DELETE},
        {WSI_TOKEN_HEAD_URI, NET_HEAD},
    };
    for (size_t i = 0; i < ARRAY_LEN(map); i++)
        if (lws_hdr_total_length(wsi, map[i].tok) > 0)
            return map[i].m;
    return 0;
}

static const net_http_route_t *find_route(const char *path)
{
    for (int i = 0; i < g_net.n_http_routes; i++) {
        const net_http_route_t *r = g_net.http_routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0)
            return r;
    }
    return NULL;
}

/* Stores a response written from this thread (errors, preflights, local routes). */
static void respond_net(srv_conn_t *c, int status, const char *ctype, char *body, size_t len,
                        const char *extra)
{
    net_out_t *o = net_out_new(c->base.id, OUT_HTTP, len);
    o->code = (uint16_t)status;
    if (len)
        memcpy(o->buf + LWS_PRE, body, len);
    if (extra && *extra)
        o->extra_headers = xstrdup(extra);
    o->text[0] = '\0';
    if (ctype)
        str_copy(o->text, ctype, sizeof(o->text));
    free(body);
    if (c->http_resp)
        msg_free(&c->http_resp->hdr);
    c->http_resp = o;
    c->awaiting_reply = true;
    lws_callback_on_writable(c->base.wsi);
}

void http_respond_net(srv_conn_t *c, net_out_t *o)
{
    if (c->state != CONN_HTTP || !c->awaiting_reply || c->http_resp) {
        msg_free(&o->hdr); /* not ours to answer (an answer came already, or it upgraded) */
        return;
    }
    c->http_resp = o;
    lws_callback_on_writable(c->base.wsi);
}

/*
 * Answers a JSON error from this thread. A request whose body has not all arrived (or whose
 * framing we refused) is closed after the answer: lws would read the rest as the next request.
 */
static void error_net(srv_conn_t *c, int status, const char *code, const char *message)
{
    if (c->content_length > 0 || c->chunked)
        c->close_after = true;
    sbuf_t b = SBUF_INIT;
    net_error_json(&b, false, code, message);
    size_t len = b.len;
    respond_net(c, status, CTYPE_JSON, sbuf_take(&b), len, NULL);
}

/* The route's body limit (SPEC 4: 64 KiB unless the route says more). */
static size_t max_body(const srv_conn_t *c)
{
    return c->route && c->route->max_body ? c->route->max_body : NET_MAX_HTTP_BODY;
}

static void too_large(srv_conn_t *c)
{
    if (max_body(c) == NET_MAX_HTTP_BODY)
        error_net(c, 413, "body_too_large", "request bodies are limited to 64 KiB");
    else
        error_net(c, 413, "body_too_large", "the request body is larger than this endpoint takes");
}

static void reset_request(srv_conn_t *c)
{
    free(c->path);
    free(c->query);
    free(c->authorization);
    free(c->origin);
    free(c->content_type);
    free(c->public_key);
    c->path = c->query = c->authorization = c->origin = c->content_type = c->public_key = NULL;
    sbuf_reset(&c->body);
    c->route = NULL;
    c->content_length = 0;
    c->chunked = false;
    c->body_completed = false;
    memset(&c->chunks, 0, sizeof(c->chunks));
    c->loopback_host = false;
    c->awaiting_reply = false;
    c->close_after = false;
    c->cors = false;
}

void http_conn_destroy(srv_conn_t *c)
{
    reset_request(c);
    sbuf_destroy(&c->body);
    if (c->http_resp)
        msg_free(&c->http_resp->hdr);
    c->http_resp = NULL;
}

static void http_msg_free(msg_t *m)
{
    net_http_msg_t *h = (net_http_msg_t *)m;
    free(h->path);
    free(h->query);
    free(h->authorization);
    free(h->origin);
    free(h->content_type);
    free(h->public_key);
    free(h->body);
    cJSON_Delete(h->json);
    free(h);
}

/* The whole request is here: answer it locally or post it to the route's actor. */
static void dispatch(srv_conn_t *c)
{
    const net_http_route_t *r = c->route;
    if (r->local) {
        /* A GET or HEAD is dispatched from on_request(), while its headers are readable. */
        char *inm = (c->method & (NET_GET | NET_HEAD))
                        ? http_hdr_dup(c->base.wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH)
                        : NULL;
        net_local_req_t req = {c->method, c->path, c->query, &c->peer, inm};
        net_local_resp_t resp;
        memset(&resp, 0, sizeof(resp));
        resp.status = 200;
        r->local(&req, &resp);
        free(inm);
        if (resp.status == 304 || resp.status == 204) {
            free(resp.body);
            resp.body = NULL;
            resp.body_len = 0;
        }
        respond_net(c, resp.status, resp.content_type ? resp.content_type : CTYPE_JSON, resp.body,
                    resp.body_len, resp.extra_headers);
        return;
    }
    net_http_msg_t *m = MSG_NEW(net_http_msg_t, NET_MSG_HTTP);
    m->hdr.free_fn = http_msg_free;
    m->conn = c->base.id;
    m->method = c->method;
    m->path = xstrdup(c->path);
    m->query = xstrdup(c->query ? c->query : "");
    m->authorization = c->authorization ? xstrdup(c->authorization) : NULL;
    m->origin = c->origin ? xstrdup(c->origin) : NULL;
    m->content_type = c->content_type ? xstrdup(c->content_type) : NULL;
    m->public_key = c->public_key ? xstrdup(c->public_key) : NULL;
    m->peer = c->peer;
    m->loopback_host = c->loopback_host;
    if (c->body.len > 0) {
        m->body_len = c->body.len;
        m->body = sbuf_take(&c->body);
        m->json = cJSON_ParseWithLength(m->body, m->body_len);
        m->json_invalid = m->json == NULL;
    }
    c->awaiting_reply = true;
    actor_send(r->target, &m->hdr);
}

/*
 * How the body is framed (SPEC 14): Content-Length, a chunked Transfer-Encoding, or neither.
 * lws would take the first of several lengths, read "abc" as 0 and hand a chunked body over
 * undecoded; here every such shape is refused (400 invalid_request, then the connection is
 * closed) before a byte of the body is used. Returns false when it answered.
 */
static bool read_framing(struct lws *wsi, srv_conn_t *c)
{
    bool has_cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    char *te = http_hdr_dup(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    const char *bad = NULL;
    if (te && has_cl) {
        bad = "Transfer-Encoding and Content-Length together";
    } else if (te) {
        if (!httpreq_te_is_chunked(te))
            bad = "the only transfer coding accepted is chunked";
        else if (!(c->method & (NET_POST | NET_PUT | NET_PATCH)))
            bad = "a chunked body is only accepted with POST, PUT or PATCH";
        c->chunked = true;
    } else if (has_cl) {
        char *cl = http_hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
        uint64_t n = 0;
        if (cl == NULL || httpreq_content_length(cl, &n) != 0)
            bad = "Content-Length is malformed or conflicting";
        c->content_length = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
        free(cl);
    }
    free(te);
    if (bad == NULL)
        return true;
    c->close_after = true;
    error_net(c, 400, "invalid_request", bad);
    return false;
}

static int on_request(struct lws *wsi, srv_conn_t *c, const char *uri)
{
    reset_request(c);
    metric_inc(&g_metrics.http_requests_total, 1);
    c->method = request_method(wsi);
    c->path = xstrdup(uri);
    c->query = http_query_dup(wsi);
    c->authorization = http_hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    c->origin = http_hdr_dup(wsi, WSI_TOKEN_ORIGIN);
    c->content_type = http_hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
    c->public_key = custom_hdr_dup(wsi, "x-switchboard-key:");
    char host[HTTP_HOST_MAX], name[HTTP_HOST_MAX];
    c->loopback_host = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0 &&
                       httpreq_host_name(host, name, sizeof(name)) &&
                       httpreq_host_is_loopback(name);
    http_resolve_peer(c);
    c->cors = c->origin && http_origin_allowed(wsi, c->origin);

    if (!read_framing(wsi, c))
        return 0;
    if (!srv_recount(c, c->peer.addr16)) {
        c->close_after = true;
        error_net(c, 503, "at_capacity", "too many connections from this address");
        return 0;
    }
    if (c->method == NET_OPTIONS) {
        if (c->origin && !c->cors) {
            error_net(c, 403, "forbidden_origin", "this origin is not allowed");
            return 0;
        }
        respond_net(c, 204, NULL, NULL, 0,
                    "Access-Control-Allow-Methods: " CORS_METHODS "\r\n"
                    "Access-Control-Allow-Headers: " CORS_HEADERS "\r\n"
                    "Access-Control-Max-Age: " CORS_MAX_AGE_S "\r\n");
        return 0;
    }
    c->route = find_route(c->path);
    if (c->route == NULL) {
        error_net(c, 404, "not_found", "no such endpoint");
        return 0;
    }
    if (!(c->route->methods & c->method)) {
        error_net(c, 405, "method_not_allowed", "this method is not allowed here");
        return 0;
    }
    if (c->route->foreign_origin_403 && c->origin && !c->cors) {
        c->close_after = c->content_length > 0 || c->chunked; /* its body is never read */
        error_net(c, 403, "forbidden_origin", "this origin is not allowed");
        return 0;
    }
    if (c->content_length > max_body(c)) {
        too_large(c);
        return 0;
    }
    if (c->chunked)
        return 0; /* dispatched when the last chunk has been decoded (on_body()) */
    if (c->content_length == 0 || c->method == NET_GET || c->method == NET_HEAD) {
        /* A GET or HEAD is answered without its body, which lws would read as what follows. */
        c->close_after = c->content_length > 0;
        dispatch(c);
    }
    return 0; /* otherwise wait for HTTP_BODY_COMPLETION */
}

/* A piece of the body: kept as it is, or decoded when it comes chunked. */
static void on_body(srv_conn_t *c, const void *in, size_t len)
{
    if (c->route == NULL || c->awaiting_reply)
        return;
    if (!c->chunked) {
        if (c->body.len + len > max_body(c)) {
            too_large(c);
            return;
        }
        sbuf_append(&c->body, in, len);
        return;
    }
    switch (httpreq_chunked_feed(&c->chunks, in, len, &c->body, max_body(c), NULL)) {
    case HTTPREQ_CHUNKED_MORE:
        return;
    case HTTPREQ_CHUNKED_DONE:
        /* lws still expects a body (it does not decode chunks): nothing after it is framed. */
        c->close_after = true;
        dispatch(c);
        return;
    case HTTPREQ_CHUNKED_TOO_BIG:
        too_large(c);
        return;
    case HTTPREQ_CHUNKED_MALFORMED:
        error_net(c, 400, "invalid_request", "the chunked body is malformed");
        return;
    }
}

void http_arm_deadline(srv_conn_t *c)
{
    uint32_t ms =
        g_net.cfg.request_timeout_ms ? g_net.cfg.request_timeout_ms : NET_REQUEST_TIMEOUT_MS;
    lws_set_timer_usecs(c->base.wsi, (lws_usec_t)ms * US_PER_MS);
}

/*
 * The request's deadline (SPEC 14): armed when the connection is accepted and again when a
 * response has been written, so it runs from no later than the request's first byte. A request
 * whose head has arrived gets 408 and the connection is closed after it; one still in its head
 * (or an idle keep-alive connection) is closed, as lws gives no way to answer before the head.
 * A whole request waiting for its actor, and an upgraded connection, are left alone.
 */
static int on_deadline(srv_conn_t *c)
{
    if (c->state != CONN_HTTP || c->awaiting_reply)
        return 0;
    if (c->raw_refused || c->path == NULL)
        return -1;
    c->close_after = true;
    error_net(c, 408, "request_timeout", "the request did not arrive in time");
    return 0;
}

/*
 * lws gave up on the request line (a method it does not know) and made the socket raw: answer
 * the JSON 405 of SPEC 14 once and close. Returns -1 once written.
 */
static int on_raw(struct lws *wsi, srv_conn_t *c, enum lws_callback_reasons reason)
{
    if (reason == LWS_CALLBACK_RAW_RX && !c->raw_refused) {
        c->raw_refused = true;
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (reason != LWS_CALLBACK_RAW_WRITEABLE || !c->raw_refused)
        return 0;
    sbuf_t body = SBUF_INIT, b = SBUF_INIT;
    net_error_json(&body, false, "method_not_allowed", "this method is not allowed here");
    sbuf_reserve(&b, LWS_PRE);
    b.len = LWS_PRE;
    char head[160];
    snprintf(head, sizeof(head),
             "HTTP/1.1 405 Method Not Allowed\r\ncontent-type: " CTYPE_JSON
             "\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n",
             body.len);
    sbuf_puts(&b, head);
    sbuf_append(&b, body.data, body.len);
    lws_write(wsi, (unsigned char *)b.data + LWS_PRE, b.len - LWS_PRE, LWS_WRITE_RAW);
    sbuf_destroy(&body);
    sbuf_destroy(&b);
    return -1;
}

/* Adds one header; a header that does not fit the buffer is left out (and logged). */
static void add_header(struct lws *wsi, const char *name_colon, const char *value,
                       unsigned char **p, unsigned char *end)
{
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)name_colon,
                                    (const unsigned char *)value, (int)strlen(value), p, end))
        log_warn("http.header", LOG_S("error", "response header does not fit"),
                 LOG_S("name", name_colon));
}

/* Adds "Name: value\r\n" lines as headers. */
static void add_extra_headers(struct lws *wsi, const char *extra, unsigned char **p,
                              unsigned char *end)
{
    while (extra && *extra) {
        const char *eol = strstr(extra, "\r\n");
        size_t line = eol ? (size_t)(eol - extra) : strlen(extra);
        const char *colon = memchr(extra, ':', line);
        if (colon) {
            char name[128], value[512];
            size_t nl = (size_t)(colon - extra) + 1;
            if (nl < sizeof(name)) {
                memcpy(name, extra, nl);
                name[nl] = '\0';
                const char *v = colon + 1;
                while (*v == ' ')
                    v++;
                size_t vl = line - (size_t)(v - extra);
                if (vl < sizeof(value)) {
                    memcpy(value, v, vl);
                    value[vl] = '\0';
                    add_header(wsi, name, value, p, end);
                }
            }
        }
        extra = eol ? eol + 2 : NULL;
    }
}

static int on_writeable(struct lws *wsi, srv_conn_t *c)
{
    net_out_t *o = c->http_resp;
    if (o == NULL)
        return 0;
    unsigned char hdr[LWS_PRE + HTTP_HDR_BUF];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    const char *ctype = o->text[0] ? o->text : CTYPE_JSON;
    bool no_body = o->code == 204 || o->code == 304;
    if (lws_add_http_common_headers(wsi, o->code, no_body ? NULL : ctype, o->len, &p, end))
        return -1;
    if (c->cors) {
        add_header(wsi, "access-control-allow-origin:", c->origin, &p, end);
        add_header(wsi, "vary:", "Origin", &p, end);
    }
    add_extra_headers(wsi, o->extra_headers, &p, end);
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (o->len > 0 && c->method != NET_HEAD &&
        lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_HTTP_FINAL) < (int)o->len)
        return -1;
    /* What follows a refused or unread body would be parsed as the next request. */
    bool close = c->close_after || o->code == 413;
    msg_free(&o->hdr);
    c->http_resp = NULL;
    reset_request(c);
    if (close || lws_http_transaction_completed(wsi))
        return -1;
    http_arm_deadline(c); /* the next request's */
    return 0;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, srv_conn_t *c, void *in,
                  size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        char path[256];
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
            return -1;
        bool found = false;
        for (int i = 0; i < g_net.n_ws_routes && !found; i++)
            found = strcmp(g_net.ws_routes[i]->path, path) == 0;
        if (!found)
            return -1; /* no WebSocket endpoint here */
        /* A trusted proxy's upgrade counts against its client from here on. */
        http_resolve_peer(c);
        return srv_recount(c, c->peer.addr16) ? 0 : -1;
    }
    case LWS_CALLBACK_HTTP:
        return on_request(wsi, c, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        on_body(c, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c->body_completed && c->awaiting_reply && c->http_resp == NULL) {
            /*
             * Again, while an actor answers: lws 4.1.6 has more bytes of this socket buffered
             * (a pipelined request) and, the request staying in its body state until answered,
             * calls this on every pass of its buffered-input service, which took the whole
             * network thread. Pipelining is not supported: close.
             */
            return -1;
        }
        c->body_completed = true;
        if (c->route && !c->awaiting_reply && !c->chunked)
            dispatch(c);
        return 0;
    case LWS_CALLBACK_TIMER:
        return on_deadline(c);
    case LWS_CALLBACK_RAW_ADOPT:
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
    case LWS_CALLBACK_RAW_CLOSE:
        return on_raw(wsi, c, reason);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, c);
    case LWS_CALLBACK_CLOSED_HTTP:
        return 0;
    default:
        return 1;
    }
}
