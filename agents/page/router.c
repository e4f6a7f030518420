/*
 * router: the page command channel (seed 000, SPEC 4 and 5.2). One actor owns, per sessionId,
 * the tab's /ws/page sockets (up to PAGE_CONNS_MAX; another replaces the oldest) and its voice
 * socket, delivers `command` events to all of them, and answers POST /api/interact/… once a
 * client acks or after ACK_WAIT_MS. Behind its messages it is the command router of SPEC 13.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/config/agentcfg.h"
#include "agents/page/page.h"
#include "agents/tools/tools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/strmap.h"
#include "base/util.h"

#define ROUTER_MSG_CMD_TIMEOUT (MSG_TYPE_PAGE_BASE + 0xF0u) /* a command's ack deadline */
#define PAGE_CONNS_MAX         4
#define ACK_WAIT_MS            1500
#define INTERACT_PREFIX        "/api/interact/"
#define NAVIGATE_SUFFIX        "/navigate"
#define PAGE_NAME_MAX          64

typedef struct page_conn {
    conn_id_t conn;
    char page[PAGE_NAME_MAX + 1]; /* the page this tab shows, "" when not said */
} page_conn_t;

/* Everything connected for one sessionId. */
typedef struct target {
    page_conn_t pages[PAGE_CONNS_MAX]; /* oldest first */
    int n_pages;
    conn_id_t voice; /* 0 when none */
} target_t;

/* A command sent and waiting for its first ack. */
typedef struct pending {
    struct pending *next;
    char id[40];
    char session_id[ID_MAX + 1];
    conn_id_t http;    /* the request to answer, or 0 for a tool call */
    actor_t *reply_to; /* a tool call's caller (a reference), or NULL */
    uint64_t cookie;   /* the tool call's cookie */
    int delivered;
    actor_timer_t *timer;
} pending_t;

typedef struct router {
    actor_t actor;
    strmap_t targets;     /* sessionId -> target_t */
    strmap_t page_owners; /* "<conn id>" -> sessionId copy, for closes and acks */
    pending_t *pending;
    uint64_t next_cmd;
} router_t;

static void conn_key(char *buf, size_t n, conn_id_t c)
{
    snprintf(buf, n, "%llx", (unsigned long long)c);
}

static target_t *target_get(router_t *r, const char *sid, bool create)
{
    target_t *t = strmap_get(&r->targets, sid);
    if (t == NULL && create) {
        t = xcalloc(1, sizeof(*t));
        strmap_put(&r->targets, sid, t);
    }
    return t;
}

static void target_gc(router_t *r, const char *sid, target_t *t)
{
    if (t->n_pages == 0 && t->voice == 0)
        free(strmap_del(&r->targets, sid));
}

/* ---- /ws/page sockets ---------------------------------------------------------------------- */

static void page_open(router_t *r, const net_ws_open_msg_t *m)
{
    char sid[ID_MAX + 2], page[PAGE_NAME_MAX + 2];
    int sl = net_query_get(m->query, "sessionId", sid, sizeof(sid));
    if (sl < 0 || !str_is_id(sid, (size_t)sl, SESSION_ID_MIN, ID_MAX)) {
        /* Not a sessionId any token could name: nothing to listen to (1008, like /ws). */
        net_ws_close(m->conn, WS_CLOSE_UNAUTHORIZED);
        return;
    }
    int pl = net_query_get(m->query, "page", page, sizeof(page));
    if (pl < 0 || !str_is_id(page, (size_t)pl, 1, PAGE_NAME_MAX) ||
        agentcfg_page(g_agentcfg, page) == NULL)
        page[0] = '\0';
    target_t *t = target_get(r, sid, true);
    if (t->n_pages == PAGE_CONNS_MAX) {
        /* A fifth tab socket replaces the oldest. */
        char key[24];
        conn_key(key, sizeof(key), t->pages[0].conn);
        free(strmap_del(&r->page_owners, key));
        net_ws_close(t->pages[0].conn, WS_CLOSE_REPLACED);
        memmove(t->pages, t->pages + 1, (PAGE_CONNS_MAX - 1) * sizeof(page_conn_t));
        t->n_pages--;
    }
    t->pages[t->n_pages].conn = m->conn;
    str_copy(t->pages[t->n_pages].page, page, sizeof(t->pages[0].page));
    t->n_pages++;
    char key[24];
    conn_key(key, sizeof(key), m->conn);
    strmap_put(&r->page_owners, key, xstrdup(sid));
    log_debug("page.open", LOG_S("sid", sid), LOG_S("page", page));
}

