/*
 * voicetools: the tools of the voice model and how a session runs them (SPEC 5.1, 6, 14).
 *
 * The voice model gets getNextResponseFromSupervisor {relevantContextFromLastUserMessage} (run by
 * a supervisor) and, when pages are configured, navigate {page?, section} (run by the router: a
 * `command` to the caller's tabs). A call is read from response.output_item.done (or
 * response.function_call_arguments.done, whichever comes first), reported to the client as
 * tool.call events (nested supervisor calls included, in order), answered with a
 * function_call_output, and followed by exactly one response.create once the calling response is
 * done and every call of it has its output. A call past SWITCHBOARD_TOOL_TIMEOUT_MS answers the
 * spoken apology. Thread: the session's worker.
 */
#ifndef SB_AGENTS_VOICETOOLS_H
#define SB_AGENTS_VOICETOOLS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "agents/config/agentcfg.h"

#define VOICETOOL_SUPERVISOR "getNextResponseFromSupervisor"
#define VOICETOOL_NAVIGATE   "navigate"
#define VOICETOOL_TRANSFER   "transferCall" /* phone calls only (SPEC 5.5) */
#define VOICETOOL_END_CALL   "endCall"      /* phone calls only */

/* The Realtime `session.tools` array for this agent config: allow-list `tools.voice`, or for a
 * phone call `tools.phone` (the supervisor, transferCall, endCall; never navigate). */
cJSON *voicetools_defs(const agentcfg_t *ac, bool phone);

struct session;
struct vcall;
struct tool_result_msg;
struct tool_event_msg;

/* Looks at every upstream event before it is relayed: function calls, response.done, and the
 * transcript lines of the call record. */
void voicetools_upstream_event(struct session *s, const char *type, const cJSON *ev);
/* After response.done (or a tool's output): sends the one response.create that is due. */
void voicetools_maybe_create(struct session *s);
void voicetools_result(struct session *s, const struct tool_result_msg *m);
void voicetools_nested(struct session *s, const struct tool_event_msg *m);
/* A tool call's deadline timer fired (call: the timer's data). */
void voicetools_timeout(struct session *s, void *call);
/* A new upstream is configured: sends it the conversation so far (the one history, also the
 * supervisor's context), newest SWITCHBOARD_REPLAY_ITEMS items, as conversation.item.create. */
void voicetools_replay(struct session *s);
/* The client said something as text (a user transcript line). */
void voicetools_user_text(struct session *s, const char *text);
/* The session became live: opens its call record. */
void voicetools_call_start(struct session *s);
/* The session ended: closes its call record with the reason. */
void voicetools_call_end(struct session *s, const char *end_reason);
/*
 * For a tool whose outcome is known only later (transferCall): sends output to the model now
 * (and the one response.create after it), takes c out of the calls in flight and hands it to
 * the caller, who ends it with voicetools_finish().
 */
void voicetools_answer_early(struct session *s, struct vcall *c, const char *output);
/* Reports and records c's terminal status (output: what happened) and frees it. */
void voicetools_finish(struct session *s, struct vcall *c, const char *status, const char *output);
/* Ends every call in flight (the session is closing) and frees what voicetools owns in s. */
void voicetools_free(struct session *s);

#endif
