/* MPSC mailbox on a Concurrency Kit stack; see the CONTRACT in mbox.h. */
#include "mailbox/mbox.h"

#include <ck_pr.h>
#include <stddef.h>

/* The private list reuses the stack link of each message as its `next` pointer. */
#define MSG_NEXT(m)        ((msg_t *)(m)->link.next)
#define MSG_SET_NEXT(m, n) ((m)->link.next = (ck_stack_entry_t *)(n))

/* Fraction of the capacity kept for control messages: audio may use cap - cap / RESERVE_DIV. */
#define MBOX_RESERVE_DIV 8
/* A producer refuses audio once this many times cap messages are waiting. */
#define MBOX_HARD_FACTOR 2

static uint32_t audio_limit(const mbox_t *mb)
{
    return mb->cap - mb->cap / MBOX_RESERVE_DIV;
}

void mbox_init(mbox_t *mb, uint32_t cap)
{
    ck_stack_init(&mb->in);
    mb->count = 0;
    mb->cap = cap ? cap : 1;
    mb->rejected = 0;
    mb->head = mb->tail = NULL;
    mb->audio_queued = 0;
    mb->consumed = 0;
    mb->dropped = 0;
}

void mbox_destroy(mbox_t *mb)
{
    msg_t *m;
    while ((m = mbox_pop_sc(mb)) != NULL)
        msg_free(m);
    mbox_done_sc(mb);
}

int mbox_push_mp(mbox_t *mb, msg_t *m)
{
    if (m->flags & MSG_F_AUDIO) {
        /*
         * Relaxed read: the bound is advisory (a few producers racing past it overshoot by at
         * most one message each), and no data is published through `count`.
         */
        uint32_t waiting = ck_pr_load_32(&mb->count);
        if (waiting >= mb->cap * MBOX_HARD_FACTOR) {
            ck_pr_inc_64(&mb->rejected); /* advisory statistic */
            msg_free(m);
            return MBOX_REJECTED;
        }
    }
    /*
     * Count first, then publish. A consumer that sees the message therefore also sees a count
     * that includes it, so its mbox_done_sc() can never reach zero while a message it has not
     * consumed is on the stack. The fetch-and-add is a full barrier on x86 (lock xadd); the
     * explicit fence keeps the order on weaker machines: it pairs with the fence after the
     * consumer's decrement in mbox_done_sc().
     */
    uint32_t prev = ck_pr_faa_32(&mb->count, 1);
    ck_pr_fence_atomic_store();
    ck_stack_push_upmc(&mb->in, &m->link);
    return prev == 0 ? MBOX_WAS_EMPTY : MBOX_QUEUED;
}

/* Removes the oldest audio messages from the private list until the audio fits its share. */
static void drop_oldest_audio(mbox_t *mb)
{
    uint32_t limit = audio_limit(mb);
    msg_t *prev = NULL, *m = mb->head;
    while (m != NULL && mb->audio_queued > limit) {
        msg_t *next = MSG_NEXT(m);
        if (m->flags & MSG_F_AUDIO) {
            if (prev)
                MSG_SET_NEXT(prev, next);
            else
                mb->head = next;
            if (mb->tail == m)
                mb->tail = prev;
            msg_free(m);
            mb->audio_queued--;
            mb->consumed++;
            mb->dropped++;
        } else {
            prev = m;
        }
        m = next;
    }
}

/* Takes everything producers pushed and appends it, oldest first, to the private list. */
static void refill(mbox_t *mb)
{
    ck_stack_entry_t *e = ck_stack_batch_pop_upmc(&mb->in);
    if (e == NULL)
        return;
    /* The stack is newest first: reverse it. */
    msg_t *first = NULL, *last = (msg_t *)e;
    uint32_t audio = 0;
    while (e != NULL) {
        ck_stack_entry_t *next = e->next;
        msg_t *m = (msg_t *)e; /* link is the first member of msg_t */
        MSG_SET_NEXT(m, first);
        first = m;
        audio += (m->flags & MSG_F_AUDIO) != 0;
        e = next;
    }
    if (mb->tail)
        MSG_SET_NEXT(mb->tail, first);
    else
        mb->head = first;
    mb->tail = last;
    mb->audio_queued += audio;
    if (mb->audio_queued > audio_limit(mb))
        drop_oldest_audio(mb);
}

msg_t *mbox_pop_sc(mbox_t *mb)
{
    if (mb->head == NULL)
        refill(mb);
    msg_t *m = mb->head;
    if (m == NULL)
        return NULL;
    mb->head = MSG_NEXT(m);
    if (mb->head == NULL)
        mb->tail = NULL;
    m->link.next = NULL;
    if (m->flags & MSG_F_AUDIO)
        mb->audio_queued--;
    mb->consumed++;
    return m;
}

uint32_t mbox_done_sc(mbox_t *mb)
{
    uint32_t n = mb->consumed;
    mb->consumed = 0;
    if (n == 0)
        return ck_pr_load_32(&mb->count);
    /*
     * Pairs with the producer's fetch-and-add: when this decrement reaches zero, every message
     * counted so far has been consumed, and the next push observes zero and re-schedules us.
     */
    ck_pr_fence_atomic();
    uint32_t prev = ck_pr_faa_32(&mb->count, (uint32_t)-n);
    ck_pr_fence_atomic_load();
    return prev - n;
}

uint32_t mbox_depth(const mbox_t *mb)
{
    return ck_pr_load_32(&mb->count);
}
