/*
 * Tests of agents/phone/twilio: form bodies, X-Twilio-Signature against an HMAC computed apart, TwiML, and Media Stream messages.
 */
#include <errno.h>
#include <string.h>

#include "agents/phone/twilio.h"
#include "tests/runner.h"

TEST(twilio_form_decodes_pairs_in_order)
{
    twilio_form_t f;
    static const char body[] = "CallSid=CA1&From=%2B14155550100&Caller=a+b&&Empty=&Bare";
    ASSERT_EQ(twilio_form_parse(&f, body, strlen(body)), 0);
    ASSERT_EQ(f.n, 5);
    ASSERT_STR_EQ(twilio_form_get(&f, "From"), "+14155550100");
    ASSERT_STR_EQ(twilio_form_get(&f, "Caller"), "a b");
    ASSERT_STR_EQ(twilio_form_get(&f, "Empty"), "");
    ASSERT_STR_EQ(twilio_form_get(&f, "Bare"), "");
    ASSERT(twilio_form_get(&f, "To") == NULL);
    twilio_form_free(&f);
    ASSERT_EQ(twilio_form_parse(&f, "a=%zz", 5), -EINVAL);
    ASSERT_EQ(twilio_form_parse(&f, "a=%00", 5), -EINVAL);
    ASSERT_EQ(f.n, 0);
}

TEST(twilio_form_refuses_too_many_fields)
{
    char body[TWILIO_FORM_MAX_FIELDS * 4 + 8] = "";
    for (int i = 0; i <= TWILIO_FORM_MAX_FIELDS; i++)
        strcat(body, "a=1&");
    twilio_form_t f;
    ASSERT_EQ(twilio_form_parse(&f, body, strlen(body)), -EINVAL);
    twilio_form_free(&f);
}

/* The request of Twilio's security documentation (URL with a query, five parameters, token
 * 12345); the value was computed apart, with Python's hmac and hashlib. */
TEST(twilio_signature_matches_an_independent_hmac)
{
    static const char body[] = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&"
                               "From=%2B12349013030&To=%2B18005551212";
    twilio_form_t f;
    ASSERT_EQ(twilio_form_parse(&f, body, strlen(body)), 0);
    const char *url = "https://example.com/myapp.php?foo=1&bar=2";
    char sig[TWILIO_SIG_B64_LEN + 1];
    twilio_signature("12345", url, &f, sig);
    ASSERT_STR_EQ(sig, "vNe7KK2kJwCsxc9K3OLkkKB3qqI=");
    ASSERT(twilio_signature_ok("12345", url, &f, "vNe7KK2kJwCsxc9K3OLkkKB3qqI="));
    ASSERT(!twilio_signature_ok("12346", url, &f, "vNe7KK2kJwCsxc9K3OLkkKB3qqI="));
    ASSERT(!twilio_signature_ok("12345", "https://example.com/myapp.php", &f, sig));
    ASSERT(!twilio_signature_ok("12345", url, &f, NULL));
    ASSERT(!twilio_signature_ok("12345", url, &f, "short"));
    twilio_form_free(&f);
}

TEST(twiml_is_escaped)
{
    sbuf_t b = SBUF_INIT;
    const twiml_param_t p[] = {{"token", "ek_1"}, {"from", "<\"&'>"}};
    twiml_connect(&b, "wss://gw.example.com/twilio/media", p, 2);
    ASSERT_STR_EQ(b.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream "
                          "url=\"wss://gw.example.com/twilio/media\"><Parameter name=\"token\" "
                          "value=\"ek_1\"/><Parameter name=\"from\" value=\"&lt;&quot;&amp;&#39;"
                          "&gt;\"/></Stream></Connect></Response>");
    sbuf_reset(&b);
    twiml_dial(&b, "+14155550123");
    ASSERT_STR_EQ(b.data, "<Response><Dial>+14155550123</Dial></Response>");
    sbuf_reset(&b);
    twilio_form_encode(&b, "<Response> +1");
    ASSERT_STR_EQ(b.data, "%3CResponse%3E%20%2B1");
    sbuf_destroy(&b);
}

