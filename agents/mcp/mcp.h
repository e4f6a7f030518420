/*
 * mcp: one client actor per tenant and configured MCP server (SPEC 8, 16), on the tools lane, the
 * set of them that follows the tenants' reloads (mcpset.c), and the registry of the tools they
 * expose to the supervisor as `<alias>__<tool>`. It may call agents/tools (the tool-call protocol
 * it executes), agents/config and agents/tenant; callers find a client through the registry.
 *
 * A client speaks JSON-RPC to its server over stdio (a child process owned by a network thread,
 * net_proc_*) or Streamable HTTP (net_fetch); it never does I/O itself. Lifecycle: initialize
 * (10 s deadline; protocol 2025-11-25, accepting 2025-06-18 and 2025-03-26) ->
 * notifications/initialized -> tools/list (all pages) -> ready; list_changed re-lists; a ping
 * every MCP_PING_INTERVAL_MS. A crash or a lost connection restarts it after a backoff of 1 s
 * doubling to 30 s; calls meanwhile fail at once with a tool error.
 *
 * Calls: TOOL_MSG_CALL (name = the exposed name, or the server's own name) -> tools/call with the
 * call's timeout_ms (SWITCHBOARD_MCP_CALL_TIMEOUT_MS when 0) -> exactly one TOOL_MSG_RESULT (text
 * joined, structuredContent as JSON, the first image in image_b64/image_mime, isError and
 * JSON-RPC errors as is_error; `timeout` past the deadline, after notifications/cancelled).
 * TOOL_MSG_CANCEL sends notifications/cancelled and answers nothing; late responses are dropped.
 *
 * The registry (mcpreg_*) is an immutable snapshot of every published tool, swapped under a
 * mutex by the clients when their lists change and read by supervisor runs: a reader takes a
 * reference to the current snapshot (one lock, no copying), so a list refresh never blocks or
 * changes a run that is already building its request.
 *
 * CONTRACT
 *   mcp_sync() / mcp_stop_all(): main thread, between net_start() and net_stop().
 *   mcp_tenant_freed(), mcp_metrics(): any thread.
 *   mcp_spawn(): any thread, while the network threads run.
 *   mcpreg_*(): any thread. A snapshot is immutable; mcpreg_release() drops the reference.
 */
#ifndef SB_AGENTS_MCP_H
#define SB_AGENTS_MCP_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "agents/config/agentcfg.h"
#include "agents/tenant/tenant.h"
#include "agents/tools/tools.h"
#include "base/sbuf.h"

#define MCP_PROTOCOL_VERSION "2025-11-25"
#define MCP_INIT_TIMEOUT_MS  10000
#define MCP_PING_INTERVAL_MS 30000
#define MCP_PING_TIMEOUT_MS  10000
#define MCP_BACKOFF_MIN_MS   1000
#define MCP_BACKOFF_MAX_MS   30000
#define MCP_STOP_GRACE_MS    1000 /* stdio shutdown: close stdin, then SIGTERM, then SIGKILL */

enum {
    MCP_MSG_STATUS = MSG_TYPE_MCP_BASE + 1, /* client -> owner: mcp_status_msg_t */
    MCP_MSG_CLOSED,                         /* client -> owner: the shutdown has finished */
    MCP_MSG_SHUTDOWN,                       /* -> client: end the session, then stop */
    MCP_MSG_REQ_DEADLINE,                   /* the client's own timers */
    MCP_MSG_RESTART,
    MCP_MSG_PING,
    MCP_MSG_RELIST,
    MCP_MSG_RESUME,
};

/* The client's state changed: up after a complete tools/list, down after a failure. */
typedef struct mcp_status_msg {
    msg_t hdr;
    bool up;
    char error[200]; /* why it is down, "" when up */
    cJSON *tools;    /* owned, when up: [{name, exposed, description, inputSchema}], server order */
} mcp_status_msg_t;

typedef struct mcp_opts {
    const agent_mcp_server_t *server; /* copied by mcp_spawn() */
    const char *tenant;               /* whose server it is (SPEC 16; copied); NULL = "" */
    actor_t *owner;                   /* gets STATUS and CLOSED (a reference is taken); or NULL */
    bool publish;                     /* expose the tools through the registry */
    bool restart;                     /* restart after a failure (else report down and idle) */
    bool elicit_defaults;     /* advertise elicitation; accept requests with each field's default */
    uint32_t call_timeout_ms; /* default deadline of a tools/call */
} mcp_opts_t;

/* Spawns a client and starts connecting. Returns it with a reference for the caller, or NULL. */
actor_t *mcp_spawn(const mcp_opts_t *o);

