/*
 * session: one actor per voice WebSocket (/ws, SPEC 5.1).
 *
 * It validates the query (rate, then token through the gate), enforces the idle and maximum
 * durations, validates client events and forwards `command.ack` to the router. The upstream
 * OpenAI connection attaches here (the relay); until it is configured, client audio is kept in
 * a bounded 2 s buffer as the spec requires for audio that arrives before the upstream is ready.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/voice/events.h"
#include "agents/voice/phonecall.h"
#include "agents/voice/session_int.h"
#include "agents/supervisor/supervisor.h"
#include "agents/voice/voicetools.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"

#define DEFAULT_RATE   24000
#define TEXT_MAX_CHARS 4096

static const char *const end_reason_names[] = {
    "none",
    "client_closed",
    "idle_timeout",
    "max_duration",
    "shutdown",
    "upstream_unavailable",
    "upstream_rejected_config",
    "too_slow",
    "error",
    "caller_hung_up",
    "transferred",
    "agent_ended",
};

static const char *const session_types[] = {
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "response.cancel",
    "response.create",
    "conversation.item.create",
    "audio.played",
    "command.ack",
    NULL,
};

void session_close(session_t *s, ws_close_t close, end_reason_t why)
{
    if (s->state == SESSION_CLOSING)
        return;
    s->state = SESSION_CLOSING;
    if (s->end == END_NONE)
        s->end = why;
    net_ws_close(s->conn, close);
}

/*
 * The sample rate a /ws query asks for: DEFAULT_RATE when it names none, else one of the rates of
 * SPEC 5.1 written exactly, else 0 (close 1003). The value is read into a buffer as long as the
 * whole query: net_query_get() fails the same way for a value too long as for none, and a long
 * rate must be refused, not taken for the default.
 */
static int query_rate(const char *query)
{
    static const struct {
        const char *text;
        int hz;
    } rates[] = {{"16000", 16000}, {"24000", 24000}, {"48000", 48000}};
    size_t cap = strlen(query) + 1;
    char *value = xmalloc(cap);
    int hz = DEFAULT_RATE;
    if (net_query_get(query, "rate", value, cap) >= 0) {
        hz = 0;
        for (size_t i = 0; i < ARRAY_LEN(rates); i++)
            if (strcmp(value, rates[i].text) == 0)
                hz = rates[i].hz;
    }
    free(value);
    return hz;
}

static void on_open(session_t *s, net_ws_open_msg_t *m)
{
    s->conn = m->conn;
    s->started_ns = s->last_client_ns = clock_now_ns();
    str_copy(s->ip, m->peer.ip, sizeof(s->ip));
    if (s->phone) {
        phonecall_open(s, m); /* admitted by the token of its `start` message */
        return;
    }
    char sid[ID_MAX + 2], token[80];
    s->rate = DEFAULT_RATE;
    int rate = query_rate(m->query);
    if (rate == 0) {
        metric_inc(&g_metrics.sessions_total[METRIC_RESULT_REJECTED], 1);
        session_close(s, WS_CLOSE_UNSUPPORTED_RATE, END_ERROR);
        return;
    }
    s->rate = rate;
    int sl = net_query_get(m->query, "sessionId", sid, sizeof(sid));
    if (sl < 0 || !str_is_id(sid, (size_t)sl, SESSION_ID_MIN, ID_MAX))
        sid[0] = '\0';
    if (net_query_get(m->query, "token", token, sizeof(token)) < 0)
        token[0] = '\0';
    str_copy(s->session_id, sid, sizeof(s->session_id));
    actor_send(s->gate,
               &gate_admit_new(&s->actor, sid, token, &m->peer, m->origin, m->same_origin)->hdr);
}

static void on_admitted(session_t *s, gate_admitted_msg_t *m)
{
    if (s->state != SESSION_CHECKING)
        return;
    if (!m->ok) {
        metric_inc(&g_metrics.sessions_total[METRIC_RESULT_REJECTED], 1);
        log_info("session.refused", LOG_S("sid", s->session_id), LOG_S("ip", s->ip),
                 LOG_S("reason", ws_close_reason(m->why)));
        session_close(s, m->why, END_ERROR);
        return;
    }
    s->admitted = true;
    s->state = SESSION_LIVE;
    s->tenant = m->tenant; /* taken from the message */
    m->tenant = NULL;
    if (s->tenant == NULL)
        s->tenant = tenants_sole(); /* a gate that names none: the one business */
    if (!relay_start(s)) {
        session_close(s, WS_CLOSE_AT_CAPACITY, END_ERROR);
        return;
    }
    voicetools_call_start(s);
    actor_timer_start(s->idle, (uint64_t)g_config->session_idle_s * MS_PER_SEC, 0);
    actor_timer_start(s->max, (uint64_t)g_config->session_max_s * MS_PER_SEC, 0);
    log_info("session.start", LOG_S("sid", s->session_id), LOG_S("ip", s->ip),
             LOG_I("rate", s->rate), LOG_S("tenant", s->tenant->id),
             LOG_I("generation", s->tenant->generation),
             LOG_S("channel", s->phone ? "phone" : "web"));
    if (s->phone)
        return; /* no page commands on a phone */
    actor_send(s->router,
               &router_voice_new(ROUTER_MSG_VOICE_OPEN, s->session_id, s->conn, s->tenant)->hdr);
}

