/*
 * probe_pg: net_pg_query() on the real network threads and actor runtime, driven line by line by
 * tests/integration/test_pg_net.py against a real PostgreSQL (pgfix.py), which it stops and
 * starts between commands.
 *
 *   probe_pg URL [SETUP_SQL]      starts the runtime and the network threads, prints
 *                                 {"started":true}, then answers one JSON line per command line
 *   probe_pg --check-url URL      prints {"rc":N}, net_pg_configure()'s answer
 *
 * Commands (one JSON object a line on stdin; one JSON object a line on stdout):
 *   {"op":"ready"}                               {"ready":B}
 *   {"op":"wait_ready","want":B,"ms":N}          {"ready":B} once it is B or after N ms
 *   {"op":"query","sql":S,"params":[..],"flags":F,"ms":N}
 *                                                the answer (below), or {"status":"none"}
 *   {"op":"send","sql":S,"params":[..],"flags":F,"cookie":C,"target":B}
 *                                                {"rc":R}; an answer goes to the collect list
 *   {"op":"collect","n":N,"ms":T}                {"answers":[..]}: N answers or what came in T
 *   {"op":"flood","n":N,"sql":S,"flags":F}       {"accepted":N}: N queries without target,
 *                                                params ["0"], ["1"], …
 *   {"op":"burst","actors":A,"per_actor":K,"sql":S,"flags":F,"ms":T}
 *                                                A actors each make K queries with params
 *                                                [actor, seq] and check their answers' order:
 *                                                {"done":B,"answers":N,"ok":N,"in_order":B}
 *   {"op":"metrics"}                             {"text":"the PostgreSQL lines of /metrics"}
 *   {"op":"quit"}                                net_stop(), then {"stopped":true,"leaked":N}
 * An answer: {"cookie":C,"status":"ok|failed|unreachable|full","sqlstate":S,"error":E,
 * "rows":[[text or null, ..], ..],"ncols":N}.
 *
 * The log goes to stderr in JSON lines (pg.* events).
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/sched.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"

#define PROBE_THREADS    2
#define PROBE_LINE_MAX   (4 * 1024 * 1024)
#define PROBE_ANSWER_MAX 200000 /* answers kept for "collect" */
#define PROBE_BURST_MAX  64     /* actors of one burst */
#define PROBE_SQL_MAX    1024   /* distinct statements of a run (net_pg_query() keeps pointers) */
#define PROBE_STOP_MS    10000
#define MSG_PROBE_GO     (MSG_TYPE_TEST_BASE + 1)

/* ---- Answers {lk} ------------------------------------------------------------------------- */

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static net_pg_msg_t *answers[PROBE_ANSWER_MAX]; /* {lk} */
static int n_answers;                           /* {lk} */
static int bursts_done;                         /* {lk} burst actors that have every answer */

static void sink_handle(actor_t *self, msg_t *m)
{
    (void)self;
    if (m->type != NET_MSG_PG) {
        msg_free(m);
        return;
    }
    pthread_mutex_lock(&lk);
    if (n_answers < PROBE_ANSWER_MAX)
        answers[n_answers++] = (net_pg_msg_t *)m;
    else
        msg_free(m);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lk);
}

static const actor_type_t sink_type = {"pg_probe_sink", sink_handle, NULL};
static actor_t *sink;

/* ---- Statements: kept until the end (net_pg_query() does not copy them) ------------------ */

static char *sqls[PROBE_SQL_MAX];
static int n_sqls;

static const char *sql_keep(const char *s)
{
    for (int i = 0; i < n_sqls; i++)
        if (strcmp(sqls[i], s) == 0)
            return sqls[i];
    if (n_sqls == PROBE_SQL_MAX) {
        fprintf(stderr, "probe_pg: too many statements\n");
        exit(1);
    }
    sqls[n_sqls] = xstrdup(s);
    return sqls[n_sqls++];
}

/* ---- Burst actors: each makes its queries and checks that they come back in order -------- */

typedef struct burst {
    actor_t a;
    int idx;
    int per;
    const char *sql;
    unsigned flags;
    int got;       /* [owner] answers so far */
    int ok;        /* [owner] */
    bool in_order; /* [owner] every answer's cookie was the next one */
} burst_t;

