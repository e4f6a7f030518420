/*
 * harness: the runtime around one actor unit test. harness_start() gives the test a
 * configuration from a clean environment (plus its own variables), the built-in demo agent
 * config, metrics, the fake clock (stopped), the fake network and the scheduler;
 * harness_stop() ends what the network still holds, stops the scheduler and fails the test
 * when an actor outlived it (a reference someone never released) or, under ASan, when memory
 * leaked.
 *
 * CONTRACT: the test's thread; each test calls harness_start() once and harness_stop() last,
 * after dropping its own references (probe_free, actor_unref).
 */
#ifndef SB_TESTS_FAKES_HARNESS_H
#define SB_TESTS_FAKES_HARNESS_H

#include "actors/sched.h"
#include "agents/config/agentcfg.h"
#include "base/config.h"
#include "base/util.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_net.h"
#include "agents/store/store_int.h"
#include "tests/fakes/probe.h"
#include "tests/runner.h"

#define HARNESS_API_KEY "sk-test-key" /* OPENAI_API_KEY unless the test sets its own */
#define HARNESS_WORKERS 2
#define HARNESS_STOP_MS 5000 /* sched_stop()'s wait for the last actor */

/*
 * Starts the runtime. env: "NAME=value" strings applied after every SWITCHBOARD_* and OPENAI_*
 * variable of the process has been removed (NULL-terminated; NULL = none).
 */
void harness_start(const char *const *env);
/* Stops it; fails the test when actors are left or memory leaked. */
void harness_stop(void);

#endif
