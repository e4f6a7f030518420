/*
 * switchboard-sim: an offline simulator of the OpenAI Realtime (GA) WebSocket API and of Chat
 * Completions, for the demo, the integration tests and the load benchmarks (SPEC 11).
 *
 * CONTRACT
 * - One thread. A single libwebsockets context runs on a libuv loop; HTTP and WebSocket share
 *   one port whose listening socket we own (accept4 + lws adoption, as in net/DESIGN.md).
 *   Every function declared here runs on that thread; nothing is shared with other threads.
 * - A connection (sim_conn_t) travels as its wsi's opaque pointer. It owns one uv timer, which
 *   serves every deadline of the connection (delayed frames, response pacing, faults, delayed
 *   HTTP answers), and it is freed in that timer's close callback, after WSI_DESTROY.
 * - Frames to a WebSocket leave in the order they were queued. A frame is written at once when
 *   nothing is queued before it and it is due; otherwise it waits for the writeable callback
 *   or for the timer.
 *
 * Files: sim.c (command line, loop, listener, lws callback), sim_conn.c (frames, timers,
 * closes), sim_http.c (HTTP routes and the upgrade check), sim_chat.c (Chat Completions rules),
 * sim_record.c (the /sim/events recording), sim_rt.c (Realtime client events and session),
 * sim_session.c (the session configuration), sim_resp.c (Realtime responses), sim_audio.c (VAD,
 * speech synthesis, G.711), sim_text.c (deterministic reply rules), sim_extract.c (the
 * tenant_config answer of switchboard-onboard), sim_fault.c (random faults, --faults). DESIGN.md tells the story.
 */
#ifndef SB_BENCH_SIM_H
#define SB_BENCH_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <uv.h>

#include "base/sbuf.h"

/* ---- Configuration and counters -------------------------------------------------------------- */

typedef enum { SIM_MODE_AGENT = 0, SIM_MODE_ECHO = 1 } sim_mode_t;

typedef enum {
    SIM_CHAT_FAIL_NONE = 0,
    SIM_CHAT_FAIL_429,
    SIM_CHAT_FAIL_QUOTA,
    SIM_CHAT_FAIL_500,
    SIM_CHAT_FAIL_401,
} sim_chat_fail_t;

/* The kinds of --faults, in the order of the names --fault-kinds takes (drop,expire,429,500). */
typedef enum {
    SIM_FAULT_DROP = 0, /* a configured Realtime connection loses its TCP connection */
    SIM_FAULT_EXPIRE,   /* a configured Realtime session gets session_expired and close 1001 */
    SIM_FAULT_CHAT_429, /* the next Chat Completions request answers 429 rate_limit_exceeded */
    SIM_FAULT_CHAT_500, /* the next Chat Completions request answers 500 server_error */
    SIM_FAULT_KINDS,
} sim_fault_kind_t;

typedef struct sim_config {
    char host[128];
    int port;
    sim_mode_t mode;
    bool refuse;
    int refuse_status;
    uint32_t delay_ms;
    uint32_t drop_after_ms;
    uint32_t expire_after_ms;
    bool reject_session_update;
    sim_chat_fail_t chat_fail;
    long chat_fail_count; /* < 0: every request fails */
    uint32_t chat_delay_ms;
    uint32_t pace_x;   /* agent audio is sent at this multiple of real time */
    bool text_answers; /* echo mode: answer text turns in text, without speech */
    bool quiet;
    double faults_per_min; /* --faults: mean rate of random faults, 0 = none */
    unsigned fault_kinds;  /* --fault-kinds: a bit per sim_fault_kind_t */
    uint64_t fault_seed;   /* --fault-seed, else from the clock */
    /* --transcripts "a|b|…": the words of a session's Nth VAD turn (agent mode); an empty
     * entry, or a turn past the end, gets the made-up "(caller spoke for …)". */
    char **transcripts;
    size_t n_transcripts;
} sim_config_t;

