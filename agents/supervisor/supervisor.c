/*
 * supervisor: the run actors and the pool that admits them (see supervisor.h).
 *
 * A run: build the messages (system prompt, the conversation so far, the context) and the tools
 * its surface allows -> POST chat/completions -> tool calls? run them all (the store for the
 * built-in tools), each with the smaller of its own deadline and what is left of the run's, and
 * go round again (at most SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS rounds) : text? that is the
 * answer. HTTP failures are retried (408, 409, 429 rate limits, 5xx, no response) up to
 * SUP_RETRIES times with the server's retry-after or exponential backoff, inside the deadline;
 * what cannot be retried becomes a spoken fallback.
 * Thread: the run's (or the pool's) worker.
 */
#include "agents/supervisor/supervisor.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/store/store.h"
#include "agents/supervisor/prompt.h"
#include "agents/mcp/mcp.h"
#include "agents/supervisor/supervisor_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net.h"

#define SUP_RETRIES            2
#define SUP_BACKOFF_BASE_MS    500
#define SUP_BACKOFF_MAX_MS     8000
#define SUP_JITTER_PCT         25
#define SUP_MIN_REQUEST_MS     100 /* a request needs at least this much of the deadline left */
#define SUP_MAX_COMPLETION_TOK 800
#define SUP_MAX_BODY_BYTES     (4u * 1024 * 1024)
#define CHAT_PATH              "/chat/completions"

/* ---- Nested tool calls ----------------------------------------------------------------------- */

typedef struct nested {
    char id[CALL_ID_MAX + 1];
    char name[TOOL_NAME_MAX + 1];
    char via[80];
    char *args_text;
    char *output; /* the tool message content once done */
    uint64_t cookie;
    uint64_t started_ns;
    actor_timer_t *timer;
    actor_t *mcp; /* the MCP client running it (a reference), NULL for built-in tools */
    bool done;
} nested_t;

typedef struct run {
    actor_t actor;
    actor_t *pool;     /* a reference: told when the run is done */
    actor_t *store;    /* a reference: runs the built-in tools */
    actor_t *observer; /* a reference */
    uint64_t cookie;
    char parent_call_id[CALL_ID_MAX + 1];
    char session_id[65];
    tool_surface_t surface;
    cJSON *messages;
    cJSON *tools;          /* the Chat Completions tool definitions offered */
    cJSON *observer_tools; /* those of them the observer runs itself (may be NULL) */
    uint64_t deadline_ns;
    actor_timer_t *deadline;
    actor_timer_t *retry;
    int rounds;
    int retries;
    uint64_t fetch_id; /* the request in flight, 0 when none */
    nested_t *nested;  /* this round's calls */
    size_t n_nested;
    size_t n_open;
    uint64_t next_cookie;
    uint64_t started_ns;
    bool finished;
    tenant_t *tenant; /* a reference: whose brief, tools and servers this run uses */
} run_t;

static const agent_tool_globs_t *surface_globs(const agentcfg_t *ac, tool_surface_t s)
{
    switch (s) {
    case SURFACE_CHAT:
        return &ac->tools_chat;
    case SURFACE_AGENT:
        return &ac->tools_agent;
    case SURFACE_POSTCALL:
        return &ac->tools_postcall;
    default:
        return &ac->tools_voice;
    }
}

static const char *surface_name(tool_surface_t s)
{
    static const char *const names[] = {"voice", "chat", "agent", "postcall"};
    return (size_t)s < ARRAY_LEN(names) ? names[s] : "voice";
}

