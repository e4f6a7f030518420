/*
 * upstream: one actor per voice session owning its OpenAI Realtime connection (SPEC 6, 14).
 *
 * Life of a connection: connect (each attempt has UPSTREAM_ATTEMPT_MS from DNS to
 * session.created) -> session.created -> one session.update (GA shape) -> session.updated =
 * ready. Failures before ready are retried after 250, 500 and 1000 ms (401, 403 and 404 at the
 * upgrade are not), then the session is told UPSTREAM_UNAVAILABLE. An `error` answering the
 * session.update is fatal (UPSTREAM_REJECTED). Once ready, an unexpected drop, close 1001,
 * `session_expired` or the recycle timer starts a new connection: the session buffers client
 * audio meanwhile, and the new connection is configured and given the conversation so far (the
 * newest SWITCHBOARD_REPLAY_ITEMS user and assistant texts) before the session hears
 * UPSTREAM_RECONNECTED.
 *
 * Audio does not pass through this actor. Once the connection is ready, its text messages are
 * routed to the session (net_wsc_route_text) and the session is told the socket's id: from then
 * on the session writes input_audio_buffer.append and its events to the socket itself and reads
 * the upstream's events itself (relay.c), passing back only what the connection's life depends
 * on (error, session.*). A frame crosses one actor each way instead of two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/supervisor/prompt.h"
#include "agents/voice/upstream.h"
#include "agents/voice/voice.h"
#include "agents/voice/events.h"
#include "agents/voice/voicetools.h"
#include "audio/b64.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"

#define UPSTREAM_ATTEMPT_MS    5000
#define UPSTREAM_RETRIES       3
#define UPSTREAM_RETRY_BASE_MS 250
#define UPSTREAM_MAX_MSG       (16u * 1024 * 1024)

typedef enum phase {
    PHASE_CONNECTING,  /* waiting for the upgrade and session.created */
    PHASE_CONFIGURING, /* session.update sent, waiting for session.updated */
    PHASE_READY,
    PHASE_WAITING, /* between attempts */
    PHASE_DONE,    /* failed for good or ended */
} phase_t;

typedef struct upstream {
    actor_t actor;
    actor_t *session; /* a reference */
    conn_id_t near;   /* the client's socket: the upstream lives on its network thread */
    conn_id_t conn;   /* the current connection, 0 when none */
    uint64_t attempt; /* cookie of the current attempt */
    int failures;     /* failed attempts in this connect cycle */
    phase_t phase;
    bool ever_ready; /* a later connect cycle is a reconnect */
    uint64_t attempt_ns;
    actor_timer_t *deadline;
    actor_timer_t *retry;
    actor_timer_t *recycle;
    char *session_update; /* sent after every session.created (its tenant's, voice.h) */
    char openai_session[64];
    char request_id[64]; /* x-request-id of the current connection's upgrade */
    bool passthrough;    /* audio/pcmu: base64 both ways (the session's to handle) */
} upstream_t;

static void event_msg_free(msg_t *m)
{
    cJSON_Delete(((event_msg_t *)m)->event);
    msg_block_free(m);
}

event_msg_t *event_msg_new(uint32_t type, cJSON *event)
{
    event_msg_t *m = MSG_NEW(event_msg_t, type);
    m->hdr.free_fn = event_msg_free;
    m->event = event;
    return m;
}

static void tell_session(upstream_t *u, upstream_state_t st, const char *detail)
{
    upstream_state_msg_t *m = MSG_NEW(upstream_state_msg_t, SESSION_MSG_UP_STATE);
    m->state = st;
    m->conn = u->conn;
    str_copy(m->detail, detail ? detail : "", sizeof(m->detail));
    str_copy(m->openai_session, u->openai_session, sizeof(m->openai_session));
    str_copy(m->request_id, u->request_id, sizeof(m->request_id));
    actor_send(u->session, &m->hdr);
}

/* ---- Configuration --------------------------------------------------------------------------- */

