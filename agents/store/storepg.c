/*
 * storepg: the store's operations on PostgreSQL (SPEC 13), the same as the SQLite store's with
 * the same answers. Each is one statement of pgschema.h sent with net_pg_query(); nothing waits.
 *
 * Record writes (call start and end, transcript lines, tool calls, chat messages, agent runs,
 * post-call steps) are sent with NET_PG_QUEUE: while PostgreSQL is unreachable they wait in the
 * connection's bounded queue (switchboard_store_queued) and run, in order, when it returns.
 * Reads and bookings are not queued: while it is unreachable they answer `unavailable` (503 on
 * HTTP, a tool error for the booking tools), as a caller waiting on them must not hang.
 *
 * An operation that goes on when its answer comes keeps a pg_op until then. Answers come in the
 * order the statements were sent (one pipelined connection), so the op answered is almost always
 * the oldest: the list is a FIFO searched from its head.
 * Thread: the store's.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/auth/auth.h"
#include "agents/store/pgschema.h"
#include "agents/store/store_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"

#define I64_TEXT 24 /* an int64_t in decimal, with its sign and NUL */
#define MS_PER_S 1000
#define CLAIM_RETRY_MS 1000 /* a claim that could not run: the runner asks again after this */

/* What an answer goes on with. */
typedef enum {
    OP_CALL_END,   /* a call ended: its post-call job or webhook */
    OP_WEBHOOK,    /* the call's JSON for its webhook */
    OP_CHAT_OPEN,  /* answer the asker (actor, reply_cookie) */
    OP_CLAIM,      /* answer the runner (actor) */
    OP_PC_STEP,    /* a summary or an attempt's end: the webhook when it is due */
    OP_HTTP_JSON,  /* a JSON text to answer conn with (NULL: 404) */
    OP_HTTP_DEL,   /* a delete: {"ok":true} or 404 */
    OP_REQUEUE,    /* POST …/postcall: the call's tenant, then its job */
    OP_ANALYTICS,  /* rows into the analytics */
    OP_TOOL,       /* a booking tool's statement */
    OP_EXPIRE,     /* the number of calls retention deleted */
    OP_SERVER_KEY, /* the server key */
} op_kind_t;

typedef struct pg_op {
    struct pg_op *next;
    uint64_t cookie;
    op_kind_t kind;
    bool end; /* OP_PC_STEP: an attempt's end (answer {done, final, …}), else a summary */
    conn_id_t conn;
    actor_t *actor;        /* a reference: the asker, the runner, the tool's caller */
    uint64_t reply_cookie; /* the asker's */
    char *call_id;
    booking_pgq_t *bq;     /* OP_TOOL */
    callsapi_days_t days;  /* OP_ANALYTICS */
} pg_op_t;

struct storepg {
    pg_op_t *head, *tail;
    uint64_t next_cookie;
    bool recovered; /* this node's running jobs went back to pending */
};

storepg_t *storepg_new(void)
{
    return xcalloc(1, sizeof(storepg_t));
}

static void op_free(pg_op_t *op)
{
    if (op->actor)
        actor_unref(op->actor);
    booking_pgq_free(op->bq);
    callsapi_days_free(&op->days);
    free(op->call_id);
    free(op);
}

void storepg_free(storepg_t *p)
{
    if (p == NULL)
        return;
    while (p->head) {
        pg_op_t *op = p->head;
        p->head = op->next;
        if (op->kind == OP_HTTP_JSON || op->kind == OP_HTTP_DEL || op->kind == OP_REQUEUE ||
            op->kind == OP_ANALYTICS)
            net_http_error(op->conn, 503, "unavailable", "the store is shutting down");
        op_free(op);
    }
    free(p);
}

static pg_op_t *op_new(op_kind_t kind)
{
    pg_op_t *op = xcalloc(1, sizeof(*op));
    op->kind = kind;
    return op;
}

/* Sends sql with params; op (NULL: no answer wanted) gets the answer. queue: a record write,
 * kept while PostgreSQL is unreachable. When nothing can be sent, op is answered as if
 * PostgreSQL were unreachable. */
