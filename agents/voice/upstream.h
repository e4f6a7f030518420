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
    UP_MSG_AUDIO = MSG_TYPE_VOICE_BASE + 1, /* session -> upstream: 24 kHz PCM16 to append */
    UP_MSG_EVENT,                           /* session -> upstream: a client event to send as is */
    UP_MSG_END,      /* session -> upstream: the call is over; close and stop */
    UP_MSG_DEADLINE, /* timers of the upstream actor */
    UP_MSG_RETRY,
    UP_MSG_RECYCLE,
    SESSION_MSG_UP_STATE, /* upstream -> session: readiness and failures */
    SESSION_MSG_UP_EVENT, /* upstream -> session: an upstream event to relay */
    SESSION_MSG_UP_AUDIO, /* upstream -> session: decoded assistant audio */
    SESSION_MSG_IDLE,     /* timers of the session actor */
    SESSION_MSG_MAX,
    SESSION_MSG_TOOL_TIMEOUT, /* a voice tool's deadline */
    UP_MSG_AUDIO_B64,         /* session -> upstream: base64 μ-law to append as it is (phone) */
    SESSION_MSG_PHONE_START,  /* timers of a phone session: no `start` in time, */
    SESSION_MSG_PHONE_DTMF,   /* the end of a keypad entry */
};

/* PCM16 audio between a session and its upstream (24 kHz, the upstream's rate); on a phone call
 * (audio/pcmu, passed through) the base64 text of μ-law audio instead, never decoded. */
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
    UPSTREAM_RECONNECTED,  /* configured again: the session replays the conversation */
    UPSTREAM_UNAVAILABLE,  /* gave up: close WS_CLOSE_UPSTREAM_UNAVAILABLE */
    UPSTREAM_REJECTED,     /* session.update refused: close WS_CLOSE_UPSTREAM_REJECTED */
} upstream_state_t;

typedef struct upstream_state_msg {
    msg_t hdr;
    upstream_state_t state;
    char detail[160];        /* sanitised reason, for the client's error message and the log */
    char openai_session[64]; /* the upstream's session id ("" before session.created) */
    char request_id[64];     /* x-request-id of its upgrade, "" when none */
} upstream_state_msg_t;

audio_msg_t *audio_msg_new(uint32_t type, const void *pcm, size_t len);
event_msg_t *event_msg_new(uint32_t type, cJSON *event);

/*
 * Spawns the upstream actor of a session; it holds a reference to session and sends
 * session_update (taken: it frees it) after every session.created. With passthrough (a phone
 * call's audio/pcmu) output audio deltas go to the session as their base64 text, undecoded.
 * NULL when the runtime refuses.
 */
actor_t *upstream_spawn(actor_t *session, conn_id_t near, char *session_update, bool passthrough);

#endif
