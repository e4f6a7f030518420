/*
 * agents: the actors of the product and the messages between them.
 *
 *   gate     tokens, per-IP rate limits and the registry of live voice sessions (SPEC 4, 14)
 *   session  one per voice WebSocket (/ws)
 *   router   the page command channel: /ws/page sockets and POST /api/interact/… (seed 000)
 *   chat     text chat threads: /ws/chat (seed 001; chat.c, chatthread.c, chat_int.h)
 *   agentrun one per /ws/agent connection: authenticated agent runs (seeds 003, 004)
 *   store    the SQLite writer, booking tools and /api/calls (agents/tools.h, store.c)
 *
 * agents_start() spawns the singletons and registers their HTTP and WebSocket routes with net;
 * agents_stop() drops the references main holds. Thread: main.
 */
#ifndef SB_AGENTS_AGENTS_H
#define SB_AGENTS_AGENTS_H

#include <stdbool.h>

#include "actors/actor.h"
#include "agents/agentcfg.h"
#include "net/net.h"

#define ID_MAX 64 /* sessionId, threadId, userId: [A-Za-z0-9_-]{1,64} */

enum {
    GATE_MSG_ADMIT = MSG_TYPE_AGENT_BASE + 1,
    GATE_MSG_ENDED,
    GATE_MSG_SWEEP,
    SESSION_MSG_ADMITTED,
    SESSION_MSG_IDLE,
    SESSION_MSG_MAX,
    ROUTER_MSG_VOICE_OPEN,
    ROUTER_MSG_VOICE_CLOSED,
    ROUTER_MSG_ACK,
    ROUTER_MSG_CMD_TIMEOUT,
    UP_MSG_AUDIO,    /* session -> upstream: 24 kHz PCM16 to append */
    UP_MSG_EVENT,    /* session -> upstream: a client event to send as is */
    UP_MSG_END,      /* session -> upstream: the call is over; close and stop */
    UP_MSG_DEADLINE, /* timers of the upstream actor */
    UP_MSG_RETRY,
    UP_MSG_RECYCLE,
    SESSION_MSG_UP_STATE, /* upstream -> session: readiness and failures */
    SESSION_MSG_UP_EVENT, /* upstream -> session: an upstream event to relay */
    SESSION_MSG_UP_AUDIO, /* upstream -> session: decoded assistant audio */
    GATE_MSG_REDEEM,      /* any -> gate: spend an ephemeral token (gate_redeem_msg_t) */
    GATE_MSG_REDEEMED,    /* gate -> the asker: gate_redeemed_msg_t */
};

/* PCM16 audio between a session and its upstream (24 kHz, the upstream's rate). */
typedef struct audio_msg {
    msg_t hdr;        /* MSG_F_AUDIO */
    uint64_t t_in_ns; /* when its network thread received the frame (relay latency metric) */
    char item_id[64]; /* upstream -> session: the assistant item the audio belongs to */
    size_t len;
    uint8_t pcm[];
} audio_msg_t;

/* A JSON event travelling between a session and its upstream. */
typedef struct event_msg {
    msg_t hdr;
    cJSON *event; /* owned */
} event_msg_t;

typedef enum upstream_state {
    UPSTREAM_READY,        /* configured: audio may flow */
    UPSTREAM_RECONNECTING, /* recycling or recovering: buffer client audio */
    UPSTREAM_RECONNECTED,  /* configured again, conversation replayed */
    UPSTREAM_UNAVAILABLE,  /* gave up: close 1011 "upstream unavailable" */
    UPSTREAM_REJECTED,     /* session.update refused: close 1011 "upstream rejected config" */
} upstream_state_t;

typedef struct upstream_state_msg {
    msg_t hdr;
    upstream_state_t state;
    char detail[160]; /* sanitised reason, for the client's error message and the log */
    char openai_session[64]; /* the upstream's session id ("" before session.created) */
    char request_id[64];     /* x-request-id of its upgrade, "" when none */
} upstream_state_msg_t;

audio_msg_t *audio_msg_new(uint32_t type, const void *pcm, size_t len);
event_msg_t *event_msg_new(uint32_t type, cJSON *event);