static twilio_event_t parse(const char *json, twilio_msg_t *m)
{
    cJSON *j = cJSON_Parse(json);
    twilio_event_t ev = twilio_msg_parse(j, m);
    m->params = NULL; /* points into j */
    cJSON_Delete(j);
    return ev;
}

TEST(twilio_messages_are_read_with_numbers_as_strings)
{
    twilio_msg_t m;
    ASSERT_EQ(parse("{\"event\":\"media\",\"sequenceNumber\":\"42\",\"streamSid\":\"MZ1\","
                    "\"media\":{\"track\":\"inbound\",\"chunk\":\"3\",\"timestamp\":\"60\","
                    "\"payload\":\"//8=\"}}",
                    &m),
              TWILIO_EV_MEDIA);
    ASSERT_EQ(m.seq, 42);
    ASSERT_EQ(parse("{\"event\":\"media\",\"media\":{\"payload\":\"not base64\"}}", &m),
              TWILIO_EV_MALFORMED);
    ASSERT_STR_EQ(m.reason, "bad_payload");
    ASSERT_EQ(parse("{\"event\":\"media\",\"media\":{}}", &m), TWILIO_EV_MALFORMED);
    ASSERT_EQ(parse("{\"event\":\"start\",\"start\":{\"streamSid\":\"MZ1\",\"callSid\":\"CA1\"}}",
                    &m),
              TWILIO_EV_START);
    ASSERT_EQ(parse("{\"event\":\"start\",\"start\":{\"callSid\":\"CA1\"}}", &m),
              TWILIO_EV_MALFORMED);
    ASSERT_EQ(parse("{\"event\":\"dtmf\",\"dtmf\":{\"digit\":\"#\"}}", &m), TWILIO_EV_DTMF);
    ASSERT_EQ(m.digit, '#');
    ASSERT_EQ(parse("{\"event\":\"dtmf\",\"dtmf\":{\"digit\":\"12\"}}", &m), TWILIO_EV_MALFORMED);
    ASSERT_EQ(parse("{\"event\":\"mark\",\"mark\":{\"name\":\"x\"}}", &m), TWILIO_EV_MARK);
    ASSERT_EQ(parse("{\"event\":\"stop\",\"sequenceNumber\":7}", &m), TWILIO_EV_STOP);
    ASSERT_EQ(m.seq, -1); /* a JSON number is not how Twilio sends it */
    ASSERT_EQ(parse("{\"event\":\"whatever\"}", &m), TWILIO_EV_UNKNOWN);
    ASSERT_EQ(parse("[1]", &m), TWILIO_EV_MALFORMED);
}

TEST(twilio_base64_is_checked_not_decoded)
{
    ASSERT(twilio_b64_ok("//8=", 4));
    ASSERT(twilio_b64_ok("AAAA", 4));
    ASSERT(!twilio_b64_ok("AAA", 3));
    ASSERT(!twilio_b64_ok("A=AA", 4));
    ASSERT(!twilio_b64_ok("", 0));
    ASSERT_EQ(twilio_b64_bytes("//8=", 4), 2);
    ASSERT_EQ(twilio_b64_bytes("AA==", 4), 1);
    ASSERT_EQ(twilio_b64_bytes("AAAAAAAA", 8), 6);
}

TEST(twilio_marks_are_read_back)
{
    char item[64];
    uint64_t ms;
    bool done;
    ASSERT(twilio_mark_parse("item_abc:1260", item, sizeof(item), &ms, &done));
    ASSERT_STR_EQ(item, "item_abc");
    ASSERT_EQ(ms, 1260);
    ASSERT(!done);
    ASSERT(twilio_mark_parse("done:item_abc", item, sizeof(item), &ms, &done));
    ASSERT(done);
    ASSERT_STR_EQ(item, "item_abc");
    ASSERT(!twilio_mark_parse("responsePart", item, sizeof(item), &ms, &done));
    ASSERT(!twilio_mark_parse("item:12x", item, sizeof(item), &ms, &done));
    ASSERT(!twilio_mark_parse(":12", item, sizeof(item), &ms, &done));
}

