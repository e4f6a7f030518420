/* Scheduler and timers: exclusivity, lane priority, batch fairness, timers, limits, stop. */
#include <ck_pr.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include "actors/sched.h"
#include "actors/timer.h"
#include "base/metrics.h"
#include "base/util.h"
#include "tests/runner.h"

#define MSG_T_WORK       (MSG_TYPE_TEST_BASE + 1)
#define MSG_T_BLOCK      (MSG_TYPE_TEST_BASE + 2)
#define MSG_T_TICK       (MSG_TYPE_TEST_BASE + 3)
#define MSG_T_FREE_TIMER (MSG_TYPE_TEST_BASE + 4)

/* A log of which actor handled messages, in order (one worker, so no lock needed). */
static int order_log[4096]; /* {order_lock} */
static uint32_t order_len;  /* {order_lock} */
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t blocker; /* a BLOCK message waits on it: holds the only worker */
static sem_t entered; /* posted by a BLOCK message once its worker is inside it */
static sem_t done_sem;

typedef struct test_actor {
    actor_t actor;
    int tag;
    uint32_t inside; /* [atomic] workers inside handle, must stay <= 1 */
    uint32_t handled;
    int stops;
    actor_timer_t *timer;
    int ticks;
} test_actor_t;

static void test_handle(actor_t *self, msg_t *m)
{
    test_actor_t *t = (test_actor_t *)self;
    if (ck_pr_faa_32(&t->inside, 1) != 0)
        TEST_FAIL_("actor %d runs on two workers at once", t->tag);
    if (m->type == MSG_T_BLOCK) {
        sem_post(&entered);
        sem_wait(&blocker);
    } else if (m->type == MSG_T_FREE_TIMER) {
        actor_timer_free(t->timer);
        t->timer = NULL;
        sem_post(&done_sem);
    } else if (m->type == MSG_T_TICK) {
        pthread_mutex_lock(&order_lock);
        t->ticks++;
        pthread_mutex_unlock(&order_lock);
        sem_post(&done_sem);
    } else {
        pthread_mutex_lock(&order_lock);
        if (order_len < ARRAY_LEN(order_log))
            order_log[order_len] = t->tag;
        order_len++;
        pthread_mutex_unlock(&order_lock);
        ck_pr_inc_32(&t->handled);
    }
    ck_pr_dec_32(&t->inside);
    msg_free(m);
}

static void test_stop(actor_t *self)
{
    test_actor_t *t = (test_actor_t *)self;
    t->stops++;
    actor_timer_free(t->timer);
    t->timer = NULL;
    sem_post(&done_sem);
}

static const actor_type_t test_type = {"test", test_handle, test_stop};

static test_actor_t *spawn(int tag, lane_t lane)
{
    test_actor_t *t = xcalloc(1, sizeof(*t));
    t->tag = tag;
    ASSERT_EQ(actor_spawn(&t->actor, &test_type, lane), 0);
    t->timer = actor_timer_new(&t->actor, MSG_T_TICK, NULL);
    return t;
}

static void start(int workers, int max_actors)
{
    metrics_init();
    sem_init(&blocker, 0, 0);
    sem_init(&entered, 0, 0);
    sem_init(&done_sem, 0, 0);
    sched_config_t cfg = {.workers = workers, .max_actors = max_actors, .mailbox_cap = 1024};
    ASSERT_EQ(sched_start(&cfg), 0);
}

static uint32_t as_handled(test_actor_t *t)
{
    return ck_pr_load_32(&t->handled);
}

static int ticks_of(test_actor_t *t)
{
    pthread_mutex_lock(&order_lock);
    int n = t->ticks;
    pthread_mutex_unlock(&order_lock);
    return n;
}

static uint32_t handled_total(void)
{
    pthread_mutex_lock(&order_lock);
    uint32_t n = order_len;
    pthread_mutex_unlock(&order_lock);
    return n;
}

