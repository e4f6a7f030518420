/* Per-actor timers on one binary min-heap; see the CONTRACT in timer.h. */
#include "actors/timer.h"

#include <ck_pr.h>
#include <pthread.h>
#include <stdlib.h>

#include "actors/sched.h"
#include "base/util.h"

#define TIMER_HEAP_MIN 64

static struct {
    pthread_mutex_t lock;
    actor_timer_t **heap; /* {lock} */
    int n;                /* {lock} */
    int cap;              /* {lock} */
    uint64_t next_due;    /* [atomic, any] copy of heap[0]->due_ns for lock-free peeks */
} T = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_due = UINT64_MAX};

static bool earlier(const actor_timer_t *a, const actor_timer_t *b)
{
    return a->due_ns < b->due_ns;
}

static void heap_set(int i, actor_timer_t *t)
{
    T.heap[i] = t;
    t->heap_idx = i;
}

static void sift_up(int i)
{
    actor_timer_t *t = T.heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!earlier(t, T.heap[p]))
            break;
        heap_set(i, T.heap[p]);
        i = p;
    }
    heap_set(i, t);
}

static void sift_down(int i)
{
    actor_timer_t *t = T.heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= T.n)
            break;
        if (c + 1 < T.n && earlier(T.heap[c + 1], T.heap[c]))
            c++;
        if (!earlier(T.heap[c], t))
            break;
        heap_set(i, T.heap[c]);
        i = c;
    }
    heap_set(i, t);
}

/* Publishes the earliest deadline for lock-free peeks. Caller holds T.lock. */
static void publish_next_locked(void)
{
    /*
     * Relaxed store: the value is a hint. A worker that reads a stale value either fires
     * nothing (and re-reads under the lock next time) or sleeps until a later deadline, which
     * sched_wake_for_timer() corrects by signalling it.
     */
    ck_pr_store_64(&T.next_due, T.n ? T.heap[0]->due_ns : UINT64_MAX);
}

static void heap_insert_locked(actor_timer_t *t)
{
    if (T.n == T.cap) {
        T.cap = T.cap ? T.cap * 2 : TIMER_HEAP_MIN;
        T.heap = xrealloc(T.heap, (size_t)T.cap * sizeof(*T.heap));
    }
    heap_set(T.n++, t);
    sift_up(t->heap_idx);
}

static void heap_remove_locked(actor_timer_t *t)
{
    int i = t->heap_idx;
    actor_timer_t *last = T.heap[--T.n];
    t->heap_idx = -1;
    if (i == T.n)
        return;
    heap_set(i, last);
    sift_down(i);
    sift_up(last->heap_idx);
}

actor_timer_t *actor_timer_new(actor_t *owner, uint32_t msg_type, void *data)
{
    actor_timer_t *t = xcalloc(1, sizeof(*t));
    t->owner = owner;
    t->msg_type = msg_type;
    t->data = data;
    t->refs = 1;
    t->heap_idx = -1;
    return t;
}

/* Drops one reference to the timer object. Caller holds T.lock; returns true to free it. */
static bool timer_release_locked(actor_timer_t *t)
{
    return --t->refs == 0;
}

void actor_timer_free(actor_timer_t *t)
{
    if (t == NULL)
        return;
    actor_timer_stop(t);
    pthread_mutex_lock(&T.lock);
    bool last = timer_release_locked(t);
    pthread_mutex_unlock(&T.lock);
    if (last)
        free(t);
}

static void timer_msg_free(msg_t *m)
{
    timer_msg_t *tm = (timer_msg_t *)m;
    pthread_mutex_lock(&T.lock);
    bool last = timer_release_locked(tm->timer);
    pthread_mutex_unlock(&T.lock);
    if (last)
        free(tm->timer);
    msg_block_free(tm);
}

void actor_timer_start(actor_timer_t *t, uint64_t delay_ms, uint64_t repeat_ms)
{
    uint64_t due = clock_now_ns() + delay_ms * NS_PER_MS;
    bool earliest;
    pthread_mutex_lock(&T.lock);
    t->seq++;
    t->due_ns = due;
    t->repeat_ns = repeat_ms * NS_PER_MS;
    if (t->heap_idx >= 0) {
        sift_down(t->heap_idx);
        sift_up(t->heap_idx);
    } else {
        actor_ref(t->owner); /* an armed timer keeps its actor alive */
        heap_insert_locked(t);
    }
    earliest = T.heap[0] == t;
    publish_next_locked();
    pthread_mutex_unlock(&T.lock);
    if (earliest)
        sched_wake_for_timer(due);
}

void actor_timer_stop(actor_timer_t *t)
{
    bool was_armed = false;
    pthread_mutex_lock(&T.lock);
    t->seq++;
    if (t->heap_idx >= 0) {
        heap_remove_locked(t);
        publish_next_locked();
        was_armed = true;
    }
    pthread_mutex_unlock(&T.lock);
    if (was_armed)
        actor_unref(t->owner);
}

bool actor_timer_armed(const actor_timer_t *t)
{
    pthread_mutex_lock(&T.lock);
    bool armed = t->heap_idx >= 0;
    pthread_mutex_unlock(&T.lock);
    return armed;
}

bool actor_timer_is_current(const msg_t *m)
{
    const timer_msg_t *tm = (const timer_msg_t *)m;
    pthread_mutex_lock(&T.lock);
    bool current = tm->timer->seq == tm->seq;
    pthread_mutex_unlock(&T.lock);
    return current;
}

uint64_t timer_next_due_ns(void)
{
    return ck_pr_load_64(&T.next_due);
}

int timer_armed_count(void)
{
    pthread_mutex_lock(&T.lock);
    int n = T.n;
    pthread_mutex_unlock(&T.lock);
    return n;
}

#define TIMER_FIRE_BATCH 64

void timer_fire_due(uint64_t now_ns)
{
    for (;;) {
        timer_msg_t *out[TIMER_FIRE_BATCH];
        actor_t *unref[TIMER_FIRE_BATCH];
        int n = 0, n_unref = 0;
        pthread_mutex_lock(&T.lock);
        while (T.n > 0 && T.heap[0]->due_ns <= now_ns && n < TIMER_FIRE_BATCH) {
            actor_timer_t *t = T.heap[0];
            timer_msg_t *tm = MSG_NEW(timer_msg_t, t->msg_type);
            tm->hdr.flags = MSG_F_TIMER;
            tm->hdr.free_fn = timer_msg_free;
            tm->timer = t;
            t->refs++;
            tm->seq = t->seq;
            /* The message carries the timer's reference until it is delivered. */
            actor_ref(t->owner);
            out[n++] = tm;
            if (t->repeat_ns) {
                t->due_ns = now_ns + t->repeat_ns;
                sift_down(0);
            } else {
                heap_remove_locked(t);
                unref[n_unref++] = t->owner;
            }
        }
        bool more = T.n > 0 && T.heap[0]->due_ns <= now_ns;
        publish_next_locked();
        pthread_mutex_unlock(&T.lock);
        for (int i = 0; i < n; i++) {
            actor_t *owner = out[i]->timer->owner;
            actor_send(owner, &out[i]->hdr);
            actor_unref(owner);
        }
        for (int i = 0; i < n_unref; i++)
            actor_unref(unref[i]);
        if (!more)
            return;
    }
}
