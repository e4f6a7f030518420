/*
 * phonecall: the phone transport of a voice session (SPEC 5.5). A session whose `phone` is set
 * talks Twilio Media Streams instead of the browser protocol of /ws: it is admitted by the
 * `start` message's stream token, passes μ-law through as base64 both ways, sends each audio
 * chunk followed by a mark `<item_id>:<ms>` whose echo is the playback clock, barges in with
 * `clear` and a truncate at the last echoed position, turns keypad digits into a user text item,
 * and runs transferCall and endCall. Everything the browser transport sends its client (relayed
 * events, tool.call, session.ready) is not sent. Internal to agents/voice.
 * Thread: the session's worker.
 */
#ifndef SB_AGENTS_VOICE_PHONECALL_H
#define SB_AGENTS_VOICE_PHONECALL_H

#include <stdbool.h>
#include <stddef.h>

#include "agents/voice/session_int.h"

typedef struct phonecall phonecall_t;

/* The connection opened: `start` must come within PHONECALL_START_MS. */
void phonecall_open(session_t *s, const net_ws_open_msg_t *m);
/* A Media Stream message (JSON text) from Twilio. */
void phonecall_text(session_t *s, net_ws_text_msg_t *m);
/* A media or mark message net's fast reader read (NET_MSG_WS_FAST); takes m. */
void phonecall_fast(session_t *s, net_ws_binary_msg_t *m);
/* A frame net answered itself; refused ones (not JSON) are counted as dropped. */
void phonecall_activity(session_t *s, const net_ws_activity_msg_t *m);
/* Its timers (SESSION_MSG_PHONE_*). */
void phonecall_timer(session_t *s, uint32_t type);
/* The call record was opened: it gets channel phone, from, to and the CallSid. */
void phonecall_record(session_t *s);
/* A chunk of assistant audio (base64 μ-law of s->play_item, already counted in item_bytes):
 * `media` then its mark. */
/* Output audio: the upstream's base64 μ-law text, len bytes, as a Twilio media message. */
void phonecall_audio_out(session_t *s, const char *b64, size_t len);
/* The current item's audio is complete: the mark `done:<item_id>`. */
void phonecall_audio_done(session_t *s);
/* The caller started speaking: clear and truncate when audio is still queued at Twilio. */
void phonecall_barge_in(session_t *s);
/* Upstream events that drive transferCall and endCall (response.created, response.done). */
void phonecall_upstream_event(session_t *s, const char *type);
/* transferCall or endCall was called (c is in flight). Returns NULL when it took c over, or the
 * error output to fail c with. */
const char *phonecall_tool(session_t *s, struct vcall *c);
/* The Twilio REST answer of a transfer. */
void phonecall_fetch_done(session_t *s, const net_fetch_done_msg_t *m);
/* The supervisor's context for a call: context, plus the caller's number on a phone call
 * (malloc'd). */
char *phonecall_context(const session_t *s, const char *context);
/* The end reason of a phone stream that closed without our asking (caller_hung_up). */
bool phonecall_hung_up(const session_t *s, const net_ws_closed_msg_t *m);
/* Frees the transport (the session stops). */
void phonecall_free(session_t *s);

#endif
