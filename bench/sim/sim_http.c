/*
 * HTTP side of the simulator: the check at the WebSocket upgrade (path, --refuse, bearer
 * token; a refusal is a real HTTP status the client sees), the routes (/sim/events,
 * /sim/stats, /v1/chat/completions with its --chat-delay-ms) and response writing.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "bench/sim/sim.h"

#define HTTP_MAX_BODY_BYTES (8u << 20)
#define HTTP_HDR_BUF_BYTES  4096
#define HTTP_PATH_MAX       256
#define CTYPE_JSON          "application/json"
#define REALTIME_PATH       "/v1/realtime"
#define CHAT_PATH           "/v1/chat/completions"

typedef enum { M_OTHER = 0, M_GET, M_POST, M_DELETE, M_HEAD } method_t;

typedef struct sim_http {
    method_t method;
    char path[HTTP_PATH_MAX];
    bool has_bearer;
    bool body_too_big;
    sbuf_t body;
    /* The answer, once known. */
    bool ready;
    int status;
    const char *ctype;
    sbuf_t headers; /* extra "Name: value\r\n" lines */
    sbuf_t out;
    uint64_t due_ns;
} sim_http_t;

#define INSECURE_KEY_PROTOCOL "openai-insecure-api-key."

/*
 * True for "Authorization: Bearer <something>" (any case for the scheme), the only check the
 * API makes, or, for browsers that cannot set headers, a WebSocket subprotocol
 * "openai-insecure-api-key.<something>".
 */
static bool bearer_ok(struct lws *wsi)
{
    char auth[1024];
    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        strncasecmp(auth, "Bearer ", 7) == 0) {
        for (const char *p = auth + 7; *p; p++)
            if (*p != ' ')
                return true;
    }
    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_PROTOCOL) > 0) {
        const char *k = strstr(auth, INSECURE_KEY_PROTOCOL);
        k = k ? k + strlen(INSECURE_KEY_PROTOCOL) : NULL;
        return k && *k && *k != ',' && *k != ' ';
    }
    return false;
}

static method_t request_method(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
        return M_GET;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
        return M_POST;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0)
        return M_DELETE;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
        return M_HEAD;
    return M_OTHER;
}

/* Writes status, headers and body at once (for refusals inside CONFIRM_UPGRADE). */
static int write_response(struct lws *wsi, int status, const char *ctype, const sbuf_t *extra,
                          const char *body, size_t len, bool head_only)
{
    unsigned char hdr[LWS_PRE + HTTP_HDR_BUF_BYTES];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end))
        return -1;
    const char *line = extra ? extra->data : NULL;
    while (line && *line) {
        const char *colon = strchr(line, ':'), *eol = strstr(line, "\r\n");
        if (colon == NULL || eol == NULL || colon > eol)
            break;
        char name[64], value[256];
        size_t nl = (size_t)(colon - line) + 1, vl = (size_t)(eol - colon - 2);
        if (nl < sizeof(name) && vl < sizeof(value)) {
            memcpy(name, line, nl);
            name[nl] = '\0';
            memcpy(value, colon + 2, vl);
            value[vl] = '\0';
            if (lws_add_http_header_by_name(wsi, (unsigned char *)name, (unsigned char *)value,
                                            (int)vl, &p, end))
                return -1;
        }
        line = eol + 2;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len > 0 && !head_only) {
        unsigned char *buf = xmalloc(LWS_PRE + len);
        memcpy(buf + LWS_PRE, body, len);
        int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        if (n < (int)len)
            return -1;
    }
    return 0;
}

/* ---- The upgrade ----------------------------------------------------------------------------- */

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Client Error" : "Server Error";
    }
}

/*
 * Answers an upgrade we refuse with a real HTTP status; returns 1 as CONFIRM_UPGRADE wants.
 * The status line is written by hand: at this point lws has not recorded the request's HTTP
 * version and would answer "HTTP/1.0", which some clients (Python websockets) reject.
 */
