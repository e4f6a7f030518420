/*
 * store: the single writer of the records (SPEC 3, 9). One actor on LANE_TOOLS owns the
 * connection, to a SQLite file or (SWITCHBOARD_DATABASE_URL, SPEC 13) to PostgreSQL, whose
 * operations are in storepg.c (each one statement, answered later; this file routes to them):
 * it writes the call records that sessions, upstreams and tool runners send with the store_*()
 * functions (which never wait), runs the built-in booking tools, answers GET/DELETE
 * /api/calls…, sends the post-call webhook, and expires old records daily.
 *
 * Batching: the first record of a burst opens a transaction and queues a flush message to the
 * store itself; it arrives after everything already queued, so one commit covers the burst.
 * Tool calls and deletes commit the batch first (a booking needs BEGIN IMMEDIATE of its own).
 *
 * Lifetime (store.h): store_open() runs on main before the network starts, so start-up can fail
 * on a bad path. Every actor that writes records holds its own reference to the store. The stop
 * behaviour, which closes the file, runs when the last reference goes: the scheduler holds one
 * while messages are queued, so by then every record sent has been written. store_close() first
 * sends STORE_MSG_CLOSING (cancel the timers and webhooks, which hold references of their own),
 * then gives back the opener's reference and waits for the stop behaviour.
 */
#include <errno.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/timer.h"
#include "agents/auth/auth.h"
#include "agents/store/store.h"
#include "agents/store/pgschema.h"
#include "agents/store/store_int.h"
#include "agents/tools/tools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/strmap.h"
#include "base/util.h"
#include "net/net.h"

#define CALLS_PATH           "/api/calls"
#define ANALYTICS_PATH       "/api/analytics"
#define POSTCALL_SUFFIX      "/postcall"
#define MS_PER_S             1000
#define MS_PER_DAY           (86400LL * MS_PER_S)
#define RETENTION_EVERY_MS   MS_PER_DAY
#define WEBHOOK_TIMEOUT_MS   10000
#define WEBHOOK_MAX_RESPONSE (64 * 1024)
#define STORE_CLOSE_WAIT_MS  5000
#define HTTP_2XX_FIRST       200
#define HTTP_2XX_LAST        299
#define STORE_KEY_USER       "chat_user" /* server_keys.name of store_keys_t.user_key */

/* The store's own messages, at the top of its range (store.h has the public ones). */
#define STORE_MSG_FLUSH         (MSG_TYPE_STORE_BASE + 0xF0u) /* commit the batch */
#define STORE_MSG_WEBHOOK_RETRY (MSG_TYPE_STORE_BASE + 0xF1u) /* timers */
#define STORE_MSG_RETENTION     (MSG_TYPE_STORE_BASE + 0xF2u)
#define STORE_MSG_CLOSING       (MSG_TYPE_STORE_BASE + 0xF3u) /* store_close(): drop timers */
#define STORE_MSG_SYNC          (MSG_TYPE_STORE_BASE + 0xF4u) /* store_sync() */
#define STORE_MSG_NET_UP        (MSG_TYPE_STORE_BASE + 0xF5u) /* store_net_started() */

static sem_t closed_sem; /* posted by the stop behaviour, awaited by store_close() */
static sem_t synced_sem; /* posted by STORE_MSG_SYNC, awaited by store_sync() */
static char *pg_setup;   /* the migrations given to the PostgreSQL connection (until close) */
static void (*on_key)(const store_keys_t *keys); /* store_on_server_key() */


/* ---- Post-call webhook ---------------------------------------------------------------------- */

