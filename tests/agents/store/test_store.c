/*
 * The store (SPEC 9): records sent through the actor are written and survive closing and
 * reopening the file; the record JSON of GET /api/calls (SPEC 4); retention; the database path
 * failing; the post-call webhook's signature (checked against OpenSSL's HMAC) and retry policy.
 */
#include <ck_pr.h>
#include <errno.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/agents/store/store_fixture.h"

#define DAY_MS      (86400LL * 1000)
#define HOUR_MS     (3600LL * 1000)
#define T0_MS       1764633600000LL /* 2025-12-02T00:00:00Z */
#define SIG_SECONDS 1764633600LL

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        TEST_FAIL_("%s is not a number", key);
    return v->valuedouble;
}

static bool is_null(const cJSON *o, const char *key)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, key));
}

static storedb_t *open_db(void)
{
    char err[FIXTURE_ERR_LEN] = "";
    storedb_t *db = storedb_open(fixture_db, err, sizeof(err));
    if (db == NULL)
        TEST_FAIL_("storedb_open: %s", err);
    return db;
}

static cJSON *call_json(storedb_t *db, const char *id)
{
    char *text = storedb_call_json(db, id, NULL);
    if (text == NULL)
        TEST_FAIL_("no call %s", id);
    cJSON *j = cJSON_Parse(text);
    ASSERT(j != NULL);
    free(text);
    return j;
}

/* The records of one finished call, as a session and its tools would send them. */
static void send_call(const char *id, const char *sid, int64_t t0)
{
    store_call_start(fixture_store, id, sid, NULL, t0);
    store_transcript(fixture_store, id, "user", "Can I book an oil change?", t0 + 1000);
    store_tool_record(fixture_store, id, "call_t1", NULL, "checkAvailability",
                      "{\"date\":\"2026-12-03\",\"serviceType\":\"Oil change\"}",
                      "{\"slots\":[\"08:00\"]}", "completed", 12, "builtin", t0 + 1500);
    store_tool_record(fixture_store, id, "call_t2", NULL, "getNextResponseFromSupervisor",
                      "not json {", "We have 8 AM open.", "completed", 900, "supervisor",
                      t0 + 2000);
    store_transcript(fixture_store, id, "assistant", "We have 8 AM open.", t0 + 2500);
    store_call_end(fixture_store, id, t0 + 4000, "client_closed", "sess_abc", "req_123", 321, 654);
}

static void check_call(const cJSON *c, const char *id, int64_t t0)
{
    ASSERT_STR_EQ(str_of(c, "id"), id);
    ASSERT_STR_EQ(str_of(c, "sessionId"), "session_1641234567890_k3m5n8p2q");
    ASSERT_EQ((int64_t)num_of(c, "startedAt"), t0);
    ASSERT_EQ((int64_t)num_of(c, "endedAt"), t0 + 4000);
    ASSERT_EQ((int64_t)num_of(c, "durationMs"), 4000);
    ASSERT_STR_EQ(str_of(c, "endReason"), "client_closed");
    ASSERT_STR_EQ(str_of(c, "openaiSessionId"), "sess_abc");
    ASSERT_STR_EQ(str_of(c, "requestId"), "req_123");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(c, "usage");
    ASSERT_EQ((int)num_of(usage, "inputTokens"), 321);
    ASSERT_EQ((int)num_of(usage, "outputTokens"), 654);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(c, "transcript");
    ASSERT_EQ(cJSON_GetArraySize(tr), 2);
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(tr, 0), "role"), "user");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(tr, 1), "text"), "We have 8 AM open.");
    ASSERT_EQ((int64_t)num_of(cJSON_GetArrayItem(tr, 1), "at"), t0 + 2500);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(c, "toolCalls");
    ASSERT_EQ(cJSON_GetArraySize(tools), 2);
    const cJSON *t1 = cJSON_GetArrayItem(tools, 0), *t2 = cJSON_GetArrayItem(tools, 1);
    ASSERT_STR_EQ(str_of(t1, "name"), "checkAvailability");
    /* Valid JSON comes back parsed, anything else as the string. */
    ASSERT_STR_EQ(str_of(cJSON_GetObjectItemCaseSensitive(t1, "arguments"), "serviceType"),
                  "Oil change");
    ASSERT(cJSON_IsArray(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t1, "output"), "slots")));
    ASSERT_STR_EQ(str_of(t1, "status"), "completed");
    ASSERT_STR_EQ(str_of(t1, "via"), "builtin");
    ASSERT_EQ((int)num_of(t1, "durationMs"), 12);
    ASSERT_STR_EQ(str_of(t2, "arguments"), "not json {");
    ASSERT_STR_EQ(str_of(t2, "output"), "We have 8 AM open.");
    ASSERT_STR_EQ(str_of(t2, "via"), "supervisor");
}