/* Builds the session.update all upstreams send (from the agent config, once) / frees it.
 * Thread: main, before the network threads start and after they stop. */
void upstream_init(void);
void upstream_destroy(void);
/* Spawns the upstream actor of a session (upstream.c); NULL when the runtime refuses. */
actor_t *upstream_spawn(actor_t *session, conn_id_t near);

/* The receptionist instructions from the agent config, brief inside <company_brief> (prompt.c). */
char *prompt_receptionist(const agentcfg_t *ac);

/* session -> gate: admit this connection (the token is spent if valid). */
typedef struct gate_admit_msg {
    msg_t hdr;
    actor_t *session; /* a reference, owned by the message */
    char session_id[ID_MAX + 1];
    char token[80];
    net_peer_t peer;
} gate_admit_msg_t;

/* gate -> session: the answer to GATE_MSG_ADMIT. */
typedef struct session_admitted_msg {
    msg_t hdr;
    bool ok;
    ws_close_t close; /* when refused */
} session_admitted_msg_t;

/*
 * chat -> gate: spend this ephemeral token for a /ws/chat connection. Tokens of either purpose
 * are good (SPEC 5.3, 14): the sessionId binding and the voice capacity do not apply. The token
 * is spent when valid; expired ones are dropped too. The gate answers GATE_MSG_REDEEMED.
 */
typedef struct gate_redeem_msg {
    msg_t hdr;
    actor_t *reply_to; /* a reference, owned by the message */
    uint64_t cookie;   /* echoed */
    char token[80];
} gate_redeem_msg_t;

typedef struct gate_redeemed_msg {
    msg_t hdr;
    uint64_t cookie;
    bool ok;
} gate_redeemed_msg_t;

/* Builds a GATE_MSG_REDEEM (takes a new reference to reply_to); send it to g_gate. */
gate_redeem_msg_t *gate_redeem_new(actor_t *reply_to, uint64_t cookie, const char *token);

/* session -> gate: an admitted session has ended. */
typedef struct gate_ended_msg {
    msg_t hdr;
    char session_id[ID_MAX + 1];
    char ip[48];
} gate_ended_msg_t;

/* session -> router: the voice socket of a sessionId opened or closed. */
typedef struct router_voice_msg {
    msg_t hdr;
    char session_id[ID_MAX + 1];
    conn_id_t conn;
} router_voice_msg_t;

/* session -> router: `command.ack` received on the voice socket. */
typedef struct router_ack_msg {
    msg_t hdr;
    char session_id[ID_MAX + 1];
    char id[64];
} router_ack_msg_t;

/* Singletons, alive from agents_start() to the end of sched_stop(). */
extern actor_t *g_gate;
extern actor_t *g_router;
extern actor_t *g_chat;

int agents_start(void);
void agents_stop(void);

/* Spawns each singleton (gate.c, router.c); NULL when the runtime refuses. */
actor_t *gate_spawn(void);
actor_t *router_spawn(void);
actor_t *chat_spawn(void);
/* The WebSocket target for /ws: spawns a session actor. Thread: net. */
actor_t *session_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);
/* The client event types /ws accepts (SPEC 5.1). */
const char *const *session_event_types(void);
/* The WebSocket target for /ws/page: the router. Thread: net. */
actor_t *router_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);

/* The WebSocket target for /ws/chat: the chat registry. Thread: net. */
actor_t *chat_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);
/* The client event types /ws/chat accepts (SPEC 5.3). */
const char *const *chat_event_types(void);

/* The WebSocket target for /ws/agent: spawns an agent-run actor. Thread: net. */
actor_t *agentrun_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why);
/* The client event types /ws/agent accepts (SPEC 5.4). */
const char *const *agentrun_event_types(void);

/* Shared helpers (agents.c). */
/* Constant-time comparison of a bearer Authorization header with the API secret. */
bool agents_bearer_ok(const char *authorization, const char *secret);
/* Server-to-server auth (SPEC 4): the API secret when set, else loopback callers only. */
bool agents_api_auth_ok(const net_http_msg_t *req);

#endif
