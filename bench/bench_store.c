/*
 * Booking throughput of the store (SPEC 13 "measure"): bookAppointment tool calls, each for a
 * slot no other takes (so none conflicts), sent to the store actor with C calls in flight; the
 * store runs them on its database: the SQLite file SWITCHBOARD_DB (default: a new file in /tmp),
 * or PostgreSQL when SWITCHBOARD_DATABASE_URL is set. The demo business's calendar (weekdays
 * 08:00-18:00, 30-minute oil changes) gives 20 slots a day from next Monday on.
 *
 *   bench_store [-n BOOKINGS] [-c IN_FLIGHT]
 *   bench_store -r RECORDS
 *
 * Prints one JSON line: {"database","bookings","in_flight","seconds","bookings_per_s","p50_ms",
 * "p99_ms","failed"}. With -r: RECORDS call records (a start, transcript lines, an end: what
 * calls write) sent as fast as the store takes them, then a chat thread opened, whose answer
 * comes once every record before it is written (one mailbox; on PostgreSQL one connection, in
 * order): {"database","records","seconds","records_per_s"}.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/sched.h"
#include "agents/store/store.h"
#include "agents/tenant/tenant.h"
#include "agents/tools/tools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/tz.h"
#include "base/util.h"
#include "net/net.h"

#define DEFAULT_BOOKINGS  2000
#define DEFAULT_IN_FLIGHT 8
#define SLOTS_PER_DAY     20 /* 08:00..17:30 every 30 minutes */
#define WAIT_S            30
#define READY_WAIT_S      20
#define RECORDS_WAIT_S    120 /* -r: the answer after every record */

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int answered, failed; /* {lk} */
static uint64_t *sent_ns;    /* [k]: when booking k was sent (main), read by the sink */
static uint64_t *took_ns;    /* [k]: its round trip, written by the sink */
static char first_error[512]; /* {lk} */

static void sink_handle(actor_t *self, msg_t *m)
{
    (void)self;
    if (m->type == TOOL_MSG_RESULT) {
        tool_result_msg_t *r = (tool_result_msg_t *)m;
        uint64_t now = clock_now_ns();
        pthread_mutex_lock(&lk);
        took_ns[r->cookie] = now - sent_ns[r->cookie];
        if (r->is_error && failed++ == 0)
            str_copy(first_error, r->output, sizeof(first_error));
        answered++;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&lk);
    }
    msg_free(m);
}

static const actor_type_t sink_type = {"bench_sink", sink_handle, NULL};

static sem_t thread_opened; /* the -r run's last answer came */

static void opener_handle(actor_t *self, msg_t *m)
{
    (void)self;
    if (m->type == STORE_MSG_CHAT_THREAD)
        sem_post(&thread_opened);
    msg_free(m);
}

static const actor_type_t opener_type = {"bench_opener", opener_handle, NULL};

/* -r: records written a second. Returns 0 or 1. */
static int records_run(actor_t *store, int n)
{
    actor_t *opener = xcalloc(1, sizeof(*opener));
    if (actor_spawn(opener, &opener_type, LANE_TOOLS) != 0)
        return 1;
    sem_init(&thread_opened, 0, 0);
    char call[64], text[96];
    uint64_t t0 = clock_now_ns();
    int64_t at = (int64_t)clock_wall_ms();
    for (int k = 0; k < n; k++) {
        int in_call = k % 10; /* a call: its start, 8 transcript lines, its end */
        snprintf(call, sizeof(call), "call_bench%08d", k / 10);
        if (in_call == 0) {
            store_call_start(store, call, "sess_bench", NULL, at + k);
        } else if (in_call < 9) {
            snprintf(text, sizeof(text), "line %d of a benchmark call about an oil change", k);
            store_transcript(store, call, in_call % 2 ? "user" : "assistant", text, at + k);
        } else {
            store_call_end(store, call, at + k, "client_closed", NULL, NULL, 10, 20);
        }
    }
    store_chat_open(store, opener, 1, "th_bench", "u_bench", NULL, 1);
    struct timespec ts;
    clock_deadline(&ts, CLOCK_REALTIME, RECORDS_WAIT_S * 1000);
    int rc = sem_timedwait(&thread_opened, &ts);
    double secs = (double)(clock_now_ns() - t0) / 1e9;
    printf("{\"database\":\"%s\",\"records\":%d,\"seconds\":%.3f,\"records_per_s\":%.0f}\n",
           net_pg_on() ? "postgresql" : "sqlite", n, secs, n / secs);
    actor_unref(opener);
    return rc == 0 ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The k-th free slot from the Monday after today: its date and time. */
static void slot(int k, char date[16], char hhmm[8])
{
    time_t now = time(NULL);
    int64_t today = (int64_t)now / TZ_SECS_PER_DAY;
    int64_t monday = today + 7 - ((today + 3) % 7); /* 1970-01-01 was a Thursday */
    int day = k / SLOTS_PER_DAY, in_day = k % SLOTS_PER_DAY;
    int64_t d = monday + (day / 5) * 7 + day % 5;
    int64_t y;
    int m, dd;
    tz_civil_from_days(d, &y, &m, &dd);
    snprintf(date, 16, "%04d-%02d-%02d", (int)(y % 10000), m % 100, dd % 100);
    snprintf(hhmm, 8, "%02d:%02d", (8 + in_day / 2) % 100, (in_day % 2) * 30);
}

static void send_booking(actor_t *store, actor_t *sink, int k)
{
    char date[16], hhmm[8], phone[32];
    slot(k, date, hhmm);
    snprintf(phone, sizeof(phone), "+1415555%04d", k % 10000);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "date", date);
    cJSON_AddStringToObject(args, "time", hhmm);
    cJSON_AddStringToObject(args, "customerName", "Bench Caller");
    cJSON_AddStringToObject(args, "customerPhone", phone);
    cJSON_AddStringToObject(args, "serviceType", "oil change");
    tool_call_msg_t *c = tool_call_new(sink, (uint64_t)k, "bookAppointment", args);
    c->now_ms = (int64_t)clock_wall_ms();
    sent_ns[k] = clock_now_ns();
    actor_send(store, &c->hdr);
}

