/*
 * storedb: the SQLite file behind the store actor (SPEC 9): folder, pragmas, the versioned
 * schema, call records and the JSON of GET /api/calls (SPEC 4).
 *
 * Records are keyed by the call id the session chose; transcript and tool rows carry it without
 * a foreign key, so a row that arrives for a call whose start was lost is still kept (and
 * expires by its own time).
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agents/store/store_int.h"
#include "base/log.h"
#include "base/util.h"

#define DIR_MODE  0755
#define PATH_MAX_ 4096

/* Version 1, as first shipped: a new file gets it and then every migration below. */
static const char schema_v1[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE calls ("
    "  id TEXT PRIMARY KEY,"
    "  session_id TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL," /* Unix ms */
    "  ended_at INTEGER,"
    "  end_reason TEXT,"
    "  duration_ms INTEGER,"
    "  openai_session_id TEXT,"
    "  request_id TEXT,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX calls_started ON calls (started_at);"
    "CREATE TABLE transcript_items ("
    "  id INTEGER PRIMARY KEY,"
    "  call_id TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX transcript_items_call ON transcript_items (call_id, at);"
    "CREATE TABLE tool_calls ("
    "  id INTEGER PRIMARY KEY,"
    "  call_id TEXT NOT NULL,"
    "  tool_call_id TEXT,"
    "  name TEXT NOT NULL,"
    "  arguments TEXT,"
    "  output TEXT,"
    "  status TEXT NOT NULL,"
    "  duration_ms INTEGER,"
    "  via TEXT,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX tool_calls_call ON tool_calls (call_id, at);"
    "CREATE TABLE customers ("
    "  id INTEGER PRIMARY KEY,"
    "  phone_digits TEXT NOT NULL UNIQUE,"
    "  phone TEXT NOT NULL," /* as the customer gave it */
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    /* date and start_min/end_min are wall-clock values in the company time zone. */
    "CREATE TABLE appointments ("
    "  id INTEGER PRIMARY KEY,"
    "  confirmation TEXT NOT NULL UNIQUE,"
    "  customer_id INTEGER NOT NULL REFERENCES customers (id),"
    "  service TEXT NOT NULL,"
    "  date TEXT NOT NULL," /* YYYY-MM-DD */
    "  start_min INTEGER NOT NULL,"
    "  end_min INTEGER NOT NULL CHECK (end_min > start_min),"
    "  notes TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX appointments_slot ON appointments (date, start_min);"
    "CREATE INDEX appointments_customer ON appointments (customer_id);"
    /* The shop is one resource: whatever writes here, two appointments never overlap. */
    "CREATE TRIGGER appointments_no_overlap BEFORE INSERT ON appointments"
    "  WHEN EXISTS (SELECT 1 FROM appointments WHERE date = NEW.date"
    "               AND start_min < NEW.end_min AND end_min > NEW.start_min)"
    "  BEGIN SELECT RAISE (ABORT, 'slot_unavailable'); END;"
    /* Chat threads and agent runs: filled by the chat and agent-run actors. */
    "CREATE TABLE chat_threads ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE chat_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  thread_id TEXT NOT NULL,"
    "  message_id TEXT NOT NULL UNIQUE,"
    "  client_message_id TEXT,"
    "  role TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX chat_messages_thread ON chat_messages (thread_id, at);"
    "CREATE INDEX chat_messages_at ON chat_messages (at);"
    "CREATE TABLE agent_runs ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id TEXT NOT NULL,"
    "  user_id TEXT,"
    "  task TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  result TEXT,"
    "  error TEXT,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER);"
    "INSERT INTO schema_version (version) VALUES (1);";

/*
 * The migrations: migrations[i] takes a file from version i + 1 to i + 2, inside the opening
 * transaction. A later version appends one.
 */
static const char *const migrations[] = {
    /* 1 -> 2: the server's own secret keys (storedb_server_key()), e.g. the one that signs the
     * userKey of anonymous chat users (SPEC 14 "Voice sessions"). */
    "CREATE TABLE server_keys ("
    "  name TEXT PRIMARY KEY,"
    "  key BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "INSERT INTO schema_version (version) VALUES (2);",
    /* 2 -> 3: tenants (SPEC 16). Every record carries its tenant (earlier rows were the one
     * business's: "default"); a tenant's customers and calendar are its own, so the customer's
     * phone is unique per tenant (a rebuilt table: SQLite cannot drop a UNIQUE) and the slot
     * index and the overlap trigger are per tenant. */
    "ALTER TABLE calls ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "CREATE INDEX calls_tenant_started ON calls (tenant, started_at);"
    "ALTER TABLE chat_threads ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "ALTER TABLE agent_runs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "CREATE TABLE customers_v3 ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant TEXT NOT NULL DEFAULT 'default',"
    "  phone_digits TEXT NOT NULL,"
    "  phone TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  UNIQUE (tenant, phone_digits));"
    "INSERT INTO customers_v3 (id, phone_digits, phone, name, created_at, updated_at)"
    "  SELECT id, phone_digits, phone, name, created_at, updated_at FROM customers;"
    "DROP TABLE customers;"
    "ALTER TABLE customers_v3 RENAME TO customers;"
    "ALTER TABLE appointments ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "DROP INDEX appointments_slot;"
    "CREATE UNIQUE INDEX appointments_slot ON appointments (tenant, date, start_min);"
    "DROP TRIGGER appointments_no_overlap;"
    "CREATE TRIGGER appointments_no_overlap BEFORE INSERT ON appointments"
    "  WHEN EXISTS (SELECT 1 FROM appointments WHERE tenant = NEW.tenant AND date = NEW.date"
    "               AND start_min < NEW.end_min AND end_min > NEW.start_min)"
    "  BEGIN SELECT RAISE (ABORT, 'slot_unavailable'); END;"
    "INSERT INTO schema_version (version) VALUES (3);",
    /* 3 -> 4: phone calls (SPEC 5.5, 15): the channel of a call ("web" for /ws), and for a phone
     * call the caller's number, the number called, Twilio's CallSid and where it was
     * transferred. */
    "ALTER TABLE calls ADD COLUMN channel TEXT NOT NULL DEFAULT 'web';"
    "ALTER TABLE calls ADD COLUMN caller_from TEXT;"
    "ALTER TABLE calls ADD COLUMN caller_to TEXT;"
    "ALTER TABLE calls ADD COLUMN call_sid TEXT;"
    "ALTER TABLE calls ADD COLUMN transferred_to TEXT;"
    "INSERT INTO schema_version (version) VALUES (4);",
    /* 4 -> 5: after the call (SPEC 15). A call keeps its summary (the call_summary object) and
     * its outcome, its first-audio latency, and counters the analytics read without joining
     * tool_calls (booked: a completed bookAppointment); a tool call names its parent; the
     * post-call jobs; and calls_fts, one document per ended call (its transcript) keyed by the
     * call's rowid, for ?q=. */
    "ALTER TABLE calls ADD COLUMN summary TEXT;"
    "ALTER TABLE calls ADD COLUMN outcome TEXT;"
    "ALTER TABLE calls ADD COLUMN first_audio_ms INTEGER;"
    "ALTER TABLE calls ADD COLUMN booked INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN tools_total INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN tools_ok INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tool_calls ADD COLUMN parent_call_id TEXT;"
    "CREATE TABLE postcall_jobs ("
    "  call_id TEXT PRIMARY KEY,"
    "  tenant TEXT NOT NULL,"
    "  state TEXT NOT NULL," /* pending, running, done, failed */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  next_at INTEGER,"            /* Unix ms; NULL when nothing is due */
    "  step_summary TEXT NOT NULL," /* pending, done, failed */
    "  step_crm TEXT NOT NULL,"     /* pending, done, failed, skipped */
    "  webhook_sent INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX postcall_jobs_due ON postcall_jobs (state, next_at);"
    "CREATE VIRTUAL TABLE calls_fts USING fts5 (text);"
    "CREATE TRIGGER calls_gone AFTER DELETE ON calls BEGIN"
    "  DELETE FROM calls_fts WHERE rowid = OLD.rowid;"
    "  DELETE FROM postcall_jobs WHERE call_id = OLD.id;"
    "END;"
    "INSERT INTO schema_version (version) VALUES (5);",
};

enum {
    SQ_CALL_START,
    SQ_CALL_END,
    SQ_TRANSCRIPT,
    SQ_CALL_PHONE,
    SQ_TOOL,
    SQ_CALL,
    SQ_CALL_TRANSCRIPT,
    SQ_CALL_TOOLS,
    SQ_CALL_TOOLS_TAIL,
    SQ_CALL_TOOLS_COUNT,
    SQ_DEL_TRANSCRIPT,
    SQ_DEL_TOOLS,
    SQ_DEL_CALL,
    SQ_EXP_TRANSCRIPT,
    SQ_EXP_TOOLS,
    SQ_EXP_CALLS,
    SQ_EXP_CHAT,
    SQ_TOOL_COUNT,
    SQ_FIRST_AUDIO,
    SQ_FTS_ADD,
    SQ_COUNT
};

static const char *const sq_sql[SQ_COUNT] = {
    [SQ_CALL_START] = "INSERT INTO calls (id, session_id, started_at, tenant) "
                      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
    [SQ_CALL_END] = "UPDATE calls SET ended_at = ?2, end_reason = ?3, duration_ms = MAX(0, ?2 - "
                    "started_at), openai_session_id = ?4, request_id = ?5, input_tokens = ?6, "
                    "output_tokens = ?7 WHERE id = ?1",
    [SQ_TRANSCRIPT] = "INSERT INTO transcript_items (call_id, role, text, at) "
                      "VALUES (?1, ?2, ?3, ?4)",
    [SQ_CALL_PHONE] = "UPDATE calls SET channel = 'phone', caller_from = ?2, caller_to = ?3, "
                      "call_sid = ?4, transferred_to = COALESCE(?5, transferred_to) WHERE id = ?1",
    [SQ_TOOL] = "INSERT INTO tool_calls (call_id, tool_call_id, name, arguments, output, status, "
                "duration_ms, via, at, parent_call_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                "?10)",
    [SQ_TOOL_COUNT] = "UPDATE calls SET tools_total = tools_total + 1, tools_ok = tools_ok + "
                      "(?2 = 'completed'), booked = booked OR (?2 = 'completed' AND ?3 = "
                      "'bookAppointment') WHERE id = ?1",
    [SQ_FIRST_AUDIO] = "UPDATE calls SET first_audio_ms = ?2 WHERE id = ?1 AND first_audio_ms IS "
                       "NULL",
    [SQ_FTS_ADD] = "INSERT INTO calls_fts (rowid, text) SELECT c.rowid, group_concat(t.text, ' ') "
                   "FROM calls c JOIN transcript_items t ON t.call_id = c.id WHERE c.id = ?1 "
                   "AND NOT EXISTS (SELECT 1 FROM calls_fts WHERE rowid = c.rowid) "
                   "GROUP BY c.rowid",
    [SQ_CALL] =
        "SELECT id, session_id, started_at, ended_at, end_reason, duration_ms, tenant, "
        "channel, caller_from, caller_to, call_sid, transferred_to, outcome, openai_session_id, "
        "request_id, input_tokens, output_tokens, summary, first_audio_ms "
        "FROM calls WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)",
    [SQ_CALL_TRANSCRIPT] = "SELECT role, text, at FROM transcript_items WHERE call_id = ?1 "
                           "ORDER BY at, id",
    [SQ_CALL_TOOLS] = "SELECT tool_call_id, name, arguments, output, status, duration_ms, via, "
                      "at, parent_call_id FROM tool_calls WHERE call_id = ?1 ORDER BY at, id",
    [SQ_CALL_TOOLS_TAIL] = "SELECT tool_call_id, name, arguments, output, status, duration_ms, "
                           "via, at, parent_call_id FROM (SELECT * FROM tool_calls WHERE "
                           "call_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2) ORDER BY at, id",
    [SQ_CALL_TOOLS_COUNT] = "SELECT count(*) FROM tool_calls WHERE call_id = ?1",
    [SQ_DEL_TRANSCRIPT] = "DELETE FROM transcript_items WHERE call_id = ?1",
    [SQ_DEL_TOOLS] = "DELETE FROM tool_calls WHERE call_id = ?1",
    [SQ_DEL_CALL] = "DELETE FROM calls WHERE id = ?1",
    [SQ_EXP_TRANSCRIPT] = "DELETE FROM transcript_items WHERE at < ?1 OR call_id IN "
                          "(SELECT id FROM calls WHERE started_at < ?1)",
    [SQ_EXP_TOOLS] = "DELETE FROM tool_calls WHERE at < ?1 OR call_id IN "
                     "(SELECT id FROM calls WHERE started_at < ?1)",
    [SQ_EXP_CALLS] = "DELETE FROM calls WHERE started_at < ?1",
    [SQ_EXP_CHAT] = "DELETE FROM chat_messages WHERE at < ?1",
};

struct storedb {
    sqlite3 *db;
    sqlite3_stmt *st[SQ_COUNT];
    bool in_batch;
};

/* ---- Opening -------------------------------------------------------------------------------- */

/* mkdir -p of the folder part of path. Returns 0 or -errno with the failing folder in err. */
static int make_parent(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX_];
    if (str_copy(dir, path, sizeof(dir)) >= sizeof(dir)) {
        snprintf(err, errlen, "SWITCHBOARD_DB=%s: path too long", path);
        return -ENAMETOOLONG;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(dir, DIR_MODE) != 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "SWITCHBOARD_DB=%s: cannot create folder %s: %s", path, dir,
                     strerror(e));
            return -e;
        }
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "SWITCHBOARD_DB=%s: %s is not a folder", path, dir);
            return -ENOTDIR;
        }
        *p = c;
        if (c == '\0')
            return 0;
    }
}

