/* Fixed-window counters per key (base/ratewin.h): the per-IP limits of minting and chat. */
#include "base/ratewin.h"
#include "base/util.h"
#include "tests/runner.h"

#define WIN_NS (60 * NS_PER_SEC)

TEST(ratewin_limits_each_key_within_its_window)
{
    ratewin_t r;
    ratewin_init(&r, WIN_NS);
    uint64_t t0 = 1000 * NS_PER_SEC, left = 0;
    for (int i = 0; i < 3; i++)
        ASSERT(ratewin_hit(&r, "10.0.0.1", t0 + (uint64_t)i * NS_PER_SEC, 3, &left));
    ASSERT(!ratewin_hit(&r, "10.0.0.1", t0 + 10 * NS_PER_SEC, 3, &left));
    ASSERT_EQ(left, 50 * NS_PER_SEC); /* until the window that began at t0 ends */
    ASSERT(ratewin_hit(&r, "10.0.0.2", t0 + 10 * NS_PER_SEC, 3, NULL)); /* its own window */
    /* Over the limit still counts: the window does not slide. */
    ASSERT(!ratewin_hit(&r, "10.0.0.1", t0 + 59 * NS_PER_SEC, 3, NULL));
    /* A new window starts at the first event after the old one ended. */
    ASSERT(ratewin_hit(&r, "10.0.0.1", t0 + WIN_NS, 3, NULL));
    ratewin_destroy(&r);
}

TEST(ratewin_sweep_drops_only_ended_windows)
{
    ratewin_t r;
    ratewin_init(&r, WIN_NS);
    uint64_t t0 = 5 * NS_PER_SEC;
    ASSERT(ratewin_hit(&r, "a", t0, 1, NULL));
    ASSERT(ratewin_hit(&r, "b", t0 + 30 * NS_PER_SEC, 1, NULL));
    ratewin_sweep(&r, t0 + WIN_NS); /* a's window has ended, b's has not */
    ASSERT_EQ(ratewin_count(&r), 1);
    ASSERT(!ratewin_hit(&r, "b", t0 + WIN_NS, 1, NULL)); /* b's count survived the sweep */
    ratewin_sweep(&r, t0 + 2 * WIN_NS);
    ASSERT_EQ(ratewin_count(&r), 0);
    ratewin_destroy(&r);
}
