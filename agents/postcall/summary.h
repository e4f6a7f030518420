/*
 * summary: the post-call summary of SPEC 15 as pure functions: the Chat Completions request with
 * the strict json_schema `call_summary`, and the check of the model's answer against it. No I/O,
 * no state; unit tested on their own. Thread: any.
 */
#ifndef SB_AGENTS_POSTCALL_SUMMARY_H
#define SB_AGENTS_POSTCALL_SUMMARY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define SUMMARY_SCHEMA_NAME "call_summary"
#define SUMMARY_ERR_MAX     256

/* The response_format of the request: {type:"json_schema", json_schema:{name, strict, schema}}. */
cJSON *summary_response_format(void);
/*
 * The whole request body for model over call (a GET /api/calls/{id} record: its transcript,
 * tool calls and from). Returns the body (the caller frees it).
 */
cJSON *summary_request(const char *model, const cJSON *call);
/*
 * Checks a chat.completion body: its first choice's content must be a JSON object matching the
 * call_summary schema exactly (every key, no other key, the enums). Returns the summary object
 * with caller.phone filled from caller_from when the caller gave none, or NULL with the reason in
 * err.
 */
cJSON *summary_parse(const char *completion, const char *caller_from, char *err, size_t errlen);
/*
 * The same check on an already parsed value (the content). Returns true, or false with the
 * reason in err.
 */
int summary_check(const cJSON *v, char *err, size_t errlen);

#endif
