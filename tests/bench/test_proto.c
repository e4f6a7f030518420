/*
 * Tests of bench/loadgen/proto's event reader: an audio delta the scanner vouches for is read in
 * place (no tree), one it is unsure of goes through cJSON with the same result, and the other
 * events are read as before.
 */
#include <string.h>

#include "bench/loadgen/proto.h"
#include "tests/runner.h"

/* Parses the n bytes at json, which must be an audio delta of "U0JCTgAA". */
static void parse_delta(const char *json, size_t n, proto_event_t *ev)
{
    proto_event_parse(json, n, ev);
    ASSERT_EQ(ev->type, PROTO_EV_AUDIO_DELTA);
    ASSERT_EQ(ev->audio_len, 8);
    ASSERT(memcmp(ev->audio, "U0JCTgAA", 8) == 0);
}

TEST(proto_audio_delta_is_read_in_place)
{
    static const char delta[] =
        "{\"type\":\"response.output_audio.delta\",\"item_id\":\"it_1\",\"delta\":\"U0JCTgAA\"}";
    proto_event_t ev;
    parse_delta(delta, sizeof(delta) - 1, &ev);
    ASSERT(ev.root_ == NULL); /* no tree built */
    ASSERT(ev.audio > delta && ev.audio < delta + sizeof(delta));
    proto_event_free(&ev);
}

TEST(proto_audio_delta_the_scanner_doubts_goes_through_cjson)
{
    /* A \u escape makes the scanner step aside; cJSON reads the same delta (the beta name). */
    static const char delta[] =
        "{\"type\":\"response.audio.delta\",\"note\":\"\\u00e9\",\"delta\":\"U0JCTgAA\"}";
    proto_event_t ev;
    parse_delta(delta, sizeof(delta) - 1, &ev);
    ASSERT(ev.root_ != NULL);
    proto_event_free(&ev);
    /* A delta without its audio, and text that is not JSON. */
    static const char empty[] = "{\"type\":\"response.output_audio.delta\"}";
    proto_event_parse(empty, sizeof(empty) - 1, &ev);
    ASSERT_EQ(ev.type, PROTO_EV_AUDIO_DELTA);
    ASSERT(ev.audio == NULL);
    proto_event_free(&ev);
    proto_event_parse("{\"type\":", 8, &ev);
    ASSERT_EQ(ev.type, PROTO_EV_INVALID);
    proto_event_free(&ev);
}

TEST(proto_other_events_are_read_with_cjson)
{
    static const char err[] =
        "{\"type\":\"error\",\"error\":{\"code\":\"bad_thing\",\"message\":\"it broke\"}}";
    proto_event_t ev;
    proto_event_parse(err, sizeof(err) - 1, &ev);
    ASSERT_EQ(ev.type, PROTO_EV_ERROR);
    ASSERT_STR_EQ(ev.error, "bad_thing: it broke");
    proto_event_free(&ev);
    static const char upd[] = "{\"type\":\"session.updated\",\"session\":{}}";
    proto_event_parse(upd, sizeof(upd) - 1, &ev);
    ASSERT_EQ(ev.type, PROTO_EV_UPDATED);
    proto_event_free(&ev);
    static const char other[] = "{\"type\":\"response.output_audio.done\"}";
    proto_event_parse(other, sizeof(other) - 1, &ev);
    ASSERT_EQ(ev.type, PROTO_EV_OTHER);
    proto_event_free(&ev);
}