static void burst_go(burst_t *b)
{
    char who[16], seq[16];
    snprintf(who, sizeof(who), "%d", b->idx);
    const char *params[2] = {who, seq};
    for (int i = 0; i < b->per; i++) {
        snprintf(seq, sizeof(seq), "%d", i);
        if (net_pg_query(&b->a, (uint64_t)i, b->sql, 2, params, b->flags) != 0)
            b->in_order = false; /* refused: the run cannot complete, and says so */
    }
}

static void burst_handle(actor_t *self, msg_t *m)
{
    burst_t *b = (burst_t *)self;
    if (m->type == MSG_PROBE_GO) {
        burst_go(b);
    } else if (m->type == NET_MSG_PG) {
        net_pg_msg_t *a = (net_pg_msg_t *)m;
        if (a->cookie != (uint64_t)b->got)
            b->in_order = false;
        b->got++;
        b->ok += a->status == NET_PG_OK;
        if (b->got == b->per) {
            pthread_mutex_lock(&lk);
            bursts_done++;
            pthread_cond_broadcast(&cv);
            pthread_mutex_unlock(&lk);
        }
    }
    msg_free(m);
}

static const actor_type_t burst_type = {"pg_probe_burst", burst_handle, NULL};

/* ---- Output ------------------------------------------------------------------------------- */

static void emit(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(j);
}

static const char *status_name(net_pg_status_t s)
{
    switch (s) {
    case NET_PG_OK:
        return "ok";
    case NET_PG_FAILED:
        return "failed";
    case NET_PG_UNREACHABLE:
        return "unreachable";
    case NET_PG_FULL:
        return "full";
    }
    return "?";
}

