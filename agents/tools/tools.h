/*
 * tools: the messages that run a tool in another actor, and the store actor's interface
 * (SPEC 7, 9).
 *
 * A tool call is a request message to the actor that executes the tool (the store for the
 * built-in booking tools; an MCP client actor for MCP tools) and exactly one result message back.
 * The executor never blocks the caller: deadlines are the caller's business (it stops waiting and
 * drops a late result by its cookie).
 *
 * The store is the single SQLite writer (WAL). Records are sent to it with the store_*()
 * functions, which never wait: nothing on the audio path waits for the disk.
 *
 * CONTRACT
 *   Every function here: any thread, after store_open() and before store_close(). Messages are
 *   owned by the receiver once sent.
 */
#ifndef SB_AGENTS_TOOLS_H
#define SB_AGENTS_TOOLS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "agents/config/agentcfg.h"

#define TOOL_NAME_MAX 64
#define CALL_ID_MAX   48 /* "call_" + 32 hex, or an upstream call_id */

enum {
    TOOL_MSG_CALL = 0x1800u, /* caller -> executor: tool_call_msg_t */
    TOOL_MSG_RESULT,         /* executor -> caller: tool_result_msg_t */
    TOOL_MSG_CANCEL,         /* caller -> executor: tool_cancel_msg_t (MCP clients) */
    STORE_MSG_CALL_START,    /* store_call_start() */
    STORE_MSG_CALL_END,      /* store_call_end() */
    STORE_MSG_TRANSCRIPT,    /* store_transcript() */
    STORE_MSG_TOOL_RECORD,   /* store_tool_record() */
    STORE_MSG_WEBHOOK_RETRY, /* the store's own timers */
    STORE_MSG_RETENTION,
};

/* Run one tool. */
typedef struct tool_call_msg {
    msg_t hdr;
    actor_t *reply_to; /* a reference, owned by the message (dropped by its free) */
    uint64_t cookie;   /* echoed in the result */
    char name[TOOL_NAME_MAX + 1];
    cJSON *args;         /* owned; the parsed arguments, always an object */
    int64_t now_ms;      /* wall clock of the call (Unix ms): "today" for date checks */
    char session_id[65]; /* the caller's voice sessionId (navigate's target), "" when none */
    uint32_t timeout_ms; /* the executor's own deadline for it (MCP); 0 = its default */
    /* A tool its observer runs (supervisor_run_observed()): the run's request cookie and the
     * model's call id, so the observer knows which of its runs asks. 0 and "" otherwise. */
    uint64_t parent_cookie;
    char call_id[CALL_ID_MAX + 1];
} tool_call_msg_t;

/*
 * The caller gave up on the call (cookie) it sent with reply_to: an MCP client sends
 * notifications/cancelled and answers nothing more. Unknown or finished calls are ignored.
 */
typedef struct tool_cancel_msg {
    msg_t hdr;
    const actor_t *reply_to; /* compared only, not a reference */
    uint64_t cookie;
} tool_cancel_msg_t;

/* The outcome of one tool call. */
typedef struct tool_result_msg {
    msg_t hdr;
    uint64_t cookie;
    bool is_error;   /* the tool failed (tool.call status "failed"); output says why */
    bool timeout;    /* it missed its deadline (status "timeout"); is_error is set too */
    char *output;    /* owned, NUL-terminated: what the model reads (JSON text for built-ins) */
    char *image_b64; /* owned, may be NULL: the first image a tool returned (agent runs) */
    char *image_mime;
    char reason[24]; /* a supervisor run's failure as a code (SUP_REASON_*), "" otherwise */
} tool_result_msg_t;

/* A tool call's arguments for a client event: the parsed JSON, or the raw text as a string when
 * it is not valid JSON (SPEC 5.1). raw may be NULL (""). */
cJSON *tool_args_json(const char *raw);

/*
 * A tool's parameters schema, {type:"object",properties:{},required:[…],additionalProperties:
 * false}, for both the Realtime and the Chat Completions tool shapes; *props is set to its
 * properties. required: NULL-terminated names (NULL = none).
 */
cJSON *tool_params_new(const char *const *required, cJSON **props);
/* Adds the string property name with its description to props; returns it (for an enum). */
cJSON *tool_string_prop(cJSON *props, const char *name, const char *description);

/* Builds a TOOL_MSG_CALL; takes args (NULL = {}) and a new reference to reply_to. */
tool_call_msg_t *tool_call_new(actor_t *reply_to, uint64_t cookie, const char *name, cJSON *args);
/* Builds a TOOL_MSG_CANCEL. */
tool_cancel_msg_t *tool_cancel_new(const actor_t *reply_to, uint64_t cookie);
/* Builds a TOOL_MSG_RESULT; copies output. */
tool_result_msg_t *tool_result_new(uint64_t cookie, bool is_error, const char *output);