static void job_free(store_t *s, webhook_job_t *j)
{
    for (webhook_job_t **pp = &s->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    actor_timer_free(j->timer);
    free(j->call_id);
    free(j->body);
    free(j);
}

/* Sends the next attempt of j, signed now. Thread: owner. */
static void webhook_attempt(store_t *s, webhook_job_t *j)
{
    const char *secret = g_config->api_secret;
    if (secret == NULL && !s->warned_unsigned) {
        log_warn("webhook.unsigned", LOG_S("reason", "SWITCHBOARD_API_SECRET is not set; "
                                                     "signing with an empty key"));
        s->warned_unsigned = true;
    }
    char sig[WEBHOOK_SIG_VALUE_MAX], sig_header[WEBHOOK_SIG_VALUE_MAX + 32];
    webhook_signature(secret, (int64_t)(clock_wall_ms() / MS_PER_S), j->body, j->len, sig);
    snprintf(sig_header, sizeof(sig_header), "%s: %s", WEBHOOK_SIG_HEADER, sig);
    net_fetch_req_t req = {.method = "POST",
                           .url = g_config->postcall_webhook_url,
                           .headers = {"Content-Type: application/json", sig_header},
                           .body = j->body,
                           .body_len = j->len,
                           .timeout_ms = WEBHOOK_TIMEOUT_MS,
                           .max_body = WEBHOOK_MAX_RESPONSE};
    j->attempts++;
    j->fetch_id = net_fetch(&req, &s->actor);
    if (j->fetch_id == 0) {
        log_error("webhook.failed", LOG_S("call", j->call_id), LOG_S("reason", "not sent"));
        job_free(s, j);
    }
}

void store_webhook_start(store_t *s, const char *call_id, char *body)
{
    if (s->closing) {
        log_warn("webhook.abandoned", LOG_S("call", call_id), LOG_S("reason", "shutting down"));
        free(body);
        return;
    }
    if (body == NULL)
        return;
    webhook_job_t *j = xcalloc(1, sizeof(*j));
    j->call_id = xstrdup(call_id);
    j->body = body;
    j->len = strlen(body);
    j->timer = actor_timer_new(&s->actor, STORE_MSG_WEBHOOK_RETRY, j);
    j->next = s->jobs;
    s->jobs = j;
    webhook_attempt(s, j);
}

static void webhook_done(store_t *s, const net_fetch_done_msg_t *d)
{
    webhook_job_t *j = s->jobs;
    while (j && j->fetch_id != d->id)
        j = j->next;
    if (j == NULL)
        return;
    j->fetch_id = 0;
    if (d->status >= HTTP_2XX_FIRST && d->status <= HTTP_2XX_LAST) {
        log_info("webhook.sent", LOG_S("call", j->call_id), LOG_I("status", d->status),
                 LOG_I("attempts", j->attempts));
        job_free(s, j);
        return;
    }
    int64_t delay = webhook_next_delay_ms(d->status, j->attempts);
    log_warn("webhook.attempt", LOG_S("call", j->call_id), LOG_I("status", d->status),
             LOG_S("error", d->error), LOG_I("attempt", j->attempts), LOG_I("retry_in_ms", delay));
    if (delay < 0)
        job_free(s, j);
    else
        actor_timer_start(j->timer, (uint64_t)delay, 0);
}

/* ---- Post-call jobs (SPEC 15) -----------------------------------------------------------------
 */

static void batch(store_t *s);

/* The SQLite store's webhook of call_id, with the call's JSON read now. */
static void webhook_start(store_t *s, const char *call_id)
{
    store_webhook_start(s, call_id, storedb_call_json(s->db, call_id, NULL));
}

void store_kick_runner(store_t *s)
{
    if (s->runner && !s->closing)
        actor_send(s->runner, msg_new(STORE_MSG_PC_KICK, sizeof(msg_t)));
}

/* Queues call_id's job (of tenant scope, NULL: any). Returns 1, 0 when there is no such call,
 * or -EIO. */
static int postcall_requeue(store_t *s, const char *call_id, const char *scope)
{
    char tenant_id[JOBSDB_TENANT_MAX + 1];
    int turns = 0;
    int rc = jobsdb_call_info(storedb_handle(s->db), call_id, scope, tenant_id, &turns);
    if (rc <= 0)
        return rc;
    batch(s);
    if (jobsdb_queue(storedb_handle(s->db), call_id, tenant_id, store_tenant_has_crm(tenant_id),
                     (int64_t)clock_wall_ms()) != 0)
        return -EIO;
    store_kick_runner(s);
    return 1;
}

/*
 * A call ended: it gets a job when its tenant's postcall is enabled and the caller spoke at
 * least postcall.minUserTurns times; the webhook then waits for the summary. Otherwise the
 * webhook goes now.
 */
bool store_tenant_has_crm(const char *tenant_id)
{
    tenant_t *t = tenants_get(tenant_id);
    bool crm = t && t->cfg.postcall.crm;
    tenant_unref(t);
    return crm;
}

bool store_postcall_wanted(const char *tenant_id, int user_turns, bool *crm)
{
    tenant_t *t = tenants_get(tenant_id);
    const agent_postcall_t *pc = t ? &t->cfg.postcall : NULL;
    bool wanted = pc && pc->enabled && user_turns >= pc->min_user_turns;
    *crm = wanted && pc->crm != NULL;
    tenant_unref(t);
    return wanted;
}

static void postcall_after_end(store_t *s, const char *call_id)
{
    char tenant_id[JOBSDB_TENANT_MAX + 1];
    int turns = 0;
    bool queued = false, crm;
    if (jobsdb_call_info(storedb_handle(s->db), call_id, NULL, tenant_id, &turns) == 1 &&
        store_postcall_wanted(tenant_id, turns, &crm))
        queued = jobsdb_queue(storedb_handle(s->db), call_id, tenant_id, crm,
                              (int64_t)clock_wall_ms()) == 0;
    if (queued)
        store_kick_runner(s);
    else if (g_config->postcall_webhook_url)
        webhook_start(s, call_id);
}

static void postcall_claim(store_t *s, store_pc_msg_t *p)
{
    int64_t next = -1;
    sqlite3 *db = storedb_handle(s->db);
    cJSON *jobs = s->closing ? cJSON_CreateArray()
                             : jobsdb_claim(db, (int64_t)clock_wall_ms(), p->max, &next);
    cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        const char *id = cJSON_GetObjectItemCaseSensitive(j, "callId")->valuestring;
        /* Bounded: a call with hundreds of tool calls is claimed with its newest few. */
        cJSON *call = storedb_call_tail(s->db, id, STORE_POSTCALL_TOOL_CALLS);
        cJSON_AddItemToObject(j, "call", call ? call : cJSON_CreateNull());
    }
    actor_send(p->actor, &store_pc_jobs_new(jobs, next)->hdr);
}

