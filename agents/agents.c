/*
 * The wiring (agents.h): the long-lived actors, the dependencies handed to the actors spawned
 * per connection, the route tables, start-up and shutdown order, and the answers the network
 * threads give themselves (health, readiness, metrics).
 *
 * The state below belongs to the main thread. The deps structs are read by network threads when
 * a connection is accepted (route args); they hold main's references, which stay valid until
 * agents_stop(), after net_stop() has retired every route.
 */
#include "agents/agents.h"

#include <ck_pr.h>
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/sched.h"
#include "agents/agentrun/agentrun.h"
#include "agents/auth/auth.h"
#include "agents/chat/chat.h"
#include "agents/mcp/mcp.h"
#include "agents/onboard/brief.h"
#include "agents/onboard/onboard.h"
#include "agents/page/page.h"
#include "agents/phone/phone.h"
#include "agents/phone/twilio.h"
#include "agents/postcall/postcall.h"
#include "agents/store/store.h"
#include "agents/supervisor/supervisor.h"
#include "agents/tenant/tenant.h"
#include "agents/voice/voice.h"
#include "agents/web/web.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"

#define AGENTS_MAX_TEXT_BYTES 65536 /* /ws/chat and /ws/agent (SPEC 2.1) */
#define SETTLE_POLL_MS        5
/* /twilio/media: a message with a media payload over the 16 KiB limit is dropped by the session
 * and the call goes on (SPEC 5.5), so the frame limit sits well above it. */
#define AGENTS_MAX_PHONE_BYTES (256 * 1024)

_Static_assert(STORE_SERVER_KEY_BYTES == GATE_USER_SECRET_BYTES, "the gate takes the store's key");

/* main's references to the long-lived actors, in start-up order. */
static struct {
    actor_t *store;
    actor_t *gate;
    actor_t *router;
    actor_t *pool;
    actor_t *postcall; /* the post-call job runner (SPEC 15) */
    actor_t *chat;
    actor_t *brief;
    actor_t *phone; /* NULL unless SWITCHBOARD_TWILIO_AUTH_TOKEN is set */
    bool web;
} A;

static voice_deps_t voice_deps;
static agentrun_deps_t agentrun_deps;
static uint64_t started_ns;

/* ---- Answered on the network thread -------------------------------------------------------- */

static void healthz(const net_local_req_t *req, net_local_resp_t *resp)
{
    (void)req;
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b, "{\"status\":\"ok\",\"sessions\":%lld,\"uptime_s\":%llu}",
                (long long)metric_gauge_get(&g_metrics.sessions_active),
                (unsigned long long)((clock_now_ns() - started_ns) / NS_PER_SEC));
    resp->body_len = b.len;
    resp->body = sbuf_take(&b);
}

/* SPEC 13: not ready while Redis is unreachable, or until PostgreSQL has been reached once (its
 * migrations run); PostgreSQL lost later queues records and keeps the node ready. */
static bool pg_reached(void)
{
    static int reached; /* [atomic] once true, stays true */
    if (ck_pr_load_int(&reached))
        return true;
    if (!net_pg_ready())
        return false;
    ck_pr_store_int(&reached, 1);
    return true;
}

static void readyz(const net_local_req_t *req, net_local_resp_t *resp)
{
    (void)req;
    const char *why = NULL;
    if (!net_redis_ready())
        why = "Redis is unreachable";
    else if (net_pg_on() && !pg_reached())
        why = "PostgreSQL has not been reached";
    else if (!gate_cluster_ready())
        why = net_redis_on() ? "Redis is unreachable" : "the server key has not been read";
    sbuf_t b = SBUF_INIT;
    if (net_draining())
        sbuf_puts(&b, "{\"error\":{\"code\":\"draining\",\"message\":\"shutting down\"}}");
    else if (why)
        sbuf_printf(&b, "{\"error\":{\"code\":\"unavailable\",\"message\":\"%s\"}}", why);
    else
        sbuf_puts(&b, "{\"status\":\"ready\"}");
    resp->status = net_draining() || why ? 503 : 200;
    resp->body_len = b.len;
    resp->body = sbuf_take(&b);
}

static void metrics(const net_local_req_t *req, net_local_resp_t *resp)
{
    (void)req;
    sbuf_t b = SBUF_INIT;
    metrics_render(&b);
    resp->content_type = "text/plain; version=0.0.4";
    resp->body_len = b.len;
    resp->body = sbuf_take(&b);
}

static double mailbox_depth(void *arg)
{
    (void)arg;
    return (double)sched_mailbox_depth();
}

