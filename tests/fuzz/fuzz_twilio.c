/*
 * libFuzzer target: the Twilio parsers of agents/phone/twilio.c that see the internet's bytes:
 * the webhook's form body (then its signature, which must verify against itself), a Media
 * Stream message (through cJSON, as net hands it over, and through twilio_scan, net's fast
 * reading of media and mark) and a mark name. The first byte picks which. Beyond "no crash, no
 * leak, no UB": a payload accepted is canonical base64 within the limit, a parsed form signs to
 * a value that checks, and whatever the fast reading accepts reads as cJSON's tree does: the
 * same event, sequenceNumber and payload or mark name, from a span of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/phone/twilio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What twilio_scan() found reads as the message m read from cJSON's tree. */
static bool twilio_scan_same(twilio_event_t ev, int64_t seq, const char *d, size_t len,
                             const twilio_msg_t *m)
{
    const char *want = ev == TWILIO_EV_MEDIA ? m->payload : m->mark;
    return ev == m->event && seq == m->seq && want != NULL && strlen(want) == len &&
           memcmp(want, d, len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        twilio_form_t f;
        if (twilio_form_parse(&f, rest, n) == 0) {
            char sig[TWILIO_SIG_B64_LEN + 1];
            twilio_signature("token", "https://gw.example.com/twilio/voice", &f, sig);
            if (!twilio_signature_ok("token", "https://gw.example.com/twilio/voice", &f, sig))
                abort();
        }
        twilio_form_free(&f);
        break;
    }
    case 1: {
        cJSON *j = cJSON_ParseWithLength(rest, n);
        int64_t seq = -2;
        const char *d = NULL;
        size_t dl = 0;
        twilio_event_t ev = twilio_scan(rest, n, &seq, &d, &dl);
        bool fast = ev != TWILIO_EV_UNKNOWN;
        if (fast && (ev != TWILIO_EV_MEDIA && ev != TWILIO_EV_MARK))
            abort();
        if (fast && (!j || d < rest || d + dl > rest + n))
            abort(); /* the fast reading accepted what is not JSON, or pointed outside it */
        if (j) {
            twilio_msg_t m;
            if (twilio_msg_parse(j, &m) == TWILIO_EV_MEDIA &&
                (m.payload_len > TWILIO_PAYLOAD_MAX || !twilio_b64_ok(m.payload, m.payload_len)))
                abort();
            if (fast && !twilio_scan_same(ev, seq, d, dl, &m))
                abort();
            cJSON_Delete(j);
        }
        break;
    }
    default: {
        char *name = strndup(rest, n);
        char item[64];
        uint64_t ms;
        bool done;
        if (twilio_mark_parse(name, item, sizeof(item), &ms, &done) && strlen(item) >= sizeof(item))
            abort();
        free(name);
        break;
    }
    }
    return 0;
}
