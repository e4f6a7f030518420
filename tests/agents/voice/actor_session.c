/*
 * The voice session actor (agents/voice/session.c, relay.c, voicetools.c) with its real upstream
 * actor (upstream.c), on the fake network and clock, its collaborators played by probes:
 * admission through the gate (SPEC 5.1, 14 "Order of checks"), the upstream's connect and
 * configuration (SPEC 6), session.ready, the idle timeout and the end reasons of the call record
 * (SPEC 9, 14 "Records"), recycling with the replay of the conversation (SPEC 6, 14 "Upstream
 * attempts").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/auth/auth.h"
#include "agents/page/page.h"
#include "agents/voice/voice.h"
#include "audio/b64.h"
#include "tests/fakes/harness.h"

#define SID         "sess_test_1"
#define TOKEN       "ek_0123456789abcdef"
#define OPENAI_SID  "sess_oai_1"
#define UP_REQUEST  "req_up_1"
#define IDLE_S      30
#define ACTIVE_AT_S 20 /* the idle test's client frame, after ready */
#define IDLE_LAST_S 2  /* the idle test's last step: past IDLE_S since that frame */
#define RECYCLE_S   60
#define AUDIO_BYTES 480 /* 10 ms of PCM16 at 24 kHz */
#define MS_PER_S    1000

/* A session's world: its collaborators, and where the test has read the network log to. */
typedef struct rig {
    probe_t *gate, *router, *pool, *store;
    char *session_update;
    voice_deps_t deps;
    conn_id_t client;    /* the /ws connection */
    conn_id_t up;        /* the upstream's current connection */
    uint64_t at_client;  /* cursor: frames to the client */
    uint64_t at_up;      /* cursor: frames to the upstream */
    uint64_t at_connect; /* cursor: net_wsc_connect calls */
} rig_t;

static void rig_start(rig_t *r, const char *const *env)
{
    memset(r, 0, sizeof(*r));
    harness_start(env);
    r->gate = probe_new("gate", LANE_TOOLS);
    r->router = probe_new("router", LANE_TOOLS);
    r->pool = probe_new("pool", LANE_TOOLS);
    r->store = probe_new("store", LANE_TOOLS);
    tenant_t *demo = tenants_get(TENANT_DEFAULT_ID);
    r->session_update = voice_session_update_new(&demo->cfg, false);
    tenant_unref(demo);
    r->deps = (voice_deps_t){.gate = &r->gate->actor,
                             .router = &r->router->actor,
                             .pool = &r->pool->actor,
                             .store = &r->store->actor};
}

static void rig_stop(rig_t *r)
{
    probe_free(r->gate);
    probe_free(r->router);
    probe_free(r->pool);
    probe_free(r->store);
    harness_stop();
    free(r->session_update);
}

/* Opens /ws with query; the session asks the gate. */
static void rig_open(rig_t *r, const char *query)
{
    r->client = fake_net_ws_accept(session_ws_target, &r->deps, query);
    ASSERT_NE(r->client, 0);
}

/* The gate answers the session's GATE_MSG_ADMIT (taking it; its free drops the reference). */
static void gate_answer(rig_t *r, bool ok, ws_close_t why)
{
    gate_admit_msg_t *a = PROBE_TAKE(r->gate, gate_admit_msg_t, GATE_MSG_ADMIT);
    gate_admitted_msg_t *m = gate_admitted_new(ok, why, ok ? tenants_get(TENANT_DEFAULT_ID) : NULL);
    actor_send(a->session, &m->hdr);
    msg_free(&a->hdr);
}

/* The upstream's next connect: returns its connection, checked against the configuration. */
static conn_id_t next_connect(rig_t *r)
{
    const fake_net_call_t *c = fake_net_wait(&r->at_connect, FNET_WSC_CONNECT, 0);
    ASSERT(c != NULL);
    ASSERT_STR_EQ(c->url, "wss://api.openai.com/v1/realtime?model=gpt-realtime");
    ASSERT_STR_EQ(c->bearer, HARNESS_API_KEY);
    ASSERT_EQ(c->near, r->client);                      /* on the client's network thread */
    ASSERT(c->target != fake_net_ws_target(r->client)); /* the upstream actor, not the session */
    return c->conn;
}

