/*
 * The MCP client actor (mcp.h): lifecycle, requests and their deadlines, dispatch of what the
 * server sends, tool calls, restarts; the stdio transport (a child process on a network thread,
 * net_proc_*). The Streamable HTTP transport is in mcphttp.c.
 *
 * Every request the client sends is a mcp_req_t with its own deadline timer; a response is
 * matched by id only after the message has been classified as a response by its fields
 * (mcpproto_classify), so the server's own requests, whose ids collide with ours, are never
 * mistaken for answers. A request that is given up (deadline, cancel, failure) is freed at once:
 * a late response then finds no id and is dropped.
 *
 * Connection attempts are numbered (generation); the child process of an old attempt is killed
 * and its late lines and exit are recognised by its process id and ignored.
 * Thread: the client's worker, except mcp_spawn() and mcp_live_clients().
 */
#include "agents/mcp/mcp.h"

#include <ck_pr.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/mcp/mcp_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "net/net.h"

#define MCP_RELIST_DEBOUNCE_MS 100   /* list_changed comes in bursts (everything sends 7) */
#define MCP_STABLE_UP_MS       60000 /* up this long: the next failure restarts after 1 s again */

extern char **environ;

static int mcp_live; /* [atomic, any] clients not yet closed (mcp_stop_all waits) */

/* ---- Requests -------------------------------------------------------------------------------- */

