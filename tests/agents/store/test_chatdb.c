/*
 * Tests of agents/chatdb on a real file (SPEC 5.3, 5.4, 9, 16): a thread belongs to the first
 * user (and tenant) that opened it, history is the newest N oldest first with clientMessageId only
 * when given, and agent-run records are inserted then updated by their record id.
 */
#include "tests/agents/store/store_fixture.h"

#define T0_MS 1764633600000LL /* 2025-12-02T00:00:00Z */

static storedb_t *open_db(chatdb_t **chat)
{
    char err[FIXTURE_ERR_LEN] = "";
    storedb_t *db = storedb_open(fixture_db, err, sizeof(err));
    if (db == NULL)
        TEST_FAIL_("storedb_open: %s", err);
    *chat = chatdb_new(storedb_handle(db), err, sizeof(err));
    if (*chat == NULL)
        TEST_FAIL_("chatdb_new: %s", err);
    return db;
}

TEST(chatdb_owner_is_the_first_user)
{
    fixture_init();
    chatdb_t *c;
    storedb_t *db = open_db(&c);
    chatdb_owner_t owner;
    ASSERT_EQ(chatdb_thread_open(c, "t1", "alice", "acme", T0_MS, &owner), 0);
    ASSERT_STR_EQ(owner.user_id, "alice");
    ASSERT_STR_EQ(owner.tenant, "acme");
    ASSERT_EQ(chatdb_thread_open(c, "t1", "mallory", "beta", T0_MS + 1, &owner), 0);
    ASSERT_STR_EQ(owner.user_id, "alice");
    ASSERT_STR_EQ(owner.tenant, "acme");
    ASSERT_EQ(chatdb_thread_open(c, "t2", "carol", NULL, T0_MS + 1, &owner), 0);
    ASSERT_STR_EQ(owner.tenant, "default");
    chatdb_free(c);
    storedb_close(db);
    /* And after reopening the file. */
    db = open_db(&c);
    ASSERT_EQ(chatdb_thread_open(c, "t1", "bob", "acme", T0_MS + 2, &owner), 0);
    ASSERT_STR_EQ(owner.user_id, "alice");
    ASSERT_STR_EQ(owner.tenant, "acme");
    chatdb_free(c);
    storedb_close(db);
    fixture_cleanup();
}

TEST(chatdb_history_newest_n_oldest_first)
{
    fixture_init();
    chatdb_t *c;
    storedb_t *db = open_db(&c);
    char id[32], text[32];
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof(id), "msg_%02d", i);
        snprintf(text, sizeof(text), "text %d", i);
        ASSERT_EQ(chatdb_message(c, "t2", id, i == 59 ? "client-59" : NULL,
                                 i % 2 ? "assistant" : "user", text, T0_MS + i),
                  0);
    }
    ASSERT_EQ(chatdb_message(c, "other", "msg_x", NULL, "user", "elsewhere", T0_MS), 0);
    /* The same message id twice is kept once. */
    ASSERT_EQ(chatdb_message(c, "t2", "msg_00", NULL, "user", "again", T0_MS + 100), 0);
    cJSON *h = chatdb_history(c, "t2", 50);
    ASSERT_EQ(cJSON_GetArraySize(h), 50);
    const cJSON *first = cJSON_GetArrayItem(h, 0), *last = cJSON_GetArrayItem(h, 49);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(first, "messageId")->valuestring, "msg_10");
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(first, "role")->valuestring, "user");
    ASSERT(cJSON_GetObjectItemCaseSensitive(first, "clientMessageId") == NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(last, "text")->valuestring, "text 59");
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(last, "clientMessageId")->valuestring,
                  "client-59");
    ASSERT_EQ((long long)cJSON_GetObjectItemCaseSensitive(last, "at")->valuedouble, T0_MS + 59);
    cJSON_Delete(h);
    h = chatdb_history(c, "nobody", 50);
    ASSERT_EQ(cJSON_GetArraySize(h), 0);
    cJSON_Delete(h);
    chatdb_free(c);
    storedb_close(db);
    fixture_cleanup();
}

TEST(chatdb_agent_run_upsert)
{
    fixture_init();
    chatdb_t *c;
    storedb_t *db = open_db(&c);
    chatdb_run_t r = {.record_id = 42,
                      .run_id = "run-1",
                      .user_id = "u",
                      .tenant = "acme",
                      .task = "do it",
                      .status = "running",
                      .started_at_ms = T0_MS};
    ASSERT_EQ(chatdb_agent_run(c, &r), 0);
    r.status = "failed";
    r.error = "iteration_limit";
    r.ended_at_ms = T0_MS + 5000;
    ASSERT_EQ(chatdb_agent_run(c, &r), 0);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(storedb_handle(db),
                                 "SELECT count(*), status, error, ended_at - started_at, task, "
                                 "tenant FROM agent_runs",
                                 -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 1);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 1), "failed");
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 2), "iteration_limit");
    ASSERT_EQ(sqlite3_column_int64(st, 3), 5000);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 4), "do it");
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 5), "acme");
    sqlite3_finalize(st);
    chatdb_free(c);
    storedb_close(db);
    fixture_cleanup();
}
