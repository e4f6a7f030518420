/*
 * The supervisor pool (see supervisor.h): admits at most SWITCHBOARD_MAX_SUPERVISOR_RUNS runs at
 * once, keeps as many more waiting in FIFO order, answers "high demand" at once past that, and
 * forwards cancels to the run (or drops the waiting request). Thread: the pool's worker, except
 * the request builders at the end (any thread).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agents/supervisor/supervisor.h"
#include "agents/supervisor/supervisor_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/util.h"

/* ---- The pool -------------------------------------------------------------------------------- */

typedef struct slot {
    struct slot *next;
    supervisor_req_msg_t *req; /* queued: the request; running: NULL */
    actor_t *run;              /* running: the run (a reference) */
    actor_t *observer;         /* not a reference: compared only */
    uint64_t cookie;
} slot_t;

typedef struct pool {
    actor_t actor;
    actor_t *store; /* a reference, passed on to every run */
    slot_t *running;
    slot_t *queue_head;
    slot_t *queue_tail;
    int n_running;
    int n_queued;
} pool_t;

static void reply_now(supervisor_req_msg_t *q, const char *text, bool timeout)
{
    tool_result_msg_t *res = tool_result_new(q->cookie, true, text);
    res->timeout = timeout;
    str_copy(res->reason, supervisor_fallback_reason(text), sizeof(res->reason));
    actor_send(q->observer, &res->hdr);
}

static void pool_start_one(pool_t *p, supervisor_req_msg_t *q)
{
    actor_t *observer = q->observer;
    uint64_t cookie = q->cookie;
    if (q->deadline_ns && clock_now_ns() >= q->deadline_ns) {
        reply_now(q, SUP_SAY_TIMEOUT, true); /* waited in the queue past its deadline */
        msg_free(&q->hdr);
        return;
    }
    actor_t *run;
    if (q->tenant == NULL) { /* several businesses and none named: no brief, no tools to use */
        reply_now(q, SUP_SAY_TROUBLE, false);
        msg_free(&q->hdr);
        return;
    }
    if (!supervisor_run_spawn(q, &p->actor, p->store, &run)) {
        log_warn("supervisor.spawn_failed", LOG_S("parent", q->parent_call_id));
        reply_now(q, SUP_SAY_HIGH_DEMAND, false);
        msg_free(&q->hdr);
        return;
    }
    msg_free(&q->hdr);
    slot_t *s = xcalloc(1, sizeof(*s));
    s->run = run;
    s->observer = observer;
    s->cookie = cookie;
    s->next = p->running;
    p->running = s;
    p->n_running++;
}

static void pool_on_run(pool_t *p, supervisor_req_msg_t *q)
{
    int max = g_config->max_supervisor_runs;
    if (p->n_running < max) {
        pool_start_one(p, q);
        return;
    }
    if (p->n_queued >= max) {
        log_warn("supervisor.queue_full", LOG_I("running", p->n_running),
                 LOG_I("queued", p->n_queued));
        reply_now(q, SUP_SAY_HIGH_DEMAND, false);
        msg_free(&q->hdr);
        return;
    }
    slot_t *s = xcalloc(1, sizeof(*s));
    s->req = q;
    s->observer = q->observer;
    s->cookie = q->cookie;
    if (p->queue_tail)
        p->queue_tail->next = s;
    else
        p->queue_head = s;
    p->queue_tail = s;
    p->n_queued++;
}

static supervisor_req_msg_t *pool_dequeue(pool_t *p)
{
    slot_t *s = p->queue_head;
    if (s == NULL)
        return NULL;
    p->queue_head = s->next;
    if (p->queue_head == NULL)
        p->queue_tail = NULL;
    p->n_queued--;
    supervisor_req_msg_t *q = s->req;
    free(s);
    return q;
}

static void pool_on_done(pool_t *p, actor_t *run)
{
    for (slot_t **pp = &p->running; *pp; pp = &(*pp)->next) {
        if ((*pp)->run == run) {
            slot_t *s = *pp;
            *pp = s->next;
            actor_unref(s->run);
            free(s);
            p->n_running--;
            break;
        }
    }
    supervisor_req_msg_t *q;
    while (p->n_running < g_config->max_supervisor_runs && (q = pool_dequeue(p)) != NULL)
        pool_start_one(p, q);
}