static void send_q(store_t *s, pg_op_t *op, const char *sql, int n, const char *const *params,
                   bool queue)
{
    storepg_t *p = s->pg;
    unsigned flags = queue ? NET_PG_QUEUE : 0;
    if (op == NULL) {
        if (net_pg_query(NULL, 0, sql, n, params, flags) != 0)
            log_error("store.pg_write", LOG_S("reason", "PostgreSQL is not started"));
        return;
    }
    op->cookie = ++p->next_cookie;
    if (p->tail)
        p->tail->next = op;
    else
        p->head = op;
    p->tail = op;
    if (net_pg_query(&s->actor, op->cookie, sql, n, params, flags) != 0) {
        net_pg_msg_t m = {.cookie = op->cookie, .status = NET_PG_UNREACHABLE};
        storepg_answer(s, &m);
    }
}

static const char *i64(char buf[I64_TEXT], int64_t v)
{
    snprintf(buf, I64_TEXT, "%" PRId64, v);
    return buf;
}

static int64_t now_ms(void)
{
    return (int64_t)clock_wall_ms();
}

/* ---- Records ------------------------------------------------------------------------------ */

void storepg_record(store_t *s, const store_rec_msg_t *r)
{
    char a[I64_TEXT], b[I64_TEXT], c[I64_TEXT];
    switch (r->hdr.type) {
    case STORE_MSG_CALL_START: {
        const char *v[] = {r->call_id, r->session_id ? r->session_id : "",
                           r->tenant ? r->tenant : TENANT_DEFAULT_ID, i64(a, r->at_ms)};
        send_q(s, NULL, PGQ_CALL_START, 4, v, true);
        break;
    }
    case STORE_MSG_CALL_END: {
        const char *v[] = {r->call_id,         i64(a, r->at_ms),        r->end_reason,
                           r->openai_session_id, r->request_id,         i64(b, r->input_tokens),
                           i64(c, r->output_tokens)};
        pg_op_t *op = op_new(OP_CALL_END);
        op->call_id = xstrdup(r->call_id);
        send_q(s, op, PGQ_CALL_END, 7, v, true);
        break;
    }
    case STORE_MSG_FIRST_AUDIO: {
        const char *v[] = {r->call_id, i64(a, r->duration_ms)};
        send_q(s, NULL, PGQ_FIRST_AUDIO, 2, v, true);
        break;
    }
    case STORE_MSG_TRANSCRIPT: {
        const char *v[] = {r->call_id, r->role ? r->role : "", r->text ? r->text : "",
                           i64(a, r->at_ms)};
        send_q(s, NULL, PGQ_TRANSCRIPT, 4, v, true);
        break;
    }
    case STORE_MSG_CALL_PHONE: {
        const char *v[] = {r->call_id, r->from, r->to, r->call_sid, r->transferred_to};
        send_q(s, NULL, PGQ_CALL_PHONE, 5, v, true);
        break;
    }
    default: { /* STORE_MSG_TOOL_RECORD */
        const char *v[] = {r->call_id,
                           r->tool_call_id,
                           r->parent_call_id && r->parent_call_id[0] ? r->parent_call_id : NULL,
                           r->name ? r->name : "",
                           r->arguments,
                           r->output,
                           r->status ? r->status : "",
                           i64(a, r->duration_ms),
                           r->via,
                           i64(b, r->at_ms)};
        send_q(s, NULL, PGQ_TOOL_RECORD, 10, v, true);
        break;
    }
    }
}

/* Queues call_id's job (tenant_id's) and tells the runner. */
static void job_queue(store_t *s, const char *call_id, const char *tenant_id, bool crm)
{
    char a[I64_TEXT];
    const char *v[] = {call_id, tenant_id, crm ? "true" : "false", i64(a, now_ms())};
    send_q(s, NULL, PGQ_JOB_QUEUE, 4, v, true);
    /* The runner's claim is sent after this statement on the same connection: it sees the job. */
    store_kick_runner(s);
}

/* The call's JSON for its webhook (sent when it comes). */
static void webhook_read(store_t *s, const char *call_id)
{
    pg_op_t *op = op_new(OP_WEBHOOK);
    op->call_id = xstrdup(call_id);
    const char *v[] = {call_id, NULL};
    send_q(s, op, PGQ_CALL_JSON, 2, v, true);
}

