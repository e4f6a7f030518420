/*
 * Process metrics and their Prometheus text rendering (format 0.0.4); see the CONTRACT in
 * metrics.h.
 *
 * Labelled families (tool calls, MCP servers) keep a fixed array of child pointers and a count.
 * A child is filled in completely, its pointer stored in the next free slot, and only then is
 * the count raised past it (after a store fence), so a reader that loads the count (then a load
 * fence) sees every child below it whole, without a lock. Adders serialise on the family mutex;
 * children are never removed while threads run, so a pointer read once stays valid.
 */
#include "base/metrics.h"

#include <ck_pr.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/*
 * ck_pr fences are invisible to ThreadSanitizer. Under TSan these annotations state the same
 * release/acquire pairing that the fences give, so the lock-free child lookup is checked rather
 * than reported as a race. Elsewhere they compile to nothing.
 */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define METRICS_TSAN_RELEASE(addr) __tsan_release(addr)
#define METRICS_TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define METRICS_TSAN_RELEASE(addr) ((void)(addr))
#define METRICS_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

#define METRICS_FAMILY_MAX_LABELS 2
#define METRICS_MAX_GAUGE_FNS     32
#define METRICS_MAX_TEXT_FNS      8
#define METRICS_OTHER_LABEL       "other" /* label value of a full family's overflow child */
#define METRICS_NUM_MAX_BYTES     64      /* a formatted double or uint64 with room to spare */
#define METRICS_FRAC_DIGITS       9       /* nanoseconds as a decimal fraction of a second */

