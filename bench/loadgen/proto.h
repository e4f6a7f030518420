/*
 * proto: what travels on the wire. The 24-byte header every bench frame starts with, the noise
 * that fills the rest, finding headers in returned audio, and the two text protocols: the
 * service's /ws events (SPEC 5.1) and the OpenAI Realtime GA subset used by --direct.
 *
 * Frame header, little-endian: magic "SBBN" (4 bytes), session index u32, seq u32, reserved u32
 * (0), send time u64 (CLOCK_MONOTONIC ns, stamped just before the frame is written).
 *
 * Thread: any. The functions are stateless and touch only the buffers they are given.
 */
#ifndef SB_BENCH_PROTO_H
#define SB_BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_HDR_BYTES 24
#define PROTO_MAGIC     "SBBN"
/* Noise amplitude: |sample| <= this, far below any energy VAD's speech threshold. */
#define PROTO_NOISE_PEAK 3

/* The --direct session.update: PCM16 at 24 kHz in (and the default PCM16 24 kHz out). */
#define PROTO_SESSION_UPDATE                                                                       \
    "{\"type\":\"session.update\",\"session\":{\"type\":\"realtime\",\"audio\":{\"input\":"        \
    "{\"format\":{\"type\":\"audio/pcm\",\"rate\":24000}}}}}"

/* The --twilio --direct session.update: μ-law at 8 kHz both ways, as a phone call's upstream. */
#define PROTO_SESSION_UPDATE_PCMU                                                                  \
    "{\"type\":\"session.update\",\"session\":{\"type\":\"realtime\",\"audio\":{\"input\":"        \
    "{\"format\":{\"type\":\"audio/pcmu\"}},\"output\":{\"format\":{\"type\":\"audio/pcmu\"}}}}}"

typedef struct proto_hdr {
    uint32_t session;
    uint32_t seq;
    uint64_t sent_ns;
} proto_hdr_t;

/* Fills n bytes (n even) with PCM16 noise of at most PROTO_NOISE_PEAK, from seed. */
void proto_noise_fill(uint8_t *pcm, size_t n, uint32_t seed);

/* Fills n bytes with μ-law of the same noise (each byte 0xFF or 0x7F: ±0, never 'S'). */
void proto_ulaw_noise_fill(uint8_t *ulaw, size_t n, uint32_t seed);

/* Writes the header into the first PROTO_HDR_BYTES of frame. */
void proto_hdr_write(uint8_t *frame, uint32_t session, uint32_t seq, uint64_t sent_ns);

/*
 * Finds every header in n bytes of returned PCM16 (at even offsets, so frames the service joined
 * or that come back whole are all found) and calls fn for each. Returns how many were found.
 */
typedef void (*proto_hdr_fn)(void *arg, const proto_hdr_t *h);
size_t proto_scan(const uint8_t *pcm, size_t n, proto_hdr_fn fn, void *arg);

/* Most bytes proto_append_event() writes for n bytes of PCM (no terminator counted). */
size_t proto_append_event_max(size_t n);

/*
 * Writes {"type":"input_audio_buffer.append","audio":"<base64 of pcm>"} into dst, which holds
 * proto_append_event_max(n) + 1 bytes. Returns the length, without the terminator.
 */
size_t proto_append_event(char *dst, const uint8_t *pcm, size_t n);

typedef enum {
    PROTO_EV_OTHER = 0,
    PROTO_EV_INVALID,     /* not a JSON object with a string type */
    PROTO_EV_READY,       /* session.ready (the service) */
    PROTO_EV_CREATED,     /* session.created (--direct) */
    PROTO_EV_UPDATED,     /* session.updated (--direct) */
    PROTO_EV_AUDIO_DELTA, /* response.output_audio.delta (or the beta name) */
    PROTO_EV_ERROR,
    PROTO_EV_TOOL_CALL,        /* tool.call (the service, SPEC 5.1) */
    PROTO_EV_RESPONSE_CREATED, /* response.created */
    PROTO_EV_RESPONSE_DONE,    /* response.done */
    PROTO_EV_RECONNECTING,     /* upstream.reconnecting (the service, SPEC 6 "Recycling") */
} proto_ev_type_t;

typedef struct proto_event {
    proto_ev_type_t type;
    const char *audio; /* AUDIO_DELTA: the base64 text (audio_len bytes, not terminated), in the
                          message itself or in the parsed tree */
    size_t audio_len;
    char error[128]; /* ERROR: "code: message" */
    /* TOOL_CALL: call_id, name and status ("" when absent), and whether it is nested (has a
     * parent_call_id). */
    const char *tool_call_id;
    const char *tool_name;
    const char *tool_status;
    bool tool_nested;
    const char *response_id; /* RESPONSE_*: response.id, "" when absent */
    void *root_;             /* the parsed tree; proto_event_free() releases it */
} proto_event_t;

/* Parses one text message. Always call proto_event_free() afterwards. */
void proto_event_parse(const char *json, size_t len, proto_event_t *ev);
void proto_event_free(proto_event_t *ev);

#endif
