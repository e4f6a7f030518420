/*
 * store_int: the pieces behind the store actor (store.c), each a file of its own so that tests
 * can drive them without the actor:
 *
 *   storedb  the SQLite file: folder, pragmas, schema and its version, call records, their JSON
 *   booking  the built-in booking tools on a connection (SPEC 7, 14)
 *   webhook  the post-call webhook's signature and retry policy (SPEC 9, 14), pure functions
 *   chatdb   chat threads and messages, agent runs (SPEC 5.3, 5.4, 9)
 *   records  the store_*() front: the messages senders build (any thread)
 *
 * CONTRACT
 *   A storedb_t, booking_t or chatdb_t belongs to the one thread that uses its connection (the
 * store's worker; a test's thread): nothing here locks. Two connections to one file, in one process
 * or two, are safe with each other: SQLite's file locks serialise writers (WAL), and bookings are
 *   made inside BEGIN IMMEDIATE with a database constraint behind the overlap check.
 *   The webhook functions are pure: any thread.
 */
#ifndef SB_AGENTS_STORE_INT_H
#define SB_AGENTS_STORE_INT_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "actors/actor.h"
#include "actors/timer.h"
#include "agents/tools/tools.h"
#include "base/strmap.h"
#include "agents/config/agentcfg.h"
#include "agents/store/store.h"
#include "agents/tenant/tenant.h"
#include "net/net.h"

/* ---- The messages of the store's front (records.c), read by the actor (store.c) ---------- */

/* One record for the database; every string is a copy owned by the message. */
typedef struct store_rec_msg {
    msg_t hdr;
    int64_t at_ms;
    int64_t duration_ms;                                           /* tool record */
    int64_t input_tokens, output_tokens;                           /* call end */
    char *call_id;                                                 /* every record */
    char *session_id, *tenant;                                     /* call start */
    char *end_reason, *openai_session_id, *request_id;             /* call end */
    char *role, *text;                                             /* transcript */
    char *tool_call_id, *name, *arguments, *output, *status, *via; /* tool record */
    char *from, *to, *call_sid, *transferred_to;                   /* phone */
    char *parent_call_id;                                          /* tool record */
} store_rec_msg_t;

/* A message of the post-call runner to the store; every string is a copy owned by it. */
typedef struct store_pc_msg {
    msg_t hdr;
    actor_t *actor; /* attach: the runner; claim: who to answer (references) */
    int max;        /* claim */
    char *call_id, *summary, *outcome, *crm, *error;
} store_pc_msg_t;

/* A chat or agent-run record, or a thread to open; every string is a copy owned by it. */
typedef struct store_chat_msg {
    msg_t hdr;
    actor_t *reply_to;              /* open: a reference */
    uint64_t cookie;                /* open */
    int limit;                      /* open */
    int64_t at_ms;                  /* message: its time; open: now; run: started */
    int64_t ended_at_ms, record_id; /* run */
    char *thread_id, *user_id, *message_id, *client_message_id, *role, *text; /* chat */
    char *tenant;                                                             /* open, run */
    char *run_id, *task, *status, *result, *error;                            /* run */
} store_chat_msg_t;

/* The answer to store_chat_open(): status (0 or -EIO), the thread's owner and tenant and its
 * newest history items (taken; NULL = []). */
store_chat_thread_msg_t *store_chat_thread_new(uint64_t cookie, int status, const char *owner,
                                               const char *tenant, cJSON *messages);

/* The answer to store_postcall_claim() (takes jobs). */
store_pc_jobs_msg_t *store_pc_jobs_new(cJSON *jobs, int64_t next_due_ms);

/* Prints j compactly and frees it; the text is malloc'd. Aborts only when memory is gone. */
static inline char *store_json_take(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s == NULL)
        abort();
    return s;
}

/*
 * Prepares sql[0..n-1] into st[] as long-lived statements. Returns true, or false with st[]
 * partly filled (the caller finalizes every entry with store_finalize_all(); unfilled ones are
 * NULL).
 */
static inline bool store_prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK)
            return false;
    return true;
}

/* Finalizes st[0..n-1] (NULL entries are skipped by SQLite). */
static inline void store_finalize_all(sqlite3_stmt **st, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_finalize(st[i]);
}