/* The tools this run may offer: the built-in ones and its tenant's MCP ones, by the allow-list. */
static cJSON *offered_tools(const tenant_t *tenant, tool_surface_t surface)
{
    cJSON *all = cJSON_CreateArray();
    booking_tool_defs(&tenant->cfg, all);
    mcpreg_snap_t *snap = mcpreg_acquire();
    for (size_t i = 0; i < snap->n; i++)
        if (mcpreg_serves(&snap->tools[i], tenant)) /* its own, as this snapshot defines them */
            cJSON_AddItemToArray(all, cJSON_Duplicate(snap->tools[i].def, true));
    mcpreg_release(snap);
    cJSON *out = cJSON_CreateArray();
    const agent_tool_globs_t *g = surface_globs(&tenant->cfg, surface);
    cJSON *t;
    while ((t = cJSON_DetachItemFromArray(all, 0)) != NULL) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (cJSON_IsString(name) && agentcfg_tool_allowed(g, name->valuestring))
            cJSON_AddItemToArray(out, t);
        else
            cJSON_Delete(t);
    }
    cJSON_Delete(all);
    return out;
}

/* Whether the tool definitions in tools include one named name. */
static bool has_tool(const cJSON *tools, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return true;
    }
    return false;
}

static bool offered(const run_t *r, const char *name)
{
    return has_tool(r->tools, name);
}

/* Whether name is one of the tools the observer runs itself. */
static bool observer_tool(const run_t *r, const char *name)
{
    return has_tool(r->observer_tools, name);
}

/* The outcome code of a fallback: each spoken fallback stands for exactly one outcome. */
const char *supervisor_fallback_reason(const char *say)
{
    static const struct {
        const char *say, *reason;
    } map[] = {
        {SUP_SAY_TOO_MANY_ROUNDS, SUP_REASON_ITERATION_LIMIT},
        {SUP_SAY_TIMEOUT, SUP_REASON_TIMEOUT},
        {SUP_SAY_HIGH_DEMAND, SUP_REASON_BUSY},
        {SUP_SAY_TECHNICAL, SUP_REASON_UNAVAILABLE},
    };
    for (size_t i = 0; i < ARRAY_LEN(map); i++)
        if (strcmp(say, map[i].say) == 0)
            return map[i].reason;
    return SUP_REASON_FAILED;
}

static void tool_event_free(msg_t *m)
{
    tool_event_msg_t *e = (tool_event_msg_t *)m;
    free(e->arguments);
    free(e->output);
    free(e->image_b64);
    msg_block_free(e);
}

static void emit(run_t *r, const nested_t *n, const char *status, const char *image_b64)
{
    tool_event_msg_t *e = MSG_NEW(tool_event_msg_t, SUP_MSG_TOOL_EVENT);
    e->hdr.free_fn = tool_event_free;
    e->cookie = r->cookie;
    str_copy(e->parent_call_id, r->parent_call_id, sizeof(e->parent_call_id));
    str_copy(e->call_id, n->id, sizeof(e->call_id));
    str_copy(e->name, n->name, sizeof(e->name));
    str_copy(e->status, status, sizeof(e->status));
    str_copy(e->via, n->via, sizeof(e->via));
    e->arguments = xstrdup(n->args_text ? n->args_text : "");
    e->output = n->done ? xstrdup(n->output ? n->output : "") : NULL;
    e->image_b64 = image_b64 ? xstrdup(image_b64) : NULL;
    e->duration_ms = n->done ? (int64_t)((clock_now_ns() - n->started_ns) / NS_PER_MS) : -1;
    actor_send(r->observer, &e->hdr);
}

static void request(run_t *r);
static void finish(run_t *r, const char *text, bool is_error, bool timeout);

static void nested_free(run_t *r, nested_t *n)
{
    if (n->mcp) {
        if (!n->done) /* the run ends (deadline, hang-up) with the call open */
            actor_send(n->mcp, &tool_cancel_new(&r->actor, n->cookie)->hdr);
        actor_unref(n->mcp);
    }
    actor_timer_free(n->timer);
    free(n->args_text);
    free(n->output);
}

static void round_free(run_t *r)
{
    for (size_t i = 0; i < r->n_nested; i++)
        nested_free(r, &r->nested[i]);
    free(r->nested);
    r->nested = NULL;
    r->n_nested = r->n_open = 0;
}

