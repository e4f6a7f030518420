/* The tool-call messages of tools.h: building them and releasing what they own. */
#include "agents/tools/tools.h"

#include <stdlib.h>

#include "base/util.h"

static void tool_call_free(msg_t *m)
{
    tool_call_msg_t *c = (tool_call_msg_t *)m;
    if (c->reply_to)
        actor_unref(c->reply_to);
    cJSON_Delete(c->args);
    tenant_unref(c->tenant);
    msg_block_free(c);
}

tool_call_msg_t *tool_call_new(actor_t *reply_to, uint64_t cookie, const char *name, cJSON *args)
{
    tool_call_msg_t *c = MSG_NEW(tool_call_msg_t, TOOL_MSG_CALL);
    c->hdr.free_fn = tool_call_free;
    if (reply_to) {
        actor_ref(reply_to);
        c->reply_to = reply_to;
    }
    c->cookie = cookie;
    str_copy(c->name, name ? name : "", sizeof(c->name));
    c->args = args ? args : cJSON_CreateObject();
    c->now_ms = (int64_t)clock_wall_ms();
    return c;
}

tool_cancel_msg_t *tool_cancel_new(const actor_t *reply_to, uint64_t cookie)
{
    tool_cancel_msg_t *c = MSG_NEW(tool_cancel_msg_t, TOOL_MSG_CANCEL);
    c->reply_to = reply_to;
    c->cookie = cookie;
    return c;
}

static void tool_result_free(msg_t *m)
{
    tool_result_msg_t *r = (tool_result_msg_t *)m;
    free(r->output);
    free(r->image_b64);
    free(r->image_mime);
    msg_block_free(r);
}

tool_result_msg_t *tool_result_new(uint64_t cookie, bool is_error, const char *output)
{
    tool_result_msg_t *r = MSG_NEW(tool_result_msg_t, TOOL_MSG_RESULT);
    r->hdr.free_fn = tool_result_free;
    r->cookie = cookie;
    r->is_error = is_error;
    r->output = xstrdup(output ? output : "");
    return r;
}

cJSON *tool_args_json(const char *raw)
{
    cJSON *args = cJSON_Parse(raw ? raw : "");
    return args ? args : cJSON_CreateString(raw ? raw : "");
}

cJSON *tool_params_new(const char *const *required, cJSON **props)
{
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "type", "object");
    *props = cJSON_AddObjectToObject(params, "properties");
    cJSON *req = cJSON_AddArrayToObject(params, "required");
    for (; required && *required; required++)
        cJSON_AddItemToArray(req, cJSON_CreateString(*required));
    cJSON_AddBoolToObject(params, "additionalProperties", false);
    return params;
}

cJSON *tool_string_prop(cJSON *props, const char *name, const char *description)
{
    cJSON *p = cJSON_AddObjectToObject(props, name);
    cJSON_AddStringToObject(p, "type", "string");
    cJSON_AddStringToObject(p, "description", description);
    return p;
}
