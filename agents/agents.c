/*
 * Wiring of the product's actors to the network: the singletons, the route tables, the answers
 * the network threads give themselves (health, readiness, metrics) and shared auth helpers.
 */
#include "agents/agents.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "actors/sched.h"
#include "agents/supervisor/supervisor.h"
#include "agents/tools/tools.h"
#include "agents/web/web.h"
#include "base/config.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"

#define BEARER_PREFIX         "Bearer "
#define AGENTS_MAX_TEXT_BYTES 65536 /* /ws/chat and /ws/agent (SPEC 2.1) */

actor_t *g_gate;
actor_t *g_router;
static uint64_t started_ns;

static const char *const page_types[] = {"command.ack", NULL};

bool agents_bearer_ok(const char *authorization, const char *secret)
{
    if (authorization == NULL || secret == NULL)
        return false;
    size_t pl = strlen(BEARER_PREFIX);
    if (strncmp(authorization, BEARER_PREFIX, pl) != 0)
        return false;
    const char *given = authorization + pl;
    size_t n = strlen(secret);
    return strlen(given) == n && sodium_memcmp(given, secret, n) == 0;
}

bool agents_api_auth_ok(const net_http_msg_t *req)
{
    if (g_config->api_secret)
        return agents_bearer_ok(req->authorization, g_config->api_secret);
    return req->peer.loopback;
}

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

static void readyz(const net_local_req_t *req, net_local_resp_t *resp)
{
    (void)req;
    const char *body = net_draining()
                           ? "{\"error\":{\"code\":\"draining\",\"message\":\"shutting down\"}}"
                           : "{\"status\":\"ready\"}";
    resp->status = net_draining() ? 503 : 200;
    resp->body = xstrdup(body);
    resp->body_len = strlen(body);
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
    {"/healthz", false, NET_GET | NET_HEAD, NULL, healthz},
    {"/readyz", false, NET_GET | NET_HEAD, NULL, readyz},
    {"/metrics", false, NET_GET | NET_HEAD, NULL, metrics},
    {"/api/sessions", false, NET_POST, NULL, NULL}, /* target: gate */
    {"/api/interact/", true, NET_POST, NULL, NULL}, /* target: router */
};

static net_ws_route_t ws_routes[] = {
    {"/ws", 0, 0, NULL, session_ws_target, NULL, true, NULL},
    {"/ws/page", 0, 0, page_types, router_ws_target, NULL, false, NULL},
    {"/ws/chat", AGENTS_MAX_TEXT_BYTES, 0, NULL, chat_ws_target, NULL, false, NULL},
    {"/ws/agent", AGENTS_MAX_TEXT_BYTES, 0, NULL, agentrun_ws_target, NULL, true, "answer"},
};

int agents_start(void)
{
    started_ns = clock_now_ns();
    metrics_register_gauge_fn("switchboard_mailbox_depth",
                              "Messages waiting in all actor mailboxes.", mailbox_depth, NULL);
    upstream_init();
    g_gate = gate_spawn();
    g_router = router_spawn();
    if (g_gate == NULL || g_router == NULL || supervisor_start() != 0 || web_start() != 0)
        return -1;
    g_chat = chat_spawn();
    if (g_chat == NULL)
        return -1;
    http_routes[3].target = g_gate;
    actor_ref(g_gate); /* the route's reference, dropped by net_stop() */
    http_routes[4].target = g_router;
    actor_ref(g_router);
    for (size_t i = 0; i < ARRAY_LEN(http_routes); i++)
        net_add_http_route(&http_routes[i]);

    ws_routes[0].max_text_bytes = (size_t)g_config->max_control_bytes;
    ws_routes[0].max_binary_bytes = (size_t)g_config->max_audio_bytes;
    ws_routes[0].types = session_event_types();
    ws_routes[1].max_text_bytes = (size_t)g_config->max_control_bytes;
    ws_routes[2].types = chat_event_types();
    ws_routes[3].types = agentrun_event_types();
    for (size_t i = 0; i < ARRAY_LEN(ws_routes); i++)
        net_add_ws_route(&ws_routes[i]);
    return 0;
}

void agents_stop(void)
{
    supervisor_stop();
    web_stop();
    if (g_gate)
        actor_unref(g_gate);
    if (g_router)
        actor_unref(g_router);
    if (g_chat) {
        actor_stop(g_chat); /* its thread actors hold references to it: stop them first */
        actor_unref(g_chat);
    }
}
