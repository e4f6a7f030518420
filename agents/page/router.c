/*
 * router: the page command channel (seed 000, SPEC 4 and 5.2). One actor owns, per sessionId,
 * the tab's /ws/page sockets (up to PAGE_CONNS_MAX; another replaces the oldest) and its voice
 * socket, delivers `command` events to all of them, and answers POST /api/interact/… once a
 * client acks or after ACK_WAIT_MS. Behind its messages it is the command router of SPEC 13.
 *
 * Every command is sent for one tenant (page.h): its page and section are that tenant's, and it
 * goes to the sockets of the sessionId that are that tenant's: the voice socket when its session
 * is the tenant's, the tabs that named the tenant by its key, and the tabs that named none when
 * their session is the tenant's (the voice session's tenant while one is live, else the default
 * tenant).
 *
 * Across nodes (SPEC 13, with Redis): each node writes which sessionIds have sockets here
 * (sb:pg:<sessionId>: node -> the tenant of its sockets, refreshed every 5 s, dropped with the
 * node's lease) and listens on its channel sb:node:<node>. A command looks the sessionId up
 * first, sends to its own sockets and publishes the command to each other node holding some;
 * those send to theirs and answer with how many they reached ("sent"), then with the first
 * ack. The request is answered once every node has said how many (and one socket acked), or
 * after ACK_WAIT_MS with what is known: `delivered` counts every node's sockets.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/config/agentcfg.h"
#include "agents/page/page.h"
#include "agents/tenant/tenant.h"
#include "agents/tools/tools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/strmap.h"
#include "base/util.h"

#define ROUTER_MSG_CMD_TIMEOUT (MSG_TYPE_PAGE_BASE + 0xF0u) /* a command's ack deadline */
#define ROUTER_MSG_SYNC        (MSG_TYPE_PAGE_BASE + 0xF1u) /* cluster: registry refresh */
#define ROUTER_SYNC_FIRST_MS   100
#define ROUTER_TICK_MS         1000 /* subscribe until it works; ... */
#define ROUTER_SYNC_TICKS      5    /* ... write the sessionIds every 5 s */
#define ROUTER_PG_TTL_MS       15000 /* an sb:pg entry outlives a node that stops refreshing */
#define REMOTE_ACK_KEEP_NS     (3ull * NS_PER_SEC)
#define PAGE_CONNS_MAX         4
#define ACK_WAIT_MS            1500
#define INTERACT_PREFIX        "/api/interact/"
#define NAVIGATE_SUFFIX        "/navigate"
#define PAGE_NAME_MAX          64
#define PUBLIC_KEY_MAX         128

typedef struct page_conn {
    conn_id_t conn;
    char page[PAGE_NAME_MAX + 1];   /* the page this tab says it shows, "" when not said; checked
                                       against the tenant's pages when used */
    char tenant[TENANT_ID_MAX + 1]; /* the tenant the tab named by its key, "" when none */
} page_conn_t;

/* Everything connected for one sessionId. */
typedef struct target {
    page_conn_t pages[PAGE_CONNS_MAX]; /* oldest first */
    int n_pages;
    conn_id_t voice;        /* 0 when none */
    tenant_t *voice_tenant; /* the voice session's tenant (a reference) while voice != 0 */
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
    int waiting;       /* other nodes that have not said how many sockets they reached */
    bool acked;        /* a socket acked while nodes were still counting */
    actor_timer_t *timer;
} pending_t;

/* Other nodes' sockets of a sessionId (cluster): node ids and their sockets' tenants. */
#define REMOTES_MAX 16
typedef struct remotes {
    int n;
    char node[REMOTES_MAX][NODE_ID_MAX + 1];
    char tenant[REMOTES_MAX][TENANT_ID_MAX + 1];
} remotes_t;

/* A command another node sent to our sockets: where its first ack goes. */
typedef struct remote_ack {
    char origin[NODE_ID_MAX + 1];
    uint64_t at_ns;
} remote_ack_t;

