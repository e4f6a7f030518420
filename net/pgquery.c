/*
 * pgquery: what travels with a PostgreSQL query (SPEC 13), apart from the connection (pg.c).
 * The configuration read from SWITCHBOARD_DATABASE_URL, net_pg_query() (a query copied into one
 * allocation and posted to the first network thread), its answer to the caller (NET_MSG_PG, the
 * rows copied out of libpq's result into one allocation), the log of a failure nobody hears, and
 * the metrics.
 */
#include <ck_pr.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/pg.h"

#define PG_PARAMS_MAX       65535 /* the protocol's limit on the parameters of one statement */
#define PG_CONNECT_S        2     /* the deadline of an attempt unless connect_timeout says more */
#define PG_SQL_LOG_CHARS    80    /* of a failed statement's text in the log */
#define PG_LOST_LOG_NS      NS_PER_SEC /* at most one line a second about queries not run */
#define PG_STOP_DRAIN_MS    5000 /* net_stop() waits this long for what is queued and in flight */
#define PG_DRAIN_POLL_MS    5
#define PG_KEEPALIVE_IDLE_S "10" /* TCP keepalives: a peer gone without a reset is noticed ... */
#define PG_KEEPALIVE_INTV_S "5"  /* ... after idle + count * interval seconds (25 s) */
#define PG_KEEPALIVE_COUNT  "3"

pg_cfg_t pg_cfg;
static const char *pg_setup_sql; /* net_pg_set_setup(); immutable once threads run */

/* [atomic, any] 1 from net_start() until net_stop() has drained. Release and acquire: a caller
 * that reads 1 also sees the first network thread that net_start() set up. */
static int pg_accepting;
/* [atomic, any] Advisory counts for /readyz, the metrics and the stop's drain, written with
 * relaxed stores: each is a snapshot that publishes no other memory. */
static int pg_ready_flag;        /* the connection is up and its set-up statements have run */
static int pg_waiting;           /* queries waiting to be sent (switchboard_store_queued) */
static int pg_pending;           /* queries accepted by net_pg_query() and not yet done */
static metric_hist_t pg_seconds; /* [atomic, any] round trips, from the send to the answer */

/* ---- Configuration ------------------------------------------------------------------------ */

static void cfg_free(void)
{
    for (int i = 0; i < pg_cfg.n; i++) {
        free(pg_cfg.keys[i]);
        free(pg_cfg.vals[i]);
    }
    free(pg_cfg.host);
    free(pg_cfg.hostaddr);
    memset(&pg_cfg, 0, sizeof(pg_cfg));
}

static void cfg_add(const char *key, const char *val)
{
    if (pg_cfg.n < PG_KEYS_MAX) {
        pg_cfg.keys[pg_cfg.n] = xstrdup(key);
        pg_cfg.vals[pg_cfg.n] = xstrdup(val);
        pg_cfg.n++;
    }
}

static bool cfg_has(const char *key)
{
    for (int i = 0; i < pg_cfg.n; i++)
        if (strcmp(pg_cfg.keys[i], key) == 0)
            return true;
    return false;
}

/* One option of the URL; returns 0 or -EINVAL. host and hostaddr are kept apart (pg.c resolves
 * the host itself), connect_timeout becomes our own deadline, the rest goes to libpq as it is. */
static int cfg_take(const char *key, const char *val)
{
    if (strcmp(key, "host") == 0 || strcmp(key, "hostaddr") == 0) {
        if (strchr(val, ',') != NULL) /* one server: no failover list */
            return -EINVAL;
        char **dst = key[4] == '\0' ? &pg_cfg.host : &pg_cfg.hostaddr;
        *dst = val[0] ? xstrdup(val) : NULL;
        return 0;
    }
    if (strcmp(key, "port") == 0 && strchr(val, ',') != NULL)
        return -EINVAL;
    if (strcmp(key, "connect_timeout") == 0) {
        char *end;
        long s = strtol(val, &end, 10);
        if (end == val || *end != '\0' || s < 0 || s > 3600)
            return -EINVAL;
        if (s > 0) /* 0: libpq's "wait forever"; ours stays bounded */
            pg_cfg.connect_ms = (uint32_t)s * 1000u;
        return 0;
    }
    if (pg_cfg.n == PG_KEYS_MAX)
        return -EINVAL;
    cfg_add(key, val);
    return 0;
}

