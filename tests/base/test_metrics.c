/*
 * Tests of base/metrics: every required series is rendered from start-up, histogram buckets are
 * cumulative with exact sums, labelled families grow and overflow into "other", label values are
 * escaped, and updates from several threads (with a scrape running) sum exactly.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "tests/runner.h"

#define METRICS_TEST_THREADS    4
#define METRICS_TEST_ITERS      100000
#define METRICS_TEST_TOOL_EVERY 16 /* a tool-call observation every this many iterations */
#define METRICS_TEST_OVERFLOW   300
#define METRICS_TEST_SCRAPES    200 /* scrapes taken while the updaters run */

static char *render(void)
{
    sbuf_t b = SBUF_INIT;
    metrics_render(&b);
    return sbuf_take(&b);
}

/* Asserts that the exposition holds this exact line. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    }
    TEST_FAIL_("exposition lacks the line \"%s\"", line);
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * Checks the shape of the whole exposition: every line is a HELP, a TYPE or a sample; a HELP is
 * followed by the TYPE of the same name; every sample belongs to a declared family (histogram
 * samples through their _bucket, _sum and _count suffixes) and ends in a number.
 */
static void assert_well_formed(char *text)
{
    char declared[64][80];
    char types[64][16];
    int n_declared = 0;
    char *save = NULL;
    char *prev_help = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            prev_help = line + 7;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            ASSERT(prev_help != NULL);
            char name[80], type[16];
            ASSERT_EQ(sscanf(line + 7, "%79s %15s", name, type), 2);
            ASSERT(strncmp(prev_help, name, strlen(name)) == 0 && prev_help[strlen(name)] == ' ');
            ASSERT(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                   strcmp(type, "histogram") == 0);
            ASSERT_LT(n_declared, 64);
            strcpy(declared[n_declared], name);
            strcpy(types[n_declared], type);
            n_declared++;
            prev_help = NULL;
            continue;
        }
        ASSERT(line[0] != '#');
        size_t name_len = strcspn(line, "{ ");
        int found = -1;
        for (int i = 0; i < n_declared && found < 0; i++) {
            size_t dl = strlen(declared[i]);
            if (name_len == dl && memcmp(line, declared[i], dl) == 0)
                found = i;
            else if (strcmp(types[i], "histogram") == 0 && name_len > dl &&
                     memcmp(line, declared[i], dl) == 0 &&
                     (has_suffix(line, name_len, "_bucket") || has_suffix(line, name_len, "_sum") ||
                      has_suffix(line, name_len, "_count")))
                found = i;
        }
        if (found < 0)
            TEST_FAIL_("sample of an undeclared metric: %s", line);
        const char *value = strrchr(line, ' ');
        ASSERT(value != NULL);
        char *end = NULL;
        strtod(value + 1, &end);
        ASSERT(end != value + 1 && *end == '\0');
    }
}

