/*
 * HTTP side of the network threads: requests, bodies, routing, CORS, error bodies and response
 * writing (SPEC 4), plus the client address and origin rules shared with WebSockets (SPEC 14).
 * Thread: net (every function here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/httpreq.h"
#include "net/srv.h"

#define NET_PATH_MAX       2048
#define CORS_METHODS       "GET, POST, DELETE, OPTIONS"
#define CORS_HEADERS       "Content-Type, Authorization, X-Switchboard-Key"
#define CORS_MAX_AGE_S     "600"
#define CTYPE_JSON         "application/json"
#define HTTP_HOST_MAX      256
#define HTTP_XFF_ENTRY_MAX 64 /* longest X-Forwarded-For element we try to parse */
#define US_PER_MS          1000

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
    const char *hv = c->head.fields[HH_X_FORWARDED_FOR];
    char *xff = http_peer_trusted(addr) && hv ? xstrdup(hv) : NULL;
    /* Several X-Forwarded-For headers arrive joined by ", " (httphead.c), in order. */
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

static bool (*origin_hook)(const char *origin);

void net_set_origin_hook(bool (*allowed)(const char *origin))
{
    origin_hook = allowed;
}

/*
 * The request's own scheme and Host (SPEC 14), but only when that Host is one of ours: a
 * DNS-rebinding page sends its own name as Host and as Origin.
 */
bool http_same_origin(const char *host, const char *origin)
{
    if (origin == NULL || host == NULL || strlen(host) >= HTTP_HOST_MAX ||
        !httpreq_host_is_ours(host, g_net.cfg.host, g_config->public_host))
        return false;
    char self[HTTP_HOST_MAX + 16];
    snprintf(self, sizeof(self), "%s://%s", g_net.tls ? "https" : "http", host);
    return strcasecmp(self, origin) == 0;
}

bool http_origin_allowed(const char *host, const char *origin)
{
    if (origin == NULL || g_config->allow_any_origin)
        return true;
    for (size_t i = 0; i < g_config->n_allowed_origins; i++)
        if (strcasecmp(g_config->allowed_origins[i], origin) == 0)
            return true;
    if (origin_hook && origin_hook(origin))
        return true; /* a tenant's allowedOrigins (SPEC 16) */
    return http_same_origin(host, origin);
}