/* The upstream connection up opens and is created: the session.update goes out on it. */
static void upstream_created(rig_t *r, conn_id_t up)
{
    r->up = up;
    fake_net_ws_opened(up, UP_REQUEST);
    fake_net_ws_text(up, "{\"type\":\"session.created\",\"session\":{\"id\":\"" OPENAI_SID "\"}}");
    const fake_net_call_t *u = fake_net_wait_type(&r->at_up, up, "session.update");
    ASSERT(u != NULL);
    ASSERT_STR_EQ(u->text, r->session_update);
}

/* Open, admitted, upstream configured, session.ready seen. */
static void rig_ready(rig_t *r, const char *query)
{
    rig_open(r, query);
    gate_answer(r, true, WS_CLOSE_NONE);
    upstream_created(r, next_connect(r));
    fake_net_ws_text(r->up, "{\"type\":\"session.updated\"}");
    ASSERT(fake_net_wait_type(&r->at_client, r->client, "session.ready") != NULL);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        TEST_FAIL_("%s is not a number", key);
    return v->valuedouble;
}

/* The session has stopped: it released its reference to the gate (the test holds the other). */
static void wait_session_gone(rig_t *r)
{
    probe_wait_refs(r->gate, 1);
}

/* ---- Admission ------------------------------------------------------------------------------- */

TEST(session_asks_the_gate_with_token_and_session_id)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_open(&r, "sessionId=" SID "&token=" TOKEN "&rate=16000");
    gate_admit_msg_t *a = PROBE_TAKE(r.gate, gate_admit_msg_t, GATE_MSG_ADMIT);
    ASSERT_STR_EQ(a->session_id, SID);
    ASSERT_STR_EQ(a->token, TOKEN);
    ASSERT_STR_EQ(a->peer.ip, "127.0.0.1");
    ASSERT(a->session == fake_net_ws_target(r.client)); /* it names itself as the asker */
    gate_admitted_msg_t *m = MSG_NEW(gate_admitted_msg_t, GATE_MSG_ADMITTED);
    m->ok = false;
    m->why = WS_CLOSE_UNAUTHORIZED;
    actor_send(a->session, &m->hdr);
    msg_free(&a->hdr);
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_client, FNET_WS_CLOSE, r.client), WS_CLOSE_UNAUTHORIZED);
    fake_net_ws_finish_close(r.client);
    wait_session_gone(&r);
    rig_stop(&r);
}

TEST(session_refused_by_the_gate_closes_with_its_reason)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_open(&r, "sessionId=" SID "&token=" TOKEN);
    gate_answer(&r, false, WS_CLOSE_SESSION_EXISTS);
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_client, FNET_WS_CLOSE, r.client),
                      WS_CLOSE_SESSION_EXISTS);
    fake_net_ws_finish_close(r.client);
    wait_session_gone(&r);
    /* Refused: no upstream, no call record, nothing for the gate to forget. */
    ASSERT_EQ(fake_net_count(FNET_WSC_CONNECT, 0), 0);
    ASSERT_EQ(probe_count(r.store, 0), 0);
    ASSERT_EQ(probe_count(r.gate, GATE_MSG_ENDED), 0);
    ASSERT_EQ(probe_count(r.router, 0), 0);
    rig_stop(&r);
}

TEST(session_unsupported_rate_closes_1003_before_the_gate)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_open(&r, "sessionId=" SID "&token=" TOKEN "&rate=8000");
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_client, FNET_WS_CLOSE, r.client),
                      WS_CLOSE_UNSUPPORTED_RATE);
    fake_net_ws_finish_close(r.client);
    wait_session_gone(&r);
    ASSERT_EQ(probe_count(r.gate, 0), 0); /* rate is checked before the token (SPEC 14) */
    rig_stop(&r);
}

/* Every rate but the three (SPEC 5.1), however long, is refused: a value too long for a small
 * buffer is not the same as no rate at all. */
TEST(session_any_other_rate_closes_1003_whatever_its_length)
{
    static const char *const rates[] = {
        "rate=",                                       /* empty */
        "rate=1600000000000000",                       /* 16 characters */
        "rate=24000000000000000000000000000000000000", /* longer still */
        "rate=00000000000000016000",                   /* 16000 with leading zeros */
    };
    rig_t r;
    rig_start(&r, NULL);
    for (size_t i = 0; i < ARRAY_LEN(rates); i++) {
        char query[160];
        snprintf(query, sizeof(query), "sessionId=%s_%zu&token=%s&%s", SID, i, TOKEN, rates[i]);
        r.at_client = 0;
        rig_open(&r, query);
        FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_client, FNET_WS_CLOSE, r.client),
                          WS_CLOSE_UNSUPPORTED_RATE);
        fake_net_ws_finish_close(r.client);
        wait_session_gone(&r);
    }
    ASSERT_EQ(probe_count(r.gate, 0), 0);
    rig_stop(&r);
}