mcp_req_t *mcp_req_find(mcp_t *m, int64_t id)
{
    for (mcp_req_t *r = m->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void mcp_req_free(mcp_t *m, mcp_req_t *r)
{
    for (mcp_req_t **pp = &m->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    actor_timer_free(r->timer);
    if (r->reply_to)
        actor_unref(r->reply_to);
    free(r->text);
    free(r);
}

/* Sends msg (taken) on the transport; req is the request it carries, or NULL. */
static void mcp_send(mcp_t *m, cJSON *msg, mcp_req_t *req)
{
    size_t len;
    char *line = mcpproto_line(msg, &len);
    cJSON_Delete(msg);
    if (m->srv.command) {
        net_proc_write(m->proc_id, line, len);
    } else {
        if (req) {
            free(req->text);
            req->text = xstrndup(line, len - 1);
        }
        mcphttp_send(m, line, len - 1, req);
    }
    free(line);
}

static mcp_req_t *mcp_request(mcp_t *m, mcp_req_kind_t kind, const char *method, cJSON *params,
                              uint32_t timeout_ms)
{
    mcp_req_t *r = xcalloc(1, sizeof(*r));
    r->id = ++m->next_id;
    r->kind = kind;
    r->started_ns = clock_now_ns();
    r->timer = actor_timer_new(&m->actor, MCP_MSG_REQ_DEADLINE, r);
    actor_timer_start(r->timer, timeout_ms ? timeout_ms : 1, 0);
    r->next = m->reqs;
    m->reqs = r;
    mcp_send(m, mcpproto_request(r->id, method, params), r);
    return r;
}

static void mcp_reply(mcp_req_t *r, tool_result_msg_t *res)
{
    if (r->reply_to)
        actor_send(r->reply_to, &res->hdr);
    else
        msg_free(&res->hdr);
}

static void mcp_send_cancelled(mcp_t *m, int64_t id, const char *reason)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "requestId", (double)id);
    cJSON_AddStringToObject(p, "reason", reason);
    mcp_send(m, mcpproto_notification("notifications/cancelled", p), NULL);
}

/* Fails every request in flight; calls get a tool error saying why. */
static void mcp_fail_all(mcp_t *m, const char *why)
{
    char text[300];
    snprintf(text, sizeof(text), "MCP server %s is not available: %s", m->srv.alias, why);
    while (m->reqs) {
        mcp_req_t *r = m->reqs;
        if (r->kind == MCP_RQ_CALL)
            mcp_reply(r, mcpproto_tool_error(r->cookie, "mcp_unavailable", text));
        mcp_req_free(m, r);
    }
}

/* ---- Status, tools and the registry ---------------------------------------------------------- */

static void mcp_status_free(msg_t *msg)
{
    cJSON_Delete(((mcp_status_msg_t *)msg)->tools);
    msg_block_free(msg);
}

static void mcp_status(mcp_t *m, bool up, const char *error, cJSON *tools)
{
    ck_pr_store_int(&m->up, up ? 1 : 0); /* relaxed: a scrape reads it as a statistic */
    if (m->owner == NULL) {
        cJSON_Delete(tools);
        return;
    }
    mcp_status_msg_t *s = MSG_NEW(mcp_status_msg_t, MCP_MSG_STATUS);
    s->hdr.free_fn = mcp_status_free;
    s->up = up;
    str_copy(s->error, error ? error : "", sizeof(s->error));
    s->tools = tools;
    actor_send(m->owner, &s->hdr);
}

static void mcp_tools_free(mcp_t *m)
{
    for (size_t i = 0; i < m->n_tools; i++)
        free(m->tools[i].original);
    free(m->tools);
    m->tools = NULL;
    m->n_tools = 0;
}

static bool mcp_own_taken(void *arg, const char *name)
{
    mcp_t *m = arg;
    for (size_t i = 0; i < m->n_tools; i++)
        if (strcmp(m->tools[i].exposed, name) == 0)
            return true;
    return false;
}

static bool mcp_tool_hidden(const cJSON *t)
{
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(t, "execution");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(ex, "taskSupport");
    return cJSON_IsString(ts) && strcmp(ts->valuestring, "required") == 0; /* no tasks here */
}

/* The listing is complete: the new table, published, and the owner told. */
static void mcp_list_done(mcp_t *m)
{
    cJSON *list = m->listing;
    m->listing = NULL;
    m->listing_now = false;
    mcp_tools_free(m);
    size_t n = (size_t)cJSON_GetArraySize(list);
    m->tools = xcalloc(n + 1, sizeof(*m->tools));
    mcpreg_entry_t *entries = xcalloc(n + 1, sizeof(*entries));
    char(*exposed)[TOOL_NAME_MAX + 1] = xcalloc(n + 1, sizeof(*exposed));
    size_t k = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, list)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(name) || mcp_tool_hidden(t))
            continue;
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(t, "description");
        entries[k].original = name->valuestring;
        entries[k].description = cJSON_IsString(desc) ? desc->valuestring : "";
        entries[k].input_schema = cJSON_GetObjectItemCaseSensitive(t, "inputSchema");
        k++;
    }
    if (m->publish) {
        mcpreg_publish(m->tenant, m->srv.alias, m->key, &m->actor, entries, k, exposed);
        for (size_t i = 0; i < k; i++) {
            m->tools[i].original = xstrdup(entries[i].original);
            str_copy(m->tools[i].exposed, exposed[i], sizeof(m->tools[i].exposed));
        }
        m->n_tools = k;
    } else {
        for (size_t i = 0; i < k; i++) {
            mcpname_expose(m->srv.alias, entries[i].original, mcp_own_taken, m,
                           m->tools[i].exposed);
            m->tools[i].original = xstrdup(entries[i].original);
            m->n_tools = i + 1;
        }
    }
    cJSON *out = cJSON_CreateArray();
    for (size_t i = 0; i < k; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", m->tools[i].original);
        cJSON_AddStringToObject(o, "exposed", m->tools[i].exposed);
        cJSON_AddStringToObject(o, "description", entries[i].description);
        cJSON_AddItemToObject(o, "inputSchema",
                              entries[i].input_schema
                                  ? cJSON_Duplicate(entries[i].input_schema, true)
                                  : cJSON_CreateObject());
        cJSON_AddItemToArray(out, o);
    }
    free(entries);
    free(exposed);
    cJSON_Delete(list);
    bool first = m->state == MCP_ST_CONNECTING;
    if (first) {
        m->state = MCP_ST_READY;
        m->ready_ns = clock_now_ns();
        actor_timer_start(m->ping_timer, MCP_PING_INTERVAL_MS, MCP_PING_INTERVAL_MS);
        log_info("mcp.ready", LOG_S("tenant", m->tenant), LOG_S("alias", m->srv.alias),
                 LOG_S("version", m->version), LOG_I("tools", k));
    } else {
        log_info("mcp.tools_changed", LOG_S("alias", m->srv.alias), LOG_I("tools", k));
    }
    mcp_status(m, true, NULL, out);
    if (m->relist) {
        m->relist = false;
        actor_timer_start(m->relist_timer, MCP_RELIST_DEBOUNCE_MS, 0);
    }
}