int net_pg_configure(const char *url)
{
    cfg_free();
    if (url == NULL)
        return 0;
    if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0)
        return -EINVAL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (opts == NULL) {
        PQfreemem(err);
        return -EINVAL;
    }
    pg_cfg.connect_ms = PG_CONNECT_S * 1000u;
    int rc = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL && rc == 0; o++)
        if (o->val != NULL)
            rc = cfg_take(o->keyword, o->val);
    PQconninfoFree(opts);
    if (rc != 0) {
        cfg_free();
        return rc;
    }
    /* Ours unless the URL says otherwise: texts are UTF-8 (JSON), and a dead peer is noticed. */
    if (!cfg_has("client_encoding"))
        cfg_add("client_encoding", "UTF8");
    if (!cfg_has("keepalives_idle"))
        cfg_add("keepalives_idle", PG_KEEPALIVE_IDLE_S);
    if (!cfg_has("keepalives_interval"))
        cfg_add("keepalives_interval", PG_KEEPALIVE_INTV_S);
    if (!cfg_has("keepalives_count"))
        cfg_add("keepalives_count", PG_KEEPALIVE_COUNT);
    if (!cfg_has("fallback_application_name"))
        cfg_add("fallback_application_name", "switchboard");
    pg_cfg.on = true;
    return 0;
}

void net_pg_set_setup(const char *sql)
{
    pg_setup_sql = sql;
}

const char *pg_setup(void)
{
    return pg_setup_sql && pg_setup_sql[0] ? pg_setup_sql : NULL;
}

bool net_pg_on(void)
{
    return pg_cfg.on;
}

/* ---- State shared with other threads ------------------------------------------------------ */

void pg_global_open(void)
{
    __atomic_store_n(&pg_accepting, 1, __ATOMIC_RELEASE);
}

static bool pg_accepts(void)
{
    return __atomic_load_n(&pg_accepting, __ATOMIC_ACQUIRE) != 0;
}

void pg_global_drain(void)
{
    if (!pg_cfg.on || !pg_accepts())
        return;
    uint64_t deadline = clock_now_ns() + PG_STOP_DRAIN_MS * NS_PER_MS;
    while (ck_pr_load_int(&pg_ready_flag) && ck_pr_load_int(&pg_pending) > 0 &&
           clock_now_ns() < deadline) {
        struct timespec ts = {0, PG_DRAIN_POLL_MS * (long)NS_PER_MS};
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&pg_accepting, 0, __ATOMIC_RELEASE);
}

void pg_publish(bool ready, uint32_t waiting)
{
    ck_pr_store_int(&pg_ready_flag, ready ? 1 : 0);
    ck_pr_store_int(&pg_waiting, (int)waiting);
}

bool net_pg_ready(void)
{
    return !pg_cfg.on || ck_pr_load_int(&pg_ready_flag) != 0;
}

static double pg_connected_gauge(void *arg)
{
    (void)arg;
    return ck_pr_load_int(&pg_ready_flag);
}

static double pg_queued_gauge(void *arg)
{
    (void)arg;
    return ck_pr_load_int(&pg_waiting);
}

static void pg_metrics_text(sbuf_t *out, void *arg)
{
    (void)arg;
    const char *name = "switchboard_pg_seconds";
    metrics_put_help(out, name, "Round trip of a query to PostgreSQL, from its send to its answer.",
                     "histogram");
    metrics_put_hist(out, name, NULL, &pg_seconds);
}

void net_pg_register_metrics(void)
{
    if (!pg_cfg.on)
        return;
    metrics_register_gauge_fn("switchboard_pg_connected",
                              "1 while the PostgreSQL connection is up and set up, else 0.",
                              pg_connected_gauge, NULL);
    metrics_register_gauge_fn("switchboard_store_queued",
                              "Queries waiting to be sent to PostgreSQL (records queue here while "
                              "it is unreachable).",
                              pg_queued_gauge, NULL);
    metrics_register_text_fn(pg_metrics_text, NULL);
}