/* Waits until n messages were logged; the lock makes order_log safe to read afterwards. */
static void wait_handled(uint32_t n)
{
    for (int i = 0; i < 10000 && handled_total() < n; i++)
        usleep(1000);
    ASSERT_EQ(handled_total(), n);
}

/* Sends a BLOCK message to a; returns once a worker is inside it (held there until blocker). */
static void block_inside(test_actor_t *a)
{
    actor_send(&a->actor, msg_new(MSG_T_BLOCK, sizeof(msg_t)));
    ASSERT_EQ(sem_wait(&entered), 0);
}

/* Waits (up to 10 s) until a's mailbox holds `depth` messages. */
static void wait_depth(test_actor_t *a, uint32_t depth)
{
    for (int i = 0; i < 10000 && mbox_depth(&a->actor.mbox) != depth; i++)
        usleep(1000);
    ASSERT_EQ(mbox_depth(&a->actor.mbox), depth);
}

enum { EX_ACTORS = 8, EX_SENDERS = 4, EX_PER_SENDER = 5000 };
static test_actor_t *ex_actors[EX_ACTORS];

/* Even-numbered senders defer like a network thread, flushing every 37 messages and at the end. */
static void *ex_sender(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    bool defer = seed % 2 == 0;
    if (defer)
        sched_defer_wakes();
    for (int k = 0; k < EX_PER_SENDER; k++) {
        actor_send(&ex_actors[rand_r(&seed) % EX_ACTORS]->actor,
                   msg_new(MSG_T_WORK, sizeof(msg_t)));
        if (defer && k % 37 == 36)
            sched_flush();
    }
    sched_flush();
    return NULL;
}

