/*
 * pg: the parts of PostgreSQL (SPEC 13) shared by pgquery.c (configuration, queries, answers,
 * metrics) and pg.c (the connection on the first network thread). Private to net/.
 *
 * CONTRACT
 *   pg_cfg and the set-up text: written by the main thread before net_start(), read-only after.
 *   A pg_query_t belongs to the caller of net_pg_query() until it is posted, then to the first
 *   network thread (or, for a command no thread took, to whoever frees the command), which
 *   finishes it exactly once: an answer (or a log line when it has no target), then
 *   pg_query_done().
 */
#ifndef SB_NET_PG_H
#define SB_NET_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net_int.h"

#define PG_KEYS_MAX 48 /* libpq options a URL may set */

/* Where to connect, from SWITCHBOARD_DATABASE_URL. */
typedef struct pg_cfg {
    bool on;
    int n;                   /* the options below, as PQconnectStartParams() takes them */
    char *keys[PG_KEYS_MAX]; /* the URL's options but host, hostaddr and connect_timeout, */
    char *vals[PG_KEYS_MAX]; /* then ours (client_encoding, keepalives) unless it set them */
    char *host;              /* NULL: libpq's default Unix socket; "/..." a socket folder */
    char *hostaddr;          /* the URL's own hostaddr (then host is not resolved) */
    uint32_t connect_ms;     /* an attempt not connected by then is dropped */
} pg_cfg_t;

extern pg_cfg_t pg_cfg;

/* One query: this header, its params' pointers, then their texts, in one allocation. */
typedef struct pg_query {
    struct pg_query *next; /* in the queue or in flight */
    actor_t *target;       /* a reference; NULL when nobody wants the answer (or once answered) */
    uint64_t cookie;
    const char *sql; /* static */
    unsigned flags;  /* NET_PG_QUEUE */
    int nparams;
    uint8_t resends;      /* times sent again after the connection broke with it in flight */
    bool answered;        /* in flight: its result has been answered; its sync is awaited */
    size_t bytes;         /* the allocation: what it counts against the queue's bound */
    uint64_t t0_ns;       /* when it was sent */
    const char *params[]; /* nparams texts, NULL for SQL NULL */
} pg_query_t;

/* Queries nobody hears of (no target) that were not run: counted, logged at most once a
 * second. [first network thread] */
typedef struct pg_lost {
    uint64_t total;
    uint64_t logged_ns;
    bool quiet; /* the stop: counted, and logged once as pg.abandoned */
} pg_lost_t;

/* pgquery.c */
/* The set-up statements, or NULL when there are none. */
const char *pg_setup(void);
/* Publishes the connection's state for net_pg_ready(), the metrics and the drain. */
void pg_publish(bool ready, uint32_t waiting);
/* Takes the query out of an OUT_PG command (whose free_fn then has nothing to answer). */
pg_query_t *pg_take_query(net_out_t *o);
/* Answers q with result r (OK with its rows, or FAILED) and marks it answered; q stays the
 * caller's (in flight until its sync). */
void pg_answer_result(pg_query_t *q, const PGresult *r);
/* Answers q FAILED with error (a statement libpq refused to send) and frees it. */
void pg_answer_failed(pg_query_t *q, const char *error);
/* Answers q UNREACHABLE or FULL and frees it; without a target it is logged (counted in lost,
 * when given, else one line each). Thread: any. */
void pg_answer_status(pg_query_t *q, net_pg_status_t status, pg_lost_t *lost);
/* Frees q (its target reference too) and counts it done. */
void pg_query_done(pg_query_t *q);

#endif