/* The summary step ended, or the attempt did. */
static void postcall_report(store_t *s, store_pc_msg_t *p)
{
    sqlite3 *db = storedb_handle(s->db);
    int64_t now = (int64_t)clock_wall_ms();
    bool webhook = false;
    batch(s);
    if (p->hdr.type == STORE_MSG_PC_SUMMARY) {
        if (p->summary) {
            jobsdb_summary(db, p->call_id, p->summary, p->outcome);
            jobsdb_step(db, p->call_id, "summary", "done", NULL, now);
            webhook = true;
        } else {
            jobsdb_step(db, p->call_id, "summary", "failed", p->error, now);
        }
    } else {
        if (p->crm)
            jobsdb_step(db, p->call_id, "crm", p->crm, NULL, now);
        jobsdb_end_t e;
        if (jobsdb_end(db, p->call_id, p->error, now, g_config->postcall_retry_ms, &e) == 0) {
            log_info("postcall.attempt", LOG_S("call", p->call_id), LOG_I("done", e.done),
                     LOG_I("final", e.final), LOG_I("retry_in_ms", e.retry_in_ms),
                     LOG_S("error", e.done ? NULL : p->error));
            webhook = e.final;
        }
    }
    /* The webhook goes once, after the summary step has ended for good (SPEC 15). */
    if (webhook && g_config->postcall_webhook_url && jobsdb_webhook_take(db, p->call_id) == 1)
        webhook_start(s, p->call_id);
}

static void postcall_msg(store_t *s, store_pc_msg_t *p)
{
    switch (p->hdr.type) {
    case STORE_MSG_PC_ATTACH:
        if (s->runner == NULL && !s->closing) {
            s->runner = p->actor; /* the message's reference becomes the store's */
            p->actor = NULL;
        }
        break;
    case STORE_MSG_PC_CLAIM:
        if (s->pg && !s->closing)
            storepg_postcall(s, p);
        else if (s->pg)
            actor_send(p->actor, &store_pc_jobs_new(cJSON_CreateArray(), -1)->hdr);
        else
            postcall_claim(s, p);
        break;
    default:
        if (s->pg)
            storepg_postcall(s, p);
        else
            postcall_report(s, p);
        break;
    }
}

