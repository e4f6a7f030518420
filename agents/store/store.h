/*
 * store: the single writer of the records (SPEC 3, 9) as an actor on the tools lane. It owns the
 * database — a SQLite file, or PostgreSQL shared by several nodes (SPEC 13; storepg.c) — with the
 * call records, chat threads and messages, agent runs, bookings; it runs the
 * built-in booking tools (the tool-call protocol of agents/tools), answers GET/DELETE
 * /api/calls…, sends the post-call webhook and expires old records. It may call agents/tools,
 * agents/auth (the API secret check) and agents/config; it talks to no other actor but the ones
 * that ask it something (reply_to).
 *
 * Records are sent with the store_*() functions, which never wait: nothing on the audio path
 * waits for the disk. Every one of them takes the store actor as its first argument: the caller
 * holds a reference to it (taken when the caller was spawned, released when it stops), so the
 * store lives as long as anyone may still write to it.
 *
 * Lifetime: store_open() spawns it and returns the opener's reference; store_close() gives that
 * reference back and waits until the last holder has released its own, every record sent before
 * has been written and the file is closed.
 *
 * CONTRACT
 *   store_open()/store_close(): the main thread (agents.c). Every other function: any thread,
 *   with a reference to the store held. Messages are owned by the receiver once sent.
 */
#ifndef SB_AGENTS_STORE_STORE_H
#define SB_AGENTS_STORE_STORE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "agents/config/agentcfg.h"
#include "mailbox/msgtypes.h"

enum {
    STORE_MSG_CALL_START = MSG_TYPE_STORE_BASE + 1, /* store_call_start() */
    STORE_MSG_CALL_END,                             /* store_call_end() */
    STORE_MSG_TRANSCRIPT,                           /* store_transcript() */
    STORE_MSG_TOOL_RECORD,                          /* store_tool_record() */
    STORE_MSG_CHAT_OPEN,                            /* store_chat_open() */
    STORE_MSG_CHAT_THREAD,                          /* store -> asker: store_chat_thread_msg_t */
    STORE_MSG_CHAT_MESSAGE,                         /* store_chat_message() */
    STORE_MSG_AGENT_RUN,                            /* store_agent_run() */
    STORE_MSG_CALL_PHONE,                           /* store_call_phone() */
    STORE_MSG_FIRST_AUDIO,                          /* store_call_first_audio() */
    STORE_MSG_PC_ATTACH,                            /* store_postcall_attach() */
    STORE_MSG_PC_CLAIM,                             /* store_postcall_claim() */
    STORE_MSG_PC_JOBS,                              /* store -> runner: store_pc_jobs_msg_t */
    STORE_MSG_PC_KICK,    /* store -> runner: a job was queued, claim now */
    STORE_MSG_PC_SUMMARY, /* store_postcall_summary() */
    STORE_MSG_PC_END,     /* store_postcall_end() */
};

/* ---- The built-in booking tools (booking.c), run by the store on its connection ----------- */

/* True when name is checkAvailability, bookAppointment or lookupCustomer. */
bool booking_is_tool(const char *name);
/*
 * The Chat Completions `tools` entries of the built-in tools ({type:"function",function:{…}}),
 * appended to arr. Service names in the schemas come from the agent config.
 */
void booking_tool_defs(const agentcfg_t *ac, cJSON *arr);

/* ---- The store actor (store.c) ------------------------------------------------------------ */

#define STORE_SERVER_KEY_BYTES 32

/* The server's own secrets, kept in the database: created with it, the same after a restart. */
typedef struct store_keys {
    uint8_t user_key[STORE_SERVER_KEY_BYTES]; /* signs anonymous chat users' userKey (SPEC 14) */
    bool later; /* PostgreSQL: user_key is a stand-in; the stored key comes through the hook of
                   store_on_server_key() once PostgreSQL has answered */
} store_keys_t;