typedef struct router {
    actor_t actor;
    strmap_t targets;     /* sessionId -> target_t */
    strmap_t page_owners; /* "<conn id>" -> sessionId copy, for closes and acks */
    pending_t *pending;
    uint64_t next_cmd;
    /* Across nodes (Redis) */
    char node[NODE_ID_MAX + 1]; /* "" until known */
    char channel[NODE_ID_MAX + 16];
    uint32_t nonce;       /* makes this node's command ids its own */
    bool subscribed;
    uint32_t ticks;
    actor_timer_t *sync;
    strmap_t lookups;     /* cookie (hex) -> the message waiting for its sessionId's nodes */
    uint64_t next_cookie;
    strmap_t remote_acks; /* command id -> remote_ack_t */
} router_t;

/* Across nodes (below): tell the other nodes, write our sessionIds to Redis. */
static void publish(router_t *r, const char *node, cJSON *msg);
static void pg_write(router_t *r, const char *sid, const target_t *t);

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

/* ---- Whose sockets -------------------------------------------------------------------------- */

/* Whether the voice socket of t is tenant's. */
static bool voice_is(const target_t *t, const char *tenant)
{
    return t->voice && t->voice_tenant && strcmp(t->voice_tenant->id, tenant) == 0;
}

/* Whether tenant is the default one (the only tenant, else `default`). */
static bool is_default(const char *tenant)
{
    tenant_t *d = tenants_default();
    bool yes = d && strcmp(d->id, tenant) == 0;
    tenant_unref(d);
    return yes;
}

/* Whether tab i of t is tenant's: it named tenant, or it named none and its session is tenant's
 * (the voice session's while one is live, else the default tenant's). */
static bool page_is(const target_t *t, int i, const char *tenant)
{
    const char *own = t->pages[i].tenant;
    if (own[0])
        return strcmp(own, tenant) == 0;
    return t->voice ? voice_is(t, tenant) : is_default(tenant);
}

/* How many sockets of t (NULL-safe) a command for tenant reaches. */
static int reach(const target_t *t, const char *tenant)
{
    int n = 0;
    for (int i = 0; t && i < t->n_pages; i++)
        n += page_is(t, i, tenant);
    return n + (t && voice_is(t, tenant));
}

/* The tenant a sessionId belongs to (a reference; NULL-safe): its voice session's, else the one
 * its newest tab named, else the default tenant (NULL when there is none). */
static tenant_t *target_tenant(const target_t *t)
{
    if (t && t->voice && t->voice_tenant) {
        tenant_ref(t->voice_tenant);
        return t->voice_tenant;
    }
    for (int i = t ? t->n_pages : 0; i-- > 0;)
        if (t->pages[i].tenant[0])
            return tenants_get(t->pages[i].tenant);
    return tenants_default();
}

/* ---- /ws/page sockets ---------------------------------------------------------------------- */

/*
 * The tenant a tab names with `key` (its publicKey; the Origin must be one the tenant allows),
 * written to out; "" when it names none (it then belongs to its session's tenant). False when
 * the socket was closed (an unknown key: 1008 unauthorized; a foreign origin: 1008 forbidden
 * origin).
 */
static bool page_tenant(const net_ws_open_msg_t *m, char out[TENANT_ID_MAX + 1])
{
    char key[PUBLIC_KEY_MAX + 2];
    out[0] = '\0';
    if (net_query_get(m->query, "key", key, sizeof(key)) < 0)
        return true;
    tenant_t *t = tenants_by_public_key(key);
    if (t == NULL) {
        net_ws_close(m->conn, WS_CLOSE_UNAUTHORIZED);
        return false;
    }
    bool ok = tenant_origin_allowed(t, m->origin, m->same_origin);
    if (ok)
        str_copy(out, t->id, TENANT_ID_MAX + 1);
    else
        net_ws_close(m->conn, WS_CLOSE_FORBIDDEN_ORIGIN);
    tenant_unref(t);
    return ok;
}