TEST(metrics_render_has_every_series_from_start)
{
    metrics_init();
    char *text = render();
    static const char *const lines[] = {
        "# TYPE switchboard_sessions_active gauge",
        "switchboard_sessions_active 0",
        "# TYPE switchboard_sessions_total counter",
        "switchboard_sessions_total{result=\"completed\"} 0",
        "switchboard_sessions_total{result=\"rejected\"} 0",
        "switchboard_sessions_total{result=\"error\"} 0",
        "# TYPE switchboard_ws_frames_total counter",
        "switchboard_ws_frames_total{direction=\"in\",kind=\"text\"} 0",
        "switchboard_ws_frames_total{direction=\"in\",kind=\"binary\"} 0",
        "switchboard_ws_frames_total{direction=\"in\",kind=\"audio\"} 0",
        "switchboard_ws_frames_total{direction=\"out\",kind=\"text\"} 0",
        "switchboard_ws_frames_total{direction=\"out\",kind=\"binary\"} 0",
        "switchboard_ws_frames_total{direction=\"out\",kind=\"audio\"} 0",
        "# TYPE switchboard_audio_dropped_total counter",
        "switchboard_audio_dropped_total 0",
        "# TYPE switchboard_relay_latency_seconds histogram",
        "switchboard_relay_latency_seconds_bucket{direction=\"up\",le=\"0.0001\"} 0",
        "switchboard_relay_latency_seconds_bucket{direction=\"up\",le=\"+Inf\"} 0",
        "switchboard_relay_latency_seconds_sum{direction=\"up\"} 0",
        "switchboard_relay_latency_seconds_count{direction=\"up\"} 0",
        "switchboard_relay_latency_seconds_bucket{direction=\"down\",le=\"0.00025\"} 0",
        "switchboard_relay_latency_seconds_count{direction=\"down\"} 0",
        "# TYPE switchboard_upstream_connect_seconds histogram",
        "switchboard_upstream_connect_seconds_bucket{le=\"10\"} 0",
        "switchboard_upstream_connect_seconds_sum 0",
        "switchboard_upstream_connect_seconds_count 0",
        "# TYPE switchboard_first_audio_seconds histogram",
        "switchboard_first_audio_seconds_bucket{le=\"+Inf\"} 0",
        "switchboard_first_audio_seconds_count 0",
        "# TYPE switchboard_tool_call_seconds histogram",
        "# TYPE switchboard_actor_queue_seconds histogram",
        "switchboard_actor_queue_seconds_bucket{lane=\"realtime\",le=\"0.001\"} 0",
        "switchboard_actor_queue_seconds_count{lane=\"realtime\"} 0",
        "switchboard_actor_queue_seconds_bucket{lane=\"tools\",le=\"2.5\"} 0",
        "switchboard_actor_queue_seconds_sum{lane=\"tools\"} 0",
        "# TYPE switchboard_http_requests_total counter",
        "switchboard_http_requests_total 0",
        "# TYPE switchboard_connections_open gauge",
        "switchboard_connections_open 0",
        "# TYPE switchboard_connections_refused_total counter",
        "switchboard_connections_refused_total 0",
        "# TYPE switchboard_tokens_issued_total counter",
        "switchboard_tokens_issued_total 0",
        "# TYPE switchboard_commands_sent_total counter",
        "switchboard_commands_sent_total 0",
        "# TYPE switchboard_commands_acked_total counter",
        "switchboard_commands_acked_total 0",
        "# TYPE switchboard_actors_live gauge",
        "switchboard_actors_live 0",
    };
    for (size_t i = 0; i < ARRAY_LEN(lines); i++)
        assert_line(text, lines[i]);
    ASSERT_STR_CONTAINS(text, "# HELP switchboard_tool_call_seconds ");
    assert_well_formed(text);
    free(text);
}

TEST(metrics_histogram_buckets_cumulative_and_sum)
{
    metrics_init();
    metric_hist_t *h = &g_metrics.upstream_connect_seconds;
    metric_hist_observe_ns(h, 50 * 1000ULL);  /* 50 µs */
    metric_hist_observe_ns(h, 1 * NS_PER_MS); /* exactly a bound: le="0.001" */
    metric_hist_observe_ns(h, 3 * NS_PER_MS);
    metric_hist_observe_ns(h, 2 * NS_PER_SEC);
    metric_hist_observe_ns(h, 10 * NS_PER_SEC); /* the last finite bound */
    metric_hist_observe_ns(h, 20 * NS_PER_SEC); /* +Inf only */
    ASSERT_EQ(h->buckets[0], 1);
    ASSERT_EQ(h->buckets[3], 1);
    ASSERT_EQ(h->buckets[5], 1);
    ASSERT_EQ(h->buckets[13], 1);
    ASSERT_EQ(h->buckets[15], 1);
    ASSERT_EQ(h->buckets[16], 1);
    ASSERT_EQ(h->count, 6);
    ASSERT_EQ(h->sum_ns, 32004050000ULL);

    char *text = render();
    static const char *const lines[] = {
        "switchboard_upstream_connect_seconds_bucket{le=\"0.0001\"} 1",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.00025\"} 1",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.0005\"} 1",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.001\"} 2",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.0025\"} 2",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.005\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.01\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.025\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.05\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.1\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.25\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"0.5\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"1\"} 3",
        "switchboard_upstream_connect_seconds_bucket{le=\"2.5\"} 4",
        "switchboard_upstream_connect_seconds_bucket{le=\"5\"} 4",
        "switchboard_upstream_connect_seconds_bucket{le=\"10\"} 5",
        "switchboard_upstream_connect_seconds_bucket{le=\"+Inf\"} 6",
        "switchboard_upstream_connect_seconds_sum 32.00405",
        "switchboard_upstream_connect_seconds_count 6",
        "switchboard_first_audio_seconds_count 0",
    };
    for (size_t i = 0; i < ARRAY_LEN(lines); i++)
        assert_line(text, lines[i]);
    free(text);
}