/* conversation.item.create accepts one user text message only (SPEC 5.1). */
static bool valid_item(session_t *s, const cJSON *ev)
{
    switch (events_check_client_item(ev, TEXT_MAX_CHARS)) {
    case EVENTS_ITEM_INVALID:
        net_ws_protocol_error(s->conn, "invalid_event",
                              "conversation.item.create takes one user message with input_text");
        return false;
    case EVENTS_ITEM_TOO_LONG:
        net_ws_send_error(s->conn, "text_too_long", "text is limited to 4096 characters");
        return false;
    default:
        return true;
    }
}

static void on_text(session_t *s, net_ws_text_msg_t *m)
{
    s->last_client_ns = clock_now_ns();
    if (s->phone) {
        phonecall_text(s, m);
        return;
    }
    if (strcmp(m->type, "command.ack") == 0) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m->json, "id");
        if (cJSON_IsString(id) && s->admitted) {
            router_ack_msg_t *a = MSG_NEW(router_ack_msg_t, ROUTER_MSG_ACK);
            str_copy(a->session_id, s->session_id, sizeof(a->session_id));
            str_copy(a->id, id->valuestring, sizeof(a->id));
            actor_send(s->router, &a->hdr);
        }
        return;
    }
    if (strcmp(m->type, "audio.played") == 0) {
        relay_audio_played(s, m->json);
        return;
    }
    if (strcmp(m->type, "conversation.item.create") == 0) {
        if (!valid_item(s, m->json))
            return;
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(m->json, "item");
        const cJSON *part =
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "content"), 0);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(text) && s->admitted)
            voicetools_user_text(s, text->valuestring);
    }
    if (s->admitted && s->state == SESSION_LIVE) {
        relay_client_event(s, m->json); /* takes the event */
        m->json = NULL;
    }
}

static void on_binary(session_t *s, net_ws_binary_msg_t *m)
{
    s->last_client_ns = clock_now_ns();
    if (s->phone) { /* Media Streams are JSON text only (SPEC 5.5) */
        msg_free(&m->hdr);
        session_close(s, WS_CLOSE_BINARY, END_ERROR);
        return;
    }
    relay_client_audio(s, m); /* takes m */
}

static void on_idle(session_t *s)
{
    uint64_t idle_ns = (uint64_t)g_config->session_idle_s * NS_PER_SEC;
    uint64_t since = clock_now_ns() - s->last_client_ns;
    if (since >= idle_ns)
        session_close(s, WS_CLOSE_IDLE, END_IDLE);
    else
        actor_timer_start(s->idle, (idle_ns - since) / NS_PER_MS + 1, 0);
}

static end_reason_t reason_from_close(const net_ws_closed_msg_t *m)
{
    if (m->why == WS_CLOSE_NONE)
        return END_CLIENT_CLOSED;
    if (m->why == WS_CLOSE_SHUTDOWN)
        return END_SHUTDOWN;
    if (m->why == WS_CLOSE_TOO_SLOW)
        return END_TOO_SLOW;
    return END_ERROR;
}

static void on_closed(session_t *s, const net_ws_closed_msg_t *m)
{
    if (s->end == END_NONE)
        s->end = phonecall_hung_up(s, m) ? END_CALLER_HUNG_UP : reason_from_close(m);
    if (s->admitted) {
        /* The record first: once the gate has counted the session out, its end is with the
         * store (agents_settle() relies on it at shutdown). */
        voicetools_call_end(s, end_reason_names[s->end]);
        gate_ended_msg_t *g = MSG_NEW(gate_ended_msg_t, GATE_MSG_ENDED);
        str_copy(g->session_id, s->session_id, sizeof(g->session_id));
        str_copy(g->ip, s->ip, sizeof(g->ip));
        actor_send(s->gate, &g->hdr);
        if (s->phone == NULL)
            actor_send(
                s->router,
                &router_voice_new(ROUTER_MSG_VOICE_CLOSED, s->session_id, s->conn, NULL)->hdr);
        bool error = s->end == END_TOO_SLOW || s->end == END_ERROR ||
                     s->end == END_UPSTREAM_UNAVAILABLE || s->end == END_UPSTREAM_REJECTED;
        metric_inc(&g_metrics.sessions_total[error ? METRIC_RESULT_ERROR : METRIC_RESULT_COMPLETED],
                   1);
        log_info("session.end", LOG_S("sid", s->session_id),
                 LOG_S("reason", end_reason_names[s->end]), LOG_I("code", m->code),
                 LOG_I("duration_ms", (clock_now_ns() - s->started_ns) / NS_PER_MS),
                 LOG_S("call", s->record_id), LOG_S("openai_session", s->openai_session),
                 LOG_S("request_id", s->request_id), LOG_I("input_tokens", s->input_tokens),
                 LOG_I("output_tokens", s->output_tokens));
    }
    actor_stop_self(&s->actor);
}

