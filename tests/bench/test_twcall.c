/*
 * Tests of bench/loadgen/twcall: the bench playing Twilio. The webhook's body and signature read
 * back by the service's own form parser and signature check; the TwiML the service writes read
 * for the stream path and the <Parameter>s; the messages written as masked client frames; the
 * playback clock that times mark echoes, and clear; the fast and slow reading paths.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agents/phone/twilio.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "bench/loadgen/twcall.h"
#include "net/wsframe.h"
#include "tests/runner.h"

#define T0_NS    (1000 * NS_PER_SEC)
#define OUT_CAP  8192
#define RUN_ID   "abc123"
#define TEST_URL "https://gw.example.com/twilio/voice"

/* The text of the masked client frame at *at of out (advancing *at), unmasked, as a string. */
static char *unframe(const uint8_t *out, size_t *at)
{
    const uint8_t *p = out + *at;
    ASSERT_EQ(p[0], 0x80 | WSF_OP_TEXT);
    ASSERT(p[1] & 0x80);
    size_t len = p[1] & 0x7f, h = 2;
    if (len == 126) {
        len = (size_t)p[2] << 8 | p[3];
        h = 4;
    }
    const uint8_t *key = p + h;
    char *s = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(p[h + 4 + i] ^ key[i % 4]);
    s[len] = '\0';
    *at += h + 4 + len;
    return s;
}

static const char *str_of(const cJSON *o, const char *path)
{
    char buf[128];
    str_copy(buf, path, sizeof(buf));
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, "."))
        o = cJSON_GetObjectItemCaseSensitive(o, tok);
    return cJSON_IsString(o) ? o->valuestring : NULL;
}

TEST(twcall_ring_is_signed_as_the_service_checks_it)
{
    twcall_t *tw = twcall_new(7, RUN_ID);
    sbuf_t body = SBUF_INIT;
    char sig[96];
    twcall_ring(tw, 7, "secret-token", TEST_URL, &body, sig, sizeof(sig));
    ASSERT(strncmp(sig, "X-Twilio-Signature: ", 20) == 0);
    twilio_form_t form;
    ASSERT_EQ(twilio_form_parse(&form, body.data, body.len), 0);
    ASSERT_STR_EQ(twilio_form_get(&form, "CallSid"), tw->call_sid);
    ASSERT_STR_EQ(twilio_form_get(&form, "From"), "+15550000007"); /* '+' survived encoding */
    ASSERT(twilio_signature_ok("secret-token", TEST_URL, &form, sig + 20));
    ASSERT(!twilio_signature_ok("other-token", TEST_URL, &form, sig + 20));
    twilio_form_free(&form);
    sbuf_destroy(&body);
    twcall_free(tw);
}

TEST(twcall_twiml_gives_the_stream_path_and_the_parameters)
{
    twcall_t *tw = twcall_new(1, RUN_ID);
    const twiml_param_t params[] = {{"token", "tok&<\"'>"}, {"callSid", tw->call_sid}};
    sbuf_t x = SBUF_INIT;
    twiml_connect(&x, "wss://gw.example.com/twilio/media?x=1", params, ARRAY_LEN(params));
    char why[128];
    ASSERT_EQ(twcall_twiml(tw, x.data, x.len, why, sizeof(why)), 0);
    ASSERT_STR_EQ(tw->path, "/twilio/media?x=1");
    cJSON *start = cJSON_Parse(tw->start);
    ASSERT(start != NULL);
    ASSERT_STR_EQ(str_of(start, "event"), "start");
    ASSERT_STR_EQ(str_of(start, "sequenceNumber"), "1");
    ASSERT_STR_EQ(str_of(start, "streamSid"), tw->stream_sid);
    ASSERT_STR_EQ(str_of(start, "start.callSid"), tw->call_sid);
    ASSERT_STR_EQ(str_of(start, "start.customParameters.token"), "tok&<\"'>");
    ASSERT_STR_EQ(str_of(start, "start.customParameters.callSid"), tw->call_sid);
    cJSON_Delete(start);
    /* Character references, as other TwiML writers escape. */
    static const char refs[] = "<Response><Connect><Stream url=\"ws://h/m\"><Parameter "
                               "name=\"n\" value=\"a&#39;b&#x26;c&#233;&#0;\"/></Stream>"
                               "</Connect></Response>";
    ASSERT_EQ(twcall_twiml(tw, refs, strlen(refs), why, sizeof(why)), 0);
    start = cJSON_Parse(tw->start);
    ASSERT_STR_EQ(str_of(start, "start.customParameters.n"), "a'b&c\xc3\xa9&#0;");
    cJSON_Delete(start);
    sbuf_destroy(&x);
    twcall_free(tw);
}