/* ---- The upstream ---------------------------------------------------------------------------- */

TEST(session_admitted_configures_the_upstream_then_is_ready)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_open(&r, "sessionId=" SID "&token=" TOKEN);
    gate_answer(&r, true, WS_CLOSE_NONE);

    /* Admitted: the call record opens and the router learns the voice socket. */
    store_rec_msg_t *start = PROBE_TAKE(r.store, store_rec_msg_t, STORE_MSG_CALL_START);
    ASSERT_STR_EQ(start->session_id, SID);
    ASSERT(strncmp(start->call_id, "call_", 5) == 0);
    ASSERT_EQ(start->at_ms, FAKE_CLOCK_WALL_MS);
    msg_free(&start->hdr);
    router_voice_msg_t *open = PROBE_TAKE(r.router, router_voice_msg_t, ROUTER_MSG_VOICE_OPEN);
    ASSERT_STR_EQ(open->session_id, SID);
    ASSERT_EQ(open->conn, r.client);
    msg_free(&open->hdr);

    upstream_created(&r, next_connect(&r));
    /* Audio before session.updated is kept, not sent and not dropped (SPEC 5.1, 6). */
    uint8_t pcm[AUDIO_BYTES];
    for (size_t i = 0; i < sizeof(pcm); i++)
        pcm[i] = (uint8_t)(i * 7);
    fake_net_ws_binary(r.client, pcm, sizeof(pcm));
    fake_clock_settle();
    ASSERT_EQ(fake_net_count_type(r.up, "input_audio_buffer.append"), 0);
    ASSERT_EQ(fake_net_count_type(r.client, "session.ready"), 0);

    fake_net_ws_text(r.up, "{\"type\":\"session.updated\"}");
    const fake_net_call_t *ready = fake_net_wait_type(&r.at_client, r.client, "session.ready");
    ASSERT(ready != NULL);
    ASSERT_STR_EQ(str_of(ready->json, "sessionId"), SID);
    const cJSON *audio = cJSON_GetObjectItemCaseSensitive(ready->json, "audio");
    ASSERT_EQ(num_of(audio, "input_rate"), 24000);
    ASSERT_EQ(num_of(audio, "output_rate"), 24000);
    ASSERT_STR_EQ(str_of(audio, "format"), "pcm16");

    const fake_net_call_t *append = fake_net_wait_type(&r.at_up, r.up, "input_audio_buffer.append");
    ASSERT(append != NULL);
    const char *b64 = str_of(append->json, "audio");
    ASSERT(b64 != NULL);
    uint8_t back[AUDIO_BYTES + 4];
    ASSERT_EQ(b64_decode(b64, strlen(b64), back), (ssize_t)sizeof(pcm));
    ASSERT(memcmp(back, pcm, sizeof(pcm)) == 0);
    rig_stop(&r);
}

TEST(session_upstream_rejecting_the_config_closes_1011)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_open(&r, "sessionId=" SID "&token=" TOKEN);
    gate_answer(&r, true, WS_CLOSE_NONE);
    upstream_created(&r, next_connect(&r));
    fake_net_ws_text(r.up, "{\"type\":\"error\",\"error\":{\"code\":\"invalid_value\","
                           "\"message\":\"bad voice\"}}");
    const fake_net_call_t *err = fake_net_wait_type(&r.at_client, r.client, "error");
    ASSERT(err != NULL);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(err->json, "error");
    ASSERT_STR_EQ(str_of(e, "code"), "upstream_rejected_config");
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_client, FNET_WS_CLOSE, r.client),
                      WS_CLOSE_UPSTREAM_REJECTED);
    fake_net_ws_finish_close(r.client);
    store_rec_msg_t *end = PROBE_TAKE(r.store, store_rec_msg_t, STORE_MSG_CALL_END);
    ASSERT_STR_EQ(end->end_reason, "upstream_rejected_config");
    msg_free(&end->hdr);
    rig_stop(&r);
}

/* ---- Ends ------------------------------------------------------------------------------------ */

