/*
 * callsapi: the query strings of GET /api/calls and GET /api/analytics (SPEC 4, 14, 15) read
 * into the store's queries (querydb.c), and their answers. Dates are local days of the company
 * time zone of the tenant in scope (the default tenant's for the operator without ?tenant=),
 * read from the zone files for each request: a few kilobytes, and no state to keep current
 * across tenant reloads.
 * Thread: the store's worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store_int.h"
#include "agents/tenant/tenant.h"
#include "base/log.h"
#include "base/tz.h"
#include "base/util.h"
#include "net/net.h"

#define LIMIT_DEFAULT  20
#define LIMIT_MAX      100
#define LIMIT_TEXT_MAX 8
#define DAYS_DEFAULT   30
#define DAYS_MAX       365
#define DATE_LEN       10 /* YYYY-MM-DD */
#define VALUE_MAX      512
#define MS_PER_S       1000
#define CHANNEL_MAX    16
#define OUTCOME_MAX    16
#define CURSOR_MAX     48

/* A whole number in 1..max from the query, def when absent; -1 when malformed. */
static int query_int(const char *query, const char *name, int def, int max)
{
    char v[VALUE_MAX];
    int n = net_query_get(query, name, v, sizeof(v)), x = 0;
    if (n < 0)
        return def;
    if (n == 0 || n > LIMIT_TEXT_MAX)
        return -1;
    for (int i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x >= 1 && x <= max ? x : -1;
}

/* YYYY-MM-DD as days since 1970-01-01; false when malformed. */
static bool parse_date(const char *s, int64_t *days)
{
    int y, m, d;
    char tail;
    if (strlen(s) != DATE_LEN || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 ||
        m > 12 || d < 1 || d > tz_days_in_month(y, m))
        return false;
    *days = tz_days_from_civil(y, m, d);
    return true;
}

/* The Unix ms of local midnight of days in z (the offset at that time, settled twice). */
static int64_t local_midnight_ms(const tz_t *z, int64_t days)
{
    int64_t local = days * TZ_SECS_PER_DAY;
    int64_t t = local - tz_offset_s(z, local);
    t = local - tz_offset_s(z, t);
    return t * MS_PER_S;
}

/* The time zone of the tenant in scope (NULL: the default tenant's), UTC when unknown. */
static tz_t *scope_tz(const char *scope)
{
    tenant_t *t = scope ? tenants_get(scope) : tenants_default();
    char err[160];
    tz_t *z =
        tz_load(t && t->cfg.company_timezone ? t->cfg.company_timezone : "UTC", err, sizeof(err));
    tenant_unref(t);
    if (z == NULL)
        z = tz_load("UTC", err, sizeof(err));
    return z;
}

static void respond_take(conn_id_t c, char *body)
{
    if (body == NULL) {
        net_http_error(c, 500, "internal_error", "the database failed");
        return;
    }
    net_http_respond(c, 200, body, strlen(body), NULL);
    free(body);
}

void callsapi_list(store_t *s, const net_http_msg_t *req, const char *scope)
{
    querydb_filter_t f = {.tenant = scope};
    f.limit = query_int(req->query, "limit", LIMIT_DEFAULT, LIMIT_MAX);
    if (f.limit < 0) {
        net_http_error(req->conn, 400, "invalid_limit",
                       "limit must be a whole number from 1 to 100");
        return;
    }
    char from[DATE_LEN + 2], to[DATE_LEN + 2], channel[CHANNEL_MAX], outcome[OUTCOME_MAX];
    char cursor[CURSOR_MAX];
    int64_t days;
    bool has_from = net_query_get(req->query, "from", from, sizeof(from)) > 0;
    bool has_to = net_query_get(req->query, "to", to, sizeof(to)) > 0;
    if (has_from || has_to) {
        tz_t *z = scope_tz(scope);
        bool ok = true;
        if (has_from && (ok = parse_date(from, &days)))
            f.from_ms = local_midnight_ms(z, days);
        if (ok && has_to && (ok = parse_date(to, &days)))
            f.to_ms = local_midnight_ms(z, days + 1); /* to is inclusive */
        tz_free(z);
        if (!ok) {
            net_http_error(req->conn, 400, "invalid_date", "from and to are YYYY-MM-DD");
            return;
        }
    }
    if (net_query_get(req->query, "channel", channel, sizeof(channel)) > 0)
        f.channel = channel;
    if (net_query_get(req->query, "outcome", outcome, sizeof(outcome)) > 0)
        f.outcome = outcome;
    if (net_query_get(req->query, "cursor", cursor, sizeof(cursor)) > 0 &&
        !querydb_parse_cursor(cursor, &f.cursor_at, &f.cursor_rowid)) {
        net_http_error(req->conn, 400, "invalid_cursor", "cursor is a nextCursor of this API");
        return;
    }
    char *q = xmalloc(strlen(req->query) + 1); /* a value is never longer than the query */
    if (net_query_get(req->query, "q", q, strlen(req->query) + 1) > 0)
        f.q = q;
    if (s->pg)
        storepg_calls(s, req->conn, &f);
    else
        respond_take(req->conn, querydb_calls_json(storedb_handle(s->db), &f));
    free(q);
}

void callsapi_days_free(callsapi_days_t *d)
{
    free(d->starts);
    free(d->dates);
    d->starts = NULL;
    d->dates = NULL;
}

void callsapi_analytics(store_t *s, const net_http_msg_t *req, const char *scope)
{
    int n = query_int(req->query, "days", DAYS_DEFAULT, DAYS_MAX);
    if (n < 0) {
        net_http_error(req->conn, 400, "invalid_days", "days must be a whole number from 1 to 365");
        return;
    }
    tz_t *z = scope_tz(scope);
    int64_t now_s = (int64_t)(clock_wall_ms() / MS_PER_S);
    int64_t local = now_s + tz_offset_s(z, now_s);
    int64_t today = local >= 0 ? local / TZ_SECS_PER_DAY : (local + 1) / TZ_SECS_PER_DAY - 1;
    callsapi_days_t d = {n, xcalloc((size_t)n + 1, sizeof(*d.starts)),
                         xcalloc((size_t)n, sizeof(*d.dates))};
    for (int i = 0; i <= n; i++) {
        int64_t day = today - (n - 1) + i;
        d.starts[i] = local_midnight_ms(z, day);
        if (i < n) {
            int64_t y;
            int m, dd;
            tz_civil_from_days(day, &y, &m, &dd);
            snprintf(d.dates[i], sizeof(d.dates[i]), "%04d-%02d-%02d", (int)y, m, dd);
        }
    }
    tz_free(z);
    if (s->pg) {
        storepg_analytics(s, req->conn, scope, &d); /* takes d */
        return;
    }
    respond_take(req->conn,
                 querydb_analytics_json(storedb_handle(s->db), scope, n, d.starts, d.dates));
    callsapi_days_free(&d);
}
