/*
 * phone: phone calls through Twilio (SPEC 5.5). The webhook actor answers POST /twilio/voice
 * (signature, tenant by the `To` number, a stream token from the gate, TwiML); the protocol's
 * pure parts are in twilio.h; the media stream itself is a voice session with a phone transport
 * (agents/voice/phonecall.c). It may call agents/auth (the gate), agents/tenant and
 * agents/config.
 *
 * CONTRACT
 *   phone_spawn(), phone_enabled(): main thread (agents.c) / any thread after start-up.
 *   phone_count_*() and phone_metrics(): any thread (relaxed atomic counters, advisory).
 */
#ifndef SB_AGENTS_PHONE_PHONE_H
#define SB_AGENTS_PHONE_PHONE_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "base/sbuf.h"

#define PHONE_VOICE_PATH "/twilio/voice"
#define PHONE_MEDIA_PATH "/twilio/media"

/* Phone calls are on: SWITCHBOARD_TWILIO_AUTH_TOKEN is set. */
bool phone_enabled(void);

/* Spawns the webhook actor (the target of POST /twilio/voice) that asks gate for stream tokens;
 * NULL when the runtime refuses. */
actor_t *phone_spawn(actor_t *gate);

/* A Media Stream message dropped (reason: twilio_msg_t.reason or "invalid_json"). */
void phone_count_dropped(const char *reason);
/* Messages missing between two sequenceNumbers. */
void phone_count_gap(uint64_t n);
/* Appends switchboard_twilio_dropped_total{reason} and switchboard_twilio_sequence_gaps_total
 * (a metric_text_fn; arg unused). */
void phone_metrics(sbuf_t *out, void *arg);

#endif