TEST(twcall_twiml_without_a_stream_says_why)
{
    twcall_t *tw = twcall_new(1, RUN_ID);
    sbuf_t x = SBUF_INIT;
    twiml_say_hangup(&x, "All lines are busy.");
    char why[128];
    ASSERT_EQ(twcall_twiml(tw, x.data, x.len, why, sizeof(why)), -EINVAL);
    ASSERT_STR_CONTAINS(why, "All lines are busy.");
    ASSERT_STR_CONTAINS(why, "<Hangup/>");
    ASSERT_EQ(twcall_twiml(tw, "not xml", 7, why, sizeof(why)), -EINVAL);
    sbuf_destroy(&x);
    twcall_free(tw);
}

TEST(twcall_messages_are_twilios_with_numbers_as_strings)
{
    twcall_t *tw = twcall_new(2, RUN_ID);
    tw->start = xstrdup("{\"event\":\"start\",\"sequenceNumber\":\"1\"}");
    uint8_t *out = xmalloc(OUT_CAP);
    size_t at = 0, rd = 0;
    twcall_put_open(tw, out, &at);
    const uint8_t ulaw[] = {0xff, 0x7f, 0xff};
    twcall_put_media(tw, out, &at, ulaw, sizeof(ulaw), 1, 0);
    twcall_put_stop(tw, out, &at);
    char *m = unframe(out, &rd);
    ASSERT_STR_CONTAINS(m, "\"event\":\"connected\"");
    free(m);
    m = unframe(out, &rd);
    ASSERT_STR_EQ(m, tw->start);
    free(m);
    cJSON *j = cJSON_Parse(m = unframe(out, &rd));
    ASSERT_STR_EQ(str_of(j, "event"), "media");
    ASSERT_STR_EQ(str_of(j, "sequenceNumber"), "2");
    ASSERT_STR_EQ(str_of(j, "media.chunk"), "1");
    ASSERT_STR_EQ(str_of(j, "media.timestamp"), "0");
    ASSERT_STR_EQ(str_of(j, "media.payload"), "/3//");
    ASSERT_STR_EQ(str_of(j, "streamSid"), tw->stream_sid);
    cJSON_Delete(j);
    free(m);
    j = cJSON_Parse(m = unframe(out, &rd));
    ASSERT_STR_EQ(str_of(j, "event"), "stop");
    ASSERT_STR_EQ(str_of(j, "sequenceNumber"), "3");
    ASSERT_STR_EQ(str_of(j, "stop.callSid"), tw->call_sid);
    cJSON_Delete(j);
    free(m);
    ASSERT_EQ(rd, at);
    ASSERT(tw->stopped);
    free(out);
    twcall_free(tw);
}

/* Reads json as the load thread does and applies a mark or a clear to tw at now. */
static twcall_in_t feed(twcall_t *tw, const char *json, uint64_t now)
{
    twcall_msg_t m;
    twcall_parse(json, strlen(json), &m);
    if (m.type == TWCALL_IN_MARK)
        twcall_on_mark(tw, m.str, m.str_len, now);
    else if (m.type == TWCALL_IN_CLEAR)
        twcall_on_clear(tw, now);
    twcall_in_t t = m.type;
    twcall_msg_free(&m);
    return t;
}

TEST(twcall_a_mark_is_echoed_once_the_audio_before_it_has_played)
{
    twcall_t *tw = twcall_new(3, RUN_ID);
    uint8_t *out = xmalloc(OUT_CAP);
    size_t at = 0;
    twcall_played(tw, 160, T0_NS); /* 20 ms */
    ASSERT_EQ(
        feed(tw, "{\"event\":\"mark\",\"streamSid\":\"MZ1\",\"mark\":{\"name\":\"it:20\"}}", T0_NS),
        TWCALL_IN_MARK);
    twcall_played(tw, 80, T0_NS + 5 * NS_PER_MS); /* 10 ms more, queued after the first */
    feed(tw, "{\"event\":\"mark\",\"streamSid\":\"MZ1\",\"mark\":{\"name\":\"it:30\"}}",
         T0_NS + 5 * NS_PER_MS);
    ASSERT_EQ(twcall_next_mark_ns(tw), T0_NS + 20 * NS_PER_MS);
    ASSERT_EQ(twcall_put_marks(tw, out, &at, OUT_CAP, T0_NS + 19 * NS_PER_MS), 0);
    ASSERT_EQ(twcall_put_marks(tw, out, &at, OUT_CAP, T0_NS + 20 * NS_PER_MS), 1);
    ASSERT_EQ(twcall_next_mark_ns(tw), T0_NS + 30 * NS_PER_MS);
    ASSERT_EQ(twcall_put_marks(tw, out, &at, OUT_CAP, T0_NS + 31 * NS_PER_MS), 1);
    ASSERT_EQ(twcall_next_mark_ns(tw), UINT64_MAX);
    size_t rd = 0;
    char *m = unframe(out, &rd);
    cJSON *j = cJSON_Parse(m);
    ASSERT_STR_EQ(str_of(j, "event"), "mark");
    ASSERT_STR_EQ(str_of(j, "mark.name"), "it:20");
    ASSERT_STR_EQ(str_of(j, "streamSid"), tw->stream_sid);
    cJSON_Delete(j);
    free(m);
    m = unframe(out, &rd);
    ASSERT_STR_CONTAINS(m, "\"name\":\"it:30\"");
    free(m);
    ASSERT_EQ(tw->marks_echoed, 2);
    free(out);
    twcall_free(tw);
}

