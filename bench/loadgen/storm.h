/*
 * storm: the --tool-storm sessions (SPEC 3 "Latency isolation", 11). Besides the N audio
 * sessions, M sessions keep the service's supervisor runs busy, so that the audio figures show
 * whether tool work delays audio. A storm session streams no microphone audio; it repeats one
 * turn for the whole run:
 *
 *   1. writes {"type":"conversation.item.create","item":{…"input_text","text":<--storm-text>}}
 *      and then {"type":"response.create"};
 *   2. waits for the terminal tool.call (completed, failed or timeout) of the top-level
 *      getNextResponseFromSupervisor call: the supervisor turn time runs from the write of the
 *      item to this event;
 *   3. waits for the response created after that event (the voice model speaking the
 *      supervisor's answer) and for its response.done;
 *   4. begins the next turn at once.
 *
 * Every tool.call event is counted by status (nested calls included). A turn still open
 * STORM_TURN_TIMEOUT_S after its item was written counts as timed out, and the next one begins
 * (a late end of its supervisor call is told apart by call_id). A calling
 * response that ends without a supervisor call (a --storm-text the voice model answers by
 * itself) counts as "no tool" and the next turn begins. The assistant speech a storm session
 * receives is counted in bytes and kept out of the latency figures. Storm sessions are not
 * waited for: they run until the load threads stop, after the audio sessions are done.
 *
 * CONTRACT
 * - storm_init() runs on the main thread before any load thread starts; the messages it builds
 *   are read-only afterwards (pthread_create orders the writes before every read).
 * - storm_sess_new/free: main thread. storm_ready, storm_sent, storm_on_event, storm_on_audio
 *   and storm_tick: the session's owner, its load thread. They never call libwebsockets: when
 *   one has queued a control message in s->ctl it returns true, and the caller asks for a
 *   writeable callback.
 * - storm_print and storm_json: main thread, after every other thread has been joined.
 */
#ifndef SB_BENCH_STORM_H
#define SB_BENCH_STORM_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/loadgen/proto.h"
#include "bench/loadgen/session.h"

#define STORM_TOOL           "getNextResponseFromSupervisor"
#define STORM_TURN_TIMEOUT_S 30 /* the service's tool deadline (15 s by default) plus speech */

typedef struct storm_sess storm_sess_t;

/* Builds the two messages of a turn from g_cfg.storm_text. Thread: main. */
void storm_init(void);

/* Frees what storm_init built. Thread: main, after the joins. */
void storm_shutdown(void);

/* The longest control message a storm session writes, in bytes (for the write buffer). */
size_t storm_ctl_max(void);

storm_sess_t *storm_sess_new(void);
void storm_sess_free(storm_sess_t *st);

/* s became ready (session.ready): counts it and queues its first turn. Returns true. */
bool storm_ready(session_t *s);

/* The control message s->ctl pointed to has just been written: queues the next, if any. */
void storm_sent(session_t *s, uint64_t now_ns);

/* A text event that concerns turns (tool.call, response.created, response.done). Returns true
 * when it queued the next turn. */
bool storm_on_event(session_t *s, const proto_event_t *ev, uint64_t now_ns);

/* A binary message (assistant speech) of len bytes arrived. */
void storm_on_audio(session_t *s, size_t len);

/* From the load thread's pacing tick: ends a turn past its deadline. Returns true when it
 * queued the next turn. */
bool storm_tick(session_t *s, uint64_t now_ns);

/* Prints the storm's figures (nothing when n is 0). */
void storm_print(const session_t *storm, int n, FILE *out);

/* The storm's figures as a JSON object, or JSON null when n is 0. The caller owns it. */
cJSON *storm_json(const session_t *storm, int n);

#endif
