/*
 * Tests of bench/loadgen/storm: the turn of a --tool-storm session driven by the events the
 * service sends (parsed by proto_event_parse, as on the load thread), the orders they may come
 * in, the turn deadline, and the figures in the JSON report.
 */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "bench/loadgen/cli.h"
#include "bench/loadgen/proto.h"
#include "bench/loadgen/session.h"
#include "bench/loadgen/storm.h"
#include "tests/runner.h"

#define T0_NS     (1000 * NS_PER_SEC)
#define TURN_NS   (600 * NS_PER_MS) /* send -> terminal tool.call in these tests */
#define N_NESTED  3
#define TEST_TEXT "Is Monday available? keep calling tools"

static session_t *storm_fixture(void)
{
    memset(&g_cfg, 0, sizeof(g_cfg));
    g_cfg.storm = 1;
    g_cfg.storm_text = TEST_TEXT;
    g_cfg.threads = 1;
    storm_init();
    session_t *s = session_new_all(0, 1);
    s->t_ready = T0_NS;
    s->phase = SESS_STREAMING;
    return s;
}

static void fixture_free(session_t *s)
{
    session_free_all(s, 1);
    storm_shutdown();
}

/* Feeds one event of the service to the session; returns storm_on_event's answer. */
static bool feed(session_t *s, const char *json, uint64_t now)
{
    proto_event_t ev;
    proto_event_parse(json, strlen(json), &ev);
    bool queued = storm_on_event(s, &ev, now);
    proto_event_free(&ev);
    return queued;
}

/* A tool.call event; nested ones have parent_call_id "c1", the supervisor call's id. */
static void tool_call(session_t *s, const char *call_id, const char *name, const char *status,
                      bool nested, uint64_t now)
{
    char json[300];
    snprintf(json, sizeof(json),
             "{\"type\":\"tool.call\",\"call_id\":\"%s\",%s\"name\":\"%s\",\"arguments\":{},"
             "\"status\":\"%s\",\"via\":\"supervisor\"}",
             call_id, nested ? "\"parent_call_id\":\"c1\"," : "", name, status);
    feed(s, json, now);
}

static bool response(session_t *s, const char *type, const char *id, uint64_t now)
{
    char json[200];
    snprintf(json, sizeof(json), "{\"type\":\"%s\",\"response\":{\"id\":\"%s\"}}", type, id);
    return feed(s, json, now);
}

/* Writes whatever the session queued, as on_writeable does; returns the text written. */
static const char *write_ctl(session_t *s, uint64_t now)
{
    const char *m = s->ctl;
    ASSERT(m != NULL);
    s->ctl = NULL;
    storm_sent(s, now);
    return m;
}

/* Both messages of a turn written at now. */
static void start_turn(session_t *s, uint64_t now)
{
    const char *item = write_ctl(s, now);
    cJSON *root = cJSON_Parse(item);
    const cJSON *it = cJSON_GetObjectItem(root, "item");
    const cJSON *part = cJSON_GetArrayItem(cJSON_GetObjectItem(it, "content"), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(root, "type")->valuestring, "conversation.item.create");
    ASSERT_STR_EQ(cJSON_GetObjectItem(it, "role")->valuestring, "user");
    ASSERT_STR_EQ(cJSON_GetObjectItem(part, "type")->valuestring, "input_text");
    ASSERT_STR_EQ(cJSON_GetObjectItem(part, "text")->valuestring, TEST_TEXT);
    cJSON_Delete(root);
    ASSERT_STR_EQ(write_ctl(s, now), "{\"type\":\"response.create\"}");
    ASSERT(s->ctl == NULL);
}

