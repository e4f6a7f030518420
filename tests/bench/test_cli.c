/* Tests of bench/loadgen/cli: --threads by default from the number of sessions. */
#include <unistd.h>

#include "bench/loadgen/cli.h"
#include "tests/runner.h"

static int parse(const char *sessions, const char *threads)
{
    char *argv[] = {"switchboard-bench", "--sessions", (char *)sessions, "--duration", "1",
                    threads ? "--threads" : NULL, (char *)threads, NULL};
    return cli_parse(threads ? 7 : 5, argv);
}

TEST(cli_threads_default_one_per_250_sessions_up_to_the_cpus)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ASSERT_EQ(parse("200", NULL), 0);
    ASSERT_EQ(g_cfg.threads, 1);
    ASSERT_EQ(parse("250", NULL), 0);
    ASSERT_EQ(g_cfg.threads, 1);
    ASSERT_EQ(parse("251", NULL), 0);
    ASSERT_EQ(g_cfg.threads, cpus >= 2 ? 2 : 1);
    ASSERT_EQ(parse("100000", NULL), 0);
    ASSERT_EQ(g_cfg.threads, (int)(cpus < 400 ? cpus : 400));
    /* Given: as given, but never more than the sessions. */
    ASSERT_EQ(parse("1000", "1"), 0);
    ASSERT_EQ(g_cfg.threads, 1);
    ASSERT_EQ(parse("3", "8"), 0);
    ASSERT_EQ(g_cfg.threads, 3);
}