/* ---- Queries ------------------------------------------------------------------------------ */

static pg_query_t *cmd_of(net_out_t *o)
{
    return *(pg_query_t **)(void *)(o->buf + LWS_PRE);
}

pg_query_t *pg_take_query(net_out_t *o)
{
    pg_query_t *q = cmd_of(o);
    *(pg_query_t **)(void *)(o->buf + LWS_PRE) = NULL;
    return q;
}

void pg_query_done(pg_query_t *q)
{
    if (q->target != NULL)
        actor_unref(q->target);
    free(q);
    ck_pr_dec_int(&pg_pending);
}

/* A command no thread took (the threads stopped first) is answered as unreachable. Thread: any. */
static void pg_cmd_free(msg_t *m)
{
    pg_query_t *q = cmd_of((net_out_t *)m);
    if (q != NULL)
        pg_answer_status(q, NET_PG_UNREACHABLE, NULL);
    msg_block_free(m);
}

int net_pg_query(actor_t *target, uint64_t cookie, const char *sql, int nparams,
                 const char *const *params, unsigned flags)
{
    if (!pg_cfg.on || sql == NULL || nparams < 0 || nparams > PG_PARAMS_MAX ||
        (nparams > 0 && params == NULL) || !pg_accepts())
        return -EINVAL;
    size_t text = 0;
    for (int i = 0; i < nparams; i++)
        text += params[i] ? strlen(params[i]) + 1 : 0;
    size_t head = sizeof(pg_query_t) + (size_t)nparams * sizeof(char *);
    pg_query_t *q = xmalloc(head + text);
    memset(q, 0, sizeof(*q));
    char *p = (char *)q + head;
    for (int i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            q->params[i] = NULL;
            continue;
        }
        size_t n = strlen(params[i]) + 1;
        memcpy(p, params[i], n);
        q->params[i] = p;
        p += n;
    }
    q->sql = sql;
    q->nparams = nparams;
    q->flags = flags;
    q->cookie = cookie;
    q->bytes = head + text;
    if (target != NULL)
        actor_ref(target);
    q->target = target;
    ck_pr_inc_int(&pg_pending);
    net_out_t *o = net_out_new(0, OUT_PG, sizeof(pg_query_t *));
    o->hdr.free_fn = pg_cmd_free;
    *(pg_query_t **)(void *)(o->buf + LWS_PRE) = q;
    net_post_thread(&g_net.threads[0], o); /* the one connection is the first thread's */
    return 0;
}

/* ---- Answers ------------------------------------------------------------------------------ */

static void pg_msg_free(msg_t *m)
{
    net_pg_msg_t *p = (net_pg_msg_t *)m;
    free(p->error);
    free(p->values);
    msg_block_free(p);
}

static net_pg_msg_t *msg_new_status(const pg_query_t *q, net_pg_status_t status)
{
    net_pg_msg_t *m = MSG_NEW(net_pg_msg_t, NET_MSG_PG);
    m->hdr.free_fn = pg_msg_free;
    m->cookie = q->cookie;
    m->status = status;
    return m;
}

/* The rows of r into m: the pointers, then the texts, in one allocation. */
static void copy_rows(net_pg_msg_t *m, const PGresult *r)
{
    int nr = PQntuples(r), nc = PQnfields(r);
    size_t n = (size_t)nr * (size_t)nc;
    m->nrows = nr;
    m->ncols = nc;
    if (n == 0)
        return;
    size_t bytes = n * sizeof(char *);
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++)
            if (!PQgetisnull(r, i, j))
                bytes += (size_t)PQgetlength(r, i, j) + 1;
    m->values = xmalloc(bytes);
    char *p = (char *)(m->values + n);
    for (int i = 0; i < nr; i++) {
        for (int j = 0; j < nc; j++) {
            char **v = &m->values[(size_t)i * (size_t)nc + (size_t)j];
            if (PQgetisnull(r, i, j)) {
                *v = NULL;
                continue;
            }
            size_t len = (size_t)PQgetlength(r, i, j);
            memcpy(p, PQgetvalue(r, i, j), len);
            p[len] = '\0';
            *v = p;
            p += len + 1;
        }
    }
}

