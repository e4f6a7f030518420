/*
 * postcall: the runner of the post-call jobs (SPEC 15), one actor on the tools lane, so that no
 * job ever delays audio. The store keeps the jobs durable and decides which calls get one; the
 * runner claims what is due (at start-up, when the store says a job was queued, when a retry
 * falls due, and whenever a job ends), and runs each claimed job's steps that are not done:
 *
 *   summary  one Chat Completions request with the strict json_schema call_summary over the
 *            transcript and the tool calls (summary.h); its answer is checked against the
 *            schema and stored on the call, or the step fails with the reason;
 *   crm      when the tenant's postcall.crm names an MCP server: a supervisor run on the
 *            postcall surface (tools.postcall) told to look the caller up, create or update the
 *            contact and attach a note; its tool calls are recorded with the call (parent
 *            "postcall"); done when the run completed with no failed tool call.
 *
 * Each attempt's end goes back to the store, which marks the job done or failed with its retry
 * (SWITCHBOARD_POSTCALL_RETRY_MS doubling, at most 5 attempts). It may call agents/store,
 * agents/supervisor, agents/mcp and agents/tenant.
 *
 * CONTRACT
 *   postcall_spawn(): the main thread (agents.c), after the store and the supervisor pool.
 *   Stopping it (actor_stop) abandons the attempts in flight: their jobs stay "running" in the
 *   file and run again after the next start-up.
 */
#ifndef SB_AGENTS_POSTCALL_H
#define SB_AGENTS_POSTCALL_H

#include "actors/actor.h"

#define POSTCALL_MAX_RUNNING 16 /* jobs in flight at once; more wait in the file */

/* Spawns the runner; it holds references to store and pool. NULL when the runtime refuses. */
actor_t *postcall_spawn(actor_t *store, actor_t *pool);

#endif
