/*
 * The voice session actor's state, shared by session.c (lifecycle and client events) and
 * relay.c (the upstream: events, audio both ways, barge-in). Thread: the session's worker.
 */
#ifndef SB_AGENTS_SESSION_INT_H
#define SB_AGENTS_SESSION_INT_H

#include <stdint.h>

#include "actors/timer.h"
#include "agents/auth/auth.h"
#include "agents/page/page.h"
#include "agents/store/store.h"
#include "agents/tools/tools.h"
#include "agents/voice/upstream.h"
#include "agents/voice/voice.h"
#include "audio/resample.h"

#define SESSION_UPSTREAM_RATE UPSTREAM_RATE_HZ
#define SESSION_PENDING_MAX   16 /* client events held while the upstream is not ready */
#define SESSION_SEEN_CALLS    8  /* recent call_ids, so a call announced twice runs once */

/* A nested call (of a supervisor run) that has started and not yet ended. */
typedef struct nested_open {
    struct nested_open *next;
    char call_id[CALL_ID_MAX + 1];
    char name[TOOL_NAME_MAX + 1];
    char via[80];
    char *arguments;
    uint64_t started_ns;
} nested_open_t;

/* A function call of the voice model in flight. */
typedef struct vcall {
    struct vcall *next;
    char call_id[CALL_ID_MAX + 1];
    char name[TOOL_NAME_MAX + 1];
    const char *via; /* supervisor, client, builtin */
    char *arguments; /* the raw text */
    uint64_t cookie;
    uint64_t started_ns;
    actor_timer_t *timer;
    nested_open_t *nested;
} vcall_t;

typedef enum session_state {
    SESSION_CHECKING, /* waiting for the gate */
    SESSION_LIVE,
    SESSION_CLOSING, /* a close was requested; waiting for WS_CLOSED */
} session_state_t;

/* Why the session ended, for records and metrics (SPEC 14 "Records"). */
typedef enum end_reason {
    END_NONE,
    END_CLIENT_CLOSED,
    END_IDLE,
    END_MAX,
    END_SHUTDOWN,
    END_UPSTREAM_UNAVAILABLE,
    END_UPSTREAM_REJECTED,
    END_TOO_SLOW,
    END_ERROR,
    END_CALLER_HUNG_UP, /* phone: `stop`, or the stream closed without it */
    END_TRANSFERRED,    /* phone: transferCall moved the call */
    END_AGENT_ENDED,    /* phone: endCall */
} end_reason_t;

struct phonecall;

typedef struct session {
    actor_t actor;
    struct phonecall *phone; /* the phone transport (phonecall.c); NULL for a browser's /ws */
    /* What it talks to: references taken at spawn, released at stop (voice.h). */
    actor_t *gate;
    actor_t *router;
    actor_t *pool;
    actor_t *store;
    tenant_t *tenant; /* its tenant as admitted (a reference): instructions, voice, tools, pages */
    conn_id_t conn;
    session_state_t state;
    bool admitted;
    char session_id[ID_MAX + 1];
    char ip[48];
    int rate;
    uint64_t started_ns;
    uint64_t last_client_ns;
    end_reason_t end;
    actor_timer_t *idle;
    actor_timer_t *max;

    /* The upstream. */
    actor_t *upstream; /* a reference; NULL until admitted */
    bool up_ready;     /* audio may go upstream now */
    conn_id_t up_conn; /* the upstream's socket while ready: audio and events go straight to it,
                        * and its events come straight here (upstream.h); 0 when not ready */
    char *up_buf;      /* scratch: an input_audio_buffer.append being built */
    size_t up_cap;
    uint8_t *dec; /* scratch: a decoded output audio delta */
    size_t dec_cap;
    bool ready_sent;    /* session.ready was sent to the client */
    resample_t *rs_in;  /* client rate -> 24 kHz, NULL at 24 kHz */
    resample_t *rs_out; /* 24 kHz -> client rate */
    int16_t *scratch;
    size_t scratch_cap;
    /* Client audio while the upstream is not ready: the newest 2 s, oldest dropped first. */
    net_ws_binary_msg_t **prebuf;
    size_t n_prebuf;
    size_t prebuf_bytes;
    cJSON *pending[SESSION_PENDING_MAX]; /* client events while not ready */
    int n_pending;

    /* Responses: at most one active; one client response.create may wait for it. */
    bool response_active;
    bool create_waiting;

    /* Playback of the current assistant item (the barge-in clock, SPEC 6). */
    char play_item[64];
    uint64_t item_bytes;     /* 24 kHz audio received for it */
    bool item_audio_done;    /* response.output_audio.done seen for it */
    uint64_t first_audio_ns; /* when its first audio went to the client */
    bool played_reported;
    uint64_t played_ms;         /* the client's last audio.played position */
    uint64_t played_at_ns;      /* when that report arrived */
    uint64_t speech_stopped_ns; /* for switchboard_first_audio_seconds; 0 when not waiting */
    bool first_audio_stored;    /* the call record has its first-audio latency (SPEC 15) */

    /* Tools (voicetools.c) and the call record. */
    char record_id[CALL_ID_MAX + 1]; /* "" until the call record is opened */
    vcall_t *calls;                  /* function calls in flight */
    int n_calls;
    bool need_create; /* a function output was sent: one response.create is due */
    char seen_calls[SESSION_SEEN_CALLS][CALL_ID_MAX + 1];
    int seen_next;
    uint64_t next_cookie;
    cJSON *history; /* [{role, content}]: the conversation so far, for the supervisor */
    char openai_session[64];
    char request_id[64];
    int64_t input_tokens;
    int64_t output_tokens;
} session_t;

/* session.c */
void session_close(session_t *s, ws_close_t close, end_reason_t why);

/* Spawns a session actor for a new connection (either transport); NULL when refused. */
session_t *session_spawn(const voice_deps_t *deps);
/* relay.c */
/* Client audio in: resampled to 24 kHz, sent upstream or kept while not ready. Takes m. */
void relay_client_audio(session_t *s, net_ws_binary_msg_t *m);
/* A validated client event for the upstream (held while not ready). Takes ev. */
void relay_client_event(session_t *s, cJSON *ev);
/* audio.played from the client. */
void relay_audio_played(session_t *s, const cJSON *ev);
void relay_upstream_state(session_t *s, const upstream_state_msg_t *m);
/* An upstream event, from the upstream actor or (ready) straight from the socket. */
void relay_upstream_event(session_t *s, cJSON *ev);
/* Output audio of item_id: PCM16 at 24 kHz, or on a phone call the base64 text of μ-law. */
void relay_upstream_audio(session_t *s, const char *item_id, const uint8_t *data, size_t len,
                          uint64_t t_in_ns);
/* A text message from the upstream's socket, routed here while ready. Returns true when it
 * took m (passed on to the upstream actor). */
bool relay_upstream_text(session_t *s, net_ws_text_msg_t *m);
/* An audio delta net read from the upstream's socket without a tree (NET_WSC_FAST_AUDIO). */
void relay_upstream_fast(session_t *s, net_ws_binary_msg_t *m);
/* A client event for the upstream: straight to its socket while ready, else through the
 * upstream actor (which drops it when not ready). Takes ev. */
void relay_send_up(session_t *s, cJSON *ev);
/* Starts the upstream after admission; false when it could not be spawned. */
bool relay_start(session_t *s);
/* Frees what relay.c owns in s. */
void relay_free(session_t *s);

#endif
