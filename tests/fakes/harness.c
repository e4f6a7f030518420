/* The runtime around one actor unit test; see harness.h. */
#include "tests/fakes/harness.h"

#include <stdlib.h>
#include <string.h>

#include "agents/tenant/tenant.h"
#include "base/log.h"
#include "base/metrics.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* Tests end with _exit(), which skips LeakSanitizer's own check: run it by hand. */
#define HARNESS_LEAK_CHECK() __lsan_do_leak_check()
#else
#define HARNESS_LEAK_CHECK() ((void)0)
#endif

#define HARNESS_ERR_LEN    512
#define HARNESS_MAX_ACTORS 1000
#define HARNESS_MAILBOX    1024

extern char **environ;

static config_t harness_cfg;

/* Removes every variable the configuration reads, so the caller's shell cannot steer a test. */
static void clean_environment(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "SWITCHBOARD_", 12) == 0 || strncmp(*e, "OPENAI_", 7) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof(name)) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                    break;
                }
            }
        }
        if (name[0] == '\0')
            return;
        unsetenv(name);
    }
}

void harness_start(const char *const *env)
{
    char err[HARNESS_ERR_LEN];
    clean_environment();
    setenv("OPENAI_API_KEY", HARNESS_API_KEY, 1);
    for (const char *const *e = env; e && *e; e++) {
        char *kv = xstrdup(*e);
        char *eq = strchr(kv, '=');
        ASSERT(eq != NULL);
        *eq = '\0';
        setenv(kv, eq + 1, 1);
        free(kv);
    }
    if (config_from_env(&harness_cfg, HARNESS_WORKERS, err, sizeof(err)) != 0)
        TEST_FAIL_("configuration: %s", err);
    g_config = &harness_cfg;
    if (tenants_load(NULL, err, sizeof(err)) != 0) /* the demo as the one tenant */
        TEST_FAIL_("tenants: %s", err);
    log_init(LOG_WARN, LOG_FORMAT_TEXT);
    metrics_init();
    fake_clock_reset();
    fake_net_init();
    sched_config_t sc = {.workers = HARNESS_WORKERS,
                         .max_actors = HARNESS_MAX_ACTORS,
                         .mailbox_cap = HARNESS_MAILBOX};
    ASSERT_EQ(sched_start(&sc), 0);
}

void harness_stop(void)
{
    fake_net_shutdown();
    fake_clock_run_real(); /* sched_stop() times its wait with clock_now_ns() */
    ASSERT_EQ(sched_stop(HARNESS_STOP_MS), 0);
    metrics_destroy();
    tenants_destroy();
    g_config = NULL;
    config_free(&harness_cfg);
    HARNESS_LEAK_CHECK();
}