/* All of this round's calls have answered: give the model their outputs and go round again. */
static void round_done(run_t *r)
{
    for (size_t i = 0; i < r->n_nested; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "tool");
        cJSON_AddStringToObject(m, "tool_call_id", r->nested[i].id);
        cJSON_AddStringToObject(m, "content", r->nested[i].output ? r->nested[i].output : "");
        cJSON_AddItemToArray(r->messages, m);
    }
    round_free(r);
    request(r);
}

static void nested_end(run_t *r, nested_t *n, const char *status, const char *output,
                       const char *image_b64)
{
    n->done = true;
    if (n->timer)
        actor_timer_stop(n->timer);
    free(n->output);
    n->output = xstrdup(output);
    uint64_t ns = clock_now_ns() - n->started_ns;
    metric_tool_call_observe(n->name, status, ns);
    emit(r, n, status, image_b64);
    log_info("supervisor.tool", LOG_S("parent", r->parent_call_id), LOG_S("tool", n->name),
             LOG_S("status", status), LOG_I("ms", ns / NS_PER_MS));
    if (--r->n_open == 0)
        round_done(r);
}

/* A tool error as the model reads it (SPEC 14): {"error":{"code","message"}}. */
static void tool_error(char *buf, size_t n, const char *code, const char *message)
{
    snprintf(buf, n, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
}

/* The MCP client of an exposed MCP tool of the run's tenant: n->mcp (a reference) and n->via;
 * false when none. */
static bool mcp_route(const run_t *r, nested_t *n)
{
    mcpreg_snap_t *snap = mcpreg_acquire();
    const mcpreg_tool_t *t = mcpreg_find(snap, r->tenant, n->name);
    if (t) {
        actor_ref(t->server);
        n->mcp = t->server;
        snprintf(n->via, sizeof(n->via), "mcp:%s", t->alias);
    }
    mcpreg_release(snap);
    return t != NULL;
}

/* Starts one tool call of the model's; it may end at once (bad arguments, unknown tool). */
static void nested_start(run_t *r, nested_t *n, const cJSON *tc)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    str_copy(n->id, cJSON_IsString(id) ? id->valuestring : "", sizeof(n->id));
    str_copy(n->name, cJSON_IsString(name) ? name->valuestring : "", sizeof(n->name));
    n->args_text = xstrdup(cJSON_IsString(args) ? args->valuestring : "");
    n->started_ns = clock_now_ns();
    n->cookie = ++r->next_cookie;
    bool by_observer = observer_tool(r, n->name);
    str_copy(n->via, by_observer ? "client" : "builtin", sizeof(n->via));
    r->n_open++;
    emit(r, n, "started", NULL);
    char err[200];
    cJSON *parsed = cJSON_Parse(n->args_text[0] ? n->args_text : "{}");
    if (!cJSON_IsObject(parsed)) {
        cJSON_Delete(parsed);
        tool_error(err, sizeof(err), "invalid_arguments", "the arguments are not a JSON object");
        nested_end(r, n, "failed", err, NULL);
        return;
    }
    bool builtin = booking_is_tool(n->name);
    if (!offered(r, n->name) || !(by_observer || builtin || mcp_route(r, n))) {
        cJSON_Delete(parsed);
        tool_error(err, sizeof(err), "unknown_tool", "no such tool is available");
        nested_end(r, n, "failed", err, NULL);
        return;
    }
    actor_t *executor = by_observer ? r->observer : builtin ? r->store : n->mcp;
    /* Its deadline: its own, or what is left of the run's when that is sooner. The observer's
     * tools (a person answering a question) have the run's only. */
    uint64_t ms = by_observer ? UINT64_MAX
                              : (uint64_t)(builtin ? g_config->tool_timeout_ms
                                                   : g_config->mcp_call_timeout_ms);
    if (r->deadline_ns) {
        uint64_t now = clock_now_ns();
        uint64_t left = r->deadline_ns > now ? (r->deadline_ns - now) / NS_PER_MS : 0;
        if (left < ms)
            ms = left;
    }
    tool_call_msg_t *c = tool_call_new(&r->actor, n->cookie, n->name, parsed);
    str_copy(c->session_id, r->session_id, sizeof(c->session_id));
    tenant_ref(r->tenant);
    c->tenant = r->tenant;
    if (by_observer) {
        c->parent_cookie = r->cookie;
        str_copy(c->call_id, n->id, sizeof(c->call_id));
    } else {
        c->timeout_ms = (uint32_t)(ms ? ms : 1);
    }
    actor_send(executor, &c->hdr);
    if (by_observer && r->deadline_ns == 0)
        return;
    n->timer = actor_timer_new(&r->actor, SUP_MSG_TOOL_DEADLINE, n);
    actor_timer_start(n->timer, ms ? ms : 1, 0);
}