static void page_open(router_t *r, const net_ws_open_msg_t *m)
{
    char sid[ID_MAX + 2], page[PAGE_NAME_MAX + 2], tenant[TENANT_ID_MAX + 1];
    int sl = net_query_get(m->query, "sessionId", sid, sizeof(sid));
    if (sl < 0 || !str_is_id(sid, (size_t)sl, SESSION_ID_MIN, ID_MAX)) {
        /* Not a sessionId any token could name: nothing to listen to (1008, like /ws). */
        net_ws_close(m->conn, WS_CLOSE_UNAUTHORIZED);
        return;
    }
    if (!page_tenant(m, tenant))
        return;
    int pl = net_query_get(m->query, "page", page, sizeof(page));
    if (pl < 0 || !str_is_id(page, (size_t)pl, 1, PAGE_NAME_MAX))
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
    page_conn_t *pc = &t->pages[t->n_pages++];
    pc->conn = m->conn;
    str_copy(pc->page, page, sizeof(pc->page));
    str_copy(pc->tenant, tenant, sizeof(pc->tenant));
    char key[24];
    conn_key(key, sizeof(key), m->conn);
    strmap_put(&r->page_owners, key, xstrdup(sid));
    pg_write(r, sid, t);
    log_debug("page.open", LOG_S("sid", sid), LOG_S("page", page), LOG_S("tenant", tenant));
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
        pg_write(r, sid, target_get(r, sid, false));
    }
    free(sid);
}

/* ---- Acks ---------------------------------------------------------------------------------- */

