/*
 * twilio: the pure parts of Twilio's voice protocols (SPEC 5.5): the webhook's form-encoded
 * body, the X-Twilio-Signature check, the TwiML answers, and the JSON messages of a bidirectional
 * Media Stream. No I/O, no globals, no actors: unit tested and fuzzed (tests/fuzz/fuzz_twilio.c).
 * Thread: any.
 */
#ifndef SB_AGENTS_PHONE_TWILIO_H
#define SB_AGENTS_PHONE_TWILIO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

#define TWILIO_FORM_MAX_FIELDS   64    /* a webhook with more fields is refused */
#define TWILIO_PAYLOAD_MAX       16384 /* largest media.payload accepted (base64 characters) */
#define TWILIO_SIG_B64_LEN       28    /* base64 of a 20-byte HMAC-SHA1 */
#define TWILIO_ULAW_BYTES_PER_MS 8     /* μ-law at 8 kHz: the mark clock's unit */

/* One decoded name=value pair of a form body. */
typedef struct twilio_field {
    char *name;
    char *value;
} twilio_field_t;

/* A parsed application/x-www-form-urlencoded body. */
typedef struct twilio_form {
    twilio_field_t fields[TWILIO_FORM_MAX_FIELDS];
    size_t n;
} twilio_form_t;

/*
 * Parses len bytes of a form body ("a=1&b=x+y%21"; '+' is a space, %XX a byte; empty pieces
 * between '&' are skipped; a piece without '=' has the value ""). The fields keep their order.
 * Returns 0, or -EINVAL for a bad escape, a decoded NUL or more than TWILIO_FORM_MAX_FIELDS
 * fields (form is then empty). Free with twilio_form_free() either way.
 */
int twilio_form_parse(twilio_form_t *form, const char *body, size_t len);
void twilio_form_free(twilio_form_t *form);
/* The value of the first field called name, or NULL. */
const char *twilio_form_get(const twilio_form_t *form, const char *name);

/*
 * X-Twilio-Signature for a POST to url (the full URL Twilio was given, query included) with the
 * form's fields: base64(HMAC-SHA1(auth_token, url + each field's name and value, sorted by name,
 * then by value)). Writes TWILIO_SIG_B64_LEN characters and a NUL into out.
 */
void twilio_signature(const char *auth_token, const char *url, const twilio_form_t *form,
                      char out[TWILIO_SIG_B64_LEN + 1]);
/* header equals the signature above (constant-time in the signature's bytes); NULL is false. */
bool twilio_signature_ok(const char *auth_token, const char *url, const twilio_form_t *form,
                         const char *header);

/* A TwiML parameter of <Stream>. */
typedef struct twiml_param {
    const char *name;
    const char *value;
} twiml_param_t;

/* <Response><Connect><Stream url="stream_url"> with the parameters </Stream></Connect></Response>,
 * nothing after <Connect>: closing the stream ends the call. */
void twiml_connect(sbuf_t *b, const char *stream_url, const twiml_param_t *params, size_t n);
/* <Response><Say>text</Say><Hangup/></Response>. */
void twiml_say_hangup(sbuf_t *b, const char *text);
/* <Response><Dial>number</Dial></Response> (transferCall). */
void twiml_dial(sbuf_t *b, const char *number);

/* Appends s to b form-encoded (RFC 3986 unreserved kept, everything else %XX). */
void twilio_form_encode(sbuf_t *b, const char *s);

/* ---- Media Stream messages ------------------------------------------------------------------ */

typedef enum twilio_event {
    TWILIO_EV_MALFORMED = -1, /* not a message of the protocol: counted and dropped */
    TWILIO_EV_UNKNOWN = 0,    /* an event this side does not use: ignored */
    TWILIO_EV_CONNECTED,
    TWILIO_EV_START,
    TWILIO_EV_MEDIA,
    TWILIO_EV_MARK,
    TWILIO_EV_DTMF,
    TWILIO_EV_STOP,
} twilio_event_t;

/* What a message says; the strings point into the cJSON it was read from. */
typedef struct twilio_msg {
    twilio_event_t event;
    const char *reason; /* when MALFORMED: the metric's reason label */
    int64_t seq;        /* sequenceNumber, -1 when absent */
    const char *stream_sid;
    /* start */
    const char *call_sid;
    const char *account_sid;
    const cJSON *params; /* start.customParameters (an object), NULL when absent */
    /* media */
    const char *payload; /* base64 μ-law, checked: canonical base64, 1..TWILIO_PAYLOAD_MAX */
    size_t payload_len;
    /* mark */
    const char *mark;
    /* dtmf */
    char digit; /* 0-9, *, # */
} twilio_msg_t;

/* Reads a Media Stream message (a JSON object). Returns msg->event. */
twilio_event_t twilio_msg_parse(const cJSON *j, twilio_msg_t *msg);

/*
 * The hot messages of a stream, media and mark (100 a second per call), read without cJSON:
 * TWILIO_EV_MEDIA or TWILIO_EV_MARK when net's strict scanner (wsp_scan_event) vouches for the
 * len bytes at s as one JSON object with that event, whose media or mark object is named once, at
 * the top level, and twilio_msg_parse() would read it as that event too (a payload of canonical
 * base64, 1..TWILIO_PAYLOAD_MAX characters, never decoded; a mark with a string name). Then *seq
 * is its sequenceNumber (-1 when absent or not a decimal string) and *data, *data_len the
 * payload or the name: a span of s, the bytes twilio_msg_parse() would give. TWILIO_EV_UNKNOWN
 * for anything else: the caller parses it in full. Net's fast reader of the media route (net.h).
 */
twilio_event_t twilio_scan(const char *s, size_t len, int64_t *seq, const char **data,
                           size_t *data_len);

/* True when the len characters at s are canonical base64 (length a multiple of 4, alphabet
 * only, '=' only as one or two final characters). Nothing is decoded. */
bool twilio_b64_ok(const char *s, size_t len);
/* How many bytes the canonical base64 s of len characters decodes to, without decoding it. */
size_t twilio_b64_bytes(const char *s, size_t len);

/*
 * Reads a mark name this side sent: "<item_id>:<ms>" (item set, *ms the cumulative ms) or
 * "done:<item_id>" (*done true). Returns false for any other name. item gets at most itemlen - 1
 * characters.
 */
bool twilio_mark_parse(const char *name, char *item, size_t itemlen, uint64_t *ms, bool *done);

#endif