static void call_end_done(store_t *s, pg_op_t *op, const net_pg_msg_t *m)
{
    if (m->status != NET_PG_OK) {
        log_error("store.call_end", LOG_S("call", op->call_id), LOG_S("error", m->error));
        return;
    }
    if (m->nrows == 0) {
        log_warn("store.call_end", LOG_S("call", op->call_id), LOG_S("reason", "no start"));
        return;
    }
    const char *tenant_id = net_pg_value(m, 0, 0);
    const char *turns = net_pg_value(m, 0, 1);
    bool crm;
    if (tenant_id && store_postcall_wanted(tenant_id, turns ? atoi(turns) : 0, &crm))
        job_queue(s, op->call_id, tenant_id, crm);
    else if (g_config->postcall_webhook_url)
        webhook_read(s, op->call_id);
}

/* ---- Chat threads and agent runs ------------------------------------------------------------ */

void storepg_chat(store_t *s, store_chat_msg_t *c)
{
    char a[I64_TEXT], b[I64_TEXT], lim[I64_TEXT];
    if (c->hdr.type == STORE_MSG_CHAT_MESSAGE) {
        const char *v[] = {c->thread_id, c->message_id, c->client_message_id, c->role, c->text,
                           i64(a, c->at_ms)};
        send_q(s, NULL, PGQ_CHAT_MESSAGE, 6, v, true);
        return;
    }
    if (c->hdr.type == STORE_MSG_AGENT_RUN) {
        const char *v[] = {i64(a, c->record_id), c->run_id, c->user_id,
                           c->tenant ? c->tenant : TENANT_DEFAULT_ID,
                           c->task, c->status, c->result, c->error, i64(b, c->at_ms),
                           i64(lim, c->ended_at_ms)};
        send_q(s, NULL, PGQ_AGENT_RUN, 10, v, true);
        return;
    }
    pg_op_t *op = op_new(OP_CHAT_OPEN);
    op->actor = c->reply_to; /* the message's reference becomes the op's */
    c->reply_to = NULL;
    op->reply_cookie = c->cookie;
    const char *v[] = {c->thread_id, c->user_id, c->tenant ? c->tenant : TENANT_DEFAULT_ID,
                       i64(a, c->at_ms), i64(lim, c->limit)};
    send_q(s, op, PGQ_CHAT_OPEN, 5, v, false);
}

static void chat_open_done(pg_op_t *op, const net_pg_msg_t *m)
{
    cJSON *j = m->status == NET_PG_OK ? cJSON_Parse(net_pg_value(m, 0, 0)) : NULL;
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(j, "owner");
    const cJSON *tenant = cJSON_GetObjectItemCaseSensitive(j, "tenant");
    cJSON *msgs = cJSON_DetachItemFromObjectCaseSensitive(j, "messages");
    bool ok = cJSON_IsString(owner) && cJSON_IsString(tenant) && cJSON_IsArray(msgs);
    if (!ok)
        log_error("store.chat_open", LOG_S("error", m->error ? m->error : "no answer"));
    actor_send(op->actor, &store_chat_thread_new(op->reply_cookie, ok ? 0 : -EIO,
                                                 ok ? owner->valuestring : "",
                                                 ok ? tenant->valuestring : "",
                                                 ok ? msgs : NULL)
                               ->hdr);
    if (!ok)
        cJSON_Delete(msgs);
    cJSON_Delete(j);
}

/* ---- Post-call jobs ------------------------------------------------------------------------- */

static void claim(store_t *s, store_pc_msg_t *p)
{
    char node[NODE_ID_MAX + 1], a[I64_TEXT], b[I64_TEXT], c[I64_TEXT];
    if (!cluster_node_id(node)) { /* before the port is known: ask again soon */
        actor_send(p->actor, &store_pc_jobs_new(cJSON_CreateArray(), now_ms() + CLAIM_RETRY_MS)->hdr);
        return;
    }
    if (!s->pg->recovered) { /* jobs this node ran before it stopped run again (once) */
        const char *v[] = {node, i64(a, now_ms())};
        send_q(s, NULL, PGQ_JOBS_RECOVER, 2, v, true);
        s->pg->recovered = true;
    }
    pg_op_t *op = op_new(OP_CLAIM);
    op->actor = p->actor;
    p->actor = NULL;
    const char *v[] = {i64(a, now_ms()), i64(b, p->max), i64(c, STORE_POSTCALL_TOOL_CALLS), node};
    send_q(s, op, PGQ_JOBS_CLAIM, 4, v, false);
}

