/*
 * chat: text chat threads on /ws/chat (SPEC 5.3, 14 "Chat"; seed 001). One registry actor
 * checks each connection (query, token through the gate or a JWT) and attaches it to the actor
 * of its thread; one actor per live thread owns its history, fan-out and supervisor runs
 * (design in chat_int.h). It may call agents/auth (the gate, jwtauth), agents/supervisor,
 * agents/store, agents/tools and agents/voice's pure event helpers.
 *
 * CONTRACT
 *   chat_spawn(): main thread (agents.c). chat_ws_target(): a network thread.
 */
#ifndef SB_AGENTS_CHAT_CHAT_H
#define SB_AGENTS_CHAT_CHAT_H

#include "actors/actor.h"
#include "net/net.h"
#include "net/wsclose.h"

/* The actors the chat registry and its threads talk to; each takes references of its own. */
typedef struct chat_deps {
    actor_t *gate;  /* spends ephemeral tokens */
    actor_t *pool;  /* supervisor runs */
    actor_t *store; /* history and messages */
} chat_deps_t;

/* Spawns the registry; NULL when the runtime refuses. Stopping it stops its thread actors. */
actor_t *chat_spawn(const chat_deps_t *deps);
/* The WebSocket target for /ws/chat; arg is the registry. Thread: net. */
actor_t *chat_ws_target(void *arg, const net_peer_t *peer, const char *query,
                          ws_close_t *why);
/* The client event types /ws/chat accepts (SPEC 5.3). */
const char *const *chat_event_types(void);

#endif