static nested_t *nested_by_cookie(run_t *r, uint64_t cookie)
{
    for (size_t i = 0; i < r->n_nested; i++)
        if (r->nested[i].cookie == cookie)
            return &r->nested[i];
    return NULL;
}

static void on_tool_result(run_t *r, const tool_result_msg_t *m)
{
    nested_t *n = nested_by_cookie(r, m->cookie);
    if (n == NULL || n->done)
        return; /* after its deadline: dropped */
    nested_end(r, n,
               m->timeout    ? "timeout"
               : m->is_error ? "failed"
                             : "completed",
               m->output, m->image_b64);
}

static void on_tool_deadline(run_t *r, const timer_msg_t *t)
{
    nested_t *n = t->timer->data;
    if (r->finished || n == NULL || n->done)
        return;
    char err[200];
    if (n->mcp) /* it sends notifications/cancelled; its late answer is dropped here */
        actor_send(n->mcp, &tool_cancel_new(&r->actor, n->cookie)->hdr);
    tool_error(err, sizeof(err), "timeout", "the tool did not answer in time");
    nested_end(r, n, "timeout", err, NULL);
}

/* ---- Chat Completions ------------------------------------------------------------------------ */

static void request(run_t *r)
{
    uint64_t now = clock_now_ns();
    uint64_t left_ms = UINT32_MAX;
    if (r->deadline_ns) {
        left_ms = r->deadline_ns > now ? (r->deadline_ns - now) / NS_PER_MS : 0;
        if (left_ms < SUP_MIN_REQUEST_MS) {
            finish(r, SUP_SAY_TIMEOUT, true, true);
            return;
        }
    }
    if (g_config->openai_api_key == NULL) {
        log_error("supervisor.critical", LOG_S("reason", "OPENAI_API_KEY is not set"));
        finish(r, SUP_SAY_TECHNICAL, true, false);
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "model", g_config->supervisor_model);
    cJSON_AddItemReferenceToObject(body, "messages", r->messages);
    if (cJSON_GetArraySize(r->tools) > 0) {
        cJSON_AddItemReferenceToObject(body, "tools", r->tools);
        cJSON_AddStringToObject(body, "tool_choice", "auto");
    }
    cJSON_AddNumberToObject(body, "max_completion_tokens", SUP_MAX_COMPLETION_TOK);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    r->fetch_id = supervisor_chat_fetch(text, (uint32_t)(left_ms < UINT32_MAX ? left_ms : 0),
                                        SUP_MAX_BODY_BYTES, &r->actor);
    free(text);
    if (r->fetch_id == 0) {
        log_error("supervisor.bad_url", LOG_S("url", g_config->openai_base_url));
        finish(r, SUP_SAY_TROUBLE, true, false);
    }
}