TEST(twcall_clear_sends_every_waiting_mark_back_at_once)
{
    twcall_t *tw = twcall_new(4, RUN_ID);
    uint8_t *out = xmalloc(OUT_CAP);
    size_t at = 0;
    /* More marks than the ring starts with: it grows and keeps their order. */
    for (int i = 0; i < 12; i++) {
        char json[128];
        twcall_played(tw, 160, T0_NS);
        snprintf(json, sizeof(json), "{\"event\":\"mark\",\"mark\":{\"name\":\"it:%d\"}}",
                 20 * (i + 1));
        feed(tw, json, T0_NS);
    }
    ASSERT_EQ(twcall_put_marks(tw, out, &at, OUT_CAP, T0_NS + NS_PER_MS), 0);
    ASSERT_EQ(feed(tw, "{\"event\":\"clear\",\"streamSid\":\"MZ1\"}", T0_NS + NS_PER_MS),
              TWCALL_IN_CLEAR);
    ASSERT_EQ(twcall_put_marks(tw, out, &at, OUT_CAP, T0_NS + NS_PER_MS), 12);
    size_t rd = 0;
    for (int i = 0; i < 12; i++) {
        char *m = unframe(out, &rd), want[32];
        snprintf(want, sizeof(want), "\"it:%d\"", 20 * (i + 1));
        ASSERT_STR_CONTAINS(m, want);
        free(m);
    }
    ASSERT_EQ(tw->clears, 1);
    /* Audio after the clear plays from now, not after the dropped audio. */
    twcall_played(tw, 160, T0_NS + 2 * NS_PER_MS);
    ASSERT_EQ(tw->play_end_ns, T0_NS + 22 * NS_PER_MS);
    free(out);
    twcall_free(tw);
}

TEST(twcall_reads_the_compact_form_in_place_and_the_rest_with_cjson)
{
    const char *fast =
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"/3//\"}}";
    twcall_msg_t m;
    twcall_parse(fast, strlen(fast), &m);
    ASSERT_EQ(m.type, TWCALL_IN_MEDIA);
    ASSERT(m.root_ == NULL);
    ASSERT(m.str > fast && m.str < fast + strlen(fast));
    ASSERT_EQ(m.str_len, 4);
    twcall_msg_free(&m);

    const char *spaced = "{ \"event\": \"media\", \"media\": { \"payload\": \"AAAA\" } }";
    twcall_parse(spaced, strlen(spaced), &m);
    ASSERT_EQ(m.type, TWCALL_IN_MEDIA);
    ASSERT(m.root_ != NULL);
    ASSERT_EQ(m.str_len, 4);
    ASSERT(memcmp(m.str, "AAAA", 4) == 0);
    twcall_msg_free(&m);

    /* An escaped mark name is read by cJSON, and echoed escaped again. */
    twcall_t *tw = twcall_new(5, RUN_ID);
    ASSERT_EQ(feed(tw, "{\"event\":\"mark\",\"mark\":{\"name\":\"a\\\"b\"}}", T0_NS),
              TWCALL_IN_MARK);
    uint8_t *out = xmalloc(OUT_CAP);
    size_t at = 0, rd = 0;
    ASSERT_EQ(twcall_put_marks(tw, out, &at, OUT_CAP, T0_NS), 1);
    char *echo = unframe(out, &rd);
    cJSON *j = cJSON_Parse(echo);
    ASSERT_STR_EQ(str_of(j, "mark.name"), "a\"b");
    cJSON_Delete(j);
    free(echo);
    free(out);
    ASSERT_EQ(feed(tw, "{\"event\":\"other\"}", T0_NS), TWCALL_IN_OTHER);
    twcall_free(tw);
    twcall_parse("nope", 4, &m);
    ASSERT_EQ(m.type, TWCALL_IN_INVALID);
    twcall_msg_free(&m);
    twcall_parse("{\"event\":\"media\"}", 17, &m);
    ASSERT_EQ(m.type, TWCALL_IN_INVALID); /* media without a payload */
    twcall_msg_free(&m);
}
