/*
 * libFuzzer target: the JSON-RPC helpers of the MCP client (agents/mcp/mcpproto.c) on a
 * message from a server, as the client actor meets it (mcp_on_message): classified by shape;
 * a server request answered (a result echoing its id, or an error), elicitation/create accepted
 * with its defaults; a response turned into the tool result a caller gets (tools/call), its
 * tools' input schemas into sample arguments, its protocol version checked. Every message the
 * client would send is framed with mcpproto_line(), which must give one line that parses back
 * to the same JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/mcp/mcp_int.h"
#include "base/util.h"

#define FUZZ_MCP_COOKIE 42

/*
 * agents/tools/tools.c builds tool results (used here) beside tool calls, which hold a reference
 * to the calling actor and a timestamp. Those are never built here, so the actor runtime and the
 * clock are not linked: their entry points abort if reached.
 */
void actor_ref(actor_t *a)
{
    (void)a;
    abort();
}

void actor_unref(actor_t *a)
{
    (void)a;
    abort();
}

/*
 * The stdio framing: one '\n', at the end, after JSON that parses back and prints the same (a
 * comparison of trees would trip on duplicate keys, which a server may send and is echoed).
 */
static void frame(cJSON *msg)
{
    size_t len = 0;
    char *line = mcpproto_line(msg, &len);
    if (len == 0 || line[len - 1] != '\n' || line[len] != '\0' || memchr(line, '\n', len - 1))
        abort();
    cJSON *back = cJSON_ParseWithLength(line, len - 1);
    char *again = cJSON_PrintUnformatted(back);
    if (again == NULL || strlen(again) != len - 1 || memcmp(again, line, len - 1) != 0)
        abort();
    cJSON_free(again);
    cJSON_Delete(back);
    free(line);
    cJSON_Delete(msg);
}

static void result_of(const cJSON *result, const cJSON *error)
{
    tool_result_msg_t *r = mcpproto_call_result(FUZZ_MCP_COOKIE, result, error);
    if (r == NULL || r->output == NULL || r->cookie != FUZZ_MCP_COOKIE)
        abort();
    if (result == NULL && !r->is_error)
        abort(); /* a JSON-RPC error is a tool error */
    if ((r->image_b64 == NULL) != (r->image_mime == NULL))
        abort();
    msg_free(&r->hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *msg = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    switch (mcpproto_classify(msg)) {
    case MCPPROTO_REQUEST:
        if (strcmp(method->valuestring, "elicitation/create") == 0)
            frame(mcpproto_result(id, mcpproto_elicit_defaults(params)));
        else if (strcmp(method->valuestring, "ping") == 0)
            frame(mcpproto_result(id, NULL));
        else
            frame(mcpproto_error(id, -32601, method->valuestring));
        break;
    case MCPPROTO_NOTIFICATION:
        frame(mcpproto_notification(method->valuestring, cJSON_Duplicate(params, true)));
        break;
    case MCPPROTO_RESPONSE: {
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
        result_of(result, error);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(result, "protocolVersion");
        (void)mcpproto_version_ok(cJSON_IsString(v) ? v->valuestring : NULL);
        const cJSON *tool;
        cJSON_ArrayForEach(tool, cJSON_GetObjectItemCaseSensitive(result, "tools"))
        {
            const cJSON *schema = cJSON_GetObjectItemCaseSensitive(tool, "inputSchema");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(tool, "name");
            frame(mcpproto_request(FUZZ_MCP_COOKIE, "tools/call",
                                   cJSON_IsString(name) ? mcpproto_sample_args(schema) : NULL));
        }
        break;
    }
    case MCPPROTO_INVALID:
        if (cJSON_IsObject(msg))
            frame(mcpproto_error(id, -32600, "invalid request"));
        break;
    default:
        abort();
    }
    cJSON_Delete(msg);
    return 0;
}
