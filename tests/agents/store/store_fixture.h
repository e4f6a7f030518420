/*
 * Shared by test_booking.c and test_store.c: a temp folder, the demo agent config, a minimal
 * g_config, the actor runtime with the store on a real file, and an actor that collects tool
 * results. Header-only (static functions), one copy per test file.
 */
#ifndef SB_TESTS_STORE_FIXTURE_H
#define SB_TESTS_STORE_FIXTURE_H

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "actors/sched.h"
#include "agents/config/agentcfg.h"
#include "agents/store/store_int.h"
#include "agents/store/store.h"
#include "agents/tools/tools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/tz.h"
#include "base/util.h"
#include "tests/runner.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* Tests end with _exit(), which skips LeakSanitizer's own check: run it by hand. */
#define FIXTURE_LEAK_CHECK() __lsan_do_leak_check()
#else
#define FIXTURE_LEAK_CHECK() ((void)0)
#endif

#define FIXTURE_ERR_LEN     512
#define FIXTURE_WORKERS     2
#define FIXTURE_WAIT_S      10
#define FIXTURE_SECS_PER_HR 3600
#define FIXTURE_MS_PER_S    1000LL

static agentcfg_t fixture_ac;
static config_t fixture_cfg;
static char fixture_dir[64];
static char fixture_db[128];

/* "Now" for the tests: Tuesday 2026-12-01 12:00 in Los Angeles (PST, UTC-8) = 20:00 UTC. */
static inline int64_t fixture_now_ms(void)
{
    return (tz_days_from_civil(2026, 12, 1) * TZ_SECS_PER_DAY + 20 * FIXTURE_SECS_PER_HR) *
           FIXTURE_MS_PER_S;
}

/* The demo config (also the one tenant, `default`, whose calendar tool calls that name no tenant
 * use), a zeroed g_config with defaults that matter here, a fresh temp folder. */
static inline void fixture_init(void)
{
    char err[FIXTURE_ERR_LEN];
    if (agentcfg_load(&fixture_ac, NULL, err, sizeof(err)) != 0)
        TEST_FAIL_("demo config: %s", err);
    if (tenants_load(NULL, err, sizeof(err)) != 0)
        TEST_FAIL_("demo tenant: %s", err);
    log_init(LOG_WARN, LOG_FORMAT_TEXT);
    snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/sbtest-store-XXXXXX");
    ASSERT(mkdtemp(fixture_dir) != NULL);
    snprintf(fixture_db, sizeof(fixture_db), "%s/var/switchboard.db", fixture_dir);
    fixture_cfg.db_path = fixture_db;
    fixture_cfg.retention_days = 30;
    g_config = &fixture_cfg;
}

static inline void fixture_cleanup(void)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fixture_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", fixture_dir);
    agentcfg_free(&fixture_ac);
    tenants_destroy();
}

/* JSON written with single quotes (test arguments), parsed; a malformed one fails the test. */
static inline cJSON *fixture_args_sq(const char *sq_json)
{
    char *json = xstrdup(sq_json);
    for (char *q = json; *q; q++)
        if (*q == '\'')
            *q = '"';
    cJSON *args = cJSON_Parse(json);
    if (args == NULL)
        TEST_FAIL_("bad test arguments: %s", json);
    free(json);
    return args;
}

/* The store under test: the opener's reference (fixture_start_store .. fixture_stop_store). */
static actor_t *fixture_store;

static inline void fixture_start_store(void)
{
    char err[FIXTURE_ERR_LEN] = "";
    metrics_init();
    sched_config_t sc = {.workers = FIXTURE_WORKERS, .max_actors = 1000, .mailbox_cap = 1024};
    ASSERT_EQ(sched_start(&sc), 0);
    if (store_open(fixture_db, &fixture_store, NULL, err, sizeof(err)) != 0)
        TEST_FAIL_("store_open: %s", err);
}

static inline void fixture_stop_store(void)
{
    ASSERT_EQ(store_close(fixture_store), 0);
    fixture_store = NULL;
    ASSERT_EQ(sched_stop(FIXTURE_WAIT_S * 1000), 0);
    metrics_destroy();
}

/* ---- An actor that collects TOOL_MSG_RESULTs ------------------------------------------------ */

typedef struct collector {
    actor_t actor;
    pthread_mutex_t lock;
    int ok;         /* {lock} results without is_error */
    int failed;     /* {lock} */
    char last[512]; /* {lock} the output of the latest result */
    sem_t results;  /* posted once per result */
} collector_t;

static void collector_handle(actor_t *self, msg_t *m)
{
    collector_t *c = (collector_t *)self;
    if (m->type == TOOL_MSG_RESULT) {
        tool_result_msg_t *r = (tool_result_msg_t *)m;
        pthread_mutex_lock(&c->lock);
        if (r->is_error)
            c->failed++;
        else
            c->ok++;
        str_copy(c->last, r->output, sizeof(c->last));
        pthread_mutex_unlock(&c->lock);
        sem_post(&c->results);
    }
    msg_free(m);
}

static const actor_type_t collector_type = {"collector", collector_handle, NULL};

/* A collector with one reference owned by the caller; it lives until the last one goes. */
static inline collector_t *collector_new(void)
{
    collector_t *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    sem_init(&c->results, 0, 0);
    ASSERT_EQ(actor_spawn(&c->actor, &collector_type, LANE_TOOLS), 0);
    return c;
}

/* Waits for n more results (FIXTURE_WAIT_S at most). */
static inline void collector_wait(collector_t *c, int n)
{
    for (int i = 0; i < n; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += FIXTURE_WAIT_S;
        if (sem_timedwait(&c->results, &ts) != 0)
            TEST_FAIL_("waited %d s for tool result %d of %d", FIXTURE_WAIT_S, i + 1, n);
    }
}

/* Sends tool name with args (JSON text) to the store as of fixture_now_ms(). */
static inline void fixture_call_tool(collector_t *c, uint64_t cookie, const char *name,
                                     const char *args_json)
{
    tool_call_msg_t *m = tool_call_new(&c->actor, cookie, name, cJSON_Parse(args_json));
    m->now_ms = fixture_now_ms();
    actor_send(fixture_store, &m->hdr);
}

#endif
