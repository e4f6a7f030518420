/*
 * pgschema_dump: the PostgreSQL statements and their reference answers, for
 * tests/integration/test_pgschema.py, which runs the statements on a real PostgreSQL. Test-only.
 *
 *   pgschema_dump           prints pgschema_setup() and every PGQ_* statement of pgschema.h as
 *                           one JSON object {"setup": …, "version": …, "lockKey": …,
 *                           "PGQ_CALL_START": …, …}
 *   pgschema_dump --sqlite  reads operations from stdin, one JSON array a line: the statement's
 *                           name without PGQ_ in lower case, then its parameters in the order
 *                           pgschema.h gives them ["call_start", "c1", "s1", null, 1000]; runs
 *                           each on an in-memory SQLite store with the C code the store uses
 *                           there (storedb, jobsdb, chatdb, querydb, and store.c's order of
 *                           calls for a post-call report) and prints its answer as one JSON line
 *                           (null for a write): what the statement must answer on PostgreSQL.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/pgschema.h"
#include "agents/store/store_int.h"
#include "base/util.h"

#define STATEMENT(name)                                                                            \
    {                                                                                              \
#name, name                                                                                \
    }
#define LINE_MAX_BYTES (1024 * 1024)
#define ERR_LEN        256

static const struct {
    const char *name;
    const char *sql;
} statements[] = {
    STATEMENT(PGQ_CALL_START),   STATEMENT(PGQ_CALL_END),    STATEMENT(PGQ_FIRST_AUDIO),
    STATEMENT(PGQ_CALL_PHONE),   STATEMENT(PGQ_TRANSCRIPT),  STATEMENT(PGQ_TOOL_RECORD),
    STATEMENT(PGQ_CHAT_MESSAGE), STATEMENT(PGQ_AGENT_RUN),   STATEMENT(PGQ_EXPIRE),
    STATEMENT(PGQ_SERVER_KEY),   STATEMENT(PGQ_CHAT_OPEN),   STATEMENT(PGQ_CALL_JSON),
    STATEMENT(PGQ_CALL_DELETE),  STATEMENT(PGQ_CALLS),       STATEMENT(PGQ_ANALYTICS),
    STATEMENT(PGQ_JOBS_RECOVER), STATEMENT(PGQ_CALL_INFO),   STATEMENT(PGQ_JOB_QUEUE),
    STATEMENT(PGQ_JOBS_CLAIM),   STATEMENT(PGQ_JOB_SUMMARY), STATEMENT(PGQ_JOB_END),
};

static int dump(void)
{
    cJSON *out = cJSON_CreateObject();
    char *setup = pgschema_setup();
    cJSON_AddStringToObject(out, "setup", setup);
    free(setup);
    cJSON_AddNumberToObject(out, "version", PGSCHEMA_VERSION);
    char key[24]; /* the lock key exceeds a double's exact integers: a string */
    snprintf(key, sizeof(key), "%lld", (long long)PGSCHEMA_LOCK_KEY);
    cJSON_AddStringToObject(out, "lockKey", key);
    for (size_t i = 0; i < ARRAY_LEN(statements); i++)
        cJSON_AddStringToObject(out, statements[i].name, statements[i].sql);
    char *text = cJSON_Print(out);
    cJSON_Delete(out);
    if (text == NULL)
        return 1;
    puts(text);
    free(text);
    return 0;
}

/* ---- --sqlite ------------------------------------------------------------------------------ */