/* Creates the schema in a new file, or migrates an older file to this build's version. */
static int apply_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto sql_fail;
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                           "name = 'schema_version'",
                           -1, &st, NULL) != SQLITE_OK)
        goto sql_fail_tx;
    bool exists = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (!exists) {
        if (sqlite3_exec(db, schema_v1, NULL, NULL, NULL) != SQLITE_OK)
            goto sql_fail_tx;
        version = 1;
    } else {
        if (sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL) !=
            SQLITE_OK)
            goto sql_fail_tx;
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    for (; version >= 1 && version < STOREDB_SCHEMA_VERSION; version++)
        if (sqlite3_exec(db, migrations[version - 1], NULL, NULL, NULL) != SQLITE_OK)
            goto sql_fail_tx;
    if (version != STOREDB_SCHEMA_VERSION) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errlen, "SWITCHBOARD_DB=%s: schema version %d, this build knows %d", path,
                 version, STOREDB_SCHEMA_VERSION);
        return -EPROTO;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto sql_fail_tx;
    return 0;
sql_fail_tx:
    snprintf(err, errlen, "SWITCHBOARD_DB=%s: schema: %s", path, sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -EIO;
sql_fail:
    snprintf(err, errlen, "SWITCHBOARD_DB=%s: %s", path, sqlite3_errmsg(db));
    return -EIO;
}