TEST(metrics_counters_and_gauges)
{
    metrics_init();
    metric_inc(&g_metrics.sessions_total[METRIC_RESULT_REJECTED], 3);
    metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_OUT][METRIC_KIND_AUDIO], 7);
    metric_inc(&g_metrics.tokens_issued_total, 1);
    metric_gauge_add(&g_metrics.sessions_active, 5);
    metric_gauge_add(&g_metrics.sessions_active, -2);
    metric_gauge_set(&g_metrics.actors_live, -4);
    ASSERT_EQ(metric_counter_get(&g_metrics.sessions_total[METRIC_RESULT_REJECTED]), 3);
    ASSERT_EQ(metric_gauge_get(&g_metrics.sessions_active), 3);
    char *text = render();
    assert_line(text, "switchboard_sessions_total{result=\"rejected\"} 3");
    assert_line(text, "switchboard_sessions_total{result=\"completed\"} 0");
    assert_line(text, "switchboard_ws_frames_total{direction=\"out\",kind=\"audio\"} 7");
    assert_line(text, "switchboard_tokens_issued_total 1");
    assert_line(text, "switchboard_sessions_active 3");
    assert_line(text, "switchboard_actors_live -4");
    free(text);
}

TEST(metrics_families_add_children_on_first_use)
{
    metrics_init();
    metric_tool_call_observe("lookup", "completed", 1 * NS_PER_MS);
    metric_tool_call_observe("lookup", "completed", 2 * NS_PER_MS);
    metric_tool_call_observe("lookup", "failed", 5 * NS_PER_MS);
    metric_tool_call_observe("navigate", "timeout", 3 * NS_PER_SEC);

    char *text = render();
    assert_line(text,
                "switchboard_tool_call_seconds_count{tool=\"lookup\",status=\"completed\"} 2");
    assert_line(text,
                "switchboard_tool_call_seconds_sum{tool=\"lookup\",status=\"completed\"} 0.003");
    assert_line(text, "switchboard_tool_call_seconds_bucket{tool=\"lookup\",status=\"completed\","
                      "le=\"0.001\"} 1");
    assert_line(text, "switchboard_tool_call_seconds_bucket{tool=\"lookup\",status=\"failed\","
                      "le=\"0.005\"} 1");
    assert_line(text, "switchboard_tool_call_seconds_sum{tool=\"navigate\",status=\"timeout\"} 3");
    const char *lookup = strstr(text, "_count{tool=\"lookup\",status=\"completed\"}");
    ASSERT(lookup != NULL && strstr(lookup + 1, "_count{tool=\"lookup\",status=\"completed\"}") ==
                                 NULL); /* one child per label values */
    ASSERT(strstr(text, "\"other\"") == NULL);
    assert_well_formed(text);
    free(text);
    metrics_destroy();
}

TEST(metrics_family_overflow_goes_to_other)
{
    metrics_init();
    char tool[32];
    for (int i = 0; i < METRICS_TEST_OVERFLOW; i++) {
        snprintf(tool, sizeof(tool), "t%d", i);
        metric_tool_call_observe(tool, "completed", NS_PER_MS);
    }
    metric_tool_call_observe("t0", "completed", NS_PER_MS); /* an existing child still works */
    char *text = render();
    assert_line(text, "switchboard_tool_call_seconds_count{tool=\"t0\",status=\"completed\"} 2");
    snprintf(tool, sizeof(tool), "tool=\"t%d\"", METRICS_MAX_CHILDREN - 1);
    ASSERT_STR_CONTAINS(text, tool);
    snprintf(tool, sizeof(tool), "tool=\"t%d\"", METRICS_MAX_CHILDREN);
    ASSERT(strstr(text, tool) == NULL);
    char line[128];
    snprintf(line, sizeof(line),
             "switchboard_tool_call_seconds_count{tool=\"other\",status=\"other\"} %d",
             METRICS_TEST_OVERFLOW - METRICS_MAX_CHILDREN);
    assert_line(text, line);
    free(text);
    metrics_destroy();
}

TEST(metrics_label_values_escaped)
{
    metrics_init();
    metric_tool_call_observe("a\"b\\c\nd", "failed", NS_PER_MS);
    char *text = render();
    assert_line(
        text, "switchboard_tool_call_seconds_count{tool=\"a\\\"b\\\\c\\nd\",status=\"failed\"} 1");
    sbuf_t labels = SBUF_INIT;
    metrics_put_label(&labels, "tenant", "acme");
    metrics_put_label(&labels, "alias", "x\"y\\z\n");
    ASSERT_STR_EQ(labels.data, "tenant=\"acme\",alias=\"x\\\"y\\\\z\\n\"");
    sbuf_destroy(&labels);
    assert_well_formed(text);
    free(text);
    metrics_destroy();
}

static double gauge_fixed(void *arg)
{
    return *(const double *)arg;
}

