/*
 * What the supervisor's run actors (supervisor.c) and its pool (suppool.c) share.
 * Thread: the actors' workers.
 */
#ifndef SB_AGENTS_SUPERVISOR_INT_H
#define SB_AGENTS_SUPERVISOR_INT_H

#include <stdbool.h>

#include "agents/supervisor/supervisor.h"

/* run -> pool: the run has answered (or given up) and stops. */
typedef struct run_done_msg {
    msg_t hdr;
    actor_t *run; /* compared only */
} run_done_msg_t;

/* Spawns a run for q, moving what the run keeps out of q (the caller still frees q), and
 * returns the run's reference in *out; false when the runtime refused. The run takes references
 * of its own to pool and store. */
bool supervisor_run_spawn(supervisor_req_msg_t *q, actor_t *pool, actor_t *store, actor_t **out);

/* The outcome code (SUP_REASON_*) a spoken fallback stands for. */
const char *supervisor_fallback_reason(const char *say);

#endif