static void mcp_list_page(mcp_t *m, const char *cursor)
{
    cJSON *params = NULL;
    if (cursor) {
        params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "cursor", cursor);
    }
    mcp_request(m, MCP_RQ_LIST, "tools/list", params, MCP_INIT_TIMEOUT_MS);
}

static void mcp_list_start(mcp_t *m)
{
    if (m->listing_now) {
        m->relist = true;
        return;
    }
    m->listing_now = true;
    cJSON_Delete(m->listing);
    m->listing = cJSON_CreateArray();
    mcp_list_page(m, NULL);
}

static void mcp_on_list(mcp_t *m, const cJSON *result, const cJSON *error)
{
    if (result == NULL) {
        m->listing_now = false;
        if (m->state == MCP_ST_CONNECTING) {
            mcp_on_transport_down(m, "tools/list failed");
            return;
        }
        log_warn("mcp.list_failed", LOG_S("alias", m->srv.alias));
        (void)error;
        return;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(result, "tools"))
        cJSON_AddItemToArray(m->listing, cJSON_Duplicate(t, true));
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(result, "nextCursor");
    if (cJSON_IsString(next) && next->valuestring[0])
        mcp_list_page(m, next->valuestring);
    else
        mcp_list_done(m);
}

/* ---- Lifecycle ------------------------------------------------------------------------------- */

/*
 * The environment of a stdio server: ours without SWITCHBOARD_* and OPENAI_* (no secrets for
 * children), then the configured variables. The strings are borrowed: free the array only.
 */
static const char **mcp_child_env(const agent_mcp_server_t *s)
{
    size_t n = 0;
    while (environ[n])
        n++;
    const char **env = xcalloc(n + s->n_env + 1, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, "SWITCHBOARD_", 12) == 0 || strncmp(e, "OPENAI_", 7) == 0)
            continue;
        env[k++] = e;
    }
    for (size_t i = 0; i < s->n_env; i++)
        env[k++] = s->env[i];
    return env;
}

static void mcp_connect(mcp_t *m)
{
    m->generation++;
    m->state = MCP_ST_CONNECTING;
    m->version[0] = '\0';
    if (m->srv.command) {
        const char **env = mcp_child_env(&m->srv);
        const char **args = xcalloc(m->srv.n_args + 1, sizeof(*args));
        for (size_t i = 0; i < m->srv.n_args; i++)
            args[i] = m->srv.args[i];
        net_proc_req_t req = {
            .file = m->srv.command, .args = args, .env = env, .log_name = m->log_name};
        m->proc_id = net_proc_spawn(&req, &m->actor);
        free(args);
        free(env);
        if (m->proc_id == 0) {
            mcp_on_transport_down(m, "cannot start the process");
            return;
        }
    } else {
        mcphttp_open(m);
    }
    log_info("mcp.connect", LOG_S("tenant", m->tenant), LOG_S("alias", m->srv.alias),
             LOG_S("transport", m->srv.command ? "stdio" : "http"));
    mcp_request(m, MCP_RQ_INIT, "initialize", mcpproto_init_params(m->elicit), MCP_INIT_TIMEOUT_MS);
}

void mcp_reinitialize(mcp_t *m)
{
    if (m->state == MCP_ST_CLOSING || m->state == MCP_ST_CLOSED)
        return;
    for (mcp_req_t *r = m->reqs; r; r = r->next)
        if (r->kind == MCP_RQ_INIT)
            return; /* already on it */
    log_info("mcp.reinitialize", LOG_S("alias", m->srv.alias));
    m->state = MCP_ST_CONNECTING;
    m->listing_now = false;
    mcp_request(m, MCP_RQ_INIT, "initialize", mcpproto_init_params(m->elicit), MCP_INIT_TIMEOUT_MS);
}

