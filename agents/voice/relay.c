/*
 * The session's side of the relay (SPEC 5.1, 6, 14): client audio up (resampled to 24 kHz,
 * buffered while the upstream is not ready), upstream events down with GA names, assistant audio
 * down (resampled to the client's rate), one response at a time, and barge-in.
 * Thread: the session's worker.
 */
#include <stdlib.h>
#include <string.h>

#include "agents/store/store.h"
#include "agents/voice/events.h"
#include "agents/phone/twilio.h"
#include "agents/voice/phonecall.h"
#include "agents/voice/session_int.h"
#include "agents/voice/voicetools.h"
#include "audio/b64.h"
#include "audio/pcm.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"

#define PREBUFFER_MS  2000
#define APPEND_PREFIX "{\"type\":\"input_audio_buffer.append\",\"audio\":\""
#define APPEND_SUFFIX "\"}"

static int16_t *scratch(session_t *s, size_t samples)
{
    if (samples > s->scratch_cap) {
        s->scratch = xrealloc(s->scratch, samples * sizeof(int16_t));
        s->scratch_cap = samples;
    }
    return s->scratch;
}

/* A browser client's own events (session.ready, upstream.*): a phone has no such client. */
static void send_text(session_t *s, const char *text)
{
    if (s->phone == NULL)
        net_ws_send_text(s->conn, text, strlen(text));
}

/* ---- Straight to the upstream's socket ------------------------------------------------------ */

/*
 * While the upstream is ready the session writes to its socket itself (s->up_conn): a frame
 * crosses one actor, not two, on its way up. The upstream actor keeps the connection's life
 * (connect, configure, recycle, reconnect) and tells the session which socket to use; before
 * that, and after it is lost, events go through the actor, which drops them when not ready.
 */
void relay_send_up(session_t *s, cJSON *ev)
{
    if (ev == NULL)
        return;
    if (s->up_conn) {
        net_ws_send_json(s->up_conn, ev);
        cJSON_Delete(ev);
    } else if (s->upstream) {
        actor_send(s->upstream, &event_msg_new(UP_MSG_EVENT, ev)->hdr);
    } else {
        cJSON_Delete(ev);
    }
}

static void send_upstream_event(session_t *s, const char *json)
{
    relay_send_up(s, cJSON_Parse(json));
}

/* Sends audio as input_audio_buffer.append built with a template (no JSON DOM): PCM16 encoded
 * here, or (encoded: a phone call's μ-law) base64 text copied as it is. */
static void append_up(session_t *s, const uint8_t *data, size_t len, bool encoded, uint64_t t_in_ns)
{
    size_t body = encoded ? len : b64_encoded_len(len);
    size_t need = sizeof(APPEND_PREFIX) + body + sizeof(APPEND_SUFFIX);
    if (need > s->up_cap) {
        s->up_buf = xrealloc(s->up_buf, need);
        s->up_cap = need;
    }
    size_t pl = sizeof(APPEND_PREFIX) - 1;
    memcpy(s->up_buf, APPEND_PREFIX, pl);
    size_t n = body;
    if (encoded)
        memcpy(s->up_buf + pl, data, body);
    else
        n = b64_encode(data, len, s->up_buf + pl);
    memcpy(s->up_buf + pl + n, APPEND_SUFFIX, sizeof(APPEND_SUFFIX));
    net_ws_send_text(s->up_conn, s->up_buf, pl + n + sizeof(APPEND_SUFFIX) - 1);
    metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_OUT][METRIC_KIND_AUDIO], 1);
    if (t_in_ns)
        metric_hist_observe_ns(&g_metrics.relay_latency_seconds[METRIC_RELAY_UP],
                               clock_now_ns() - t_in_ns);
}

/* ---- Client -> upstream ---------------------------------------------------------------------- */

