/*
 * Streamable HTTP for the MCP client (mcp_int.h), on net_fetch: every client message is its own
 * POST (Accept: application/json, text/event-stream), answered with JSON, an SSE stream or 202;
 * `Mcp-Session-Id` and `MCP-Protocol-Version` go on every request once known; a standalone GET
 * stream carries what the server sends unasked (list_changed, requests).
 *
 * Streams. Each POST, GET and resumption is a stream record holding its fetch id, its SSE parser
 * (last event id, retry) and the id of the request whose response it should carry. A stream that
 * ends before that response was seen is resumed after `retry` ms (1 s when the server gave none)
 * with GET + Last-Event-ID, as often as it ends that way with progress. Responses are matched to
 * requests by id in mcp.c, whatever stream brings them, so replays and duplicates (the everything
 * server's event store replays every stream) fall on ids that are no longer awaited and are
 * dropped there.
 *
 * Sessions. 404 on a request that carried a session id, or 400 naming the session (the everything
 * server), means the session is gone: the id is forgotten, requests in flight are marked for a
 * resend, and a fresh initialize runs; after it they go again with the same ids.
 *
 * A stream record is freed only at its fetch's DONE (or at once when no fetch runs), never while
 * its data is being dispatched, because dispatching may end the request it carries.
 * Thread: the client's worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agents/mcp/mcp_int.h"
#include "base/log.h"
#include "base/util.h"
#include "net/net.h"

#define MCPHTTP_RETRY_DEFAULT_MS  1000
#define MCPHTTP_DELETE_TIMEOUT_MS 2000
#define MCPHTTP_MAX_RESUMES       8 /* resumptions in a row that brought nothing */
#define MCPHTTP_HEADER_MAX        320
#define MCPHTTP_OWN_HEADERS       4 /* Accept, session, version, Last-Event-ID */

typedef enum hs_kind { HS_POST, HS_GET, HS_RESUME, HS_DELETE } hs_kind_t;
typedef enum hs_body { HB_UNKNOWN, HB_JSON, HB_SSE } hs_body_t;

typedef struct hs {
    struct hs *next;
    mcp_t *m;
    uint64_t fetch_id; /* 0 while waiting to resume */
    hs_kind_t kind;
    hs_body_t body_kind;
    int64_t awaiting; /* the request whose response this stream should carry, -1 = none */
    bool had_session; /* the request carried a session id */
    bool progress;    /* an event arrived since the last resumption */
    bool cancelled;   /* its fetch is being cancelled: only its DONE is awaited */
    int resumes;
    mcpsse_t sse;
    sbuf_t body;
    actor_timer_t *timer; /* the resumption delay */
} hs_t;

struct mcphttp {
    hs_t *streams;
    char session[128];
    bool get_disabled; /* the server has no standalone stream (405, 404, ...) */
};

static hs_t *hs_new(mcp_t *m, hs_kind_t kind, int64_t awaiting)
{
    hs_t *h = xcalloc(1, sizeof(*h));
    h->m = m;
    h->kind = kind;
    h->awaiting = awaiting;
    mcpsse_init(&h->sse);
    sbuf_init(&h->body);
    h->next = m->http->streams;
    m->http->streams = h;
    return h;
}