static int refuse_upgrade(struct lws *wsi, int status, const char *message, const char *type,
                          const char *code)
{
    sbuf_t body = SBUF_INIT, b = SBUF_INIT;
    sim_chat_error_body(&body, message, type, NULL, code);
    sim_conn_msg_begin(&b);
    sbuf_printf(&b, "HTTP/1.1 %d %s\r\ncontent-type: " CTYPE_JSON "\r\ncontent-length: %zu\r\n\r\n",
                status, status_text(status), body.len);
    sbuf_append(&b, body.data, body.len);
    size_t len = b.len - LWS_PRE;
    int n = lws_write(wsi, (unsigned char *)b.data + LWS_PRE, len, LWS_WRITE_HTTP_HEADERS);
    sbuf_destroy(&b);
    sbuf_destroy(&body);
    return n < (int)len ? -1 : 1;
}

static int confirm_upgrade(struct lws *wsi, sim_conn_t *c)
{
    char path[HTTP_PATH_MAX];
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
        return -1;
    if (strcmp(path, REALTIME_PATH) != 0)
        return refuse_upgrade(wsi, 404,
                              "Invalid URL: WebSocket upgrades are served at "
                              "/v1/realtime only.",
                              "invalid_request_error", NULL);
    char buf[128];
    const char *model = lws_get_urlarg_by_name(wsi, "model=", buf, sizeof(buf));
    str_copy(c->hello.model, model ? model : "", sizeof(c->hello.model));
    c->hello.beta_header = lws_hdr_custom_length(wsi, "openai-beta:", 12) > 0;
    bool auth = bearer_ok(wsi);
    if (g_sim_cfg.refuse || !auth) {
        int status = g_sim_cfg.refuse ? g_sim_cfg.refuse_status : 401;
        char id[SIM_ID_MAX];
        sim_id(id, "sess_");
        sim_record_open(id, model ? model : "", auth, status, c->hello.beta_header, NULL);
        g_sim_stats.upgrades_rejected++;
        log_info("sim.upgrade.refused", LOG_I("status", status));
        switch (status) {
        case 401:
            return refuse_upgrade(wsi, 401,
                                  auth ? "Incorrect API key provided (switchboard-sim --refuse)."
                                       : "You didn't provide an API key. You need to provide "
                                         "your API key in an Authorization header using Bearer "
                                         "auth (i.e. Authorization: Bearer YOUR_KEY).",
                                  "invalid_request_error", "invalid_api_key");
        case 403:
            return refuse_upgrade(wsi, 403,
                                  "You are not allowed to use this API "
                                  "(switchboard-sim --refuse).",
                                  "invalid_request_error", "unsupported_country_region_territory");
        case 404:
            return refuse_upgrade(wsi, 404,
                                  "The model does not exist or you do not have access "
                                  "to it (switchboard-sim --refuse).",
                                  "invalid_request_error", "model_not_found");
        default:
            return refuse_upgrade(wsi, status,
                                  "The server is currently overloaded, please try "
                                  "again later (switchboard-sim --refuse).",
                                  "server_error", NULL);
        }
    }
    return 0;
}

/* ---- Routes ---------------------------------------------------------------------------------- */

static sim_http_t *http_of(sim_conn_t *c)
{
    if (c->http == NULL) {
        c->http = xcalloc(1, sizeof(sim_http_t));
        sbuf_init(&c->http->body);
        sbuf_init(&c->http->headers);
        sbuf_init(&c->http->out);
    }
    return c->http;
}

/* Makes the answer ready; it is written delay_ms from now. */
static void respond(sim_conn_t *c, int status, const char *ctype, uint32_t delay_ms)
{
    sim_http_t *h = c->http;
    h->ready = true;
    h->status = status;
    h->ctype = ctype;
    h->due_ns = delay_ms ? clock_now_ns() + delay_ms * NS_PER_MS : 0;
    if (h->due_ns)
        sim_conn_wake_at(c, h->due_ns);
    else
        lws_callback_on_writable(c->wsi);
}

