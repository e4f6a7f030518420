/*
 * agentev: the server events of /ws/agent (SPEC 5.4, seeds 003 and 004) as JSON objects, built
 * from what the agent-run actor receives. Pure: no I/O, no globals. Thread: any.
 */
#ifndef SB_AGENTS_AGENTEV_H
#define SB_AGENTS_AGENTEV_H

#include <cjson/cJSON.h>

#include "agents/supervisor/supervisor.h"

#define AGENTEV_EXPLANATION_MAX_CHARS 1000 /* code points of a tool's output in `explanation` */

/* {"type":"authentication","status":"success"}, or "failed" with "error" when error is set. */
cJSON *agentev_authentication(const char *error);

/*
 * The step_update of a finished tool call e (status completed, failed or timeout):
 * {"type":"step_update","runId","stepNumber","action":{"type":"tool_call","name","arguments"},
 *  "explanation","status","screenshot"?}. arguments are the parsed JSON object (the raw text when
 * it is not JSON); explanation is the tool's output as the model read it (cut to
 * AGENTEV_EXPLANATION_MAX_CHARS, prefixed "<status>: " unless completed); screenshot is e's
 * image_b64 when the tool returned an image.
 */
cJSON *agentev_step_update(const char *run_id, int step_number, const tool_event_msg_t *e);

/* {"type":"question","runId","question"}. */
cJSON *agentev_question(const char *run_id, const char *question);

/*
 * {"type":"completion","runId","status":"success","result","commands"} when error is NULL (a
 * copy of commands, or [] when NULL), else {"type":"completion","runId","status":"failed",
 * "error"}.
 */
cJSON *agentev_completion(const char *run_id, const char *result, const char *error,
                          const cJSON *commands);

#endif