/* Adds {"type":"audio/pcm","rate":24000} or {"type":"audio/pcmu"} as format to o. */
static void add_format(cJSON *o, bool phone)
{
    cJSON *fmt = cJSON_AddObjectToObject(o, "format");
    cJSON_AddStringToObject(fmt, "type", phone ? "audio/pcmu" : "audio/pcm");
    if (!phone)
        cJSON_AddNumberToObject(fmt, "rate", UPSTREAM_RATE_HZ);
}

char *voice_session_update_new(const agentcfg_t *ac, bool phone)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "type", "session.update");
    cJSON *s = cJSON_AddObjectToObject(root, "session");
    cJSON_AddStringToObject(s, "type", "realtime");
    cJSON *mod = cJSON_AddArrayToObject(s, "output_modalities");
    cJSON_AddItemToArray(mod, cJSON_CreateString("audio"));
    char *instructions = prompt_receptionist(ac);
    cJSON_AddStringToObject(s, "instructions", instructions);
    free(instructions);
    cJSON *audio = cJSON_AddObjectToObject(s, "audio");
    cJSON *in = cJSON_AddObjectToObject(audio, "input");
    add_format(in, phone);
    cJSON *tr = cJSON_AddObjectToObject(in, "transcription");
    cJSON_AddStringToObject(tr, "model", UPSTREAM_TRANSCRIBE_MODEL);
    cJSON *td = cJSON_AddObjectToObject(in, "turn_detection");
    cJSON_AddStringToObject(td, "type", "server_vad");
    cJSON_AddNumberToObject(td, "threshold", UPSTREAM_VAD_THRESHOLD);
    cJSON_AddNumberToObject(td, "prefix_padding_ms", UPSTREAM_VAD_PREFIX_MS);
    cJSON_AddNumberToObject(td, "silence_duration_ms", UPSTREAM_VAD_SILENCE_MS);
    cJSON_AddBoolToObject(td, "create_response", 1);
    cJSON_AddBoolToObject(td, "interrupt_response", 1);
    cJSON *out = cJSON_AddObjectToObject(audio, "output");
    add_format(out, phone);
    cJSON_AddStringToObject(out, "voice", ac->voice);
    cJSON_AddItemToObject(s, "tools", voicetools_defs(ac, phone));
    cJSON_AddStringToObject(s, "tool_choice", "auto");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* ---- Connecting ------------------------------------------------------------------------------ */

static void connect_attempt(upstream_t *u)
{
    char url[2300];
    const char *base = g_config->realtime_url;
    snprintf(url, sizeof(url), "%s%cmodel=%s", base, strchr(base, '?') ? '&' : '?',
             g_config->realtime_model);
    u->attempt++;
    u->conn = 0;
    u->phase = PHASE_CONNECTING;
    u->attempt_ns = clock_now_ns();
    actor_timer_start(u->deadline, UPSTREAM_ATTEMPT_MS, 0);
    if (net_wsc_connect(u->near, url, g_config->openai_api_key, &u->actor, u->attempt,
                        UPSTREAM_MAX_MSG) != 0) {
        u->phase = PHASE_DONE;
        actor_timer_stop(u->deadline);
        tell_session(u, UPSTREAM_UNAVAILABLE, "invalid realtime URL");
    }
}

/* An attempt failed before the session was ready: retry, or give up. */
static void attempt_failed(upstream_t *u, const char *why, bool retryable)
{
    actor_timer_stop(u->deadline);
    if (u->conn) {
        net_ws_close(u->conn, WS_CLOSE_NORMAL);
        u->conn = 0;
    }
    u->failures++;
    log_info("upstream.attempt_failed", LOG_I("attempt", u->failures), LOG_S("reason", why));
    if (!retryable || u->failures > UPSTREAM_RETRIES) {
        u->phase = PHASE_DONE;
        tell_session(u, UPSTREAM_UNAVAILABLE, why);
        return;
    }
    u->phase = PHASE_WAITING;
    actor_timer_start(u->retry, (uint64_t)UPSTREAM_RETRY_BASE_MS << (u->failures - 1), 0);
}

