/* The clocks the actor unit tests drive; see fake_clock.h. */
#include "tests/fakes/fake_clock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "actors/sched.h"
#include "actors/timer.h"
#include "base/util.h"

#define FAKE_CLOCK_POLL_US 1000 /* fake_clock_settle(): how often it looks at the timers */

static struct {
    /*
     * Sequentially consistent C11 atomics throughout: a worker reading the clock under the
     * scheduler lock after fake_clock_advance_ms() woke it (through the same lock) must see the
     * new time; nothing here is hot enough for weaker orderings to matter.
     */
    _Atomic uint64_t start_ns;   /* the monotonic value at reset */
    _Atomic uint64_t now_ns;     /* the monotonic value while frozen */
    _Atomic uint64_t real_at_ns; /* running: the real monotonic time when it started running */
    _Atomic bool running;        /* time follows the real clock from now_ns/real_at_ns */
} C;

static uint64_t real_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

void fake_clock_reset(void)
{
    uint64_t start = real_now_ns() + (uint64_t)FAKE_CLOCK_AHEAD_S * NS_PER_SEC;
    atomic_store(&C.running, false);
    atomic_store(&C.start_ns, start);
    atomic_store(&C.now_ns, start);
}

uint64_t clock_now_ns(void)
{
    if (atomic_load(&C.start_ns) == 0)
        fake_clock_reset(); /* a test that never reset it still gets a sane clock */
    uint64_t now = atomic_load(&C.now_ns);
    if (atomic_load(&C.running))
        now += real_now_ns() - atomic_load(&C.real_at_ns);
    return now;
}

uint64_t clock_wall_ms(void)
{
    uint64_t since_ns = clock_now_ns() - atomic_load(&C.start_ns);
    return (uint64_t)FAKE_CLOCK_WALL_MS + since_ns / NS_PER_MS;
}

void fake_clock_advance_ms(uint64_t ms)
{
    uint64_t now = atomic_fetch_add(&C.now_ns, ms * NS_PER_MS) + ms * NS_PER_MS;
    /* Wakes a sleeping worker; a busy one looks at the timers before its next actor anyway. */
    sched_wake_for_timer(now);
}

void fake_clock_settle(void)
{
    while (timer_next_due_ns() <= clock_now_ns())
        usleep(FAKE_CLOCK_POLL_US);
    usleep(FAKE_CLOCK_SETTLE_MS * 1000);
}

uint64_t fake_clock_elapsed_ms(void)
{
    return (clock_now_ns() - atomic_load(&C.start_ns)) / NS_PER_MS;
}

void fake_clock_run_real(void)
{
    atomic_store(&C.real_at_ns, real_now_ns());
    atomic_store(&C.running, true);
}
