/*
 * pg: the PostgreSQL connection (SPEC 13) on the first network thread's libuv loop, through
 * libpq's asynchronous API only: nothing here blocks the loop.
 *
 * Connecting: the URL's host is resolved with uv_getaddrinfo (libpq would resolve it inside
 * PQconnectStart, on the loop) and handed to libpq as hostaddr, host kept for TLS and
 * authentication; then PQconnectStartParams() and PQconnectPoll() driven by a uv_poll on
 * PQsocket(). libpq may move to another socket during the attempt (the next address, SSL
 * refused), sometimes with the same number, so the poll is stopped (which takes the fd out of
 * epoll while it is still open) before each PQconnectPoll() and started again on whatever
 * socket libpq has afterwards. An attempt not connected within the deadline (2 s, or the URL's
 * connect_timeout) is dropped; attempts back off from 100 ms to 2 s.
 *
 * Set-up: once connected, the set-up statements (net_pg_set_setup(): the migrations) run in the
 * simple protocol (PQsendQuery, several statements, not allowed in pipeline mode). An error
 * there is logged (pg.setup_failed) and the connection closed and tried again with backoff.
 * Only then is the node ready (net_pg_ready()).
 *
 * Queries: in pipeline mode, each query is PQsendQueryParams() (text in, text out) and
 * PQpipelineSync(), so each runs in its own implicit transaction and one failure does not abort
 * the next. Results come back in order: the query's result, NULL, then PGRES_PIPELINE_SYNC.
 * At most PG_FLIGHT_MAX queries are in flight; the rest wait in the queue, which is bounded.
 * A query is answered as soon as its result is read and leaves the in-flight list at its sync.
 *
 * When the connection breaks, in-flight NET_PG_QUEUE queries not yet answered go back to the
 * front of the queue in their order (sent again: the store's writes are idempotent), the others
 * are answered UNREACHABLE, and so is every waiting query without NET_PG_QUEUE. An error of
 * severity FATAL (the server shutting down) ends the session, not the query: it counts as a break.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/pg.h"

#define PG_BACKOFF_MIN_MS  100
#define PG_BACKOFF_MAX_MS  2000
#define PG_SETUP_MS        60000  /* the set-up statements (migrations) must be done within this */
#define PG_FLIGHT_MAX      256    /* queries sent and not yet answered */
#define PG_QUEUE_MAX       100000 /* queries waiting to be sent, at most, ... */
#define PG_QUEUE_MAX_BYTES (32u * 1024u * 1024u) /* ... and their bytes (params, bookkeeping) */
/* Breaks a write may be in flight for before it is given up: one that kills its own session
 * must not wedge the queue for good. */
#define PG_RESEND_MAX 8
#define PG_ADDRS_MAX  4 /* addresses of a resolved host tried in order, per attempt */
#define PG_IP_MAX     48

typedef enum { PG_DOWN, PG_RESOLVING, PG_CONNECTING, PG_SETUP, PG_READY } pg_state_t;

typedef struct pg_fifo {
    pg_query_t *head, *tail;
    uint32_t n;
    size_t bytes;
} pg_fifo_t;

/* The poll on the connection's socket: its own allocation, freed by its close callback. */
typedef struct pg_poll {
    uv_poll_t h;
    int fd;
} pg_poll_t;

/* The connection. [first network thread] */
typedef struct pg_conn {
    netthr_t *thr;
    pg_state_t state;
    PGconn *conn;     /* from the attempt's start until it is dropped */
    pg_poll_t *poll;  /* on PQsocket(conn), NULL when none */
    int events;       /* what poll watches; 0 when stopped */
    uv_timer_t timer; /* the next attempt; the connect and set-up deadlines */
    uv_getaddrinfo_t gai;
    bool gai_pending;
    bool timer_closed;
    bool closing;
    bool setup_error;    /* a set-up statement failed: drop the connection when they are done */
    bool failure_logged; /* a failed attempt was logged at warn since the last ready */
    uint32_t backoff_ms;
    pg_fifo_t queue;  /* waiting to be sent, oldest first */
    pg_fifo_t flight; /* sent, oldest first */
    bool head_ended;  /* flight.head's results have ended (NULL read); its sync comes next */
    pg_lost_t lost;
} pg_conn_t;

