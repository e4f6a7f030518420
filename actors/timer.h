/*
 * timer: per-actor timers that deliver a message to their actor.
 *
 * CONTRACT
 *   A timer is a heap object created and used only by its owner: new, start, stop, free and
 *   actor_timer_is_current() run on the actor's worker (or before the actor first runs).
 *   Expiry: a worker thread takes due timers from a heap (guarded by the timer lock) and sends
 *   the owner a message of the timer's type with MSG_F_TIMER set. A timer restarted or stopped
 *   after it fired, but before its message was handled, makes that message stale: the runtime
 *   drops stale timer messages before they reach the behaviour, so an actor never sees an expiry
 *   of a timer it has since stopped or re-armed.
 *   An armed timer holds a reference to its actor; stopping it (or a one-shot firing) drops it.
 *   An actor's stop behaviour must free its timers. The timer object itself is reference
 *   counted: an expiry message in flight keeps it alive after actor_timer_free(), so the
 *   staleness check never reads freed memory.
 */
#ifndef SB_ACTORS_TIMER_H
#define SB_ACTORS_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"

typedef struct actor_timer {
    actor_t *owner;     /* immutable after new */
    uint32_t msg_type;  /* immutable after new */
    void *data;         /* [owner] for the owner's use (e.g. what the timer is about) */
    int refs;           /* {timer lock} the owner's handle + expiry messages in flight */
    uint32_t seq;       /* {timer lock} written by the owner; bumps on every start/stop */
    uint64_t due_ns;    /* {timer lock} */
    uint64_t repeat_ns; /* {timer lock} 0 = one-shot */
    int heap_idx;       /* {timer lock} -1 when not armed */
} actor_timer_t;

/* The message an expiry delivers (hdr.type = the timer's msg_type). */
typedef struct timer_msg {
    msg_t hdr;
    actor_timer_t *timer; /* a reference, released when the message is freed */
    uint32_t seq;
} timer_msg_t;

/* Creates a disarmed timer delivering msg_type to owner. Thread: owner. */
actor_timer_t *actor_timer_new(actor_t *owner, uint32_t msg_type, void *data);
/* Stops t and releases the owner's handle. NULL is ignored. Thread: owner. */
void actor_timer_free(actor_timer_t *t);
/* (Re)arms t to fire after delay_ms, then every repeat_ms if repeat_ms > 0. Thread: owner. */
void actor_timer_start(actor_timer_t *t, uint64_t delay_ms, uint64_t repeat_ms);
/* Disarms t; a pending expiry message becomes stale. Thread: owner. */
void actor_timer_stop(actor_timer_t *t);
bool actor_timer_armed(const actor_timer_t *t);

/* True when m (a MSG_F_TIMER message) is the current expiry of its timer. Thread: owner. */
bool actor_timer_is_current(const msg_t *m);

/* Scheduler side. Fires every timer due at now_ns. Thread: worker. */
void timer_fire_due(uint64_t now_ns);
/* Deadline of the earliest armed timer, UINT64_MAX when none (advisory). Thread: any. */
uint64_t timer_next_due_ns(void);
/* Number of armed timers (tests, shutdown). Thread: any. */
int timer_armed_count(void);

#endif
