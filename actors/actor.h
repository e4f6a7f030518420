/*
 * actor: private state, a mailbox, and a behaviour run by one worker at a time.
 *
 * CONTRACT
 *   Spawning, sending, referencing and stopping are callable from any thread (workers, network
 *   threads, the main thread). A behaviour (type->handle) runs on one worker at a time for a
 *   given actor, and every turn of an actor happens-after its previous turn (the hand-off goes
 *   through the mailbox count and the scheduler lock), so an actor's state needs no locks.
 *   Lifetime: an actor is reference counted. actor_spawn() returns it with one reference owned by
 *   the caller; anyone who keeps a pointer to send to it later holds a reference. The scheduler
 *   holds one while the actor is queued or running, and an armed timer holds one. The memory is
 *   freed when the last reference goes, after type->stop has run.
 *   Messages: actor_send() moves ownership of the message to the actor. After the actor has
 *   stopped, messages sent to it are freed unread.
 *
 * An actor is embedded as the FIRST member of its state struct (like libuv handles), allocated
 * with xmalloc/xcalloc; the runtime frees the whole block with free().
 */
#ifndef SB_ACTORS_ACTOR_H
#define SB_ACTORS_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "mailbox/mbox.h"

typedef enum lane {
    LANE_REALTIME = 0, /* audio-carrying actors: sessions, upstreams */
    LANE_TOOLS = 1,    /* tool-calling actors: supervisor, MCP, store, routers */
} lane_t;
#define LANE_COUNT 2

typedef struct actor actor_t;

typedef struct actor_type {
    const char *name;
    /* Handles one message; owns m (frees it or passes it on). Thread: the actor's worker. */
    void (*handle)(actor_t *self, msg_t *m);
    /*
     * Releases what the state owns (timers, references to other actors) when the actor stops.
     * Runs exactly once, on the actor's worker, or on the thread dropping the last reference of
     * an actor that was never stopped. May be NULL.
     */
    void (*stop)(actor_t *self);
} actor_type_t;

struct actor {
    /* Touched by any thread. */
    mbox_t mbox;   /* producers: any thread; consumer: the worker running the actor */
    uint32_t refs; /* [atomic, any] references; 0 = being freed */

    /* Touched by the scheduler, under its lock. */
    actor_t *run_next;  /* {sched lock, or the deferring thread before sched_flush} run queue link */
    uint64_t queued_ns; /* {sched lock} when it was last put on a run queue */
    actor_t *live_prev; /* {registry lock} list of live actors, for shutdown and metrics */
    actor_t *live_next; /* {registry lock} */

    /* Owner-only or immutable, on their own cache line. */
    char pad_[MBOX_CACHE_LINE];
    const actor_type_t *type; /* immutable */
    uint64_t id;              /* immutable, unique per process */
    uint8_t lane;             /* immutable */
    bool stop_requested;      /* [owner] */
    bool stopped;             /* [owner] type->stop has run */
};

/* Runtime message types. */
#define MSG_ACTOR_STOP (MSG_TYPE_ACTOR_BASE + 1)

/*
 * Initialises a (the first member of a zeroed heap block) as an actor of this type on this lane,
 * registered with the scheduler, and returns 0 with one reference owned by the caller.
 * Returns -EAGAIN when SWITCHBOARD_MAX_ACTORS actors are live and -ESHUTDOWN once the runtime
 * is stopping; the caller still owns and frees the block then. Thread: any.
 */
int actor_spawn(actor_t *a, const actor_type_t *type, lane_t lane);

/* Queues m for a; the caller must hold a reference to a. Thread: any. */
void actor_send(actor_t *a, msg_t *m);

void actor_ref(actor_t *a);
/* Adds a reference unless the count is already 0; returns whether it did. Thread: any. */
bool actor_try_ref(actor_t *a);
/* Drops a reference; the last one stops (if needed) and frees the actor. Thread: any. */
void actor_unref(actor_t *a);

/* Asks a to stop: it handles the messages queued before this request, then stops. Thread: any. */
void actor_stop(actor_t *a);

/* Stops the running actor after the current message. Thread: owner. */
void actor_stop_self(actor_t *self);

/* Runs one turn of a: at most batch messages. Returns the messages still waiting. Thread: worker.
 */
uint32_t actor_run(actor_t *a, uint32_t batch);

#endif