TEST(session_idle_timeout_closes_4408_and_records_idle_timeout)
{
    static const char *const env[] = {"SWITCHBOARD_SESSION_IDLE_S=30", NULL};
    rig_t r;
    rig_start(&r, env);
    rig_ready(&r, "sessionId=" SID "&token=" TOKEN);
    store_rec_msg_t *start = PROBE_TAKE(r.store, store_rec_msg_t, STORE_MSG_CALL_START);

    /* Client activity moves the idle clock; upstream events do not (SPEC 14). */
    fake_clock_advance_ms(ACTIVE_AT_S * MS_PER_S);
    fake_net_ws_text(r.client, "{\"type\":\"input_audio_buffer.commit\"}");
    ASSERT(fake_net_wait_type(&r.at_up, r.up, "input_audio_buffer.commit") != NULL);
    fake_clock_advance_ms((IDLE_S - 1) * MS_PER_S); /* the first expiry finds it active */
    fake_net_ws_text(r.up, "{\"type\":\"response.created\",\"response\":{}}");
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "response.created") != NULL);
    fake_clock_settle();
    ASSERT_EQ(fake_net_count(FNET_WS_CLOSE, r.client), 0);

    fake_clock_advance_ms(IDLE_LAST_S * MS_PER_S); /* IDLE_S of silence since the commit */
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_client, FNET_WS_CLOSE, r.client), WS_CLOSE_IDLE);
    fake_net_ws_finish_close(r.client);

    store_rec_msg_t *end = PROBE_TAKE(r.store, store_rec_msg_t, STORE_MSG_CALL_END);
    ASSERT_STR_EQ(end->call_id, start->call_id);
    ASSERT_STR_EQ(end->end_reason, "idle_timeout");
    ASSERT_STR_EQ(end->openai_session_id, OPENAI_SID);
    ASSERT_STR_EQ(end->request_id, UP_REQUEST);
    ASSERT_EQ(end->at_ms, FAKE_CLOCK_WALL_MS + (ACTIVE_AT_S + IDLE_S - 1 + IDLE_LAST_S) * MS_PER_S);
    msg_free(&end->hdr);
    msg_free(&start->hdr);
    gate_ended_msg_t *g = PROBE_TAKE(r.gate, gate_ended_msg_t, GATE_MSG_ENDED);
    ASSERT_STR_EQ(g->session_id, SID);
    msg_free(&g->hdr);
    /* Its upstream ends with it. */
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_up, FNET_WS_CLOSE, r.up), WS_CLOSE_NORMAL);
    rig_stop(&r);
}

/* Closes a ready session the way `how` says and returns the end reason of its record. */
static char *end_reason_after(rig_t *r, int how)
{
    switch (how) {
    case 0:
        fake_net_ws_closed(r->client, WS_CLOSE_SHUTDOWN); /* the drain */
        break;
    case 1:
        fake_net_ws_peer_closed(r->client, WS_CODE_NORMAL);
        break;
    default:
        fake_net_ws_closed(r->client, WS_CLOSE_TOO_SLOW);
        break;
    }
    store_rec_msg_t *end = PROBE_TAKE(r->store, store_rec_msg_t, STORE_MSG_CALL_END);
    char *reason = xstrdup(end->end_reason);
    msg_free(&end->hdr);
    return reason;
}

TEST(session_end_reason_follows_how_the_socket_closed)
{
    static const char *const want[] = {"shutdown", "client_closed", "too_slow"};
    rig_t r;
    rig_start(&r, NULL);
    for (int how = 0; how < (int)ARRAY_LEN(want); how++) {
        char query[128];
        snprintf(query, sizeof(query), "sessionId=%s_%d&token=%s", SID, how, TOKEN);
        r.at_client = r.at_up = 0;
        rig_ready(&r, query);
        char *reason = end_reason_after(&r, how);
        ASSERT_STR_EQ(reason, want[how]);
        free(reason);
        router_voice_msg_t *c = PROBE_TAKE(r.router, router_voice_msg_t, ROUTER_MSG_VOICE_CLOSED);
        ASSERT_EQ(c->conn, r.client);
        msg_free(&c->hdr);
        FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_up, FNET_WS_CLOSE, r.up), WS_CLOSE_NORMAL);
        fake_net_ws_finish_close(r.up);
        wait_session_gone(&r);
    }
    rig_stop(&r);
}

/* ---- Recycling ------------------------------------------------------------------------------- */

/* The role and text of a replayed conversation.item.create. */
static void assert_item(const fake_net_call_t *c, const char *role, const char *part_type,
                        const char *text)
{
    ASSERT(c != NULL);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->json, "item");
    ASSERT_STR_EQ(str_of(item, "type"), "message");
    ASSERT_STR_EQ(str_of(item, "role"), role);
    const cJSON *part = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "content"), 0);
    ASSERT_STR_EQ(str_of(part, "type"), part_type);
    ASSERT_STR_EQ(str_of(part, "text"), text);
}