/* ---- GET /api/calls, GET and DELETE /api/calls/{id} ----------------------------------------- */

static void respond_take(conn_id_t c, char *body)
{
    net_http_respond(c, 200, body, strlen(body), NULL);
    free(body);
}

static void calls_scoped(store_t *s, const net_http_msg_t *req, const char *rest,
                         const tenant_t *own);

static void calls_http(store_t *s, const net_http_msg_t *req)
{
    bool analytics = strcmp(req->path, ANALYTICS_PATH) == 0;
    const char *rest = analytics ? "" : req->path + strlen(CALLS_PATH);
    if (!analytics && strncmp(req->path, CALLS_PATH, strlen(CALLS_PATH)) != 0)
        rest = "?"; /* not ours */
    if (*rest != '\0' && *rest != '/') {
        net_http_error(req->conn, 404, "not_found", "no such endpoint");
        return;
    }
    tenant_t *own = NULL;
    if (!auth_api_scope(req, &own)) {
        net_http_error(req->conn, 401, "unauthorized", "a valid API secret is required");
        return;
    }
    if (analytics) {
        char filter[TENANT_ID_MAX + 1];
        const char *scope = own ? own->id : NULL;
        if (own == NULL && net_query_get(req->query, "tenant", filter, sizeof(filter)) > 0)
            scope = filter;
        if (req->method != NET_GET)
            net_http_error(req->conn, 405, "method_not_allowed", "use GET on /api/analytics");
        else
            callsapi_analytics(s, req, scope);
    } else {
        calls_scoped(s, req, rest, own);
    }
    tenant_unref(own);
}

/*
 * The rest of calls_http() for a caller who sees tenant own's calls (NULL: the operator, who
 * sees every tenant's and may filter with ?tenant=). Another tenant's call is 404, as if it did
 * not exist (SPEC 16).
 */
static void calls_scoped(store_t *s, const net_http_msg_t *req, const char *rest,
                         const tenant_t *own)
{
    char filter[TENANT_ID_MAX + 1];
    const char *scope = own ? own->id : NULL;
    if (own == NULL && net_query_get(req->query, "tenant", filter, sizeof(filter)) > 0)
        scope = filter;
    const char *id = *rest == '/' ? rest + 1 : rest;
    if (*id == '\0') {
        if (req->method != NET_GET) {
            net_http_error(req->conn, 405, "method_not_allowed", "use GET on /api/calls");
            return;
        }
        callsapi_list(s, req, scope);
        return;
    }
    size_t id_len = strlen(id), suffix_len = strlen(POSTCALL_SUFFIX);
    if (id_len > suffix_len && strcmp(id + id_len - suffix_len, POSTCALL_SUFFIX) == 0) {
        if (req->method != NET_POST) {
            net_http_error(req->conn, 405, "method_not_allowed", "use POST to run it again");
            return;
        }
        char *call_id = xstrndup(id, id_len - suffix_len);
        if (s->pg && strchr(call_id, '/') == NULL) {
            storepg_requeue(s, req->conn, call_id, own ? own->id : NULL);
            free(call_id);
            return;
        }
        int rc = strchr(call_id, '/') ? 0 : postcall_requeue(s, call_id, own ? own->id : NULL);
        free(call_id);
        if (rc < 0)
            net_http_error(req->conn, 500, "internal_error", "the database failed");
        else if (rc == 0)
            net_http_error(req->conn, 404, "not_found", "no call with this id");
        else
            net_http_respond(req->conn, 202, "{\"ok\":true}", strlen("{\"ok\":true}"), NULL);
        return;
    }
    if (req->method == NET_POST) {
        net_http_error(req->conn, 405, "method_not_allowed", "use GET or DELETE on a call");
        return;
    }
    if (s->pg && strchr(id, '/') == NULL) {
        if (req->method == NET_DELETE)
            storepg_call_delete(s, req->conn, id, own ? own->id : NULL);
        else
            storepg_call(s, req->conn, id, own ? own->id : NULL);
        return;
    }
    if (req->method == NET_DELETE) {
        storedb_batch_commit(s->db);
        int rc = storedb_call_delete(s->db, id, own ? own->id : NULL);
        if (rc < 0)
            net_http_error(req->conn, 500, "internal_error", "the database failed");
        else if (rc == 0)
            net_http_error(req->conn, 404, "not_found", "no call with this id");
        else
            net_http_respond(req->conn, 200, "{\"ok\":true}", strlen("{\"ok\":true}"), NULL);
        return;
    }
    char *body = strchr(id, '/') ? NULL : storedb_call_json(s->db, id, own ? own->id : NULL);
    if (body == NULL)
        net_http_error(req->conn, 404, "not_found", "no call with this id");
    else
        respond_take(req->conn, body);
}