static void page_closed(router_t *r, conn_id_t conn)
{
    char key[24];
    conn_key(key, sizeof(key), conn);
    char *sid = strmap_del(&r->page_owners, key);
    if (sid == NULL)
        return; /* refused at open, or already replaced */
    target_t *t = target_get(r, sid, false);
    if (t) {
        for (int i = 0; i < t->n_pages; i++) {
            if (t->pages[i].conn == conn) {
                memmove(t->pages + i, t->pages + i + 1,
                        (size_t)(t->n_pages - i - 1) * sizeof(page_conn_t));
                t->n_pages--;
                break;
            }
        }
        target_gc(r, sid, t);
    }
    free(sid);
}

/* ---- Acks ---------------------------------------------------------------------------------- */

static void answer(pending_t *p, bool acked)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"ok\":true,\"delivered\":%d,\"acked\":%s}",
                     p->delivered, acked ? "true" : "false");
    if (p->reply_to) {
        actor_send(p->reply_to, &tool_result_new(p->cookie, false, body)->hdr);
        actor_unref(p->reply_to);
    } else {
        net_http_respond(p->http, 200, body, (size_t)n, NULL);
    }
}

static void pending_finish(router_t *r, pending_t *p, bool acked)
{
    for (pending_t **pp = &r->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    answer(p, acked);
    actor_timer_free(p->timer);
    free(p);
}

static void on_ack(router_t *r, const char *sid, const char *id)
{
    for (pending_t *p = r->pending; p; p = p->next) {
        if (strcmp(p->id, id) == 0 && strcmp(p->session_id, sid) == 0) {
            metric_inc(&g_metrics.commands_acked_total, 1);
            pending_finish(r, p, true);
            return;
        }
    }
}

static void page_text(router_t *r, const net_ws_text_msg_t *m)
{
    if (strcmp(m->type, "command.ack") != 0)
        return;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m->json, "id");
    char key[24];
    conn_key(key, sizeof(key), m->conn);
    const char *sid = strmap_get(&r->page_owners, key);
    if (sid && cJSON_IsString(id))
        on_ack(r, sid, id->valuestring);
}

/* ---- POST /api/interact/{page}/navigate ------------------------------------------------------ */

/* Sends the command and waits for its first ack; answers the HTTP request, or the tool call
 * whose pending entry p the caller allocated (NULL for a request). */
static void send_command(router_t *r, const target_t *t, const char *sid, const char *page,
                         const char *section, conn_id_t http, pending_t *p)
{
    if (p == NULL)
        p = xcalloc(1, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "cmd_%llu", (unsigned long long)++r->next_cmd);
    str_copy(p->session_id, sid, sizeof(p->session_id));
    p->http = http;
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b,
                "{\"type\":\"command\",\"id\":\"%s\",\"command\":\"navigate\",\"page\":", p->id);
    sbuf_json_str(&b, page);
    sbuf_puts(&b, ",\"section\":");
    sbuf_json_str(&b, section);
    sbuf_putc(&b, '}');
    for (int i = 0; i < t->n_pages; i++) {
        net_ws_send_text(t->pages[i].conn, b.data, b.len);
        p->delivered++;
    }
    if (t->voice) {
        net_ws_send_text(t->voice, b.data, b.len);
        p->delivered++;
    }
    sbuf_destroy(&b);
    metric_inc(&g_metrics.commands_sent_total, 1);
    log_info("command.sent", LOG_S("sid", sid), LOG_S("page", page), LOG_S("section", section),
             LOG_I("delivered", p->delivered));
    p->timer = actor_timer_new(&r->actor, ROUTER_MSG_CMD_TIMEOUT, p);
    actor_timer_start(p->timer, ACK_WAIT_MS, 0);
    p->next = r->pending;
    r->pending = p;
}

