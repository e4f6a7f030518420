/*
 * twcall: the bench playing Twilio for one phone call (--twilio, SPEC 5.5 and 11). It rings
 * the service's webhook (a form-encoded POST signed with X-Twilio-Signature), reads the TwiML it
 * answers for the stream URL and the <Parameter>s, and then speaks the bidirectional Media
 * Streams protocol as Twilio does: `connected`, `start` with the parameters as
 * customParameters, a `media` message every frame (μ-law, sequenceNumber, chunk and timestamp
 * as strings), and `stop` when the call ends. The service's `media` is played at real time on a
 * per-call playback clock, and each of its marks is echoed once the audio sent before it has
 * played, or at once when a `clear` drops that audio.
 *
 * The message builders and the inbound scanner are pure: they touch only the buffers and the
 * twcall_t they are given (no lws, no clock). The load thread decides when to write.
 *
 * CONTRACT
 * - A twcall_t belongs to its session_t and has the same owner: the launcher fills the call's
 *   ids, stream path and `start` message (twcall_new(), twcall_twiml()); the hand-off to the
 *   load thread (loadthr_add_session_mp) orders those writes before the load thread's reads;
 *   from then on only the load thread touches it.
 * Thread: the owner of the session.
 */
#ifndef SB_BENCH_TWCALL_H
#define SB_BENCH_TWCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

#define TWCALL_SID_MAX           40  /* CallSid, streamSid: "CA"/"MZ" and 32 characters */
#define TWCALL_MARK_NAME_MAX     128 /* longer mark names are echoed cut (the service sends ~50) */
#define TWCALL_ULAW_BYTES_PER_MS 8
/* Room for one message of the bench besides its payload or mark name: the JSON around them, the
 * ids and numbers (all bounded), and slack. */
#define TWCALL_MSG_OVERHEAD 320

/* A mark the service sent, waiting for the audio before it to play. */
typedef struct twcall_mark {
    uint64_t due_ns; /* when the audio queued before it has played */
    uint16_t len;
    char name[TWCALL_MARK_NAME_MAX];
} twcall_mark_t;

typedef struct twcall {
    char call_sid[TWCALL_SID_MAX];
    char stream_sid[TWCALL_SID_MAX];
    char *path;   /* path and query of the TwiML's stream URL */
    char *start;  /* the `start` message's JSON */
    uint32_t seq; /* the last sequenceNumber sent (`start` is 1) */
    bool opened;  /* `connected` and `start` are written */
    bool stopped; /* `stop` is written */

    /* The playback clock: the service's audio is queued and played at real time. */
    uint64_t play_end_ns; /* when the audio queued so far has played (0: nothing queued) */
    twcall_mark_t *marks; /* a ring of marks waiting to be echoed, oldest at head */
    uint32_t head, n_marks, cap_marks;

    /* Counted for the report. */
    uint64_t media_in;     /* media messages received */
    uint64_t marks_echoed; /* marks echoed back */
    uint64_t clears;       /* clear messages received */
    uint64_t warmup;       /* frames sent before the first audio came back: not timed */
} twcall_t;

twcall_t *twcall_new(uint32_t idx, const char *run_id);
void twcall_free(twcall_t *tw);

/* ---- The webhook (the launcher) -------------------------------------------------------------- */

/*
 * Appends the webhook's form body for this call to body (AccountSid, CallSid, From, To, …, as
 * Twilio sends them) and writes its X-Twilio-Signature (base64 of HMAC-SHA1 with token over
 * signed_url and the sorted parameters) as a header line "X-Twilio-Signature: …" into sig_hdr.
 */
void twcall_ring(const twcall_t *tw, uint32_t idx, const char *token, const char *signed_url,
                 sbuf_t *body, char *sig_hdr, size_t sig_hdr_len);

/*
 * Reads the webhook's TwiML answer: <Connect><Stream url="ws(s)://…"> and its <Parameter>s.
 * Sets tw->path (the URL's path and query) and tw->start (the `start` message with the
 * parameters as customParameters). Returns 0, or -EINVAL with why (at most why_len bytes) set:
 * the TwiML says something else (busy: <Say>…<Hangup/>), or is not TwiML.
 */
int twcall_twiml(twcall_t *tw, const char *xml, size_t len, char *why, size_t why_len);

/* ---- Writing (the load thread) ------------------------------------------------------------- */

/*
 * Each twcall_put_* appends one masked client text frame to out at *at (advancing it); out
 * must have room for the message plus WSF_HEADER_MAX. Sequence numbers are given as written.
 */
void twcall_put_open(twcall_t *tw, uint8_t *out, size_t *at);
/* media carrying the n bytes of μ-law at ulaw: chunk is its 1-based number, timestamp_ms its
 * time since the stream started. */
void twcall_put_media(twcall_t *tw, uint8_t *out, size_t *at, const uint8_t *ulaw, size_t n,
                      uint32_t chunk, uint64_t timestamp_ms);
/* Echoes the marks due by now, as many as fit before out + cap; returns how many. */
size_t twcall_put_marks(twcall_t *tw, uint8_t *out, size_t *at, size_t cap, uint64_t now);
void twcall_put_stop(twcall_t *tw, uint8_t *out, size_t *at);
/* Most bytes one media message of n μ-law bytes takes (frame header included). */
size_t twcall_media_max(size_t n);

/* When the oldest waiting mark is due; UINT64_MAX when none waits. */
uint64_t twcall_next_mark_ns(const twcall_t *tw);

/* ---- Reading (the load thread) ------------------------------------------------------------- */

typedef enum twcall_in {
    TWCALL_IN_INVALID = 0, /* not a message of the protocol */
    TWCALL_IN_OTHER,
    TWCALL_IN_MEDIA,
    TWCALL_IN_MARK,
    TWCALL_IN_CLEAR,
} twcall_in_t;

/* One message of the service, read. */
typedef struct twcall_msg {
    twcall_in_t type;
    const char *str; /* MEDIA: the base64 payload; MARK: the mark's name (not terminated) */
    size_t str_len;
    void *root_; /* the slow path's tree; twcall_msg_free() releases it */
} twcall_msg_t;

/*
 * Reads one message. The fast path reads the compact JSON the service writes without building
 * a tree (the strings point into json); anything else goes through cJSON. Always call
 * twcall_msg_free() afterwards.
 */
void twcall_parse(const char *json, size_t len, twcall_msg_t *m);
void twcall_msg_free(twcall_msg_t *m);

/* n bytes of μ-law arrived at now: they play after what is queued. */
void twcall_played(twcall_t *tw, size_t n, uint64_t now);
/* A mark arrived: it is echoed once the audio queued before it has played (twcall_put_marks). */
void twcall_on_mark(twcall_t *tw, const char *name, size_t len, uint64_t now);
/* A clear: the queued audio is dropped, and every waiting mark is due at once. */
void twcall_on_clear(twcall_t *tw, uint64_t now);

#endif
