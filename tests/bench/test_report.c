/*
 * Tests of bench/loadgen/report: the frames lost by sessions that heard upstream.reconnecting
 * (an injected upstream fault, in a soak) are reported apart from the others, and the event is
 * recognised by the parser the load threads use.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/loadgen/cli.h"
#include "bench/loadgen/hist.h"
#include "bench/loadgen/proto.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/session.h"
#include "tests/runner.h"

#define FRAMES 100

/* Writes the report of n sessions as JSON and parses it back. */
static cJSON *report_of(session_t *all, int n)
{
    static hist_t lat, lag;
    hist_init(&lat);
    hist_init(&lag);
    report_in_t in = {.sessions = all, .n = n, .latency = &lat, .send_lag = &lag};
    char path[] = "/tmp/sb-test-report-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    close(fd);
    ASSERT_EQ(report_write_json(&in, path), 0);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    unlink(path);
    text[len] = '\0';
    cJSON *root = cJSON_Parse(text);
    ASSERT(root != NULL);
    return root;
}

static double figure(const cJSON *root, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(root, a);
    if (b)
        v = cJSON_GetObjectItem(v, b);
    ASSERT(cJSON_IsNumber(v));
    return v->valuedouble;
}

TEST(report_lost_frames_apart_for_reconnected_sessions)
{
    memset(&g_cfg, 0, sizeof(g_cfg));
    g_cfg.threads = 1;
    g_cfg.frame_ms = 20;
    g_cfg.frames_per_session = FRAMES;
    session_t *all = session_new_all(3, 0);
    for (int i = 0; i < 3; i++) {
        all[i].phase = SESS_FINISHED;
        all[i].t_start = 1;
        all[i].t_ready = 2;
        all[i].frames_sent = FRAMES;
        all[i].frames_recv = FRAMES;
    }
    all[1].reconnects = 2; /* lost 3 frames in flight to a dropped upstream */
    all[1].frames_recv = FRAMES - 3;
    all[2].frames_recv = FRAMES - 1; /* lost one with no fault: what a soak fails on */
    cJSON *r = report_of(all, 3);
    ASSERT_EQ(figure(r, "frames", "lost"), 4);
    ASSERT_EQ(figure(r, "frames", "lost_in_reconnected_sessions"), 3);
    ASSERT_EQ(figure(r, "frames", "lost_elsewhere"), 1);
    ASSERT_EQ(figure(r, "sessions_reconnected", NULL), 1);
    ASSERT_EQ(figure(r, "upstream_reconnects", NULL), 2);
    cJSON_Delete(r);
    session_free_all(all, 3);
}

TEST(report_upstream_reconnecting_is_parsed)
{
    static const char ev_text[] = "{\"type\":\"upstream.reconnecting\"}";
    proto_event_t ev;
    proto_event_parse(ev_text, strlen(ev_text), &ev);
    ASSERT_EQ(ev.type, PROTO_EV_RECONNECTING);
    proto_event_free(&ev);
    static const char other[] = "{\"type\":\"upstream.reconnected\"}";
    proto_event_parse(other, strlen(other), &ev);
    ASSERT_EQ(ev.type, PROTO_EV_OTHER);
    proto_event_free(&ev);
}
