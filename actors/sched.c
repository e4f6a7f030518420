/* Worker threads, the two lanes and the registry of live actors; see the CONTRACT in sched.h. */
#include "actors/sched.h"

#include <ck_pr.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "actors/timer.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"

#define SCHED_STOP_POLL_US 1000

/*
 * Parking. An idle worker sleeps on a futex word of its own rather than on a condition
 * variable: glibc's pthread_cond_wait() takes the mutex back in its "contended" state, so the
 * worker's next unlock of S.lock made a FUTEX_WAKE system call with nobody waiting (measured at
 * 200 relay sessions: a quarter of the service's futex calls). A waker pops a worker off the
 * idle stack under S.lock and swaps its word to WORD_WOKEN; only when the worker had got as far
 * as WORD_SLEEPING does the waker make the FUTEX_WAKE call, after unlocking. The idle stack is
 * LIFO: the worker parked last, whose cache is warmest, runs first.
 */
enum { WORD_PARKING = 0, WORD_SLEEPING = 1, WORD_WOKEN = 2 };

typedef struct worker {
    pthread_t th;
    uint32_t word;          /* [atomic] WORD_*; under S.lock, anything but WORD_WOKEN means the
                             * worker is on the idle stack (pushing and popping hold the lock) */
    struct worker *next;    /* {lock} on the idle stack */
} worker_t;

static struct {
    pthread_mutex_t lock;
    actor_t *head[LANE_COUNT]; /* {lock} run queues, FIFO */
    actor_t *tail[LANE_COUNT]; /* {lock} */
    worker_t *idle_top;        /* {lock} parked workers, last parked on top */
    int idle;                  /* {lock} workers on the idle stack */
    int runnable;              /* {lock} actors on the run queues */
    int tools_running;         /* [atomic, any] workers in a tools turn (which may be long) */
    uint32_t starve;           /* {lock} consecutive realtime turns while tools waited */
    bool exiting;              /* {lock} workers leave their loop */
    worker_t *workers;         /* main thread only (each worker reads its own) */
    int n_workers;             /* immutable after start */
    uint32_t mailbox_cap;      /* immutable after start */
    int max_actors;            /* immutable after start */

    pthread_mutex_t reg_lock;
    actor_t *live;     /* {reg_lock} */
    int live_count;    /* [atomic, any] written under reg_lock, read anywhere (advisory) */
    bool spawn_closed; /* {reg_lock} */
} S = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .reg_lock = PTHREAD_MUTEX_INITIALIZER,
    .mailbox_cap = 1024,
    .max_actors = 100000,
};

uint32_t sched_mailbox_cap(void)
{
    return S.mailbox_cap;
}

int sched_register(actor_t *a)
{
    pthread_mutex_lock(&S.reg_lock);
    if (S.spawn_closed) {
        pthread_mutex_unlock(&S.reg_lock);
        return -ESHUTDOWN;
    }
    if (ck_pr_load_int(&S.live_count) >= S.max_actors) {
        pthread_mutex_unlock(&S.reg_lock);
        return -EAGAIN;
    }
    a->live_prev = NULL;
    a->live_next = S.live;
    if (S.live)
        S.live->live_prev = a;
    S.live = a;
    ck_pr_store_int(&S.live_count, S.live_count + 1);
    pthread_mutex_unlock(&S.reg_lock);
    return 0;
}

void sched_unregister(actor_t *a)
{
    pthread_mutex_lock(&S.reg_lock);
    if (a->live_prev)
        a->live_prev->live_next = a->live_next;
    else
        S.live = a->live_next;
    if (a->live_next)
        a->live_next->live_prev = a->live_prev;
    ck_pr_store_int(&S.live_count, S.live_count - 1);
    pthread_mutex_unlock(&S.reg_lock);
}

int sched_live_actors(void)
{
    return ck_pr_load_int(&S.live_count);
}