void mcp_on_transport_down(mcp_t *m, const char *why)
{
    if (m->state == MCP_ST_CLOSING || m->state == MCP_ST_CLOSED || m->state == MCP_ST_BACKOFF ||
        m->state == MCP_ST_DOWN)
        return;
    bool was_up = m->state == MCP_ST_READY;
    log_warn("mcp.down", LOG_S("tenant", m->tenant), LOG_S("alias", m->srv.alias),
             LOG_S("why", why));
    mcp_fail_all(m, why);
    actor_timer_stop(m->ping_timer);
    actor_timer_stop(m->relist_timer);
    cJSON_Delete(m->listing);
    m->listing = NULL;
    m->listing_now = m->relist = false;
    if (m->proc_id) {
        net_proc_kill(m->proc_id, SIGKILL); /* its EXIT is ignored: no longer ours */
        m->proc_id = 0;
    }
    if (m->http)
        mcphttp_close(m, false);
    if (was_up && clock_now_ns() - m->ready_ns >= MCP_STABLE_UP_MS * NS_PER_MS)
        m->backoff_ms = MCP_BACKOFF_MIN_MS;
    mcp_status(m, false, why, NULL);
    if (!m->restart) {
        m->state = MCP_ST_DOWN;
        return;
    }
    m->state = MCP_ST_BACKOFF;
    log_info("mcp.restart_in", LOG_S("alias", m->srv.alias), LOG_I("ms", m->backoff_ms));
    actor_timer_start(m->restart_timer, m->backoff_ms, 0);
    m->backoff_ms = m->backoff_ms * 2 > MCP_BACKOFF_MAX_MS ? MCP_BACKOFF_MAX_MS : m->backoff_ms * 2;
}

static void mcp_on_init(mcp_t *m, const cJSON *result, const cJSON *error)
{
    if (result == NULL) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(error, "message");
        char why[200];
        snprintf(why, sizeof(why), "initialize refused: %s",
                 cJSON_IsString(msg) ? msg->valuestring : "error");
        mcp_on_transport_down(m, why);
        return;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(result, "protocolVersion");
    if (!cJSON_IsString(v) || !mcpproto_version_ok(v->valuestring)) {
        mcp_on_transport_down(m, "unsupported protocol version");
        return;
    }
    str_copy(m->version, v->valuestring, sizeof(m->version));
    mcp_send(m, mcpproto_notification("notifications/initialized", NULL), NULL);
    if (m->http)
        mcphttp_ready(m);
    bool resend = false;
    for (mcp_req_t *r = m->reqs; r; r = r->next)
        resend |= r->resend;
    if (resend) { /* requests the lost session never handled: send them again, same ids */
        for (mcp_req_t *r = m->reqs; r; r = r->next) {
            if (r->resend && r->text) {
                r->resend = false;
                mcphttp_send(m, r->text, strlen(r->text), r);
            }
        }
    }
    mcp_list_start(m);
}

void mcp_closed(mcp_t *m)
{
    if (m->state == MCP_ST_CLOSED)
        return;
    m->state = MCP_ST_CLOSED;
    if (m->owner)
        actor_send(m->owner, msg_new(MCP_MSG_CLOSED, sizeof(msg_t)));
    if (m->counted) {
        m->counted = false;
        ck_pr_dec_int(&mcp_live); /* pairs with the load in mcp_stop_all(): release not needed,
                                     the waiter only needs the count */
    }
    actor_stop_self(&m->actor);
}

static void mcp_shutdown(mcp_t *m)
{
    if (m->state == MCP_ST_CLOSING || m->state == MCP_ST_CLOSED)
        return;
    m->state = MCP_ST_CLOSING;
    mcp_fail_all(m, "shutting down");
    actor_timer_stop(m->ping_timer);
    actor_timer_stop(m->restart_timer);
    actor_timer_stop(m->relist_timer);
    if (m->publish)
        mcpreg_withdraw(&m->actor);
    ck_pr_store_int(&m->up, 0);
    log_info("mcp.stop", LOG_S("tenant", m->tenant), LOG_S("alias", m->srv.alias));
    if (m->proc_id) {
        net_proc_shutdown(m->proc_id, MCP_STOP_GRACE_MS); /* closed when its EXIT arrives */
        return;
    }
    if (m->http && mcphttp_close(m, true))
        return; /* closed when the DELETE is done (mcphttp_handle) */
    mcp_closed(m);
}

/* ---- What the server sends ------------------------------------------------------------------- */