static void hs_free(mcp_t *m, hs_t *h)
{
    for (hs_t **pp = &m->http->streams; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    actor_timer_free(h->timer);
    mcpsse_destroy(&h->sse);
    sbuf_destroy(&h->body);
    free(h);
}

static hs_t *hs_by_fetch(mcp_t *m, uint64_t id)
{
    for (hs_t *h = m->http->streams; h; h = h->next)
        if (h->fetch_id == id)
            return h;
    return NULL;
}

/* Starts the fetch of h: method, body and the headers every MCP request carries. */
static void hs_start(mcp_t *m, hs_t *h, const char *method, const char *body, size_t len)
{
    mcphttp_t *t = m->http;
    char own[MCPHTTP_OWN_HEADERS][MCPHTTP_HEADER_MAX];
    net_fetch_req_t q = {.method = method, .url = m->srv.url, .body = body, .body_len = len};
    int n = 0;
    snprintf(own[0], sizeof(own[0]), "Accept: %s",
             h->kind == HS_POST ? "application/json, text/event-stream" : "text/event-stream");
    q.headers[n++] = own[0];
    if (t->session[0]) {
        snprintf(own[1], sizeof(own[1]), "Mcp-Session-Id: %s", t->session);
        q.headers[n++] = own[1];
        h->had_session = true;
    }
    if (m->version[0]) {
        snprintf(own[2], sizeof(own[2]), "MCP-Protocol-Version: %s", m->version);
        q.headers[n++] = own[2];
    }
    if (h->kind == HS_RESUME || (h->kind == HS_GET && h->sse.last_id[0])) {
        snprintf(own[3], sizeof(own[3]), "Last-Event-ID: %s", h->sse.last_id);
        q.headers[n++] = own[3];
    }
    for (size_t i = 0; i < m->srv.n_headers && n < NET_FETCH_MAX_HEADERS; i++)
        q.headers[n++] = m->srv.headers[i];
    q.stream = h->kind != HS_DELETE;
    q.timeout_ms = h->kind == HS_DELETE ? MCPHTTP_DELETE_TIMEOUT_MS : 0;
    h->body_kind = HB_UNKNOWN;
    h->fetch_id = net_fetch(&q, &m->actor);
    if (h->fetch_id == 0)
        log_warn("mcp.http_refused", LOG_S("alias", m->srv.alias));
}

void mcphttp_open(mcp_t *m)
{
    if (m->http)
        mcphttp_close(m, false);
    else
        m->http = xcalloc(1, sizeof(*m->http));
    m->http->session[0] = '\0';
    m->http->get_disabled = false;
}

void mcphttp_send(mcp_t *m, const char *text, size_t len, mcp_req_t *req)
{
    hs_t *h = hs_new(m, HS_POST, req ? req->id : -1);
    hs_start(m, h, "POST", text, len);
    if (h->fetch_id == 0) {
        hs_free(m, h);
        mcp_on_transport_down(m, "the request could not be sent");
    }
}

void mcphttp_forget(mcp_t *m, int64_t id)
{
    for (hs_t *h = m->http->streams, *next; h; h = next) {
        next = h->next;
        if (h->awaiting != id)
            continue;
        h->awaiting = -1;
        if (h->fetch_id) {
            h->cancelled = true;
            net_fetch_cancel(h->fetch_id); /* freed at its DONE */
        } else
            hs_free(m, h); /* waiting to resume: nothing in flight */
    }
}

static void hs_open_get(mcp_t *m)
{
    for (hs_t *h = m->http->streams; h; h = h->next)
        if (h->kind == HS_GET && !h->cancelled)
            return;
    hs_t *h = hs_new(m, HS_GET, -1);
    hs_start(m, h, "GET", NULL, 0);
    if (h->fetch_id == 0)
        hs_free(m, h);
}

void mcphttp_ready(mcp_t *m)
{
    if (!m->http->get_disabled)
        hs_open_get(m);
}

/* ---- Incoming data ----------------------------------------------------------------------------
 */

static void hs_dispatch_json(hs_t *h, const char *s, size_t len)
{
    cJSON *msg = cJSON_ParseWithLength(s, len);
    if (msg == NULL) {
        log_debug("mcp.bad_event", LOG_S("alias", h->m->srv.alias), LOG_I("bytes", len));
        return;
    }
    mcp_on_message(h->m, msg); /* may end h's request; h itself stays until its DONE */
}

static void hs_on_event(void *arg, const char *event, const char *data, size_t len)
{
    hs_t *h = arg;
    h->progress = true;
    if (strcmp(event, "message") == 0)
        hs_dispatch_json(h, data, len);
}

static void hs_on_data(mcp_t *m, const net_fetch_data_msg_t *d)
{
    hs_t *h = hs_by_fetch(m, d->id);
    if (h == NULL || h->cancelled)
        return;
    if (d->session_id[0]) /* before dispatching: initialize's answer needs it at once */
        str_copy(m->http->session, d->session_id, sizeof(m->http->session));
    if (h->body_kind == HB_UNKNOWN)
        h->body_kind =
            strncasecmp(d->content_type, "text/event-stream", 17) == 0 ? HB_SSE : HB_JSON;
    if (h->body_kind == HB_SSE)
        mcpsse_feed(&h->sse, d->data, d->len, hs_on_event, h);
    else
        sbuf_append(&h->body, d->data, d->len);
}

/* A synthetic JSON-RPC error for request id, so mcp.c fails it the usual way. */
static void hs_fail_request(mcp_t *m, int64_t id, const char *why)
{
    if (id < 0 || mcp_req_find(m, id) == NULL)
        return;
    cJSON *idj = cJSON_CreateNumber((double)id);
    cJSON *e = mcpproto_error(idj, -32000, why);
    cJSON_Delete(idj);
    mcp_on_message(m, e);
}

static bool hs_session_lost(const mcp_t *m, const hs_t *h, const net_fetch_done_msg_t *d)
{
    if (!h->had_session || m->http->session[0] == '\0' || h->kind == HS_GET)
        return false;
    if (d->status == 404)
        return true;
    return d->status == 400 && d->body && strcasestr(d->body, "session") != NULL;
}

static void hs_on_session_lost(mcp_t *m)
{
    log_info("mcp.session_lost", LOG_S("alias", m->srv.alias));
    m->http->session[0] = '\0';
    m->version[0] = '\0';
    for (hs_t *h = m->http->streams; h; h = h->next) {
        if (h->kind == HS_GET && h->fetch_id && !h->cancelled) {
            h->cancelled = true; /* reopened after the new initialize */
            net_fetch_cancel(h->fetch_id);
        }
    }
    for (mcp_req_t *r = m->reqs; r; r = r->next)
        if (r->kind != MCP_RQ_INIT)
            r->resend = true;
    mcp_reinitialize(m);
}

/* h ended before its response: resume it with GET + Last-Event-ID after `retry`. */
static void hs_schedule_resume(mcp_t *m, hs_t *h)
{
    if (!h->progress && ++h->resumes > MCPHTTP_MAX_RESUMES) {
        hs_fail_request(m, h->awaiting, "the event stream ended without a response");
        hs_free(m, h);
        return;
    }
    if (h->progress)
        h->resumes = 0;
    h->progress = false;
    h->fetch_id = 0;
    if (h->kind != HS_GET)
        h->kind = HS_RESUME;
    int64_t ms = h->sse.retry_ms >= 0 ? h->sse.retry_ms : MCPHTTP_RETRY_DEFAULT_MS;
    if (h->timer == NULL)
        h->timer = actor_timer_new(&m->actor, MCP_MSG_RESUME, h);
    actor_timer_start(h->timer, ms > 0 ? (uint64_t)ms : 1, 0);
}

static void hs_on_done(mcp_t *m, const net_fetch_done_msg_t *d)
{
    hs_t *h = hs_by_fetch(m, d->id);
    if (h == NULL)
        return;
    if (h->kind == HS_DELETE) {
        hs_free(m, h);
        if (m->state == MCP_ST_CLOSING)
            mcp_closed(m);
        return;
    }
    if (d->session_id[0] && d->status / 100 == 2)
        str_copy(m->http->session, d->session_id, sizeof(m->http->session));
    if (h->cancelled || strcmp(d->error, "cancelled") == 0) {
        hs_free(m, h);
        return;
    }
    if (d->status / 100 == 2 && d->error[0] == '\0') {
        if (h->body_kind == HB_JSON && h->body.len > 0)
            hs_dispatch_json(h, h->body.data, h->body.len);
        bool want = h->awaiting >= 0 && mcp_req_find(m, h->awaiting) != NULL;
        if (h->kind == HS_GET && !m->http->get_disabled && m->state == MCP_ST_READY &&
            h->body_kind == HB_SSE)
            hs_schedule_resume(m, h); /* the standalone stream ended: reconnect */
        else if (want && h->body_kind == HB_SSE)
            hs_schedule_resume(m, h);
        else
            hs_free(m, h); /* done, or 202: the answer comes on another stream */
        return;
    }
    if (hs_session_lost(m, h, d)) {
        hs_free(m, h);
        hs_on_session_lost(m);
        return;
    }
    if (h->kind == HS_GET) {
        m->http->get_disabled = true; /* 405 and friends: no standalone stream here */
        log_debug("mcp.no_get_stream", LOG_S("alias", m->srv.alias), LOG_I("status", d->status));
        hs_free(m, h);
        return;
    }
    int64_t awaiting = h->awaiting;
    hs_free(m, h);
    char why[160];
    if (d->status == 0)
        snprintf(why, sizeof(why), "HTTP request failed: %s", d->error);
    else
        snprintf(why, sizeof(why), "HTTP status %d", d->status);
    if (d->status == 0 || d->status >= 500) {
        mcp_on_transport_down(m, why);
        return;
    }
    hs_fail_request(m, awaiting, why);
}

static void hs_on_resume(mcp_t *m, const timer_msg_t *t)
{
    hs_t *h = t->timer->data;
    if (h->fetch_id != 0)
        return;
    mcpsse_destroy(&h->sse);
    char last[MCPSSE_ID_MAX];
    str_copy(last, h->sse.last_id, sizeof(last));
    mcpsse_init(&h->sse);
    str_copy(h->sse.last_id, last, sizeof(h->sse.last_id));
    sbuf_reset(&h->body);
    hs_start(m, h, "GET", NULL, 0);
    if (h->fetch_id == 0) {
        int64_t awaiting = h->awaiting;
        hs_free(m, h);
        hs_fail_request(m, awaiting, "the event stream could not be resumed");
    }
}

bool mcphttp_handle(mcp_t *m, msg_t *msg)
{
    switch (msg->type) {
    case NET_MSG_FETCH_DATA:
        hs_on_data(m, (net_fetch_data_msg_t *)msg);
        break;
    case NET_MSG_FETCH_DONE:
        hs_on_done(m, (net_fetch_done_msg_t *)msg);
        break;
    case MCP_MSG_RESUME:
        hs_on_resume(m, (timer_msg_t *)msg);
        break;
    default:
        return false;
    }
    msg_free(msg);
    return true;
}

bool mcphttp_close(mcp_t *m, bool end_session)
{
    mcphttp_t *t = m->http;
    if (t == NULL)
        return false;
    while (t->streams) {
        hs_t *h = t->streams;
        if (h->fetch_id)
            net_fetch_cancel(h->fetch_id); /* its DONE finds no stream and is dropped */
        hs_free(m, h);
    }
    if (!end_session || t->session[0] == '\0')
        return false;
    hs_t *h = hs_new(m, HS_DELETE, -1);
    hs_start(m, h, "DELETE", NULL, 0);
    if (h->fetch_id == 0) {
        hs_free(m, h);
        return false;
    }
    return true;
}

void mcphttp_free(mcp_t *m)
{
    if (m->http == NULL)
        return;
    while (m->http->streams)
        hs_free(m, m->http->streams);
    free(m->http);
    m->http = NULL;
}