uint64_t sched_mailbox_depth(void)
{
    uint64_t sum = 0;
    pthread_mutex_lock(&S.reg_lock);
    for (actor_t *a = S.live; a; a = a->live_next)
        sum += mbox_depth(&a->mbox);
    pthread_mutex_unlock(&S.reg_lock);
    return sum;
}

/* Set on worker threads: a worker that enqueues will come back for work itself. */
static _Thread_local bool tl_is_worker;

/*
 * A thread that called sched_defer_wakes() (a network thread) collects the actors it makes
 * runnable during one pass of its event loop and hands them over under one lock with at most
 * one wake, in sched_flush(). Actors on this list are owned by the scheduler (their mailbox went
 * empty -> non-empty) but not yet visible to workers, so run_next is this thread's to use.
 */
static _Thread_local bool tl_defer;
static _Thread_local actor_t *tl_pend_head, *tl_pend_tail;
static _Thread_local uint32_t tl_pend_count;

/*
 * Takes the top worker off the idle stack and marks it woken. Returns it when it is (or may be)
 * asleep in the kernel, for wake_worker() after S.lock is released; NULL when there was no idle
 * worker or it had not gone to sleep yet (it sees WORD_WOKEN and does not). Caller holds S.lock.
 */
static worker_t *pop_idle_locked(void)
{
    worker_t *w = S.idle_top;
    if (w == NULL)
        return NULL;
    S.idle_top = w->next;
    w->next = NULL;
    S.idle--;
    return ck_pr_fas_32(&w->word, WORD_WOKEN) == WORD_SLEEPING ? w : NULL;
}