/* A ready connection went away or is due for recycling: connect again, keep the session. */
static void reconnect(upstream_t *u, const char *why)
{
    log_info("upstream.reconnect", LOG_S("reason", why),
             LOG_S("openai_session", u->openai_session));
    actor_timer_stop(u->recycle);
    if (u->conn) {
        net_ws_close(u->conn, WS_CLOSE_NORMAL);
        u->conn = 0;
    }
    u->failures = 0;
    tell_session(u, UPSTREAM_RECONNECTING, why);
    connect_attempt(u);
}

/* ---- Upstream events ------------------------------------------------------------------------- */

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An event of the current connection; returns true when it took t. */
static bool on_event(upstream_t *u, net_ws_text_msg_t *t)
{
    const char *type = t->type;
    if (events_is_audio_delta(type)) {
        actor_send(u->session, &t->hdr); /* sent before the routing took over: the session's */
        return true;
    }
    if (strcmp(type, "session.created") == 0) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(t->json, "session");
        const char *id = str_field(s, "id");
        str_copy(u->openai_session, id ? id : "", sizeof(u->openai_session));
        if (u->phase == PHASE_CONNECTING) {
            net_ws_send_text(u->conn, u->session_update, strlen(u->session_update));
            u->phase = PHASE_CONFIGURING;
        }
        return false;
    }
    if (strcmp(type, "session.updated") == 0) {
        if (u->phase != PHASE_CONFIGURING)
            return false;
        actor_timer_stop(u->deadline);
        u->phase = PHASE_READY;
        u->failures = 0;
        metric_hist_observe_ns(&g_metrics.upstream_connect_seconds, clock_now_ns() - u->attempt_ns);
        actor_timer_start(u->recycle, (uint64_t)g_config->upstream_recycle_s * MS_PER_SEC, 0);
        /* From here the session reads this socket's events and writes to it (relay.c): the
         * switch is posted before the session hears of it, so nothing it sends can be answered
         * before the switch. */
        net_wsc_route_text(u->conn, u->session);
        if (u->ever_ready) {
            tell_session(u, UPSTREAM_RECONNECTED, NULL); /* the session replays its history */
        } else {
            tell_session(u, UPSTREAM_READY, NULL);
        }
        u->ever_ready = true;
        log_info("upstream.ready", LOG_S("openai_session", u->openai_session));
        return false;
    }
    if (strcmp(type, "error") == 0) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(t->json, "error");
        const char *code = str_field(err, "code");
        const char *message = str_field(err, "message");
        log_warn("upstream.error", LOG_S("code", code ? code : ""),
                 LOG_S("openai_session", u->openai_session));
        if (u->phase == PHASE_CONFIGURING) {
            actor_timer_stop(u->deadline);
            u->phase = PHASE_DONE;
            tell_session(u, UPSTREAM_REJECTED, message ? message : "session.update refused");
            return false;
        }
        if (code && strcmp(code, "session_expired") == 0) {
            reconnect(u, "session_expired");
            return false;
        }
    }
    /* Everything else goes to the session, which decides what the client sees. */
    event_msg_t *m = event_msg_new(SESSION_MSG_UP_EVENT, t->json);
    t->json = NULL;
    actor_send(u->session, &m->hdr);
    return false;
}

/* ---- Session requests ------------------------------------------------------------------------ */

static void send_event(upstream_t *u, const cJSON *ev)
{
    if (u->phase != PHASE_READY || u->conn == 0)
        return;
    net_ws_send_json(u->conn, ev);
}

static void end(upstream_t *u)
{
    if (u->conn)
        net_ws_close(u->conn, WS_CLOSE_NORMAL);
    u->conn = 0;
    u->phase = PHASE_DONE;
    actor_stop_self(&u->actor);
}

/* ---- The actor ------------------------------------------------------------------------------- */