/* Advisory counters served at GET /sim/stats. */
typedef struct sim_stats {
    uint64_t sessions_open;
    uint64_t sessions_total;
    uint64_t upgrades_rejected;
    uint64_t appends;
    uint64_t deltas;
    uint64_t responses;
    uint64_t chat_requests;
    uint64_t faults[SIM_FAULT_KINDS]; /* --faults injected so far (chat: answers served) */
} sim_stats_t;

extern sim_config_t g_sim_cfg;
extern sim_stats_t g_sim_stats;
extern uv_loop_t *g_sim_loop;

/* ---- Identifiers ----------------------------------------------------------------------------- */

#define SIM_ID_MAX 48 /* room for any id we make: a prefix of up to 8 and 22 random characters */

/* Writes prefix followed by 22 random base62 characters into dst (SIM_ID_MAX bytes). */
void sim_id(char *dst, const char *prefix);

/* ---- Connections (sim_conn.c) ---------------------------------------------------------------- */

typedef struct sim_frame {
    struct sim_frame *next;
    uint64_t due_ns;
    size_t len;
    uint16_t close_code; /* non-zero: a close frame whose reason is the payload */
    unsigned char *buf;  /* LWS_PRE bytes of headroom, then len bytes of payload */
} sim_frame_t;

/* What the upgrade check learned, handed to the session when the socket is established. */
typedef struct sim_rt_hello {
    char model[64];
    bool beta_header;
} sim_rt_hello_t;

typedef enum { SIM_CONN_HTTP = 0, SIM_CONN_WS, SIM_CONN_CLOSING } sim_conn_state_t;

struct sim_rt;
struct sim_http;

typedef struct sim_conn {
    struct lws *wsi; /* NULL once lws has destroyed it */
    uv_timer_t timer;
    uint64_t timer_at_ns; /* when the timer is due, 0 when stopped */
    sim_conn_state_t state;
    bool direct_ok; /* frames may be written outside the writeable callback */
    sim_frame_t *out_head, *out_tail;
    size_t out_bytes;
    uint64_t drop_at_ns;   /* --drop-after-ms deadline, 0 when none */
    sbuf_t rx;             /* reassembly of a message that spans several RECEIVE chunks */
    struct sim_http *http; /* the HTTP request in progress, or NULL */
    struct sim_rt *rt;     /* the Realtime session, WebSocket connections only */
    sim_rt_hello_t hello;  /* from the upgrade request, for sim_rt_open */
} sim_conn_t;

/* Creates a connection with its timer; the caller hands it to lws as the opaque pointer. */
sim_conn_t *sim_conn_new(void);

/* Called at WSI_DESTROY: frees the queue and the request state and closes the timer, whose
 * close callback frees the connection. The session must have been closed already. */
void sim_conn_destroy(sim_conn_t *c);

/*
 * Appends LWS_PRE bytes of headroom to an empty buffer, so that a message built after them can
 * be handed to lws_write without a copy. Every message passed to sim_conn_send is built so.
 */
void sim_conn_msg_begin(sbuf_t *b);

/*
 * Sends the message in b (built after sim_conn_msg_begin) as one text frame, due after the
 * configured --delay-ms. The buffer is left empty and reusable (its storage may have been
 * taken). Messages to a connection that is not an open WebSocket are dropped.
 */
void sim_conn_send(sim_conn_t *c, sbuf_t *b);

/* Queues a close frame (code and reason) after everything already queued. */
void sim_conn_close(sim_conn_t *c, uint16_t code, const char *reason);

/* Drops the TCP connection at once, without a close frame (--drop-after-ms). */
void sim_conn_drop(sim_conn_t *c);

/* Makes sure the timer fires no later than at_ns (monotonic). Earlier deadlines win. */
void sim_conn_wake_at(sim_conn_t *c, uint64_t at_ns);

/* LWS_CALLBACK_SERVER_WRITEABLE: writes due frames; returns -1 to close the connection. */
int sim_conn_writeable(sim_conn_t *c);

/* ---- HTTP (sim_http.c) ----------------------------------------------------------------------- */

/* The lws callback for everything HTTP. Returns false for reasons it does not handle;
 * otherwise true, with *rc what the lws callback should return. */