/* ---- Routes -------------------------------------------------------------------------------- */

static net_http_route_t http_routes[] = {
    {.path = "/healthz", .methods = NET_GET | NET_HEAD, .local = healthz},
    {.path = "/readyz", .methods = NET_GET | NET_HEAD, .local = readyz},
    {.path = "/metrics", .methods = NET_GET | NET_HEAD, .local = metrics},
    {.path = "/api/sessions", .methods = NET_POST, .foreign_origin_403 = true}, /* target: gate */
    {.path = "/api/interact/", .prefix = true, .methods = NET_POST},            /* target: router */
    {.path = BRIEF_ROUTE,
     .prefix = true,
     .methods = NET_POST,
     .max_body = ONBOARD_MAX_PDF_BYTES}, /* target: brief (SPEC 16: a PDF of up to 10 MB) */
};

static net_ws_route_t ws_routes[] = {
    {"/ws", 0, 0, NULL, session_ws_target, NULL, true, NULL, NULL},
    {"/ws/page", 0, 0, NULL, router_ws_target, NULL, false, NULL, NULL},
    {"/ws/chat", AGENTS_MAX_TEXT_BYTES, 0, NULL, chat_ws_target, NULL, false, NULL, NULL},
    {"/ws/agent", AGENTS_MAX_TEXT_BYTES, 0, NULL, agentrun_ws_target, NULL, true, "answer", NULL},
};

/* Phone calls (SPEC 5.5), routed only when they are on: otherwise both paths are 404. Media
 * frames are JSON objects without "type"; net types them all PHONECALL_EVENT_TYPE, and reads
 * media and mark messages (100 a second per call) with phonecall_scan(), no tree built. */
static net_http_route_t phone_route = {.path = PHONE_VOICE_PATH, .methods = NET_POST};
static net_ws_route_t phone_ws_route = {
    PHONE_MEDIA_PATH,     AGENTS_MAX_PHONE_BYTES, 0, NULL, phonecall_ws_target, NULL, true,
    PHONECALL_EVENT_TYPE, phonecall_scan};

/* Gives an HTTP route its target, with a reference of the route's own (dropped by net_stop). */
static void route_to(net_http_route_t *r, actor_t *target)
{
    actor_ref(target);
    r->target = target;
}

static void add_routes(void)
{
    route_to(&http_routes[3], A.gate);
    route_to(&http_routes[4], A.router);
    route_to(&http_routes[5], A.brief);
    for (size_t i = 0; i < ARRAY_LEN(http_routes); i++)
        net_add_http_route(&http_routes[i]);
    store_add_routes(A.store);

    voice_deps =
        (voice_deps_t){.gate = A.gate, .router = A.router, .pool = A.pool, .store = A.store};
    agentrun_deps = (agentrun_deps_t){.pool = A.pool, .store = A.store};
    ws_routes[0].max_text_bytes = (size_t)g_config->max_control_bytes;
    ws_routes[0].max_binary_bytes = (size_t)g_config->max_audio_bytes;
    ws_routes[0].types = session_event_types();
    ws_routes[0].arg = &voice_deps;
    ws_routes[1].max_text_bytes = (size_t)g_config->max_control_bytes;
    ws_routes[1].types = router_event_types();
    ws_routes[1].arg = A.router;
    ws_routes[2].types = chat_event_types();
    ws_routes[2].arg = A.chat;
    ws_routes[3].types = agentrun_event_types();
    ws_routes[3].arg = &agentrun_deps;
    for (size_t i = 0; i < ARRAY_LEN(ws_routes); i++)
        net_add_ws_route(&ws_routes[i]);
    if (A.phone) {
        route_to(&phone_route, A.phone);
        net_add_http_route(&phone_route);
        /* Binary frames reach the session, which closes 1003 (SPEC 5.5). */
        phone_ws_route.max_binary_bytes = (size_t)g_config->max_audio_bytes;
        phone_ws_route.types = phonecall_event_types();
        phone_ws_route.arg = &voice_deps;
        net_add_ws_route(&phone_ws_route);
    }
}

/* ---- Start and stop ------------------------------------------------------------------------ */

/* Stops a long-lived actor and drops main's reference; NULL-safe. */
static void stop_actor(actor_t **a)
{
    if (*a == NULL)
        return;
    actor_stop(*a);
    actor_unref(*a);
    *a = NULL;
}

/* The store's server keys, read after start-up (PostgreSQL): the gate's from now on. */
static void server_key_loaded(const store_keys_t *keys)
{
    if (A.gate)
        gate_user_key(A.gate, keys->user_key);
}

