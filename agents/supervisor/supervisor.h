/*
 * supervisor: the slower text model behind the voice agent (SPEC 7). A run is a Chat Completions
 * tool loop (`POST $SWITCHBOARD_OPENAI_BASE_URL/chat/completions` over net_fetch, never a
 * blocking call) with the company brief, the conversation so far and the caller's context, and
 * the tools the surface allows; it answers text for the voice agent to speak.
 *
 * Runs are actors on the tools lane. A pool actor admits at most SWITCHBOARD_MAX_SUPERVISOR_RUNS
 * at once; as many more wait in a FIFO queue; past that the "high demand" fallback is answered
 * at once. Failures become the spoken fallbacks of SPEC 7 (the run's output), never silence.
 * It may call agents/store (the built-in tools' executor), agents/mcp (the registry of MCP
 * tools), agents/tools and agents/config; the pool and every run hold a reference to the store.
 *
 * Messages to the observer (the actor that asked for the run):
 *   SUP_MSG_TOOL_EVENT  a nested tool call started or ended (tool_event_msg_t), in order;
 *   TOOL_MSG_RESULT     the answer (cookie = the request's), exactly once unless cancelled;
 *                       a fallback has is_error and a SUP_REASON_* in `reason`, for surfaces
 *                       that report outcomes rather than speak them (agent runs);
 *   TOOL_MSG_CALL       a call of one of the observer's own tools (supervisor_run_observed()),
 *                       with parent_cookie = the request's cookie; the observer answers the
 *                       run (reply_to) with one TOOL_MSG_RESULT of the call's cookie.
 * The observer forwards nested events to its client, so a parent's terminal event can never
 * overtake its children's (SPEC 14 "Tool calls").
 *
 * CONTRACT
 *   supervisor_pool_spawn(): main thread (agents.c).
 *   supervisor_run() / supervisor_cancel(): any thread, holding a reference to the pool.
 */
#ifndef SB_AGENTS_SUPERVISOR_H
#define SB_AGENTS_SUPERVISOR_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "agents/config/agentcfg.h"
#include "agents/tools/tools.h"

/* The spoken fallbacks (SPEC 7). */
#define SUP_SAY_HIGH_DEMAND "Our system is experiencing high demand. Please try again in a moment."
#define SUP_SAY_TECHNICAL   "I apologize, we're experiencing technical difficulties."
#define SUP_SAY_TIMEOUT                                                                            \
    "I apologize, that is taking longer than expected. Could we try that again in a moment?"
#define SUP_SAY_TROUBLE                                                                            \
    "I apologize, I'm having trouble processing that request. Could you rephrase?"
#define SUP_SAY_TOO_MANY_ROUNDS                                                                    \
    "I apologize, but I encountered an issue processing your request. Please try again or "        \
    "rephrase your question."

/* Why a run answered a fallback (tool_result_msg_t.reason). */
#define SUP_REASON_ITERATION_LIMIT "iteration_limit" /* SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS */
#define SUP_REASON_TIMEOUT         "timeout"
#define SUP_REASON_BUSY            "rate_limited" /* 429, or the run queue is full */
#define SUP_REASON_UNAVAILABLE     "unavailable"  /* bad key, no quota, no key */
#define SUP_REASON_FAILED          "failed"       /* anything else */

enum {
    SUP_MSG_RUN = MSG_TYPE_SUPERVISOR_BASE + 1, /* -> pool: supervisor_req_msg_t */
    SUP_MSG_CANCEL,                             /* -> pool: supervisor_cancel_msg_t */
    SUP_MSG_RUN_DONE,                           /* run -> pool */
    SUP_MSG_START,                              /* pool -> run */
    SUP_MSG_RETRY,                              /* run timers */
    SUP_MSG_DEADLINE,
    SUP_MSG_TOOL_DEADLINE,
    SUP_MSG_TOOL_EVENT, /* run -> observer: tool_event_msg_t */
};

/* Where a run's tools come from (tools.{voice,chat,agent,postcall}); postcall: the CRM sync after
 * a call (SPEC 15), with a back-office system prompt instead of the receptionist's. */
