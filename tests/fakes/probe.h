/*
 * probe: an actor that keeps every message it gets, for the test to take and read. It stands in
 * for any collaborator an actor under test talks to (the gate, the router, the pool, the store,
 * a supervisor run's observer, a chat registry): the test reads what arrived, in arrival order,
 * and answers by hand when the protocol wants an answer.
 *
 * CONTRACT
 *   probe_new()/probe_free(): the test's thread. The behaviour runs on a worker; probe_take(),
 *   probe_next(), probe_count() and probe_refs() may be called from any one other thread.
 *   A taken message belongs to the caller (msg_free()). A message that carries a reference
 *   without a free_fn (GATE_MSG_ADMIT's session) must be taken and its reference dropped by the
 *   test, as the real receiver would.
 */
#ifndef SB_TESTS_FAKES_PROBE_H
#define SB_TESTS_FAKES_PROBE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"

#define PROBE_WAIT_MS  5000                     /* how long probe_take()/probe_next() wait */
#define PROBE_MSG_SYNC (MSG_TYPE_TEST_BASE + 1) /* probe_count()'s marker, never kept */

typedef struct probe {
    actor_t actor;
    const char *name; /* immutable: for failure messages */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on every message kept */
    msg_t **msgs;        /* {lock} kept messages, oldest first */
    size_t n, cap;       /* {lock} */
    uint64_t received;   /* {lock} messages kept so far, taken or not */
    uint64_t syncs_sent; /* {lock} probe_count()'s markers sent */
    uint64_t syncs_seen; /* {lock} and handled */
} probe_t;

/* A probe on lane with one reference owned by the caller. */
probe_t *probe_new(const char *name, lane_t lane);
/* Drops the caller's reference; the probe frees what it still keeps when it stops. */
void probe_free(probe_t *p);

/* Takes the oldest message of type, waiting PROBE_WAIT_MS at most; fails the test otherwise. */
msg_t *probe_take(probe_t *p, uint32_t type);
/* Takes the oldest message of any type, waiting PROBE_WAIT_MS at most; fails the test otherwise. */
msg_t *probe_next(probe_t *p);
/*
 * Messages of type kept and not taken (0 = any type), once every message sent to the probe
 * before this call has arrived (a marker sent through its own mailbox; PROBE_WAIT_MS at most):
 * a count of 0 means nothing was sent before, not only that nothing has been handled yet.
 */
int probe_count(probe_t *p, uint32_t type);
/* The probe's reference count right now (the test's own included). */
uint32_t probe_refs(probe_t *p);
/* Waits (PROBE_WAIT_MS at most) until the reference count is refs; fails the test otherwise. */
void probe_wait_refs(probe_t *p, uint32_t refs);

/* Takes the oldest message of type T (a struct type) with message type `type`. */
#define PROBE_TAKE(p, T, type) ((T *)probe_take((p), (type)))

#endif