static void wake_worker(worker_t *w)
{
    if (w != NULL)
        syscall(SYS_futex, &w->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/*
 * Appends a to its lane and wakes a sleeping worker when the work needs one: an enqueue from
 * outside (a network thread), or from a worker when other work is already waiting. A worker
 * handing an actor to another (session -> upstream) picks it up itself after its current turn,
 * so waking a second worker would only cost a futex wake and a context switch. Caller holds
 * S.lock and, when this returns true, pops an idle worker and wakes it after unlocking (a worker
 * woken while the lock is still held would only block on it).
 */
static bool enqueue_locked(actor_t *a, uint64_t now_ns)
{
    int lane = a->lane;
    bool others_waiting = S.head[LANE_REALTIME] != NULL || S.head[LANE_TOOLS] != NULL;
    a->run_next = NULL;
    a->queued_ns = now_ns;
    if (S.tail[lane])
        S.tail[lane]->run_next = a;
    else
        S.head[lane] = a;
    S.tail[lane] = a;
    S.runnable++;
    if (S.idle == 0)
        return false;
    if (tl_is_worker)
        return others_waiting;
    /* From outside (a network thread): a worker that is awake and not in a tools turn (in a
     * realtime turn, short, or between turns, or woken and not yet running) looks at the run
     * queues under S.lock before it parks, so it takes the work; unless much is waiting, or
     * the work is tools work. */
    int awake_for_realtime = S.n_workers - S.idle - ck_pr_load_int(&S.tools_running);
    return lane == LANE_TOOLS || awake_for_realtime <= 0 || S.runnable >= SCHED_SHARE_MIN;
}

void sched_enqueue(actor_t *a)
{
    uint64_t now = clock_now_ns();
    if (tl_defer) {
        a->run_next = NULL;
        a->queued_ns = now;
        if (tl_pend_tail)
            tl_pend_tail->run_next = a;
        else
            tl_pend_head = a;
        tl_pend_tail = a;
        if (++tl_pend_count >= SCHED_DEFER_MAX)
            sched_flush();
        return;
    }
    pthread_mutex_lock(&S.lock);
    worker_t *w = enqueue_locked(a, now) ? pop_idle_locked() : NULL;
    pthread_mutex_unlock(&S.lock);
    wake_worker(w);
}

void sched_defer_wakes(void)
{
    tl_defer = true;
}

void sched_flush(void)
{
    if (tl_pend_head == NULL)
        return;
    bool wake = false;
    pthread_mutex_lock(&S.lock);
    for (actor_t *a = tl_pend_head, *next; a; a = next) {
        next = a->run_next;
        uint64_t queued = a->queued_ns;
        wake |= enqueue_locked(a, queued);
    }
    worker_t *w = wake ? pop_idle_locked() : NULL;
    pthread_mutex_unlock(&S.lock);
    tl_pend_head = tl_pend_tail = NULL;
    tl_pend_count = 0;
    wake_worker(w);
}

/* Takes the next actor by lane priority, or NULL. Caller holds S.lock. */
static actor_t *pick_locked(void)
{
    actor_t *rt = S.head[LANE_REALTIME], *tools = S.head[LANE_TOOLS];
    int lane;
    if (rt && (!tools || S.starve < SCHED_STARVE_LIMIT)) {
        lane = LANE_REALTIME;
        S.starve = tools ? S.starve + 1 : 0;
    } else if (tools) {
        lane = LANE_TOOLS;
        S.starve = 0;
    } else {
        return NULL;
    }
    actor_t *a = S.head[lane];
    S.head[lane] = a->run_next;
    if (S.head[lane] == NULL)
        S.tail[lane] = NULL;
    a->run_next = NULL;
    S.runnable--;
    return a;
}

void sched_wake_for_timer(uint64_t due_ns)
{
    (void)due_ns;
    pthread_mutex_lock(&S.lock);
    worker_t *w = pop_idle_locked();
    pthread_mutex_unlock(&S.lock);
    wake_worker(w);
}

/*
 * Parks w until a waker pops it or due_ns (CLOCK_MONOTONIC, UINT64_MAX: none) passes. Called
 * and returns with S.lock held; on return w is off the idle stack.
 */
static void park_locked(worker_t *w, uint64_t due_ns)
{
    ck_pr_store_32(&w->word, WORD_PARKING);
    w->next = S.idle_top;
    S.idle_top = w;
    S.idle++;
    pthread_mutex_unlock(&S.lock);
    struct timespec ts = {.tv_sec = (time_t)(due_ns / NS_PER_SEC),
                          .tv_nsec = (long)(due_ns % NS_PER_SEC)};
    if (ck_pr_cas_32(&w->word, WORD_PARKING, WORD_SLEEPING)) {
        while (ck_pr_load_32(&w->word) == WORD_SLEEPING) {
            /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
            long rc = syscall(SYS_futex, &w->word, FUTEX_WAIT_BITSET_PRIVATE, WORD_SLEEPING,
                              due_ns == UINT64_MAX ? NULL : &ts, NULL, FUTEX_BITSET_MATCH_ANY);
            if (rc != 0 && errno == ETIMEDOUT)
                break;
        }
    }
    pthread_mutex_lock(&S.lock);
    if (ck_pr_load_32(&w->word) != WORD_WOKEN) { /* timed out: nobody popped it */
        worker_t **pp = &S.idle_top;
        while (*pp != w)
            pp = &(*pp)->next;
        *pp = w->next;
        w->next = NULL;
        S.idle--;
    }
}

static void *worker_main(void *arg)
{
    worker_t *self = arg;
    tl_is_worker = true;
    pthread_mutex_lock(&S.lock);
    while (!S.exiting) {
        uint64_t now = clock_now_ns();
        if (timer_next_due_ns() <= now) {
            pthread_mutex_unlock(&S.lock);
            timer_fire_due(now);
            pthread_mutex_lock(&S.lock);
            continue;
        }
        actor_t *a = pick_locked();
        if (a != NULL) {
            uint64_t queued_ns = a->queued_ns;
            /*
             * Let a sleeping worker share the work when tools work waits (a tools turn may be
             * long), or when SCHED_SHARE_MIN or more actors wait: short realtime turns are
             * cheaper done one after another here than shared at the cost of a wake (a futex
             * call on each side and a context switch).
             */
            worker_t *w = S.head[LANE_TOOLS] != NULL || S.runnable >= SCHED_SHARE_MIN
                              ? pop_idle_locked()
                              : NULL;
            pthread_mutex_unlock(&S.lock);
            wake_worker(w);
            metric_hist_observe_ns(&g_metrics.actor_queue_seconds[a->lane],
                                   now > queued_ns ? now - queued_ns : 0);
            bool tools = a->lane == LANE_TOOLS;
            if (tools)
                ck_pr_inc_int(&S.tools_running);
            uint32_t left = actor_run(a, SCHED_BATCH_MSGS);
            if (tools)
                ck_pr_dec_int(&S.tools_running);
            if (left > 0) {
                /* Still owned by the scheduler: back of its lane, keeping the reference. */
                uint64_t now2 = clock_now_ns();
                pthread_mutex_lock(&S.lock);
                if (enqueue_locked(a, now2)) {
                    worker_t *w2 = pop_idle_locked();
                    pthread_mutex_unlock(&S.lock);
                    wake_worker(w2);
                    pthread_mutex_lock(&S.lock);
                }
            } else {
                actor_unref(a); /* the scheduler's reference */
                pthread_mutex_lock(&S.lock);
            }
            continue;
        }
        park_locked(self, timer_next_due_ns());
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

int sched_start(const sched_config_t *cfg)
{
    S.n_workers = cfg->workers > 0 ? cfg->workers : 1;
    S.mailbox_cap = cfg->mailbox_cap ? cfg->mailbox_cap : 1024;
    S.max_actors = cfg->max_actors > 0 ? cfg->max_actors : 100000;
    S.exiting = false;
    S.spawn_closed = false;
    S.workers = xcalloc((size_t)S.n_workers, sizeof(worker_t));
    for (int i = 0; i < S.n_workers; i++) {
        int rc = pthread_create(&S.workers[i].th, NULL, worker_main, &S.workers[i]);
        if (rc != 0) {
            S.n_workers = i;
            sched_stop(0);
            return -rc;
        }
        char name[16];
        snprintf(name, sizeof(name), "sb-worker-%u", (unsigned)i % 1000u);
        pthread_setname_np(S.workers[i].th, name);
    }
    return 0;
}

/* Sends MSG_ACTOR_STOP to every live actor. */
static void stop_all_actors(void)
{
    pthread_mutex_lock(&S.reg_lock);
    S.spawn_closed = true;
    int n = 0, cap = ck_pr_load_int(&S.live_count);
    actor_t **all = xcalloc((size_t)cap + 1, sizeof(*all));
    for (actor_t *a = S.live; a && n < cap; a = a->live_next)
        if (actor_try_ref(a))
            all[n++] = a;
    pthread_mutex_unlock(&S.reg_lock);
    for (int i = 0; i < n; i++) {
        actor_stop(all[i]);
        actor_unref(all[i]);
    }
    free(all);
}

int sched_stop(uint64_t timeout_ms)
{
    stop_all_actors();
    uint64_t deadline = clock_now_ns() + timeout_ms * NS_PER_MS;
    while (ck_pr_load_int(&S.live_count) > 0 && clock_now_ns() < deadline)
        usleep(SCHED_STOP_POLL_US);
    int left = ck_pr_load_int(&S.live_count);
    if (left > 0)
        log_warn("sched.stop", LOG_S("result", "actors still alive"), LOG_I("actors", left));

    pthread_mutex_lock(&S.lock);
    S.exiting = true;
    while (S.idle_top != NULL) {
        worker_t *w = pop_idle_locked();
        wake_worker(w); /* a futex wake needs no lock; the worker then waits for S.lock */
    }
    pthread_mutex_unlock(&S.lock);
    for (int i = 0; i < S.n_workers; i++)
        pthread_join(S.workers[i].th, NULL);
    free(S.workers);
    S.workers = NULL;
    S.n_workers = 0;
    return left;
}