static void invalid_section(conn_id_t c, const agent_page_t *page)
{
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"error\":{\"code\":\"invalid_section\",\"message\":\"section is not one "
                  "of this page's sections\",\"valid\":[");
    for (size_t i = 0; i < page->n_sections; i++) {
        if (i)
            sbuf_putc(&b, ',');
        sbuf_json_str(&b, page->sections[i]);
    }
    sbuf_puts(&b, "]}}");
    net_http_respond(c, 400, b.data, b.len, NULL);
    sbuf_destroy(&b);
}

/* Checks in the order of SPEC 14: 401 -> invalid_json -> unknown_page -> invalid_request ->
 * invalid_section -> session_not_connected. */
static void navigate(router_t *r, const net_http_msg_t *req)
{
    size_t pl = strlen(INTERACT_PREFIX), sl = strlen(NAVIGATE_SUFFIX), len = strlen(req->path);
    if (len <= pl + sl || strcmp(req->path + len - sl, NAVIGATE_SUFFIX) != 0) {
        net_http_error(req->conn, 404, "not_found", "no such endpoint");
        return;
    }
    if (!auth_api_ok(req)) {
        net_http_error(req->conn, 401, "unauthorized", "a valid API secret is required");
        return;
    }
    if (req->json_invalid || (req->json && !cJSON_IsObject(req->json))) {
        net_http_error(req->conn, 400, "invalid_json", "the body must be a JSON object");
        return;
    }
    char page_name[PAGE_NAME_MAX + 1];
    size_t n = len - pl - sl;
    const agent_page_t *page = NULL;
    if (n <= PAGE_NAME_MAX) {
        memcpy(page_name, req->path + pl, n);
        page_name[n] = '\0';
        page = agentcfg_page(g_agentcfg, page_name);
    }
    if (page == NULL) {
        net_http_error(req->conn, 404, "unknown_page", "no such page in the agent config");
        return;
    }
    const cJSON *args = req->json;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(args, "parameters");
    if (cJSON_IsObject(params))
        args = params;
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(args, "sessionId");
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(args, "section");
    if (!cJSON_IsString(sid) || !cJSON_IsString(section) ||
        !str_is_id(sid->valuestring, strlen(sid->valuestring), 1, ID_MAX)) {
        net_http_error(req->conn, 400, "invalid_request",
                       "the body needs string fields sessionId and section");
        return;
    }
    if (!agentcfg_page_has_section(page, section->valuestring)) {
        invalid_section(req->conn, page);
        return;
    }
    target_t *t = target_get(r, sid->valuestring, false);
    if (t == NULL || (t->n_pages == 0 && t->voice == 0)) {
        net_http_error(req->conn, 404, "session_not_connected",
                       "no page or voice session is connected for this sessionId");
        return;
    }
    send_command(r, t, sid->valuestring, page->name, section->valuestring, req->conn, NULL);
}

/* ---- The navigate tool of the voice model (SPEC 6, 14) -----------------------------------------
 */

static void tool_fail(const tool_call_msg_t *c, const char *code, const char *message,
                      const agent_page_t *page)
{
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b,
                "{\"ok\":false,\"delivered\":0,\"acked\":false,\"error\":{\"code\":\"%s\","
                "\"message\":",
                code);
    sbuf_json_str(&b, message);
    sbuf_puts(&b, ",\"valid\":[");
    size_t n = page ? page->n_sections : g_agentcfg->n_pages;
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_putc(&b, ',');
        sbuf_json_str(&b, page ? page->sections[i] : g_agentcfg->pages[i].name);
    }
    sbuf_puts(&b, "]}}");
    actor_send(c->reply_to, &tool_result_new(c->cookie, true, b.data)->hdr);
    sbuf_destroy(&b);
}

/* The page a navigate call without `page` means: the one the caller's newest tab reported, else
 * the only configured page, else none. */
static const agent_page_t *default_page(const target_t *t)
{
    for (int i = t ? t->n_pages : 0; i-- > 0;)
        if (t->pages[i].page[0])
            return agentcfg_page(g_agentcfg, t->pages[i].page);
    return g_agentcfg->n_pages == 1 ? &g_agentcfg->pages[0] : NULL;
}

