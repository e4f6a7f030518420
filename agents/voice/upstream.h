/*
 * The messages between a voice session and its upstream actor (upstream.c), and the upstream's
 * configuration defaults. Internal to agents/voice. Thread: the two actors' workers.
 */
#ifndef SB_AGENTS_VOICE_UPSTREAM_H
#define SB_AGENTS_VOICE_UPSTREAM_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "mailbox/msgtypes.h"
#include "net/net.h"

/* The Realtime session the upstream asks for (SPEC 6): PCM16 at 24 kHz both ways, server VAD. */
#define UPSTREAM_RATE_HZ          24000
#define UPSTREAM_TRANSCRIBE_MODEL "gpt-4o-mini-transcribe"
#define UPSTREAM_VAD_THRESHOLD    0.5
#define UPSTREAM_VAD_PREFIX_MS    300
#define UPSTREAM_VAD_SILENCE_MS   500

enum {
    UP_MSG_EVENT = MSG_TYPE_VOICE_BASE + 1, /* session -> upstream: a client event to send as is
                                             * (while the session has no socket of its own) */
    UP_MSG_END,      /* session -> upstream: the call is over; close and stop */
    UP_MSG_DEADLINE, /* timers of the upstream actor */
    UP_MSG_RETRY,
    UP_MSG_RECYCLE,
    SESSION_MSG_UP_STATE, /* upstream -> session: readiness and failures */
    SESSION_MSG_UP_EVENT, /* upstream -> session: an upstream event to relay */
    SESSION_MSG_IDLE,     /* timers of the session actor */
    SESSION_MSG_MAX,
    SESSION_MSG_TOOL_TIMEOUT, /* a voice tool's deadline */
    SESSION_MSG_PHONE_START,  /* timers of a phone session: no `start` in time, */
    SESSION_MSG_PHONE_DTMF,   /* the end of a keypad entry */
};

/* A JSON event travelling between a session and its upstream. */
typedef struct event_msg {
    msg_t hdr;
    cJSON *event; /* owned */
} event_msg_t;

typedef enum upstream_state {
    UPSTREAM_READY,        /* configured: audio may flow */
    UPSTREAM_RECONNECTING, /* recycling or recovering: buffer client audio */
    UPSTREAM_RECONNECTED,  /* configured again: the session replays the conversation */
    UPSTREAM_UNAVAILABLE,  /* gave up: close WS_CLOSE_UPSTREAM_UNAVAILABLE */
    UPSTREAM_REJECTED,     /* session.update refused: close WS_CLOSE_UPSTREAM_REJECTED */
} upstream_state_t;

typedef struct upstream_state_msg {
    msg_t hdr;
    upstream_state_t state;
    conn_id_t conn;          /* READY, RECONNECTED: the socket the session now talks to itself */
    char detail[160];        /* sanitised reason, for the client's error message and the log */
    char openai_session[64]; /* the upstream's session id ("" before session.created) */
    char request_id[64];     /* x-request-id of its upgrade, "" when none */
} upstream_state_msg_t;

event_msg_t *event_msg_new(uint32_t type, cJSON *event);

/*
 * Spawns the upstream actor of a session; it holds a reference to session and sends
 * session_update (taken: it frees it) after every session.created. With passthrough (a phone
 * call's audio/pcmu) output audio deltas go to the session as their base64 text, undecoded.
 * NULL when the runtime refuses.
 */
actor_t *upstream_spawn(actor_t *session, conn_id_t near, char *session_update, bool passthrough);

#endif