/* Upper bounds in seconds of every histogram: 100 µs to 10 s; +Inf is implied. */
static const double metrics_bounds_s[METRICS_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* clang-format off */
#define METRICS_HIST_INIT {.bounds = metrics_bounds_s}
/* clang-format on */

/* Statically initialised bounds, so an observation before metrics_init() is still valid. */
metrics_t g_metrics = {
    .relay_latency_seconds = {METRICS_HIST_INIT, METRICS_HIST_INIT},
    .upstream_connect_seconds = METRICS_HIST_INIT,
    .first_audio_seconds = METRICS_HIST_INIT,
    .redis_seconds = METRICS_HIST_INIT,
    .actor_queue_seconds = {METRICS_HIST_INIT, METRICS_HIST_INIT},
};

/* ------------------------------------------------------------------------------------------ */
/* Families with dynamic label values                                                          */

typedef enum { FAMILY_HIST, FAMILY_GAUGE } family_kind_t;

typedef struct metrics_child {
    const char *values[METRICS_FAMILY_MAX_LABELS]; /* [immutable once published] into text[] */
    metric_hist_t hist;                            /* FAMILY_HIST */
    metric_gauge_t gauge;                          /* FAMILY_GAUGE */
    char text[]; /* the label values, each NUL-terminated, one after another */
} metrics_child_t;

typedef struct metrics_family {
    const char *name;
    const char *help;
    family_kind_t kind;
    size_t n_labels;
    const char *label_names[METRICS_FAMILY_MAX_LABELS];
    metrics_child_t *other; /* [immutable] takes observations once children[] is full */
    unsigned other_used;    /* [atomic, any] set once `other` has been written */
    pthread_mutex_t add_lock;
    unsigned n; /* [atomic, any] published children; written only under add_lock */
    metrics_child_t *children[METRICS_MAX_CHILDREN]; /* [atomic, any] slot i set before n > i */
} metrics_family_t;

static metrics_child_t tool_call_other = {
    .values = {METRICS_OTHER_LABEL, METRICS_OTHER_LABEL},
    .hist = METRICS_HIST_INIT,
};

static metrics_family_t tool_call_family = {
    .name = "switchboard_tool_call_seconds",
    .help = "Duration of tool calls that reached a terminal status, by tool and status.",
    .kind = FAMILY_HIST,
    .n_labels = 2,
    .label_names = {"tool", "status"},
    .other = &tool_call_other,
    .add_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ------------------------------------------------------------------------------------------ */
/* Gauges computed at scrape time                                                              */

typedef struct gauge_fn_reg {
    char *name;
    char *help;
    metric_gauge_fn fn;
    void *arg;
} gauge_fn_reg_t;

/* [immutable once threads start]: registration happens during start-up only. */
static gauge_fn_reg_t gauge_fns[METRICS_MAX_GAUGE_FNS];
static size_t n_gauge_fns;

typedef struct text_fn_reg {
    metric_text_fn fn;
    void *arg;
} text_fn_reg_t;

static text_fn_reg_t text_fns[METRICS_MAX_TEXT_FNS];
static size_t n_text_fns;

/* ------------------------------------------------------------------------------------------ */
/* Updates. All relaxed: see the CONTRACT in metrics.h.                                       */

void metric_inc(metric_counter_t *c, uint64_t n)
{
    ck_pr_add_64(&c->v, n);
}

/*
 * Gauges are int64_t while CK's 64-bit operations take uint64_t; adding the unsigned image of a
 * two's-complement value is the signed addition.
 */
void metric_gauge_add(metric_gauge_t *g, int64_t n)
{
    ck_pr_add_64((uint64_t *)&g->v, (uint64_t)n);
}

void metric_gauge_set(metric_gauge_t *g, int64_t v)
{
    ck_pr_store_64((uint64_t *)&g->v, (uint64_t)v);
}

int64_t metric_gauge_get(const metric_gauge_t *g)
{
    return (int64_t)ck_pr_load_64((const uint64_t *)&g->v);
}

uint64_t metric_counter_get(const metric_counter_t *c)
{
    return ck_pr_load_64(&c->v);
}

/*
 * Bucket i counts observations in (bounds[i-1], bounds[i]]; the last one is (10 s, +Inf).
 * Dividing by 1e9 is correctly rounded, so an observation of exactly a bound (say 1 ms) lands
 * in that bound's bucket, as Prometheus's "le" requires. A linear scan suits the data: most
 * observations are in the first few buckets.
 */
void metric_hist_observe_ns(metric_hist_t *h, uint64_t ns)
{
    const double *bounds = h->bounds ? h->bounds : metrics_bounds_s;
    double s = (double)ns / (double)NS_PER_SEC;
    size_t i = 0;
    while (i < METRICS_HIST_BUCKETS && s > bounds[i])
        i++;
    ck_pr_add_64(&h->buckets[i], 1);
    ck_pr_add_64(&h->sum_ns, ns);
    ck_pr_add_64(&h->count, 1);
}

static bool child_matches(const metrics_child_t *c, const char *const *values, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++)
        if (strcmp(c->values[i], values[i]) != 0)
            return false;
    return true;
}

/* Loads the published child count; every child below it may then be read without a lock. */
static unsigned family_count(metrics_family_t *f)
{
    unsigned n = ck_pr_load_uint(&f->n);
    ck_pr_fence_load(); /* pairs with the ck_pr_fence_store in family_child() */
    METRICS_TSAN_ACQUIRE(&f->n);
    return n;
}

static metrics_child_t *family_find(metrics_family_t *f, const char *const *values, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        metrics_child_t *c = ck_pr_load_ptr(&f->children[i]);
        if (child_matches(c, values, f->n_labels))
            return c;
    }
    return NULL;
}

static metrics_child_t *child_new(const metrics_family_t *f, const char *const *values)
{
    size_t lens[METRICS_FAMILY_MAX_LABELS], total = 0;
    for (size_t i = 0; i < f->n_labels; i++) {
        lens[i] = strlen(values[i]);
        total += lens[i] + 1;
    }
    metrics_child_t *c = xcalloc(1, sizeof(*c) + total);
    char *p = c->text;
    for (size_t i = 0; i < f->n_labels; i++) {
        memcpy(p, values[i], lens[i] + 1);
        c->values[i] = p;
        p += lens[i] + 1;
    }
    c->hist.bounds = metrics_bounds_s;
    return c;
}