/* ---- The actor ------------------------------------------------------------------------------ */

static void tenant_booking_free(tenant_booking_t *tb)
{
    booking_free(tb->booking);
    tenant_unref(tb->tenant);
    free(tb);
}

static int drop_booking(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    tenant_booking_free(value);
    return 1;
}

/* The booking tools of t's calendar as t's snapshot says (made on first use; t NULL: the default
 * tenant's); NULL when its configuration cannot make them (an unknown time zone: err says why)
 * or there is no such tenant. */
booking_t *store_booking_of(store_t *s, tenant_t *t, char *err, size_t errlen)
{
    if (t == NULL) {
        tenant_t *d = tenants_default();
        booking_t *b = d ? store_booking_of(s, d, err, errlen) : NULL;
        if (d == NULL)
            snprintf(err, errlen, "the call names no business");
        tenant_unref(d); /* the entry made for it holds a reference of its own */
        return b;
    }
    tenant_booking_t *tb = strmap_get(&s->bookings, t->id);
    if (tb && tb->tenant == t)
        return tb->booking;
    if (tb) {
        strmap_del(&s->bookings, t->id);
        tenant_booking_free(tb);
    }
    booking_t *b = booking_new(s->db ? storedb_handle(s->db) : NULL, &t->cfg, t->id, err, errlen);
    if (b == NULL)
        return NULL;
    tb = xcalloc(1, sizeof(*tb));
    tenant_ref(t);
    tb->tenant = t;
    tb->booking = b;
    strmap_put(&s->bookings, t->id, tb);
    return b;
}

void store_tool_answer(actor_t *reply_to, uint64_t cookie, char *out, bool is_error)
{
    tool_result_msg_t *r = tool_result_new(cookie, is_error, out);
    free(out);
    if (reply_to)
        actor_send(reply_to, &r->hdr);
    else
        msg_free(&r->hdr);
}

static void tool_call(store_t *s, tool_call_msg_t *c)
{
    bool is_error = true;
    char *out;
    char err[256];
    booking_t *b = booking_is_tool(c->name) ? store_booking_of(s, c->tenant, err, sizeof(err)) : NULL;
    if (b && s->pg) {
        storepg_tool_call(s, c, b);
        return;
    }
    if (b) {
        storedb_batch_commit(s->db);
        out = booking_run(b, c->name, c->args, c->now_ms, &is_error);
    } else if (booking_is_tool(c->name)) {
        log_error("store.booking_unavailable", LOG_S("tenant", c->tenant->id), LOG_S("error", err));
        out = xstrdup("{\"error\":{\"code\":\"unavailable\",\"message\":\"booking is not "
                      "available for this business\"}}");
    } else {
        out = xstrdup("{\"error\":{\"code\":\"unknown_tool\",\"message\":\"the store runs only "
                      "the built-in booking tools\"}}");
    }
    store_tool_answer(c->reply_to, c->cookie, out, is_error);
}

static void expire(store_t *s)
{
    if (s->closing)
        return;
    if (s->expiry == NULL) {
        s->expiry = actor_timer_new(&s->actor, STORE_MSG_RETENTION, NULL);
        actor_timer_start(s->expiry, RETENTION_EVERY_MS, RETENTION_EVERY_MS);
    }
    int64_t cutoff = (int64_t)clock_wall_ms() - (int64_t)g_config->retention_days * MS_PER_DAY;
    if (s->pg) {
        storepg_expire(s, cutoff);
        return;
    }
    storedb_batch_commit(s->db);
    int n = storedb_expire(s->db, cutoff);
    if (n != 0)
        log_info("store.retention", LOG_I("calls_deleted", n),
                 LOG_I("retention_days", g_config->retention_days));
}