storedb_t *storedb_open(const char *path, char *err, size_t errlen)
{
    bool memory = strcmp(path, ":memory:") == 0;
    if (!memory && make_parent(path, err, errlen) != 0)
        return NULL;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "SWITCHBOARD_DB=%s: cannot open: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, STOREDB_BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(st, 0);
    bool wal = mode && (strcmp(mode, "wal") == 0 || (memory && strcmp(mode, "memory") == 0));
    sqlite3_finalize(st);
    if (!wal || sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "SWITCHBOARD_DB=%s: cannot use WAL mode: %s", path,
                 sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    if (apply_schema(db, path, err, errlen) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    storedb_t *s = xcalloc(1, sizeof(*s));
    s->db = db;
    if (!store_prepare_all(db, sq_sql, s->st, SQ_COUNT)) {
        snprintf(err, errlen, "SWITCHBOARD_DB=%s: %s", path, sqlite3_errmsg(db));
        storedb_close(s);
        return NULL;
    }
    return s;
}

void storedb_close(storedb_t *s)
{
    if (s == NULL)
        return;
    storedb_batch_commit(s);
    store_finalize_all(s->st, SQ_COUNT);
    if (sqlite3_close(s->db) != SQLITE_OK)
        log_error("store.close", LOG_S("error", sqlite3_errmsg(s->db)));
    free(s);
}

sqlite3 *storedb_handle(storedb_t *s)
{
    return s->db;
}

int storedb_server_key(storedb_t *s, const char *name, uint8_t key[STORE_SERVER_KEY_BYTES],
                       char *err, size_t errlen)
{
    /* Offer a fresh key, then read whichever is stored: two processes opening one new file
     * both end up with the first one's key. */
    uint8_t fresh[STORE_SERVER_KEY_BYTES];
    randombytes_buf(fresh, sizeof(fresh));
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO server_keys (name, key, created_at) VALUES (?1, ?2, "
                                "?3) ON CONFLICT (name) DO NOTHING",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        store_bind_text(st, 1, name);
        sqlite3_bind_blob(st, 2, fresh, sizeof(fresh), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, (int64_t)clock_wall_ms());
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    sodium_memzero(fresh, sizeof(fresh));
    st = NULL;
    bool found = false;
    if (rc == SQLITE_OK && sqlite3_prepare_v2(s->db, "SELECT key FROM server_keys WHERE name = ?1",
                                              -1, &st, NULL) == SQLITE_OK) {
        store_bind_text(st, 1, name);
        if (sqlite3_step(st) == SQLITE_ROW &&
            sqlite3_column_bytes(st, 0) == STORE_SERVER_KEY_BYTES) {
            memcpy(key, sqlite3_column_blob(st, 0), STORE_SERVER_KEY_BYTES);
            found = true;
        }
    }
    sqlite3_finalize(st);
    if (!found) {
        snprintf(err, errlen, "cannot read server key %s: %s", name, sqlite3_errmsg(s->db));
        return -EIO;
    }
    return 0;
}

void storedb_batch_begin(storedb_t *s)
{
    if (s->in_batch)
        return;
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK)
        s->in_batch = true;
    else
        log_error("store.batch", LOG_S("error", sqlite3_errmsg(s->db)));
}

void storedb_batch_commit(storedb_t *s)
{
    if (!s->in_batch)
        return;
    s->in_batch = false;
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_error("store.commit", LOG_S("error", sqlite3_errmsg(s->db)));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* ---- Writes --------------------------------------------------------------------------------- */

/* Steps a write to its end. Returns 0 or -EIO (logged with what). */
static int finish(storedb_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    log_error("store.write", LOG_S("what", what), LOG_S("error", sqlite3_errmsg(s->db)));
    return -EIO;
}

int storedb_call_start(storedb_t *s, const char *call_id, const char *session_id,
                       const char *tenant, int64_t at_ms)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_CALL_START]);
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, session_id ? session_id : "");
    sqlite3_bind_int64(st, 3, at_ms);
    store_bind_text(st, 4, tenant ? tenant : TENANT_DEFAULT_ID);
    return finish(s, st, "call_start");
}