static void upstream_handle(actor_t *self, msg_t *m)
{
    upstream_t *u = (upstream_t *)self;
    switch (m->type) {
    case NET_MSG_WS_OPEN: {
        net_ws_open_msg_t *o = (net_ws_open_msg_t *)m;
        if (o->cookie != u->attempt || u->phase != PHASE_CONNECTING) {
            net_ws_close(o->conn, WS_CLOSE_NORMAL); /* a late answer to an abandoned attempt */
            break;
        }
        u->conn = o->conn;
        str_copy(u->request_id, o->request_id, sizeof(u->request_id));
        log_info("upstream.open", LOG_S("request_id", o->request_id));
        break;
    }
    case NET_MSG_WS_TEXT: {
        net_ws_text_msg_t *t = (net_ws_text_msg_t *)m;
        if (t->conn == u->conn && u->conn != 0 && on_event(u, t))
            return; /* passed on */
        break;
    }
    case NET_MSG_WS_FAST: /* an audio delta sent before the routing took over: the session's */
        if (((net_ws_binary_msg_t *)m)->conn == u->conn && u->conn != 0) {
            actor_send(u->session, m);
            return; /* passed on */
        }
        break;
    case NET_MSG_WS_CLOSED: {
        net_ws_closed_msg_t *c = (net_ws_closed_msg_t *)m;
        if (c->cookie != u->attempt || u->phase == PHASE_DONE || u->phase == PHASE_WAITING)
            break; /* an earlier connection, or one we closed on purpose */
        u->conn = 0;
        if (u->phase == PHASE_READY) {
            reconnect(u,
                      c->code == WS_CODE_GOING_AWAY ? "upstream closed 1001" : "upstream dropped");
        } else {
            char why[96];
            snprintf(why, sizeof(why), "connect failed (HTTP %d, close %u)", c->http_status,
                     c->code);
            bool retryable =
                !(c->http_status == 401 || c->http_status == 403 || c->http_status == 404);
            attempt_failed(u, why, retryable);
        }
        break;
    }
    case UP_MSG_DEADLINE:
        if (u->phase == PHASE_CONNECTING || u->phase == PHASE_CONFIGURING)
            attempt_failed(u, "no session.created within 5 s", true);
        break;
    case UP_MSG_RETRY:
        if (u->phase == PHASE_WAITING)
            connect_attempt(u);
        break;
    case UP_MSG_RECYCLE:
        if (u->phase == PHASE_READY)
            reconnect(u, "recycle");
        break;
    case UP_MSG_EVENT:
        send_event(u, ((event_msg_t *)m)->event);
        break;
    case UP_MSG_END:
        end(u);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void upstream_stop(actor_t *self)
{
    upstream_t *u = (upstream_t *)self;
    if (u->conn)
        net_ws_close(u->conn, WS_CLOSE_NORMAL);
    actor_timer_free(u->deadline);
    actor_timer_free(u->retry);
    actor_timer_free(u->recycle);
    free(u->session_update);
    actor_unref(u->session);
}

static const actor_type_t upstream_type = {"upstream", upstream_handle, upstream_stop};

actor_t *upstream_spawn(actor_t *session, conn_id_t near, char *session_update, bool passthrough)
{
    upstream_t *u = xcalloc(1, sizeof(*u));
    if (actor_spawn(&u->actor, &upstream_type, LANE_REALTIME) != 0) {
        free(session_update);
        free(u);
        return NULL;
    }
    actor_ref(session);
    u->session = session;
    u->near = near;
    u->passthrough = passthrough;
    u->deadline = actor_timer_new(&u->actor, UP_MSG_DEADLINE, NULL);
    u->retry = actor_timer_new(&u->actor, UP_MSG_RETRY, NULL);
    u->recycle = actor_timer_new(&u->actor, UP_MSG_RECYCLE, NULL);
    u->session_update = session_update;
    if (g_config->openai_api_key == NULL) {
        u->phase = PHASE_DONE;
        tell_session(u, UPSTREAM_UNAVAILABLE, "OPENAI_API_KEY is not set");
    } else {
        connect_attempt(u); /* safe before the first turn: nobody else runs this actor yet */
    }
    return &u->actor;
}