/* Opens a batch unless one is open, with its flush queued behind what is waiting now. */
static void batch(store_t *s)
{
    storedb_batch_begin(s->db);
    if (!s->flush_queued) {
        s->flush_queued = true;
        actor_send(&s->actor, msg_new(STORE_MSG_FLUSH, sizeof(msg_t)));
    }
}

/* Chat threads, messages and agent runs; the thread open answers its asker. */
static void chat_record(store_t *s, store_chat_msg_t *c)
{
    if (s->pg) {
        storepg_chat(s, c);
        return;
    }
    batch(s);
    if (c->hdr.type == STORE_MSG_CHAT_MESSAGE) {
        chatdb_message(s->chat, c->thread_id, c->message_id, c->client_message_id, c->role, c->text,
                       c->at_ms);
        return;
    }
    if (c->hdr.type == STORE_MSG_AGENT_RUN) {
        chatdb_run_t run = {.record_id = c->record_id,
                            .run_id = c->run_id,
                            .user_id = c->user_id,
                            .tenant = c->tenant,
                            .task = c->task,
                            .status = c->status,
                            .result = c->result,
                            .error = c->error,
                            .started_at_ms = c->at_ms,
                            .ended_at_ms = c->ended_at_ms};
        chatdb_agent_run(s->chat, &run);
        return;
    }
    chatdb_owner_t owner = {"", ""};
    int st = chatdb_thread_open(s->chat, c->thread_id, c->user_id, c->tenant, c->at_ms, &owner);
    cJSON *history = chatdb_history(s->chat, c->thread_id, c->limit);
    actor_send(c->reply_to,
               &store_chat_thread_new(c->cookie, st, owner.user_id, owner.tenant, history)->hdr);
}

/* A record write, inside the current batch (opening one when none is open). */
static void record(store_t *s, const store_rec_msg_t *r)
{
    if (s->pg) {
        storepg_record(s, r);
        return;
    }
    batch(s);
    switch (r->hdr.type) {
    case STORE_MSG_CALL_START:
        storedb_call_start(s->db, r->call_id, r->session_id, r->tenant, r->at_ms);
        break;
    case STORE_MSG_CALL_END:
        if (storedb_call_end(s->db, r->call_id, r->at_ms, r->end_reason, r->openai_session_id,
                             r->request_id, r->input_tokens, r->output_tokens) == -ENOENT) {
            log_warn("store.call_end", LOG_S("call", r->call_id), LOG_S("reason", "no start"));
            break;
        }
        postcall_after_end(s, r->call_id);
        break;
    case STORE_MSG_FIRST_AUDIO:
        storedb_call_first_audio(s->db, r->call_id, r->duration_ms);
        break;
    case STORE_MSG_TRANSCRIPT:
        storedb_transcript(s->db, r->call_id, r->role, r->text, r->at_ms);
        break;
    case STORE_MSG_CALL_PHONE:
        storedb_call_phone(s->db, r->call_id, r->from, r->to, r->call_sid, r->transferred_to);
        break;
    default: /* STORE_MSG_TOOL_RECORD */
        storedb_tool_record(s->db, r->call_id, r->tool_call_id, r->parent_call_id, r->name,
                            r->arguments, r->output, r->status, r->duration_ms, r->via, r->at_ms);
        break;
    }
}

/* Drops what keeps the store alive by itself (armed timers, webhooks in flight), so that it
 * stops once the last actor holding it lets go. */
static void closing(store_t *s)
{
    s->closing = true;
    int abandoned = 0;
    while (s->jobs) {
        if (s->jobs->fetch_id)
            net_fetch_cancel(s->jobs->fetch_id); /* its DONE is ignored: the job is gone */
        job_free(s, s->jobs);
        abandoned++;
    }
    if (abandoned)
        log_warn("webhook.abandoned", LOG_I("webhooks", abandoned));
    actor_timer_free(s->expiry);
    s->expiry = NULL;
    if (s->runner)
        actor_unref(s->runner);
    s->runner = NULL;
}

