/*
 * tools: the messages that run a tool in another actor (SPEC 7): the protocol between a caller
 * (a voice session, a supervisor run, a chat thread, an agent run) and an executor (the store for
 * the built-in booking tools, an MCP client, the page router for navigate, an observer for its
 * own tools). Owns nothing but the message shapes; depends on agents/tenant only (a call names
 * the tenant whose calendar or servers it uses).
 *
 * A tool call is a request message to the actor that executes the tool (the store for the
 * built-in booking tools; an MCP client actor for MCP tools) and exactly one result message back.
 * The executor never blocks the caller: deadlines are the caller's business (it stops waiting and
 * drops a late result by its cookie).
 *
 * CONTRACT
 *   Every function here: any thread. Messages are owned by the receiver once sent.
 */
#ifndef SB_AGENTS_TOOLS_H
#define SB_AGENTS_TOOLS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "mailbox/msgtypes.h"
#include "agents/tenant/tenant.h"

#define TOOL_NAME_MAX 64
#define CALL_ID_MAX   48 /* "call_" + 32 hex, or an upstream call_id */

enum {
    TOOL_MSG_CALL = MSG_TYPE_TOOLS_BASE + 1, /* caller -> executor: tool_call_msg_t */
    TOOL_MSG_RESULT,                         /* executor -> caller: tool_result_msg_t */
    TOOL_MSG_CANCEL, /* caller -> executor: tool_cancel_msg_t (MCP clients) */
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
    tenant_t *tenant; /* whose tool it is (booking calendar, services, hours); a reference owned
                         by the message, NULL when the executor needs none */
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

#endif