static double num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(o, a);
    if (b)
        v = cJSON_GetObjectItem(v, b);
    ASSERT(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* The figure a (or a.b) of the session's storm_json() equals want. */
#define ASSERT_FIGURE(s, a, b, want)                                                               \
    do {                                                                                           \
        cJSON *o_ = storm_json((s), 1);                                                            \
        double v_ = num(o_, (a), (b));                                                             \
        cJSON_Delete(o_);                                                                          \
        ASSERT_EQ(v_, (want));                                                                     \
    } while (0)

/* As ASSERT_FIGURE for a latency: quantiles are bucket midpoints, within 0.1 %. */
#define ASSERT_FIGURE_MS(s, a, b, want)                                                            \
    do {                                                                                           \
        cJSON *o_ = storm_json((s), 1);                                                            \
        double v_ = num(o_, (a), (b));                                                             \
        cJSON_Delete(o_);                                                                          \
        ASSERT_GE(v_ * 1000, (want)*999);                                                          \
        ASSERT_LE(v_ * 1000, (want)*1001);                                                         \
    } while (0)

TEST(storm_turn_in_order)
{
    session_t *s = storm_fixture();
    ASSERT(storm_ready(s));
    start_turn(s, T0_NS);
    tool_call(s, "c1", STORM_TOOL, "started", false, T0_NS + 1);
    for (int i = 0; i < N_NESTED; i++) {
        tool_call(s, "n1", "checkAvailability", "started", true, T0_NS + 2);
        tool_call(s, "n1", "checkAvailability", "completed", true, T0_NS + 3);
    }
    /* The calling response ends while the supervisor works: not the end of the turn. */
    ASSERT(!response(s, "response.done", "resp_call", T0_NS + 4));
    tool_call(s, "c1", STORM_TOOL, "failed", false, T0_NS + TURN_NS);
    ASSERT(!response(s, "response.created", "resp_answer", T0_NS + TURN_NS + 1));
    ASSERT(!response(s, "response.done", "resp_other", T0_NS + TURN_NS + 2));
    ASSERT(s->ctl == NULL);
    ASSERT(response(s, "response.done", "resp_answer", T0_NS + TURN_NS + 3));
    ASSERT(s->ctl != NULL); /* the next turn's item */
    storm_on_audio(s, 4800);

    ASSERT_FIGURE(s, "turns_completed", NULL, 1);
    ASSERT_FIGURE(s, "turns_timed_out", NULL, 0);
    ASSERT_FIGURE(s, "turns_without_tool", NULL, 0);
    ASSERT_FIGURE(s, "tool_calls", "started", 1 + N_NESTED);
    ASSERT_FIGURE(s, "tool_calls", "completed", N_NESTED);
    ASSERT_FIGURE(s, "tool_calls", "failed", 1);
    ASSERT_FIGURE(s, "supervisor_calls", "started", 1);
    ASSERT_FIGURE(s, "supervisor_calls", "failed", 1);
    ASSERT_FIGURE(s, "supervisor_calls", "completed", 0);
    ASSERT_FIGURE(s, "supervisor_turn_ms", "samples", 1);
    ASSERT_FIGURE_MS(s, "supervisor_turn_ms", "p50", 600);
    ASSERT_FIGURE(s, "audio_bytes_received", NULL, 4800);
    ASSERT_FIGURE(s, "sessions_connected", NULL, 1);
    cJSON *o = storm_json(s, 1);
    ASSERT_STR_EQ(cJSON_GetObjectItem(o, "text")->valuestring, TEST_TEXT);
    cJSON_Delete(o);
    fixture_free(s);
}

TEST(storm_answer_before_calling_response_ends)
{
    /* A supervisor that answers at once (the "high demand" fallback) may end before the calling
     * response does; the turn still waits for the answer's own response. */
    session_t *s = storm_fixture();
    storm_ready(s);
    start_turn(s, T0_NS);
    tool_call(s, "c1", STORM_TOOL, "started", false, T0_NS + 1);
    tool_call(s, "c1", STORM_TOOL, "completed", false, T0_NS + 2);
    ASSERT(!response(s, "response.done", "resp_call", T0_NS + 3));
    ASSERT(!response(s, "response.created", "resp_answer", T0_NS + 4));
    ASSERT(response(s, "response.done", "resp_answer", T0_NS + 5));
    ASSERT_FIGURE(s, "turns_completed", NULL, 1);
    ASSERT_FIGURE(s, "supervisor_calls", "completed", 1);
    fixture_free(s);
}

TEST(storm_turn_without_a_supervisor_call)
{
    session_t *s = storm_fixture();
    storm_ready(s);
    start_turn(s, T0_NS);
    ASSERT(!response(s, "response.created", "resp_1", T0_NS + 1));
    ASSERT(response(s, "response.done", "resp_1", T0_NS + 2)); /* spoke by itself: next turn */
    ASSERT_FIGURE(s, "turns_without_tool", NULL, 1);
    ASSERT_FIGURE(s, "turns_completed", NULL, 0);
    ASSERT_FIGURE(s, "supervisor_turn_ms", "samples", 0);
    fixture_free(s);
}

TEST(storm_turn_deadline)
{
    session_t *s = storm_fixture();
    uint64_t limit = (uint64_t)STORM_TURN_TIMEOUT_S * NS_PER_SEC;
    storm_ready(s);
    /* Messages still queued (a choked socket): no deadline yet. */
    ASSERT(!storm_tick(s, T0_NS + 2 * limit));
    start_turn(s, T0_NS + 2 * limit);
    tool_call(s, "c1", STORM_TOOL, "started", false, T0_NS + 2 * limit + 1);
    ASSERT(!storm_tick(s, T0_NS + 3 * limit - 1));
    ASSERT(storm_tick(s, T0_NS + 3 * limit));
    uint64_t t1 = T0_NS + 3 * limit;
    start_turn(s, t1);
    /* The abandoned call's end is counted, but it does not end the new turn's wait. */
    tool_call(s, "c1", STORM_TOOL, "timeout", false, t1 + 1);
    tool_call(s, "c2", STORM_TOOL, "started", false, t1 + 2);
    tool_call(s, "c2", STORM_TOOL, "completed", false, t1 + TURN_NS);
    ASSERT_FIGURE(s, "turns_timed_out", NULL, 1);
    ASSERT_FIGURE(s, "supervisor_calls", "timeout", 1);
    ASSERT_FIGURE(s, "supervisor_calls", "completed", 1);
    ASSERT_FIGURE(s, "supervisor_turn_ms", "samples", 1);
    ASSERT_FIGURE_MS(s, "supervisor_turn_ms", "max", 600);
    fixture_free(s);
}

TEST(storm_json_null_without_storm)
{
    cJSON *o = storm_json(NULL, 0);
    ASSERT(cJSON_IsNull(o));
}