/* twilio_scan(s) reads what twilio_msg_parse() reads from cJSON's tree of s. */
static void check_scan_agrees(const char *s)
{
    int64_t seq = -2;
    const char *data = NULL;
    size_t len = 0;
    twilio_event_t ev = twilio_scan(s, strlen(s), &seq, &data, &len);
    ASSERT(ev == TWILIO_EV_MEDIA || ev == TWILIO_EV_MARK);
    ASSERT(data >= s && data + len <= s + strlen(s));
    cJSON *full = cJSON_Parse(s);
    twilio_msg_t b;
    ASSERT_EQ(ev, twilio_msg_parse(full, &b));
    ASSERT_EQ(seq, b.seq);
    const char *want = ev == TWILIO_EV_MEDIA ? b.payload : b.mark;
    ASSERT_EQ(len, strlen(want));
    ASSERT(memcmp(data, want, len) == 0);
    cJSON_Delete(full);
}

TEST(twilio_scan_reads_media_and_marks_as_cjson_does)
{
    check_scan_agrees("{\"event\":\"media\",\"sequenceNumber\":\"3\",\"media\":{\"track\":"
                      "\"inbound\",\"chunk\":\"1\",\"timestamp\":\"5\",\"payload\":\"//8=\"},"
                      "\"streamSid\":\"MZ1\"}");
    check_scan_agrees(" { \"event\" : \"media\" , \"media\":{ \"payload\" : \"AAAA\" } } ");
    check_scan_agrees("{\"event\":\"mark\",\"sequenceNumber\":\"4\",\"streamSid\":\"MZ1\","
                      "\"mark\":{\"name\":\"item_1:20\"}}");
    /* A sequenceNumber that is not a decimal string reads as absent, as it does in full. */
    check_scan_agrees("{\"event\":\"media\",\"sequenceNumber\":7,\"media\":{\"payload\":\"AAAA\"}}");
    check_scan_agrees("{\"event\":\"mark\",\"sequenceNumber\":\"x1\",\"mark\":{\"name\":\"\"}}");
}

TEST(twilio_scan_leaves_the_rest_to_cjson)
{
    static const char *const rest[] = {
        "{\"event\":\"start\",\"start\":{\"streamSid\":\"MZ1\",\"callSid\":\"CA1\"}}",
        "{\"event\":\"stop\"}",
        "{\"event\":\"media\",\"media\":{\"payload\":\"\\/\\/8=\"}}",     /* escaped */
        "{\"event\":\"media\",\"media\":\"AAAA\"}",                       /* not an object */
        "{\"event\":\"media\",\"x\":{\"media\":{\"payload\":\"AAAA\"}}}", /* not top-level */
        "{\"event\":\"media\",\"media\":{\"payload\":\"AAAA\"},\"media\":{\"payload\":\"BBBB\"}}",
        "{\"event\":\"media\",\"media\":{\"track\":\"inbound\"}}", /* no payload */
        "{\"event\":\"media\",\"media\":{\"payload\":\"AAAA\"}",   /* cut short */
        "{\"event\":\"mark\",\"mark\":{\"name\":1}}",
        "[]",
        /* Malformed payloads are left to the full reading, which counts them. */
        "{\"event\":\"media\",\"media\":{\"payload\":\"!!!\"}}",
        "{\"event\":\"media\",\"media\":{\"payload\":\"\"}}",
        "{\"event\":\"media\",\"media\":{\"payload\":\"AAA=AAAA\"}}",
    };
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        int64_t seq;
        const char *data;
        size_t len;
        if (twilio_scan(rest[i], strlen(rest[i]), &seq, &data, &len) != TWILIO_EV_UNKNOWN)
            TEST_FAIL_("scanned: %s", rest[i]);
    }
}