/*
 * Returns the child for these label values, adding it on first use. The lookup of an existing
 * child takes no lock; only adding one does. A full family hands out its "other" child.
 */
static metrics_child_t *family_child(metrics_family_t *f, const char *const *values)
{
    unsigned n = family_count(f);
    metrics_child_t *c = family_find(f, values, n);
    if (likely(c != NULL))
        return c;
    if (n >= METRICS_MAX_CHILDREN) {
        ck_pr_store_uint(&f->other_used, 1); /* relaxed: render shows `other` once it sees it */
        return f->other;
    }

    pthread_mutex_lock(&f->add_lock);
    unsigned now = ck_pr_load_uint(&f->n); /* only adders write n, and they hold the lock */
    c = family_find(f, values, now);
    if (c == NULL && now < METRICS_MAX_CHILDREN) {
        c = child_new(f, values);
        ck_pr_store_ptr(&f->children[now], c);
        ck_pr_fence_store(); /* the child and its slot before the count: pairs with family_count */
        METRICS_TSAN_RELEASE(&f->n);
        ck_pr_store_uint(&f->n, now + 1);
    } else if (c == NULL) {
        ck_pr_store_uint(&f->other_used, 1);
        c = f->other;
    }
    pthread_mutex_unlock(&f->add_lock);
    return c;
}

void metric_tool_call_observe(const char *tool, const char *status, uint64_t ns)
{
    const char *values[METRICS_FAMILY_MAX_LABELS] = {tool ? tool : "", status ? status : ""};
    metric_hist_observe_ns(&family_child(&tool_call_family, values)->hist, ns);
}

/* Frees the children of f and zeroes its overflow child. No other thread may use f. */
static void family_clear(metrics_family_t *f)
{
    unsigned n = ck_pr_load_uint(&f->n);
    for (unsigned i = 0; i < n; i++) {
        free(f->children[i]);
        ck_pr_store_ptr(&f->children[i], NULL);
    }
    ck_pr_store_uint(&f->n, 0);
    ck_pr_store_uint(&f->other_used, 0);
    memset(&f->other->hist, 0, sizeof(f->other->hist));
    f->other->hist.bounds = metrics_bounds_s;
    memset(&f->other->gauge, 0, sizeof(f->other->gauge));
}

void metrics_init(void)
{
    memset(&g_metrics, 0, sizeof(g_metrics));
    for (size_t i = 0; i < METRIC_RELAY_COUNT; i++)
        g_metrics.relay_latency_seconds[i].bounds = metrics_bounds_s;
    g_metrics.upstream_connect_seconds.bounds = metrics_bounds_s;
    g_metrics.first_audio_seconds.bounds = metrics_bounds_s;
    g_metrics.redis_seconds.bounds = metrics_bounds_s;
    for (size_t i = 0; i < METRIC_LANE_COUNT; i++)
        g_metrics.actor_queue_seconds[i].bounds = metrics_bounds_s;
    family_clear(&tool_call_family);
}

void metrics_register_text_fn(metric_text_fn fn, void *arg)
{
    if (n_text_fns == METRICS_MAX_TEXT_FNS) {
        fprintf(stderr, "fatal: more than %d scrape-time sections\n", METRICS_MAX_TEXT_FNS);
        abort();
    }
    text_fns[n_text_fns++] = (text_fn_reg_t){fn, arg};
}

/* Too many registrations is a start-up programming error: fail loudly rather than hide one. */
void metrics_register_gauge_fn(const char *name, const char *help, metric_gauge_fn fn, void *arg)
{
    if (n_gauge_fns == METRICS_MAX_GAUGE_FNS) {
        fprintf(stderr, "fatal: more than %d scrape-time gauges (registering %s)\n",
                METRICS_MAX_GAUGE_FNS, name);
        abort();
    }
    gauge_fn_reg_t *r = &gauge_fns[n_gauge_fns++];
    r->name = xstrdup(name);
    r->help = xstrdup(help ? help : "");
    r->fn = fn;
    r->arg = arg;
}

