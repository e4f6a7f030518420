/*
 * libFuzzer target: the Twilio parsers of agents/phone/twilio.c that see the internet's bytes:
 * the webhook's form body (then its signature, which must verify against itself), a Media
 * Stream message (through cJSON, as net hands it over, and through twilio_scan_tree, net's fast
 * reading of media and mark) and a mark name. The first byte picks which. Beyond "no crash, no
 * leak, no UB": a payload accepted is canonical base64 within the limit, a parsed form signs to
 * a value that checks, and whatever the fast reading accepts reads as cJSON's tree does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/phone/twilio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The fast tree reads as the message m read from cJSON's tree. */
static bool twilio_msg_same(const cJSON *fast, const twilio_msg_t *m)
{
    twilio_msg_t f;
    twilio_msg_parse(fast, &f);
    return f.event == m->event && str_same(f.reason, m->reason) && f.seq == m->seq &&
           str_same(f.stream_sid, m->stream_sid) && f.payload_len == m->payload_len &&
           str_same(f.payload, m->payload) && str_same(f.track, m->track) &&
           str_same(f.mark, m->mark);
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
        cJSON *fast = twilio_scan_tree(rest, n);
        if (fast && !j)
            abort(); /* the fast reading accepted what is not JSON */
        if (j) {
            twilio_msg_t m;
            if (twilio_msg_parse(j, &m) == TWILIO_EV_MEDIA &&
                (m.payload_len > TWILIO_PAYLOAD_MAX || !twilio_b64_ok(m.payload, m.payload_len)))
                abort();
            if (fast && !twilio_msg_same(fast, &m))
                abort();
            cJSON_Delete(j);
        }
        cJSON_Delete(fast);
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