/* ---- The built-in booking tools (booking.c), run by the store on its connection ----------- */

/* True when name is checkAvailability, bookAppointment or lookupCustomer. */
bool booking_is_tool(const char *name);
/*
 * The Chat Completions `tools` entries of the built-in tools ({type:"function",function:{…}}),
 * appended to arr. Service names in the schemas come from the agent config.
 */
void booking_tool_defs(const agentcfg_t *ac, cJSON *arr);

/* ---- The store actor (store.c) ------------------------------------------------------------ */

/*
 * Opens (creating the file and its folder) the SQLite database at path in WAL mode, applies the
 * schema and spawns the store actor as g_store. Returns 0, or -errno with a message in err
 * (start-up exits 1 then). Thread: main, before net_start().
 */
int store_open(const char *path, char *err, size_t errlen);
/* Stops the store after the records already sent are written, and closes the database. Thread:
 * main, after the sessions have stopped. */
void store_close(void);

extern actor_t *g_store;

/* A voice call began (call_id: a new "call_" id chosen by the session). */
void store_call_start(const char *call_id, const char *session_id, int64_t started_at_ms);
/*
 * The call ended. end_reason: client_closed, idle_timeout, max_duration, shutdown,
 * upstream_unavailable, upstream_rejected, too_slow, error. The OpenAI session id and
 * x-request-id may be NULL; tokens are the sums of response.done usage. Triggers the post-call
 * webhook when configured.
 */
void store_call_end(const char *call_id, int64_t ended_at_ms, const char *end_reason,
                    const char *openai_session_id, const char *request_id, int64_t input_tokens,
                    int64_t output_tokens);
/* A transcript line: role "user" or "assistant". */
void store_transcript(const char *call_id, const char *role, const char *text, int64_t at_ms);
/*
 * A finished tool call (any depth). arguments and output are the texts as the model saw them;
 * status: completed, failed, timeout; via as in SPEC 5.1's tool.call.
 */
void store_tool_record(const char *call_id, const char *tool_call_id, const char *name,
                       const char *arguments, const char *output, const char *status,
                       int64_t duration_ms, const char *via, int64_t at_ms);

/* ---- Chat threads and agent runs (SPEC 5.3, 5.4, 9) ---------------------------------------- */

enum {
    STORE_MSG_CHAT_OPEN = TOOL_MSG_CALL + 0x40u, /* store_chat_open() */
    STORE_MSG_CHAT_THREAD,                       /* store -> asker: store_chat_thread_msg_t */
    STORE_MSG_CHAT_MESSAGE,                      /* store_chat_message() */
    STORE_MSG_AGENT_RUN,                         /* store_agent_run() */
};

#define STORE_CHAT_ID_MAX 64

/* The answer to store_chat_open(). */
typedef struct store_chat_thread_msg {
    msg_t hdr;
    uint64_t cookie;
    int status;                        /* 0, or -EIO when the database failed */
    char owner[STORE_CHAT_ID_MAX + 1]; /* the user the thread belongs to */
    cJSON *messages; /* owned: the newest history items {role,text,messageId,at,clientMessageId?},
                        oldest first */
} store_chat_thread_msg_t;

/*
 * Opens a chat thread for user_id (creating it, owned by user_id, unless it exists) and reads
 * its newest `limit` messages; the store answers reply_to with STORE_MSG_CHAT_THREAD. Records
 * the asker sent before are visible to the read (one mailbox, in order).
 */
void store_chat_open(actor_t *reply_to, uint64_t cookie, const char *thread_id, const char *user_id,
                     int limit);
/* A chat message (role "user" or "assistant"); client_message_id may be NULL. */
void store_chat_message(const char *thread_id, const char *message_id,
                        const char *client_message_id, const char *role, const char *text,
                        int64_t at_ms);
/*
 * An agent run's record, inserted on its first call and updated by record_id on the next
 * (status running -> success | failed). ended_at_ms 0 while running; strings may be NULL.
 */
void store_agent_run(int64_t record_id, const char *run_id, const char *user_id, const char *task,
                     const char *status, const char *result, const char *error,
                     int64_t started_at_ms, int64_t ended_at_ms);

/* The HTTP routes of the store: GET /api/calls and /api/calls/{id} (SPEC 4). Thread: main. */
void store_add_routes(void);

#endif