/* Parameter i (1-based, as $i) of op: a string, or NULL for null or absent. */
static const char *s_(const cJSON *op, int i)
{
    const cJSON *v = cJSON_GetArrayItem(op, i);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t i_(const cJSON *op, int i)
{
    const cJSON *v = cJSON_GetArrayItem(op, i);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static bool b_(const cJSON *op, int i)
{
    return cJSON_IsTrue(cJSON_GetArrayItem(op, i));
}

/* [tenant, user_turns] of the call, or null (jobsdb_call_info()). */
static cJSON *call_info(sqlite3 *db, const char *call_id, const char *tenant)
{
    char t[JOBSDB_TENANT_MAX + 1];
    int turns = 0;
    if (jobsdb_call_info(db, call_id, tenant, t, &turns) != 1)
        return cJSON_CreateNull();
    cJSON *row = cJSON_CreateArray();
    cJSON_AddItemToArray(row, cJSON_CreateString(t));
    cJSON_AddItemToArray(row, cJSON_CreateNumber(turns));
    return row;
}

/* The call's JSON when the webhook is taken now (store.c: jobsdb_webhook_take() == 1, then
 * webhook_start()'s storedb_call_json()), else null. */
static cJSON *take_webhook(storedb_t *s, const char *call_id, bool take)
{
    if (!take || jobsdb_webhook_take(storedb_handle(s), call_id) != 1)
        return cJSON_CreateNull();
    char *text = storedb_call_json(s, call_id, NULL);
    cJSON *c = text ? cJSON_Parse(text) : NULL;
    free(text);
    return c ? c : cJSON_CreateNull();
}

static cJSON *text_json(char *text)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j ? j : cJSON_CreateNull();
}

/* Runs one operation; returns its answer (null for a write). */
static cJSON *run_op(storedb_t *s, chatdb_t *chat, const cJSON *op)
{
    sqlite3 *db = storedb_handle(s);
    const char *name = s_(op, 0);
    if (name == NULL)
        return NULL;
    if (strcmp(name, "call_start") == 0) {
        storedb_call_start(s, s_(op, 1), s_(op, 2), s_(op, 3), i_(op, 4));
    } else if (strcmp(name, "call_end") == 0) {
        if (storedb_call_end(s, s_(op, 1), i_(op, 2), s_(op, 3), s_(op, 4), s_(op, 5), i_(op, 6),
                             i_(op, 7)) == 0)
            return call_info(db, s_(op, 1), NULL);
    } else if (strcmp(name, "first_audio") == 0) {
        storedb_call_first_audio(s, s_(op, 1), i_(op, 2));
    } else if (strcmp(name, "call_phone") == 0) {
        storedb_call_phone(s, s_(op, 1), s_(op, 2), s_(op, 3), s_(op, 4), s_(op, 5));
    } else if (strcmp(name, "transcript") == 0) {
        storedb_transcript(s, s_(op, 1), s_(op, 2), s_(op, 3), i_(op, 4));
    } else if (strcmp(name, "tool_record") == 0) {
        storedb_tool_record(s, s_(op, 1), s_(op, 2), s_(op, 3), s_(op, 4), s_(op, 5), s_(op, 6),
                            s_(op, 7), i_(op, 8), s_(op, 9), i_(op, 10));
    } else if (strcmp(name, "chat_message") == 0) {
        chatdb_message(chat, s_(op, 1), s_(op, 2), s_(op, 3), s_(op, 4), s_(op, 5), i_(op, 6));
    } else if (strcmp(name, "expire") == 0) {
        return cJSON_CreateNumber(storedb_expire(s, i_(op, 1)));
    } else if (strcmp(name, "chat_open") == 0) {
        chatdb_owner_t owner = {"", ""};
        if (chatdb_thread_open(chat, s_(op, 1), s_(op, 2), s_(op, 3), i_(op, 4), &owner) != 0)
            return NULL;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "owner", owner.user_id);
        cJSON_AddStringToObject(o, "tenant", owner.tenant);
        cJSON_AddItemToObject(o, "messages", chatdb_history(chat, s_(op, 1), (int)i_(op, 5)));
        return o;
    } else if (strcmp(name, "call_json") == 0) {
        return text_json(storedb_call_json(s, s_(op, 1), s_(op, 2)));
    } else if (strcmp(name, "call_delete") == 0) {
        return cJSON_CreateBool(storedb_call_delete(s, s_(op, 1), s_(op, 2)) == 1);
    } else if (strcmp(name, "calls") == 0) {
        querydb_filter_t f = {.tenant = s_(op, 1),
                              .from_ms = i_(op, 2),
                              .to_ms = i_(op, 3),
                              .channel = s_(op, 4),
                              .outcome = s_(op, 5),
                              .q = s_(op, 6),
                              .cursor_at = i_(op, 7),
                              .cursor_rowid = i_(op, 8),
                              .limit = (int)i_(op, 9)};
        return text_json(querydb_calls_json(db, &f));
    } else if (strcmp(name, "jobs_recover") == 0) {
        return cJSON_CreateNumber(jobsdb_recover(db, i_(op, 2)));
    } else if (strcmp(name, "call_info") == 0) {
        return call_info(db, s_(op, 1), s_(op, 2));
    } else if (strcmp(name, "job_queue") == 0) {
        jobsdb_queue(db, s_(op, 1), s_(op, 2), b_(op, 3), i_(op, 4));
    } else if (strcmp(name, "jobs_claim") == 0) { /* store.c's postcall_claim() */
        int64_t next = -1;
        cJSON *jobs = jobsdb_claim(db, i_(op, 1), (int)i_(op, 2), &next);
        cJSON *j;
        cJSON_ArrayForEach(j, jobs)
        {
            const char *id = cJSON_GetObjectItemCaseSensitive(j, "callId")->valuestring;
            cJSON *call = storedb_call_tail(s, id, (int)i_(op, 3));
            cJSON_AddItemToObject(j, "call", call ? call : cJSON_CreateNull());
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "jobs", jobs);
        cJSON_AddNumberToObject(o, "nextDue", (double)next);
        return o;
    } else if (strcmp(name, "job_summary") == 0) { /* store.c's postcall_report(), summary */
        const char *id = s_(op, 1);
        if (s_(op, 2) == NULL) {
            jobsdb_step(db, id, "summary", "failed", s_(op, 4), i_(op, 5));
            return cJSON_CreateNull();
        }
        jobsdb_summary(db, id, s_(op, 2), s_(op, 3));
        jobsdb_step(db, id, "summary", "done", NULL, i_(op, 5));
        return take_webhook(s, id, b_(op, 6));
    } else if (strcmp(name, "job_end") == 0) { /* store.c's postcall_report(), end */
        const char *id = s_(op, 1);
        if (s_(op, 2))
            jobsdb_step(db, id, "crm", s_(op, 2), NULL, i_(op, 4));
        jobsdb_end_t e;
        if (jobsdb_end(db, id, s_(op, 3), i_(op, 4), i_(op, 5), &e) != 0)
            return cJSON_CreateNull();
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "done", e.done);
        cJSON_AddBoolToObject(o, "final", e.final);
        cJSON_AddNumberToObject(o, "retryInMs", (double)e.retry_in_ms);
        cJSON_AddItemToObject(o, "webhook",
                              e.final ? take_webhook(s, id, b_(op, 6)) : cJSON_CreateNull());
        return o;
    } else {
        return NULL;
    }
    return cJSON_CreateNull();
}