static void claim_done(pg_op_t *op, const net_pg_msg_t *m)
{
    cJSON *j = m->status == NET_PG_OK ? cJSON_Parse(net_pg_value(m, 0, 0)) : NULL;
    cJSON *jobs = cJSON_DetachItemFromObjectCaseSensitive(j, "jobs");
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "nextDue");
    int64_t next_due = cJSON_IsNumber(next) ? (int64_t)next->valuedouble : -1;
    if (!cJSON_IsArray(jobs)) { /* not answered: the runner asks again a little later */
        cJSON_Delete(jobs);
        jobs = cJSON_CreateArray();
        next_due = now_ms() + CLAIM_RETRY_MS;
    }
    actor_send(op->actor, &store_pc_jobs_new(jobs, next_due)->hdr);
    cJSON_Delete(j);
}

void storepg_postcall(store_t *s, store_pc_msg_t *p)
{
    if (p->hdr.type == STORE_MSG_PC_CLAIM) {
        claim(s, p);
        return;
    }
    char a[I64_TEXT], b[I64_TEXT];
    const char *take = g_config->postcall_webhook_url ? "true" : "false";
    pg_op_t *op = op_new(OP_PC_STEP);
    op->call_id = xstrdup(p->call_id);
    if (p->hdr.type == STORE_MSG_PC_SUMMARY) {
        const char *v[] = {p->call_id, p->summary, p->outcome, p->error, i64(a, now_ms()), take};
        send_q(s, op, PGQ_JOB_SUMMARY, 6, v, true);
        return;
    }
    op->end = true;
    const char *v[] = {p->call_id,        p->crm, p->error, i64(a, now_ms()),
                       i64(b, g_config->postcall_retry_ms), take};
    send_q(s, op, PGQ_JOB_END, 6, v, true);
}

static void pc_step_done(store_t *s, pg_op_t *op, const net_pg_msg_t *m)
{
    const char *text = net_pg_value(m, 0, 0);
    if (m->status != NET_PG_OK) {
        log_error("postcall.store", LOG_S("call", op->call_id), LOG_S("error", m->error));
        return;
    }
    if (!op->end) { /* a summary: the call's JSON when its webhook goes now */
        if (text)
            store_webhook_start(s, op->call_id, xstrdup(text));
        return;
    }
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (j == NULL)
        return; /* no running job */
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(j, "done");
    const cJSON *final = cJSON_GetObjectItemCaseSensitive(j, "final");
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(j, "retryInMs");
    log_info("postcall.attempt", LOG_S("call", op->call_id), LOG_I("done", cJSON_IsTrue(done)),
             LOG_I("final", cJSON_IsTrue(final)),
             LOG_I("retry_in_ms", cJSON_IsNumber(retry) ? (int64_t)retry->valuedouble : -1));
    cJSON *hook = cJSON_GetObjectItemCaseSensitive(j, "webhook");
    if (cJSON_IsObject(hook))
        store_webhook_start(s, op->call_id, store_json_take(cJSON_DetachItemViaPointer(j, hook)));
    cJSON_Delete(j);
}

/* ---- HTTP: GET /api/calls…, DELETE, POST …/postcall, GET /api/analytics ------------------- */

static bool http_unavailable(const pg_op_t *op, const net_pg_msg_t *m)
{
    if (m->status == NET_PG_OK)
        return false;
    if (m->status == NET_PG_FAILED) {
        log_error("store.pg_read", LOG_S("sqlstate", m->sqlstate), LOG_S("error", m->error));
        net_http_error(op->conn, 500, "internal_error", "the database failed");
    } else {
        net_http_error(op->conn, 503, "unavailable", "the database is unreachable");
    }
    return true;
}

void storepg_calls(store_t *s, conn_id_t conn, const querydb_filter_t *f)
{
    char a[I64_TEXT], b[I64_TEXT], c[I64_TEXT], d[I64_TEXT], e[I64_TEXT];
    pg_op_t *op = op_new(OP_HTTP_JSON);
    op->conn = conn;
    const char *v[] = {f->tenant,      i64(a, f->from_ms),      i64(b, f->to_ms),
                       f->channel,     f->outcome,              f->q && f->q[0] ? f->q : NULL,
                       i64(c, f->cursor_at), i64(d, f->cursor_rowid), i64(e, f->limit)};
    send_q(s, op, PGQ_CALLS, 9, v, false);
}

void storepg_call(store_t *s, conn_id_t conn, const char *call_id, const char *scope)
{
    pg_op_t *op = op_new(OP_HTTP_JSON);
    op->conn = conn;
    const char *v[] = {call_id, scope};
    send_q(s, op, PGQ_CALL_JSON, 2, v, false);
}