static void error_response(sim_conn_t *c, int status, const char *message, const char *code)
{
    sim_chat_error_body(&c->http->out, message, "invalid_request_error", NULL, code);
    respond(c, status, CTYPE_JSON, 0);
}

static void stats_json(sbuf_t *b)
{
    const sim_stats_t *s = &g_sim_stats;
    sbuf_printf(b,
                "{\"sessions_open\":%llu,\"sessions_total\":%llu,\"appends\":%llu,"
                "\"deltas\":%llu,\"responses\":%llu,\"upgrades_rejected\":%llu,"
                "\"chat_requests\":%llu,\"faults\":{\"drop\":%llu,\"expire\":%llu,"
                "\"chat_429\":%llu,\"chat_500\":%llu},\"mode\":\"%s\"}",
                (unsigned long long)s->sessions_open, (unsigned long long)s->sessions_total,
                (unsigned long long)s->appends, (unsigned long long)s->deltas,
                (unsigned long long)s->responses, (unsigned long long)s->upgrades_rejected,
                (unsigned long long)s->chat_requests, (unsigned long long)s->faults[SIM_FAULT_DROP],
                (unsigned long long)s->faults[SIM_FAULT_EXPIRE],
                (unsigned long long)s->faults[SIM_FAULT_CHAT_429],
                (unsigned long long)s->faults[SIM_FAULT_CHAT_500],
                g_sim_cfg.mode == SIM_MODE_ECHO ? "echo" : "agent");
}

/* The whole request is here (body included): route it. */
static void dispatch(sim_conn_t *c)
{
    sim_http_t *h = c->http;
    const char *p = h->path;
    if (h->body_too_big) {
        error_response(c, 413, "Request body too large.", "request_too_large");
        return;
    }
    if (strcmp(p, CHAT_PATH) == 0) {
        if (h->method != M_POST) {
            error_response(c, 405, "Use POST for /v1/chat/completions.", NULL);
            return;
        }
        int status = 200;
        const char *ctype = CTYPE_JSON;
        g_sim_stats.chat_requests++;
        sim_chat_handle(h->has_bearer, h->body.data ? h->body.data : "", h->body.len, &status,
                        &h->headers, &h->out, &ctype);
        respond(c, status, ctype, g_sim_cfg.chat_delay_ms);
        return;
    }
    if (strcmp(p, "/sim/events") == 0 && (h->method == M_GET || h->method == M_HEAD)) {
        sim_record_json(&h->out);
        respond(c, 200, CTYPE_JSON, 0);
    } else if (strcmp(p, "/sim/events") == 0 && h->method == M_DELETE) {
        sim_record_clear();
        sbuf_puts(&h->out, "{\"ok\":true}");
        respond(c, 200, CTYPE_JSON, 0);
    } else if (strcmp(p, "/sim/stats") == 0 && (h->method == M_GET || h->method == M_HEAD)) {
        stats_json(&h->out);
        respond(c, 200, CTYPE_JSON, 0);
    } else if (strcmp(p, "/") == 0 && (h->method == M_GET || h->method == M_HEAD)) {
        sbuf_printf(&h->out,
                    "{\"name\":\"switchboard-sim\",\"mode\":\"%s\",\"endpoints\":["
                    "\"GET /v1/realtime (WebSocket)\",\"POST /v1/chat/completions\","
                    "\"GET /sim/events\",\"DELETE /sim/events\",\"GET /sim/stats\"]}",
                    g_sim_cfg.mode == SIM_MODE_ECHO ? "echo" : "agent");
        respond(c, 200, CTYPE_JSON, 0);
    } else if (strcmp(p, REALTIME_PATH) == 0) {
        if (!h->has_bearer)
            error_response(c, 401, "You didn't provide an API key.", "invalid_api_key");
        else
            error_response(c, 400, "This endpoint expects a WebSocket upgrade.", NULL);
    } else {
        char msg[HTTP_PATH_MAX + 32];
        static const char *const names[] = {"OTHER", "GET", "POST", "DELETE", "HEAD"};
        snprintf(msg, sizeof(msg), "Invalid URL (%s %s)", names[h->method], p);
        error_response(c, 404, msg, NULL);
    }
}