static void session_handle(actor_t *self, msg_t *m)
{
    session_t *s = (session_t *)self;
    switch (m->type) {
    case NET_MSG_WS_OPEN:
        on_open(s, (net_ws_open_msg_t *)m);
        break;
    case GATE_MSG_ADMITTED:
        on_admitted(s, (gate_admitted_msg_t *)m);
        break;
    case NET_MSG_WS_TEXT:
        if (((net_ws_text_msg_t *)m)->conn != s->conn) { /* the upstream's, routed here */
            if (relay_upstream_text(s, (net_ws_text_msg_t *)m))
                return; /* passed on */
            break;
        }
        on_text(s, (net_ws_text_msg_t *)m);
        break;
    case NET_MSG_WS_BINARY:
        on_binary(s, (net_ws_binary_msg_t *)m);
        return; /* ownership taken */
    case NET_MSG_WS_FAST:
        if (((net_ws_binary_msg_t *)m)->conn != s->conn) { /* the upstream's audio delta */
            relay_upstream_fast(s, (net_ws_binary_msg_t *)m);
            break;
        }
        s->last_client_ns = clock_now_ns(); /* only the phone route has a fast reader */
        phonecall_fast(s, (net_ws_binary_msg_t *)m);
        return; /* ownership taken */
    case SESSION_MSG_UP_STATE:
        relay_upstream_state(s, (upstream_state_msg_t *)m);
        break;
    case SESSION_MSG_UP_EVENT:
        relay_upstream_event(s, ((event_msg_t *)m)->event);
        break;
    case TOOL_MSG_RESULT:
        voicetools_result(s, (tool_result_msg_t *)m);
        break;
    case SUP_MSG_TOOL_EVENT:
        voicetools_nested(s, (tool_event_msg_t *)m);
        break;
    case SESSION_MSG_TOOL_TIMEOUT:
        voicetools_timeout(s, ((timer_msg_t *)m)->timer->data);
        break;
    case NET_MSG_WS_ACTIVITY:
        s->last_client_ns = clock_now_ns();
        if (s->phone)
            phonecall_activity(s, (net_ws_activity_msg_t *)m);
        break;
    case SESSION_MSG_PHONE_START:
    case SESSION_MSG_PHONE_DTMF:
        if (s->phone)
            phonecall_timer(s, m->type);
        break;
    case NET_MSG_FETCH_DONE:
        phonecall_fetch_done(s, (net_fetch_done_msg_t *)m);
        break;
    case SESSION_MSG_IDLE:
        on_idle(s);
        break;
    case SESSION_MSG_MAX:
        session_close(s, WS_CLOSE_MAX_DURATION, END_MAX);
        break;
    case NET_MSG_WS_CLOSED:
        on_closed(s, (net_ws_closed_msg_t *)m);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void session_stop(actor_t *self)
{
    session_t *s = (session_t *)self;
    actor_timer_free(s->idle);
    actor_timer_free(s->max);
    phonecall_free(s); /* before the tools: it may hold a transferCall */
    relay_free(s);
    voicetools_free(s);
    actor_unref(s->gate);
    actor_unref(s->router);
    actor_unref(s->pool);
    actor_unref(s->store);
    tenant_unref(s->tenant);
}

static const actor_type_t session_type = {"session", session_handle, session_stop};

session_t *session_spawn(const voice_deps_t *deps)
{
    session_t *s = xcalloc(1, sizeof(*s));
    if (actor_spawn(&s->actor, &session_type, LANE_REALTIME) != 0) {
        free(s);
        metric_inc(&g_metrics.sessions_total[METRIC_RESULT_REJECTED], 1);
        return NULL;
    }
    /* It sends to these until it stops: its own references keep them alive that long. */
    actor_ref(deps->gate);
    s->gate = deps->gate;
    actor_ref(deps->router);
    s->router = deps->router;
    actor_ref(deps->pool);
    s->pool = deps->pool;
    actor_ref(deps->store);
    s->store = deps->store;
    s->idle = actor_timer_new(&s->actor, SESSION_MSG_IDLE, NULL);
    s->max = actor_timer_new(&s->actor, SESSION_MSG_MAX, NULL);
    return s; /* the spawn reference becomes the connection's */
}

actor_t *session_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why)
{
    (void)peer;
    (void)query;
    session_t *s = session_spawn(arg);
    if (s == NULL) {
        *why = WS_CLOSE_AT_CAPACITY;
        return NULL;
    }
    return &s->actor;
}

const char *const *session_event_types(void)
{
    return session_types;
}