TEST(metrics_gauge_fns_rendered)
{
    metrics_init();
    static const double depth = 42, ratio = 0.1, big = 1e21;
    metrics_register_gauge_fn("switchboard_mailbox_depth", "Messages waiting in mailboxes.",
                              gauge_fixed, (void *)&depth);
    metrics_register_gauge_fn("switchboard_test_ratio", "A ratio\nwith \\ escapes.", gauge_fixed,
                              (void *)&ratio);
    metrics_register_gauge_fn("switchboard_test_big", "Big.", gauge_fixed, (void *)&big);
    char *text = render();
    assert_line(text, "# HELP switchboard_mailbox_depth Messages waiting in mailboxes.");
    assert_line(text, "# TYPE switchboard_mailbox_depth gauge");
    assert_line(text, "switchboard_mailbox_depth 42");
    assert_line(text, "# HELP switchboard_test_ratio A ratio\\nwith \\\\ escapes.");
    assert_line(text, "switchboard_test_ratio 0.1");
    assert_line(text, "switchboard_test_big 1e+21");
    assert_well_formed(text);
    free(text);
    metrics_destroy();
}

/* ---- concurrency ------------------------------------------------------------------------ */

static pthread_barrier_t start_barrier;

static void *updater_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    char own[16];
    snprintf(own, sizeof(own), "own%d", t);
    pthread_barrier_wait(&start_barrier);
    for (int i = 0; i < METRICS_TEST_ITERS; i++) {
        metric_inc(&g_metrics.http_requests_total, 1);
        metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_IN][METRIC_KIND_AUDIO], 2);
        metric_gauge_add(&g_metrics.connections_open, 2);
        metric_gauge_add(&g_metrics.connections_open, -1);
        metric_hist_observe_ns(&g_metrics.relay_latency_seconds[METRIC_RELAY_UP],
                               (uint64_t)(i % 4) * NS_PER_MS);
        if (i % METRICS_TEST_TOOL_EVERY == 0) {
            metric_tool_call_observe("shared", "completed", NS_PER_MS);
            metric_tool_call_observe(own, "completed", NS_PER_MS);
        }
    }
    return NULL;
}

/*
 * Scrapes while the updaters run (a fixed number of times: a stop flag read in a tight loop
 * would itself be a relaxed load that TSan cannot tell from a race) and checks each scrape.
 */
static void *scraper_main(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_barrier);
    for (int i = 0; i < METRICS_TEST_SCRAPES; i++) {
        char *text = render();
        assert_well_formed(text);
        free(text);
    }
    return NULL;
}

TEST(metrics_concurrent_updates_sum_exactly)
{
    metrics_init();
    pthread_barrier_init(&start_barrier, NULL, METRICS_TEST_THREADS + 1);
    pthread_t th[METRICS_TEST_THREADS], scraper;
    pthread_create(&scraper, NULL, scraper_main, NULL);
    for (int t = 0; t < METRICS_TEST_THREADS; t++)
        pthread_create(&th[t], NULL, updater_main, (void *)(intptr_t)t);
    for (int t = 0; t < METRICS_TEST_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_join(scraper, NULL);
    pthread_barrier_destroy(&start_barrier);

    const uint64_t total = (uint64_t)METRICS_TEST_THREADS * METRICS_TEST_ITERS;
    ASSERT_EQ(metric_counter_get(&g_metrics.http_requests_total), total);
    ASSERT_EQ(metric_counter_get(&g_metrics.ws_frames_total[METRIC_DIR_IN][METRIC_KIND_AUDIO]),
              2 * total);
    ASSERT_EQ(metric_gauge_get(&g_metrics.connections_open), (int64_t)total);
    const metric_hist_t *h = &g_metrics.relay_latency_seconds[METRIC_RELAY_UP];
    ASSERT_EQ(h->count, total);
    ASSERT_EQ(h->sum_ns, total / 4 * (0 + 1 + 2 + 3) * NS_PER_MS);
    ASSERT_EQ(h->buckets[0], total / 4); /* the 0 ns observations */

    const int tool_calls = METRICS_TEST_ITERS / METRICS_TEST_TOOL_EVERY;
    char *text = render();
    char line[160];
    snprintf(line, sizeof(line),
             "switchboard_tool_call_seconds_count{tool=\"shared\",status=\"completed\"} %d",
             tool_calls * METRICS_TEST_THREADS);
    assert_line(text, line);
    for (int t = 0; t < METRICS_TEST_THREADS; t++) {
        snprintf(line, sizeof(line),
                 "switchboard_tool_call_seconds_count{tool=\"own%d\",status=\"completed\"} %d", t,
                 tool_calls);
        assert_line(text, line);
    }
    snprintf(line, sizeof(line), "switchboard_http_requests_total %" PRIu64, total);
    assert_line(text, line);
    free(text);
    metrics_destroy();
}
