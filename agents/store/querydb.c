/*
 * querydb: the reads behind the dashboard (SPEC 15): GET /api/calls with its filters and keyset
 * paging, and GET /api/analytics.
 *
 * Paging is by keyset, not offset: the cursor is the (started_at, rowid) of the last row shown,
 * and the next page starts below it, so page N costs what page 1 costs and a call that starts
 * meanwhile never shifts a page. Text search goes through calls_fts (one document per ended
 * call, keyed by the call's rowid).
 *
 * The analytics read one row per call of the window (the counters kept on calls at write time:
 * booked, tools_total, tools_ok) and bucket them by day in C, because days are local days of the
 * company's time zone, which SQLite does not know.
 * Thread: the store's worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store_int.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"

#define PCT_50 50
#define PCT_95 95

static const char *const outcomes[] = {"booked", "information", "callback", "transferred", "other"};

char *querydb_fts_query(const char *text)
{
    sbuf_t b = SBUF_INIT;
    const char *p = text ? text : "";
    while (*p) {
        /* A word: a run of anything but spaces and quotes (FTS5's tokenizer splits further). */
        while (*p == ' ' || *p == '"' || *p == '\t' || *p == '\n')
            p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '"' && *p != '\t' && *p != '\n')
            p++;
        if (p > w) {
            if (b.len)
                sbuf_putc(&b, ' ');
            sbuf_putc(&b, '"');
            sbuf_append(&b, w, (size_t)(p - w));
            sbuf_putc(&b, '"');
        }
    }
    return b.data ? sbuf_take(&b) : xstrdup("");
}

bool querydb_parse_cursor(const char *s, int64_t *at, int64_t *rowid)
{
    char *end;
    long long a = strtoll(s, &end, 10);
    if (end == s || *end != '.' || a < 0)
        return false;
    const char *r = end + 1;
    long long id = strtoll(r, &end, 10);
    if (end == r || *end != '\0' || id <= 0)
        return false;
    *at = a;
    *rowid = id;
    return true;
}

/* Adds a column as a member (NULL as null). */
static void add_col(cJSON *o, const char *key, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        cJSON_AddNullToObject(o, key);
        break;
    case SQLITE_INTEGER:
        cJSON_AddNumberToObject(o, key, (double)sqlite3_column_int64(st, col));
        break;
    default:
        cJSON_AddStringToObject(o, key, (const char *)sqlite3_column_text(st, col));
        break;
    }
}

static const char *const list_keys[] = {
    "id",      "sessionId", "startedAt", "endedAt", "endReason",     "durationMs", "tenant",
    "channel", "from",      "to",        "callSid", "transferredTo", "outcome"};

char *querydb_calls_json(sqlite3 *db, const querydb_filter_t *f)
{
    char *fts = f->q && f->q[0] ? querydb_fts_query(f->q) : NULL;
    sbuf_t sql = SBUF_INIT;
    bool search = fts && fts[0];
    sbuf_puts(&sql, "SELECT c.id, c.session_id, c.started_at, c.ended_at, c.end_reason, "
                    "c.duration_ms, c.tenant, c.channel, c.caller_from, c.caller_to, c.call_sid, "
                    "c.transferred_to, c.outcome, j.state, j.step_summary, j.step_crm, c.rowid ");
    /* A search walks the matches newest first by rowid (FTS5 scans rowids backwards and stops at
     * the page's end) instead of sorting every match by started_at: a call's row is inserted at
     * its start by the one writer, so rowid order is start order. */
    sbuf_puts(&sql, search ? "FROM calls_fts f JOIN calls c ON c.rowid = f.rowid LEFT JOIN "
                             "postcall_jobs j ON j.call_id = c.id WHERE calls_fts MATCH ?6"
                           : "FROM calls c LEFT JOIN postcall_jobs j ON j.call_id = c.id WHERE 1");
    if (f->tenant)
        sbuf_puts(&sql, " AND c.tenant = ?1");
    if (f->from_ms)
        sbuf_puts(&sql, " AND c.started_at >= ?2");
    if (f->to_ms)
        sbuf_puts(&sql, " AND c.started_at < ?3");
    if (f->channel)
        sbuf_puts(&sql, " AND c.channel = ?4");
    if (f->outcome)
        sbuf_puts(&sql, " AND c.outcome = ?5");
    if (f->cursor_rowid)
        sbuf_puts(&sql, search
                            ? " AND f.rowid < ?8"
                            : " AND (c.started_at < ?7 OR (c.started_at = ?7 AND c.rowid < ?8))");
    sbuf_puts(&sql, search ? " ORDER BY f.rowid DESC LIMIT ?9"
                           : " ORDER BY c.started_at DESC, c.rowid DESC LIMIT ?9");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
        log_error("store.query", LOG_S("error", sqlite3_errmsg(db)));
        sbuf_destroy(&sql);
        free(fts);
        return NULL;
    }
    sbuf_destroy(&sql);
    store_bind_text(st, 1, f->tenant);
    sqlite3_bind_int64(st, 2, f->from_ms);
    sqlite3_bind_int64(st, 3, f->to_ms);
    store_bind_text(st, 4, f->channel);
    store_bind_text(st, 5, f->outcome);
    store_bind_text(st, 6, fts);
    sqlite3_bind_int64(st, 7, f->cursor_at);
    sqlite3_bind_int64(st, 8, f->cursor_rowid);
    sqlite3_bind_int(st, 9, f->limit + 1); /* one more says whether there is a next page */
    cJSON *root = cJSON_CreateObject();
    cJSON *calls = cJSON_AddArrayToObject(root, "calls");
    int n = 0, rc;
    char next[48] = "";
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == f->limit) {
            break; /* the page is full and another row exists: next holds the last row's key */
        }
        cJSON *c = cJSON_CreateObject();
        for (int i = 0; i < (int)ARRAY_LEN(list_keys); i++)
            add_col(c, list_keys[i], st, i);
        int k = (int)ARRAY_LEN(list_keys);
        if (sqlite3_column_type(st, k) == SQLITE_NULL) {
            cJSON_AddNullToObject(c, "postcall");
        } else {
            cJSON *pc = cJSON_AddObjectToObject(c, "postcall");
            add_col(pc, "state", st, k);
            cJSON *steps = cJSON_AddObjectToObject(pc, "steps");
            add_col(steps, "summary", st, k + 1);
            add_col(steps, "crm", st, k + 2);
        }
        cJSON_AddItemToArray(calls, c);
        snprintf(next, sizeof(next), "%lld.%lld", (long long)sqlite3_column_int64(st, 2),
                 (long long)sqlite3_column_int64(st, k + 3));
        n++;
    }
    bool more = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        log_error("store.query", LOG_S("error", sqlite3_errmsg(db)));
    sqlite3_finalize(st);
    free(fts);
    if (more) /* absent on the last page, so the plain list stays {"calls":[…]} (SPEC 4) */
        cJSON_AddStringToObject(root, "nextCursor", next);
    return store_json_take(root);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The pct-th percentile (nearest rank) of sorted v[0..n-1]. */