/* The error's primary message without libpq's trailing newline (malloc'd). */
static char *error_text(const PGresult *r, const char *fallback)
{
    const char *e = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (e == NULL && r != NULL)
        e = PQresultErrorMessage(r);
    if (e == NULL || e[0] == '\0')
        e = fallback;
    char *s = xstrdup(e);
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

/* The first PG_SQL_LOG_CHARS bytes of q's statement, cut between UTF-8 sequences. */
static void sql_head(const pg_query_t *q, char out[PG_SQL_LOG_CHARS + 1])
{
    size_t n = str_copy(out, q->sql, PG_SQL_LOG_CHARS + 1);
    if (n > PG_SQL_LOG_CHARS && ((unsigned char)q->sql[PG_SQL_LOG_CHARS] & 0xC0) == 0x80) {
        size_t k = PG_SQL_LOG_CHARS; /* the cut is inside a sequence: drop its start */
        while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
            k--;
        out[k > 0 ? k - 1 : 0] = '\0';
    }
}

/* Logs the failure of a query without a target: its SQLSTATE, error and first characters. */
static void log_failed(const pg_query_t *q, const char *sqlstate, const char *error)
{
    char sql[PG_SQL_LOG_CHARS + 1];
    sql_head(q, sql);
    log_warn("pg.query_failed", LOG_S("sqlstate", sqlstate), LOG_S("error", error),
             LOG_S("sql", sql));
}

void pg_answer_result(pg_query_t *q, const PGresult *r)
{
    q->answered = true;
    metric_hist_observe_ns(&pg_seconds, clock_now_ns() - q->t0_ns);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY ||
              st == PGRES_SINGLE_TUPLE;
    const char *sqlstate = ok ? NULL : PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char *error = ok ? NULL : error_text(r, PQresStatus(st));
    if (q->target == NULL) {
        if (!ok)
            log_failed(q, sqlstate ? sqlstate : "", error);
        free(error);
        return;
    }
    net_pg_msg_t *m = msg_new_status(q, ok ? NET_PG_OK : NET_PG_FAILED);
    if (ok)
        copy_rows(m, r);
    else
        str_copy(m->sqlstate, sqlstate ? sqlstate : "", sizeof(m->sqlstate));
    m->error = error;
    actor_send(q->target, &m->hdr);
    actor_unref(q->target);
    q->target = NULL;
}

void pg_answer_failed(pg_query_t *q, const char *error)
{
    char *e = error_text(NULL, error);
    if (q->target == NULL) {
        log_failed(q, "", e);
        free(e);
    } else {
        net_pg_msg_t *m = msg_new_status(q, NET_PG_FAILED);
        m->error = e;
        actor_send(q->target, &m->hdr);
    }
    pg_query_done(q);
}

void pg_answer_status(pg_query_t *q, net_pg_status_t status, pg_lost_t *lost)
{
    if (q->target != NULL) {
        actor_send(q->target, &msg_new_status(q, status)->hdr);
    } else if (lost == NULL) {
        log_failed(q, "", status == NET_PG_FULL ? "queue full" : "unreachable");
    } else {
        /* A burst of these (a full queue under load) is one line a second, with the count. */
        lost->total++;
        uint64_t now = clock_now_ns();
        if (!lost->quiet && now - lost->logged_ns >= PG_LOST_LOG_NS) {
            lost->logged_ns = now;
            char sql[PG_SQL_LOG_CHARS + 1];
            sql_head(q, sql);
            log_warn("pg.query_failed", LOG_S("sqlstate", ""),
                     LOG_S("error", status == NET_PG_FULL ? "queue full" : "unreachable"),
                     LOG_S("sql", sql), LOG_I("lost_total", lost->total));
        }
    }
    pg_query_done(q);
}
