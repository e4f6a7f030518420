/*
 * The Realtime session of the simulator, shared by sim_rt.c (client events, input audio, the
 * conversation), sim_session.c (the session configuration) and sim_resp.c (responses).
 * Thread: the simulator's only thread.
 */
#ifndef SB_BENCH_SIM_RT_H
#define SB_BENCH_SIM_RT_H

#include "bench/sim/sim.h"
#include "bench/sim/sim_audio.h"

#define SIM_RT_DEFAULT_MODEL "gpt-realtime"
#define SIM_RT_ITEMS_MAX     128 /* the oldest conversation items are forgotten past this */

typedef enum {
    SIM_ITEM_USER = 0,
    SIM_ITEM_ASSISTANT,
    SIM_ITEM_SYSTEM,
    SIM_ITEM_CALL,
    SIM_ITEM_OUTPUT,
} sim_item_kind_t;

typedef struct sim_item {
    char id[SIM_ID_MAX];
    sim_item_kind_t kind;
    bool from_audio; /* USER: a turn made from input audio; ASSISTANT: spoken (has audio) */
    bool answered;   /* USER, OUTPUT: a response has used it */
    bool scripted;   /* USER from audio: its transcript came from --transcripts (real words) */
    char *text;      /* user text or transcript, assistant transcript, call arguments,
                      * function output (malloc'd, never NULL) */
    char call_id[SIM_ID_MAX];
    char name[64];
    uint64_t audio_bytes;  /* ASSISTANT: audio sent for it */
    uint32_t bytes_per_ms; /* ASSISTANT: of that audio's format */
} sim_item_t;

typedef struct sim_resp sim_resp_t;

typedef struct sim_rt {
    sim_conn_t *conn;
    char id[SIM_ID_MAX];
    char conv_id[SIM_ID_MAX];
    char model[64];
    sim_record_t *rec; /* NULL once the store has evicted it */
    cJSON *session;    /* the effective configuration, as session.updated shows it */
    /* Derived from session by sim_session_derive. */
    sim_fmt_t in_fmt, out_fmt;
    bool text_only; /* output_modalities ["text"] */
    bool vad_on, create_response, interrupt_response;
    uint32_t prefix_ms, silence_ms;
    bool has_navigate;
    bool has_transfer; /* transferCall and endCall declared (a phone call's session) */
    bool has_end_call;
    const cJSON *section_enum; /* navigate's section enum, inside session, or NULL */
    /* The conversation, oldest first. */
    sim_item_t *items;
    uint32_t n_items, cap_items;
    uint64_t input_audio_ms; /* user audio committed so far (for usage) */
    /* Input audio. */
    uint64_t buf_bytes; /* appended since the last commit or clear */
    int carry;          /* odd PCM16 byte waiting for its pair, or -1 */
    sim_vad_t vad;
    char speech_item[SIM_ID_MAX]; /* the user item of the turn the VAD is hearing */
    uint32_t vad_turns;           /* VAD turns ended so far: indexes --transcripts */
    /* Responses and faults. */
    sim_resp_t *resp; /* the active response, or NULL */
    uint64_t expire_at_ns;
    int fault_slot; /* index among the targets of --faults (sim_fault.c), -1 when not one */
    sbuf_t out;     /* where events are built */
} sim_rt_t;

/* ---- sim_rt.c: helpers for building events --------------------------------------------------- */

/* Starts an event in rt->out: {"type":"<type>","event_id":"event_…" (no closing brace). */
void sim_rt_event_begin(sim_rt_t *rt, const char *type);
/* Closes the event with '}' and sends it. */
void sim_rt_event_send(sim_rt_t *rt);
/* Sends error {type:"invalid_request_error", code, message, param, event_id}; param and
 * client_event_id may be NULL. */
void sim_rt_error(sim_rt_t *rt, const char *code, const char *message, const char *param,
                  const char *client_event_id);

/* Appends a conversation item (id generated when NULL) and returns it; the pointer is valid
 * until the next add or delete. */
sim_item_t *sim_rt_item_add(sim_rt_t *rt, sim_item_kind_t kind, const char *id, const char *text);
sim_item_t *sim_rt_item_find(sim_rt_t *rt, const char *id);
/* The id of the newest item, or NULL for an empty conversation. */
const char *sim_rt_last_item_id(const sim_rt_t *rt);
/* Appends the item as the API shows it in conversation.item.* and response.output_item.*
 * events; status is "completed", "in_progress" or "incomplete". */
void sim_rt_item_json(sbuf_t *b, const sim_item_t *it, const char *status);

/* Sends error session_expired and closes with 1001 (--expire-after-ms, --faults expire). */
void sim_rt_expire(sim_rt_t *rt);

/* ---- sim_fault.c ----------------------------------------------------------------------------- */

/* The session is configured: --faults may pick it (no-op without --faults). */
void sim_fault_target_add(sim_rt_t *rt);
/* The session is closing or has been hit: --faults no longer picks it. */
void sim_fault_target_remove(sim_rt_t *rt);

/* ---- sim_session.c --------------------------------------------------------------------------- */

/* The configuration a new session starts with (GA shape, as session.created shows it). */
cJSON *sim_session_default(const char *id, const char *model);

/*
 * Checks a session.update's session object. Returns 0, or -1 with *code, param and message
 * set: missing_required_parameter (session.type), unknown_parameter (a field GA does not know,
 * such as the beta "modalities"), invalid_value (a bad format or modality).
 */
int sim_session_check(const cJSON *upd, const char **code, char *param, size_t param_sz,
                      char *message, size_t message_sz);

/* Merges the fields present in upd into session (audio.input/output one level deeper). */
void sim_session_merge(cJSON *session, const cJSON *upd);

/* Recomputes rt's derived settings from rt->session. */
void sim_session_derive(sim_rt_t *rt);

/* ---- sim_resp.c ------------------------------------------------------------------------------ */

/* Echo mode: returns one append as response.output_audio.delta, starting a response first
 * when none is active. b64 is the client's base64 (n characters); bytes is its decoded size. */
void sim_resp_echo(sim_rt_t *rt, const char *b64, size_t n, size_t bytes);

/* Finishes the active response normally (echo: on commit). No-op when none is active. */
void sim_resp_finish(sim_rt_t *rt);

/*
 * response.create from the client: error conversation_already_has_active_response when one is
 * active; otherwise starts a response that answers the conversation. params is the event's
 * optional "response" object.
 */
void sim_resp_create(sim_rt_t *rt, const cJSON *params, const char *client_event_id);

/* Starts a response after a VAD turn (server VAD with create_response). */
void sim_resp_auto(sim_rt_t *rt);

/* Cancels the active response (reason turn_detected or client_cancelled). */
void sim_resp_cancel(sim_rt_t *rt, const char *reason);

/* True when item_id is the item of the active response; *bytes is its audio sent so far. */
bool sim_resp_item_audio(const sim_rt_t *rt, const char *item_id, uint64_t *bytes);

/* Paces the active response; returns its next deadline or 0. */
uint64_t sim_resp_tick(sim_rt_t *rt, uint64_t now_ns);

/* Frees the active response without sending anything (the socket has closed). */
void sim_resp_free(sim_rt_t *rt);

#endif
