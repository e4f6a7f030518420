/*
 * JSON-RPC 2.0 for the MCP client (mcp_int.h): building and classifying messages, the stdio
 * framing, the initialize parameters and turning a tools/call answer into a tool result.
 * Thread: any (pure functions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/mcp/mcp_int.h"
#include "base/sbuf.h"
#include "base/util.h"

#define MCPPROTO_CLIENT_NAME    "switchboard"
#define MCPPROTO_CLIENT_VERSION "0.1.0"

static const char *const mcpproto_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

mcpproto_kind_t mcpproto_classify(const cJSON *msg)
{
    if (!cJSON_IsObject(msg))
        return MCPPROTO_INVALID;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    bool has_id = id != NULL && (cJSON_IsNumber(id) || cJSON_IsString(id));
    if (cJSON_IsString(method))
        return has_id ? MCPPROTO_REQUEST : MCPPROTO_NOTIFICATION;
    if (method != NULL)
        return MCPPROTO_INVALID;
    bool has_result = cJSON_GetObjectItemCaseSensitive(msg, "result") != NULL;
    bool has_error = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(msg, "error"));
    if (has_id && (has_result != has_error))
        return MCPPROTO_RESPONSE;
    return MCPPROTO_INVALID;
}

static cJSON *mcpproto_base(void)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    return m;
}

cJSON *mcpproto_notification(const char *method, cJSON *params)
{
    cJSON *m = mcpproto_base();
    cJSON_AddStringToObject(m, "method", method);
    if (params)
        cJSON_AddItemToObject(m, "params", params);
    return m;
}

cJSON *mcpproto_request(int64_t id, const char *method, cJSON *params)
{
    cJSON *m = mcpproto_notification(method, params);
    cJSON_AddNumberToObject(m, "id", (double)id);
    return m;
}

cJSON *mcpproto_result(const cJSON *id, cJSON *result)
{
    cJSON *m = mcpproto_base();
    cJSON_AddItemToObject(m, "id", cJSON_Duplicate(id, true));
    cJSON_AddItemToObject(m, "result", result ? result : cJSON_CreateObject());
    return m;
}

cJSON *mcpproto_error(const cJSON *id, int code, const char *message)
{
    cJSON *m = mcpproto_base();
    cJSON_AddItemToObject(m, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
    cJSON *e = cJSON_AddObjectToObject(m, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    return m;
}

char *mcpproto_line(const cJSON *msg, size_t *len)
{
    /* cJSON escapes control characters inside strings, so the text has no raw '\n'. */
    char *s = cJSON_PrintUnformatted(msg);
    if (s == NULL)
        abort();
    size_t n = strlen(s);
    char *out = xmalloc(n + 2);
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    cJSON_free(s);
    *len = n + 1;
    return out;
}

bool mcpproto_version_ok(const char *v)
{
    for (size_t i = 0; v && i < ARRAY_LEN(mcpproto_versions); i++)
        if (strcmp(v, mcpproto_versions[i]) == 0)
            return true;
    return false;
}

cJSON *mcpproto_init_params(bool elicitation)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "protocolVersion", MCP_PROTOCOL_VERSION);
    cJSON *caps = cJSON_AddObjectToObject(p, "capabilities");
    if (elicitation)
        cJSON_AddObjectToObject(caps, "elicitation");
    cJSON *info = cJSON_AddObjectToObject(p, "clientInfo");
    cJSON_AddStringToObject(info, "name", MCPPROTO_CLIENT_NAME);
    cJSON_AddStringToObject(info, "version", MCPPROTO_CLIENT_VERSION);
    return p;
}

cJSON *mcpproto_elicit_defaults(const cJSON *params)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "action", "accept");
    cJSON *content = cJSON_AddObjectToObject(r, "content");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(params, "requestedSchema");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "default");
        if (d)
            cJSON_AddItemToObject(content, p->string, cJSON_Duplicate(d, true));
    }
    return r;
}

cJSON *mcpproto_sample_args(const cJSON *input_schema)
{
    cJSON *args = cJSON_CreateObject();
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(input_schema, "properties");
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "string";
        if (strcmp(t, "number") == 0 || strcmp(t, "integer") == 0)
            cJSON_AddNumberToObject(args, p->string,
                                    strcmp(p->string, "a") == 0   ? 2
                                    : strcmp(p->string, "b") == 0 ? 3
                                                                  : 1);
        else if (strcmp(t, "boolean") == 0)
            cJSON_AddBoolToObject(args, p->string, true);
        else if (strcmp(t, "string") == 0)
            cJSON_AddStringToObject(args, p->string, "test");
    }
    return args;
}

static void mcpproto_add_text(sbuf_t *b, const char *s)
{
    if (b->len > 0)
        sbuf_putc(b, '\n');
    sbuf_puts(b, s);
}

static const char *mcpproto_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

tool_result_msg_t *mcpproto_call_result(uint64_t cookie, const cJSON *result, const cJSON *error)
{
    if (result == NULL) {
        const char *msg = mcpproto_str(error, "message");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
        char text[512];
        snprintf(text, sizeof(text), "MCP error %d: %s", cJSON_IsNumber(code) ? code->valueint : 0,
                 msg ? msg : "unknown error");
        return mcpproto_tool_error(cookie, "mcp_error", text);
    }
    sbuf_t b = SBUF_INIT;
    const char *img = NULL, *img_mime = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(result, "content"))
    {
        const char *type = mcpproto_str(c, "type");
        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0 && mcpproto_str(c, "text")) {
            mcpproto_add_text(&b, mcpproto_str(c, "text"));
        } else if (strcmp(type, "image") == 0 && img == NULL && mcpproto_str(c, "data")) {
            img = mcpproto_str(c, "data");
            img_mime = mcpproto_str(c, "mimeType");
        } else if (strcmp(type, "resource_link") == 0 && mcpproto_str(c, "uri")) {
            mcpproto_add_text(&b, mcpproto_str(c, "uri"));
        } else if (strcmp(type, "resource") == 0) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "resource");
            const char *t = mcpproto_str(r, "text");
            if (t || mcpproto_str(r, "uri"))
                mcpproto_add_text(&b, t ? t : mcpproto_str(r, "uri"));
        }
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
    if (sc && !cJSON_IsNull(sc)) {
        char *j = cJSON_PrintUnformatted(sc);
        if (j)
            mcpproto_add_text(&b, j);
        cJSON_free(j);
    }
    bool is_error = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "isError"));
    tool_result_msg_t *r = tool_result_new(cookie, is_error, b.data ? b.data : "");
    sbuf_destroy(&b);
    if (img) {
        r->image_b64 = xstrdup(img);
        r->image_mime = xstrdup(img_mime ? img_mime : "application/octet-stream");
    }
    return r;
}

tool_result_msg_t *mcpproto_tool_error(uint64_t cookie, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    char *s = cJSON_PrintUnformatted(o);
    tool_result_msg_t *r = tool_result_new(cookie, true, s);
    cJSON_free(s);
    cJSON_Delete(o);
    return r;
}