/* A cached statement reset and unbound, ready for new bindings. */
static inline sqlite3_stmt *store_stmt_fresh(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Binds a copy of s, or NULL when s is NULL. */
static inline void store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* ---- storedb.c ------------------------------------------------------------------------------ */

#define STOREDB_SCHEMA_VERSION  5
#define STOREDB_BUSY_TIMEOUT_MS 5000 /* another process holding the write lock */

typedef struct storedb storedb_t;

/*
 * Opens path (creating its folder and the file), sets WAL, synchronous=NORMAL and the busy
 * timeout, and applies the schema (or checks that an existing file's version is one this
 * build knows). Returns the handle, or NULL with a message in err naming path and the reason.
 */
storedb_t *storedb_open(const char *path, char *err, size_t errlen);
/* Finishes an open batch, finalises every statement and closes the file. NULL is ignored. */
void storedb_close(storedb_t *s);
/* The connection, for booking_new(). */
sqlite3 *storedb_handle(storedb_t *s);
/*
 * The server key called name (STORE_SERVER_KEY_BYTES random bytes), created on first use and
 * the same on every later open of the file, also by another process (the first insert wins).
 * Returns 0, or -EIO with a message in err.
 */
int storedb_server_key(storedb_t *s, const char *name, uint8_t key[STORE_SERVER_KEY_BYTES],
                       char *err, size_t errlen);

/*
 * Batching: writes between begin and commit share one transaction (one fsync at checkpoint time
 * instead of one per record). begin is a no-op inside a batch; commit a no-op outside one.
 */
void storedb_batch_begin(storedb_t *s);
void storedb_batch_commit(storedb_t *s);

/* Record writes; each returns 0 or -EIO (the reason is logged). Strings may be NULL. */
/* tenant NULL = "default". */
int storedb_call_start(storedb_t *s, const char *call_id, const char *session_id,
                       const char *tenant, int64_t at_ms);
/* Returns -ENOENT when no call_start was recorded for call_id. */
int storedb_call_end(storedb_t *s, const char *call_id, int64_t at_ms, const char *end_reason,
                     const char *openai_session_id, const char *request_id, int64_t input_tokens,
                     int64_t output_tokens);
/* Marks a call as a phone call with its numbers and CallSid (store_call_phone()). */
int storedb_call_phone(storedb_t *s, const char *call_id, const char *from, const char *to,
                       const char *call_sid, const char *transferred_to);
int storedb_transcript(storedb_t *s, const char *call_id, const char *role, const char *text,
                       int64_t at_ms);
/* A tool call (parent_call_id: the call it is nested under, "postcall" for the CRM run's, NULL
 * or "" for none); also counts it on the call (tools_total, tools_ok, booked). */
int storedb_tool_record(storedb_t *s, const char *call_id, const char *tool_call_id,
                        const char *parent_call_id, const char *name, const char *arguments,
                        const char *output, const char *status, int64_t duration_ms,
                        const char *via, int64_t at_ms);
/* The call's first-audio latency (the first one measured is kept). */
int storedb_call_first_audio(storedb_t *s, const char *call_id, int64_t ms);

/*
 * {"calls":[…]} newest first, at most limit entries (SPEC 4), of tenant only (NULL = every
 * tenant's). Returns malloc'd JSON text.
 */
char *storedb_calls_json(storedb_t *s, int limit, const char *tenant);
/* The record of one call with its transcript and tool calls (SPEC 4, 9); NULL when unknown or
 * (tenant not NULL) another tenant's. */
char *storedb_call_json(storedb_t *s, const char *call_id, const char *tenant);
/* The call for its post-call work: its newest max_tools tool calls only, and toolCallsTotal;
 * NULL when there is no such call. */
cJSON *storedb_call_tail(storedb_t *s, const char *call_id, int max_tools);
/* Deletes a call and its rows (tenant not NULL: only its own). Returns 1 when it existed, 0 when
 * not, -EIO on failure. */
int storedb_call_delete(storedb_t *s, const char *call_id, const char *tenant);
/*
 * Retention: deletes calls started before cutoff_ms (with their transcript and tool rows) and
 * chat messages older than cutoff_ms. Returns the number of calls deleted, or -EIO.
 */
int storedb_expire(storedb_t *s, int64_t cutoff_ms);

/* ---- booking.c, bookingpg.c ---------------------------------------------------------------- */

typedef struct booking booking_t;

/*
 * Makes the booking tools of the business in ac: hours, services, and ac->company_timezone,
 * loaded here from the system's zone files. db: the SQLite connection they book on (schema
 * applied by storedb_open()), prepared here for booking_run(); NULL: the tools of a PostgreSQL
 * store (booking_pg_start()). Returns NULL with a message in err (an unknown time zone names the
 * config key). tenant names the calendar and the customers it books into (NULL = "default"); ac
 * must outlive it.
 */
booking_t *booking_new(sqlite3 *db, const agentcfg_t *ac, const char *tenant, char *err,
                       size_t errlen);
void booking_free(booking_t *b);
/*
 * Runs the booking tool name with args (an object; NULL = {}) on b's SQLite connection as of
 * now_ms (Unix ms: "today" in the company time zone). Returns the output JSON text (malloc'd)
 * and sets *is_error for a tool error, whose output is {"error":{"code","message"}} (SPEC 14).
 */
char *booking_run(booking_t *b, const char *name, const cJSON *args, int64_t now_ms,
                  bool *is_error);

/*
 * The same tools on PostgreSQL (bookingpg.c), a step at a time: the store sends a run's
 * statement with net_pg_query() (no NET_PG_QUEUE: while PostgreSQL is unreachable a booking tool
 * fails at once) and hands the answer back. Outputs are booking_run()'s for the same data; a run
 * whose statement is not answered OK ends with the tool error "unavailable". A booking sent and
 * answered UNREACHABLE (the connection broke with it in flight) may have been stored.
 *
 * A booking_pgq_t holds what the run needs (copies): b may be freed, a tenant's tools made anew,
 * while it waits. Like a booking_t, it belongs to one thread at a time (the store's worker).
 */
typedef struct booking_pgq booking_pgq_t;
/*
 * Starts the tool name with args (NULL = {}) as of now_ms. Returns the output now (an argument
 * error, a closed day, an unknown tool) with *q NULL; or NULL with *q the run, whose statement
 * is to be sent: booking_pgq_sql(), booking_pgq_nparams(), booking_pgq_params().
 */
char *booking_pg_start(booking_t *b, const char *name, const cJSON *args, int64_t now_ms,
                       bool *is_error, booking_pgq_t **q);
/*
 * The answer m to q's statement. Returns the output (and sets *is_error); or NULL with q holding
 * the next statement to send (another confirmation number after a collision). q stays the
 * caller's either way.
 */
char *booking_pg_resume(booking_pgq_t *q, const net_pg_msg_t *m, bool *is_error);
/* The statement (static), its parameter count and texts (valid until q is resumed or freed). */
const char *booking_pgq_sql(const booking_pgq_t *q);
int booking_pgq_nparams(const booking_pgq_t *q);
const char *const *booking_pgq_params(const booking_pgq_t *q);
void booking_pgq_free(booking_pgq_t *q);

/*
 * Between booking.c and bookingpg.c: a tool run as steps, whatever the database. A step names
 * one operation; its answer is rows of texts (NULL for SQL NULL), the same from either database.
 */
typedef enum booking_op_kind {
    BOOKING_OP_BUSY,   /* the day's appointments: rows (start_min, end_min) */
    BOOKING_OP_BOOK,   /* the customer upserted and the appointment inserted, in one transaction:
                          one row, one column: "ok", "taken" (it would overlap one) or
                          "confirmation_taken" (the number exists) */
    BOOKING_OP_LOOKUP, /* the customer of the phone digits and their appointments by date and
                          start: rows (name, phone, confirmation, date, start_min, end_min, service,
                          notes), the appointment's columns NULL when there is none; no row: no
                          such customer */
} booking_op_kind_t;

typedef struct booking_op {
    booking_op_kind_t kind;
    const char *tenant;                 /* every kind */
    const char *date;                   /* busy, book: YYYY-MM-DD */
    const char *digits;                 /* book, lookup: the phone's digits */
    const char *phone, *name, *service; /* book: as given; service as configured */
    const char *notes;                  /* book: NULL when none */
    const char *confirmation;           /* book */
    int start_min, end_min;             /* book */
    int64_t at_ms;                      /* book: the customer's and appointment's time */
} booking_op_t;

/* BOOKING_OP_BOOK's answer: one row of one text. */
#define BOOKING_BOOKED             "ok"
#define BOOKING_TAKEN              "taken" /* an overlapping appointment exists */
#define BOOKING_CONFIRMATION_TAKEN "confirmation_taken" /* draw another number */

/* An operation's answer: nrows rows of ncols texts, row-major. */
typedef struct booking_rows {
    int nrows, ncols;
    const char *const *values;
} booking_rows_t;

typedef struct booking_step booking_step_t;
/* As booking_pg_start(), with *st the run waiting for booking_step_op(*st). */
char *booking_step_start(booking_t *b, const char *name, const cJSON *args, int64_t now_ms,
                         bool *is_error, booking_step_t **st);
/* The operation st waits for; its strings live until st is answered or freed. */
const booking_op_t *booking_step_op(const booking_step_t *st);
/* The operation's answer: the output, or NULL with st waiting for another operation. */
char *booking_step_answer(booking_step_t *st, const booking_rows_t *rows, bool *is_error);
void booking_step_free(booking_step_t *st);
/* The tool error {"error":{"code","message"}} (malloc'd); sets *is_error. */
char *booking_error(const char *code, const char *message, bool *is_error);

/* bookingsql.c: the operations on SQLite (booking_run() runs a tool through them). */
typedef struct booking_sql booking_sql_t;
/* The booking statements prepared on db; NULL with a message in err. */
booking_sql_t *booking_sql_new(sqlite3 *db, char *err, size_t errlen);
void booking_sql_free(booking_sql_t *s);
/* b's SQLite statements (booking.c); NULL for the tools of a PostgreSQL store. */
booking_sql_t *booking_sql_of(const booking_t *b);

/* ---- chatdb.c ------------------------------------------------------------------------------- */

typedef struct chatdb chatdb_t;

/* One agent run's record; strings may be NULL. */
typedef struct chatdb_run {
    int64_t record_id; /* the row's key, chosen by the agent actor (random, positive) */
    const char *run_id;
    const char *user_id;
    const char *tenant; /* NULL = "default" */
    const char *task;
    const char *status; /* running, success, failed */
    const char *result;
    const char *error;
    int64_t started_at_ms;
    int64_t ended_at_ms; /* 0 while running */
} chatdb_run_t;

/* Prepares the chat and agent-run statements on db (schema applied by storedb_open()). Returns
 * NULL with a message in err. */
chatdb_t *chatdb_new(sqlite3 *db, char *err, size_t errlen);
void chatdb_free(chatdb_t *c);
/* Who a chat thread belongs to: the first user (and that user's tenant) that opened it. */
typedef struct chatdb_owner {
    char user_id[STORE_CHAT_ID_MAX + 1];
    char tenant[STORE_CHAT_ID_MAX + 1];
} chatdb_owner_t;

/*
 * Opens thread_id for user_id of tenant (NULL = "default"): creates it owned by them unless it
 * exists, and copies its owner into owner. Returns 0 or -EIO.
 */
int chatdb_thread_open(chatdb_t *c, const char *thread_id, const char *user_id, const char *tenant,
                       int64_t at_ms, chatdb_owner_t *owner);
/* The newest `limit` messages of thread_id, oldest first, as SPEC 5.3 history items
 * ({role, text, messageId, at, clientMessageId?}). Never NULL. */
cJSON *chatdb_history(chatdb_t *c, const char *thread_id, int limit);
/* Appends a message (a message_id already stored is left as it is). Returns 0 or -EIO. */
int chatdb_message(chatdb_t *c, const char *thread_id, const char *message_id,
                   const char *client_message_id, const char *role, const char *text,
                   int64_t at_ms);
/* Inserts or updates (by record_id) an agent run's record. Returns 0 or -EIO. */
int chatdb_agent_run(chatdb_t *c, const chatdb_run_t *r);

/* ---- webhook.c ------------------------------------------------------------------------------ */

#define WEBHOOK_ATTEMPTS      4 /* the first and 3 retries (SPEC 9) */
#define WEBHOOK_SIG_HEADER    "Switchboard-Signature"
#define WEBHOOK_SIG_VALUE_MAX 96 /* "t=<20 digits>,v1=<64 hex>" */

/*
 * The Switchboard-Signature value for body sent at t_s (Unix seconds):
 * "t=<t_s>,v1=<hex HMAC-SHA256(secret, "<t_s>.<body>")>". secret NULL signs with an empty key.
 */
void webhook_signature(const char *secret, int64_t t_s, const char *body, size_t len,
                       char out[WEBHOOK_SIG_VALUE_MAX]);
/* Whether a response status is worth another attempt: network errors (0) and 5xx. */
bool webhook_should_retry(int status);
/*
 * The delay before the next attempt after attempts_done attempts (1..) ended with status, or
 * -1 when there is none (success, a final status, or WEBHOOK_ATTEMPTS reached).
 */
int64_t webhook_next_delay_ms(int status, int attempts_done);

/* ---- jobsdb.c: post-call jobs (SPEC 15) ------------------------------------------------------ */

#define JOBSDB_MAX_ATTEMPTS 5 /* SPEC 15: at most 5 attempts */
#define JOBSDB_TENANT_MAX   64

/* Running jobs of a process that stopped go back to pending, due at now_ms. Returns the rows,
 * or -EIO. */
int jobsdb_recover(sqlite3 *db, int64_t now_ms);
/* A call's tenant and caller turns (transcript lines of role user), when it exists and (tenant
 * not NULL) is that tenant's. Returns 1 found, 0 not, -EIO. */
int jobsdb_call_info(sqlite3 *db, const char *call_id, const char *tenant,
                     char tenant_out[JOBSDB_TENANT_MAX + 1], int *user_turns);
/* Queues the call's job now: a new one, or one done or failed before again from attempt 1, the
 * steps not done pending (crm: the tenant has a CRM, else that step is skipped). 0 or -EIO. */
int jobsdb_queue(sqlite3 *db, const char *call_id, const char *tenant, bool crm, int64_t now_ms);
/*
 * Takes at most max jobs due at now_ms (pending, or failed with a retry due) and marks them
 * running with one more attempt. Returns [{callId, tenant, attempts, summary, crm}] (steps as
 * stored) and sets *next_due_ms to when the next of the others is due (-1: none).
 */
cJSON *jobsdb_claim(sqlite3 *db, int64_t now_ms, int max, int64_t *next_due_ms);
/* Stores the call's summary (JSON text) and its outcome. 0 or -EIO. */
int jobsdb_summary(sqlite3 *db, const char *call_id, const char *summary, const char *outcome);
/* Sets step ("summary" | "crm") to state; error (may be NULL) becomes the last error. */
int jobsdb_step(sqlite3 *db, const char *call_id, const char *step, const char *state,
                const char *error, int64_t now_ms);

/* How an attempt ended (jobsdb_end()). */
typedef struct jobsdb_end {
    bool done;           /* every step done or skipped */
    bool final;          /* failed with no attempt left */
    int64_t retry_in_ms; /* -1 when no retry */
} jobsdb_end_t;

/* The delay before attempt attempts_done + 1: base_ms doubling, -1 past JOBSDB_MAX_ATTEMPTS. */
int64_t jobsdb_retry_delay_ms(int attempts_done, int64_t base_ms);
/* Ends the running attempt from its steps: done, or failed with error and a retry due after
 * jobsdb_retry_delay_ms(). 0, -ENOENT, -EIO. */
int jobsdb_end(sqlite3 *db, const char *call_id, const char *error, int64_t now_ms,
               int64_t retry_base_ms, jobsdb_end_t *out);
/* Marks the call's webhook sent. Returns 1 when it had not been (the caller sends it now), 0 when
 * it had or there is no job, -EIO. */
int jobsdb_webhook_take(sqlite3 *db, const char *call_id);
/* The call record's "postcall" member: {state, attempts, lastError, nextAt, steps, updatedAt},
 * or JSON null without a job. */
cJSON *jobsdb_job_json(sqlite3 *db, const char *call_id);

/* ---- querydb.c: the calls list with filters and the analytics (SPEC 15) -------------------- */

/* The filters of GET /api/calls; NULL / 0 members filter nothing. */
typedef struct querydb_filter {
    const char *tenant;
    int64_t from_ms, to_ms; /* started_at in [from_ms, to_ms); 0 = open */
    const char *channel;
    const char *outcome;
    const char *q;                   /* words to find in the transcript */
    int64_t cursor_at, cursor_rowid; /* keyset: rows after this one (cursor_rowid 0 = first) */
    int limit;
} querydb_filter_t;

/* {"calls":[…],"nextCursor":"…"|null}. Returns malloc'd JSON text, NULL when the query failed. */
char *querydb_calls_json(sqlite3 *db, const querydb_filter_t *f);
/* The FTS5 query of a search text: each word a quoted string (so none is an operator), all
 * of them required. Returns malloc'd text; "" when there are no words. */
char *querydb_fts_query(const char *text);
/* The cursor "<at>.<rowid>" parsed. Returns false when malformed. */
bool querydb_parse_cursor(const char *s, int64_t *at, int64_t *rowid);

/* The analytics of SPEC 15 over n_days days whose local midnights are day_start_ms[0..n_days]
 * (n_days + 1 bounds); dates[i] names day i. Returns malloc'd JSON text. */
char *querydb_analytics_json(sqlite3 *db, const char *tenant, int n_days,
                             const int64_t *day_start_ms, char (*dates)[11]);

/* The analytics built from rows (started_at, duration_ms, outcome, booked, tools_total,
 * tools_ok, first_audio_ms), whichever database read them. */
typedef struct querydb_acc querydb_acc_t;
querydb_acc_t *querydb_acc_new(int n_days, const int64_t *day_start_ms);
/* One call; duration_ms and first_audio_ms < 0 when unknown, outcome NULL when none. */
void querydb_acc_add(querydb_acc_t *a, int64_t started_at, int64_t duration_ms,
                     const char *outcome, bool booked, int64_t tools_total, int64_t tools_ok,
                     int64_t first_audio_ms);
/* The same from sums a database made (PostgreSQL, storepg.c): a day's calls, their summed and
 * counted durations and bookings; an outcome's calls; the tool counters and the first-audio
 * percentiles (nearest rank; -1 when no latency is known). */
void querydb_acc_day(querydb_acc_t *a, int day, int64_t calls, int64_t duration_sum,
                     int64_t with_duration, int64_t booked);
void querydb_acc_outcome(querydb_acc_t *a, const char *outcome, int64_t calls);
void querydb_acc_totals(querydb_acc_t *a, int64_t tools_total, int64_t tools_ok,
                        int64_t first_audio_p50, int64_t first_audio_p95);
/* The JSON text of SPEC 15 (malloc'd); frees a. */
char *querydb_acc_json(querydb_acc_t *a, char (*dates)[11]);

/* ---- callsapi.c: the query strings of the calls list and the analytics ---------------------- */

struct store;

/* The days of GET /api/analytics: n local days of the scope's time zone, ending today. */
typedef struct callsapi_days {
    int n;
    int64_t *starts;   /* n + 1 bounds: the local midnights */
    char (*dates)[11]; /* n: YYYY-MM-DD */
} callsapi_days_t;

void callsapi_days_free(callsapi_days_t *d);

/* GET /api/calls (SPEC 4, 15): limit, from, to, channel, outcome, q, cursor; answers req. scope:
 * the tenant whose calls are seen (NULL: every tenant's). */
void callsapi_list(struct store *s, const net_http_msg_t *req, const char *scope);
/* GET /api/analytics?days=N (SPEC 15); answers req. */
void callsapi_analytics(struct store *s, const net_http_msg_t *req, const char *scope);

/* ---- The store actor's state, shared by store.c and storepg.c -------------------------------- */

typedef struct storepg storepg_t;

/* A post-call webhook until it succeeds or gives up. */
typedef struct webhook_job {
    struct webhook_job *next;
    char *call_id;
    char *body;
    size_t len;
    int attempts;         /* made so far */
    uint64_t fetch_id;    /* the attempt in flight, 0 while waiting for the timer */
    actor_timer_t *timer; /* the backoff before the next attempt */
} webhook_job_t;

/* A tenant's booking tools, for the snapshot they were made from (a reload makes new ones). */
typedef struct tenant_booking {
    tenant_t *tenant; /* a reference: its config outlives the booking */
    booking_t *booking;
} tenant_booking_t;

typedef struct store {
    actor_t actor;
    storedb_t *db;         /* [owner] the SQLite file; NULL on PostgreSQL */
    storepg_t *pg;         /* [owner] the PostgreSQL store's operations; NULL on SQLite */
    strmap_t bookings;     /* [owner] tenant id -> tenant_booking_t, made on first use */
    chatdb_t *chat;        /* [owner] */
    actor_timer_t *expiry; /* [owner] daily retention */
    webhook_job_t *jobs;   /* [owner] */
    actor_t *runner;       /* [owner] the post-call runner (a reference), NULL until attached */
    bool flush_queued;     /* [owner] a STORE_MSG_FLUSH is on its way */
    bool warned_unsigned;  /* [owner] the empty-key warning was logged */
    bool closing;          /* [owner] store_close() has begun: no new timers or webhooks */
} store_t;

/* store.c, for storepg.c. Thread: the store's. */
/* Starts the post-call webhook of call_id with body (the call's JSON, taken). */
void store_webhook_start(store_t *s, const char *call_id, char *body);
/* Hands the server keys read from PostgreSQL to store_on_server_key()'s hook. */
void store_server_key_loaded(const store_keys_t *keys);
/* Tells the post-call runner that a job was queued. */
void store_kick_runner(store_t *s);
/* The booking tools of tenant t (NULL: the default tenant's), or NULL with err. */
booking_t *store_booking_of(store_t *s, tenant_t *t, char *err, size_t errlen);
/* Whether tenant_id's post-call job has a CRM step (postcall.crm is set). */
bool store_tenant_has_crm(const char *tenant_id);
/* Answers a tool call (reply_to NULL: nobody waits) with out (taken). */
void store_tool_answer(actor_t *reply_to, uint64_t cookie, char *out, bool is_error);
/* Whether a call of tenant_id with user_turns caller turns gets a post-call job; *crm: whether
 * the job has a CRM step. */
bool store_postcall_wanted(const char *tenant_id, int user_turns, bool *crm);

/* ---- storepg.c: the store's operations on PostgreSQL (SPEC 13) --------------------------------
 * Each operation is one statement (pgschema.h) sent with net_pg_query(); an operation that goes
 * on when its answer comes (a read, a booking, a call's end) is kept until then, in the order
 * sent: one connection answers in order, so the answer is almost always the oldest. Record
 * writes wait in the connection's queue while PostgreSQL is unreachable; reads and bookings
 * answer `unavailable` at once. */

/* The PostgreSQL store, with nothing pending. */
storepg_t *storepg_new(void);
/* Drops what is pending (references released, HTTP requests answered 503). NULL is ignored. */
void storepg_free(storepg_t *p);
/* The server key called name into the gate's hook (store_open()'s on_key). */
void storepg_server_key(store_t *s, const char *name);
void storepg_record(store_t *s, const store_rec_msg_t *r);
/* Chat messages, agent runs, a thread to open (c's reply_to is taken). */
void storepg_chat(store_t *s, store_chat_msg_t *c);
/* A claim (p's actor is taken), a summary or an attempt's end. */
void storepg_postcall(store_t *s, store_pc_msg_t *p);
/* A booking tool on b, the caller's tenant's tools (c's reply_to is taken when it waits). */
void storepg_tool_call(store_t *s, tool_call_msg_t *c, booking_t *b);
void storepg_expire(store_t *s, int64_t cutoff_ms);
/* GET /api/calls with its filters; GET and DELETE /api/calls/{id}; POST …/postcall. */
void storepg_calls(store_t *s, conn_id_t conn, const querydb_filter_t *f);
void storepg_call(store_t *s, conn_id_t conn, const char *call_id, const char *scope);
void storepg_call_delete(store_t *s, conn_id_t conn, const char *call_id, const char *scope);
void storepg_requeue(store_t *s, conn_id_t conn, const char *call_id, const char *scope);
/* GET /api/analytics over days (taken). */
void storepg_analytics(store_t *s, conn_id_t conn, const char *scope, callsapi_days_t *days);
/* An answer of PostgreSQL (NET_MSG_PG). */
void storepg_answer(store_t *s, const net_pg_msg_t *m);

#endif