static void answer(pending_t *p, bool acked)
{
    if (p->reply_to == NULL && p->delivered == 0) {
        /* Other nodes held the sessionId but none had a socket of this tenant. */
        net_http_error(p->http, 404, "session_not_connected",
                       "no page or voice session is connected for this sessionId");
        return;
    }
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

static pending_t *pending_by_id(router_t *r, const char *id)
{
    for (pending_t *p = r->pending; p; p = p->next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

/* The first ack of p: the answer, once every node has said how many sockets it reached. */
static void pending_acked(router_t *r, pending_t *p)
{
    if (!p->acked)
        metric_inc(&g_metrics.commands_acked_total, 1);
    p->acked = true;
    if (p->waiting == 0)
        pending_finish(r, p, true);
}

static void on_ack(router_t *r, const char *sid, const char *id)
{
    pending_t *p = pending_by_id(r, id);
    if (p != NULL && strcmp(p->session_id, sid) == 0) {
        pending_acked(r, p);
        return;
    }
    remote_ack_t *ra = strmap_del(&r->remote_acks, id);
    if (ra != NULL) { /* another node's command: its first ack goes back to it */
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "op", "ack");
        cJSON_AddStringToObject(m, "id", id);
        publish(r, ra->origin, m);
        free(ra);
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

/* Sends the command to the sockets of t that are tenant's and waits for its first ack; answers
 * the HTTP request, or the tool call whose pending entry p the caller allocated (NULL for a
 * request). */
/* Sends the command event to the sockets of t (NULL-safe) that are tenant's; returns how many. */
static int deliver(const target_t *t, const char *tenant, const char *id, const char *page,
                   const char *section)
{
    int n = 0;
    if (t == NULL)
        return 0;
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"type\":\"command\",\"id\":");
    sbuf_json_str(&b, id);
    sbuf_puts(&b, ",\"command\":\"navigate\",\"page\":");
    sbuf_json_str(&b, page);
    sbuf_puts(&b, ",\"section\":");
    sbuf_json_str(&b, section);
    sbuf_putc(&b, '}');
    for (int i = 0; i < t->n_pages; i++) {
        if (page_is(t, i, tenant)) {
            net_ws_send_text(t->pages[i].conn, b.data, b.len);
            n++;
        }
    }
    if (voice_is(t, tenant)) {
        net_ws_send_text(t->voice, b.data, b.len);
        n++;
    }
    sbuf_destroy(&b);
    return n;
}

static void send_command(router_t *r, const target_t *t, const char *sid, const char *tenant,
                         const char *page, const char *section, conn_id_t http, pending_t *p,
                         const remotes_t *remotes)
{
    if (p == NULL)
        p = xcalloc(1, sizeof(*p));
    if (r->node[0])
        snprintf(p->id, sizeof(p->id), "cmd_%08x_%llu", r->nonce,
                 (unsigned long long)++r->next_cmd);
    else
        snprintf(p->id, sizeof(p->id), "cmd_%llu", (unsigned long long)++r->next_cmd);
    str_copy(p->session_id, sid, sizeof(p->session_id));
    p->http = http;
    p->delivered = deliver(t, tenant, p->id, page, section);
    for (int i = 0; remotes && i < remotes->n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "op", "cmd");
        cJSON_AddStringToObject(m, "from", r->node);
        cJSON_AddStringToObject(m, "id", p->id);
        cJSON_AddStringToObject(m, "sid", sid);
        cJSON_AddStringToObject(m, "tenant", tenant);
        cJSON_AddStringToObject(m, "page", page);
        cJSON_AddStringToObject(m, "section", section);
        publish(r, remotes->node[i], m);
        p->waiting++;
    }
    metric_inc(&g_metrics.commands_sent_total, 1);
    log_info("command.sent", LOG_S("sid", sid), LOG_S("tenant", tenant), LOG_S("page", page),
             LOG_S("section", section), LOG_I("delivered", p->delivered));
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

/*
 * The tenant a POST /api/interact sends for (a reference, or NULL when none can be named):
 * a tenant's apiSecret sends for that tenant; the operator for the sessionId's own tenant.
 */
static tenant_t *navigate_tenant(tenant_t *scope, const target_t *t)
{
    if (scope) {
        tenant_ref(scope);
        return scope;
    }
    return target_tenant(t);
}

/* Checks in the order of SPEC 14: 401 -> invalid_json -> unknown_page -> invalid_request ->
 * invalid_section -> session_not_connected. */
static void navigate(router_t *r, const net_http_msg_t *req, const remotes_t *rem)
{
    size_t pl = strlen(INTERACT_PREFIX), sl = strlen(NAVIGATE_SUFFIX), len = strlen(req->path);
    if (len <= pl + sl || strcmp(req->path + len - sl, NAVIGATE_SUFFIX) != 0) {
        net_http_error(req->conn, 404, "not_found", "no such endpoint");
        return;
    }
    tenant_t *scope = NULL;
    if (!auth_api_scope(req, &scope)) {
        net_http_error(req->conn, 401, "unauthorized", "a valid API secret is required");
        return;
    }
    if (req->json_invalid || (req->json && !cJSON_IsObject(req->json))) {
        tenant_unref(scope);
        net_http_error(req->conn, 400, "invalid_json", "the body must be a JSON object");
        return;
    }
    const cJSON *args = req->json;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(args, "parameters");
    if (cJSON_IsObject(params))
        args = params;
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(args, "sessionId");
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(args, "section");
    bool sid_ok =
        cJSON_IsString(sid) && str_is_id(sid->valuestring, strlen(sid->valuestring), 1, ID_MAX);
    target_t *t = sid_ok ? target_get(r, sid->valuestring, false) : NULL;
    bool remote = rem && rem->n > 0;
    tenant_t *tenant = scope == NULL && t == NULL && remote && rem->tenant[0][0]
                           ? tenants_get(rem->tenant[0]) /* the sessionId's tenant, elsewhere */
                           : navigate_tenant(scope, t);
    tenant_unref(scope);
    char page_name[PAGE_NAME_MAX + 1];
    size_t n = len - pl - sl;
    const agent_page_t *page = NULL;
    if (n <= PAGE_NAME_MAX && tenant) {
        memcpy(page_name, req->path + pl, n);
        page_name[n] = '\0';
        page = agentcfg_page(&tenant->cfg, page_name);
    }
    if (page == NULL) {
        net_http_error(req->conn, 404, "unknown_page", "no such page in the agent config");
    } else if (!sid_ok || !cJSON_IsString(section)) {
        net_http_error(req->conn, 400, "invalid_request",
                       "the body needs string fields sessionId and section");
    } else if (!agentcfg_page_has_section(page, section->valuestring)) {
        invalid_section(req->conn, page);
    } else if (reach(t, tenant->id) == 0 && !remote) {
        /* Nothing of this tenant's is connected: another tenant's session is as if absent. */
        net_http_error(req->conn, 404, "session_not_connected",
                       "no page or voice session is connected for this sessionId");
    } else {
        send_command(r, t, sid->valuestring, tenant->id, page->name, section->valuestring,
                     req->conn, NULL, rem);
    }
    tenant_unref(tenant);
}

/* ---- The navigate tool of the voice model (SPEC 6, 14) -----------------------------------------
 */

/* Fails the call with an error naming the valid choices: page's sections, else the pages of
 * cfg (NULL: none). */
static void tool_fail(const tool_call_msg_t *c, const char *code, const char *message,
                      const agentcfg_t *cfg, const agent_page_t *page)
{
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b,
                "{\"ok\":false,\"delivered\":0,\"acked\":false,\"error\":{\"code\":\"%s\","
                "\"message\":",
                code);
    sbuf_json_str(&b, message);
    sbuf_puts(&b, ",\"valid\":[");
    size_t n = page ? page->n_sections : cfg ? cfg->n_pages : 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_putc(&b, ',');
        sbuf_json_str(&b, page ? page->sections[i] : cfg->pages[i].name);
    }
    sbuf_puts(&b, "]}}");
    actor_send(c->reply_to, &tool_result_new(c->cookie, true, b.data)->hdr);
    sbuf_destroy(&b);
}

/* The page a navigate call without `page` means: the one the caller's newest tab of tenant
 * reported (if cfg has it), else cfg's only page, else none. */
static const agent_page_t *default_page(const target_t *t, const tenant_t *tenant)
{
    const agentcfg_t *cfg = &tenant->cfg;
    for (int i = t ? t->n_pages : 0; i-- > 0;) {
        const agent_page_t *p = t->pages[i].page[0] && page_is(t, i, tenant->id)
                                    ? agentcfg_page(cfg, t->pages[i].page)
                                    : NULL;
        if (p)
            return p;
    }
    return cfg->n_pages == 1 ? &cfg->pages[0] : NULL;
}

/* The voice model's navigate: the pages of the call's tenant (the one the call names, else its
 * session's), to that tenant's sockets of the caller's sessionId. */
static void navigate_tool(router_t *r, const tool_call_msg_t *c, const remotes_t *rem)
{
    if (c->reply_to == NULL)
        return;
    static const char none[] = "{\"ok\":false,\"delivered\":0,\"acked\":false}";
    const cJSON *pg = cJSON_GetObjectItemCaseSensitive(c->args, "page");
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(c->args, "section");
    target_t *t = target_get(r, c->session_id, false);
    const tenant_t *tenant = c->tenant ? c->tenant : t && t->voice ? t->voice_tenant : NULL;
    if (tenant == NULL) {
        actor_send(c->reply_to, &tool_result_new(c->cookie, true, none)->hdr);
        return;
    }
    const agent_page_t *page;
    if (cJSON_IsString(pg) && pg->valuestring[0]) {
        page = agentcfg_page(&tenant->cfg, pg->valuestring);
        if (page == NULL) {
            tool_fail(c, "unknown_page", "no such page; use one of the pages listed", &tenant->cfg,
                      NULL);
            return;
        }
    } else if ((page = default_page(t, tenant)) == NULL) {
        tool_fail(c, "page_required", "say which page: one of the pages listed", &tenant->cfg,
                  NULL);
        return;
    }
    if (!cJSON_IsString(section) || !agentcfg_page_has_section(page, section->valuestring)) {
        tool_fail(c, "invalid_section", "section is not one of this page's sections", &tenant->cfg,
                  page);
        return;
    }
    if (reach(t, tenant->id) == 0 && !(rem && rem->n > 0)) {
        actor_send(c->reply_to, &tool_result_new(c->cookie, true, none)->hdr);
        return;
    }
    pending_t *p = xcalloc(1, sizeof(*p));
    actor_ref(c->reply_to);
    p->reply_to = c->reply_to;
    p->cookie = c->cookie;
    send_command(r, t, c->session_id, tenant->id, page->name, section->valuestring, 0, p, rem);
}

/* ---- Voice sockets --------------------------------------------------------------------------- */

static void voice_msg_free(msg_t *m)
{
    tenant_unref(((router_voice_msg_t *)m)->tenant);
    msg_block_free(m);
}

router_voice_msg_t *router_voice_new(uint32_t type, const char *session_id, conn_id_t conn,
                                     tenant_t *tenant)
{
    router_voice_msg_t *m = MSG_NEW(router_voice_msg_t, type);
    m->hdr.free_fn = voice_msg_free;
    str_copy(m->session_id, session_id, sizeof(m->session_id));
    m->conn = conn;
    tenant_ref(tenant);
    m->tenant = tenant;
    return m;
}

static void voice_open(router_t *r, router_voice_msg_t *v)
{
    target_t *t = target_get(r, v->session_id, true);
    tenant_unref(t->voice_tenant);
    t->voice = v->conn;
    t->voice_tenant = v->tenant; /* taken from the message */
    v->tenant = NULL;
    pg_write(r, v->session_id, t);
}

static void voice_closed(router_t *r, const router_voice_msg_t *v)
{
    target_t *t = target_get(r, v->session_id, false);
    if (t && t->voice == v->conn) {
        t->voice = 0;
        tenant_unref(t->voice_tenant);
        t->voice_tenant = NULL;
        target_gc(r, v->session_id, t);
        pg_write(r, v->session_id, target_get(r, v->session_id, false));
    }
}

/* ---- Across nodes (SPEC 13) --------------------------------------------------------------- */

/* Which other live nodes hold sockets of a sessionId (and their tenant). ARGV: sessionId, us. */
static const char ROUTE_LUA[] =
    "local out = {}\n"
    "local h = redis.call('HGETALL', 'sb:pg:' .. ARGV[1])\n"
    "for i = 1, #h, 2 do\n"
    "  if h[i] ~= ARGV[2] then\n"
    "    if redis.call('EXISTS', 'sb:lease:' .. h[i]) == 1 then\n"
    "      table.insert(out, h[i]); table.insert(out, h[i + 1])\n"
    "    else\n"
    "      redis.call('HDEL', 'sb:pg:' .. ARGV[1], h[i])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

static bool clustered(const router_t *r)
{
    return net_redis_on() && r->node[0];
}

static void publish(router_t *r, const char *node, cJSON *msg)
{
    char channel[NODE_ID_MAX + 16];
    snprintf(channel, sizeof(channel), "sb:node:%s", node);
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    const char *argv[] = {"PUBLISH", channel, text};
    net_redis_cmd(&r->actor, 0, 3, argv, NULL);
    free(text);
}

/* SessionIds with sockets here (their sb:pg entries), in one script. ARGV: node, ttl ms, then
 * (sessionId, tenant)*. */
static const char PG_SYNC_LUA[] =
    "for i = 3, #ARGV, 2 do\n"
    "  local k = 'sb:pg:' .. ARGV[i]\n"
    "  redis.call('HSET', k, ARGV[1], ARGV[i + 1])\n"
    "  redis.call('PEXPIRE', k, ARGV[2])\n"
    "end\n"
    "return 1\n";

/* Writes in Redis whether this node holds sockets of sid (t NULL: none any more). */
static void pg_write(router_t *r, const char *sid, const target_t *t)
{
    if (!clustered(r))
        return;
    if (t == NULL) {
        char key[ID_MAX + 8];
        snprintf(key, sizeof(key), "sb:pg:%s", sid);
        const char *argv[] = {"HDEL", key, r->node};
        net_redis_cmd(&r->actor, 0, 3, argv, NULL);
        return;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", ROUTER_PG_TTL_MS);
    tenant_t *tn = target_tenant(t);
    const char *argv[] = {"EVAL", PG_SYNC_LUA, "0", r->node, ttl, sid, tn ? tn->id : ""};
    net_redis_cmd(&r->actor, 0, 7, argv, NULL);
    tenant_unref(tn);
}

typedef struct pg_sync {
    const char **argv;
    tenant_t **tenants; /* references, dropped once sent */
    int argc, n;
} pg_sync_t;

static int pg_sync_one(const char *key, void *value, void *arg)
{
    pg_sync_t *ps = arg;
    tenant_t *tn = target_tenant(value);
    ps->tenants[ps->n++] = tn;
    ps->argv[ps->argc++] = key;
    ps->argv[ps->argc++] = tn ? tn->id : "";
    return 0;
}

static void pg_sync(router_t *r)
{
    size_t n = strmap_count(&r->targets);
    if (n == 0)
        return;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", ROUTER_PG_TTL_MS);
    pg_sync_t ps = {xcalloc(5 + 2 * n, sizeof(char *)), xcalloc(n, sizeof(tenant_t *)), 0, 0};
    ps.argv[ps.argc++] = "EVAL";
    ps.argv[ps.argc++] = PG_SYNC_LUA;
    ps.argv[ps.argc++] = "0";
    ps.argv[ps.argc++] = r->node;
    ps.argv[ps.argc++] = ttl;
    strmap_filter(&r->targets, pg_sync_one, &ps);
    net_redis_cmd(&r->actor, 0, ps.argc, ps.argv, NULL);
    for (int i = 0; i < ps.n; i++)
        tenant_unref(ps.tenants[i]);
    free(ps.tenants);
    free(ps.argv);
}

static int remote_ack_expired(const char *key, void *value, void *arg)
{
    (void)key;
    const remote_ack_t *ra = value;
    if (arg != NULL && clock_now_ns() - ra->at_ns < REMOTE_ACK_KEEP_NS)
        return 0;
    free(value);
    return 1;
}

/* Every second until it works: learn our name and listen on our channel; every 5 s: write our
 * sessionIds again. */
static void cluster_sync(router_t *r)
{
    if (!net_redis_on())
        return;
    if (r->node[0] == '\0') {
        if (!cluster_node_id(r->node))
            return;
        snprintf(r->channel, sizeof(r->channel), "sb:node:%s", r->node);
    }
    if (!r->subscribed)
        r->subscribed = net_redis_subscribe(&r->actor, r->channel) == 0;
    if (++r->ticks % ROUTER_SYNC_TICKS != 1)
        return;
    pg_sync(r);
    strmap_filter(&r->remote_acks, remote_ack_expired, r);
}

/* A command whose sessionId's other nodes must be known first: kept until Redis answers. Returns
 * true when m was kept. */
static bool cluster_lookup(router_t *r, msg_t *m, const char *sid)
{
    if (!clustered(r) || sid == NULL)
        return false;
    char key[24];
    uint64_t cookie = ++r->next_cookie;
    snprintf(key, sizeof(key), "%llx", (unsigned long long)cookie);
    const char *argv[] = {"EVAL", ROUTE_LUA, "0", sid, r->node};
    if (net_redis_cmd(&r->actor, cookie, 5, argv, NULL) != 0)
        return false;
    strmap_put(&r->lookups, key, m);
    return true;
}

static void run_command(router_t *r, msg_t *m, const remotes_t *rem)
{
    if (m->type == NET_MSG_HTTP)
        navigate(r, (net_http_msg_t *)m, rem);
    else
        navigate_tool(r, (tool_call_msg_t *)m, rem);
}

static void lookup_done(router_t *r, const net_redis_msg_t *rm)
{
    char key[24];
    snprintf(key, sizeof(key), "%llx", (unsigned long long)rm->cookie);
    msg_t *m = rm->cookie ? strmap_del(&r->lookups, key) : NULL;
    if (m == NULL)
        return; /* a write's answer */
    remotes_t rem = {0};
    const net_redis_reply_t *rep = rm->ok ? rm->reply : NULL;
    for (size_t i = 0; rep && rep->type == NET_REDIS_ARRAY && i + 1 < rep->n; i += 2) {
        if (rem.n == REMOTES_MAX || rep->elem[i]->type != NET_REDIS_STRING ||
            rep->elem[i + 1]->type != NET_REDIS_STRING)
            break;
        str_copy(rem.node[rem.n], rep->elem[i]->str, sizeof(rem.node[0]));
        str_copy(rem.tenant[rem.n], rep->elem[i + 1]->str, sizeof(rem.tenant[0]));
        rem.n++;
    }
    /* Redis unreachable: this node's own sockets only. */
    run_command(r, m, &rem);
    msg_free(m);
}

/* What another node publishes on our channel. */
static void cluster_message(router_t *r, const net_redis_pub_msg_t *pm)
{
    cJSON *j = cJSON_ParseWithLength(pm->payload, pm->len);
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "op"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
    if (op == NULL || id == NULL) {
        cJSON_Delete(j);
        return;
    }
    if (strcmp(op, "cmd") == 0) {
        const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "from"));
        const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "sid"));
        const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "tenant"));
        const char *page = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "page"));
        const char *section = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "section"));
        if (from && sid && tenant && page && section) {
            int n = deliver(target_get(r, sid, false), tenant, id, page, section);
            if (n > 0) {
                remote_ack_t *ra = xcalloc(1, sizeof(*ra));
                str_copy(ra->origin, from, sizeof(ra->origin));
                ra->at_ns = clock_now_ns();
                free(strmap_put(&r->remote_acks, id, ra));
            }
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "op", "sent");
            cJSON_AddStringToObject(a, "id", id);
            cJSON_AddNumberToObject(a, "delivered", n);
            publish(r, from, a);
        }
    } else if (strcmp(op, "sent") == 0) {
        pending_t *p = pending_by_id(r, id);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delivered");
        if (p != NULL && p->waiting > 0) {
            p->delivered += cJSON_IsNumber(d) && d->valuedouble > 0 ? (int)d->valuedouble : 0;
            p->waiting--;
            if (p->waiting == 0 && p->acked)
                pending_finish(r, p, true);
        }
    } else if (strcmp(op, "ack") == 0) {
        pending_t *p = pending_by_id(r, id);
        if (p != NULL)
            pending_acked(r, p);
    }
    cJSON_Delete(j);
}