/* Client audio, resampled to 24 kHz when the client's rate differs. Needs s->up_conn. */
static void send_audio_up(session_t *s, const net_ws_binary_msg_t *f)
{
    size_t n_in = f->len / PCM_BYTES_PER_SAMPLE;
    if (s->phone) {
        append_up(s, f->data, f->len, true, f->hdr.sent_ns); /* base64 μ-law, as it came */
    } else if (s->rs_in == NULL) {
        append_up(s, f->data, n_in * PCM_BYTES_PER_SAMPLE, false, f->hdr.sent_ns);
    } else {
        int16_t *in = scratch(s, n_in + resample_out_max(s->rs_in, n_in));
        pcm_from_le(f->data, n_in * PCM_BYTES_PER_SAMPLE, in);
        int16_t *out = in + n_in;
        size_t n_out = resample_process(s->rs_in, in, n_in, out, resample_out_max(s->rs_in, n_in));
        pcm_to_le(out, n_out, (uint8_t *)out); /* in place: same size */
        append_up(s, (const uint8_t *)out, n_out * PCM_BYTES_PER_SAMPLE, false, f->hdr.sent_ns);
    }
}

static size_t prebuffer_limit(const session_t *s)
{
    if (s->phone) /* base64 of μ-law at 8 bytes a millisecond */
        return b64_encoded_len(PREBUFFER_MS * TWILIO_ULAW_BYTES_PER_MS);
    return pcm_bytes_for_ms(s->rate, PREBUFFER_MS);
}

/* Keeps client audio until the upstream is ready: the newest 2 s, oldest dropped (counted). */
static void prebuffer(session_t *s, net_ws_binary_msg_t *f)
{
    s->prebuf = xrealloc(s->prebuf, (s->n_prebuf + 1) * sizeof(*s->prebuf));
    s->prebuf[s->n_prebuf++] = f;
    s->prebuf_bytes += f->len;
    size_t drop = 0;
    while (s->prebuf_bytes > prebuffer_limit(s) && drop < s->n_prebuf - 1) {
        s->prebuf_bytes -= s->prebuf[drop]->len;
        msg_free(&s->prebuf[drop]->hdr);
        drop++;
    }
    if (drop) {
        memmove(s->prebuf, s->prebuf + drop, (s->n_prebuf - drop) * sizeof(*s->prebuf));
        s->n_prebuf -= drop;
        metric_inc(&g_metrics.audio_dropped_total, drop);
    }
}

void relay_client_audio(session_t *s, net_ws_binary_msg_t *m)
{
    if (s->state == SESSION_CLOSING) {
        msg_free(&m->hdr);
    } else if (s->up_ready && s->n_prebuf == 0) {
        send_audio_up(s, m);
        msg_free(&m->hdr);
    } else {
        prebuffer(s, m); /* takes m */
    }
}

/* Sends a documented client event upstream, or holds it until the upstream is ready. Takes ev. */
static void client_event_up(session_t *s, cJSON *ev)
{
    if (!s->up_ready) {
        if (s->n_pending < SESSION_PENDING_MAX)
            s->pending[s->n_pending++] = ev;
        else
            cJSON_Delete(ev);
        return;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    bool create = strcmp(type->valuestring, "response.create") == 0;
    if (create && (s->response_active || s->n_calls > 0)) {
        /* Sent after response.done; at most one waits (SPEC 14). */
        s->create_waiting = true;
        cJSON_Delete(ev);
        return;
    }
    if (create)
        s->response_active = true; /* from now: a second create must not overtake it */
    relay_send_up(s, ev);
}

void relay_client_event(session_t *s, cJSON *ev)
{
    /* Only what SPEC 5.1 documents goes up: clients cannot change instructions or tools, nor
     * choose the upstream's item ids. */
    cJSON *fresh = events_client_upstream(ev);
    cJSON_Delete(ev);
    client_event_up(s, fresh);
}

/* Flushes buffered audio (in order) and held events once the upstream is ready. */
static void flush(session_t *s)
{
    for (size_t i = 0; i < s->n_prebuf; i++) {
        send_audio_up(s, s->prebuf[i]);
        msg_free(&s->prebuf[i]->hdr);
    }
    s->n_prebuf = 0;
    s->prebuf_bytes = 0;
    int n = s->n_pending;
    s->n_pending = 0;
    for (int i = 0; i < n; i++)
        client_event_up(s, s->pending[i]);
}

/* ---- The playback clock and barge-in --------------------------------------------------------- */

void relay_audio_played(session_t *s, const cJSON *ev)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item_id");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(ev, "ms");
    if (!cJSON_IsString(item) || !cJSON_IsNumber(ms) || ms->valuedouble < 0)
        return;
    if (strcmp(item->valuestring, s->play_item) != 0)
        return;
    s->played_reported = true;
    s->played_ms = (uint64_t)ms->valuedouble;
    s->played_at_ns = clock_now_ns();
}