/* ---- Lists -------------------------------------------------------------------------------- */

static void fifo_push(pg_fifo_t *f, pg_query_t *q)
{
    q->next = NULL;
    if (f->tail != NULL)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    f->n++;
    f->bytes += q->bytes;
}

static pg_query_t *fifo_pop(pg_fifo_t *f)
{
    pg_query_t *q = f->head;
    if (q == NULL)
        return NULL;
    f->head = q->next;
    if (f->head == NULL)
        f->tail = NULL;
    f->n--;
    f->bytes -= q->bytes;
    q->next = NULL;
    return q;
}

/* Puts front (emptied) before what f holds. */
static void fifo_prepend(pg_fifo_t *f, pg_fifo_t *front)
{
    if (front->head == NULL)
        return;
    front->tail->next = f->head;
    if (f->tail == NULL)
        f->tail = front->tail;
    f->head = front->head;
    f->n += front->n;
    f->bytes += front->bytes;
    memset(front, 0, sizeof(*front));
}

static void publish(const pg_conn_t *pc)
{
    pg_publish(pc->state == PG_READY, pc->queue.n);
}

/* ---- The socket --------------------------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_closed(uv_handle_t *h)
{
    free(h); /* the pg_poll_t it begins */
}

static void poll_close(pg_conn_t *pc)
{
    if (pc->poll == NULL)
        return;
    uv_close((uv_handle_t *)&pc->poll->h, poll_closed);
    pc->poll = NULL;
    pc->events = 0;
}

/* Watches libpq's socket for events (a new handle when libpq has moved to another socket);
 * returns 0 or -1. */
static int poll_watch(pg_conn_t *pc, int events)
{
    int fd = PQsocket(pc->conn);
    if (fd < 0)
        return -1;
    if (pc->poll != NULL && pc->poll->fd != fd)
        poll_close(pc);
    if (pc->poll == NULL) {
        pg_poll_t *p = xcalloc(1, sizeof(*p));
        if (uv_poll_init(&pc->thr->loop, &p->h, fd) != 0) {
            free(p);
            return -1;
        }
        p->fd = fd;
        p->h.data = pc;
        pc->poll = p;
    }
    if (events != pc->events) { /* each start is two epoll_ctl calls: only on a change */
        uv_poll_start(&pc->poll->h, events, on_poll);
        pc->events = events;
    }
    return 0;
}

/* ---- Attempts ----------------------------------------------------------------------------- */

static void pg_connect(pg_conn_t *pc);

static void on_retry(uv_timer_t *t)
{
    pg_connect(t->data);
}

static void retry_later(pg_conn_t *pc)
{
    pc->state = PG_DOWN;
    publish(pc);
    if (pc->closing)
        return;
    uint32_t ms = pc->backoff_ms ? pc->backoff_ms : PG_BACKOFF_MIN_MS;
    pc->backoff_ms = ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : ms * 2;
    uv_timer_start(&pc->timer, on_retry, ms, 0);
}

/* Closes the connection (not its queries). */
static void conn_drop(pg_conn_t *pc)
{
    poll_close(pc); /* before PQfinish closes the fd */
    if (pc->conn != NULL)
        PQfinish(pc->conn);
    pc->conn = NULL;
    pc->head_ended = false;
    pc->state = PG_DOWN;
    uv_timer_stop(&pc->timer);
}