void metrics_destroy(void)
{
    family_clear(&tool_call_family);
    for (size_t i = 0; i < n_gauge_fns; i++) {
        free(gauge_fns[i].name);
        free(gauge_fns[i].help);
    }
    memset(gauge_fns, 0, sizeof(gauge_fns));
    n_gauge_fns = 0;
    n_text_fns = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */

/* HELP text escapes backslash and newline (format 0.0.4). */
void metrics_put_help(sbuf_t *out, const char *name, const char *help, const char *type)
{
    sbuf_printf(out, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            sbuf_puts(out, "\\\\");
        else if (*p == '\n')
            sbuf_puts(out, "\\n");
        else
            sbuf_putc(out, *p);
    }
    sbuf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* Appends name="value" with the value escaped: backslash, double quote and newline. */
void metrics_put_label(sbuf_t *out, const char *name, const char *value)
{
    if (out->len > 0)
        sbuf_putc(out, ',');
    sbuf_printf(out, "%s=\"", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            sbuf_puts(out, "\\\\");
        else if (*p == '"')
            sbuf_puts(out, "\\\"");
        else if (*p == '\n')
            sbuf_puts(out, "\\n");
        else
            sbuf_putc(out, *p);
    }
    sbuf_putc(out, '"');
}

/* Writes `name{labels}` or just `name` when labels is empty, then a space. */
static void put_series(sbuf_t *out, const char *name, const char *suffix, const char *labels)
{
    sbuf_puts(out, name);
    sbuf_puts(out, suffix);
    if (labels != NULL && *labels != '\0')
        sbuf_printf(out, "{%s}", labels);
    sbuf_putc(out, ' ');
}

static void put_u64_sample(sbuf_t *out, const char *name, const char *labels, uint64_t v)
{
    put_series(out, name, "", labels);
    sbuf_printf(out, "%" PRIu64 "\n", v);
}

static void put_i64_sample(sbuf_t *out, const char *name, const char *labels, int64_t v)
{
    put_series(out, name, "", labels);
    sbuf_printf(out, "%" PRId64 "\n", v);
}

/* Nanoseconds as exact decimal seconds, without trailing zeros: 3003000000 -> "3.003". */
static void put_seconds(sbuf_t *out, uint64_t ns)
{
    uint64_t whole = ns / NS_PER_SEC, frac = ns % NS_PER_SEC;
    if (frac == 0) {
        sbuf_printf(out, "%" PRIu64, whole);
        return;
    }
    char digits[METRICS_FRAC_DIGITS + 1];
    snprintf(digits, sizeof(digits), "%0*" PRIu64, METRICS_FRAC_DIGITS, frac);
    size_t len = METRICS_FRAC_DIGITS;
    while (digits[len - 1] == '0')
        len--;
    digits[len] = '\0';
    sbuf_printf(out, "%" PRIu64 ".%s", whole, digits);
}

/* Shortest of %.15g and %.17g that reads back as the same double; Prometheus spells the rest. */
static void put_double(sbuf_t *out, double v)
{
    if (isnan(v)) {
        sbuf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        sbuf_puts(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char num[METRICS_NUM_MAX_BYTES];
    snprintf(num, sizeof(num), "%.15g", v);
    if (strtod(num, NULL) != v)
        snprintf(num, sizeof(num), "%.17g", v);
    sbuf_puts(out, num);
}

/*
 * One histogram series: cumulative buckets, then _sum and _count. Each bucket is read once and
 * _count is their total, so +Inf and _count always agree even while observations land; _sum is
 * read separately and may include an observation the buckets missed.
 */
static void put_hist(sbuf_t *out, const char *name, const char *labels, const metric_hist_t *h)
{
    const double *bounds = h->bounds ? h->bounds : metrics_bounds_s;
    const char *sep = labels && *labels ? "," : "";
    const char *lab = labels ? labels : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= METRICS_HIST_BUCKETS; i++) {
        cum += ck_pr_load_64(&h->buckets[i]);
        sbuf_printf(out, "%s_bucket{%s%sle=\"", name, lab, sep);
        if (i < METRICS_HIST_BUCKETS)
            sbuf_printf(out, "%g", bounds[i]);
        else
            sbuf_puts(out, "+Inf");
        sbuf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
    put_series(out, name, "_sum", labels);
    put_seconds(out, ck_pr_load_64(&h->sum_ns));
    sbuf_putc(out, '\n');
    put_series(out, name, "_count", labels);
    sbuf_printf(out, "%" PRIu64 "\n", cum);
}

void metrics_put_hist(sbuf_t *out, const char *name, const char *labels, const metric_hist_t *h)
{
    put_hist(out, name, labels, h);
}

static void put_child(sbuf_t *out, const metrics_family_t *f, const metrics_child_t *c,
                      sbuf_t *labels)
{
    sbuf_reset(labels);
    for (size_t i = 0; i < f->n_labels; i++)
        metrics_put_label(labels, f->label_names[i], c->values[i]);
    if (f->kind == FAMILY_HIST)
        put_hist(out, f->name, labels->data, &c->hist);
    else
        put_i64_sample(out, f->name, labels->data, metric_gauge_get(&c->gauge));
}

static void put_family(sbuf_t *out, metrics_family_t *f)
{
    metrics_put_help(out, f->name, f->help, f->kind == FAMILY_HIST ? "histogram" : "gauge");
    sbuf_t labels = SBUF_INIT;
    unsigned n = family_count(f);
    for (unsigned i = 0; i < n; i++)
        put_child(out, f, ck_pr_load_ptr(&f->children[i]), &labels);
    if (ck_pr_load_uint(&f->other_used))
        put_child(out, f, f->other, &labels);
    sbuf_destroy(&labels);
}

typedef struct scalar_desc {
    const char *name;
    const char *help;
    const metric_counter_t *counter; /* exactly one of counter and gauge is set */
    const metric_gauge_t *gauge;
} scalar_desc_t;

static void put_scalar(sbuf_t *out, const scalar_desc_t *d)
{
    if (d->counter) {
        metrics_put_help(out, d->name, d->help, "counter");
        put_u64_sample(out, d->name, NULL, metric_counter_get(d->counter));
    } else {
        metrics_put_help(out, d->name, d->help, "gauge");
        put_i64_sample(out, d->name, NULL, metric_gauge_get(d->gauge));
    }
}

static const scalar_desc_t scalars_head[] = {
    {"switchboard_sessions_active", "Voice sessions currently live.", NULL,
     &g_metrics.sessions_active},
};

static const scalar_desc_t scalars_tail[] = {
    {"switchboard_audio_dropped_total",
     "Client audio frames dropped while the upstream was not ready or under backpressure.",
     &g_metrics.audio_dropped_total, NULL},
    {"switchboard_http_requests_total", "HTTP requests received.", &g_metrics.http_requests_total,
     NULL},
    {"switchboard_connections_open", "Client connections currently open.", NULL,
     &g_metrics.connections_open},
    {"switchboard_connections_refused_total", "Client connections refused.",
     &g_metrics.connections_refused_total, NULL},
    {"switchboard_tokens_issued_total", "Session tokens minted.", &g_metrics.tokens_issued_total,
     NULL},
    {"switchboard_commands_sent_total", "Commands sent to pages.", &g_metrics.commands_sent_total,
     NULL},
    {"switchboard_commands_acked_total", "Commands acknowledged by pages.",
     &g_metrics.commands_acked_total, NULL},
    {"switchboard_actors_live", "Actors currently alive.", NULL, &g_metrics.actors_live},
};

static const char *const result_names[METRIC_RESULT_COUNT] = {"completed", "rejected", "error"};
static const char *const dir_names[METRIC_DIR_COUNT] = {"in", "out"};
static const char *const kind_names[METRIC_KIND_COUNT] = {"text", "binary", "audio"};
static const char *const relay_names[METRIC_RELAY_COUNT] = {"up", "down"};
static const char *const lane_names[METRIC_LANE_COUNT] = {"realtime", "tools"};

void metrics_render(sbuf_t *out)
{
    sbuf_t labels = SBUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(scalars_head); i++)
        put_scalar(out, &scalars_head[i]);

    const char *name = "switchboard_sessions_total";
    metrics_put_help(out, name, "Voice sessions ended, by result.", "counter");
    for (size_t r = 0; r < METRIC_RESULT_COUNT; r++) {
        sbuf_reset(&labels);
        metrics_put_label(&labels, "result", result_names[r]);
        put_u64_sample(out, name, labels.data, metric_counter_get(&g_metrics.sessions_total[r]));
    }

    name = "switchboard_ws_frames_total";
    metrics_put_help(out, name,
                     "WebSocket frames, by direction and kind (audio: JSON carrying base64).",
                     "counter");
    for (size_t d = 0; d < METRIC_DIR_COUNT; d++) {
        for (size_t k = 0; k < METRIC_KIND_COUNT; k++) {
            sbuf_reset(&labels);
            metrics_put_label(&labels, "direction", dir_names[d]);
            metrics_put_label(&labels, "kind", kind_names[k]);
            put_u64_sample(out, name, labels.data,
                           metric_counter_get(&g_metrics.ws_frames_total[d][k]));
        }
    }

    name = "switchboard_relay_latency_seconds";
    metrics_put_help(out, name,
                     "Time from a frame arriving on one side to its relay leaving on the other "
                     "(up: client to upstream, down: upstream to client).",
                     "histogram");
    for (size_t d = 0; d < METRIC_RELAY_COUNT; d++) {
        sbuf_reset(&labels);
        metrics_put_label(&labels, "direction", relay_names[d]);
        put_hist(out, name, labels.data, &g_metrics.relay_latency_seconds[d]);
    }

    name = "switchboard_upstream_connect_seconds";
    metrics_put_help(out, name, "Time from the start of an upstream attempt to session.created.",
                     "histogram");
    put_hist(out, name, NULL, &g_metrics.upstream_connect_seconds);

    name = "switchboard_first_audio_seconds";
    metrics_put_help(out, name, "Time from speech stopped to the first assistant audio.",
                     "histogram");
    put_hist(out, name, NULL, &g_metrics.first_audio_seconds);

    name = "switchboard_redis_seconds";
    metrics_put_help(out, name, "Round trip of a command to Redis (SPEC 13; none without Redis).",
                     "histogram");
    put_hist(out, name, NULL, &g_metrics.redis_seconds);

    put_family(out, &tool_call_family);

    name = "switchboard_actor_queue_seconds";
    metrics_put_help(out, name, "Time a message waited in an actor's mailbox, by scheduling lane.",
                     "histogram");
    for (size_t l = 0; l < METRIC_LANE_COUNT; l++) {
        sbuf_reset(&labels);
        metrics_put_label(&labels, "lane", lane_names[l]);
        put_hist(out, name, labels.data, &g_metrics.actor_queue_seconds[l]);
    }

    for (size_t i = 0; i < ARRAY_LEN(scalars_tail); i++)
        put_scalar(out, &scalars_tail[i]);

    for (size_t i = 0; i < n_gauge_fns; i++) {
        const gauge_fn_reg_t *r = &gauge_fns[i];
        metrics_put_help(out, r->name, r->help, "gauge");
        put_series(out, r->name, "", NULL);
        put_double(out, r->fn(r->arg));
        sbuf_putc(out, '\n');
    }
    for (size_t i = 0; i < n_text_fns; i++)
        text_fns[i].fn(out, text_fns[i].arg);

    sbuf_destroy(&labels);
}