/* Waits until the store has handled everything sent before: a tool call answers in order. */
static void collector_sync(collector_t *c)
{
    fixture_call_tool(c, 1, "lookupCustomer", "{\"phone\":\"5550000000\"}");
    collector_wait(c, 1);
}

TEST(store_records_survive_reopen)
{
    fixture_init();
    int64_t t0 = (int64_t)clock_wall_ms() - HOUR_MS; /* recent: retention keeps it */
    fixture_start_store();
    collector_t *c = collector_new();
    send_call("call_one", "session_1641234567890_k3m5n8p2q", t0);
    store_call_start(fixture_store, "call_live", "session_live_0001", NULL, t0 + 10000);
    collector_sync(c);
    ASSERT_EQ(store_close(fixture_store), 0); /* writes what is queued, closes the file */

    /* Reopened, as after a restart. */
    storedb_t *db = open_db();
    cJSON *one = call_json(db, "call_one");
    check_call(one, "call_one", t0);
    cJSON_Delete(one);
    char *list = storedb_calls_json(db, 20, NULL);
    cJSON *l = cJSON_Parse(list);
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(l, "calls");
    ASSERT_EQ(cJSON_GetArraySize(calls), 2);
    /* Newest first; a live call has null end fields. */
    const cJSON *live = cJSON_GetArrayItem(calls, 0);
    ASSERT_STR_EQ(str_of(live, "id"), "call_live");
    ASSERT(is_null(live, "endedAt") && is_null(live, "endReason") && is_null(live, "durationMs"));
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(calls, 1), "id"), "call_one");
    ASSERT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(calls, 1), "transcript") == NULL);
    cJSON_Delete(l);
    free(list);
    /* A call past SWITCHBOARD_RETENTION_DAYS, which the store deletes when it starts. */
    ASSERT_EQ(storedb_call_start(db, "call_ancient", "sess_old_0001", NULL, t0 - 40 * DAY_MS), 0);
    storedb_close(db);

    /* The store opens the same file again and keeps adding to it. */
    char err[FIXTURE_ERR_LEN] = "";
    if (store_open(fixture_db, &fixture_store, NULL, err, sizeof(err)) != 0)
        TEST_FAIL_("store_open again: %s", err);
    store_transcript(fixture_store, "call_live", "user", "still here", t0 + 11000);
    collector_sync(c);
    actor_unref(&c->actor);
    fixture_stop_store();
    db = open_db();
    cJSON *lv = call_json(db, "call_live");
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lv, "transcript")), 1);
    cJSON_Delete(lv);
    ASSERT(storedb_call_json(db, "call_ancient", NULL) == NULL);
    storedb_close(db);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

TEST(store_list_limit_and_delete)
{
    fixture_init();
    storedb_t *db = open_db();
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "call_%d", i);
        ASSERT_EQ(storedb_call_start(db, id, "sess_list_0001", NULL, T0_MS + i * 1000), 0);
    }
    ASSERT_EQ(storedb_transcript(db, "call_3", "user", "hi", T0_MS + 3100), 0);
    char *text = storedb_calls_json(db, 2, NULL);
    cJSON *l = cJSON_Parse(text);
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(l, "calls");
    ASSERT_EQ(cJSON_GetArraySize(calls), 2);
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(calls, 0), "id"), "call_4");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(calls, 1), "id"), "call_3");
    cJSON_Delete(l);
    free(text);
    ASSERT(storedb_call_json(db, "call_missing", NULL) == NULL);
    ASSERT_EQ(storedb_call_end(db, "call_missing", T0_MS, "error", NULL, NULL, 0, 0), -ENOENT);
    ASSERT_EQ(storedb_call_delete(db, "call_3", NULL), 1);
    ASSERT_EQ(storedb_call_delete(db, "call_3", NULL), 0);
    ASSERT(storedb_call_json(db, "call_3", NULL) == NULL);
    /* An empty database lists nothing. */
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "call_%d", i);
        storedb_call_delete(db, id, NULL);
    }
    text = storedb_calls_json(db, 20, NULL);
    ASSERT_STR_EQ(text, "{\"calls\":[]}");
    free(text);
    storedb_close(db);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