/* s copied into buf on one line: libpq's messages end in a newline and may hold "\n\t". */
static const char *trimmed(const char *s, char *buf, size_t size)
{
    str_copy(buf, s, size);
    size_t n = 0;
    for (const char *p = buf; *p; p++) {
        bool space = *p == '\n' || *p == '\t' || *p == ' ';
        if (!space || (n > 0 && buf[n - 1] != ' '))
            buf[n++] = space ? ' ' : *p;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

/* libpq's error text for c, into buf. */
static const char *conn_error(PGconn *c, char *buf, size_t size)
{
    return trimmed(c ? PQerrorMessage(c) : "out of memory", buf, size);
}

/* An attempt failed before the connection was up: the first since the last ready is a warning,
 * the rest (every 2 s while PostgreSQL is down) debug lines. */
static void attempt_failed(pg_conn_t *pc, const char *event, const char *error)
{
    if (pc->failure_logged) {
        log_debug(event, LOG_S("error", error));
    } else {
        log_warn(event, LOG_S("error", error));
        pc->failure_logged = true;
    }
    conn_drop(pc);
    retry_later(pc);
}

static void on_deadline(uv_timer_t *t)
{
    pg_conn_t *pc = t->data;
    if (pc->state == PG_CONNECTING)
        attempt_failed(pc, "pg.connect_failed", "timeout");
    else if (pc->state == PG_SETUP)
        attempt_failed(pc, "pg.setup_failed", "timeout");
}

/* ---- Breaking --------------------------------------------------------------------------- */

/* In-flight queries after a break: answered ones are done, unanswered NET_PG_QUEUE ones go back
 * to the front of the queue in their order, the others are answered UNREACHABLE. */
static void flight_return(pg_conn_t *pc)
{
    pg_fifo_t again = {0};
    pg_query_t *q;
    while ((q = fifo_pop(&pc->flight)) != NULL) {
        if (q->answered) {
            pg_query_done(q);
        } else if ((q->flags & NET_PG_QUEUE) && q->resends < PG_RESEND_MAX) {
            q->resends++;
            fifo_push(&again, q);
        } else {
            pg_answer_status(q, NET_PG_UNREACHABLE, &pc->lost);
        }
    }
    fifo_prepend(&pc->queue, &again);
}

/* Waiting queries without NET_PG_QUEUE cannot wait for the next connection. */
static void queue_fail_unqueued(pg_conn_t *pc)
{
    pg_fifo_t keep = {0};
    pg_query_t *q;
    while ((q = fifo_pop(&pc->queue)) != NULL) {
        if (q->flags & NET_PG_QUEUE)
            fifo_push(&keep, q);
        else
            pg_answer_status(q, NET_PG_UNREACHABLE, &pc->lost);
    }
    pc->queue = keep;
}

/* The connection broke (or its session ended): its queries as above, then a new attempt. */
static void conn_broken(pg_conn_t *pc, const char *why)
{
    char err[256];
    trimmed(why, err, sizeof(err)); /* why may be libpq's, freed by PQfinish */
    if (pc->state == PG_READY)
        log_warn("pg.down", LOG_S("error", err), LOG_I("in_flight", pc->flight.n),
                 LOG_I("queued", pc->queue.n));
    else
        log_warn("pg.setup_failed", LOG_S("error", err));
    pc->failure_logged = true;
    conn_drop(pc);
    flight_return(pc);
    queue_fail_unqueued(pc);
    retry_later(pc);
}

/* ---- Queries ------------------------------------------------------------------------------ */

/* Sends waiting queries while fewer than PG_FLIGHT_MAX are in flight; false when the connection
 * broke. */
static bool pump(pg_conn_t *pc)
{
    while (pc->flight.n < PG_FLIGHT_MAX && pc->queue.head != NULL) {
        pg_query_t *q = pc->queue.head;
        if (!PQsendQueryParams(pc->conn, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0)) {
            if (PQstatus(pc->conn) == CONNECTION_BAD) {
                conn_broken(pc, PQerrorMessage(pc->conn));
                return false;
            }
            char err[256]; /* the query's own fault: it would fail on any connection */
            pg_answer_failed(fifo_pop(&pc->queue), conn_error(pc->conn, err, sizeof(err)));
            continue;
        }
        if (!PQpipelineSync(pc->conn)) {
            conn_broken(pc, PQerrorMessage(pc->conn));
            return false;
        }
        fifo_pop(&pc->queue);
        q->t0_ns = clock_now_ns();
        fifo_push(&pc->flight, q);
    }
    return true;
}

/* The error ends the session rather than the statement (FATAL, PANIC, a lost connection). */
static bool session_ended(PGconn *c, const PGresult *r)
{
    if (PQstatus(c) == CONNECTION_BAD)
        return true;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    return sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/* Reads what results have arrived for the queries in flight; false when the connection broke.
 * PQgetResult() is only called when PQisBusy() says it will not block. */
static bool pipeline_read(pg_conn_t *pc)
{
    while (pc->flight.head != NULL && !PQisBusy(pc->conn)) {
        pg_query_t *q = pc->flight.head;
        PGresult *r = PQgetResult(pc->conn);
        if (r == NULL) {
            if (pc->head_ended)
                break; /* its sync has not arrived yet */
            pc->head_ended = true;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            fifo_pop(&pc->flight);
            pc->head_ended = false;
            if (q->answered)
                pg_query_done(q);
            else /* no result came: still exactly one answer */
                pg_answer_failed(q, "no result");
            continue;
        }
        if (st == PGRES_FATAL_ERROR && session_ended(pc->conn, r)) {
            char err[256];
            str_copy(err, PQresultErrorMessage(r), sizeof(err));
            PQclear(r);
            conn_broken(pc, err);
            return false;
        }
        if (!q->answered && !pc->head_ended)
            pg_answer_result(q, r);
        PQclear(r);
    }
    return true;
}

/* ---- Set-up ------------------------------------------------------------------------------- */

/* The connection is usable: pipeline mode, then what waits is sent. False when it broke. */
static bool go_ready(pg_conn_t *pc)
{
    if (!PQenterPipelineMode(pc->conn)) {
        conn_broken(pc, PQerrorMessage(pc->conn));
        return false;
    }
    uv_timer_stop(&pc->timer); /* the set-up deadline */
    pc->state = PG_READY;
    pc->backoff_ms = 0;
    pc->failure_logged = false;
    log_info("pg.up", LOG_I("queued", pc->queue.n));
    return true;
}

/* Reads the set-up's results; at its end, ready or dropped. False when the connection went. */
static bool setup_read(pg_conn_t *pc)
{
    while (!PQisBusy(pc->conn)) {
        PGresult *r = PQgetResult(pc->conn);
        if (r == NULL)
            break;
        if (PQresultStatus(r) == PGRES_FATAL_ERROR && !pc->setup_error) {
            char err[512];
            log_error("pg.setup_failed",
                      LOG_S("error", trimmed(PQresultErrorMessage(r), err, sizeof(err))));
            pc->setup_error = true;
        }
        PQclear(r);
        if (PQstatus(pc->conn) == CONNECTION_BAD) {
            conn_broken(pc, PQerrorMessage(pc->conn));
            return false;
        }
    }
    if (PQisBusy(pc->conn))
        return true; /* more to come */
    if (pc->setup_error) {
        pc->failure_logged = true;
        conn_drop(pc);
        retry_later(pc);
        return false;
    }
    return go_ready(pc);
}

/* Flushes what libpq holds and watches the socket: readable always, writable while output is
 * left. False when the connection broke. */
static bool flush_watch(pg_conn_t *pc)
{
    int r = PQflush(pc->conn);
    if (r < 0 || poll_watch(pc, UV_READABLE | (r == 1 ? UV_WRITABLE : 0)) != 0) {
        conn_broken(pc, r < 0 ? PQerrorMessage(pc->conn) : "poll");
        return false;
    }
    return true;
}

/* The socket of a connected session is ready (or failed: PQconsumeInput() then says so). */
static void conn_io(pg_conn_t *pc)
{
    if (!PQconsumeInput(pc->conn)) {
        conn_broken(pc, PQerrorMessage(pc->conn));
        return;
    }
    if (pc->state == PG_SETUP) {
        if (!setup_read(pc))
            return;
    } else if (!pipeline_read(pc)) {
        return;
    }
    if (pc->state == PG_READY && !pump(pc))
        return;
    flush_watch(pc);
    publish(pc);
}

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char text[256];
    str_copy(text, message, sizeof(text));
    text[strcspn(text, "\n")] = '\0';
    log_debug("pg.notice", LOG_S("text", text)); /* libpq would print it on stderr */
}

/* PQconnectPoll() said OK: non-blocking from now on, then the set-up (or ready at once). */
static void conn_connected(pg_conn_t *pc)
{
    uv_timer_stop(&pc->timer); /* the connect deadline */
    PQsetNoticeProcessor(pc->conn, on_notice, NULL);
    if (PQsetnonblocking(pc->conn, 1) != 0) {
        conn_broken(pc, PQerrorMessage(pc->conn));
        return;
    }
    pc->setup_error = false;
    const char *setup = pg_setup();
    pc->state = PG_SETUP;
    if (setup == NULL) {
        if (!go_ready(pc) || !pump(pc))
            return;
    } else if (!PQsendQuery(pc->conn, setup)) {
        conn_broken(pc, PQerrorMessage(pc->conn));
        return;
    } else {
        uv_timer_start(&pc->timer, on_deadline, PG_SETUP_MS, 0);
    }
    if (flush_watch(pc))
        publish(pc);
}

/* One step of the attempt; the poll was stopped before it (see the top of the file). */
static void connect_step(pg_conn_t *pc)
{
    char err[256];
    switch (PQconnectPoll(pc->conn)) {
    case PGRES_POLLING_READING:
        if (poll_watch(pc, UV_READABLE) != 0)
            attempt_failed(pc, "pg.connect_failed", "poll");
        return;
    case PGRES_POLLING_WRITING:
        if (poll_watch(pc, UV_WRITABLE) != 0)
            attempt_failed(pc, "pg.connect_failed", "poll");
        return;
    case PGRES_POLLING_OK:
        conn_connected(pc);
        return;
    default:
        attempt_failed(pc, "pg.connect_failed", conn_error(pc->conn, err, sizeof(err)));
        return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    pg_conn_t *pc = h->data;
    if (status < 0)
        pc->events = 0; /* libuv stopped the handle; libpq finds the socket's error */
    if (pc->state == PG_CONNECTING) {
        uv_poll_stop(h);
        pc->events = 0;
        connect_step(pc);
        return;
    }
    conn_io(pc);
}

/* ---- Connecting --------------------------------------------------------------------------- */

/* Starts an attempt; hostaddr is NULL (a socket, or the URL's own hostaddr) or n resolved
 * addresses separated by ',', for which host is repeated n times. */
static void conn_open(pg_conn_t *pc, const char *hostaddr, int n)
{
    const char *keys[PG_KEYS_MAX + 3], *vals[PG_KEYS_MAX + 3];
    int k = 0;
    for (int i = 0; i < pg_cfg.n; i++, k++) {
        keys[k] = pg_cfg.keys[i];
        vals[k] = pg_cfg.vals[i];
    }
    char *hosts = NULL;
    if (pg_cfg.host != NULL) {
        size_t hl = strlen(pg_cfg.host) + 1;
        hosts = xmalloc(hl * (size_t)(n > 0 ? n : 1));
        for (int i = 0; i < (n > 0 ? n : 1); i++) {
            memcpy(hosts + (size_t)i * hl, pg_cfg.host, hl);
            hosts[(size_t)i * hl + hl - 1] = ',';
        }
        hosts[hl * (size_t)(n > 0 ? n : 1) - 1] = '\0';
        keys[k] = "host";
        vals[k++] = hosts;
    }
    if (hostaddr != NULL || pg_cfg.hostaddr != NULL) {
        keys[k] = "hostaddr";
        vals[k++] = hostaddr ? hostaddr : pg_cfg.hostaddr;
    }
    keys[k] = vals[k] = NULL;
    pc->conn = PQconnectStartParams(keys, vals, 0);
    free(hosts);
    char err[256];
    if (pc->conn == NULL || PQstatus(pc->conn) == CONNECTION_BAD) {
        attempt_failed(pc, "pg.connect_failed", conn_error(pc->conn, err, sizeof(err)));
        return;
    }
    pc->state = PG_CONNECTING;
    uv_timer_start(&pc->timer, on_deadline, pg_cfg.connect_ms, 0);
    /* libpq has begun the connect: as if PQconnectPoll() had said "writing". */
    if (poll_watch(pc, UV_WRITABLE) != 0)
        attempt_failed(pc, "pg.connect_failed", "poll");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pg_conn_t *pc = req->data;
    pc->gai_pending = false;
    char addrs[PG_ADDRS_MAX * PG_IP_MAX] = "";
    int n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < PG_ADDRS_MAX; ai = ai->ai_next) {
        char ip[PG_IP_MAX];
        if (uv_ip_name(ai->ai_addr, ip, sizeof(ip)) != 0)
            continue;
        size_t at = strlen(addrs);
        snprintf(addrs + at, sizeof(addrs) - at, "%s%s", n ? "," : "", ip);
        n++;
    }
    uv_freeaddrinfo(res);
    if (pc->closing) {
        if (pc->timer_closed)
            free(pc);
        return;
    }
    if (n == 0) {
        attempt_failed(pc, "pg.resolve_failed", status ? uv_strerror(status) : "no address");
        return;
    }
    conn_open(pc, addrs, n);
}

static bool host_is_literal(const char *h)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

static void pg_connect(pg_conn_t *pc)
{
    if (pc->closing || pc->state != PG_DOWN)
        return;
    const char *h = pg_cfg.host;
    if (h == NULL || h[0] == '/' || pg_cfg.hostaddr != NULL) {
        conn_open(pc, NULL, 0); /* a Unix socket, or an address given: nothing to resolve */
        return;
    }
    if (host_is_literal(h)) {
        conn_open(pc, h, 1);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    pc->gai.data = pc;
    int rc = uv_getaddrinfo(&pc->thr->loop, &pc->gai, on_resolved, h, NULL, &hints);
    if (rc != 0) {
        attempt_failed(pc, "pg.resolve_failed", uv_strerror(rc));
        return;
    }
    pc->gai_pending = true;
    pc->state = PG_RESOLVING;
}

/* ---- The thread's side -------------------------------------------------------------------- */

int pg_init_net(netthr_t *thr)
{
    if (!pg_cfg.on || thr->idx != 0)
        return 0;
    pg_conn_t *pc = xcalloc(1, sizeof(*pc));
    pc->thr = thr;
    uv_timer_init(&thr->loop, &pc->timer);
    pc->timer.data = pc;
    thr->pg = pc;
    publish(pc);
    pg_connect(pc);
    return 0;
}

void pg_command_net(netthr_t *thr, net_out_t *o)
{
    pg_conn_t *pc = thr->pg;
    if (pc == NULL || pc->closing)
        return; /* the command's free_fn answers "unreachable" */
    pg_query_t *q = pg_take_query(o);
    if (q == NULL)
        return;
    if (pc->state != PG_READY && !(q->flags & NET_PG_QUEUE)) {
        pg_answer_status(q, NET_PG_UNREACHABLE, &pc->lost);
        return;
    }
    if (pc->queue.n >= PG_QUEUE_MAX || pc->queue.bytes + q->bytes > PG_QUEUE_MAX_BYTES) {
        pg_answer_status(q, NET_PG_FULL, &pc->lost);
        return;
    }
    fifo_push(&pc->queue, q);
    if (pc->state == PG_READY && (!pump(pc) || !flush_watch(pc)))
        return;
    publish(pc);
}

static void timer_closed(uv_handle_t *h)
{
    pg_conn_t *pc = h->data;
    pc->timer_closed = true;
    if (!pc->gai_pending)
        free(pc);
}

/* Answers what is left UNREACHABLE: every query in flight (not yet answered) and waiting. */
static void abandon_all(pg_conn_t *pc)
{
    uint32_t queries = 0, writes = 0;
    pg_query_t *q;
    pc->lost.quiet = true;
    while ((q = fifo_pop(&pc->flight)) != NULL) {
        if (q->answered) {
            pg_query_done(q);
            continue;
        }
        queries++;
        writes += (q->flags & NET_PG_QUEUE) != 0;
        pg_answer_status(q, NET_PG_UNREACHABLE, &pc->lost);
    }
    while ((q = fifo_pop(&pc->queue)) != NULL) {
        queries++;
        writes += (q->flags & NET_PG_QUEUE) != 0;
        pg_answer_status(q, NET_PG_UNREACHABLE, &pc->lost);
    }
    if (queries > 0)
        log_warn("pg.abandoned", LOG_I("queries", queries), LOG_I("writes", writes));
}

void pg_stop_net(netthr_t *thr)
{
    pg_conn_t *pc = thr->pg;
    if (pc == NULL)
        return;
    thr->pg = NULL;
    pc->closing = true;
    abandon_all(pc);
    conn_drop(pc);
    publish(pc);
    if (pc->gai_pending)
        uv_cancel((uv_req_t *)&pc->gai);
    uv_close((uv_handle_t *)&pc->timer, timer_closed);
}