static void mcp_on_response(mcp_t *m, const cJSON *msg)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    if (!cJSON_IsNumber(id))
        return; /* we only send integer ids */
    mcp_req_t *r = mcp_req_find(m, (int64_t)id->valuedouble);
    if (r == NULL) {
        log_debug("mcp.late_response", LOG_S("alias", m->srv.alias), LOG_I("id", id->valueint));
        return; /* timed out, cancelled or a replay: dropped */
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
    switch (r->kind) {
    case MCP_RQ_INIT:
        mcp_req_free(m, r);
        mcp_on_init(m, result, error);
        return;
    case MCP_RQ_LIST:
        mcp_req_free(m, r);
        mcp_on_list(m, result, error);
        return;
    case MCP_RQ_CALL:
        mcp_reply(r, mcpproto_call_result(r->cookie, result, error));
        log_debug("mcp.call_done", LOG_S("alias", m->srv.alias), LOG_S("tool", r->tool),
                  LOG_I("us", (clock_now_ns() - r->started_ns) / 1000));
        mcp_req_free(m, r);
        return;
    case MCP_RQ_PING:
        mcp_req_free(m, r);
        return;
    }
}

static void mcp_on_server_request(mcp_t *m, const cJSON *msg)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const char *method = cJSON_GetObjectItemCaseSensitive(msg, "method")->valuestring;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    cJSON *reply;
    if (strcmp(method, "ping") == 0)
        reply = mcpproto_result(id, cJSON_CreateObject());
    else if (strcmp(method, "elicitation/create") == 0 && m->elicit)
        reply = mcpproto_result(id, mcpproto_elicit_defaults(params));
    else
        reply = mcpproto_error(id, -32601, "Method not found");
    mcp_send(m, reply, NULL);
}

static void mcp_on_notification(mcp_t *m, const cJSON *msg)
{
    const char *method = cJSON_GetObjectItemCaseSensitive(msg, "method")->valuestring;
    if (strcmp(method, "notifications/tools/list_changed") == 0) {
        if (m->state == MCP_ST_READY)
            actor_timer_start(m->relist_timer, MCP_RELIST_DEBOUNCE_MS, 0);
        else if (m->listing_now)
            m->relist = true;
    } else if (strcmp(method, "notifications/message") == 0) {
        log_debug("mcp.server_log", LOG_S("alias", m->srv.alias));
    }
}

void mcp_on_message(mcp_t *m, cJSON *msg)
{
    if (cJSON_IsArray(msg)) { /* a 2025-03-26 batch */
        cJSON *e;
        while ((e = cJSON_DetachItemFromArray(msg, 0)) != NULL)
            mcp_on_message(m, e);
        cJSON_Delete(msg);
        return;
    }
    if (m->state == MCP_ST_CLOSED) {
        cJSON_Delete(msg);
        return;
    }
    switch (mcpproto_classify(msg)) {
    case MCPPROTO_RESPONSE:
        mcp_on_response(m, msg);
        break;
    case MCPPROTO_REQUEST:
        mcp_on_server_request(m, msg);
        break;
    case MCPPROTO_NOTIFICATION:
        mcp_on_notification(m, msg);
        break;
    default:
        break; /* e.g. the `{}` of a replayed priming event */
    }
    cJSON_Delete(msg);
}

/* ---- Calls from other actors ----------------------------------------------------------------- */

static const char *mcp_original_name(const mcp_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_tools; i++)
        if (strcmp(m->tools[i].exposed, name) == 0)
            return m->tools[i].original;
    return name; /* the server's own name (switchboard-mcp with a URL or a command) */
}

static void mcp_on_call(mcp_t *m, tool_call_msg_t *c)
{
    if (m->state != MCP_ST_READY) {
        char text[200];
        snprintf(text, sizeof(text), "MCP server %s is not available right now", m->srv.alias);
        tool_result_msg_t *res = mcpproto_tool_error(c->cookie, "mcp_unavailable", text);
        if (c->reply_to)
            actor_send(c->reply_to, &res->hdr);
        else
            msg_free(&res->hdr);
        return;
    }
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "name", mcp_original_name(m, c->name));
    cJSON_AddItemToObject(params, "arguments", c->args);
    c->args = NULL;
    uint32_t ms = c->timeout_ms ? c->timeout_ms : m->call_timeout_ms;
    mcp_req_t *r = mcp_request(m, MCP_RQ_CALL, "tools/call", params, ms);
    r->reply_to = c->reply_to; /* the message's reference moves to the request */
    c->reply_to = NULL;
    r->cookie = c->cookie;
    str_copy(r->tool, c->name, sizeof(r->tool));
}

