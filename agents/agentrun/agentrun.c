/*
 * agentrun: one actor per /ws/agent connection (SPEC 5.4, 14 "Agent runs"; seeds 003, 004).
 *
 * The connection first authenticates: an HS256 JWT with exp in {"type":"authenticate"} within
 * AGENT_AUTH_TIMEOUT_MS, whose `tenant` claim (else the default tenant) names the tenant whose
 * jwtSecret it must verify with and whose brief, tools and servers its runs use (SPEC 16).
 * Anything else first (a ping excepted, which net answers; bad JSON and refused events
 * included, which net reports as refused activity) fails it, and so does silence: the failure
 * is sent and the socket closed 1008 "unauthorized".
 *
 * Then each `start_agent` is a supervisor run on SURFACE_AGENT with every tool the surface
 * allows plus `ask_user`, a tool this actor runs itself (supervisor_run_observed()): the run
 * sends it TOOL_MSG_CALL, the client gets a `question`, and its `answer` becomes the tool's
 * result. Each finished nested call becomes a `step_update` (agentev.h), the run's answer the
 * `completion` (fallbacks as failures with the supervisor's reason code). `cancel_agent` and
 * the connection closing cancel runs. Every run is recorded (store_agent_run(): running, then
 * success or failed). `commands` lists the page commands a run sent: the agent surface has no
 * tool that sends one yet, so it is always [].
 * Thread: the actor's worker.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/agentrun/agentev.h"
#include "agents/agentrun/agentrun.h"
#include "agents/auth/auth.h"
#include "agents/supervisor/supervisor.h"
#include "agents/store/store.h"
#include "agents/tools/tools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/strmap.h"
#include "base/util.h"

#define AGENT_AUTH_TIMEOUT_MS  10000  /* SPEC 5.4 */
#define AGENT_RUN_DEADLINE_MS  600000 /* a run, the user's answers included */
#define AGENT_RUNS_LIVE_MAX    16     /* runs in flight per connection */
#define AGENT_RUN_IDS_MAX      1000   /* runIds remembered per connection, for duplicate_run_id */
#define AGENT_RUN_ID_MAX       128    /* bytes */
#define AGENT_TEXT_MAX_CHARS   8000   /* task and answer, code points */
#define AGENT_MSG_AUTH_TIMEOUT (MSG_TYPE_AGENTRUN_BASE + 1)
#define ASK_USER               "ask_user"
#define MS_PER_S               1000

static const char *const agent_types[] = {"authenticate", "start_agent", "answer", "cancel_agent",
                                          NULL};

/* A question of ask_user waiting for the client's answer. */
typedef struct question {
    struct question *next;
    actor_t *reply_to; /* the supervisor run that asked (a reference) */
    uint64_t cookie;   /* the call's, echoed in the result */
    uint64_t seq;      /* order of asking on the connection */
} question_t;

typedef struct arun {
    struct arun *next;
    char run_id[AGENT_RUN_ID_MAX + 1];
    char *task;
    uint64_t cookie; /* the supervisor request's */
    int64_t record_id;
    int64_t started_ms;
    int steps;             /* step_updates sent */
    question_t *questions; /* oldest first */
} arun_t;

typedef enum agent_state {
    AGENT_WAITING, /* for authenticate */
    AGENT_AUTHED,
    AGENT_CLOSING, /* refused or closed: nothing more is done */
} agent_state_t;

typedef struct agent {
    actor_t actor;
    actor_t *pool;  /* a reference: supervisor runs */
    actor_t *store; /* a reference: run records */
    conn_id_t conn;
    agent_state_t state;
    char user_id[JWTAUTH_SUB_MAX + 1]; /* the token's sub */
    tenant_t *tenant;                  /* the token's tenant (a reference) once authenticated */
    actor_timer_t *auth_timer;
    arun_t *runs; /* in flight */
    int n_runs;
    strmap_t seen; /* runIds started on this connection (values unused) */
    uint64_t next_cookie;
    uint64_t next_question;
} agent_t;

/* ---- Definitions --------------------------------------------------------------------------- */

/* The Chat Completions definition of ask_user. */
static cJSON *ask_user_defs(void)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(t, "function");
    cJSON_AddStringToObject(fn, "name", ASK_USER);
    cJSON_AddStringToObject(fn, "description",
                            "Ask the person who started this task a question and wait for the "
                            "answer, when the task cannot be done without it.");
    cJSON *params = cJSON_AddObjectToObject(fn, "parameters");
    cJSON_AddStringToObject(params, "type", "object");
    cJSON *q = cJSON_AddObjectToObject(cJSON_AddObjectToObject(params, "properties"), "question");
    cJSON_AddStringToObject(q, "type", "string");
    cJSON_AddStringToObject(q, "description", "The question, in one or two sentences.");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(params, "required"),
                         cJSON_CreateString("question"));
    cJSON_AddBoolToObject(params, "additionalProperties", 0);
    cJSON_AddItemToArray(arr, t);
    return arr;
}