/* The keys of a JSON object, comma-separated in order: what a forwarded event carries. */
static void keys_of(const cJSON *o, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    const cJSON *c;
    cJSON_ArrayForEach(c, o)
    {
        int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", c->string);
        if (w < 0 || (size_t)w >= n - len)
            TEST_FAIL_("the keys do not fit in %zu bytes", n);
        len += (size_t)w;
    }
}

/* A client's conversation.item.create reaches the upstream with the fields SPEC 5.1 documents and
 * nothing else: no client-chosen ids, no previous_item_id, no extra content fields. */
TEST(session_item_create_forwards_only_the_documented_fields)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_ready(&r, "sessionId=" SID "&token=" TOKEN);
    fake_net_ws_text(r.client,
                     "{\"type\":\"conversation.item.create\",\"event_id\":\"ev_x\","
                     "\"previous_item_id\":\"root\",\"extra\":1,"
                     "\"item\":{\"id\":\"item_client\",\"type\":\"message\",\"role\":\"user\","
                     "\"status\":\"completed\",\"object\":\"realtime.item\","
                     "\"content\":[{\"type\":\"input_text\",\"text\":\"Hello there\","
                     "\"audio\":\"AAAA\",\"transcript\":\"injected\"}]}}");
    const fake_net_call_t *c = fake_net_wait_type(&r.at_up, r.up, "conversation.item.create");
    ASSERT(c != NULL);
    char keys[256];
    keys_of(c->json, keys, sizeof(keys));
    ASSERT_STR_EQ(keys, "type,item");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->json, "item");
    keys_of(item, keys, sizeof(keys));
    ASSERT_STR_EQ(keys, "type,role,content");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
    ASSERT_EQ(cJSON_GetArraySize(content), 1);
    const cJSON *part = cJSON_GetArrayItem(content, 0);
    keys_of(part, keys, sizeof(keys));
    ASSERT_STR_EQ(keys, "type,text");
    assert_item(c, "user", "input_text", "Hello there");
    rig_stop(&r);
}

static void transcript(rig_t *r, const char *role, const char *text)
{
    store_rec_msg_t *t = PROBE_TAKE(r->store, store_rec_msg_t, STORE_MSG_TRANSCRIPT);
    ASSERT_STR_EQ(t->role, role);
    ASSERT_STR_EQ(t->text, text);
    msg_free(&t->hdr);
}

TEST(session_recycle_replays_the_newest_history_on_the_new_upstream)
{
    static const char *const env[] = {"SWITCHBOARD_UPSTREAM_RECYCLE_S=60",
                                      "SWITCHBOARD_REPLAY_ITEMS=2", NULL};
    rig_t r;
    rig_start(&r, env);
    rig_ready(&r, "sessionId=" SID "&token=" TOKEN);
    conn_id_t up1 = r.up;

    /* Three transcript lines: recorded, and kept as the session's one history. */
    fake_net_ws_text(up1, "{\"type\":\"conversation.item.input_audio_transcription.completed\","
                          "\"item_id\":\"it_1\",\"transcript\":\"I'd like a haircut.\"}");
    fake_net_ws_text(up1, "{\"type\":\"response.output_audio_transcript.done\","
                          "\"item_id\":\"it_2\",\"transcript\":\"Sure, what day?\"}");
    fake_net_ws_text(up1, "{\"type\":\"conversation.item.input_audio_transcription.completed\","
                          "\"item_id\":\"it_3\",\"transcript\":\"Tomorrow at ten.\"}");
    transcript(&r, "user", "I'd like a haircut.");
    transcript(&r, "assistant", "Sure, what day?");
    transcript(&r, "user", "Tomorrow at ten.");

    /* The recycle timer: the client hears about it, the old connection goes, a new one comes. */
    fake_clock_advance_ms(RECYCLE_S * MS_PER_S);
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "upstream.reconnecting") != NULL);
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_up, FNET_WS_CLOSE, up1), WS_CLOSE_NORMAL);
    conn_id_t up2 = next_connect(&r);
    ASSERT_NE(up2, up1);
    /* Client audio meanwhile is kept for the new upstream. */
    uint8_t pcm[AUDIO_BYTES] = {1, 2, 3};
    fake_net_ws_binary(r.client, pcm, sizeof(pcm));

    r.at_up = 0;
    upstream_created(&r, up2);
    fake_net_ws_text(up2, "{\"type\":\"session.updated\"}");
    /* The newest SWITCHBOARD_REPLAY_ITEMS lines, oldest first, before the kept audio. */
    const fake_net_call_t *first = fake_net_wait_type(&r.at_up, up2, "conversation.item.create");
    assert_item(first, "assistant", "output_text", "Sure, what day?");
    const fake_net_call_t *second = fake_net_wait_type(&r.at_up, up2, "conversation.item.create");
    assert_item(second, "user", "input_text", "Tomorrow at ten.");
    ASSERT(fake_net_wait_type(&r.at_up, up2, "input_audio_buffer.append") != NULL);
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "upstream.reconnected") != NULL);
    ASSERT_EQ(fake_net_count_type(up2, "conversation.item.create"), 2);
    ASSERT_EQ(fake_net_count_type(r.client, "session.ready"), 1); /* once per session */

    /* The old connection's close arriving late changes nothing. */
    fake_net_ws_finish_close(up1);
    fake_net_ws_text(up2, "{\"type\":\"response.created\",\"response\":{}}");
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "response.created") != NULL);
    ASSERT_EQ(fake_net_count(FNET_WSC_CONNECT, 0), 2);
    rig_stop(&r);
}