static int on_request(struct lws *wsi, sim_conn_t *c, const char *uri)
{
    sim_http_t *h = http_of(c);
    h->method = request_method(wsi);
    str_copy(h->path, uri, sizeof(h->path));
    h->has_bearer = bearer_ok(wsi);
    h->body_too_big = false;
    h->ready = false;
    sbuf_reset(&h->body);
    sbuf_reset(&h->headers);
    sbuf_reset(&h->out);
    char cl[32];
    unsigned long long content_length = 0;
    if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        content_length = strtoull(cl, NULL, 10);
    if (content_length > HTTP_MAX_BODY_BYTES)
        h->body_too_big = true;
    char expect[32];
    if (!h->body_too_big && content_length > 0 &&
        lws_hdr_copy(wsi, expect, sizeof(expect), WSI_TOKEN_HTTP_EXPECT) > 0 &&
        strcasecmp(expect, "100-continue") == 0) {
        /* libcurl asks before sending bodies over 1 MiB and would otherwise wait a second. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        unsigned char buf[LWS_PRE + sizeof(cont)];
        memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
        if (lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1, LWS_WRITE_HTTP_HEADERS) < 0)
            return -1;
    }
    if (content_length == 0 || h->body_too_big || h->method == M_GET || h->method == M_HEAD)
        dispatch(c);
    return 0; /* otherwise the body comes first (HTTP_BODY_COMPLETION) */
}

static int on_writeable(struct lws *wsi, sim_conn_t *c)
{
    sim_http_t *h = c->http;
    if (h == NULL || !h->ready)
        return 0;
    if (h->due_ns && clock_now_ns() < h->due_ns) {
        sim_conn_wake_at(c, h->due_ns);
        return 0;
    }
    h->ready = false;
    bool close_after = h->status == 413; /* the unread body would be parsed as a request */
    if (write_response(wsi, h->status, h->ctype, &h->headers, h->out.data ? h->out.data : "",
                       h->out.len, h->method == M_HEAD) < 0)
        return -1;
    sbuf_reset(&h->out);
    sbuf_reset(&h->headers);
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

bool sim_http_callback(struct lws *wsi, enum lws_callback_reasons reason, sim_conn_t *c, void *in,
                       size_t len, int *rc)
{
    *rc = 0;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        *rc = confirm_upgrade(wsi, c);
        return true;
    case LWS_CALLBACK_HTTP:
        *rc = on_request(wsi, c, in ? (const char *)in : "/");
        return true;
    case LWS_CALLBACK_HTTP_BODY: {
        sim_http_t *h = http_of(c);
        if (h->ready)
            return true;
        if (h->body.len + len > HTTP_MAX_BODY_BYTES)
            h->body_too_big = true;
        else
            sbuf_append(&h->body, in, len);
        return true;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c->http && !c->http->ready)
            dispatch(c);
        return true;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        *rc = on_writeable(wsi, c);
        return true;
    case LWS_CALLBACK_CLOSED_HTTP:
        return true;
    default:
        return false;
    }
}

uint64_t sim_http_tick(sim_conn_t *c, uint64_t now_ns)
{
    sim_http_t *h = c->http;
    if (h == NULL || !h->ready || h->due_ns == 0)
        return 0;
    if (h->due_ns > now_ns)
        return h->due_ns;
    lws_callback_on_writable(c->wsi);
    return 0;
}

void sim_http_free(sim_conn_t *c)
{
    sim_http_t *h = c->http;
    if (h == NULL)
        return;
    sbuf_destroy(&h->body);
    sbuf_destroy(&h->headers);
    sbuf_destroy(&h->out);
    free(h);
    c->http = NULL;
}