/* ---- Helpers ------------------------------------------------------------------------------- */

static void send_ev(agent_t *a, cJSON *ev)
{
    net_ws_send_json(a->conn, ev);
    cJSON_Delete(ev);
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static arun_t *run_by_id(agent_t *a, const char *run_id)
{
    for (arun_t *r = a->runs; r; r = r->next)
        if (strcmp(r->run_id, run_id) == 0)
            return r;
    return NULL;
}

static arun_t *run_by_cookie(agent_t *a, uint64_t cookie)
{
    for (arun_t *r = a->runs; r; r = r->next)
        if (r->cookie == cookie)
            return r;
    return NULL;
}

static void answer_question(question_t *q, bool is_error, const char *text)
{
    actor_send(q->reply_to, &tool_result_new(q->cookie, is_error, text)->hdr);
    actor_unref(q->reply_to);
    free(q);
}

/* Unlinks r, records how it ended, and frees it (its open questions are dropped unanswered:
 * the run has ended or is being cancelled). */
static void run_end(agent_t *a, arun_t *r, const char *result, const char *error)
{
    for (arun_t **pp = &a->runs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            a->n_runs--;
            break;
        }
    }
    store_agent_run(a->store, r->record_id, r->run_id, a->user_id, a->tenant->id, r->task,
                    error ? "failed" : "success", error ? NULL : result, error, r->started_ms,
                    (int64_t)clock_wall_ms());
    log_info("agent.run_end", LOG_S("run", r->run_id), LOG_S("user", a->user_id),
             LOG_S("status", error ? "failed" : "success"), LOG_S("error", error ? error : ""),
             LOG_I("steps", r->steps));
    while (r->questions) {
        question_t *q = r->questions;
        r->questions = q->next;
        actor_unref(q->reply_to);
        free(q);
    }
    free(r->task);
    free(r);
}

/* ---- Authentication ------------------------------------------------------------------------ */

static void auth_fail(agent_t *a, const char *error)
{
    if (a->state != AGENT_WAITING)
        return;
    a->state = AGENT_CLOSING;
    actor_timer_stop(a->auth_timer);
    send_ev(a, agentev_authentication(error));
    net_ws_close(a->conn, WS_CLOSE_UNAUTHORIZED);
    log_info("agent.auth_failed", LOG_S("reason", error));
}

static void on_authenticate(agent_t *a, const cJSON *ev)
{
    const char *token = str_field(ev, "token");
    if (token == NULL) {
        auth_fail(a, "authenticate needs a string token");
        return;
    }
    int64_t now_s = (int64_t)(clock_wall_ms() / MS_PER_S);
    jwtauth_claims_t claims;
    jwtauth_status_t st = auth_jwt(token, now_s, &claims, &a->tenant);
    if (st != JWTAUTH_OK) {
        auth_fail(a, jwtauth_reason(st));
        return;
    }
    str_copy(a->user_id, claims.sub, sizeof(a->user_id));
    a->state = AGENT_AUTHED;
    actor_timer_stop(a->auth_timer);
    send_ev(a, agentev_authentication(NULL));
    log_info("agent.authenticated", LOG_S("user", a->user_id), LOG_S("tenant", a->tenant->id));
}

/* ---- Client events after authentication ---------------------------------------------------- */