static void pool_on_cancel(pool_t *p, const supervisor_cancel_msg_t *c)
{
    slot_t *prev = NULL;
    for (slot_t *s = p->queue_head; s; prev = s, s = s->next) {
        if (s->observer == c->observer && s->cookie == c->cookie) {
            if (prev)
                prev->next = s->next;
            else
                p->queue_head = s->next;
            if (p->queue_tail == s)
                p->queue_tail = prev;
            p->n_queued--;
            msg_free(&s->req->hdr);
            free(s);
            return;
        }
    }
    for (slot_t *s = p->running; s; s = s->next) {
        if (s->observer == c->observer && s->cookie == c->cookie) {
            actor_send(s->run, msg_new(SUP_MSG_CANCEL, sizeof(msg_t)));
            return;
        }
    }
}

static void pool_handle(actor_t *self, msg_t *m)
{
    pool_t *p = (pool_t *)self;
    switch (m->type) {
    case SUP_MSG_RUN:
        pool_on_run(p, (supervisor_req_msg_t *)m);
        return; /* taken */
    case SUP_MSG_RUN_DONE:
        pool_on_done(p, ((run_done_msg_t *)m)->run);
        break;
    case SUP_MSG_CANCEL:
        pool_on_cancel(p, (supervisor_cancel_msg_t *)m);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void pool_stop(actor_t *self)
{
    pool_t *p = (pool_t *)self;
    supervisor_req_msg_t *q;
    while ((q = pool_dequeue(p)) != NULL)
        msg_free(&q->hdr);
    while (p->running) {
        slot_t *s = p->running;
        p->running = s->next;
        actor_stop(s->run);
        actor_unref(s->run);
        free(s);
    }
    actor_unref(p->store);
}

static const actor_type_t pool_type = {"supervisors", pool_handle, pool_stop};

actor_t *supervisor_pool_spawn(actor_t *store)
{
    pool_t *p = xcalloc(1, sizeof(*p));
    if (actor_spawn(&p->actor, &pool_type, LANE_TOOLS) != 0) {
        free(p);
        return NULL;
    }
    actor_ref(store);
    p->store = store;
    return &p->actor;
}

static void req_free(msg_t *m)
{
    supervisor_req_msg_t *q = (supervisor_req_msg_t *)m;
    cJSON_Delete(q->history);
    cJSON_Delete(q->observer_tools);
    free(q->context);
    tenant_unref(q->tenant);
    if (q->observer)
        actor_unref(q->observer);
    msg_block_free(q);
}

static supervisor_req_msg_t *req_new(actor_t *observer, uint64_t cookie, const char *parent_call_id,
                                     const char *session_id, cJSON *history, char *context,
                                     uint64_t deadline_ns, tool_surface_t surface, tenant_t *tenant)
{
    supervisor_req_msg_t *q = MSG_NEW(supervisor_req_msg_t, SUP_MSG_RUN);
    q->hdr.free_fn = req_free;
    actor_ref(observer);
    q->observer = observer;
    q->cookie = cookie;
    str_copy(q->parent_call_id, parent_call_id ? parent_call_id : "", sizeof(q->parent_call_id));
    str_copy(q->session_id, session_id ? session_id : "", sizeof(q->session_id));
    q->history = history;
    q->context = context;
    q->deadline_ns = deadline_ns;
    q->surface = surface;
    tenant_ref(tenant);
    q->tenant = tenant ? tenant : tenants_default();
    return q;
}

void supervisor_run(actor_t *pool, actor_t *observer, uint64_t cookie, const char *parent_call_id,
                    const char *session_id, cJSON *history, char *context, uint64_t deadline_ns,
                    tool_surface_t surface, tenant_t *tenant)
{
    supervisor_req_msg_t *q = req_new(observer, cookie, parent_call_id, session_id, history,
                                      context, deadline_ns, surface, tenant);
    actor_send(pool, &q->hdr);
}

void supervisor_run_observed(actor_t *pool, actor_t *observer, uint64_t cookie, cJSON *history,
                             char *context, uint64_t deadline_ns, tool_surface_t surface,
                             cJSON *observer_tools, tenant_t *tenant)
{
    supervisor_req_msg_t *q =
        req_new(observer, cookie, NULL, NULL, history, context, deadline_ns, surface, tenant);
    q->observer_tools = observer_tools;
    actor_send(pool, &q->hdr);
}

static void cancel_free(msg_t *m)
{
    actor_unref(((supervisor_cancel_msg_t *)m)->observer);
    msg_block_free(m);
}

void supervisor_cancel(actor_t *pool, actor_t *observer, uint64_t cookie)
{
    supervisor_cancel_msg_t *c = MSG_NEW(supervisor_cancel_msg_t, SUP_MSG_CANCEL);
    c->hdr.free_fn = cancel_free;
    actor_ref(observer);
    c->observer = observer;
    c->cookie = cookie;
    actor_send(pool, &c->hdr);
}
