/*
 * jobsdb: the post-call jobs of SPEC 15 in the store's file (table postcall_jobs, schema 5).
 *
 * A job is one row per call: state pending -> running -> done | failed, the attempts made, the
 * last error, when it is due next, and where each step stands (summary, crm). A failed job with a
 * next_at is waiting for its retry; a failed job without one has given up. Every write here is
 * one statement, so a crash between two leaves a row that a restart reads as it is: "running"
 * rows go back to pending at open (jobsdb_recover()), so a job interrupted by a restart runs
 * again after start-up, once.
 *
 * Statements are prepared per use: jobs are a few writes per call, far from any hot path.
 * Thread: the store's worker (store_int.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store_int.h"
#include "base/log.h"
#include "base/util.h"

#define STEP_PENDING "pending"
#define STEP_DONE    "done"
#define STEP_SKIPPED "skipped"

/* Prepares sql, or logs and returns NULL. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("store.jobs", LOG_S("error", sqlite3_errmsg(db)));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Steps a write to its end and finalises it. Returns the rows changed, or -EIO. */
static int run(sqlite3 *db, sqlite3_stmt *st)
{
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_error("store.jobs", LOG_S("error", sqlite3_errmsg(db)));
        return -EIO;
    }
    return sqlite3_changes(db);
}

int jobsdb_recover(sqlite3 *db, int64_t now_ms)
{
    sqlite3_stmt *st = prep(db, "UPDATE postcall_jobs SET state = 'pending', next_at = ?1 "
                                "WHERE state = 'running'");
    if (st)
        sqlite3_bind_int64(st, 1, now_ms);
    return run(db, st);
}

int jobsdb_call_info(sqlite3 *db, const char *call_id, const char *tenant,
                     char tenant_out[JOBSDB_TENANT_MAX + 1], int *user_turns)
{
    sqlite3_stmt *st = prep(db, "SELECT c.tenant, (SELECT count(*) FROM transcript_items t "
                                "WHERE t.call_id = c.id AND t.role = 'user') FROM calls c "
                                "WHERE c.id = ?1 AND (?2 IS NULL OR c.tenant = ?2)");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, tenant);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        str_copy(tenant_out, (const char *)sqlite3_column_text(st, 0), JOBSDB_TENANT_MAX + 1);
        *user_turns = sqlite3_column_int(st, 1);
        rc = 1;
    }
    sqlite3_finalize(st);
    return rc;
}

int jobsdb_queue(sqlite3 *db, const char *call_id, const char *tenant, bool crm, int64_t now_ms)
{
    /* A new job, or one queued again: the steps not done run again from attempt 1. */
    sqlite3_stmt *st =
        prep(db, "INSERT INTO postcall_jobs (call_id, tenant, state, attempts, next_at, "
                 "step_summary, step_crm, created_at, updated_at) VALUES (?1, ?2, 'pending', 0, "
                 "?3, 'pending', ?4, ?3, ?3) ON CONFLICT (call_id) DO UPDATE SET state = "
                 "'pending', attempts = 0, last_error = NULL, next_at = ?3, updated_at = ?3, "
                 "step_summary = CASE step_summary WHEN 'done' THEN 'done' ELSE 'pending' END, "
                 "step_crm = CASE WHEN step_crm = 'done' THEN 'done' ELSE ?4 END");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, tenant);
    sqlite3_bind_int64(st, 3, now_ms);
    store_bind_text(st, 4, crm ? STEP_PENDING : STEP_SKIPPED);
    int rc = run(db, st);
    return rc < 0 ? rc : 0;
}

cJSON *jobsdb_claim(sqlite3 *db, int64_t now_ms, int max, int64_t *next_due_ms)
{
    cJSON *jobs = cJSON_CreateArray();
    *next_due_ms = -1;
    sqlite3_stmt *st = prep(db, "SELECT call_id, tenant, attempts, step_summary, step_crm FROM "
                                "postcall_jobs WHERE state IN ('pending', 'failed') AND next_at "
                                "IS NOT NULL AND next_at <= ?1 ORDER BY next_at LIMIT ?2");
    if (st == NULL)
        return jobs;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, max);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "callId", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(j, "tenant", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddNumberToObject(j, "attempts", sqlite3_column_int(st, 2) + 1);
        cJSON_AddStringToObject(j, "summary", (const char *)sqlite3_column_text(st, 3));
        cJSON_AddStringToObject(j, "crm", (const char *)sqlite3_column_text(st, 4));
        cJSON_AddItemToArray(jobs, j);
    }
    sqlite3_finalize(st);
    const cJSON *j;
    cJSON_ArrayForEach(j, jobs)
    {
        st = prep(db, "UPDATE postcall_jobs SET state = 'running', attempts = attempts + 1, "
                      "next_at = NULL, updated_at = ?2 WHERE call_id = ?1");
        if (st == NULL)
            break;
        store_bind_text(st, 1, cJSON_GetObjectItemCaseSensitive(j, "callId")->valuestring);
        sqlite3_bind_int64(st, 2, now_ms);
        run(db, st);
    }
    st = prep(db, "SELECT min(next_at) FROM postcall_jobs WHERE state IN ('pending', 'failed') "
                  "AND next_at IS NOT NULL");
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *next_due_ms = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return jobs;
}