/* ---- The service's clients (mcpset.c) ------------------------------------------------------ */

/*
 * One client per tenant and server definition, shared by every snapshot of that tenant whose
 * server of that alias is defined alike (command, args, env, url, headers: mcp_server_key()), and
 * alive while one of them is. A reload that leaves a server as it was keeps its client (no
 * restart); a changed definition gets a new client beside the old one, which goes (its session
 * ended, its child stopped) when the last snapshot naming it is freed, that is when the last run
 * or call that started with the old configuration has ended. A removed tenant's clients go the
 * same way. MCP_MAX_CLIENTS bounds them all; a server past it is not started (logged).
 */
#define MCP_MAX_CLIENTS 1024

/*
 * Makes sure every server of every snapshot of tenants[0..n-1] has its client: spawns the ones
 * missing and counts the snapshots as users of theirs (a snapshot already counted is skipped).
 * Call it with the current snapshots at start-up and after each reload; across a reload, keep
 * references to the snapshots of before it until this returns, or an unchanged server of a
 * changed tenant loses its last user in between and is restarted. Returns 0, or -EAGAIN when a
 * client could not be spawned. Thread: main, while the network threads run.
 */
int mcp_sync(tenant_t *const *tenants, size_t n);
/*
 * The snapshot t is being freed (tenants_on_free): it no longer uses its servers' clients; a
 * client left without users is shut down. Snapshots never passed to mcp_sync() are ignored.
 * Thread: any.
 */
void mcp_tenant_freed(const tenant_t *t);
/* Shuts every client down (DELETE the session; stdio: close stdin, SIGTERM, SIGKILL) and waits
 * at most wait_ms for them to finish; later mcp_sync()/mcp_tenant_freed() calls do nothing.
 * Thread: main. */
void mcp_stop_all(uint64_t wait_ms);
/*
 * Appends switchboard_mcp_server_up{tenant,alias} (1 connected, 0 not) for every client running:
 * when a changed server's old client still serves a live run, the newer client is the one shown
 * (a metric_text_fn; arg unused). Thread: any (the scraping thread).
 */
void mcp_metrics(sbuf_t *out, void *arg);
/* The 64-bit digest of a server definition that tells two definitions apart (FNV-1a over every
 * field, each length-prefixed). Thread: any. */
uint64_t mcp_server_key(const agent_mcp_server_t *s);

/* ---- The registry of exposed tools (mcpreg.c) ---------------------------------------------- */

typedef struct mcpreg_tool {
    char exposed[TOOL_NAME_MAX + 1]; /* unique within what one snapshot of its tenant sees */
    char *tenant;                    /* whose server publishes it */
    char *alias;
    uint64_t key; /* mcp_server_key() of the definition its client was started with */
    char *original;
    actor_t *server; /* a reference held by the snapshot */
    cJSON *def;      /* {type:"function",function:{name,description,parameters}} */
} mcpreg_tool_t;

typedef struct mcpreg_snap {
    int refs; /* {registry lock} */
    size_t n;
    mcpreg_tool_t *tools;
} mcpreg_snap_t;

/* One tool a client publishes: its server name, description and input schema (copied). */
typedef struct mcpreg_entry {
    const char *original;
    const char *description;
    const cJSON *input_schema;
} mcpreg_entry_t;

/*
 * Replaces the tools published by server (tenant's server alias, defined as key says) with
 * entries: assigns each an exposed name (mcpname rules, unique among the tenant's aliases) and
 * writes it to exposed[i]. server gets the calls. Two clients of one alias (an old and a new
 * definition, never offered together) may publish the same names.
 */
void mcpreg_publish(const char *tenant, const char *alias, uint64_t key, actor_t *server,
                    const mcpreg_entry_t *entries, size_t n, char (*exposed)[TOOL_NAME_MAX + 1]);
/* Removes the tools server published. */
void mcpreg_withdraw(const actor_t *server);
/* The current snapshot with a reference (never NULL). */
mcpreg_snap_t *mcpreg_acquire(void);
void mcpreg_release(mcpreg_snap_t *s);
/* Whether a run holding the tenant snapshot t may use tool: t's own, from the client of the
 * definition t has for its alias (not an older or newer one). */
bool mcpreg_serves(const mcpreg_tool_t *tool, const tenant_t *t);
/* The tool exposed as name in s that serves t, or NULL. */
const mcpreg_tool_t *mcpreg_find(const mcpreg_snap_t *s, const tenant_t *t, const char *name);
/* Drops every tool (shutdown, tests). */
void mcpreg_clear(void);

#endif