/* The model answered 200: run its tool calls, or take its text. */
static void on_completion(run_t *r, const char *body)
{
    cJSON *root = cJSON_Parse(body ? body : "");
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsObject(msg)) {
        log_warn("supervisor.bad_completion", LOG_S("parent", r->parent_call_id));
        finish(r, SUP_SAY_TROUBLE, true, false);
    } else if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0) {
        if (r->rounds >= g_config->supervisor_max_iterations) {
            log_warn("supervisor.iteration_limit", LOG_S("parent", r->parent_call_id),
                     LOG_I("rounds", r->rounds));
            finish(r, SUP_SAY_TOO_MANY_ROUNDS, true, false);
        } else {
            r->rounds++;
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddNullToObject(m, "content");
            cJSON_AddItemToObject(m, "tool_calls", cJSON_Duplicate(calls, 1));
            cJSON_AddItemToArray(r->messages, m);
            r->n_nested = (size_t)cJSON_GetArraySize(calls);
            r->nested = xcalloc(r->n_nested, sizeof(nested_t));
            /* Every call is counted open before any can end, so the round ends once. */
            r->n_open = 1;
            size_t i = 0;
            const cJSON *tc;
            cJSON_ArrayForEach(tc, calls) nested_start(r, &r->nested[i++], tc);
            if (--r->n_open == 0)
                round_done(r);
        }
    } else if (cJSON_IsString(content) && content->valuestring[0]) {
        finish(r, content->valuestring, false, false);
    } else {
        finish(r, SUP_SAY_TROUBLE, true, false);
    }
    cJSON_Delete(root);
}

/* The error's `code` from an OpenAI error body, or "". */
static const char *error_code(const cJSON *root)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(err, "type");
    if (cJSON_IsString(code))
        return code->valuestring;
    return cJSON_IsString(type) ? type->valuestring : "";
}

static uint64_t backoff_ms(const run_t *r, const net_fetch_done_msg_t *d)
{
    if (d->retry_after_ms >= 0)
        return (uint64_t)d->retry_after_ms;
    uint64_t ms = (uint64_t)SUP_BACKOFF_BASE_MS << r->retries;
    if (ms > SUP_BACKOFF_MAX_MS)
        ms = SUP_BACKOFF_MAX_MS;
    return ms + randombytes_uniform((uint32_t)(ms * SUP_JITTER_PCT / 100) + 1);
}

static void on_failure(run_t *r, const net_fetch_done_msg_t *d)
{
    cJSON *root = cJSON_Parse(d->body ? d->body : "");
    const char *code = error_code(root);
    const char *say = SUP_SAY_TROUBLE;
    bool retry = false, critical = false;
    if (d->status == 429 && strcmp(code, "insufficient_quota") == 0) {
        say = SUP_SAY_TECHNICAL;
        critical = true;
    } else if (d->status == 401 || d->status == 403) {
        say = SUP_SAY_TECHNICAL;
        critical = true;
    } else if (d->status == 429) {
        say = SUP_SAY_HIGH_DEMAND;
        retry = true;
    } else if (d->status == 0 || d->status == 408 || d->status == 409 || d->status >= 500) {
        retry = true;
    }
    if (d->should_retry == 0)
        retry = false;
    else if (d->should_retry == 1 && !critical)
        retry = true;
    if (critical)
        log_error("supervisor.critical", LOG_I("status", d->status), LOG_S("code", code),
                  LOG_S("request_id", d->request_id));
    else
        log_warn("supervisor.http_error", LOG_I("status", d->status), LOG_S("code", code),
                 LOG_S("error", d->error), LOG_S("request_id", d->request_id),
                 LOG_I("retries", r->retries));
    if (retry && r->retries < SUP_RETRIES) {
        uint64_t ms = backoff_ms(r, d);
        uint64_t due = clock_now_ns() + ms * NS_PER_MS;
        if (r->deadline_ns == 0 || due + SUP_MIN_REQUEST_MS * NS_PER_MS < r->deadline_ns) {
            r->retries++;
            actor_timer_start(r->retry, ms ? ms : 1, 0);
            cJSON_Delete(root);
            return;
        }
    }
    if (d->status == 0 && strcmp(d->error, "timeout") == 0)
        finish(r, SUP_SAY_TIMEOUT, true, true);
    else
        finish(r, say, true, false);
    cJSON_Delete(root);
}