static void navigate_tool(router_t *r, const tool_call_msg_t *c)
{
    if (c->reply_to == NULL)
        return;
    const cJSON *pg = cJSON_GetObjectItemCaseSensitive(c->args, "page");
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(c->args, "section");
    target_t *t = target_get(r, c->session_id, false);
    const agent_page_t *page;
    if (cJSON_IsString(pg) && pg->valuestring[0]) {
        page = agentcfg_page(g_agentcfg, pg->valuestring);
        if (page == NULL) {
            tool_fail(c, "unknown_page", "no such page; use one of the pages listed", NULL);
            return;
        }
    } else if ((page = default_page(t)) == NULL) {
        tool_fail(c, "page_required", "say which page: one of the pages listed", NULL);
        return;
    }
    if (!cJSON_IsString(section) || !agentcfg_page_has_section(page, section->valuestring)) {
        tool_fail(c, "invalid_section", "section is not one of this page's sections", page);
        return;
    }
    if (t == NULL || (t->n_pages == 0 && t->voice == 0)) {
        static const char none[] = "{\"ok\":false,\"delivered\":0,\"acked\":false}";
        actor_send(c->reply_to, &tool_result_new(c->cookie, true, none)->hdr);
        return;
    }
    pending_t *p = xcalloc(1, sizeof(*p));
    actor_ref(c->reply_to);
    p->reply_to = c->reply_to;
    p->cookie = c->cookie;
    send_command(r, t, c->session_id, page->name, section->valuestring, 0, p);
}

/* ---- The actor ----------------------------------------------------------------------------- */

static void router_handle(actor_t *self, msg_t *m)
{
    router_t *r = (router_t *)self;
    switch (m->type) {
    case NET_MSG_WS_OPEN:
        page_open(r, (net_ws_open_msg_t *)m);
        break;
    case NET_MSG_WS_TEXT:
        page_text(r, (net_ws_text_msg_t *)m);
        break;
    case NET_MSG_WS_CLOSED:
        page_closed(r, ((net_ws_closed_msg_t *)m)->conn);
        break;
    case NET_MSG_HTTP:
        navigate(r, (net_http_msg_t *)m);
        break;
    case TOOL_MSG_CALL:
        navigate_tool(r, (tool_call_msg_t *)m);
        break;
    case ROUTER_MSG_VOICE_OPEN: {
        router_voice_msg_t *v = (router_voice_msg_t *)m;
        target_get(r, v->session_id, true)->voice = v->conn;
        break;
    }
    case ROUTER_MSG_VOICE_CLOSED: {
        router_voice_msg_t *v = (router_voice_msg_t *)m;
        target_t *t = target_get(r, v->session_id, false);
        if (t && t->voice == v->conn) {
            t->voice = 0;
            target_gc(r, v->session_id, t);
        }
        break;
    }
    case ROUTER_MSG_ACK: {
        router_ack_msg_t *a = (router_ack_msg_t *)m;
        on_ack(r, a->session_id, a->id);
        break;
    }
    case ROUTER_MSG_CMD_TIMEOUT:
        pending_finish(r, ((timer_msg_t *)m)->timer->data, false);
        break;
    default:
        break;
    }
    msg_free(m);
}

static int free_value(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
    return 1;
}

static void router_stop(actor_t *self)
{
    router_t *r = (router_t *)self;
    while (r->pending)
        pending_finish(r, r->pending, false);
    strmap_filter(&r->targets, free_value, NULL);
    strmap_filter(&r->page_owners, free_value, NULL);
    strmap_destroy(&r->targets);
    strmap_destroy(&r->page_owners);
}

static const actor_type_t router_type = {"router", router_handle, router_stop};

actor_t *router_spawn(void)
{
    router_t *r = xcalloc(1, sizeof(*r));
    if (actor_spawn(&r->actor, &router_type, LANE_REALTIME) != 0) {
        free(r);
        return NULL;
    }
    strmap_init(&r->targets);
    strmap_init(&r->page_owners);
    return &r->actor;
}

actor_t *router_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why)
{
    (void)peer;
    (void)query;
    (void)why;
    actor_t *router = arg;
    actor_ref(router);
    return router;
}

const char *const *router_event_types(void)
{
    static const char *const types[] = {"command.ack", NULL};
    return types;
}