/* ---- The audio path: one actor each way --------------------------------------------------------
 */

TEST(session_reads_and_writes_the_ready_upstream_socket_itself)
{
    rig_t r;
    rig_start(&r, NULL);
    rig_ready(&r, "sessionId=" SID "&token=" TOKEN);
    conn_id_t up1 = r.up;
    actor_t *upstream = fake_net_ws_target(up1);
    ASSERT(fake_net_text_target(up1) == fake_net_ws_target(r.client)); /* routed to the session */

    /* Client audio goes out on the upstream's socket as an append, base64 of the same bytes. */
    uint8_t pcm[AUDIO_BYTES];
    for (size_t i = 0; i < sizeof(pcm); i++)
        pcm[i] = (uint8_t)(i * 7);
    fake_net_ws_binary(r.client, pcm, sizeof(pcm));
    const fake_net_call_t *a = fake_net_wait_type(&r.at_up, up1, "input_audio_buffer.append");
    ASSERT(a != NULL);
    cJSON *j = cJSON_Parse(a->text);
    uint8_t back[AUDIO_BYTES + 4]; /* b64_decoded_max of the append's text */
    ASSERT_EQ(b64_decode(str_of(j, "audio"), strlen(str_of(j, "audio")), back),
              (ssize_t)sizeof(pcm));
    ASSERT_EQ(memcmp(back, pcm, sizeof(pcm)), 0);
    cJSON_Delete(j);

    /* An output audio delta (routed to the session, net_wsc_route_text) reaches the client as
     * PCM16, and the relayed events keep their order around it. */
    char b64[AUDIO_BYTES * 2];
    size_t n = b64_encode(pcm, sizeof(pcm), b64);
    b64[n] = '\0';
    char delta[AUDIO_BYTES * 2 + 128];
    snprintf(delta, sizeof(delta),
             "{\"type\":\"response.output_audio.delta\",\"item_id\":\"it_a\",\"delta\":\"%s\"}",
             b64);
    fake_net_ws_text(up1, "{\"type\":\"response.created\",\"response\":{}}");
    fake_net_ws_text(up1, delta);
    fake_net_ws_text(up1, "{\"type\":\"response.done\",\"response\":{}}");
    uint64_t at = r.at_client;
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "response.created") != NULL);
    const fake_net_call_t *bin = fake_net_wait(&at, FNET_WS_BINARY, r.client);
    ASSERT(bin != NULL);
    ASSERT_EQ(bin->len, sizeof(pcm));
    ASSERT_EQ(memcmp(bin->text, pcm, sizeof(pcm)), 0);
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "response.done") != NULL);

    /* What the connection's life depends on still reaches the upstream actor: session_expired
     * starts a new connection. */
    fake_net_ws_text(up1, "{\"type\":\"error\",\"error\":{\"code\":\"session_expired\","
                          "\"message\":\"expired\"}}");
    ASSERT(fake_net_wait_type(&r.at_client, r.client, "upstream.reconnecting") != NULL);
    FAKE_ASSERT_CLOSE(fake_net_wait(&r.at_up, FNET_WS_CLOSE, up1), WS_CLOSE_NORMAL);
    conn_id_t up2 = next_connect(&r);
    ASSERT(fake_net_ws_target(up2) == upstream);
    rig_stop(&r);
}
