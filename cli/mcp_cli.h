/*
 * switchboard-mcp internals shared by its files (cli/). Thread: main.
 */
#ifndef SB_CLI_MCP_CLI_H
#define SB_CLI_MCP_CLI_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "agents/mcp/mcp.h"

/* The first message of this type from the client, waiting at most ms; NULL on timeout. */
msg_t *cli_wait(uint32_t type, uint64_t ms);
/* Waits for the client to be up: its STATUS (free it with msg_free), or NULL
 * after printing why not. */
mcp_status_msg_t *cli_ready(void);
/* Calls tool with args (taken) and waits for the result; NULL when none came. */
tool_result_msg_t *cli_call(const char *tool, cJSON *args, uint32_t timeout_ms);
/* Runs one conformance scenario against the connected client; returns the exit code. */
int cli_conformance(const char *scenario);

#endif
