/*
 * fake_clock: the clocks of base/util.h (clock_now_ns, clock_wall_ms) as the actor unit tests
 * drive them. Linked instead of base/clock.c into build/<mode>/tests/actors_unit.
 *
 * Time stands still until the test moves it: fake_clock_advance_ms() adds to both clocks and
 * wakes the scheduler, whose workers then fire every timer that has become due (actors/sched.c
 * fires timers from the workers, reading clock_now_ns()). So "the idle timer fires" is a line
 * of the test, never a sleep.
 *
 * The monotonic clock starts FAKE_CLOCK_AHEAD_S ahead of the real one: an idle worker sleeps on
 * CLOCK_MONOTONIC until the earliest timer's due time, which then always lies far in the real
 * future, so workers sleep until woken (by a message, or by fake_clock_advance_ms()) instead of
 * spinning on deadlines that real time has passed.
 *
 * CONTRACT
 *   fake_clock_reset() and fake_clock_run_real(): the test's thread, with no actor running
 *   (before sched_start(), or at teardown before sched_stop()). The rest: any thread.
 */
#ifndef SB_TESTS_FAKES_FAKE_CLOCK_H
#define SB_TESTS_FAKES_FAKE_CLOCK_H

#include <stdint.h>

#define FAKE_CLOCK_AHEAD_S   86400           /* the fake monotonic clock's lead over the real one */
#define FAKE_CLOCK_WALL_MS   1796155200000LL /* wall clock at reset: 2026-12-01T20:00:00Z */
#define FAKE_CLOCK_SETTLE_MS 20              /* real time fake_clock_settle() gives a worker */

/* Stops time at the start values (wall: FAKE_CLOCK_WALL_MS). */
void fake_clock_reset(void);
/* Moves both clocks forward by ms and wakes a worker to fire what has become due. */
void fake_clock_advance_ms(uint64_t ms);
/*
 * Waits until no timer is due any more (a worker has taken each one that was), then
 * FAKE_CLOCK_SETTLE_MS of real time for their messages to be sent: for a check that something
 * has NOT happened by now. It cannot fail a correct actor, only, at worst, miss a wrong one.
 */
void fake_clock_settle(void);
/* Milliseconds the test has advanced since the reset. */
uint64_t fake_clock_elapsed_ms(void);
/*
 * From now on time runs at real speed from where it stands. For teardown: sched_stop() waits
 * for actors against clock_now_ns(), which must move for its timeout to mean anything.
 */
void fake_clock_run_real(void);

#endif