static void mcp_on_cancel(mcp_t *m, const tool_cancel_msg_t *c)
{
    for (mcp_req_t *r = m->reqs; r; r = r->next) {
        if (r->kind == MCP_RQ_CALL && r->reply_to == c->reply_to && r->cookie == c->cookie) {
            mcp_send_cancelled(m, r->id, "cancelled by the caller");
            if (m->http)
                mcphttp_forget(m, r->id);
            mcp_req_free(m, r);
            return;
        }
    }
}

static void mcp_on_deadline(mcp_t *m, const timer_msg_t *t)
{
    mcp_req_t *r = t->timer->data;
    if (r->kind == MCP_RQ_CALL) {
        log_info("mcp.call_timeout", LOG_S("alias", m->srv.alias), LOG_S("tool", r->tool),
                 LOG_I("id", r->id));
        mcp_send_cancelled(m, r->id, "timeout");
        if (m->http)
            mcphttp_forget(m, r->id);
        tool_result_msg_t *res =
            mcpproto_tool_error(r->cookie, "timeout", "the MCP tool did not answer in time");
        res->timeout = true;
        mcp_reply(r, res);
        mcp_req_free(m, r);
        return;
    }
    const char *why = r->kind == MCP_RQ_INIT   ? "initialize timed out"
                      : r->kind == MCP_RQ_LIST ? "tools/list timed out"
                                               : "ping timed out";
    bool connecting = r->kind == MCP_RQ_INIT || m->state == MCP_ST_CONNECTING;
    mcp_req_free(m, r);
    if (connecting || strcmp(why, "ping timed out") == 0)
        mcp_on_transport_down(m, why);
    else
        m->listing_now = false;
}

/* ---- The actor ------------------------------------------------------------------------------- */

static void mcp_on_proc_line(mcp_t *m, const net_proc_line_msg_t *l)
{
    if (l->id != m->proc_id || l->len == 0)
        return;
    cJSON *msg = cJSON_ParseWithLength(l->data, l->len);
    if (msg == NULL) {
        log_debug("mcp.bad_line", LOG_S("alias", m->srv.alias), LOG_I("bytes", l->len));
        return;
    }
    mcp_on_message(m, msg);
}

static void mcp_on_proc_exit(mcp_t *m, const net_proc_exit_msg_t *e)
{
    if (e->id != m->proc_id)
        return; /* an earlier child we killed */
    m->proc_id = 0;
    if (m->state == MCP_ST_CLOSING) {
        mcp_closed(m);
        return;
    }
    char why[120];
    if (e->spawn_error)
        snprintf(why, sizeof(why), "cannot start %s: %s", m->srv.command,
                 strerror(-e->spawn_error));
    else if (e->term_signal)
        snprintf(why, sizeof(why), "the server was killed by signal %d", e->term_signal);
    else
        snprintf(why, sizeof(why), "the server exited with status %lld", (long long)e->exit_status);
    mcp_on_transport_down(m, why);
}

static void mcp_handle(actor_t *self, msg_t *msg)
{
    mcp_t *m = (mcp_t *)self;
    if (m->http && mcphttp_handle(m, msg))
        return; /* taken */
    switch (msg->type) {
    case NET_MSG_PROC_LINE:
        mcp_on_proc_line(m, (net_proc_line_msg_t *)msg);
        break;
    case NET_MSG_PROC_EXIT:
        mcp_on_proc_exit(m, (net_proc_exit_msg_t *)msg);
        break;
    case TOOL_MSG_CALL:
        mcp_on_call(m, (tool_call_msg_t *)msg);
        break;
    case TOOL_MSG_CANCEL:
        mcp_on_cancel(m, (tool_cancel_msg_t *)msg);
        break;
    case MCP_MSG_REQ_DEADLINE:
        mcp_on_deadline(m, (timer_msg_t *)msg);
        break;
    case MCP_MSG_RESTART:
        if (m->state == MCP_ST_BACKOFF)
            mcp_connect(m);
        break;
    case MCP_MSG_PING: {
        bool pinging = false;
        for (mcp_req_t *r = m->reqs; r; r = r->next)
            pinging |= r->kind == MCP_RQ_PING;
        if (m->state == MCP_ST_READY && !pinging)
            mcp_request(m, MCP_RQ_PING, "ping", NULL, MCP_PING_TIMEOUT_MS);
        break;
    }
    case MCP_MSG_RELIST:
        if (m->state == MCP_ST_READY)
            mcp_list_start(m);
        break;
    case MCP_MSG_SHUTDOWN:
        mcp_shutdown(m);
        break;
    default:
        break;
    }
    msg_free(msg);
}