int storedb_call_end(storedb_t *s, const char *call_id, int64_t at_ms, const char *end_reason,
                     const char *openai_session_id, const char *request_id, int64_t input_tokens,
                     int64_t output_tokens)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_CALL_END]);
    store_bind_text(st, 1, call_id);
    sqlite3_bind_int64(st, 2, at_ms);
    store_bind_text(st, 3, end_reason);
    store_bind_text(st, 4, openai_session_id);
    store_bind_text(st, 5, request_id);
    sqlite3_bind_int64(st, 6, input_tokens);
    sqlite3_bind_int64(st, 7, output_tokens);
    int rc = finish(s, st, "call_end");
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    if (rc == 0) { /* the transcript is complete: it becomes the call's search document */
        st = store_stmt_fresh(s->st[SQ_FTS_ADD]);
        store_bind_text(st, 1, call_id);
        finish(s, st, "call_fts");
    }
    return rc;
}

int storedb_call_first_audio(storedb_t *s, const char *call_id, int64_t ms)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_FIRST_AUDIO]);
    store_bind_text(st, 1, call_id);
    sqlite3_bind_int64(st, 2, ms);
    return finish(s, st, "first_audio");
}

int storedb_call_phone(storedb_t *s, const char *call_id, const char *from, const char *to,
                       const char *call_sid, const char *transferred_to)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_CALL_PHONE]);
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, from);
    store_bind_text(st, 3, to);
    store_bind_text(st, 4, call_sid);
    store_bind_text(st, 5, transferred_to);
    return finish(s, st, "call_phone");
}