static void on_start(agent_t *a, const cJSON *ev)
{
    const char *run_id = str_field(ev, "runId");
    const char *task = str_field(ev, "task");
    if (run_id == NULL || run_id[0] == '\0' || strlen(run_id) > AGENT_RUN_ID_MAX || task == NULL ||
        task[0] == '\0') {
        net_ws_protocol_error(a->conn, "invalid_event",
                              "start_agent takes a runId (1 to 128 bytes) and a non-empty task");
        return;
    }
    if (strmap_get(&a->seen, run_id)) {
        net_ws_send_error(a->conn, "duplicate_run_id", "this runId was already used here");
        return;
    }
    if (str_utf8_chars(task) > AGENT_TEXT_MAX_CHARS) {
        net_ws_send_error(a->conn, "text_too_long", "task is limited to 8000 characters");
        return;
    }
    if (a->n_runs >= AGENT_RUNS_LIVE_MAX || strmap_count(&a->seen) >= AGENT_RUN_IDS_MAX) {
        net_ws_send_error(a->conn, "rate_limited", "too many agent runs on this connection");
        return;
    }
    strmap_put(&a->seen, run_id, a);
    arun_t *r = xcalloc(1, sizeof(*r));
    str_copy(r->run_id, run_id, sizeof(r->run_id));
    r->task = xstrdup(task);
    r->cookie = ++a->next_cookie;
    randombytes_buf(&r->record_id, sizeof(r->record_id));
    r->record_id &= INT64_MAX;
    r->record_id |= 1; /* positive, never 0 */
    r->started_ms = (int64_t)clock_wall_ms();
    r->next = a->runs;
    a->runs = r;
    a->n_runs++;
    store_agent_run(a->store, r->record_id, r->run_id, a->user_id, a->tenant->id, task, "running",
                    NULL, NULL, r->started_ms, 0);
    log_info("agent.run_start", LOG_S("run", r->run_id), LOG_S("user", a->user_id),
             LOG_S("tenant", a->tenant->id));
    supervisor_run_observed(a->pool, &a->actor, r->cookie, NULL, xstrdup(task),
                            clock_now_ns() + AGENT_RUN_DEADLINE_MS * NS_PER_MS, SURFACE_AGENT,
                            ask_user_defs(), a->tenant);
}

static void on_cancel(agent_t *a, const cJSON *ev)
{
    const char *run_id = str_field(ev, "runId");
    arun_t *r = run_id ? run_by_id(a, run_id) : NULL;
    if (r == NULL) {
        net_ws_send_error(a->conn, "unknown_run", "no agent run with this runId is in progress");
        return;
    }
    supervisor_cancel(a->pool, &a->actor, r->cookie);
    send_ev(a, agentev_completion(r->run_id, NULL, "cancelled", NULL));
    run_end(a, r, NULL, "cancelled");
}

/* {"type":"answer","runId","answer"} or a bare {"answer"} (oldest open question of any run). */
static void on_answer(agent_t *a, const cJSON *ev)
{
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(ev, "answer");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(ev, "runId");
    if (!cJSON_IsString(ans) || (rid && !cJSON_IsString(rid))) {
        net_ws_protocol_error(a->conn, "invalid_event",
                              "answer takes a string answer and an optional string runId");
        return;
    }
    if (str_utf8_chars(ans->valuestring) > AGENT_TEXT_MAX_CHARS) {
        net_ws_send_error(a->conn, "text_too_long", "answer is limited to 8000 characters");
        return;
    }
    arun_t *r = NULL;
    if (rid) {
        r = run_by_id(a, rid->valuestring);
        if (r == NULL) {
            net_ws_send_error(a->conn, "unknown_run",
                              "no agent run with this runId is in progress");
            return;
        }
    } else {
        /* The oldest open question of all: each run's list is oldest first. */
        for (arun_t *x = a->runs; x; x = x->next)
            if (x->questions && (r == NULL || x->questions->seq < r->questions->seq))
                r = x;
    }
    if (r == NULL || r->questions == NULL) {
        net_ws_protocol_error(a->conn, "invalid_event", "there is no open question to answer");
        return;
    }
    question_t *q = r->questions;
    r->questions = q->next;
    answer_question(q, false, ans->valuestring);
}

static void on_text(agent_t *a, const net_ws_text_msg_t *m)
{
    if (a->state == AGENT_CLOSING)
        return;
    bool auth = strcmp(m->type, "authenticate") == 0;
    if (a->state == AGENT_WAITING) {
        if (auth)
            on_authenticate(a, m->json);
        else
            auth_fail(a, "the first message must be authenticate");
        return;
    }
    if (auth)
        net_ws_protocol_error(a->conn, "invalid_event", "already authenticated");
    else if (strcmp(m->type, "start_agent") == 0)
        on_start(a, m->json);
    else if (strcmp(m->type, "cancel_agent") == 0)
        on_cancel(a, m->json);
    else
        on_answer(a, m->json);
}

/* ---- The runs' messages -------------------------------------------------------------------- */