TEST(store_call_tail_has_the_newest_tool_calls_and_the_total)
{
    /* What a post-call job is claimed with: bounded however many tool calls the call made. */
    fixture_init();
    storedb_t *db = open_db();
    ASSERT_EQ(storedb_call_start(db, "call_many", "sess_many_0001", NULL, T0_MS), 0);
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "tool%02d", i);
        ASSERT_EQ(storedb_tool_record(db, "call_many", "t", NULL, name, "{}", "{}", "completed", 1,
                                      "builtin", T0_MS + 10 + i),
                  0);
    }
    cJSON *c = storedb_call_tail(db, "call_many", 40);
    ASSERT(c != NULL);
    ASSERT_EQ(num_of(c, "toolCallsTotal"), 50);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(c, "toolCalls");
    ASSERT_EQ(cJSON_GetArraySize(tools), 40);
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(tools, 0), "name"), "tool10"); /* oldest first */
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(tools, 39), "name"), "tool49");
    cJSON_Delete(c);
    ASSERT(storedb_call_tail(db, "call_missing", 40) == NULL);
    /* The API's record keeps them all. */
    c = call_json(db, "call_many");
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "toolCalls")), 50);
    ASSERT(cJSON_GetObjectItemCaseSensitive(c, "toolCallsTotal") == NULL);
    cJSON_Delete(c);
    storedb_close(db);
}

TEST(store_retention)
{
    fixture_init();
    storedb_t *db = open_db();
    int64_t now = T0_MS, old = now - 40 * DAY_MS;
    ASSERT_EQ(storedb_call_start(db, "call_old", "sess_old_0001", NULL, old), 0);
    ASSERT_EQ(storedb_transcript(db, "call_old", "user", "old", old + 1), 0);
    ASSERT_EQ(storedb_tool_record(db, "call_old", "t", NULL, "n", "{}", "{}", "completed", 1,
                                  "builtin", old + 2),
              0);
    ASSERT_EQ(storedb_call_start(db, "call_new", "sess_new_0001", NULL, now - DAY_MS), 0);
    ASSERT_EQ(storedb_transcript(db, "call_new", "user", "new", now - DAY_MS + 1), 0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO chat_messages (thread_id, message_id, role, text, at) VALUES "
             "('t', 'm1', 'user', 'old', %lld), ('t', 'm2', 'user', 'new', %lld)",
             (long long)old, (long long)now);
    ASSERT_EQ(sqlite3_exec(storedb_handle(db), sql, NULL, NULL, NULL), SQLITE_OK);

    ASSERT_EQ(storedb_expire(db, now - 30 * DAY_MS), 1);
    ASSERT(storedb_call_json(db, "call_old", NULL) == NULL);
    cJSON *n = call_json(db, "call_new");
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(n, "transcript")), 1);
    cJSON_Delete(n);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(storedb_handle(db),
                                 "SELECT (SELECT count(*) FROM transcript_items), (SELECT "
                                 "count(*) FROM tool_calls), (SELECT count(*) FROM chat_messages)",
                                 -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 1);
    ASSERT_EQ(sqlite3_column_int(st, 1), 0);
    ASSERT_EQ(sqlite3_column_int(st, 2), 1);
    sqlite3_finalize(st);
    ASSERT_EQ(storedb_expire(db, now - 30 * DAY_MS), 0);
    storedb_close(db);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

