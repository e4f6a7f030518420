/*
 * agentev: /ws/agent event builders (see agentev.h).
 */
#include "agents/agentrun/agentev.h"

#include <string.h>

#include "base/sbuf.h"

cJSON *agentev_authentication(const char *error)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "authentication");
    cJSON_AddStringToObject(ev, "status", error ? "failed" : "success");
    if (error)
        cJSON_AddStringToObject(ev, "error", error);
    return ev;
}

/* Appends at most max code points of s (UTF-8; a cut never splits a character). */
static void put_prefix_cp(sbuf_t *b, const char *s, size_t max)
{
    size_t i = 0, n = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && n++ == max)
            break;
        i++;
    }
    sbuf_append(b, s, i);
    if (s[i])
        sbuf_puts(b, "…");
}

cJSON *agentev_step_update(const char *run_id, int step_number, const tool_event_msg_t *e)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "step_update");
    cJSON_AddStringToObject(ev, "runId", run_id);
    cJSON_AddNumberToObject(ev, "stepNumber", step_number);
    cJSON *action = cJSON_AddObjectToObject(ev, "action");
    cJSON_AddStringToObject(action, "type", "tool_call");
    cJSON_AddStringToObject(action, "name", e->name);
    cJSON_AddItemToObject(action, "arguments", tool_args_json(e->arguments));
    sbuf_t b = SBUF_INIT;
    if (strcmp(e->status, "completed") != 0)
        sbuf_printf(&b, "%s: ", e->status);
    put_prefix_cp(&b, e->output ? e->output : "", AGENTEV_EXPLANATION_MAX_CHARS);
    cJSON_AddStringToObject(ev, "explanation", b.data ? b.data : "");
    sbuf_destroy(&b);
    cJSON_AddStringToObject(ev, "status", e->status);
    if (e->image_b64 && e->image_b64[0])
        cJSON_AddStringToObject(ev, "screenshot", e->image_b64);
    return ev;
}

cJSON *agentev_question(const char *run_id, const char *question)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "question");
    cJSON_AddStringToObject(ev, "runId", run_id);
    cJSON_AddStringToObject(ev, "question", question);
    return ev;
}

cJSON *agentev_completion(const char *run_id, const char *result, const char *error,
                          const cJSON *commands)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "completion");
    cJSON_AddStringToObject(ev, "runId", run_id);
    if (error) {
        cJSON_AddStringToObject(ev, "status", "failed");
        cJSON_AddStringToObject(ev, "error", error);
        return ev;
    }
    cJSON_AddStringToObject(ev, "status", "success");
    cJSON_AddStringToObject(ev, "result", result ? result : "");
    cJSON_AddItemToObject(ev, "commands",
                          commands ? cJSON_Duplicate(commands, 1) : cJSON_CreateArray());
    return ev;
}