int storedb_transcript(storedb_t *s, const char *call_id, const char *role, const char *text,
                       int64_t at_ms)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_TRANSCRIPT]);
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, role ? role : "");
    store_bind_text(st, 3, text ? text : "");
    sqlite3_bind_int64(st, 4, at_ms);
    return finish(s, st, "transcript");
}

int storedb_tool_record(storedb_t *s, const char *call_id, const char *tool_call_id,
                        const char *parent_call_id, const char *name, const char *arguments,
                        const char *output, const char *status, int64_t duration_ms,
                        const char *via, int64_t at_ms)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_TOOL]);
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, tool_call_id);
    store_bind_text(st, 3, name ? name : "");
    store_bind_text(st, 4, arguments);
    store_bind_text(st, 5, output);
    store_bind_text(st, 6, status ? status : "");
    sqlite3_bind_int64(st, 7, duration_ms);
    store_bind_text(st, 8, via);
    sqlite3_bind_int64(st, 9, at_ms);
    store_bind_text(st, 10, parent_call_id && parent_call_id[0] ? parent_call_id : NULL);
    int rc = finish(s, st, "tool_record");
    if (rc == 0) {
        st = store_stmt_fresh(s->st[SQ_TOOL_COUNT]);
        store_bind_text(st, 1, call_id);
        store_bind_text(st, 2, status ? status : "");
        store_bind_text(st, 3, name ? name : "");
        rc = finish(s, st, "tool_count");
    }
    return rc;
}

