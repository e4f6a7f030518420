/*
 * `switchboard-mcp conformance <url>`: the client side of the official MCP conformance suite
 * (@modelcontextprotocol/conformance, `client --command "switchboard-mcp conformance"`). The
 * suite appends the URL of its mock server and names the scenario in MCP_CONFORMANCE_SCENARIO.
 *
 * Every non-auth scenario is served by the same behaviour, the one the client has in the service:
 * initialize (elicitation advertised and answered with each field's default), the standalone GET
 * stream, tools/list, then every tool called once with sample arguments (a=2, b=3 for the
 * add_numbers tool), each answer printed on stderr; the session is DELETEd at the end. The auth
 * scenarios need OAuth, which the client does not have: they fail (tests/mcp/baseline.yml).
 * Thread: main.
 */
#include <stdio.h>
#include <string.h>

#include "cli/mcp_cli.h"
#include "agents/mcp/mcp_int.h"

#define CONF_CALL_TIMEOUT_MS 10000

int cli_conformance(const char *scenario)
{
    fprintf(stderr, "switchboard-mcp conformance: scenario %s\n", scenario ? scenario : "(none)");
    mcp_status_msg_t *s = cli_ready();
    if (s == NULL)
        return 1;
    int rc = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, s->tools)
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        cJSON *args = mcpproto_sample_args(cJSON_GetObjectItemCaseSensitive(t, "inputSchema"));
        tool_result_msg_t *r = cli_call(name, args, CONF_CALL_TIMEOUT_MS);
        if (r == NULL || r->timeout) {
            fprintf(stderr, "tool %s: timeout\n", name);
            rc = 1;
        } else {
            fprintf(stderr, "tool %s%s: %s\n", name, r->is_error ? " (error)" : "", r->output);
        }
        msg_free(r ? &r->hdr : NULL);
    }
    msg_free(&s->hdr);
    return rc;
}