static unsigned method_bit(const char *m)
{
    static const struct {
        const char *name;
        unsigned bit;
    } map[] = {
        {"GET", NET_GET},     {"POST", NET_POST},     {"OPTIONS", NET_OPTIONS}, {"PUT", NET_PUT},
        {"PATCH", NET_PATCH}, {"DELETE", NET_DELETE}, {"HEAD", NET_HEAD},
    };
    for (size_t i = 0; i < ARRAY_LEN(map); i++)
        if (strcmp(m, map[i].name) == 0) /* methods are case-sensitive (RFC 9110 9.1) */
            return map[i].bit;
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

/* Stores a response made on this thread (errors, preflights, local routes). */
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
    c->phase = HTTP_REPLY;
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
 * Answers a JSON error from this thread. A request whose body has not all been read is closed
 * after the answer: what follows on the socket is not a request we could find the start of.
 */
void http_error_net(srv_conn_t *c, int status, const char *code, const char *message,
                    const char *extra_headers)
{
    if (c->phase != HTTP_REPLY && (c->body_left > 0 || c->chunked))
        c->close_after = true;
    sbuf_t b = SBUF_INIT;
    net_error_json(&b, false, code, message);
    size_t len = b.len;
    respond_net(c, status, CTYPE_JSON, sbuf_take(&b), len, extra_headers);
}

static void error_net(srv_conn_t *c, int status, const char *code, const char *message)
{
    http_error_net(c, status, code, message, NULL);
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
    httphead_free(&c->head);
    memset(&c->head, 0, sizeof(c->head));
    free(c->path);
    c->path = NULL;
    c->query = NULL;
    c->method = 0;
    sbuf_reset(&c->body);
    c->route = NULL;
    c->body_left = 0;
    c->chunked = false;
    memset(&c->chunks, 0, sizeof(c->chunks));
    c->loopback_host = false;
    c->awaiting_reply = false;
    c->close_after = false;
    c->cors = false;
    c->phase = HTTP_HEAD;
}

void http_conn_destroy(srv_conn_t *c)
{
    reset_request(c);
    sbuf_destroy(&c->body);
    if (c->http_resp)
        msg_free(&c->http_resp->hdr);
    c->http_resp = NULL;
}

static char *dup_field(const srv_conn_t *c, httphead_field_t f)
{
    return c->head.fields[f] ? xstrdup(c->head.fields[f]) : NULL;
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
    free(h->host);
    free(h->twilio_signature);
    free(h->body);
    cJSON_Delete(h->json);
    msg_block_free(h);
}

/* The whole request is here: answer it locally or post it to the route's actor. */
static void dispatch(srv_conn_t *c)
{
    const net_http_route_t *r = c->route;
    c->phase = HTTP_REPLY;
    if (r->local) {
        net_local_req_t req = {c->method, c->path, c->query, &c->peer,
                               c->head.fields[HH_IF_NONE_MATCH]};
        net_local_resp_t resp;
        memset(&resp, 0, sizeof(resp));
        resp.status = 200;
        r->local(&req, &resp);
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
    m->authorization = dup_field(c, HH_AUTHORIZATION);
    m->origin = dup_field(c, HH_ORIGIN);
    m->content_type = dup_field(c, HH_CONTENT_TYPE);
    m->public_key = dup_field(c, HH_X_SWITCHBOARD_KEY);
    m->host = dup_field(c, HH_HOST);
    m->twilio_signature = dup_field(c, HH_X_TWILIO_SIGNATURE);
    m->tls = g_net.tls;
    m->peer = c->peer;
    m->loopback_host = c->loopback_host;
    m->same_origin = http_same_origin(c->head.fields[HH_HOST], c->head.fields[HH_ORIGIN]);
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
 * Several different lengths, a malformed one, Transfer-Encoding with Content-Length, or a coding
 * other than chunked are refused (400 invalid_request, then the connection is closed) before a
 * byte of the body is used. Returns false when it answered.
 */
static bool read_framing(srv_conn_t *c)
{
    const char *cl = c->head.fields[HH_CONTENT_LENGTH];
    const char *te = c->head.fields[HH_TRANSFER_ENCODING];
    const char *bad = NULL;
    if (te && cl) {
        bad = "Transfer-Encoding and Content-Length together";
    } else if (te) {
        if (!httpreq_te_is_chunked(te))
            bad = "the only transfer coding accepted is chunked";
        else if (!(c->method & (NET_POST | NET_PUT | NET_PATCH)))
            bad = "a chunked body is only accepted with POST, PUT or PATCH";
        c->chunked = true;
    } else if (cl) {
        uint64_t n = 0;
        if (httpreq_content_length(cl, &n) != 0)
            bad = "Content-Length is malformed or conflicting";
        c->body_left = n;
    }
    if (bad == NULL)
        return true;
    c->close_after = true;
    error_net(c, 400, "invalid_request", bad);
    return false;
}

/* The head has been read; checks it, routes it and either answers, upgrades, dispatches a
 * body-less request, or starts reading the body. */
static void on_request(srv_conn_t *c)
{
    metric_inc(&g_metrics.http_requests_total, 1);
    c->method = method_bit(c->head.method);
    const char *host = c->head.fields[HH_HOST];
    char name[HTTP_HOST_MAX];
    c->loopback_host =
        host && httpreq_host_name(host, name, sizeof(name)) && httpreq_host_is_loopback(name);
    http_resolve_peer(c);
    const char *origin = c->head.fields[HH_ORIGIN];
    c->cors = origin && http_origin_allowed(host, origin);
    /* HTTP/1.0, and a client that says so, get one request per connection. */
    if (c->head.minor == 0 || httphead_has_token(c->head.fields[HH_CONNECTION], "close"))
        c->close_after = true;

    if (!read_framing(c))
        return;
    if (!srv_recount(c, c->peer.addr16)) {
        c->close_after = true;
        error_net(c, 503, "at_capacity", "too many connections from this address");
        return;
    }
    if (c->method == 0) {
        c->close_after = true;
        error_net(c, 405, "method_not_allowed", "this method is not allowed here");
        return;
    }
    char path[NET_PATH_MAX];
    int prc = httphead_path(c->head.target, path, sizeof(path), &c->query);
    if (prc == -EINVAL || prc == -ENOSPC) {
        c->close_after = true; /* a client that sends this is not one to keep talking to */
        error_net(c, 400, "invalid_request",
                  prc == -ENOSPC ? "the request target is too long"
                                 : "the request target must be a path (origin form)");
        return;
    }
    c->path = xstrdup(prc == 0 ? path : "");
    if (c->method == NET_OPTIONS) {
        if (origin && !c->cors) {
            error_net(c, 403, "forbidden_origin", "this origin is not allowed");
            return;
        }
        respond_net(c, 204, NULL, NULL, 0,
                    "Access-Control-Allow-Methods: " CORS_METHODS "\r\n"
                    "Access-Control-Allow-Headers: " CORS_HEADERS "\r\n"
                    "Access-Control-Max-Age: " CORS_MAX_AGE_S "\r\n");
        return;
    }
    if (prc == 0 && c->method == NET_GET &&
        httphead_has_token(c->head.fields[HH_UPGRADE], "websocket")) {
        const net_ws_route_t *wr = ws_find_route(c->path);
        if (wr != NULL) {
            ws_upgrade_net(c, wr);
            return;
        }
    }
    c->route = prc == 0 ? find_route(c->path) : NULL;
    if (c->route == NULL) {
        error_net(c, 404, "not_found", "no such endpoint");
        return;
    }
    if (!(c->route->methods & c->method)) {
        error_net(c, 405, "method_not_allowed", "this method is not allowed here");
        return;
    }
    if (c->route->foreign_origin_403 && origin && !c->cors) {
        error_net(c, 403, "forbidden_origin", "this origin is not allowed");
        return;
    }
    if (c->body_left > max_body(c)) {
        too_large(c);
        return;
    }
    if (c->method & (NET_GET | NET_HEAD)) {
        /* A GET or HEAD is answered without its body, which is not read. */
        c->close_after = c->close_after || c->body_left > 0 || c->chunked;
        c->body_left = 0;
        c->chunked = false;
        dispatch(c);
        return;
    }
    if (c->body_left == 0 && !c->chunked) {
        dispatch(c);
        return;
    }
    c->phase = HTTP_BODY;
}

/* Drops the first n bytes of c->in. */
static void consume_in(srv_conn_t *c, size_t n)
{
    memmove(c->in.data, c->in.data + n, c->in.len - n);
    c->in.len -= n;
}

static void read_body(srv_conn_t *c)
{
    if (!c->chunked) {
        size_t take = c->in.len < c->body_left ? c->in.len : (size_t)c->body_left;
        if (c->body.len + take > max_body(c)) {
            too_large(c);
            return;
        }
        sbuf_append(&c->body, c->in.data, take);
        consume_in(c, take);
        c->body_left -= take;
        if (c->body_left == 0)
            dispatch(c);
        return;
    }
    size_t used = 0;
    httpreq_chunked_rc_t rc = httpreq_chunked_feed(&c->chunks, (const uint8_t *)c->in.data,
                                                   c->in.len, &c->body, max_body(c), &used);
    consume_in(c, used);
    switch (rc) {
    case HTTPREQ_CHUNKED_MORE:
        return;
    case HTTPREQ_CHUNKED_DONE:
        c->chunked = false; /* read to its end: the connection may go on */
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

/* Reads as many requests out of c->in as it can: a head, then its body, until one waits for
 * its answer. Bytes beyond that (a pipelined request) wait in c->in; past a bound, reading
 * stops until the answer has been written. */
void http_rx_net(srv_conn_t *c)
{
    while (c->state == CONN_HTTP && c->in.len > 0) {
        if (c->phase == HTTP_REPLY) {
            if (c->in.len > HTTPHEAD_MAX && !c->rx_paused) {
                lws_rx_flow_control(c->base.wsi, 0);
                c->rx_paused = true;
            }
            return;
        }
        if (c->phase == HTTP_BODY) {
            read_body(c);
            continue;
        }
        int n = httphead_end((const uint8_t *)c->in.data, c->in.len);
        if (n == 0)
            return;
        if (n < 0) {
            c->close_after = true;
            error_net(c, 431, "headers_too_large", "the request head is larger than 8 KiB");
            log_info("http.refused", LOG_S("error", "request head too large"),
                     LOG_S("ip", c->peer.ip[0] ? c->peer.ip : "?"));
            return;
        }
        const char *why = NULL;
        int rc = httphead_parse(&c->head, (const uint8_t *)c->in.data, (size_t)n, &why);
        consume_in(c, (size_t)n);
        if (rc != 0) {
            c->close_after = true;
            if (rc == -EMSGSIZE)
                error_net(c, 431, "headers_too_large", "the request has too many header fields");
            else
                error_net(c, 400, "invalid_request", why);
            return;
        }
        on_request(c);
    }
}

/* The reason phrase of status (RFC 9110 15); any text is valid, these are the usual ones. */
static const char *reason_phrase(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

int http_writeable_net(srv_conn_t *c)
{
    net_out_t *o = c->http_resp;
    if (o == NULL)
        return 0;
    bool close = c->close_after || o->code == 413;
    bool no_body = o->code == 204 || o->code == 304;
    sbuf_t b = SBUF_INIT;
    sbuf_reserve(&b, LWS_PRE + 512 + o->len);
    b.len = LWS_PRE;
    sbuf_printf(&b, "HTTP/1.1 %u %s\r\n", (unsigned)o->code, reason_phrase(o->code));
    if (!no_body)
        sbuf_printf(&b, "content-type: %s\r\ncontent-length: %zu\r\n",
                    o->text[0] ? o->text : CTYPE_JSON, o->len);
    if (c->cors)
        sbuf_printf(&b, "access-control-allow-origin: %s\r\nvary: Origin\r\n",
                    c->head.fields[HH_ORIGIN]);
    if (o->extra_headers)
        sbuf_puts(&b, o->extra_headers);
    if (close)
        sbuf_puts(&b, "connection: close\r\n");
    sbuf_puts(&b, "\r\n");
    if (o->len > 0 && !no_body && c->method != NET_HEAD)
        sbuf_append(&b, o->buf + LWS_PRE, o->len);
    int rc = srv_write(c, b.data + LWS_PRE, b.len - LWS_PRE);
    sbuf_destroy(&b);
    msg_free(&o->hdr);
    c->http_resp = NULL;
    reset_request(c);
    if (rc != 0)
        return -1;
    if (close)
        return srv_finish(c);
    http_arm_deadline(c); /* the next request's */
    if (c->rx_paused) {
        lws_rx_flow_control(c->base.wsi, 1);
        c->rx_paused = false;
    }
    http_rx_net(c); /* a pipelined request may be waiting */
    return 0;
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
 * that has begun gets 408 and the connection is closed after it; an idle kept-alive connection
 * is closed. A whole request waiting for its actor is left alone.
 */
int http_deadline_net(srv_conn_t *c)
{
    if (c->awaiting_reply || c->http_resp)
        return 0;
    if (c->phase == HTTP_HEAD && c->in.len == 0)
        return -1;
    c->close_after = true;
    c->phase = HTTP_REPLY;
    error_net(c, 408, "request_timeout", "the request did not arrive in time");
    return 0;
}