static void store_handle(actor_t *self, msg_t *m)
{
    store_t *s = (store_t *)self;
    switch (m->type) {
    case STORE_MSG_CALL_START:
    case STORE_MSG_CALL_END:
    case STORE_MSG_TRANSCRIPT:
    case STORE_MSG_TOOL_RECORD:
    case STORE_MSG_CALL_PHONE:
    case STORE_MSG_FIRST_AUDIO:
        record(s, (store_rec_msg_t *)m);
        break;
    case STORE_MSG_PC_ATTACH:
    case STORE_MSG_PC_CLAIM:
    case STORE_MSG_PC_SUMMARY:
    case STORE_MSG_PC_END:
        postcall_msg(s, (store_pc_msg_t *)m);
        break;
    case STORE_MSG_CHAT_OPEN:
    case STORE_MSG_CHAT_MESSAGE:
    case STORE_MSG_AGENT_RUN:
        chat_record(s, (store_chat_msg_t *)m);
        break;
    case STORE_MSG_FLUSH:
        s->flush_queued = false;
        storedb_batch_commit(s->db);
        break;
    case NET_MSG_PG:
        storepg_answer(s, (net_pg_msg_t *)m);
        break;
    case TOOL_MSG_CALL:
        tool_call(s, (tool_call_msg_t *)m);
        break;
    case NET_MSG_HTTP:
        calls_http(s, (net_http_msg_t *)m);
        break;
    case NET_MSG_FETCH_DONE:
        webhook_done(s, (net_fetch_done_msg_t *)m);
        break;
    case STORE_MSG_WEBHOOK_RETRY:
        webhook_attempt(s, ((timer_msg_t *)m)->timer->data);
        break;
    case STORE_MSG_RETENTION:
        expire(s);
        break;
    case STORE_MSG_CLOSING:
        closing(s);
        break;
    case STORE_MSG_SYNC:
        sem_post(&synced_sem);
        break;
    case STORE_MSG_NET_UP:
        if (s->pg) {
            storepg_server_key(s, STORE_KEY_USER);
            expire(s); /* retention runs once now, then daily */
        }
        break;
    default:
        break;
    }
    msg_free(m);
}

static void store_stop(actor_t *self)
{
    store_t *s = (store_t *)self;
    closing(s); /* when the runtime stopped it first (sched_stop) */
    strmap_filter(&s->bookings, drop_booking, NULL);
    strmap_destroy(&s->bookings);
    chatdb_free(s->chat);
    s->chat = NULL;
    storepg_free(s->pg);
    s->pg = NULL;
    storedb_close(s->db); /* commits the open batch */
    s->db = NULL;
    sem_post(&closed_sem);
}

static const actor_type_t store_type = {"store", store_handle, store_stop};

void store_on_server_key(void (*fn)(const store_keys_t *keys))
{
    on_key = fn;
}

void store_server_key_loaded(const store_keys_t *keys)
{
    if (on_key)
        on_key(keys);
}

/* Spawns s (its database open) and checks the default tenant's calendar. Returns 0 or -errno
 * with err; on failure s is still the caller's. */
static int store_spawn(store_t *s, char *err, size_t errlen)
{
    strmap_init(&s->bookings);
    /* The default tenant's calendar now (not at its first booking), so that a time zone the
     * system does not know stops start-up with the key that names it. */
    tenant_t *d = tenants_default();
    int rc = d && store_booking_of(s, d, err, errlen) == NULL ? -EINVAL : 0;
    tenant_unref(d);
    if (rc == 0 && (rc = actor_spawn(&s->actor, &store_type, LANE_TOOLS)) != 0)
        snprintf(err, errlen, "cannot start the store actor: %s", strerror(-rc));
    if (rc != 0) {
        strmap_filter(&s->bookings, drop_booking, NULL);
        strmap_destroy(&s->bookings);
    }
    return rc;
}

/* store_open() on PostgreSQL: the statements are queued from now on and run once connected. */
static int store_open_pg(actor_t **store, store_keys_t *keys, char *err, size_t errlen)
{
    store_t *s = xcalloc(1, sizeof(*s));
    s->pg = storepg_new();
    int rc = store_spawn(s, err, errlen);
    if (rc != 0) {
        storepg_free(s->pg);
        free(s);
        return rc;
    }
    pg_setup = pgschema_setup();
    net_pg_set_setup(pg_setup);
    sem_init(&closed_sem, 0, 0);
    *store = &s->actor;
    if (keys) { /* a stand-in until the stored key is read */
        randombytes_buf(keys->user_key, sizeof(keys->user_key));
        keys->later = true;
    }
    /* The key and the first retention run go once the network runs (store_net_started()). */
    log_info("store.open", LOG_S("database", "postgresql"), LOG_I("schema", PGSCHEMA_VERSION));
    return 0;
}