static cJSON *answer_json(const net_pg_msg_t *m)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "cookie", (double)m->cookie);
    cJSON_AddStringToObject(j, "status", status_name(m->status));
    cJSON_AddStringToObject(j, "sqlstate", m->sqlstate);
    if (m->error)
        cJSON_AddStringToObject(j, "error", m->error);
    cJSON_AddNumberToObject(j, "ncols", m->ncols);
    cJSON *rows = cJSON_AddArrayToObject(j, "rows");
    for (int r = 0; r < m->nrows; r++) {
        cJSON *row = cJSON_CreateArray();
        for (int c = 0; c < m->ncols; c++) {
            const char *v = net_pg_value(m, r, c);
            cJSON_AddItemToArray(row, v ? cJSON_CreateString(v) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(rows, row);
    }
    return j;
}

/* ---- Commands ----------------------------------------------------------------------------- */

static int num(const cJSON *cmd, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : dflt;
}

static const char *str(const cJSON *cmd, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Makes the query of cmd (sql, params, flags) for target with cookie; returns its rc. */
static int send_query(const cJSON *cmd, actor_t *target, uint64_t cookie)
{
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(cmd, "params");
    int n = cJSON_IsArray(ps) ? cJSON_GetArraySize(ps) : 0;
    const char **params = xcalloc((size_t)n + 1, sizeof(char *));
    char **owned = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(ps, i);
        if (cJSON_IsString(p)) {
            params[i] = p->valuestring;
        } else if (cJSON_IsNumber(p)) {
            owned[i] = xmalloc(32);
            snprintf(owned[i], 32, "%.0f", p->valuedouble);
            params[i] = owned[i];
        }
    }
    const char *sql = str(cmd, "sql");
    int rc = net_pg_query(target, cookie, sql ? sql_keep(sql) : NULL, n, params,
                          (unsigned)num(cmd, "flags", 0));
    for (int i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(params);
    return rc;
}

/* Takes the collected answer with cookie (waiting up to ms), or NULL. */
static net_pg_msg_t *take_answer(uint64_t cookie, int ms)
{
    struct timespec dl;
    clock_deadline(&dl, CLOCK_REALTIME, ms);
    net_pg_msg_t *found = NULL;
    pthread_mutex_lock(&lk);
    for (;;) {
        for (int i = 0; i < n_answers && !found; i++) {
            if (answers[i]->cookie == cookie) {
                found = answers[i];
                memmove(&answers[i], &answers[i + 1], (size_t)(n_answers - i - 1) * sizeof(void *));
                n_answers--;
            }
        }
        if (found || pthread_cond_timedwait(&cv, &lk, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&lk);
    return found;
}

static uint64_t next_cookie = 1ull << 40; /* the "query" command's, apart from the tests' own */

static void cmd_query(const cJSON *cmd)
{
    uint64_t cookie = next_cookie++;
    int rc = send_query(cmd, sink, cookie);
    net_pg_msg_t *m = rc == 0 ? take_answer(cookie, num(cmd, "ms", 10000)) : NULL;
    cJSON *j = m ? answer_json(m) : cJSON_CreateObject();
    if (m == NULL) {
        cJSON_AddStringToObject(j, "status", "none");
        cJSON_AddNumberToObject(j, "rc", rc);
    }
    if (m != NULL)
        msg_free(&m->hdr);
    emit(j);
}

static void cmd_send(const cJSON *cmd)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cmd, "target");
    actor_t *target = cJSON_IsFalse(t) ? NULL : sink;
    int rc = send_query(cmd, target, (uint64_t)num(cmd, "cookie", 0));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "rc", rc);
    emit(j);
}

static void cmd_collect(const cJSON *cmd)
{
    int want = num(cmd, "n", 1);
    struct timespec dl;
    clock_deadline(&dl, CLOCK_REALTIME, num(cmd, "ms", 10000));
    pthread_mutex_lock(&lk);
    while (n_answers < want && pthread_cond_timedwait(&cv, &lk, &dl) == 0) {
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "answers");
    for (int i = 0; i < n_answers; i++) {
        cJSON_AddItemToArray(arr, answer_json(answers[i]));
        msg_free(&answers[i]->hdr);
    }
    n_answers = 0;
    pthread_mutex_unlock(&lk);
    emit(j);
}

static void cmd_flood(const cJSON *cmd)
{
    const char *sql = str(cmd, "sql");
    const char *kept = sql ? sql_keep(sql) : NULL;
    unsigned flags = (unsigned)num(cmd, "flags", 0);
    int n = num(cmd, "n", 0), accepted = 0;
    for (int i = 0; i < n; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        const char *params[1] = {v};
        accepted += net_pg_query(NULL, 0, kept, 1, params, flags) == 0;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "accepted", accepted);
    emit(j);
}

static void cmd_burst(const cJSON *cmd)
{
    int na = num(cmd, "actors", 1), per = num(cmd, "per_actor", 1);
    if (na > PROBE_BURST_MAX)
        na = PROBE_BURST_MAX;
    const char *sql = str(cmd, "sql");
    burst_t *bs[PROBE_BURST_MAX];
    pthread_mutex_lock(&lk);
    bursts_done = 0;
    pthread_mutex_unlock(&lk);
    for (int i = 0; i < na; i++) {
        bs[i] = xcalloc(1, sizeof(burst_t));
        bs[i]->idx = i;
        bs[i]->per = per;
        bs[i]->sql = sql ? sql_keep(sql) : NULL;
        bs[i]->flags = (unsigned)num(cmd, "flags", 0);
        bs[i]->in_order = true;
        if (actor_spawn(&bs[i]->a, &burst_type, LANE_TOOLS) != 0) {
            fprintf(stderr, "probe_pg: cannot spawn\n");
            exit(1);
        }
    }
    for (int i = 0; i < na; i++) /* all at once: their queries interleave on the connection */
        actor_send(&bs[i]->a, msg_new(MSG_PROBE_GO, sizeof(msg_t)));
    struct timespec dl;
    clock_deadline(&dl, CLOCK_REALTIME, num(cmd, "ms", 60000));
    pthread_mutex_lock(&lk);
    while (bursts_done < na && pthread_cond_timedwait(&cv, &lk, &dl) == 0) {
    }
    bool done = bursts_done == na;
    pthread_mutex_unlock(&lk);
    /* Read once every actor has its answers (the mutex orders their writes before ours), or
     * after they are stopped below: a timed-out run reports done false and nothing else. */
    int answers_n = 0, ok = 0;
    bool in_order = true;
    for (int i = 0; i < na && done; i++) {
        answers_n += bs[i]->got;
        ok += bs[i]->ok;
        in_order = in_order && bs[i]->in_order;
    }
    for (int i = 0; i < na; i++) {
        actor_stop(&bs[i]->a);
        actor_unref(&bs[i]->a);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "done", done);
    cJSON_AddNumberToObject(j, "answers", answers_n);
    cJSON_AddNumberToObject(j, "ok", ok);
    cJSON_AddBoolToObject(j, "in_order", in_order);
    emit(j);
}

static void cmd_wait_ready(const cJSON *cmd)
{
    bool want = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cmd, "want"));
    uint64_t end = clock_now_ns() + (uint64_t)num(cmd, "ms", 10000) * NS_PER_MS;
    while (net_pg_ready() != want && clock_now_ns() < end) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "ready", net_pg_ready());
    emit(j);
}

