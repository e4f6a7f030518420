/*
 * Process metrics (SPEC 10), rendered in the Prometheus text format by metrics_render().
 *
 * CONTRACT
 *   Updates: any thread, wait-free (one relaxed atomic add per counter/bucket). Relaxed is enough
 *   because every value is an independent, monotonically advancing (or gauge) statistic that a
 *   scrape reads as a snapshot; no other memory is published through them.
 *   Rendering: any thread; sees each value at some point during the scrape.
 *   Labelled families with dynamic label values (tool) add children under a mutex the
 *   first time a label value is seen, up to METRICS_MAX_CHILDREN per family; later updates of
 *   an existing child are lock-free.
 */
#ifndef SB_BASE_METRICS_H
#define SB_BASE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

#define METRICS_HIST_BUCKETS 16
#define METRICS_MAX_CHILDREN 256

typedef struct metric_counter {
    uint64_t v; /* [atomic, any] */
} metric_counter_t;

typedef struct metric_gauge {
    int64_t v; /* [atomic, any] */
} metric_gauge_t;

/* A histogram of durations; bounds are upper bounds in seconds, +Inf implied. */
typedef struct metric_hist {
    const double *bounds;                       /* METRICS_HIST_BUCKETS ascending bounds */
    uint64_t buckets[METRICS_HIST_BUCKETS + 1]; /* [atomic, any] non-cumulative counts */
    uint64_t count;                             /* [atomic, any] */
    uint64_t sum_ns;                            /* [atomic, any] sum of observations in ns */
} metric_hist_t;

enum { METRIC_DIR_IN = 0, METRIC_DIR_OUT = 1, METRIC_DIR_COUNT };
enum { METRIC_KIND_TEXT = 0, METRIC_KIND_BINARY = 1, METRIC_KIND_AUDIO = 2, METRIC_KIND_COUNT };
enum {
    METRIC_RESULT_COMPLETED = 0,
    METRIC_RESULT_REJECTED = 1,
    METRIC_RESULT_ERROR = 2,
    METRIC_RESULT_COUNT
};
enum { METRIC_LANE_REALTIME = 0, METRIC_LANE_TOOLS = 1, METRIC_LANE_COUNT };
enum { METRIC_RELAY_UP = 0, METRIC_RELAY_DOWN = 1, METRIC_RELAY_COUNT };

/* The fixed metrics of the process. Fields are updated with the functions below. */
typedef struct metrics {
    metric_gauge_t sessions_active;
    metric_counter_t sessions_total[METRIC_RESULT_COUNT];
    metric_counter_t ws_frames_total[METRIC_DIR_COUNT][METRIC_KIND_COUNT];
    metric_counter_t audio_dropped_total;
    metric_counter_t http_requests_total;
    metric_gauge_t connections_open;
    metric_counter_t connections_refused_total;
    metric_counter_t tokens_issued_total;
    metric_counter_t commands_sent_total;
    metric_counter_t commands_acked_total;
    metric_gauge_t actors_live;
    metric_hist_t relay_latency_seconds[METRIC_RELAY_COUNT];
    metric_hist_t upstream_connect_seconds;
    metric_hist_t first_audio_seconds;
    metric_hist_t redis_seconds; /* command round trips to Redis (SPEC 13) */
    metric_hist_t actor_queue_seconds[METRIC_LANE_COUNT];
} metrics_t;

extern metrics_t g_metrics;

/* Initialises g_metrics (bounds, zeroes). Call once before threads start. */
void metrics_init(void);

void metric_inc(metric_counter_t *c, uint64_t n);
void metric_gauge_add(metric_gauge_t *g, int64_t n);
void metric_gauge_set(metric_gauge_t *g, int64_t v);
int64_t metric_gauge_get(const metric_gauge_t *g);
uint64_t metric_counter_get(const metric_counter_t *c);
/* Records one observation of ns nanoseconds. */
void metric_hist_observe_ns(metric_hist_t *h, uint64_t ns);

/*
 * Tool-call durations by {tool, status}; children created on first use (see CONTRACT).
 * status is one of completed, failed, timeout.
 */
void metric_tool_call_observe(const char *tool, const char *status, uint64_t ns);

/*
 * A gauge computed at scrape time (e.g. switchboard_mailbox_depth, summed over live actors).
 * fn runs on the scraping thread. Register before threads start.
 */
typedef double (*metric_gauge_fn)(void *arg);
void metrics_register_gauge_fn(const char *name, const char *help, metric_gauge_fn fn, void *arg);

/*
 * A section rendered at scrape time by its owner, for families whose label values come and go
 * with the configuration (tenants): fn appends complete HELP/TYPE/series lines to out. fn runs
 * on the scraping thread. Register before threads start.
 */
typedef void (*metric_text_fn)(sbuf_t *out, void *arg);
void metrics_register_text_fn(metric_text_fn fn, void *arg);

/*
 * For metric_text_fn sections: the "# HELP name help" and "# TYPE name type" lines (help escaped),
 * and one label name="value" (value escaped; a comma first when out is not empty). Thread: any.
 */
void metrics_put_help(sbuf_t *out, const char *name, const char *help, const char *type);
void metrics_put_label(sbuf_t *out, const char *name, const char *value);

/* For metric_text_fn sections: the _bucket, _sum and _count series of h (labels: `name="value"`
 * pairs from metrics_put_label(), or NULL). Thread: any. */
void metrics_put_hist(sbuf_t *out, const char *name, const char *labels, const metric_hist_t *h);

/* Appends the Prometheus text exposition of every metric to out. Thread: any. */
void metrics_render(sbuf_t *out);

/* Frees family children and registrations (tests, shutdown). */
void metrics_destroy(void);

#endif
