/*
 * voice: one session actor per voice WebSocket (/ws, SPEC 5.1) and one upstream actor per
 * session owning its OpenAI Realtime connection (SPEC 6); the relay of audio and events between
 * them, the voice model's tools and the call record (SPEC 9). It may call agents/auth (the gate),
 * agents/page (the router), agents/supervisor, agents/store, agents/tools and agents/config.
 *
 * CONTRACT
 *   voice_session_update_new(): any thread.
 *   session_ws_target(): a network thread; arg is a voice_deps_t that outlives the routes.
 */
#ifndef SB_AGENTS_VOICE_VOICE_H
#define SB_AGENTS_VOICE_VOICE_H

#include "actors/actor.h"
#include "agents/config/agentcfg.h"
#include "agents/tenant/tenant.h"
#include "net/net.h"
#include "net/wsclose.h"

/* What a voice session talks to; a session takes references of its own at spawn. */
typedef struct voice_deps {
    actor_t *gate;   /* admissions */
    actor_t *router; /* page commands: the voice socket, command.ack, navigate */
    actor_t *pool;   /* supervisor runs */
    actor_t *store;  /* the call record */
} voice_deps_t;

/* The GA session.update an upstream sends, from its session's tenant's config (malloc'd): PCM16
 * at 24 kHz and the voice tools, or for a phone call audio/pcmu both ways and the phone tools. */
char *voice_session_update_new(const agentcfg_t *ac, bool phone);

/* The WebSocket target for /ws: spawns a session actor. Thread: net. */
actor_t *session_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);
/* The client event types /ws accepts (SPEC 5.1). */
const char *const *session_event_types(void);

/* The WebSocket target for /twilio/media (SPEC 5.5): a session with the phone transport.
 * Thread: net. */
actor_t *phonecall_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);
/* The event types /twilio/media posts: every JSON object arrives typed PHONECALL_EVENT_TYPE. */
#define PHONECALL_EVENT_TYPE "twilio"
const char *const *phonecall_event_types(void);
/* The fast reader of /twilio/media (net_ws_route_t.fast): media and mark through twilio_scan(),
 * no tree built. Thread: net. */
bool phonecall_scan(const char *s, size_t len, net_ws_fast_t *out);

#endif