/* The hook that gets the stored server keys when they are read after start-up (PostgreSQL).
 * Called on the store's thread. Thread: main, before store_open(). */
void store_on_server_key(void (*fn)(const store_keys_t *keys));

/*
 * Opens (creating the file and its folder) the SQLite database at path in WAL mode, applies the
 * schema, reads the server keys into *keys (unless keys is NULL) and spawns the store actor;
 * *store gets the opener's reference. Returns 0, or -errno with a message in err (start-up
 * exits 1 then). With PostgreSQL configured (net_pg_on(); SPEC 13) path is not used: the
 * schema's migrations run on every connect, nothing here waits for PostgreSQL, and the keys
 * come later (keys->later). Thread: main, before net_start().
 */
int store_open(const char *path, actor_t **store, store_keys_t *keys, char *err, size_t errlen);
/*
 * Gives back the opener's reference and waits (at most STORE_CLOSE_WAIT_MS) until every other
 * holder has released its own and the store has written what it was sent and closed the file.
 * Returns the references still held when it gave up waiting (0 = closed cleanly). Thread: main,
 * after the network has stopped.
 */
int store_close(actor_t *store);
/*
 * Waits (at most timeout_ms) until the store has taken every message sent to it before this
 * call: on PostgreSQL, every record is then in the connection's queue, which net_stop() drains.
 * Returns 0, or -ETIMEDOUT. Thread: main, once, before net_stop().
 */
int store_sync(actor_t *store, uint64_t timeout_ms);
/* The network runs (net_start() has returned): on PostgreSQL the store sends what it had to
 * wait for (the server key, the first retention run). Thread: main. */
void store_net_started(actor_t *store);

/* A voice call of tenant (NULL = "default") began (call_id: a new "call_" id chosen by the
 * session). */
void store_call_start(actor_t *store, const char *call_id, const char *session_id,
                      const char *tenant, int64_t started_at_ms);
/*
 * The call ended. end_reason: client_closed, idle_timeout, max_duration, shutdown,
 * upstream_unavailable, upstream_rejected, too_slow, error. The OpenAI session id and
 * x-request-id may be NULL; tokens are the sums of response.done usage. Triggers the post-call
 * webhook when configured.
 */
void store_call_end(actor_t *store, const char *call_id, int64_t ended_at_ms,
                    const char *end_reason, const char *openai_session_id, const char *request_id,
                    int64_t input_tokens, int64_t output_tokens);
/*
 * The call is a phone call (SPEC 5.5): its record gets channel "phone", the caller's number
 * (from), the number called (to), Twilio's CallSid and, once transferred, the number it went to
 * (transferred_to; NULL leaves it as it is).
 */
void store_call_phone(actor_t *store, const char *call_id, const char *from, const char *to,
                      const char *call_sid, const char *transferred_to);
/* A transcript line: role "user" or "assistant". */
void store_transcript(actor_t *store, const char *call_id, const char *role, const char *text,
                      int64_t at_ms);
/*
 * A finished tool call (any depth). arguments and output are the texts as the model saw them;
 * status: completed, failed, timeout; via as in SPEC 5.1's tool.call; parent_call_id: the call
 * it is nested under (NULL or "" for a top-level one; STORE_PARENT_POSTCALL for the CRM run's).
 */
void store_tool_record(actor_t *store, const char *call_id, const char *tool_call_id,
                       const char *parent_call_id, const char *name, const char *arguments,
                       const char *output, const char *status, int64_t duration_ms, const char *via,
                       int64_t at_ms);
/* The call's first-audio latency (caller stopped speaking -> first agent audio), once. */
void store_call_first_audio(actor_t *store, const char *call_id, int64_t latency_ms);

/* ---- Post-call jobs (SPEC 15) ---------------------------------------------------------------
 * The store keeps the jobs (durable, in the file) and decides when a call gets one (at its end:
 * enough caller turns and postcall.enabled); the runner (agents/postcall) claims due jobs, runs
 * their steps and reports each step's end. The store sends the post-call webhook once the
 * summary step has ended for good. */

