/*
 * mbox: an actor's mailbox, a bounded-by-policy multi-producer / single-consumer message queue.
 *
 * CONTRACT
 *   Roles: any number of threads may call mbox_push_mp() at once; exactly one thread at a time
 *   (the consumer, i.e. the worker running the actor, or the network thread owning an inbox)
 *   calls the _sc functions. The scheduler guarantees the single consumer: only the push that
 *   takes the queue from empty to non-empty (return value MBOX_WAS_EMPTY) hands the queue to a
 *   consumer, and the consumer gives it back in mbox_done_sc() when the count returns to zero.
 *   Progress: push is lock-free (one fetch-and-add and one CAS loop on the stack head; a CAS
 *   fails only when another producer succeeded). Pop is wait-free (one atomic exchange per
 *   refill, then private list walks). No operation spins waiting on another thread, so a
 *   preempted producer never stalls the others (unlike ck_ring's MP enqueue, which we avoid:
 *   see reference/c-dependencies.md section 6).
 *   Ordering: a push happens-before the pop that returns the message (ck_stack_push_upmc's
 *   store fence + CAS pairs with ck_stack_batch_pop_upmc's exchange + load fence), so the
 *   consumer sees the whole payload. Messages of one producer are popped in push order (FIFO per
 *   producer); messages of different producers are ordered by their CAS on the stack head.
 *   Ownership: a message belongs to the producer until mbox_push_mp() returns, then to the
 *   mailbox, then to whoever pops it.
 *
 * Design: producers push onto a Concurrency Kit intrusive stack (ck_stack_push_upmc). The
 * consumer takes the whole stack with one exchange (ck_stack_batch_pop_upmc), reverses it into a
 * private FIFO list and pops from that. There is no ABA problem because the only removal is the
 * batch exchange, so a popped message can be freed at once. `count` counts messages pushed but
 * not yet consumed, including a push in flight between its increment and its CAS; it decides
 * the empty -> non-empty hand-off and drives the backpressure policy.
 *
 * Backpressure (SPEC 3): `cap` is SWITCHBOARD_MAILBOX_CAP. Control messages are never dropped.
 * Audio messages (MSG_F_AUDIO) may fill only cap - cap/8 places: the rest is a reserve kept for
 * control. When the consumer refills its private list and finds more audio than that, it drops
 * the oldest audio first (counted in `dropped`). A producer that finds 2 * cap messages already
 * waiting (a consumer that is not running at all) drops its own new audio message instead, so
 * memory stays bounded even when the consumer is stalled.
 */
#ifndef SB_MAILBOX_MBOX_H
#define SB_MAILBOX_MBOX_H

#include <ck_cc.h>
#include <ck_stack.h>
#include <stdint.h>

#include "mailbox/msg.h"

#define MBOX_CACHE_LINE 64

typedef struct mbox {
    /* Producer side: written by every pushing thread. */
    ck_stack_t in;     /* [atomic, any] LIFO of pushed messages */
    uint32_t count;    /* [atomic, any] pushed and not yet consumed (includes pushes in flight) */
    uint32_t cap;      /* [immutable after init] SWITCHBOARD_MAILBOX_CAP */
    uint64_t rejected; /* [atomic, any] audio refused by producers at the hard bound */

    /* Consumer side, on its own cache line. */
    char pad_[MBOX_CACHE_LINE];
    msg_t *head;           /* [owner] oldest message of the private FIFO list */
    msg_t *tail;           /* [owner] newest message of the private FIFO list */
    uint32_t audio_queued; /* [owner] MSG_F_AUDIO messages in the private list */
    uint32_t consumed;     /* [owner] popped or dropped since the last mbox_done_sc() */
    uint64_t dropped;      /* [owner] audio dropped by the consumer-side policy, in total */
} mbox_t;

/* Results of mbox_push_mp(). */
#define MBOX_QUEUED    0 /* queued; some consumer already owns the mailbox */
#define MBOX_WAS_EMPTY 1 /* queued into an empty mailbox: the caller must hand it to a consumer */
#define MBOX_REJECTED  2 /* an audio message refused at the hard bound; it has been freed */

/* Initialises an empty mailbox holding up to cap messages (cap >= 1). Thread: owner. */
void mbox_init(mbox_t *mb, uint32_t cap);

/*
 * Frees every message still queued. No producer may push concurrently or afterwards.
 * Thread: owner.
 */
void mbox_destroy(mbox_t *mb);

/*
 * Queues m. Returns MBOX_WAS_EMPTY when this push made the mailbox non-empty (the caller must
 * then schedule the consumer), MBOX_QUEUED otherwise, or MBOX_REJECTED when m carried
 * MSG_F_AUDIO and the mailbox was at its hard bound (m was freed). Thread: any.
 */
int mbox_push_mp(mbox_t *mb, msg_t *m);

/*
 * Returns the oldest visible message, or NULL when none is visible yet (a push may still be in
 * flight; mbox_done_sc() tells whether more are coming). Applies the audio drop policy when it
 * refills its private list. Thread: the consumer.
 */
msg_t *mbox_pop_sc(mbox_t *mb);

/*
 * Gives back the messages consumed (popped or dropped) since the last call and returns how many
 * remain. When it returns 0 the consumer no longer owns the mailbox: the next push will return
 * MBOX_WAS_EMPTY. When it returns more than 0 the consumer still owns it and must run again.
 * Thread: the consumer.
 */
uint32_t mbox_done_sc(mbox_t *mb);

/* Messages waiting (advisory: may be stale by the time it returns). Thread: any. */
uint32_t mbox_depth(const mbox_t *mb);

#endif