TEST(sched_one_worker_at_a_time)
{
    /* test_handle fails the test if two workers are ever inside one actor. */
    start(4, 1000);
    for (int i = 0; i < EX_ACTORS; i++)
        ex_actors[i] = spawn(i, i % 2 ? LANE_TOOLS : LANE_REALTIME);
    pthread_t th[EX_SENDERS];
    for (uintptr_t s = 0; s < EX_SENDERS; s++)
        pthread_create(&th[s], NULL, ex_sender, (void *)(s + 1));
    for (int s = 0; s < EX_SENDERS; s++)
        pthread_join(th[s], NULL);
    wait_handled(EX_SENDERS * EX_PER_SENDER);
    uint32_t total = 0;
    for (int i = 0; i < EX_ACTORS; i++)
        total += as_handled(ex_actors[i]);
    ASSERT_EQ(total, EX_SENDERS * EX_PER_SENDER);
    for (int i = 0; i < EX_ACTORS; i++)
        actor_unref(&ex_actors[i]->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_deferred_enqueue_waits_for_flush)
{
    start(2, 1000);
    test_actor_t *a = spawn(0, LANE_REALTIME);
    sched_defer_wakes(); /* this thread now behaves like a network thread */
    actor_send(&a->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    actor_send(&a->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    usleep(30000);
    ASSERT_EQ(handled_total(), 0u); /* collected, not yet handed to the workers */
    sched_flush();
    wait_handled(2);
    sched_flush(); /* nothing collected: a no-op */
    actor_unref(&a->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_deferred_enqueue_flushes_when_full)
{
    /* SCHED_DEFER_MAX actors made runnable hand themselves over without an explicit flush. */
    start(2, 1000);
    test_actor_t *as[SCHED_DEFER_MAX];
    for (int i = 0; i < SCHED_DEFER_MAX; i++)
        as[i] = spawn(i, i % 2 ? LANE_TOOLS : LANE_REALTIME);
    sched_defer_wakes();
    for (int i = 0; i < SCHED_DEFER_MAX; i++)
        actor_send(&as[i]->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    wait_handled(SCHED_DEFER_MAX);
    for (int i = 0; i < SCHED_DEFER_MAX; i++)
        actor_unref(&as[i]->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_realtime_lane_first)
{
    start(1, 1000);
    test_actor_t *gate = spawn(0, LANE_TOOLS);
    test_actor_t *tools = spawn(1, LANE_TOOLS);
    test_actor_t *rt = spawn(2, LANE_REALTIME);
    block_inside(gate); /* the only worker is now blocked inside gate */
    actor_send(&tools->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    actor_send(&rt->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    sem_post(&blocker);
    wait_handled(2);
    ASSERT_EQ(order_log[0], 2); /* realtime, though queued second */
    ASSERT_EQ(order_log[1], 1);
    actor_unref(&gate->actor);
    actor_unref(&tools->actor);
    actor_unref(&rt->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_batch_fairness)
{
    start(1, 1000);
    test_actor_t *gate = spawn(0, LANE_REALTIME);
    test_actor_t *a = spawn(1, LANE_REALTIME);
    test_actor_t *b = spawn(2, LANE_REALTIME);
    block_inside(gate);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        actor_send(&a->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
        actor_send(&b->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    }
    sem_post(&blocker);
    wait_handled(2 * N);
    /* Turns alternate: no run of one actor longer than a batch. */
    int run = 1, longest = 1;
    for (int i = 1; i < 2 * N; i++) {
        run = order_log[i] == order_log[i - 1] ? run + 1 : 1;
        longest = run > longest ? run : longest;
    }
    ASSERT_EQ(longest, SCHED_BATCH_MSGS);
    actor_unref(&gate->actor);
    actor_unref(&a->actor);
    actor_unref(&b->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_tools_not_starved)
{
    start(1, 1000);
    test_actor_t *gate = spawn(0, LANE_REALTIME);
    test_actor_t *tools = spawn(1, LANE_TOOLS);
    enum { RT = 40 };
    static test_actor_t *rts[RT];
    for (int i = 0; i < RT; i++)
        rts[i] = spawn(100 + i, LANE_REALTIME);
    block_inside(gate);
    actor_send(&tools->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    for (int i = 0; i < RT; i++)
        actor_send(&rts[i]->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    sem_post(&blocker);
    wait_handled(RT + 1);
    int pos = -1;
    for (int i = 0; i < RT + 1; i++)
        if (order_log[i] == 1)
            pos = i;
    /* SCHED_STARVE_LIMIT realtime turns, then the waiting tools actor. */
    ASSERT_EQ(pos, SCHED_STARVE_LIMIT);
    actor_unref(&gate->actor);
    actor_unref(&tools->actor);
    for (int i = 0; i < RT; i++)
        actor_unref(&rts[i]->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_max_actors)
{
    start(1, 3);
    test_actor_t *a = spawn(1, LANE_TOOLS), *b = spawn(2, LANE_TOOLS), *c = spawn(3, LANE_TOOLS);
    test_actor_t *d = xcalloc(1, sizeof(*d));
    ASSERT_EQ(actor_spawn(&d->actor, &test_type, LANE_TOOLS), -EAGAIN);
    free(d);
    actor_unref(&c->actor); /* frees a place */
    test_actor_t *e = spawn(5, LANE_TOOLS);
    actor_unref(&a->actor);
    actor_unref(&b->actor);
    actor_unref(&e->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(actor_stop_then_free)
{
    start(2, 1000);
    test_actor_t *t = spawn(1, LANE_TOOLS);
    actor_ref(&t->actor); /* a second holder, as another actor would be */
    actor_send(&t->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    actor_stop(&t->actor);
    ASSERT_EQ(sem_wait(&done_sem), 0); /* the stop behaviour ran */
    /* Messages after the stop are freed unread (ASan checks they are freed). */
    actor_send(&t->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    usleep(20000);
    ASSERT_EQ(as_handled(t), 1);
    ASSERT_EQ(t->stops, 1);
    ASSERT_EQ(sched_live_actors(), 1);
    actor_unref(&t->actor);
    actor_unref(&t->actor); /* the last reference frees it */
    ASSERT_EQ(sched_live_actors(), 0);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(sched_stop_runs_stop_behaviours)
{
    start(2, 1000);
    enum { N = 20 };
    static test_actor_t *as[N];
    for (int i = 0; i < N; i++)
        as[i] = spawn(i, i % 2 ? LANE_TOOLS : LANE_REALTIME);
    /* We keep the spawn references: sched_stop stops them all but reports them alive. */
    int left = sched_stop(200);
    ASSERT_EQ(left, N);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(sem_trywait(&done_sem), 0);
        ASSERT_EQ(as[i]->stops, 1);
    }
    for (int i = 0; i < N; i++)
        actor_unref(&as[i]->actor);
    ASSERT_EQ(sched_live_actors(), 0);
}

TEST(timer_one_shot_and_stop)
{
    start(2, 1000);
    test_actor_t *t = spawn(1, LANE_TOOLS);
    uint64_t t0 = clock_now_ns();
    actor_timer_start(t->timer, 50, 0);
    ASSERT_EQ(sem_wait(&done_sem), 0);
    uint64_t waited_ms = (clock_now_ns() - t0) / NS_PER_MS;
    ASSERT_GE(waited_ms, 50);
    ASSERT_EQ(ticks_of(t), 1);
    ASSERT_EQ(timer_armed_count(), 0);
    /* A stopped timer never delivers. */
    actor_timer_start(t->timer, 30, 0);
    actor_timer_stop(t->timer);
    usleep(100000);
    ASSERT_EQ(ticks_of(t), 1);
    actor_unref(&t->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(timer_repeat_and_restart)
{
    start(1, 1000);
    test_actor_t *t = spawn(1, LANE_REALTIME);
    actor_timer_start(t->timer, 10, 10);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(sem_wait(&done_sem), 0);
    actor_timer_stop(t->timer);
    int ticks = ticks_of(t);
    ASSERT_GE(ticks, 5);
    usleep(50000);
    /* At most one expiry was already queued when we stopped, and it is stale. */
    ASSERT_EQ(ticks_of(t), ticks);
    /* Re-arming pushes the deadline out. */
    uint64_t t0 = clock_now_ns();
    actor_timer_start(t->timer, 200, 0);
    usleep(50000);
    actor_timer_start(t->timer, 100, 0);
    ASSERT_EQ(sem_wait(&done_sem), 0);
    ASSERT_GE((clock_now_ns() - t0) / NS_PER_MS, 150);
    actor_unref(&t->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(timer_many_ordered)
{
    start(2, 1000);
    enum { N = 200 };
    static test_actor_t *as[N];
    for (int i = 0; i < N; i++) {
        as[i] = spawn(i, LANE_TOOLS);
        actor_timer_start(as[i]->timer, (uint64_t)(N - i), 0);
    }
    for (int i = 0; i < N; i++)
        ASSERT_EQ(sem_wait(&done_sem), 0);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(ticks_of(as[i]), 1);
        actor_unref(&as[i]->actor);
    }
    ASSERT_EQ(sched_stop(2000), 0);
}

TEST(timer_freed_with_expiry_in_flight)
{
    /* The expiry is queued behind a FREE_TIMER message: the timer object must outlive the free
     * until its stale message is dropped (ASan reports a use after free otherwise). Two
     * workers: one is held inside t, the other fires the timer. */
    start(2, 1000);
    test_actor_t *t = spawn(1, LANE_TOOLS);
    block_inside(t);
    actor_send(&t->actor, msg_new(MSG_T_FREE_TIMER, sizeof(msg_t)));
    uint32_t depth = mbox_depth(&t->actor.mbox);
    actor_timer_start(t->timer, 10, 0); /* the actor is parked in BLOCK: no concurrent use */
    wait_depth(t, depth + 1);           /* fired; the expiry waits behind FREE_TIMER */
    sem_post(&blocker);
    ASSERT_EQ(sem_wait(&done_sem), 0);
    /* A message sent now is handled after the expiry (one mailbox, in order). */
    actor_send(&t->actor, msg_new(MSG_T_WORK, sizeof(msg_t)));
    wait_handled(1);
    ASSERT_EQ(ticks_of(t), 0); /* stale: never delivered */
    actor_unref(&t->actor);
    ASSERT_EQ(sched_stop(2000), 0);
}