int jobsdb_summary(sqlite3 *db, const char *call_id, const char *summary, const char *outcome)
{
    sqlite3_stmt *st = prep(db, "UPDATE calls SET summary = ?2, outcome = ?3 WHERE id = ?1");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, summary);
    store_bind_text(st, 3, outcome);
    int rc = run(db, st);
    return rc < 0 ? rc : 0;
}

int jobsdb_step(sqlite3 *db, const char *call_id, const char *step, const char *state,
                const char *error, int64_t now_ms)
{
    bool crm = strcmp(step, "crm") == 0;
    sqlite3_stmt *st = prep(db, crm ? "UPDATE postcall_jobs SET step_crm = ?2, last_error = "
                                      "COALESCE(?3, last_error), updated_at = ?4 WHERE call_id = ?1"
                                    : "UPDATE postcall_jobs SET step_summary = ?2, last_error = "
                                      "COALESCE(?3, last_error), updated_at = ?4 WHERE call_id = "
                                      "?1");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, state);
    store_bind_text(st, 3, error);
    sqlite3_bind_int64(st, 4, now_ms);
    int rc = run(db, st);
    return rc < 0 ? rc : 0;
}

int64_t jobsdb_retry_delay_ms(int attempts_done, int64_t base_ms)
{
    if (attempts_done < 1 || attempts_done >= JOBSDB_MAX_ATTEMPTS)
        return -1;
    return base_ms << (attempts_done - 1);
}

int jobsdb_end(sqlite3 *db, const char *call_id, const char *error, int64_t now_ms,
               int64_t retry_base_ms, jobsdb_end_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = prep(db, "SELECT attempts, step_summary, step_crm FROM postcall_jobs "
                                "WHERE call_id = ?1");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return -ENOENT;
    }
    int attempts = sqlite3_column_int(st, 0);
    const char *sum = (const char *)sqlite3_column_text(st, 1);
    const char *crm = (const char *)sqlite3_column_text(st, 2);
    bool summary_done = strcmp(sum, STEP_DONE) == 0;
    out->done = summary_done && (strcmp(crm, STEP_DONE) == 0 || strcmp(crm, STEP_SKIPPED) == 0);
    sqlite3_finalize(st);
    int64_t delay = out->done ? -1 : jobsdb_retry_delay_ms(attempts, retry_base_ms);
    out->final = !out->done && delay < 0;
    out->retry_in_ms = delay;
    st = prep(db, "UPDATE postcall_jobs SET state = ?2, next_at = ?3, last_error = ?4, "
                  "updated_at = ?5 WHERE call_id = ?1");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, out->done ? "done" : "failed");
    if (delay >= 0)
        sqlite3_bind_int64(st, 3, now_ms + delay);
    else
        sqlite3_bind_null(st, 3);
    store_bind_text(st, 4, out->done ? NULL : error);
    sqlite3_bind_int64(st, 5, now_ms);
    int rc = run(db, st);
    return rc < 0 ? rc : 0;
}

int jobsdb_webhook_take(sqlite3 *db, const char *call_id)
{
    sqlite3_stmt *st = prep(db, "UPDATE postcall_jobs SET webhook_sent = 1 WHERE call_id = ?1 "
                                "AND webhook_sent = 0");
    if (st == NULL)
        return -EIO;
    store_bind_text(st, 1, call_id);
    return run(db, st);
}

cJSON *jobsdb_job_json(sqlite3 *db, const char *call_id)
{
    sqlite3_stmt *st = prep(db, "SELECT state, attempts, last_error, next_at, step_summary, "
                                "step_crm, updated_at FROM postcall_jobs WHERE call_id = ?1");
    if (st == NULL)
        return cJSON_CreateNull();
    store_bind_text(st, 1, call_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return cJSON_CreateNull();
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "state", (const char *)sqlite3_column_text(st, 0));
    cJSON_AddNumberToObject(j, "attempts", sqlite3_column_int(st, 1));
    if (sqlite3_column_type(st, 2) == SQLITE_NULL)
        cJSON_AddNullToObject(j, "lastError");
    else
        cJSON_AddStringToObject(j, "lastError", (const char *)sqlite3_column_text(st, 2));
    if (sqlite3_column_type(st, 3) == SQLITE_NULL)
        cJSON_AddNullToObject(j, "nextAt");
    else
        cJSON_AddNumberToObject(j, "nextAt", (double)sqlite3_column_int64(st, 3));
    cJSON *steps = cJSON_AddObjectToObject(j, "steps");
    cJSON_AddStringToObject(steps, "summary", (const char *)sqlite3_column_text(st, 4));
    cJSON_AddStringToObject(steps, "crm", (const char *)sqlite3_column_text(st, 5));
    cJSON_AddNumberToObject(j, "updatedAt", (double)sqlite3_column_int64(st, 6));
    sqlite3_finalize(st);
    return j;
}