int agents_start(const char *db_path, char *err, size_t errlen)
{
    started_ns = clock_now_ns();
    metrics_register_gauge_fn("switchboard_mailbox_depth",
                              "Messages waiting in all actor mailboxes.", mailbox_depth, NULL);
    metrics_register_text_fn(tenants_metrics, NULL);
    metrics_register_text_fn(mcp_metrics, NULL);
    tenants_on_free(mcp_tenant_freed); /* a snapshot's MCP clients go with its last user */
    net_set_origin_hook(tenants_origin_allowed); /* every tenant's allowedOrigins (SPEC 16) */
    /* The database first: a bad SWITCHBOARD_DB stops start-up before anything listens. It also
     * keeps the server keys, which the actors that use them get a copy of at spawn. */
    store_keys_t keys;
    store_on_server_key(server_key_loaded);
    if (store_open(db_path, &A.store, &keys, err, errlen) != 0)
        return -1;
    A.gate = keys.later ? gate_spawn_later(keys.user_key) : gate_spawn(keys.user_key);
    sodium_memzero(&keys, sizeof(keys));
    A.router = A.gate ? router_spawn() : NULL;
    A.pool = A.router ? supervisor_pool_spawn(A.store) : NULL;
    A.postcall = A.pool ? postcall_spawn(A.store, A.pool) : NULL;
    if (A.postcall) {
        chat_deps_t cd = {.gate = A.gate, .pool = A.pool, .store = A.store};
        A.chat = chat_spawn(&cd);
    }
    A.brief = A.chat ? brief_spawn(NULL) : NULL;
    if (A.brief && phone_enabled()) {
        metrics_register_text_fn(phone_metrics, NULL);
        A.phone = phone_spawn(A.gate);
    }
    A.web = A.brief && (A.phone || !phone_enabled()) && web_start() == 0;
    if (!A.web) {
        snprintf(err, errlen, "cannot start the actor runtime");
        agents_stop();
        return -1;
    }
    add_routes();
    return 0;
}

/* Gives every current tenant snapshot the MCP clients of its servers (mcp_sync). */
static int sync_clients(void)
{
    tenant_t **all;
    size_t n = tenants_list(&all);
    int rc = mcp_sync(all, n);
    for (size_t i = 0; i < n; i++)
        tenant_unref(all[i]);
    free(all);
    return rc;
}

int agents_start_clients(void)
{
    store_net_started(A.store);
    return sync_clients() == 0 ? 0 : -1;
}

void agents_stop_clients(uint64_t wait_ms)
{
    mcp_stop_all(wait_ms);
}

void agents_settle(uint64_t wait_ms)
{
    if (!net_pg_on() || A.store == NULL)
        return;
    uint64_t deadline = clock_now_ns() + wait_ms * NS_PER_MS;
    while (metric_gauge_get(&g_metrics.sessions_active) > 0 && clock_now_ns() < deadline)
        usleep(SETTLE_POLL_MS * 1000);
    uint64_t now = clock_now_ns();
    uint64_t left_ms = now < deadline ? (deadline - now) / NS_PER_MS : 0;
    if (store_sync(A.store, left_ms > 0 ? left_ms : 1) != 0)
        log_warn("store.sync", LOG_S("reason", "the store did not catch up before the stop"));
}

int agents_stop(void)
{
    if (A.web)
        web_stop();
    A.web = false;
    stop_actor(&A.phone);
    stop_actor(&A.brief);
    stop_actor(&A.chat);     /* stops its thread actors */
    stop_actor(&A.postcall); /* its attempts in flight run again after the next start-up */
    stop_actor(&A.pool);     /* stops its runs */
    stop_actor(&A.router);
    stop_actor(&A.gate);
    int rc = store_close(A.store); /* waits for the last holder, then closes the file */
    A.store = NULL;
    return rc;
}

void agents_reload(void)
{
    /* The snapshots of now are held across the reload, so that a tenant whose file changed but
     * whose servers did not still has users of their clients when the new snapshot is counted:
     * they are kept, not stopped and started again. */
    tenant_t **before;
    size_t n = tenants_list(&before);
    tenants_reload();
    /* New tenants' and changed servers' clients start now; the old ones go when the snapshots
     * that name them are freed (mcp_tenant_freed), after the last run that started with them. */
    if (sync_clients() != 0)
        log_error("mcp.sync_failed", LOG_S("why", "cannot spawn an MCP client"));
    for (size_t i = 0; i < n; i++)
        tenant_unref(before[i]);
    free(before);
}

/* Frees what outlives the actors (main, after sched_stop()). */
void agents_free(void)
{
}