/* How much of the current item the client has played by now: its last report advanced at real
 * time, or real time since the first audio went out when it never reported. */
static uint64_t played_now_ms(const session_t *s)
{
    uint64_t now = clock_now_ns();
    if (s->played_reported)
        return s->played_ms + (now - s->played_at_ns) / NS_PER_MS;
    return s->first_audio_ns ? (now - s->first_audio_ns) / NS_PER_MS : 0;
}

static void barge_in(session_t *s)
{
    if (s->play_item[0] == '\0')
        return;
    uint64_t received_ms = pcm_ms_for_bytes(SESSION_UPSTREAM_RATE, s->item_bytes);
    uint64_t played = played_now_ms(s);
    if (s->item_audio_done && played >= received_ms) {
        s->play_item[0] = '\0'; /* finished playing: nothing to cut */
        return;
    }
    uint64_t end_ms = played < received_ms ? played : received_ms;
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"type\":\"audio.clear\",\"item_id\":");
    sbuf_json_str(&b, s->play_item);
    sbuf_putc(&b, '}');
    net_ws_send_text(s->conn, b.data, b.len);
    sbuf_reset(&b);
    sbuf_puts(&b, "{\"type\":\"conversation.item.truncate\",\"item_id\":");
    sbuf_json_str(&b, s->play_item);
    sbuf_printf(&b, ",\"content_index\":0,\"audio_end_ms\":%llu}", (unsigned long long)end_ms);
    send_upstream_event(s, b.data);
    sbuf_destroy(&b);
    log_debug("session.barge_in", LOG_S("sid", s->session_id), LOG_I("audio_end_ms", end_ms));
    s->play_item[0] = '\0';
}

static void new_item(session_t *s, const char *item_id)
{
    str_copy(s->play_item, item_id, sizeof(s->play_item));
    s->item_bytes = 0;
    s->item_audio_done = false;
    s->first_audio_ns = 0;
    s->played_reported = false;
}

/* ---- Upstream -> client ---------------------------------------------------------------------- */

void relay_upstream_audio(session_t *s, const char *item_id, const uint8_t *data, size_t len,
                          uint64_t t_in_ns)
{
    if (s->state == SESSION_CLOSING)
        return;
    char item[sizeof(s->play_item)];
    str_copy(item, item_id, sizeof(item)); /* as play_item keeps it */
    if (strcmp(item, s->play_item) != 0)
        new_item(s, item);
    uint64_t now = clock_now_ns();
    if (s->first_audio_ns == 0) {
        s->first_audio_ns = now;
        if (s->speech_stopped_ns) {
            metric_hist_observe_ns(&g_metrics.first_audio_seconds, now - s->speech_stopped_ns);
            if (!s->first_audio_stored && s->record_id[0]) {
                store_call_first_audio(s->store, s->record_id,
                                       (int64_t)((now - s->speech_stopped_ns) / NS_PER_MS));
                s->first_audio_stored = true;
            }
            s->speech_stopped_ns = 0;
        }
    }
    if (s->phone) {
        s->item_bytes += twilio_b64_bytes((const char *)data, len);
        phonecall_audio_out(s, (const char *)data, len);
    } else if (s->rs_out == NULL) {
        s->item_bytes += len;
        net_ws_send_binary(s->conn, data, len);
    } else {
        s->item_bytes += len;
        size_t n_in = len / PCM_BYTES_PER_SAMPLE;
        size_t cap = resample_out_max(s->rs_out, n_in);
        int16_t *in = scratch(s, n_in + cap);
        pcm_from_le(data, n_in * PCM_BYTES_PER_SAMPLE, in);
        int16_t *out = in + n_in;
        size_t n_out = resample_process(s->rs_out, in, n_in, out, cap);
        pcm_to_le(out, n_out, (uint8_t *)out); /* in place: same size, little-endian host order */
        net_ws_send_binary(s->conn, out, n_out * PCM_BYTES_PER_SAMPLE);
    }
    if (t_in_ns)
        metric_hist_observe_ns(&g_metrics.relay_latency_seconds[METRIC_RELAY_DOWN],
                               clock_now_ns() - t_in_ns);
}

/* An upstream audio delta: n characters of base64 at b64, of the item item. A phone call takes
 * them as they are (μ-law, SPEC 5.5); a browser gets the PCM16 they decode to. */
