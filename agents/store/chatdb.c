/*
 * chatdb: chat threads, chat messages and agent runs on the store's connection (SPEC 9, 5.3,
 * 5.4). The tables are in storedb's schema (version 1); this file owns their statements, as
 * booking.c owns the booking tables'. Thread: the store's worker (or a test's thread).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store_int.h"
#include "base/log.h"
#include "base/util.h"

enum {
    CQ_THREAD_CREATE,
    CQ_THREAD_OWNER,
    CQ_HISTORY,
    CQ_MESSAGE,
    CQ_RUN,
    CQ_COUNT,
};

static const char *const cq_sql[CQ_COUNT] = {
    [CQ_THREAD_CREATE] = "INSERT INTO chat_threads (id, user_id, tenant, created_at) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
    [CQ_THREAD_OWNER] = "SELECT user_id, tenant FROM chat_threads WHERE id = ?1",
    /* The newest `limit`, read newest first and reversed by the caller's loop. */
    [CQ_HISTORY] = "SELECT role, text, message_id, at, client_message_id FROM chat_messages "
                   "WHERE thread_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
    [CQ_MESSAGE] = "INSERT INTO chat_messages (thread_id, message_id, client_message_id, role, "
                   "text, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (message_id) DO NOTHING",
    [CQ_RUN] = "INSERT INTO agent_runs (id, run_id, user_id, task, status, result, error, "
               "started_at, ended_at, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
               "ON CONFLICT (id) DO UPDATE SET status = ?5, result = ?6, error = ?7, "
               "ended_at = ?9",
};

struct chatdb {
    sqlite3 *db;
    sqlite3_stmt *st[CQ_COUNT];
};

chatdb_t *chatdb_new(sqlite3 *db, char *err, size_t errlen)
{
    chatdb_t *c = xcalloc(1, sizeof(*c));
    c->db = db;
    if (!store_prepare_all(db, cq_sql, c->st, CQ_COUNT)) {
        snprintf(err, errlen, "chat tables: %s", sqlite3_errmsg(db));
        chatdb_free(c);
        return NULL;
    }
    return c;
}

void chatdb_free(chatdb_t *c)
{
    if (c == NULL)
        return;
    store_finalize_all(c->st, CQ_COUNT);
    free(c);
}

static int step_done(chatdb_t *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    log_error("store.write", LOG_S("what", what), LOG_S("error", sqlite3_errmsg(c->db)));
    return -EIO;
}

int chatdb_thread_open(chatdb_t *c, const char *thread_id, const char *user_id, const char *tenant,
                       int64_t at_ms, chatdb_owner_t *owner)
{
    sqlite3_stmt *st = store_stmt_fresh(c->st[CQ_THREAD_CREATE]);
    store_bind_text(st, 1, thread_id);
    store_bind_text(st, 2, user_id);
    store_bind_text(st, 3, tenant ? tenant : TENANT_DEFAULT_ID);
    sqlite3_bind_int64(st, 4, at_ms);
    if (step_done(c, st, "chat_thread") != 0)
        return -EIO;
    st = store_stmt_fresh(c->st[CQ_THREAD_OWNER]);
    store_bind_text(st, 1, thread_id);
    int rc = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        str_copy(owner->user_id, (const char *)sqlite3_column_text(st, 0), sizeof(owner->user_id));
        str_copy(owner->tenant, (const char *)sqlite3_column_text(st, 1), sizeof(owner->tenant));
        rc = 0;
    }
    sqlite3_reset(st);
    return rc;
}

cJSON *chatdb_history(chatdb_t *c, const char *thread_id, int limit)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *st = store_stmt_fresh(c->st[CQ_HISTORY]);
    store_bind_text(st, 1, thread_id);
    sqlite3_bind_int(st, 2, limit);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(m, "text", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddStringToObject(m, "messageId", (const char *)sqlite3_column_text(st, 2));
        cJSON_AddNumberToObject(m, "at", (double)sqlite3_column_int64(st, 3));
        if (sqlite3_column_type(st, 4) == SQLITE_TEXT)
            cJSON_AddStringToObject(m, "clientMessageId", (const char *)sqlite3_column_text(st, 4));
        /* Rows come newest first: prepend, so the array is oldest first. */
        cJSON_InsertItemInArray(arr, 0, m);
    }
    sqlite3_reset(st);
    return arr;
}

int chatdb_message(chatdb_t *c, const char *thread_id, const char *message_id,
                   const char *client_message_id, const char *role, const char *text, int64_t at_ms)
{
    sqlite3_stmt *st = store_stmt_fresh(c->st[CQ_MESSAGE]);
    store_bind_text(st, 1, thread_id);
    store_bind_text(st, 2, message_id);
    store_bind_text(st, 3, client_message_id);
    store_bind_text(st, 4, role);
    store_bind_text(st, 5, text ? text : "");
    sqlite3_bind_int64(st, 6, at_ms);
    return step_done(c, st, "chat_message");
}

int chatdb_agent_run(chatdb_t *c, const chatdb_run_t *r)
{
    sqlite3_stmt *st = store_stmt_fresh(c->st[CQ_RUN]);
    sqlite3_bind_int64(st, 1, r->record_id);
    store_bind_text(st, 2, r->run_id);
    store_bind_text(st, 3, r->user_id);
    store_bind_text(st, 4, r->task ? r->task : "");
    store_bind_text(st, 5, r->status);
    store_bind_text(st, 6, r->result);
    store_bind_text(st, 7, r->error);
    sqlite3_bind_int64(st, 8, r->started_at_ms);
    if (r->ended_at_ms > 0)
        sqlite3_bind_int64(st, 9, r->ended_at_ms);
    else
        sqlite3_bind_null(st, 9);
    store_bind_text(st, 10, r->tenant ? r->tenant : TENANT_DEFAULT_ID);
    return step_done(c, st, "agent_run");
}
