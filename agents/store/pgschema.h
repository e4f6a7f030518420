/*
 * pgschema: the store's schema on PostgreSQL (SPEC 13) and the statements the store sends.
 *
 * The store on PostgreSQL keeps what the SQLite file keeps (storedb.c, chatdb.c, jobsdb.c,
 * querydb.c, booking.c) with the same meaning. Every operation is one statement (most of them a
 * call of a function defined by the migrations), so that an operation is one round trip on the
 * pipelined connection (net_pg_query()) and runs in one transaction of its own. Parameters are
 * texts ($1.. cast inside the statement); a read answers one row whose one column is the JSON
 * text the SQLite store would produce for the same data (same members, same types), or SQL
 * NULL where the SQLite store answers "none".
 *
 * Writes are idempotent where the connection may send them twice (a write in flight when the
 * connection broke is sent again): the same transcript line, tool call, chat message or call
 * start stored twice is stored once and counted once.
 *
 * Migrations: PGSCHEMA_SETUP runs after every connect (net_pg_set_setup()); it takes
 * pg_advisory_xact_lock(PGSCHEMA_LOCK_KEY), creates schema_version if missing, applies the
 * versions after the stored one in order, and raises an error when the stored version is newer
 * than PGSCHEMA_VERSION (the node then keeps retrying and is not ready). It also sets
 * synchronous_commit = off for the session: like SQLite's WAL with synchronous=NORMAL, a crash
 * of the machine may lose the last moment of records, a crash of PostgreSQL or of a node loses
 * none. A booking sets synchronous_commit = on for its own transaction (a confirmed booking is
 * durable).
 *
 * Times are Unix milliseconds (bigint); tenants are texts, "default" when none; a NULL tenant in
 * a read means every tenant's.
 *
 * CONTRACT
 *   The strings are constants: any thread.
 */
#ifndef SB_AGENTS_STORE_PGSCHEMA_H
#define SB_AGENTS_STORE_PGSCHEMA_H

#define PGSCHEMA_VERSION  1
#define PGSCHEMA_LOCK_KEY 7316247110535790594 /* pg_advisory_xact_lock of the migrations */

/*
 * The statements to run after every connect (net_pg_set_setup()): the migrations, then the
 * session's settings. Version 1 holds PGSCHEMA_BOOKING_V1 besides the rest. The text is sent
 * whole as one simple-protocol query (one implicit transaction): it holds ';' inside its
 * dollar-quoted blocks, so it is never split at ';' by the sender. Returns malloc'd text.
 */
char *pgschema_setup(void);
/* The booking tables (customers, appointments with the exclusion constraint) and the booking
 * functions of version 1 (booking.c): DDL statements separated by ';'. Version 1 runs inside
 * $mig$ and $v1$ dollar quotes: other tags only (e.g. $fn$). */
extern const char PGSCHEMA_BOOKING_V1[];

/* ---- Records (writes: no answer needed) -------------------------------------------------- */

/* $1 call_id, $2 session_id, $3 tenant, $4 started_at. A second start of one call is ignored. */
extern const char PGQ_CALL_START[];
/*
 * $1 call_id, $2 ended_at, $3 end_reason, $4 openai_session_id, $5 request_id, $6 input_tokens,
 * $7 output_tokens. Sets the call's search document from its transcript. Answers one row
 * (tenant, user_turns: transcript lines of role user) when the call exists, no row otherwise.
 */
extern const char PGQ_CALL_END[];
/* $1 call_id, $2 first_audio_ms (the first one is kept). */
extern const char PGQ_FIRST_AUDIO[];
/* $1 call_id, $2 from, $3 to, $4 call_sid, $5 transferred_to (NULL leaves it as it is). */
extern const char PGQ_CALL_PHONE[];
/* $1 call_id, $2 role, $3 text, $4 at. */
extern const char PGQ_TRANSCRIPT[];
/* $1 call_id, $2 tool_call_id, $3 parent_call_id (NULL or ""), $4 name, $5 arguments, $6 output,
 * $7 status, $8 duration_ms, $9 via, $10 at. Counts it on the call (tools_total, tools_ok,
 * booked) once. */