/* ---- Reads ---------------------------------------------------------------------------------- */

static void add_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        cJSON_AddNullToObject(obj, key);
        break;
    case SQLITE_INTEGER:
        cJSON_AddNumberToObject(obj, key, (double)sqlite3_column_int64(st, col));
        break;
    default:
        cJSON_AddStringToObject(obj, key, (const char *)sqlite3_column_text(st, col));
        break;
    }
}

/* A text column as parsed JSON when it is valid JSON, else as the string (SPEC 5.1). */
static void add_json_col(cJSON *obj, const char *key, sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (v)
        cJSON_AddItemToObject(obj, key, v);
    else
        add_col(obj, key, st, col);
}

/* How a result column becomes a member: its JSON key, and whether text is JSON to parse. */
typedef struct col_spec {
    const char *key;
    bool json;
} col_spec_t;

/* Columns 0..n-1 of the current row as the members of obj. */
static void add_cols(cJSON *obj, sqlite3_stmt *st, const col_spec_t *cols, int n)
{
    for (int i = 0; i < n; i++) {
        if (cols[i].json)
            add_json_col(obj, cols[i].key, st, i);
        else
            add_col(obj, cols[i].key, st, i);
    }
}

/* Every row of st (bound, not stepped yet) as an object, appended to arr. */
static void add_rows(cJSON *arr, sqlite3_stmt *st, const col_spec_t *cols, int n)
{
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *row = cJSON_CreateObject();
        add_cols(row, st, cols, n);
        cJSON_AddItemToArray(arr, row);
    }
    sqlite3_reset(st);
}

/* The first columns of SQ_CALL. */
static const col_spec_t summary_cols[] = {
    {"id", false},        {"sessionId", false},  {"startedAt", false}, {"endedAt", false},
    {"endReason", false}, {"durationMs", false}, {"tenant", false},    {"channel", false},
    {"from", false},      {"to", false},         {"callSid", false},   {"transferredTo", false}};
static const col_spec_t transcript_cols[] = {{"role", false}, {"text", false}, {"at", false}};
static const col_spec_t tool_cols[] = {
    {"callId", false}, {"name", false},   {"arguments", true},
    {"output", true},  {"status", false}, {"durationMs", false},
    {"via", false},    {"at", false},     {"parentCallId", false}};
#define COLS(c) (c), (int)ARRAY_LEN(c)

char *storedb_calls_json(storedb_t *s, int limit, const char *tenant)
{
    querydb_filter_t f = {.tenant = tenant, .limit = limit};
    return querydb_calls_json(s->db, &f);
}

/* The call as GET /api/calls/{id} shows it; with max_tools > 0 only its newest max_tools tool
 * calls, and toolCallsTotal. NULL when there is no such call (of that tenant). */
