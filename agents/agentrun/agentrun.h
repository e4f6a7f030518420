/*
 * agentrun: authenticated agent runs on /ws/agent (SPEC 5.4, 14 "Agent runs"; seeds 003, 004).
 * One actor per connection: it authenticates the JWT, starts supervisor runs on the agent
 * surface, streams their steps (agentev.h) and answers ask_user. It may call agents/auth
 * (auth_jwt, jwtauth), agents/supervisor, agents/store, agents/tools and agents/voice's pure
 * event helpers.
 *
 * CONTRACT
 *   agentrun_ws_target(): a network thread; arg is an agentrun_deps_t that outlives the routes.
 */
#ifndef SB_AGENTS_AGENTRUN_AGENTRUN_H
#define SB_AGENTS_AGENTRUN_AGENTRUN_H

#include "actors/actor.h"
#include "net/net.h"
#include "net/wsclose.h"

/* The actors an agent-run actor talks to; it takes references of its own at spawn. */
typedef struct agentrun_deps {
    actor_t *pool;  /* supervisor runs */
    actor_t *store; /* run records */
} agentrun_deps_t;

/* The WebSocket target for /ws/agent: spawns an agent-run actor. Thread: net. */
actor_t *agentrun_ws_target(void *arg, const net_peer_t *peer, const char *query,
                          ws_close_t *why);
/* The client event types /ws/agent accepts (SPEC 5.4). */
const char *const *agentrun_event_types(void);

#endif