/* ask_user from one of our runs (the only tool we offer it). Takes c's reply_to. */
static void on_tool_call(agent_t *a, tool_call_msg_t *c)
{
    arun_t *r = run_by_cookie(a, c->parent_cookie);
    const char *question = str_field(c->args, "question");
    actor_t *reply_to = c->reply_to;
    c->reply_to = NULL;
    if (reply_to == NULL)
        return;
    question_t *q = xcalloc(1, sizeof(*q));
    q->reply_to = reply_to;
    q->cookie = c->cookie;
    q->seq = ++a->next_question;
    if (r == NULL || strcmp(c->name, ASK_USER) != 0 || question == NULL || question[0] == '\0') {
        answer_question(q, true,
                        r == NULL ? "{\"error\":{\"code\":\"cancelled\",\"message\":\"the run "
                                    "has ended\"}}"
                                  : "{\"error\":{\"code\":\"invalid_arguments\",\"message\":"
                                    "\"ask_user takes a non-empty string question\"}}");
        return;
    }
    question_t **tail = &r->questions;
    while (*tail)
        tail = &(*tail)->next;
    *tail = q;
    send_ev(a, agentev_question(r->run_id, question));
}

static void on_tool_event(agent_t *a, const tool_event_msg_t *e)
{
    arun_t *r = run_by_cookie(a, e->cookie);
    if (r == NULL || strcmp(e->status, "started") == 0)
        return;
    send_ev(a, agentev_step_update(r->run_id, ++r->steps, e));
}

static void on_result(agent_t *a, const tool_result_msg_t *res)
{
    arun_t *r = run_by_cookie(a, res->cookie);
    if (r == NULL)
        return; /* cancelled */
    const char *error = NULL;
    if (res->is_error)
        error = res->reason[0] ? res->reason : SUP_REASON_FAILED;
    const char *result = res->output ? res->output : "";
    send_ev(a, agentev_completion(r->run_id, result, error, NULL));
    run_end(a, r, result, error);
}

static void on_closed(agent_t *a)
{
    a->state = AGENT_CLOSING;
    while (a->runs) {
        arun_t *r = a->runs;
        supervisor_cancel(a->pool, &a->actor, r->cookie);
        run_end(a, r, NULL, "cancelled");
    }
    actor_stop_self(&a->actor);
}

static void agent_handle(actor_t *self, msg_t *m)
{
    agent_t *a = (agent_t *)self;
    switch (m->type) {
    case NET_MSG_WS_OPEN:
        a->conn = ((net_ws_open_msg_t *)m)->conn;
        actor_timer_start(a->auth_timer, AGENT_AUTH_TIMEOUT_MS, 0);
        break;
    case AGENT_MSG_AUTH_TIMEOUT:
        auth_fail(a, "timeout");
        break;
    case NET_MSG_WS_ACTIVITY:
        if (((net_ws_activity_msg_t *)m)->refused)
            auth_fail(a, "the first message must be authenticate");
        break;
    case NET_MSG_WS_TEXT:
        on_text(a, (net_ws_text_msg_t *)m);
        break;
    case TOOL_MSG_CALL:
        on_tool_call(a, (tool_call_msg_t *)m);
        break;
    case SUP_MSG_TOOL_EVENT:
        on_tool_event(a, (tool_event_msg_t *)m);
        break;
    case TOOL_MSG_RESULT:
        on_result(a, (tool_result_msg_t *)m);
        break;
    case NET_MSG_WS_CLOSED:
        on_closed(a);
        break;
    default:
        break;
    }
    msg_free(m);
}

static int keep_none(const char *key, void *value, void *arg)
{
    (void)key;
    (void)value;
    (void)arg;
    return 1;
}

static void agent_stop(actor_t *self)
{
    agent_t *a = (agent_t *)self;
    while (a->runs) {
        arun_t *r = a->runs;
        supervisor_cancel(a->pool, &a->actor, r->cookie);
        run_end(a, r, NULL, "cancelled");
    }
    actor_timer_free(a->auth_timer);
    strmap_filter(&a->seen, keep_none, NULL);
    strmap_destroy(&a->seen);
    actor_unref(a->pool);
    actor_unref(a->store);
    tenant_unref(a->tenant);
}

static const actor_type_t agent_type = {"agent run", agent_handle, agent_stop};

actor_t *agentrun_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why)
{
    (void)peer;
    (void)query;
    const agentrun_deps_t *deps = arg;
    agent_t *a = xcalloc(1, sizeof(*a));
    if (actor_spawn(&a->actor, &agent_type, LANE_TOOLS) != 0) {
        free(a);
        *why = WS_CLOSE_AT_CAPACITY;
        return NULL;
    }
    strmap_init(&a->seen);
    a->auth_timer = actor_timer_new(&a->actor, AGENT_MSG_AUTH_TIMEOUT, NULL);
    /* It sends to these until it stops. */
    actor_ref(deps->pool);
    a->pool = deps->pool;
    actor_ref(deps->store);
    a->store = deps->store;
    return &a->actor; /* the spawn reference becomes the connection's */
}

const char *const *agentrun_event_types(void)
{
    return agent_types;
}
