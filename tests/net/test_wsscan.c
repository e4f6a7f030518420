/* Tests of net/wsproto's wsp_scan_event(): what it accepts, what it leaves to cJSON, and that it
 * agrees with cJSON on the members it reports. */
#include <string.h>

#include "net/wsproto.h"
#include "tests/runner.h"

static void check_against_cjson(const char *s)
{
    static const char *const names[3] = {"type", "delta", "item_id"};
    wsp_span_t spans[3];
    ASSERT(wsp_scan_event(s, strlen(s), names, 3, spans));
    cJSON *j = cJSON_Parse(s);
    ASSERT(cJSON_IsObject(j));
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, names[i]);
        ASSERT_EQ(cJSON_IsString(v), spans[i].p != NULL);
        if (spans[i].p) {
            ASSERT_EQ(strlen(v->valuestring), spans[i].len);
            ASSERT(memcmp(v->valuestring, spans[i].p, spans[i].len) == 0);
        }
    }
    cJSON_Delete(j);
}

TEST(wsscan_accepts_and_agrees_with_cjson)
{
    check_against_cjson("{\"type\":\"response.output_audio.delta\",\"event_id\":\"e\","
                        "\"item_id\":\"it_1\",\"output_index\":0,\"delta\":\"AAEC+/==\"}");
    check_against_cjson(" {\"delta\":\"\",\"type\":\"t\"}\r\n");
    check_against_cjson("{\"type\":\"a\",\"type\":\"b\",\"delta\":7,\"delta\":\"x\"}"); /* firsts */
    check_against_cjson("{\"x\":[1,-0,0.5,2e10,-3.25E-2,true,false,null,{\"y\":[[]]}],"
                        "\"s\":\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\"}");
    check_against_cjson("{}");
}

TEST(wsscan_leaves_the_rest_to_cjson)
{
    static const char *const rejected[] = {
        "",
        "[]",
        "{\"type\":\"a\"} x",      /* trailing bytes (cJSON would accept them) */
        "{\"type\":\"a\",}",       /* trailing comma */
        "{\"t\\u0079pe\":\"a\"}",  /* an escaped key */
        "{\"type\":\"a\\u0041\"}", /* \\u escapes */
        "{\"type\":\"a\\nb\"}",    /* an escape in a reported member */
        "{\"a\":01}",              /* leading zero */
        "{\"a\":1.}",              /* no fraction digits */
        "{\"a\":tru}",             /* a cut literal */
        "{\"a\":\"x\ty\"}",        /* a raw control character */
        "{\"type\":\"a\"",         /* unterminated */
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", /* deep */
    };
    static const char *const names[3] = {"type", "delta", "item_id"};
    wsp_span_t f[3];
    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
        if (wsp_scan_event(rejected[i], strlen(rejected[i]), names, 3, f))
            TEST_FAIL_("accepted case %zu: %s", i, rejected[i]);
}

TEST(wsscan_tree_holds_the_members_found)
{
    static const char *const names[3] = {"type", "audio", "event_id"};
    const char *s = "{\"event_id\":5,\"type\":\"input_audio_buffer.append\",\"audio\":\"AAAA\"}";
    wsp_span_t f[3];
    ASSERT(wsp_scan_event(s, strlen(s), names, 3, f));
    cJSON *j = wsp_scan_tree(names, f, 3);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(j, "type")->valuestring,
                  "input_audio_buffer.append");
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(j, "audio")->valuestring, "AAAA");
    ASSERT(cJSON_GetObjectItemCaseSensitive(j, "event_id") == NULL); /* not a string */
    cJSON_Delete(j);
}

TEST(wsscan_reads_audio_deltas)
{
    wsp_span_t d, item;
    const char *s = "{\"type\":\"response.output_audio.delta\",\"item_id\":\"it_1\","
                    "\"delta\":\"AAAA\",\"event_id\":\"e\"}";
    ASSERT(wsp_scan_audio_delta(s, strlen(s), &d, &item));
    ASSERT(d.len == 4 && memcmp(d.p, "AAAA", 4) == 0);
    ASSERT(item.len == 4 && memcmp(item.p, "it_1", 4) == 0);
    s = "{\"type\":\"response.audio.delta\",\"delta\":\"\",\"item_id\":7}";
    ASSERT(wsp_scan_audio_delta(s, strlen(s), &d, &item));
    ASSERT(d.p != NULL && d.len == 0);
    ASSERT(item.p == NULL); /* not a string: absent, as cJSON_IsString() reads it */
    static const char *const others[] = {
        "{\"type\":\"response.output_audio.done\",\"delta\":\"AAAA\"}",
        "{\"type\":\"response.output_audio.delta\"}",               /* no delta */
        "{\"type\":\"response.output_audio.delta\",\"delta\":1}",   /* not a string */
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"\\/\"}", /* escaped: cJSON's */
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\"", /* cut short */
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if (wsp_scan_audio_delta(others[i], strlen(others[i]), &d, &item))
            TEST_FAIL_("read as a delta: %s", others[i]);
}

TEST(wsscan_notes_top_level_objects)
{
    static const char *const names[] = {"event"};
    static const char *const objs[] = {"media", "mark"};
    wsp_span_t f[1], o[2];
    const char *s = "{\"event\":\"media\",\"x\":{\"mark\":{}},\"media\" : {\"payload\":\"AA==\"}}";
    ASSERT(wsp_scan_event_objs(s, strlen(s), names, 1, f, objs, 2, o));
    ASSERT(wsp_span_is(f[0], "media"));
    ASSERT(wsp_span_is(o[0], "{\"payload\":\"AA==\"}"));
    ASSERT(o[1].p == NULL); /* only nested */
    s = "{\"media\":{},\"media\":{}}"; /* named twice: neither is taken */
    ASSERT(wsp_scan_event_objs(s, strlen(s), names, 1, f, objs, 2, o));
    ASSERT(o[0].p == NULL);
    s = "{\"media\":\"AA==\",\"mark\":[1]}"; /* not objects */
    ASSERT(wsp_scan_event_objs(s, strlen(s), names, 1, f, objs, 2, o));
    ASSERT(o[0].p == NULL && o[1].p == NULL);
    s = "{\"media\":{\"payload\":1}"; /* not one whole object: nothing vouched for */
    ASSERT(!wsp_scan_event_objs(s, strlen(s), names, 1, f, objs, 2, o));
}