static void upstream_audio(session_t *s, const char *item, const char *b64, size_t n,
                           uint64_t t_in_ns)
{
    metric_inc(&g_metrics.ws_frames_total[METRIC_DIR_IN][METRIC_KIND_AUDIO], 1);
    if (s->phone) {
        relay_upstream_audio(s, item, (const uint8_t *)b64, n, t_in_ns);
        return;
    }
    size_t cap = b64_decoded_max(n);
    if (cap > s->dec_cap) {
        s->dec = xrealloc(s->dec, cap);
        s->dec_cap = cap;
    }
    ssize_t len = b64_decode(b64, n, s->dec);
    if (len < 0) {
        log_warn("upstream.bad_audio", LOG_S("openai_session", s->openai_session));
        return;
    }
    if (len == 0)
        return; /* an empty delta: nothing to play */
    relay_upstream_audio(s, item, s->dec, (size_t)len, t_in_ns);
}

/* A delta net read in full (its text was not one wsp_scan_event() vouches for). */
static void upstream_audio_delta(session_t *s, const cJSON *ev, uint64_t t_in_ns)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "delta");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(ev, "item_id");
    if (!cJSON_IsString(d)) {
        log_warn("upstream.bad_audio", LOG_S("openai_session", s->openai_session));
        return;
    }
    upstream_audio(s, cJSON_IsString(i) ? i->valuestring : "", d->valuestring,
                   strlen(d->valuestring), t_in_ns);
}

void relay_upstream_fast(session_t *s, net_ws_binary_msg_t *m)
{
    if (m->kind == NET_WSC_FAST_AUDIO)
        upstream_audio(s, net_fast_aux(m), (const char *)m->data, m->len, m->hdr.sent_ns);
}

bool relay_upstream_text(session_t *s, net_ws_text_msg_t *m)
{
    if (events_is_audio_delta(m->type)) {
        upstream_audio_delta(s, m->json, m->hdr.sent_ns);
        return false;
    }
    /* What the connection's life depends on is the upstream actor's to judge. */
    if (strcmp(m->type, "error") == 0 || strncmp(m->type, "session.", 8) == 0) {
        if (s->upstream == NULL)
            return false;
        actor_send(s->upstream, &m->hdr);
        return true;
    }
    relay_upstream_event(s, m->json);
    return false;
}

/* Relays an upstream `error` sanitised: its code (or upstream_error) and message only. */
static void relay_error(session_t *s, const cJSON *ev)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    const char *c =
        cJSON_IsString(code) && code->valuestring[0] ? code->valuestring : "upstream_error";
    /* Benign races of barge-in and cancel are not the caller's business. */
    if (strcmp(c, "response_cancel_not_active") == 0)
        return;
    if (s->phone) {
        log_warn("phone.upstream_error", LOG_S("sid", s->session_id), LOG_S("code", c));
        return;
    }
    net_ws_send_error(s->conn, c, cJSON_IsString(msg) ? msg->valuestring : "upstream error");
}

void relay_upstream_event(session_t *s, cJSON *ev)
{
    cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const char *t = type->valuestring;
    if (s->state == SESSION_CLOSING)
        return;
    if (strcmp(t, "error") == 0) {
        relay_error(s, ev);
        return;
    }
    voicetools_upstream_event(s, t, ev);
    if (strcmp(t, "response.created") == 0) {
        s->response_active = true;
    } else if (strcmp(t, "response.done") == 0) {
        s->response_active = false;
    } else if (strcmp(t, "input_audio_buffer.speech_started") == 0) {
        if (s->phone)
            phonecall_barge_in(s);
        else
            barge_in(s);
    } else if (strcmp(t, "input_audio_buffer.speech_stopped") == 0) {
        s->speech_stopped_ns = clock_now_ns();
    } else if (strcmp(t, "response.output_item.added") == 0) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(item, "type");
        if (cJSON_IsString(id) && cJSON_IsString(it) && strcmp(it->valuestring, "message") == 0)
            new_item(s, id->valuestring);
    } else if (strcmp(t, "response.output_audio.done") == 0 ||
               strcmp(t, "response.audio.done") == 0) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "item_id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, s->play_item) == 0) {
            s->item_audio_done = true;
            if (s->phone)
                phonecall_audio_done(s);
        }
    }
    if (s->phone) {
        phonecall_upstream_event(s, t); /* a phone hears audio only */
        if (strcmp(t, "response.done") == 0)
            voicetools_maybe_create(s);
        return;
    }
    const char *ga = events_relay_name(t);
    if (ga) {
        if (strcmp(ga, t) != 0)
            cJSON_SetValuestring(type, ga);
        net_ws_send_json(s->conn, ev);
    }
    if (strcmp(t, "response.done") == 0)
        voicetools_maybe_create(s); /* a waiting client create, or the one after tool outputs */
}