bool sim_http_callback(struct lws *wsi, enum lws_callback_reasons reason, sim_conn_t *c, void *in,
                       size_t len, int *rc);

/* The connection's timer fired: sends a delayed HTTP answer when it is due. Returns the next
 * deadline of the HTTP side, or 0. */
uint64_t sim_http_tick(sim_conn_t *c, uint64_t now_ns);

/* Frees the request state of a connection (at WSI_DESTROY). */
void sim_http_free(sim_conn_t *c);

/* ---- Chat Completions (sim_chat.c) ----------------------------------------------------------- */

/*
 * Answers one POST /v1/chat/completions. has_bearer says whether the request carried a
 * non-empty bearer token. Sets *status, appends "Name: value\r\n" header lines to headers, the
 * body to body and the content type to *ctype.
 */
void sim_chat_handle(bool has_bearer, const char *body, size_t len, int *status, sbuf_t *headers,
                     sbuf_t *body_out, const char **ctype);

/* Appends an OpenAI REST error body {"error":{message,type,param,code}}; NULL code or param is
 * written as null. */
void sim_chat_error_body(sbuf_t *b, const char *message, const char *type, const char *param,
                         const char *code);

/* ---- Random faults (sim_fault.c) ----------------------------------------------------------- */

/* Parses a comma-separated list of fault kinds ("drop,expire,429,500") into a mask of
 * 1 << sim_fault_kind_t. Returns 0, or -1 for an unknown name or an empty list. */
int sim_fault_parse_kinds(const char *s, unsigned *mask);

/* Starts the fault timer on g_sim_loop when --faults is given, and prints the rate, the kinds
 * and the seed to stderr; otherwise does nothing. */
void sim_fault_start(void);

/* Stops and closes the fault timer (the first step of shutdown). */
void sim_fault_stop(void);

/* Frees what the injector still holds (after the loop has ended). */
void sim_fault_shutdown(void);

/* The chat failure a fault has armed for the next Chat Completions request, consumed and
 * counted; SIM_CHAT_FAIL_NONE when none is armed. */
sim_chat_fail_t sim_fault_take_chat(void);

/* ---- Recording (sim_record.c) ---------------------------------------------------------------- */

typedef struct sim_record sim_record_t;

/*
 * Starts the record of a session (or of a refused upgrade, http_status other than 101). The
 * store keeps the newest SIM_RECORD_SESSIONS records; when a live session's record is evicted,
 * *owner (the session's pointer to it) is set to NULL. owner may be NULL for closed records.
 */
sim_record_t *sim_record_open(const char *id, const char *model, bool authorization_ok,
                              int http_status, bool beta_header, sim_record_t **owner);
/* Records one client event: json (malloc'd, valid JSON text) becomes the record's. With a
 * NULL record the text is freed. */
void sim_record_event(sim_record_t *r, char *json);
/* Records an append as its decoded audio byte count only. */
void sim_record_append(sim_record_t *r, size_t bytes);
/* Marks the session closed and detaches its owner. */
void sim_record_close(sim_record_t *r);
/* Appends the JSON document served at GET /sim/events. */
void sim_record_json(sbuf_t *b);
/* DELETE /sim/events: forgets closed sessions and the events of open ones. */
void sim_record_clear(void);
/* Frees everything at exit. */
void sim_record_shutdown(void);

/* ---- Realtime sessions (sim_rt.c) ------------------------------------------------------------ */

/* The WebSocket is established: creates the session (from c->hello) and sends
 * session.created and conversation.created. */
void sim_rt_open(sim_conn_t *c);

/* One whole text message from the client. */
void sim_rt_on_text(sim_conn_t *c, const char *s, size_t len);

/* One whole binary message from the client (not part of the protocol: answered with error). */
void sim_rt_on_binary(sim_conn_t *c, size_t len);

/* The connection's timer fired: runs due session work; returns the next deadline or 0. */
uint64_t sim_rt_tick(sim_conn_t *c, uint64_t now_ns);

/* The WebSocket has closed: frees the session. */
void sim_rt_close(sim_conn_t *c);

#endif