extern const char PGQ_TOOL_RECORD[];
/* $1 thread_id, $2 message_id, $3 client_message_id, $4 role, $5 text, $6 at. */
extern const char PGQ_CHAT_MESSAGE[];
/* $1 record_id, $2 run_id, $3 user_id, $4 tenant, $5 task, $6 status, $7 result, $8 error,
 * $9 started_at, $10 ended_at (0 while running): inserted, or updated by record_id. */
extern const char PGQ_AGENT_RUN[];
/* $1 cutoff: calls started before it (with their rows) and chat messages older than it go.
 * Answers one row: the number of calls deleted. */
extern const char PGQ_EXPIRE[];

/* ---- Reads ------------------------------------------------------------------------------- */

/* $1 name, $2 a fresh key (64 hex): stored unless one exists; answers the stored key (hex). */
extern const char PGQ_SERVER_KEY[];
/*
 * $1 thread_id, $2 user_id, $3 tenant, $4 at, $5 limit: creates the thread owned by the user
 * unless it exists; answers {"owner":…,"tenant":…,"messages":[the newest limit history items,
 * oldest first, as chatdb_history()]}.
 */
extern const char PGQ_CHAT_OPEN[];
/* $1 call_id, $2 tenant: the call as storedb_call_json() shows it, NULL when unknown. */
extern const char PGQ_CALL_JSON[];
/* $1 call_id, $2 tenant: deletes the call and its rows; answers true when it existed. */
extern const char PGQ_CALL_DELETE[];
/*
 * $1 tenant, $2 from_ms, $3 to_ms (0 = open), $4 channel, $5 outcome, $6 q (search words; the
 * call's search document must hold every one), $7 cursor_at, $8 cursor_seq (0 = first page),
 * $9 limit: {"calls":[…],"nextCursor":"<at>.<seq>"} as querydb_calls_json() (nextCursor absent
 * on the last page).
 */
extern const char PGQ_CALLS[];
/*
 * $1 tenant, $2 the n + 1 bounds of n days ('{b0,…,bn}', Unix ms): the analytics of the calls
 * started in [b0, bn), summed by PostgreSQL (a few rows, not one per call). Rows of six columns:
 *   'd', day index, calls, duration sum, calls with a duration, calls booked;
 *   'o', outcome, calls;
 *   't', NULL, tools_total sum, tools_ok sum, first-audio p50, p95 (nearest rank; NULL: none).
 */
extern const char PGQ_ANALYTICS[];

/* ---- Post-call jobs (jobsdb.c) ------------------------------------------------------------ */

/* $1 node, $2 now: running jobs claimed by node go back to pending, due now. Answers one row:
 * the number of jobs. */
extern const char PGQ_JOBS_RECOVER[];
/* $1 call_id, $2 tenant: one row (tenant, user_turns) when the call exists (and is tenant's). */
extern const char PGQ_CALL_INFO[];
/* $1 call_id, $2 tenant, $3 crm ("true"/"false"), $4 now: as jobsdb_queue(). */
extern const char PGQ_JOB_QUEUE[];
/*
 * $1 now, $2 max, $3 max_tools, $4 node: claims at most max due jobs (FOR UPDATE SKIP LOCKED;
 * also running jobs claimed more than 10 minutes ago) as jobsdb_claim() and answers
 * {"jobs":[{callId,tenant,attempts,summary,crm,call:<storedb_call_tail() or null>}],
 *  "nextDue": ms or -1}. nextDue also counts a running job as due 10 minutes after its claim
 * (so that a job of a node that stopped is taken without waiting for another one).
 */
extern const char PGQ_JOBS_CLAIM[];
/*
 * $1 call_id, $2 summary (NULL: the step failed), $3 outcome, $4 error, $5 now, $6 take the
 * webhook ("true"/"false"): as jobsdb_summary() + jobsdb_step(); answers the call's JSON
 * (PGQ_CALL_JSON) when the step is done, $6 is true and the webhook had not been taken (it is
 * taken now), else NULL.
 */
extern const char PGQ_JOB_SUMMARY[];
/*
 * $1 call_id, $2 crm (NULL: as it was), $3 error, $4 now, $5 retry_base_ms, $6 take the webhook:
 * as jobsdb_step(crm) + jobsdb_end(); answers {"done":…,"final":…,"retryInMs":…,"webhook":
 * <the call's JSON when final and $6 and not taken before (taken now), else null>}, or NULL
 * when there is no running job.
 */
extern const char PGQ_JOB_END[];

#endif