static bool http_authorized(const net_http_msg_t *req)
{
    tenant_t *scope = NULL;
    bool ok = auth_api_scope(req, &scope);
    tenant_unref(scope);
    return ok;
}

/* The sessionId a command names, or NULL: the HTTP body's (or its parameters'), the caller's. */
static const char *command_sid(const msg_t *m)
{
    if (m->type == TOOL_MSG_CALL)
        return ((const tool_call_msg_t *)m)->session_id;
    const net_http_msg_t *req = (const net_http_msg_t *)m;
    const cJSON *args = req->json;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(args, "parameters");
    if (cJSON_IsObject(params))
        args = params;
    const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(args, "sessionId"));
    return sid && str_is_id(sid, strlen(sid), 1, ID_MAX) ? sid : NULL;
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
    case TOOL_MSG_CALL:
        /* With Redis, the sessionId's other nodes first (an unauthorised request is answered
         * without asking). */
        if ((m->type == TOOL_MSG_CALL || http_authorized((net_http_msg_t *)m)) &&
            cluster_lookup(r, m, command_sid(m)))
            return;
        run_command(r, m, NULL);
        break;
    case NET_MSG_REDIS:
        lookup_done(r, (net_redis_msg_t *)m);
        break;
    case NET_MSG_REDIS_PUB:
        cluster_message(r, (net_redis_pub_msg_t *)m);
        break;
    case ROUTER_MSG_SYNC:
        cluster_sync(r);
        break;
    case ROUTER_MSG_VOICE_OPEN:
        voice_open(r, (router_voice_msg_t *)m);
        break;
    case ROUTER_MSG_VOICE_CLOSED:
        voice_closed(r, (router_voice_msg_t *)m);
        break;
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

static int free_target(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    target_t *t = value;
    tenant_unref(t->voice_tenant);
    free(t);
    return 1;
}

static int free_msg(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    msg_free(value);
    return 1;
}

static void router_stop(actor_t *self)
{
    router_t *r = (router_t *)self;
    actor_timer_free(r->sync);
    strmap_filter(&r->lookups, free_msg, NULL);
    strmap_destroy(&r->lookups);
    strmap_filter(&r->remote_acks, remote_ack_expired, NULL);
    strmap_destroy(&r->remote_acks);
    while (r->pending)
        pending_finish(r, r->pending, false);
    strmap_filter(&r->targets, free_target, NULL);
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
    strmap_init(&r->lookups);
    strmap_init(&r->remote_acks);
    randombytes_buf(&r->nonce, sizeof(r->nonce));
    if (net_redis_on()) {
        r->sync = actor_timer_new(&r->actor, ROUTER_MSG_SYNC, NULL);
        actor_timer_start(r->sync, ROUTER_SYNC_FIRST_MS, ROUTER_TICK_MS);
    }
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