#define STORE_PARENT_POSTCALL "postcall" /* parentCallId of the CRM run's tool calls */
/* A claimed job's call carries its newest STORE_POSTCALL_TOOL_CALLS tool calls and
 * toolCallsTotal: the post-call work is bounded however many the call made. */
#define STORE_POSTCALL_TOOL_CALLS 40
#define STORE_PC_JOBS_MAX         16 /* jobs claimed at once */

/* The answer to store_postcall_claim(). */
typedef struct store_pc_jobs_msg {
    msg_t hdr;
    cJSON *jobs; /* owned: [{callId, tenant, attempts, summary, crm, call:{the call record}}] */
    int64_t next_due_ms; /* Unix ms when the next unclaimed job is due, -1 when none */
} store_pc_jobs_msg_t;

/* The runner of the jobs: it gets STORE_MSG_PC_KICK whenever a job is queued (the store keeps a
 * reference until it closes). Thread: any. */
void store_postcall_attach(actor_t *store, actor_t *runner);
/* Claims at most max due jobs (running, one more attempt); reply_to gets STORE_MSG_PC_JOBS. */
void store_postcall_claim(actor_t *store, actor_t *reply_to, int max);
/* The summary step of call_id ended: summary (the call_summary JSON text) and its outcome, or
 * NULL with error (why it failed). */
void store_postcall_summary(actor_t *store, const char *call_id, const char *summary,
                            const char *outcome, const char *error);
/* The attempt ended: crm is the CRM step's state now (done, failed; NULL: as it was), error
 * the reason of a failure (NULL: none). */
void store_postcall_end(actor_t *store, const char *call_id, const char *crm, const char *error);

/* ---- Chat threads and agent runs (SPEC 5.3, 5.4, 9) ---------------------------------------- */

#define STORE_CHAT_ID_MAX 64

/* The answer to store_chat_open(). */
typedef struct store_chat_thread_msg {
    msg_t hdr;
    uint64_t cookie;
    int status;                         /* 0, or -EIO when the database failed */
    char owner[STORE_CHAT_ID_MAX + 1];  /* the user the thread belongs to */
    char tenant[STORE_CHAT_ID_MAX + 1]; /* and its tenant */
    cJSON *messages; /* owned: the newest history items {role,text,messageId,at,clientMessageId?},
                        oldest first */
} store_chat_thread_msg_t;

/*
 * Opens a chat thread for user_id of tenant (creating it, owned by them, unless it exists) and
 * reads its newest `limit` messages; the store answers reply_to with STORE_MSG_CHAT_THREAD,
 * naming the thread's owner and tenant. Records the asker sent before are visible to the read
 * (one mailbox, in order).
 */
void store_chat_open(actor_t *store, actor_t *reply_to, uint64_t cookie, const char *thread_id,
                     const char *user_id, const char *tenant, int limit);
/* A chat message (role "user" or "assistant"); client_message_id may be NULL. */
void store_chat_message(actor_t *store, const char *thread_id, const char *message_id,
                        const char *client_message_id, const char *role, const char *text,
                        int64_t at_ms);
/*
 * An agent run of tenant (NULL = "default"), inserted on its first call and updated by record_id
 * on the next (status running -> success | failed). ended_at_ms 0 while running; strings may be
 * NULL.
 */
void store_agent_run(actor_t *store, int64_t record_id, const char *run_id, const char *user_id,
                     const char *tenant, const char *task, const char *status, const char *result,
                     const char *error, int64_t started_at_ms, int64_t ended_at_ms);

/* The HTTP routes of the store: GET /api/calls, GET/DELETE /api/calls/{id} (SPEC 4), POST
 * /api/calls/{id}/postcall and GET /api/analytics (SPEC 15), with references to the store for
 * the routes. Thread: main. */
void store_add_routes(actor_t *store);

#endif