static cJSON *call_tree(storedb_t *s, const char *call_id, const char *tenant, int max_tools)
{
    sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_CALL]);
    store_bind_text(st, 1, call_id);
    store_bind_text(st, 2, tenant);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    cJSON *c = cJSON_CreateObject();
    add_cols(c, st, COLS(summary_cols));
    int n = (int)ARRAY_LEN(summary_cols);
    add_col(c, "outcome", st, n);
    add_col(c, "openaiSessionId", st, n + 1);
    add_col(c, "requestId", st, n + 2);
    cJSON *usage = cJSON_AddObjectToObject(c, "usage");
    add_col(usage, "inputTokens", st, n + 3);
    add_col(usage, "outputTokens", st, n + 4);
    add_json_col(c, "summary", st, n + 5);
    add_col(c, "firstAudioMs", st, n + 6);
    sqlite3_reset(st);
    cJSON_AddItemToObject(c, "postcall", jobsdb_job_json(s->db, call_id));

    st = store_stmt_fresh(s->st[SQ_CALL_TRANSCRIPT]);
    store_bind_text(st, 1, call_id);
    add_rows(cJSON_AddArrayToObject(c, "transcript"), st, COLS(transcript_cols));
    if (max_tools > 0) {
        st = store_stmt_fresh(s->st[SQ_CALL_TOOLS_COUNT]);
        store_bind_text(st, 1, call_id);
        cJSON_AddNumberToObject(c, "toolCallsTotal",
                                sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0);
        sqlite3_reset(st);
        st = store_stmt_fresh(s->st[SQ_CALL_TOOLS_TAIL]);
        store_bind_text(st, 1, call_id);
        sqlite3_bind_int(st, 2, max_tools);
    } else {
        st = store_stmt_fresh(s->st[SQ_CALL_TOOLS]);
        store_bind_text(st, 1, call_id);
    }
    add_rows(cJSON_AddArrayToObject(c, "toolCalls"), st, COLS(tool_cols));
    return c;
}

char *storedb_call_json(storedb_t *s, const char *call_id, const char *tenant)
{
    cJSON *c = call_tree(s, call_id, tenant, 0);
    return c ? store_json_take(c) : NULL;
}

cJSON *storedb_call_tail(storedb_t *s, const char *call_id, int max_tools)
{
    return call_tree(s, call_id, NULL, max_tools);
}

/* Runs the statements in order with ?1 = the id, or ?1 = the cutoff, in one transaction. */
static int run_all(storedb_t *s, const int *which, int n, const char *id, int64_t cutoff_ms,
                   int *changes_of_last)
{
    bool own_tx = !s->in_batch;
    if (own_tx && sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        log_error("store.delete", LOG_S("error", sqlite3_errmsg(s->db)));
        return -EIO;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        sqlite3_stmt *st = store_stmt_fresh(s->st[which[i]]);
        if (id)
            store_bind_text(st, 1, id);
        else
            sqlite3_bind_int64(st, 1, cutoff_ms);
        rc = finish(s, st, "delete");
        if (rc == 0 && i == n - 1)
            *changes_of_last = sqlite3_changes(s->db);
    }
    if (own_tx)
        sqlite3_exec(s->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int storedb_call_delete(storedb_t *s, const char *call_id, const char *tenant)
{
    static const int del[] = {SQ_DEL_TRANSCRIPT, SQ_DEL_TOOLS, SQ_DEL_CALL};
    int n = 0;
    if (tenant != NULL) { /* another tenant's call is not there for this one */
        sqlite3_stmt *st = store_stmt_fresh(s->st[SQ_CALL]);
        store_bind_text(st, 1, call_id);
        store_bind_text(st, 2, tenant);
        bool own = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        if (!own)
            return 0;
    }
    int rc = run_all(s, del, (int)ARRAY_LEN(del), call_id, 0, &n);
    return rc != 0 ? rc : n > 0;
}

int storedb_expire(storedb_t *s, int64_t cutoff_ms)
{
    static const int expire[] = {SQ_EXP_CHAT, SQ_EXP_TRANSCRIPT, SQ_EXP_TOOLS, SQ_EXP_CALLS};
    int n = 0;
    int rc = run_all(s, expire, (int)ARRAY_LEN(expire), NULL, cutoff_ms, &n);
    return rc != 0 ? rc : n;
}
