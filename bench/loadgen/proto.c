/* Wire formats of the bench; see proto.h. */
#include "bench/loadgen/proto.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "audio/b64.h"
#include "audio/ulaw.h"
#include "net/wsproto.h"

#define APPEND_HEAD "{\"type\":\"input_audio_buffer.append\",\"audio\":\""
#define APPEND_TAIL "\"}"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void proto_noise_fill(uint8_t *pcm, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 0x9e3779b9u; /* xorshift32: any non-zero state */
    for (size_t i = 0; i + 1 < n; i += 2) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int16_t v = (int16_t)((int)(x % (2 * PROTO_NOISE_PEAK + 1)) - PROTO_NOISE_PEAK);
        pcm[i] = (uint8_t)((uint16_t)v & 0xff);
        pcm[i + 1] = (uint8_t)((uint16_t)v >> 8);
    }
}

void proto_ulaw_noise_fill(uint8_t *ulaw, size_t n, uint32_t seed)
{
    uint8_t pcm[2];
    for (size_t i = 0; i < n; i++) {
        proto_noise_fill(pcm, sizeof(pcm), seed + (uint32_t)i);
        ulaw[i] = ulaw_encode_sample((int16_t)(pcm[0] | pcm[1] << 8));
    }
}

void proto_hdr_write(uint8_t *frame, uint32_t session, uint32_t seq, uint64_t sent_ns)
{
    memcpy(frame, PROTO_MAGIC, 4);
    put_u32(frame + 4, session);
    put_u32(frame + 8, seq);
    put_u32(frame + 12, 0);
    put_u32(frame + 16, (uint32_t)sent_ns);
    put_u32(frame + 20, (uint32_t)(sent_ns >> 32));
}

size_t proto_scan(const uint8_t *pcm, size_t n, proto_hdr_fn fn, void *arg)
{
    size_t found = 0;
    for (size_t off = 0; off + PROTO_HDR_BYTES <= n;) {
        /* Noise samples are within +-3, so 'S' 'B' (0x4253) never occurs in them. */
        if (pcm[off] != (uint8_t)'S' || memcmp(pcm + off, PROTO_MAGIC, 4) != 0) {
            off += 2;
            continue;
        }
        proto_hdr_t h = {
            .session = get_u32(pcm + off + 4),
            .seq = get_u32(pcm + off + 8),
            .sent_ns = (uint64_t)get_u32(pcm + off + 16) | (uint64_t)get_u32(pcm + off + 20) << 32,
        };
        fn(arg, &h);
        found++;
        off += PROTO_HDR_BYTES;
    }
    return found;
}

size_t proto_append_event_max(size_t n)
{
    return sizeof(APPEND_HEAD) - 1 + b64_encoded_len(n) + sizeof(APPEND_TAIL) - 1;
}

size_t proto_append_event(char *dst, const uint8_t *pcm, size_t n)
{
    size_t len = sizeof(APPEND_HEAD) - 1;
    memcpy(dst, APPEND_HEAD, len);
    len += b64_encode(pcm, n, dst + len);
    memcpy(dst + len, APPEND_TAIL, sizeof(APPEND_TAIL)); /* with its terminator */
    return len + sizeof(APPEND_TAIL) - 1;
}

static const struct {
    const char *name;
    proto_ev_type_t type;
} event_names[] = {
    {"response.output_audio.delta", PROTO_EV_AUDIO_DELTA},
    {"response.audio.delta", PROTO_EV_AUDIO_DELTA}, /* beta name, tolerated */
    {"session.ready", PROTO_EV_READY},
    {"session.created", PROTO_EV_CREATED},
    {"session.updated", PROTO_EV_UPDATED},
    {"error", PROTO_EV_ERROR},
    {"tool.call", PROTO_EV_TOOL_CALL},
    {"response.created", PROTO_EV_RESPONSE_CREATED},
    {"response.done", PROTO_EV_RESPONSE_DONE},
    {"upstream.reconnecting", PROTO_EV_RECONNECTING},
};

/* The string member name of o, or "" when it is missing or not a string. */
static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The event type named by the n bytes at s. */
static proto_ev_type_t type_of(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
        if (strlen(event_names[i].name) == n && memcmp(s, event_names[i].name, n) == 0)
            return event_names[i].type;
    return PROTO_EV_OTHER;
}

void proto_event_parse(const char *json, size_t len, proto_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    /*
     * Audio deltas (50 a second per --direct session) skip cJSON's parser, which was a third of
     * the bench's instructions once libwebsockets was gone: when wsp_scan_audio_delta() vouches
     * for the text, the delta is used where it lies (as the service's upstream client does).
     */
    wsp_span_t delta, item;
    if (wsp_scan_audio_delta(json, len, &delta, &item)) {
        ev->type = PROTO_EV_AUDIO_DELTA;
        ev->audio = delta.p;
        ev->audio_len = delta.len;
        return;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    ev->root_ = root;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root) || !cJSON_IsString(type)) {
        ev->type = PROTO_EV_INVALID;
        return;
    }
    ev->type = type_of(type->valuestring, strlen(type->valuestring));
    if (ev->type == PROTO_EV_AUDIO_DELTA) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "delta");
        if (cJSON_IsString(d)) {
            ev->audio = d->valuestring;
            ev->audio_len = strlen(d->valuestring);
        }
    } else if (ev->type == PROTO_EV_TOOL_CALL) {
        ev->tool_call_id = str_member(root, "call_id");
        ev->tool_name = str_member(root, "name");
        ev->tool_status = str_member(root, "status");
        ev->tool_nested = str_member(root, "parent_call_id")[0] != '\0';
    } else if (ev->type == PROTO_EV_RESPONSE_CREATED || ev->type == PROTO_EV_RESPONSE_DONE) {
        ev->response_id = str_member(cJSON_GetObjectItemCaseSensitive(root, "response"), "id");
    } else if (ev->type == PROTO_EV_ERROR) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        snprintf(ev->error, sizeof(ev->error), "%s: %s",
                 cJSON_IsString(code) ? code->valuestring : "error",
                 cJSON_IsString(msg) ? msg->valuestring : "(no message)");
    }
}

void proto_event_free(proto_event_t *ev)
{
    cJSON_Delete(ev->root_);
    ev->root_ = NULL;
}