static int sqlite_ops(void)
{
    char err[ERR_LEN];
    storedb_t *s = storedb_open(":memory:", err, sizeof(err));
    chatdb_t *chat = s ? chatdb_new(storedb_handle(s), err, sizeof(err)) : NULL;
    if (chat == NULL) {
        fprintf(stderr, "pgschema_dump: %s\n", err);
        storedb_close(s);
        return 1;
    }
    char *line = xmalloc(LINE_MAX_BYTES);
    int rc = 0;
    while (rc == 0 && fgets(line, LINE_MAX_BYTES, stdin)) {
        cJSON *op = cJSON_Parse(line);
        cJSON *answer = op ? run_op(s, chat, op) : NULL;
        if (answer == NULL) {
            fprintf(stderr, "pgschema_dump: cannot run %s", line);
            rc = 1;
        } else {
            char *text = cJSON_PrintUnformatted(answer);
            puts(text);
            fflush(stdout);
            free(text);
        }
        cJSON_Delete(answer);
        cJSON_Delete(op);
    }
    free(line);
    chatdb_free(chat);
    storedb_close(s);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--sqlite") == 0)
        return sqlite_ops();
    if (argc != 1) {
        fprintf(stderr, "usage: pgschema_dump [--sqlite]\n");
        return 2;
    }
    return dump();
}