static int64_t percentile(const int64_t *v, size_t n, int pct)
{
    size_t rank = (n * (size_t)pct + 99) / 100;
    return v[rank ? rank - 1 : 0];
}

/* The day of t among the n_days days bounded by starts[0..n_days] (binary search), or -1. */
static int day_of(const int64_t *starts, int n_days, int64_t t)
{
    if (t < starts[0] || t >= starts[n_days])
        return -1;
    int lo = 0, hi = n_days - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (starts[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

typedef struct day_acc {
    int64_t calls, booked, duration_sum, with_duration;
} day_acc_t;

struct querydb_acc {
    int n_days;
    const int64_t *starts;
    day_acc_t *days;
    int64_t by_outcome[ARRAY_LEN(outcomes)];
    int64_t calls, booked, tools_total, tools_ok;
    size_t n_fa, cap_fa;
    int64_t *fa;              /* first-audio latencies */
    bool fa_given;            /* querydb_acc_totals(): the percentiles come computed */
    int64_t fa_p50, fa_p95;   /* -1: no latency known */
};

void querydb_acc_day(querydb_acc_t *a, int day, int64_t calls, int64_t duration_sum,
                     int64_t with_duration, int64_t booked)
{
    if (day < 0 || day >= a->n_days)
        return;
    a->days[day].calls += calls;
    a->days[day].duration_sum += duration_sum;
    a->days[day].with_duration += with_duration;
    a->days[day].booked += booked;
    a->calls += calls;
    a->booked += booked;
}

void querydb_acc_outcome(querydb_acc_t *a, const char *outcome, int64_t calls)
{
    for (size_t i = 0; outcome && i < ARRAY_LEN(outcomes); i++)
        if (strcmp(outcome, outcomes[i]) == 0)
            a->by_outcome[i] += calls;
}

void querydb_acc_totals(querydb_acc_t *a, int64_t tools_total, int64_t tools_ok,
                        int64_t first_audio_p50, int64_t first_audio_p95)
{
    a->tools_total += tools_total;
    a->tools_ok += tools_ok;
    a->fa_given = true;
    a->fa_p50 = first_audio_p50;
    a->fa_p95 = first_audio_p95;
}

querydb_acc_t *querydb_acc_new(int n_days, const int64_t *day_start_ms)
{
    querydb_acc_t *a = xcalloc(1, sizeof(*a));
    a->n_days = n_days;
    a->starts = day_start_ms;
    a->days = xcalloc((size_t)n_days, sizeof(*a->days));
    return a;
}

void querydb_acc_add(querydb_acc_t *a, int64_t started_at, int64_t duration_ms,
                     const char *outcome, bool booked, int64_t tools_total, int64_t tools_ok,
                     int64_t first_audio_ms)
{
    int d = day_of(a->starts, a->n_days, started_at);
    if (d < 0)
        return;
    a->days[d].calls++;
    a->calls++;
    if (duration_ms >= 0) {
        a->days[d].duration_sum += duration_ms;
        a->days[d].with_duration++;
    }
    for (size_t i = 0; outcome && i < ARRAY_LEN(outcomes); i++)
        if (strcmp(outcome, outcomes[i]) == 0)
            a->by_outcome[i]++;
    if (booked) {
        a->days[d].booked++;
        a->booked++;
    }
    a->tools_total += tools_total;
    a->tools_ok += tools_ok;
    if (first_audio_ms >= 0) {
        if (a->n_fa == a->cap_fa) {
            a->cap_fa = a->cap_fa ? a->cap_fa * 2 : 256;
            a->fa = xrealloc(a->fa, a->cap_fa * sizeof(*a->fa));
        }
        a->fa[a->n_fa++] = first_audio_ms;
    }
}

/* A member: x, or null when it is not known (known false). */
static void add_num_or_null(cJSON *o, const char *key, bool known, double x)
{
    if (known)
        cJSON_AddNumberToObject(o, key, x);
    else
        cJSON_AddNullToObject(o, key);
}

char *querydb_acc_json(querydb_acc_t *a, char (*dates)[11])
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "days");
    int64_t dur_sum = 0, dur_n = 0;
    for (int i = 0; i < a->n_days; i++) {
        const day_acc_t *day = &a->days[i];
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "date", dates[i]);
        cJSON_AddNumberToObject(d, "calls", (double)day->calls);
        add_num_or_null(d, "avgDurationMs", day->with_duration != 0,
                        day->with_duration ? (double)(day->duration_sum / day->with_duration) : 0);
        cJSON_AddNumberToObject(d, "booked", (double)day->booked);
        cJSON_AddItemToArray(arr, d);
        dur_sum += day->duration_sum;
        dur_n += day->with_duration;
    }
    cJSON *oc = cJSON_AddObjectToObject(root, "outcomes");
    for (size_t i = 0; i < ARRAY_LEN(outcomes); i++)
        cJSON_AddNumberToObject(oc, outcomes[i], (double)a->by_outcome[i]);
    cJSON_AddNumberToObject(root, "calls", (double)a->calls);
    add_num_or_null(root, "avgDurationMs", dur_n != 0, dur_n ? (double)(dur_sum / dur_n) : 0);
    add_num_or_null(root, "bookingConversion", a->calls != 0,
                    a->calls ? (double)a->booked / (double)a->calls : 0);
    add_num_or_null(root, "toolSuccessRate", a->tools_total != 0,
                    a->tools_total ? (double)a->tools_ok / (double)a->tools_total : 0);
    if (!a->fa_given) { /* from the latencies querydb_acc_add() kept */
        if (a->n_fa) /* a->fa is NULL without any */
            qsort(a->fa, a->n_fa, sizeof(*a->fa), cmp_i64);
        a->fa_p50 = a->n_fa ? percentile(a->fa, a->n_fa, PCT_50) : -1;
        a->fa_p95 = a->n_fa ? percentile(a->fa, a->n_fa, PCT_95) : -1;
    }
    cJSON *fj = cJSON_AddObjectToObject(root, "firstAudioMs");
    add_num_or_null(fj, "p50", a->fa_p50 >= 0, (double)a->fa_p50);
    add_num_or_null(fj, "p95", a->fa_p95 >= 0, (double)a->fa_p95);
    free(a->fa);
    free(a->days);
    free(a);
    return store_json_take(root);
}

