/*
 * agents: the wiring of the product's subsystems. Nothing here is a behaviour; it only says who
 * exists, who talks to whom, which routes lead where, and in which order things start and stop.
 *
 *   auth        the gate (tokens, admissions), JWTs, the API secret        agents/auth
 *   voice       one session + one upstream actor per /ws                    agents/voice
 *   page        the command router: /ws/page, /api/interact, navigate      agents/page
 *   chat        the /ws/chat registry and one actor per live thread         agents/chat
 *   agentrun    one actor per /ws/agent                                     agents/agentrun
 *   supervisor  the run pool and its Chat Completions runs                  agents/supervisor
 *   mcp         one client actor per MCP server, and their tool registry    agents/mcp
 *   store       the SQLite writer, booking tools, /api/calls, webhook       agents/store
 *   tools       the tool-call protocol between callers and executors        agents/tools
 *   config      the agent config file                                      agents/config
 *   onboard     POST /api/tenants/{id}/brief: a tenant file from a PDF     agents/onboard
 *   web         the console, the demo site and switchboard.js               agents/web
 *
 * Start-up (agents_start, then the network, then agents_start_clients):
 *   store -> gate -> router -> supervisor pool(store) -> chat(gate, pool, store) -> brief -> web ->
 *   routes; every actor spawned later takes references of its own to the actors it talks to
 *   (voice_deps_t, chat_deps_t, agentrun_deps_t) and releases them when it stops.
 * Shutdown is the reverse: MCP clients (agents_stop_clients, before net_stop), then
 * (agents_stop, after net_stop) web, chat, pool, router, gate are stopped and main's references
 * dropped, and last store_close() waits for the final holder of the store to let go.
 *
 * CONTRACT: main thread only, in the order above.
 */
#ifndef SB_AGENTS_AGENTS_H
#define SB_AGENTS_AGENTS_H

#include <stddef.h>
#include <stdint.h>

#include "agents/config/agentcfg.h"

/*
 * Opens the database at db_path, spawns the long-lived actors and registers their routes with
 * net. Returns 0, or -1 with a message in err (what was started is stopped again).
 */
int agents_start(const char *db_path, char *err, size_t errlen);
/* Starts the MCP clients of every tenant (they need the network threads). Returns 0 or -1. */
int agents_start_clients(void);
/* Shuts the MCP clients down politely, waiting at most wait_ms (before net_stop()). */
void agents_stop_clients(uint64_t wait_ms);
/*
 * Before net_stop() at shutdown: with PostgreSQL, waits (at most wait_ms) until the sessions
 * have ended and the store has handed every record to the connection, which net_stop() drains.
 * Nothing to do on SQLite (the store writes until it closes). Thread: main.
 */
void agents_settle(uint64_t wait_ms);
/*
 * Stops what agents_start() started, in reverse order, after net_stop(). Returns 0 when the store
 * closed cleanly (every record written), -ETIMEDOUT when an actor still held it.
 */
int agents_stop(void);
/*
 * Re-reads the tenant files (SIGHUP, a change in the directory; SPEC 16): live calls keep their
 * snapshot, new ones get the new. Thread: main, while the service runs.
 */
void agents_reload(void);
/* Frees what the actors shared (the upstream configuration), after sched_stop(). */
void agents_free(void);

#endif