typedef enum tool_surface {
    SURFACE_VOICE,
    SURFACE_CHAT,
    SURFACE_AGENT,
    SURFACE_POSTCALL
} tool_surface_t;

/* What a run needs; the request message owns its pointers. */
typedef struct supervisor_req_msg {
    msg_t hdr;
    actor_t *observer; /* a reference */
    uint64_t cookie;
    char parent_call_id[CALL_ID_MAX + 1]; /* the tool call this run answers ("" = none) */
    char session_id[65];                  /* the caller's voice sessionId, "" when none */
    cJSON *history;       /* owned: [{"role":"user"|"assistant","content":"…"}], oldest first */
    char *context;        /* owned: relevantContextFromLastUserMessage (or the chat text / task) */
    uint64_t deadline_ns; /* monotonic; 0 = none */
    tool_surface_t surface;
    cJSON *observer_tools; /* owned, may be NULL: definitions of tools the observer runs */
    tenant_t *tenant;      /* owned reference: whose brief, tools and servers the run uses */
} supervisor_req_msg_t;

typedef struct supervisor_cancel_msg {
    msg_t hdr;
    actor_t *observer; /* a reference */
    uint64_t cookie;
} supervisor_cancel_msg_t;

/* A nested tool call's progress, as the client's tool.call event will show it. */
typedef struct tool_event_msg {
    msg_t hdr;
    uint64_t cookie; /* the run's request cookie */
    char parent_call_id[CALL_ID_MAX + 1];
    char call_id[CALL_ID_MAX + 1];
    char name[TOOL_NAME_MAX + 1];
    char status[12];     /* started, completed, failed, timeout */
    char via[80];        /* builtin, mcp:<alias> */
    char *arguments;     /* owned: the raw arguments text */
    char *output;        /* owned, NULL for started */
    char *image_b64;     /* owned, NULL unless the tool returned an image */
    int64_t duration_ms; /* -1 for started */
} tool_event_msg_t;

/*
 * Spawns the pool; it and every run it starts hold a reference to store (the built-in tools'
 * executor). Actors that ask for runs hold a reference to the pool while they live. NULL when
 * the runtime refuses. Thread: main.
 */
actor_t *supervisor_pool_spawn(actor_t *store);

/*
 * Asks for a run: takes history (may be NULL) and context, copies the rest; takes a reference
 * of its own to tenant (NULL: tenants_default(); a run without a tenant answers a fallback). The
 * observer gets the nested events and one TOOL_MSG_RESULT with this cookie (is_error for a
 * fallback). Thread: any.
 */
void supervisor_run(actor_t *pool, actor_t *observer, uint64_t cookie, const char *parent_call_id,
                    const char *session_id, cJSON *history, char *context, uint64_t deadline_ns,
                    tool_surface_t surface, tenant_t *tenant);
/*
 * The same, plus observer_tools (taken; a Chat Completions `tools` array, may be NULL): tools
 * the observer runs itself, offered whatever the surface's allow-list says. A call of one goes
 * to the observer as TOOL_MSG_CALL (via "client"); its only deadline is the run's. Agent runs
 * offer `ask_user` this way. Thread: any.
 */
void supervisor_run_observed(actor_t *pool, actor_t *observer, uint64_t cookie, cJSON *history,
                             char *context, uint64_t deadline_ns, tool_surface_t surface,
                             cJSON *observer_tools, tenant_t *tenant);
/* The observer gave up (deadline, hang-up): the run stops and answers nothing. Thread: any. */
void supervisor_cancel(actor_t *pool, actor_t *observer, uint64_t cookie);

/*
 * Sends body (a Chat Completions request, JSON text) to SWITCHBOARD_OPENAI_BASE_URL's
 * /chat/completions with the API key; the answer comes to reply_to as NET_MSG_FETCH_*. Returns
 * the fetch id, 0 when it could not be sent. Thread: any.
 */
uint64_t supervisor_chat_fetch(const char *body, uint32_t timeout_ms, size_t max_body,
                               actor_t *reply_to);

/* A tool.call event object for the client from a nested event (arguments parsed when JSON). */
cJSON *tool_event_json(const tool_event_msg_t *e);

#endif