char *querydb_analytics_json(sqlite3 *db, const char *tenant, int n_days,
                             const int64_t *day_start_ms, char (*dates)[11])
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT started_at, duration_ms, outcome, booked, tools_total, "
                           "tools_ok, first_audio_ms FROM calls WHERE (?1 IS NULL OR tenant = ?1) "
                           "AND started_at >= ?2 AND started_at < ?3",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("store.analytics", LOG_S("error", sqlite3_errmsg(db)));
        return NULL;
    }
    store_bind_text(st, 1, tenant);
    sqlite3_bind_int64(st, 2, day_start_ms[0]);
    sqlite3_bind_int64(st, 3, day_start_ms[n_days]);
    querydb_acc_t *a = querydb_acc_new(n_days, day_start_ms);
    while (sqlite3_step(st) == SQLITE_ROW) {
        bool has_dur = sqlite3_column_type(st, 1) != SQLITE_NULL;
        bool has_fa = sqlite3_column_type(st, 6) != SQLITE_NULL;
        querydb_acc_add(a, sqlite3_column_int64(st, 0), has_dur ? sqlite3_column_int64(st, 1) : -1,
                        (const char *)sqlite3_column_text(st, 2), sqlite3_column_int(st, 3) != 0,
                        sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5),
                        has_fa ? sqlite3_column_int64(st, 6) : -1);
    }
    sqlite3_finalize(st);
    return querydb_acc_json(a, dates);
}