/* Bookings n with in_flight sent at a time: prints the figures. Returns 0 or 1. */
static int bookings_run(actor_t *store, int n, int in_flight)
{
    actor_t *sink = xcalloc(1, sizeof(*sink));
    if (actor_spawn(sink, &sink_type, LANE_TOOLS) != 0)
        return 1;
    sent_ns = xcalloc((size_t)n, sizeof(*sent_ns));
    took_ns = xcalloc((size_t)n, sizeof(*took_ns));
    uint64_t t0 = clock_now_ns();
    int next = 0;
    pthread_mutex_lock(&lk);
    while (answered < n) {
        while (next < n && next - answered < in_flight) {
            pthread_mutex_unlock(&lk);
            send_booking(store, sink, next++);
            pthread_mutex_lock(&lk);
        }
        struct timespec ts;
        clock_deadline(&ts, CLOCK_REALTIME, WAIT_S * 1000);
        if (answered < n && pthread_cond_timedwait(&cv, &lk, &ts) != 0)
            break;
    }
    int done = answered, bad = failed;
    pthread_mutex_unlock(&lk);
    double secs = (double)(clock_now_ns() - t0) / 1e9;
    qsort(took_ns, (size_t)done, sizeof(*took_ns), cmp_u64);
    printf("{\"database\":\"%s\",\"bookings\":%d,\"in_flight\":%d,\"seconds\":%.3f,"
           "\"bookings_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"failed\":%d}\n",
           net_pg_on() ? "postgresql" : "sqlite", done, in_flight, secs, done / secs,
           done ? (double)took_ns[done / 2] / 1e6 : 0.0,
           done ? (double)took_ns[(size_t)done * 99 / 100] / 1e6 : 0.0, bad);
    if (bad)
        fprintf(stderr, "bench_store: first failure: %s\n", first_error);
    actor_unref(sink);
    return done == n && bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int n = DEFAULT_BOOKINGS, in_flight = DEFAULT_IN_FLIGHT, records = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0)
            n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-c") == 0)
            in_flight = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-r") == 0)
            records = atoi(argv[i + 1]);
    }
    if (n <= 0 || in_flight <= 0) {
        fprintf(stderr, "usage: bench_store [-n BOOKINGS] [-c IN_FLIGHT]\n");
        return 2;
    }
    char err[512], db[64];
    snprintf(db, sizeof(db), "/tmp/bench_store_%d.db", (int)getpid());
    if (getenv("SWITCHBOARD_DB") == NULL)
        setenv("SWITCHBOARD_DB", db, 1);
    static config_t cfg;
    if (config_from_env(&cfg, 2, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 2;
    }
    g_config = &cfg;
    log_init(LOG_WARN, LOG_FORMAT_TEXT);
    metrics_init();
    if (tenants_load(NULL, err, sizeof(err)) != 0 || net_pg_configure(cfg.database_url) != 0) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    sched_config_t sc = {.workers = 2, .max_actors = 100, .mailbox_cap = 65536};
    net_config_t nc = {.threads = 1, .max_connections = 100, .out_cap = 64, .no_listen = true};
    actor_t *store = NULL;
    if (sched_start(&sc) != 0 || store_open(cfg.db_path, &store, NULL, err, sizeof(err)) != 0 ||
        net_start(&nc) != 0) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    for (int w = 0; net_pg_on() && !net_pg_ready(); w++) {
        if (w > READY_WAIT_S * 100) {
            fprintf(stderr, "bench_store: PostgreSQL not reached\n");
            return 1;
        }
        usleep(10000);
    }
    int rc = records > 0 ? records_run(store, records) : bookings_run(store, n, in_flight);
    store_close(store);
    net_stop();
    sched_stop(2000);
    metrics_destroy();
    if (!net_pg_on())
        unlink(cfg.db_path);
    return rc;
}
