/*
 * events: the pure parsing of voice-session events (SPEC 5.1, 6, 14), shared by the session and
 * upstream actors and by the fuzz targets. No I/O, no globals. Thread: any.
 */
#ifndef SB_AGENTS_EVENTS_H
#define SB_AGENTS_EVENTS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EVENTS_ITEM_OK       0
#define EVENTS_ITEM_INVALID  -1 /* not one user message with one input_text part: invalid_event */
#define EVENTS_ITEM_TOO_LONG -2 /* text over the limit in code points: text_too_long */

/* Checks a client conversation.item.create event; returns one of EVENTS_ITEM_*. */
int events_check_client_item(const cJSON *ev, size_t max_chars);

/*
 * The event to send upstream for a client event the session accepted (SPEC 5.1), built afresh with
 * the documented fields only: the type, and for conversation.item.create the one user message
 * with its input_text. Client-chosen ids (event_id, item.id, previous_item_id), response
 * overrides and unknown fields never reach the upstream. ev has a string `type`, and an item event
 * has passed events_check_client_item. The caller owns the result (cJSON_Delete).
 */
cJSON *events_client_upstream(const cJSON *ev);

/*
 * A conversation.item.create of one message: role "user" (its text as input_text) or
 * "assistant" (output_text). Used for the client's typed text and for the history replayed into
 * a recycled upstream. The caller owns the result.
 */
cJSON *events_item_create(bool user, const char *text);

/* The GA name the client sees for an upstream event type (beta aliases renamed), or NULL when the
 * event is not relayed to clients. */
const char *events_relay_name(const char *type);

/* True for an output audio delta (GA name or beta alias). */
int events_is_audio_delta(const char *type);


#endif
