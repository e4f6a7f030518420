/*
 * page: the page command channel (seed 000, SPEC 4 and 5.2). The router actor owns, per
 * sessionId, the tab's /ws/page sockets and its voice socket, delivers `command` events to them,
 * answers POST /api/interact/… and runs the voice model's `navigate` tool (the tool-call protocol
 * of agents/tools). It may call agents/auth (the API secret check), agents/tools, agents/tenant
 * and agents/config; voice sessions tell it about their sockets with the messages below.
 *
 * Tenants (SPEC 16). A sessionId belongs to the tenant of its voice session while one is live,
 * else to the tenant its newest tab named (`/ws/page?…&key=<publicKey>`), else to the default
 * tenant; a tab that named a tenant is that tenant's only.
 * A command is sent for one tenant and reaches that tenant's sockets of the sessionId only; its
 * page and section are checked against that tenant's pages. A tenant's apiSecret sends for that
 * tenant (another tenant's sessionId is not connected, as if absent); the operator's
 * SWITCHBOARD_API_SECRET sends for the sessionId's own tenant.
 *
 * CONTRACT
 *   router_spawn(): main thread (agents.c). router_ws_target(): a network thread. Messages are
 *   owned by the receiver once sent.
 */
#ifndef SB_AGENTS_PAGE_PAGE_H
#define SB_AGENTS_PAGE_PAGE_H

#include "actors/actor.h"
#include "agents/auth/auth.h"
#include "mailbox/msgtypes.h"
#include "net/net.h"
#include "net/wsclose.h"

enum {
    ROUTER_MSG_VOICE_OPEN = MSG_TYPE_PAGE_BASE + 1, /* session -> router: router_voice_msg_t */
    ROUTER_MSG_VOICE_CLOSED,                        /* session -> router: router_voice_msg_t */
    ROUTER_MSG_ACK,                                 /* session -> router: router_ack_msg_t */
};

/* session -> router: the voice socket of a sessionId opened or closed. */
typedef struct router_voice_msg {
    msg_t hdr;
    char session_id[ID_MAX + 1];
    conn_id_t conn;
    tenant_t *tenant; /* OPEN: the session's tenant, a reference owned by the message; CLOSED:
                         NULL */
} router_voice_msg_t;

/* session -> router: `command.ack` received on the voice socket. */
typedef struct router_ack_msg {
    msg_t hdr;
    char session_id[ID_MAX + 1];
    char id[64];
} router_ack_msg_t;

/* Builds ROUTER_MSG_VOICE_OPEN (takes a new reference to tenant) or ROUTER_MSG_VOICE_CLOSED
 * (tenant NULL). */
router_voice_msg_t *router_voice_new(uint32_t type, const char *session_id, conn_id_t conn,
                                     tenant_t *tenant);

/* Spawns the router; NULL when the runtime refuses. */
actor_t *router_spawn(void);
/* The WebSocket target for /ws/page; arg is the router. Thread: net. */
actor_t *router_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);
/* The client event types /ws/page accepts (SPEC 5.2). */
const char *const *router_event_types(void);

#endif