static void mcp_srv_free(agent_mcp_server_t *s)
{
    free(s->alias);
    free(s->command);
    free(s->url);
    for (size_t i = 0; i < s->n_args; i++)
        free(s->args[i]);
    free(s->args);
    for (size_t i = 0; i < s->n_env; i++)
        free(s->env[i]);
    free(s->env);
    for (size_t i = 0; i < s->n_headers; i++)
        free(s->headers[i]);
    free(s->headers);
}

static void mcp_stop(actor_t *self)
{
    mcp_t *m = (mcp_t *)self;
    while (m->reqs)
        mcp_req_free(m, m->reqs);
    if (m->proc_id)
        net_proc_kill(m->proc_id, SIGKILL);
    if (m->http) {
        mcphttp_close(m, false);
        mcphttp_free(m);
    }
    actor_timer_free(m->restart_timer);
    actor_timer_free(m->ping_timer);
    actor_timer_free(m->relist_timer);
    cJSON_Delete(m->listing);
    mcp_tools_free(m);
    if (m->counted)
        ck_pr_dec_int(&mcp_live);
    if (m->owner)
        actor_unref(m->owner);
    mcp_srv_free(&m->srv);
    free(m->tenant);
}

static const actor_type_t mcp_type = {"mcp", mcp_handle, mcp_stop};

static char **mcp_dup_vec(char **v, size_t n)
{
    char **out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

actor_t *mcp_spawn(const mcp_opts_t *o)
{
    mcp_t *m = xcalloc(1, sizeof(*m));
    if (actor_spawn(&m->actor, &mcp_type, LANE_TOOLS) != 0) {
        free(m);
        return NULL;
    }
    const agent_mcp_server_t *s = o->server;
    m->srv.alias = xstrdup(s->alias ? s->alias : "mcp");
    m->tenant = xstrdup(o->tenant ? o->tenant : "");
    m->srv.command = s->command ? xstrdup(s->command) : NULL;
    m->srv.url = s->url ? xstrdup(s->url) : NULL;
    m->srv.args = mcp_dup_vec(s->args, s->n_args);
    m->srv.n_args = s->n_args;
    m->srv.env = mcp_dup_vec(s->env, s->n_env);
    m->srv.n_env = s->n_env;
    m->srv.headers = mcp_dup_vec(s->headers, s->n_headers);
    m->srv.n_headers = s->n_headers;
    m->key = mcp_server_key(s);
    if (m->tenant[0] && strcmp(m->tenant, TENANT_DEFAULT_ID) != 0)
        snprintf(m->log_name, sizeof(m->log_name), "mcp:%s/%s", m->tenant, m->srv.alias);
    else
        snprintf(m->log_name, sizeof(m->log_name), "mcp:%s", m->srv.alias);
    if (o->owner) {
        actor_ref(o->owner);
        m->owner = o->owner;
    }
    m->publish = o->publish;
    m->restart = o->restart;
    m->elicit = o->elicit_defaults;
    m->call_timeout_ms = o->call_timeout_ms ? o->call_timeout_ms : 30000;
    m->backoff_ms = MCP_BACKOFF_MIN_MS;
    m->restart_timer = actor_timer_new(&m->actor, MCP_MSG_RESTART, NULL);
    m->ping_timer = actor_timer_new(&m->actor, MCP_MSG_PING, NULL);
    m->relist_timer = actor_timer_new(&m->actor, MCP_MSG_RELIST, NULL);
    m->counted = true;
    ck_pr_inc_int(&mcp_live);
    m->state = MCP_ST_BACKOFF;
    /* The first connection is made on the actor's worker, like every later one; nothing of m
     * is touched here after this send. */
    actor_send(&m->actor, msg_new(MCP_MSG_RESTART, sizeof(msg_t)));
    return &m->actor;
}

int mcp_live_clients(void)
{
    return ck_pr_load_int(&mcp_live);
}