int store_open(const char *path, actor_t **store, store_keys_t *keys, char *err, size_t errlen)
{
    if (net_pg_on())
        return store_open_pg(store, keys, err, errlen);
    storedb_t *db = storedb_open(path, err, errlen);
    if (db == NULL)
        return -EIO;
    /* Jobs a stopped process was running run again (once) after start-up. */
    int recovered = jobsdb_recover(storedb_handle(db), (int64_t)clock_wall_ms());
    if (recovered > 0)
        log_info("postcall.recovered", LOG_I("jobs", recovered));
    store_keys_t k;
    if (storedb_server_key(db, STORE_KEY_USER, k.user_key, err, errlen) != 0) {
        storedb_close(db);
        return -EIO;
    }
    k.later = false;
    if (keys)
        *keys = k;
    sodium_memzero(&k, sizeof(k));
    chatdb_t *chat = chatdb_new(storedb_handle(db), err, errlen);
    if (chat == NULL) {
        storedb_close(db);
        return -EIO;
    }
    store_t *s = xcalloc(1, sizeof(*s));
    s->db = db;
    s->chat = chat;
    int rc = store_spawn(s, err, errlen);
    if (rc != 0) {
        chatdb_free(chat);
        storedb_close(db);
        free(s);
        return rc;
    }
    sem_init(&closed_sem, 0, 0);
    *store = &s->actor;
    /* Retention runs once now, then daily. */
    actor_send(&s->actor, msg_new(STORE_MSG_RETENTION, sizeof(msg_t)));
    log_info("store.open", LOG_S("path", path), LOG_I("schema", STOREDB_SCHEMA_VERSION));
    return 0;
}

/* Waits for sem at most timeout_ms. Returns 0 or -1. */
static int sem_wait_ms(sem_t *sem, uint64_t timeout_ms)
{
    struct timespec ts;
    clock_deadline(&ts, CLOCK_REALTIME, timeout_ms);
    int rc;
    while ((rc = sem_timedwait(sem, &ts)) != 0 && errno == EINTR)
        ;
    return rc;
}

void store_net_started(actor_t *store)
{
    if (store)
        actor_send(store, msg_new(STORE_MSG_NET_UP, sizeof(msg_t)));
}

int store_sync(actor_t *store, uint64_t timeout_ms)
{
    if (store == NULL)
        return 0;
    /* Once per process (shutdown): a post that comes after the timeout is never waited for. */
    sem_init(&synced_sem, 0, 0);
    actor_send(store, msg_new(STORE_MSG_SYNC, sizeof(msg_t)));
    return sem_wait_ms(&synced_sem, timeout_ms) == 0 ? 0 : -ETIMEDOUT;
}

int store_close(actor_t *store)
{
    if (store == NULL)
        return 0;
    actor_send(store, msg_new(STORE_MSG_CLOSING, sizeof(msg_t)));
    actor_unref(store); /* the opener's reference; the last one runs store_stop() */
    if (sem_wait_ms(&closed_sem, STORE_CLOSE_WAIT_MS) != 0) {
        /* Someone still holds the store; sched_stop() will stop it. The semaphore stays: the
         * stop behaviour may still post it. */
        log_error("store.close", LOG_S("reason", "the store is still held by another actor"),
                  LOG_I("waited_ms", STORE_CLOSE_WAIT_MS));
        return -ETIMEDOUT;
    }
    sem_destroy(&closed_sem);
    free(pg_setup);
    pg_setup = NULL;
    return 0;
}

void store_add_routes(actor_t *store)
{
    static net_http_route_t routes[] = {
        {.path = CALLS_PATH, .prefix = true, .methods = NET_GET | NET_DELETE | NET_POST},
        {.path = ANALYTICS_PATH, .methods = NET_GET},
    };
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        actor_ref(store); /* the route's reference, dropped by net_stop() */
        routes[i].target = store;
        net_add_http_route(&routes[i]);
    }
}