void storepg_call_delete(store_t *s, conn_id_t conn, const char *call_id, const char *scope)
{
    pg_op_t *op = op_new(OP_HTTP_DEL);
    op->conn = conn;
    const char *v[] = {call_id, scope};
    send_q(s, op, PGQ_CALL_DELETE, 2, v, false);
}

void storepg_requeue(store_t *s, conn_id_t conn, const char *call_id, const char *scope)
{
    pg_op_t *op = op_new(OP_REQUEUE);
    op->conn = conn;
    op->call_id = xstrdup(call_id);
    const char *v[] = {call_id, scope};
    send_q(s, op, PGQ_CALL_INFO, 2, v, false);
}

void storepg_analytics(store_t *s, conn_id_t conn, const char *scope, callsapi_days_t *days)
{
    pg_op_t *op = op_new(OP_ANALYTICS);
    op->conn = conn;
    op->days = *days;
    *days = (callsapi_days_t){0};
    sbuf_t bounds = SBUF_INIT; /* the array literal {b0,…,bn} */
    for (int i = 0; i <= op->days.n; i++)
        sbuf_printf(&bounds, "%c%" PRId64, i ? ',' : '{', op->days.starts[i]);
    sbuf_putc(&bounds, '}');
    const char *v[] = {scope, bounds.data};
    send_q(s, op, PGQ_ANALYTICS, 2, v, false);
    sbuf_destroy(&bounds);
}

static int64_t int_or(const char *text, int64_t none)
{
    return text ? strtoll(text, NULL, 10) : none;
}

static void http_done(store_t *s, pg_op_t *op, const net_pg_msg_t *m)
{
    if (http_unavailable(op, m))
        return;
    const char *text = net_pg_value(m, 0, 0);
    switch (op->kind) {
    case OP_HTTP_JSON:
        if (text)
            net_http_respond(op->conn, 200, text, strlen(text), NULL);
        else
            net_http_error(op->conn, 404, "not_found", "no call with this id");
        break;
    case OP_HTTP_DEL:
        if (text && text[0] == 't')
            net_http_respond(op->conn, 200, "{\"ok\":true}", strlen("{\"ok\":true}"), NULL);
        else
            net_http_error(op->conn, 404, "not_found", "no call with this id");
        break;
    case OP_REQUEUE: {
        const char *tenant_id = text;
        if (tenant_id == NULL) {
            net_http_error(op->conn, 404, "not_found", "no call with this id");
            break;
        }
        job_queue(s, op->call_id, tenant_id, store_tenant_has_crm(tenant_id));
        net_http_respond(op->conn, 202, "{\"ok\":true}", strlen("{\"ok\":true}"), NULL);
        break;
    }
    default: { /* OP_ANALYTICS: PGQ_ANALYTICS's sums */
        querydb_acc_t *a = querydb_acc_new(op->days.n, op->days.starts);
        for (int r = 0; r < m->nrows; r++) {
            const char *kind = net_pg_value(m, r, 0), *key = net_pg_value(m, r, 1);
            int64_t n[4];
            for (int i = 0; i < 4; i++)
                n[i] = int_or(net_pg_value(m, r, 2 + i), -1);
            if (kind && kind[0] == 'd' && key)
                querydb_acc_day(a, atoi(key), n[0], n[1], n[2], n[3]);
            else if (kind && kind[0] == 'o')
                querydb_acc_outcome(a, key, n[0]);
            else if (kind && kind[0] == 't')
                querydb_acc_totals(a, n[0], n[1], n[2], n[3]);
        }
        char *body = querydb_acc_json(a, op->days.dates);
        net_http_respond(op->conn, 200, body, strlen(body), NULL);
        free(body);
        break;
    }
    }
}

/* ---- The booking tools ---------------------------------------------------------------------- */

/* Sends op's booking statement. */
static void tool_send(store_t *s, pg_op_t *op)
{
    send_q(s, op, booking_pgq_sql(op->bq), booking_pgq_nparams(op->bq),
           booking_pgq_params(op->bq), false);
}