static void cmd_metrics(void)
{
    sbuf_t out;
    sbuf_init(&out);
    metrics_render(&out);
    sbuf_t mine;
    sbuf_init(&mine);
    for (char *line = strtok(out.data, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "switchboard_pg_") || strstr(line, "switchboard_store_queued"))
            sbuf_printf(&mine, "%s\n", line);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", mine.data ? mine.data : "");
    emit(j);
    sbuf_destroy(&mine);
    sbuf_destroy(&out);
}

/* One command; false for quit. */
static bool run_command(const char *line)
{
    cJSON *cmd = cJSON_Parse(line);
    const char *op = cmd ? str(cmd, "op") : NULL;
    bool more = true;
    if (op == NULL) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "error", "bad command");
        emit(j);
    } else if (strcmp(op, "ready") == 0) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "ready", net_pg_ready());
        emit(j);
    } else if (strcmp(op, "wait_ready") == 0) {
        cmd_wait_ready(cmd);
    } else if (strcmp(op, "query") == 0) {
        cmd_query(cmd);
    } else if (strcmp(op, "send") == 0) {
        cmd_send(cmd);
    } else if (strcmp(op, "collect") == 0) {
        cmd_collect(cmd);
    } else if (strcmp(op, "flood") == 0) {
        cmd_flood(cmd);
    } else if (strcmp(op, "burst") == 0) {
        cmd_burst(cmd);
    } else if (strcmp(op, "metrics") == 0) {
        cmd_metrics();
    } else {
        more = strcmp(op, "quit") != 0;
        if (more) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "error", "unknown op");
            emit(j);
        }
    }
    cJSON_Delete(cmd);
    return more;
}

/* ---- Main --------------------------------------------------------------------------------- */

static int start(const char *url, const char *setup)
{
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    metrics_init();
    if (net_pg_configure(url) != 0) {
        fprintf(stderr, "probe_pg: net_pg_configure refused %s\n", url);
        return -1;
    }
    net_pg_set_setup(setup);
    net_pg_register_metrics();
    sched_config_t sc = {.workers = 2, .max_actors = 1000, .mailbox_cap = 1024};
    if (sched_start(&sc) != 0)
        return -1;
    sink = xcalloc(1, sizeof(actor_t));
    if (actor_spawn(sink, &sink_type, LANE_TOOLS) != 0)
        return -1;
    net_config_t nc = {.host = "127.0.0.1",
                       .threads = PROBE_THREADS,
                       .max_connections = 16,
                       .out_cap = 64,
                       .no_listen = true};
    return net_start(&nc);
}

/* Stops net (which drains PostgreSQL's queue for up to 5 s), then the runtime; the number of
 * actors left alive, or -1. */
static int stop(void)
{
    net_stop();
    pthread_mutex_lock(&lk);
    for (int i = 0; i < n_answers; i++)
        msg_free(&answers[i]->hdr);
    n_answers = 0;
    pthread_mutex_unlock(&lk);
    actor_unref(sink);
    int leaked = sched_stop(PROBE_STOP_MS);
    for (int i = 0; i < n_sqls; i++)
        free(sqls[i]);
    net_pg_configure(NULL);
    metrics_destroy();
    return leaked;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--check-url") == 0) {
        printf("{\"rc\":%d}\n", net_pg_configure(argv[2]));
        net_pg_configure(NULL);
        return 0;
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: probe_pg URL [SETUP_SQL] | probe_pg --check-url URL\n");
        return 2;
    }
    if (start(argv[1], argc == 3 ? argv[2] : NULL) != 0)
        return 1;
    printf("{\"started\":true}\n");
    fflush(stdout);
    char *line = xmalloc(PROBE_LINE_MAX);
    while (fgets(line, PROBE_LINE_MAX, stdin) != NULL && run_command(line)) {
    }
    free(line);
    uint64_t t0 = clock_now_ns();
    int leaked = stop();
    printf("{\"stopped\":true,\"leaked\":%d,\"stop_ms\":%llu}\n", leaked,
           (unsigned long long)((clock_now_ns() - t0) / NS_PER_MS));
    return leaked == 0 ? 0 : 1;
}