static void on_fetch_done(run_t *r, const net_fetch_done_msg_t *d)
{
    if (d->id != r->fetch_id || r->finished)
        return;
    r->fetch_id = 0;
    if (d->status == 200)
        on_completion(r, d->body);
    else
        on_failure(r, d);
}

/* ---- The run actor --------------------------------------------------------------------------- */

/* Answers the observer and tells the pool; the run stops after this message. */
static void finish(run_t *r, const char *text, bool is_error, bool timeout)
{
    if (r->finished)
        return;
    r->finished = true;
    tool_result_msg_t *res = tool_result_new(r->cookie, is_error, text);
    res->timeout = timeout;
    if (is_error)
        str_copy(res->reason, supervisor_fallback_reason(text), sizeof(res->reason));
    actor_send(r->observer, &res->hdr);
    log_info("supervisor.done", LOG_S("parent", r->parent_call_id),
             LOG_S("surface", surface_name(r->surface)), LOG_I("rounds", r->rounds),
             LOG_I("error", is_error), LOG_I("ms", (clock_now_ns() - r->started_ns) / NS_PER_MS));
    run_done_msg_t *d = MSG_NEW(run_done_msg_t, SUP_MSG_RUN_DONE);
    d->run = &r->actor;
    actor_send(r->pool, &d->hdr);
    actor_stop_self(&r->actor);
}

/* Stops without an answer: the observer has given up. */
static void abandon(run_t *r)
{
    if (r->finished)
        return;
    r->finished = true;
    if (r->fetch_id)
        net_fetch_cancel(r->fetch_id);
    run_done_msg_t *d = MSG_NEW(run_done_msg_t, SUP_MSG_RUN_DONE);
    d->run = &r->actor;
    actor_send(r->pool, &d->hdr);
    actor_stop_self(&r->actor);
}