void storepg_tool_call(store_t *s, tool_call_msg_t *c, booking_t *b)
{
    bool is_error = true;
    booking_pgq_t *q = NULL;
    char *out = booking_pg_start(b, c->name, c->args, c->now_ms, &is_error, &q);
    if (out != NULL) { /* answered without the database (the arguments, a closed day) */
        store_tool_answer(c->reply_to, c->cookie, out, is_error);
        return;
    }
    pg_op_t *op = op_new(OP_TOOL);
    op->actor = c->reply_to;
    c->reply_to = NULL;
    op->reply_cookie = c->cookie;
    op->bq = q;
    tool_send(s, op);
}

/* The tool's statement answered: its output, or the next statement. Returns true when op goes
 * on (sent again). The waiting run holds copies of what it needs: the tenant's tools may have
 * been made again meanwhile. */
static bool tool_done(store_t *s, pg_op_t *op, const net_pg_msg_t *m)
{
    bool is_error = true;
    char *out = booking_pg_resume(op->bq, m, &is_error);
    if (out != NULL) {
        store_tool_answer(op->actor, op->reply_cookie, out, is_error);
        return false;
    }
    op->next = NULL;
    tool_send(s, op);
    return true;
}

/* ---- Retention, the server key ------------------------------------------------------------ */

void storepg_expire(store_t *s, int64_t cutoff_ms)
{
    char a[I64_TEXT];
    const char *v[] = {i64(a, cutoff_ms)};
    send_q(s, op_new(OP_EXPIRE), PGQ_EXPIRE, 1, v, true);
}

void storepg_server_key(store_t *s, const char *name)
{
    uint8_t fresh[STORE_SERVER_KEY_BYTES];
    char hex[2 * STORE_SERVER_KEY_BYTES + 1];
    randombytes_buf(fresh, sizeof(fresh));
    sodium_bin2hex(hex, sizeof(hex), fresh, sizeof(fresh));
    sodium_memzero(fresh, sizeof(fresh));
    const char *v[] = {name, hex};
    send_q(s, op_new(OP_SERVER_KEY), PGQ_SERVER_KEY, 2, v, true);
    sodium_memzero(hex, sizeof(hex));
}

static void server_key_done(const net_pg_msg_t *m)
{
    const char *hex = net_pg_value(m, 0, 0);
    store_keys_t k = {.later = false};
    size_t n = 0;
    if (hex == NULL || sodium_hex2bin(k.user_key, sizeof(k.user_key), hex, strlen(hex), NULL, &n,
                                      NULL) != 0 ||
        n != sizeof(k.user_key)) {
        log_error("store.server_key", LOG_S("error", m->error ? m->error : "no key"));
        return;
    }
    store_server_key_loaded(&k);
    sodium_memzero(&k, sizeof(k));
}

/* ---- Answers -------------------------------------------------------------------------------- */

/* Takes the op of cookie out of the list (NULL when none). */
static pg_op_t *op_take(storepg_t *p, uint64_t cookie)
{
    pg_op_t *prev = NULL;
    for (pg_op_t *op = p->head; op; prev = op, op = op->next) {
        if (op->cookie != cookie)
            continue;
        if (prev)
            prev->next = op->next;
        else
            p->head = op->next;
        if (p->tail == op)
            p->tail = prev;
        op->next = NULL;
        return op;
    }
    return NULL;
}

void storepg_answer(store_t *s, const net_pg_msg_t *m)
{
    pg_op_t *op = s->pg ? op_take(s->pg, m->cookie) : NULL;
    if (op == NULL)
        return;
    switch (op->kind) {
    case OP_CALL_END:
        call_end_done(s, op, m);
        break;
    case OP_WEBHOOK: {
        const char *body = net_pg_value(m, 0, 0);
        if (body)
            store_webhook_start(s, op->call_id, xstrdup(body));
        break;
    }
    case OP_CHAT_OPEN:
        chat_open_done(op, m);
        break;
    case OP_CLAIM:
        claim_done(op, m);
        break;
    case OP_PC_STEP:
        pc_step_done(s, op, m);
        break;
    case OP_TOOL:
        if (tool_done(s, op, m))
            return; /* sent again: still pending */
        break;
    case OP_EXPIRE: {
        const char *n = net_pg_value(m, 0, 0);
        if (n && strcmp(n, "0") != 0)
            log_info("store.retention", LOG_S("calls_deleted", n),
                     LOG_I("retention_days", g_config->retention_days));
        break;
    }
    case OP_SERVER_KEY:
        server_key_done(m);
        break;
    default:
        http_done(s, op, m);
        break;
    }
    op_free(op);
}
