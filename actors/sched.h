/*
 * sched: runs actors over SWITCHBOARD_WORKERS worker threads, in two lanes.
 *
 * CONTRACT
 *   sched_start() and sched_stop() are called by the main thread only, once each.
 *   sched_enqueue() is called (by actor_send) from any thread, only by the push that made an
 *   actor's mailbox non-empty, so an actor is on at most one run queue and runs on at most one
 *   worker at a time.
 *   Lanes: a worker always takes a runnable realtime actor before a tools actor, except that
 *   after SCHED_STARVE_LIMIT consecutive realtime turns with tools waiting it takes one tools
 *   actor (tools work is delayed, never starved). A turn handles at most SCHED_BATCH_MSGS messages;
 *   an actor with more waiting goes to the back of its lane.
 *   Idle workers sleep on a futex word of their own, on a LIFO stack (no spinning on 2 cores:
 *   measured, it costs more CPU than the wakes it saves). An enqueue wakes a sleeper, after
 *   unlocking, only when the work needs one: from a network thread, when no worker is awake
 *   outside a tools turn (an awake worker looks at the run queues before it parks, so it takes
 *   the work), or SCHED_SHARE_MIN actors wait, or the work is tools work; from a worker, when
 *   other work waits already. A worker that takes an actor wakes one more sleeper when tools
 *   work waits or SCHED_SHARE_MIN actors do. Network threads defer their enqueues to the end
 *   of each loop pass (sched_defer_wakes/sched_flush): one lock and one wake per batch. Timers
 *   (actors/timer.h) fire from the workers: an idle worker sleeps until the earliest deadline.
 *   Metrics: the delay from enqueue to the start of a turn is observed per lane in
 *   switchboard_actor_queue_seconds{lane}.
 */
#ifndef SB_ACTORS_SCHED_H
#define SB_ACTORS_SCHED_H

#include <stdint.h>

#include "actors/actor.h"

#define SCHED_BATCH_MSGS   64
#define SCHED_STARVE_LIMIT 32
#define SCHED_DEFER_MAX    16 /* actors a deferring thread collects before it flushes anyway */
#define SCHED_SHARE_MIN    8  /* waiting realtime actors worth waking a second worker for */

typedef struct sched_config {
    int workers;    /* worker threads, >= 1 */
    int max_actors; /* live actors allowed */
    uint32_t mailbox_cap;
} sched_config_t;

/* Starts the workers. Returns 0 or -errno. Thread: main. */
int sched_start(const sched_config_t *cfg);

/*
 * Stops every live actor (MSG_ACTOR_STOP), waits up to timeout_ms for their stop behaviours and
 * for all actors to be freed, then stops and joins the workers. Returns the number of actors
 * still alive (leaked) at the end, 0 on a clean stop. Thread: main.
 */
int sched_stop(uint64_t timeout_ms);

/* Puts a on the run queue of its lane. Thread: any (see CONTRACT). */
void sched_enqueue(actor_t *a);

/*
 * Makes sched_enqueue() on the calling thread collect actors instead of handing each one over
 * (one lock and at most one wake per pass of an event loop instead of one per message). The
 * thread must call sched_flush() before it can block: a network thread does it from a uv
 * prepare and a uv check handle, so every loop pass ends with a flush. Thread: the caller.
 */
void sched_defer_wakes(void);
/* Hands the actors collected by this thread to the workers, waking one. Thread: the caller. */
void sched_flush(void);

/* The configured mailbox capacity (for actor_spawn). Thread: any. */
uint32_t sched_mailbox_cap(void);

/* Registry of live actors (actor.c uses these). Thread: any. */
int sched_register(actor_t *a);
void sched_unregister(actor_t *a);

/* Live actors right now (advisory). Thread: any. */
int sched_live_actors(void);
/* Sum of all mailbox depths (advisory; walks the registry). Thread: any. */
uint64_t sched_mailbox_depth(void);

/* The scheduler calls this to learn about timers; see timer.h. */
void sched_wake_for_timer(uint64_t due_ns);

#endif