static void run_handle(actor_t *self, msg_t *m)
{
    run_t *r = (run_t *)self;
    switch (m->type) {
    case SUP_MSG_START:
        if (r->deadline_ns)
            actor_timer_start(r->deadline,
                              r->deadline_ns > clock_now_ns()
                                  ? (r->deadline_ns - clock_now_ns()) / NS_PER_MS + 1
                                  : 1,
                              0);
        request(r);
        break;
    case NET_MSG_FETCH_DONE:
        on_fetch_done(r, (net_fetch_done_msg_t *)m);
        break;
    case SUP_MSG_RETRY:
        if (!r->finished)
            request(r);
        break;
    case TOOL_MSG_RESULT:
        if (!r->finished)
            on_tool_result(r, (tool_result_msg_t *)m);
        break;
    case SUP_MSG_TOOL_DEADLINE:
        on_tool_deadline(r, (timer_msg_t *)m);
        break;
    case SUP_MSG_DEADLINE:
        /* The observer times the call itself; this only frees what the run holds. */
        if (r->fetch_id)
            net_fetch_cancel(r->fetch_id);
        r->fetch_id = 0;
        finish(r, SUP_SAY_TIMEOUT, true, true);
        break;
    case SUP_MSG_CANCEL:
        abandon(r);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void run_stop(actor_t *self)
{
    run_t *r = (run_t *)self;
    round_free(r);
    actor_timer_free(r->deadline);
    actor_timer_free(r->retry);
    cJSON_Delete(r->messages);
    cJSON_Delete(r->tools);
    cJSON_Delete(r->observer_tools);
    actor_unref(r->observer);
    actor_unref(r->pool);
    actor_unref(r->store);
    tenant_unref(r->tenant);
}

static const actor_type_t run_type = {"supervisor", run_handle, run_stop};

static cJSON *build_messages(supervisor_req_msg_t *q)
{
    cJSON *msgs = cJSON_CreateArray();
    cJSON *sys = cJSON_CreateObject();
    cJSON_AddStringToObject(sys, "role", "system");
    char *prompt = q->surface == SURFACE_POSTCALL
                       ? prompt_postcall(&q->tenant->cfg)
                       : prompt_supervisor(&q->tenant->cfg, (int64_t)clock_wall_ms());
    cJSON_AddStringToObject(sys, "content", prompt);
    free(prompt);
    cJSON_AddItemToArray(msgs, sys);
    if (cJSON_IsArray(q->history)) {
        cJSON *h;
        while ((h = cJSON_DetachItemFromArray(q->history, 0)) != NULL)
            cJSON_AddItemToArray(msgs, h);
    }
    cJSON *user = cJSON_CreateObject();
    cJSON_AddStringToObject(user, "role", "user");
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, q->surface == SURFACE_VOICE
                      ? "The receptionist needs your answer. Relevant context from the caller's "
                        "last message: "
                      : "");
    sbuf_puts(&b, q->context ? q->context : "");
    cJSON_AddStringToObject(user, "content", b.data ? b.data : "");
    sbuf_destroy(&b);
    cJSON_AddItemToArray(msgs, user);
    return msgs;
}

bool supervisor_run_spawn(supervisor_req_msg_t *q, actor_t *pool, actor_t *store, actor_t **out)
{
    run_t *r = xcalloc(1, sizeof(*r));
    if (actor_spawn(&r->actor, &run_type, LANE_TOOLS) != 0) {
        free(r);
        return false;
    }
    r->observer = q->observer;
    q->observer = NULL;
    r->cookie = q->cookie;
    str_copy(r->parent_call_id, q->parent_call_id, sizeof(r->parent_call_id));
    str_copy(r->session_id, q->session_id, sizeof(r->session_id));
    r->surface = q->surface;
    r->deadline_ns = q->deadline_ns;
    r->messages = build_messages(q);
    r->tenant = q->tenant; /* taken from the request */
    q->tenant = NULL;
    r->tools = offered_tools(r->tenant, q->surface);
    r->observer_tools = q->observer_tools;
    q->observer_tools = NULL;
    const cJSON *ot;
    cJSON_ArrayForEach(ot, r->observer_tools)
    {
        cJSON_AddItemToArray(r->tools, cJSON_Duplicate(ot, 1));
    }
    r->deadline = actor_timer_new(&r->actor, SUP_MSG_DEADLINE, NULL);
    r->retry = actor_timer_new(&r->actor, SUP_MSG_RETRY, NULL);
    r->started_ns = clock_now_ns();
    actor_ref(pool);
    r->pool = pool;
    actor_ref(store);
    r->store = store;
    actor_send(&r->actor, msg_new(SUP_MSG_START, sizeof(msg_t)));
    *out = &r->actor;
    return true;
}

cJSON *tool_event_json(const tool_event_msg_t *e)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "tool.call");
    cJSON_AddStringToObject(ev, "call_id", e->call_id);
    if (e->parent_call_id[0])
        cJSON_AddStringToObject(ev, "parent_call_id", e->parent_call_id);
    cJSON_AddStringToObject(ev, "name", e->name);
    cJSON_AddItemToObject(ev, "arguments", tool_args_json(e->arguments));
    cJSON_AddStringToObject(ev, "status", e->status);
    if (e->output)
        cJSON_AddStringToObject(ev, "output", e->output);
    if (e->duration_ms >= 0)
        cJSON_AddNumberToObject(ev, "duration_ms", (double)e->duration_ms);
    cJSON_AddStringToObject(ev, "via", e->via);
    return ev;
}

uint64_t supervisor_chat_fetch(const char *body, uint32_t timeout_ms, size_t max_body,
                               actor_t *reply_to)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", g_config->openai_base_url, CHAT_PATH);
    net_fetch_req_t req = {.method = "POST",
                           .url = url,
                           .bearer = g_config->openai_api_key,
                           .body = body,
                           .body_len = strlen(body),
                           .timeout_ms = timeout_ms,
                           .max_body = max_body};
    return net_fetch(&req, reply_to);
}