void relay_upstream_state(session_t *s, const upstream_state_msg_t *m)
{
    switch (m->state) {
    case UPSTREAM_READY:
    case UPSTREAM_RECONNECTED:
        s->up_ready = true;
        s->up_conn = m->conn;
        str_copy(s->openai_session, m->openai_session, sizeof(s->openai_session));
        str_copy(s->request_id, m->request_id, sizeof(s->request_id));
        if (!s->ready_sent && s->phone) {
            s->ready_sent = true; /* Twilio needs no word: audio simply starts */
        } else if (!s->ready_sent) {
            sbuf_t b = SBUF_INIT;
            sbuf_puts(&b, "{\"type\":\"session.ready\",\"sessionId\":");
            sbuf_json_str(&b, s->session_id);
            sbuf_printf(&b,
                        ",\"audio\":{\"input_rate\":%d,\"output_rate\":%d,"
                        "\"format\":\"pcm16\"}}",
                        s->rate, s->rate);
            net_ws_send_text(s->conn, b.data, b.len);
            sbuf_destroy(&b);
            s->ready_sent = true;
        } else {
            voicetools_replay(s); /* before the audio kept meanwhile (flush below) */
            send_text(s, "{\"type\":\"upstream.reconnected\"}");
        }
        s->response_active = false;
        flush(s);
        break;
    case UPSTREAM_RECONNECTING:
        s->up_ready = false;
        s->up_conn = 0;
        send_text(s, "{\"type\":\"upstream.reconnecting\"}");
        break;
    case UPSTREAM_UNAVAILABLE:
        log_warn("session.upstream_unavailable", LOG_S("sid", s->session_id),
                 LOG_S("detail", m->detail));
        session_close(s, WS_CLOSE_UPSTREAM_UNAVAILABLE, END_UPSTREAM_UNAVAILABLE);
        break;
    case UPSTREAM_REJECTED:
        log_error("session.upstream_rejected_config", LOG_S("sid", s->session_id),
                  LOG_S("detail", m->detail));
        if (s->phone == NULL)
            net_ws_send_error(s->conn, "upstream_rejected_config",
                              "the voice service rejected the session configuration");
        session_close(s, WS_CLOSE_UPSTREAM_REJECTED, END_UPSTREAM_REJECTED);
        break;
    }
}

bool relay_start(session_t *s)
{
    bool phone = s->phone != NULL; /* μ-law passes through: nothing to resample */
    if (!phone && s->rate != SESSION_UPSTREAM_RATE) {
        s->rs_in = resample_new(s->rate, SESSION_UPSTREAM_RATE, RESAMPLE_QUALITY_DEFAULT);
        s->rs_out = resample_new(SESSION_UPSTREAM_RATE, s->rate, RESAMPLE_QUALITY_DEFAULT);
    }
    s->upstream =
        upstream_spawn(&s->actor, s->conn, voice_session_update_new(&s->tenant->cfg, phone), phone);
    return s->upstream != NULL;
}

void relay_free(session_t *s)
{
    if (s->upstream) {
        actor_send(s->upstream, msg_new(UP_MSG_END, sizeof(msg_t)));
        actor_unref(s->upstream);
        s->upstream = NULL;
    }
    s->up_conn = 0;
    free(s->up_buf);
    s->up_buf = NULL;
    free(s->dec);
    s->dec = NULL;
    for (size_t i = 0; i < s->n_prebuf; i++)
        msg_free(&s->prebuf[i]->hdr);
    free(s->prebuf);
    s->prebuf = NULL;
    s->n_prebuf = 0;
    for (int i = 0; i < s->n_pending; i++)
        cJSON_Delete(s->pending[i]);
    s->n_pending = 0;
    resample_free(s->rs_in);
    resample_free(s->rs_out);
    free(s->scratch);
}