TEST(store_open_failures)
{
    fixture_init();
    char err[FIXTURE_ERR_LEN] = "", path[256];
    actor_t *store = NULL; /* never set: every open here fails */
    /* A file where the folder should be. */
    snprintf(path, sizeof(path), "%s/blocker", fixture_dir);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/blocker/sub/switchboard.db", fixture_dir);
    ASSERT(storedb_open(path, err, sizeof(err)) == NULL);
    ASSERT_STR_CONTAINS(err, "SWITCHBOARD_DB=");
    ASSERT_STR_CONTAINS(err, "blocker");
    ASSERT(store_open(path, &store, NULL, err, sizeof(err)) < 0);
    /* A folder where the file should be. */
    snprintf(path, sizeof(path), "%s", fixture_dir);
    ASSERT(storedb_open(path, err, sizeof(err)) == NULL);
    ASSERT_STR_CONTAINS(err, "cannot open");
    /* A file from a newer build. */
    storedb_t *db = open_db();
    ASSERT_EQ(sqlite3_exec(storedb_handle(db), "UPDATE schema_version SET version = 99", NULL, NULL,
                           NULL),
              SQLITE_OK);
    storedb_close(db);
    ASSERT(storedb_open(fixture_db, err, sizeof(err)) == NULL);
    ASSERT_STR_CONTAINS(err, "schema version 99");
    /* WAL mode is on. */
    snprintf(path, sizeof(path), "%s/var/other.db", fixture_dir);
    db = storedb_open(path, err, sizeof(err));
    ASSERT(db != NULL);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(storedb_handle(db), "PRAGMA journal_mode", -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    storedb_close(db);
    /* A company time zone of the default tenant the system does not have names the key. */
    char cfg_path[160];
    snprintf(cfg_path, sizeof(cfg_path), "%s/agent.json", fixture_dir);
    FILE *cf = fopen(cfg_path, "w");
    ASSERT(cf != NULL);
    fputs("{\"company\": {\"name\": \"A\", \"timezone\": \"Etc/Nowhere\"}, \"brief\": \"b\"}", cf);
    fclose(cf);
    tenants_destroy();
    ASSERT_EQ(tenants_load(cfg_path, err, sizeof(err)), 0);
    ASSERT(store_open(path, &store, NULL, err, sizeof(err)) < 0);
    ASSERT_STR_CONTAINS(err, "company.timezone");
    ASSERT_STR_CONTAINS(err, "Etc/Nowhere");
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

/* The server key (for anonymous chat users' userKeys) is made once and kept by the file: the
 * same after reopening, also through store_open(), and added to a file of schema version 1. */
TEST(store_server_key_survives_reopen_and_migration)
{
    fixture_init();
    uint8_t k1[STORE_SERVER_KEY_BYTES], k2[STORE_SERVER_KEY_BYTES], other[STORE_SERVER_KEY_BYTES];
    static const uint8_t zero[STORE_SERVER_KEY_BYTES];
    char err[FIXTURE_ERR_LEN] = "";
    storedb_t *db = open_db();
    ASSERT_EQ(storedb_server_key(db, "chat_user", k1, err, sizeof(err)), 0);
    ASSERT(memcmp(k1, zero, sizeof(k1)) != 0);
    ASSERT_EQ(storedb_server_key(db, "another", other, err, sizeof(err)), 0);
    ASSERT(memcmp(k1, other, sizeof(k1)) != 0);
    storedb_close(db);
    db = open_db();
    ASSERT_EQ(storedb_server_key(db, "chat_user", k2, err, sizeof(err)), 0);
    ASSERT(memcmp(k1, k2, sizeof(k1)) == 0);
    /* Back to version 1 as an older build left it (undoing 5, 4, 3, then 2): opening migrates
     * every step and makes a new key. */
    ASSERT_EQ(
        sqlite3_exec(storedb_handle(db),
                     "DROP TRIGGER calls_gone; DROP TABLE calls_fts; DROP TABLE postcall_jobs;"
                     "ALTER TABLE tool_calls DROP COLUMN parent_call_id;"
                     "ALTER TABLE calls DROP COLUMN summary; ALTER TABLE calls DROP COLUMN "
                     "outcome; ALTER TABLE calls DROP COLUMN first_audio_ms; ALTER TABLE calls "
                     "DROP COLUMN booked; ALTER TABLE calls DROP COLUMN tools_total;"
                     "ALTER TABLE calls DROP COLUMN tools_ok;"
                     "ALTER TABLE calls DROP COLUMN channel; ALTER TABLE calls DROP COLUMN "
                     "caller_from; ALTER TABLE calls DROP COLUMN caller_to; ALTER TABLE calls "
                     "DROP COLUMN call_sid; ALTER TABLE calls DROP COLUMN transferred_to;"
                     "DROP INDEX calls_tenant_started; ALTER TABLE calls DROP COLUMN tenant;"
                     "ALTER TABLE chat_threads DROP COLUMN tenant;"
                     "ALTER TABLE agent_runs DROP COLUMN tenant;"
                     "DROP INDEX appointments_slot; DROP TRIGGER appointments_no_overlap;"
                     "ALTER TABLE appointments DROP COLUMN tenant;"
                     "CREATE UNIQUE INDEX appointments_slot ON appointments (date, start_min);"
                     "CREATE TRIGGER appointments_no_overlap BEFORE INSERT ON appointments"
                     "  WHEN EXISTS (SELECT 1 FROM appointments WHERE date = NEW.date"
                     "  AND start_min < NEW.end_min AND end_min > NEW.start_min)"
                     "  BEGIN SELECT RAISE (ABORT, 'slot_unavailable'); END;"
                     "CREATE TABLE c1 (id INTEGER PRIMARY KEY, phone_digits TEXT NOT NULL "
                     "UNIQUE, phone TEXT NOT NULL, name TEXT NOT NULL, created_at INTEGER "
                     "NOT NULL, updated_at INTEGER NOT NULL);"
                     "DROP TABLE customers; ALTER TABLE c1 RENAME TO customers;"
                     "DROP TABLE server_keys; DELETE FROM schema_version WHERE version > 1",
                     NULL, NULL, NULL),
        SQLITE_OK);
    storedb_close(db);
    db = open_db();
    ASSERT_EQ(storedb_server_key(db, "chat_user", k2, err, sizeof(err)), 0);
    ASSERT(memcmp(k1, k2, sizeof(k1)) != 0);
    storedb_close(db);
    /* store_open() hands the same key to its caller. */
    store_keys_t keys;
    metrics_init();
    sched_config_t sc = {.workers = FIXTURE_WORKERS, .max_actors = 1000, .mailbox_cap = 1024};
    ASSERT_EQ(sched_start(&sc), 0);
    if (store_open(fixture_db, &fixture_store, &keys, err, sizeof(err)) != 0)
        TEST_FAIL_("store_open: %s", err);
    ASSERT(memcmp(keys.user_key, k2, sizeof(k2)) == 0);
    fixture_stop_store();
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

/* ---- Webhook -------------------------------------------------------------------------------- */

static void hex_hmac(const char *key, const char *msg, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASSERT(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, strlen(msg), mac,
                &len) != NULL);
    ASSERT_EQ(len, 32);
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

TEST(store_webhook_signature)
{
    const char *body = "{\"id\":\"call_one\",\"transcript\":[]}";
    char sig[WEBHOOK_SIG_VALUE_MAX], want[160], mac[65];
    char signed_text[128];
    snprintf(signed_text, sizeof(signed_text), "%lld.%s", SIG_SECONDS, body);

    webhook_signature("s3cret-key", SIG_SECONDS, body, strlen(body), sig);
    hex_hmac("s3cret-key", signed_text, mac);
    snprintf(want, sizeof(want), "t=%lld,v1=%s", SIG_SECONDS, mac);
    ASSERT_STR_EQ(sig, want);

    /* No secret: an empty key, still a valid HMAC. */
    webhook_signature(NULL, SIG_SECONDS, body, strlen(body), sig);
    hex_hmac("", signed_text, mac);
    snprintf(want, sizeof(want), "t=%lld,v1=%s", SIG_SECONDS, mac);
    ASSERT_STR_EQ(sig, want);

    /* A different time signs differently. */
    webhook_signature("s3cret-key", SIG_SECONDS + 1, body, strlen(body), sig);
    ASSERT(strstr(sig, mac) == NULL);
}

TEST(store_webhook_retry_policy)
{
    ASSERT(webhook_should_retry(0));
    ASSERT(webhook_should_retry(500));
    ASSERT(webhook_should_retry(503));
    ASSERT(webhook_should_retry(599));
    ASSERT(!webhook_should_retry(200));
    ASSERT(!webhook_should_retry(400));
    ASSERT(!webhook_should_retry(404));
    ASSERT(!webhook_should_retry(429));
    ASSERT(!webhook_should_retry(600));
    /* 4 attempts: retries after 1, 2 and 4 s (SPEC 14), then none. */
    ASSERT_EQ(webhook_next_delay_ms(0, 1), 1000);
    ASSERT_EQ(webhook_next_delay_ms(503, 2), 2000);
    ASSERT_EQ(webhook_next_delay_ms(500, 3), 4000);
    ASSERT_EQ(webhook_next_delay_ms(500, WEBHOOK_ATTEMPTS), -1);
    ASSERT_EQ(webhook_next_delay_ms(404, 1), -1);
    ASSERT_EQ(webhook_next_delay_ms(200, 1), -1);
    int attempts = 1;
    while (webhook_next_delay_ms(502, attempts) >= 0)
        attempts++;
    ASSERT_EQ(attempts, WEBHOOK_ATTEMPTS);
}

/* The webhook body is the GET /api/calls/{id} JSON: the record, with its transcript. */
TEST(store_webhook_body_is_record)
{
    fixture_init();
    storedb_t *db = open_db();
    ASSERT_EQ(storedb_call_start(db, "call_wh", "session_1641234567890_k3m5n8p2q", NULL, T0_MS), 0);
    ASSERT_EQ(storedb_call_end(db, "call_wh", T0_MS + 4000, "client_closed", "sess_abc", "req_123",
                               321, 654),
              0);
    char *text = storedb_call_json(db, "call_wh", NULL);
    ASSERT_STR_EQ(text, "{\"id\":\"call_wh\",\"sessionId\":\"session_1641234567890_k3m5n8p2q\","
                        "\"startedAt\":1764633600000,\"endedAt\":1764633604000,\"endReason\":"
                        "\"client_closed\",\"durationMs\":4000,\"tenant\":\"default\","
                        "\"channel\":\"web\",\"from\":null,\"to\":null,\"callSid\":null,"
                        "\"transferredTo\":null,\"outcome\":null,\"openaiSessionId\":\"sess_abc\","
                        "\"requestId\":\"req_123\",\"usage\":{\"inputTokens\":321,"
                        "\"outputTokens\":654},\"summary\":null,\"firstAudioMs\":null,"
                        "\"postcall\":null,\"transcript\":[],\"toolCalls\":[]}");
    free(text);
    storedb_close(db);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

/* ---- store_close() waits for the last holder ------------------------------------------------ */

#define HOLDER_MSG_WRITE (MSG_TYPE_TEST_BASE + 1)

/* An actor that holds its own reference to the store, as sessions and runs do. */
typedef struct holder {
    actor_t actor;
    actor_t *store; /* a reference until it stops */
} holder_t;

static void holder_handle(actor_t *self, msg_t *m)
{
    holder_t *h = (holder_t *)self;
    if (m->type == HOLDER_MSG_WRITE) {
        int64_t t0 = (int64_t)clock_wall_ms() - HOUR_MS;
        store_call_start(h->store, "call_late", "session_late_0001", NULL, t0);
        store_call_end(h->store, "call_late", t0 + 5000, "shutdown", NULL, NULL, 0, 0);
        actor_stop_self(self);
    }
    msg_free(m);
}

static void holder_stop(actor_t *self)
{
    actor_unref(((holder_t *)self)->store);
}

static const actor_type_t holder_type = {"holder", holder_handle, holder_stop};

typedef struct closer {
    actor_t *store;
    int rc;
    int done; /* [atomic] store_close() has returned */
} closer_t;

static void *close_thread(void *arg)
{
    closer_t *c = arg;
    c->rc = store_close(c->store);
    ck_pr_store_int(&c->done, 1);
    return NULL;
}

TEST(store_close_waits_for_the_last_holder)
{
    fixture_init();
    fixture_start_store();
    holder_t *h = xcalloc(1, sizeof(*h));
    ASSERT_EQ(actor_spawn(&h->actor, &holder_type, LANE_TOOLS), 0);
    actor_ref(fixture_store);
    h->store = fixture_store;

    closer_t c = {.store = fixture_store};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, close_thread, &c), 0);
    fixture_store = NULL;
    /* The holder still has the store: closing must not finish, however long we look. */
    usleep(200 * 1000);
    ASSERT_EQ(ck_pr_load_int(&c.done), 0);
    /* Records it sends now, after the close began, are still written; then it lets go. */
    actor_send(&h->actor, msg_new(HOLDER_MSG_WRITE, sizeof(msg_t)));
    actor_unref(&h->actor);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(c.rc, 0);
    ASSERT_EQ(sched_stop(FIXTURE_WAIT_S * 1000), 0);
    metrics_destroy();

    storedb_t *db = open_db();
    cJSON *late = call_json(db, "call_late");
    ASSERT_STR_EQ(str_of(late, "endReason"), "shutdown");
    cJSON_Delete(late);
    storedb_close(db);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}
