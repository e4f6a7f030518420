/*
 * phonecall: the phone transport of a voice session (phonecall.h, SPEC 5.5).
 *
 * The playback clock. Twilio queues the audio we send and plays it at real time; it echoes a
 * mark once everything sent before the mark has played, or at once when a `clear` drops it.
 * After every chunk we send the mark `<item_id>:<ms>` (ms of that item sent so far, bytes / 8),
 * so the last echoed mark of the current item is what the caller has heard, to 20 ms. Marks
 * still out mean audio is still queued at Twilio: only then does speech barge in (`clear`, and
 * `conversation.item.truncate` at the heard position, clamped to what was sent). Nothing is
 * guessed forward from real time as on /ws: an echo is a fact, a clock is an estimate.
 *
 * transferCall and endCall act once the caller has heard the answer that follows the tool's
 * output: the output goes to the model at once, the response it makes is followed through
 * response.created and response.done, and when every mark sent is back the call is closed
 * (endCall) or moved by Twilio's REST API (transferCall).
 * Thread: the session's worker.
 */
#include "agents/voice/phonecall.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/phone/phone.h"
#include "agents/phone/twilio.h"
#include "agents/voice/events.h"
#include "agents/voice/voicetools.h"
#include "audio/b64.h"
#include "base/config.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"

#define PHONECALL_START_MS   5000 /* `start` must follow the upgrade within this */
#define PHONECALL_DTMF_MS    2000 /* a keypad entry ends after this without a digit */
#define PHONECALL_DIGITS_MAX 32
#define PHONECALL_NUMBER_MAX 40
#define TRANSFER_TIMEOUT_MS  10000
#define KEYPAD_PREFIX        "[keypad] "

typedef enum call_action {
    ACTION_NONE,
    ACTION_TRANSFER,
    ACTION_END,
} call_action_t;

typedef enum action_stage {
    STAGE_WAIT_RESPONSE, /* the tool's output is sent; its answer has not started */
    STAGE_IN_RESPONSE,   /* the answer is being made */
    STAGE_WAIT_PLAYED,   /* the answer is complete; waiting for its marks to come back */
    STAGE_ACTING,        /* closing, or the transfer request is in flight */
} action_stage_t;

struct phonecall {
    bool started;
    net_peer_t peer;
    char call_sid[ID_MAX + 1];
    char from[PHONECALL_NUMBER_MAX];
    char to[PHONECALL_NUMBER_MAX];
    char *sid_json;     /* the streamSid as a JSON string, for every message we send */
    char *media_prefix; /* {"event":"media","streamSid":…,"media":{"payload":" */
    sbuf_t out;         /* scratch for outbound messages */
    sbuf_t mark;        /* scratch for the mark that follows a media message */
    int64_t last_seq;   /* the last sequenceNumber seen, -1 before any */
    actor_timer_t *start_timer;
    actor_timer_t *dtmf_timer;
    char digits[PHONECALL_DIGITS_MAX + 1];
    size_t n_digits;
    /* The playback clock. */
    uint64_t marks_out;  /* marks sent and not yet echoed */
    char heard_item[64]; /* the item of the last echoed position mark */
    uint64_t heard_ms;
    /* transferCall / endCall. */
    call_action_t action;
    action_stage_t stage;
    vcall_t *transfer; /* the transferCall in flight, answered early (voicetools) */
    uint64_t fetch_id;
};

/* ---- Sending to Twilio ------------------------------------------------------------------------
 */

static void send_out(session_t *s)
{
    net_ws_send_text(s->conn, s->phone->out.data, s->phone->out.len);
}

/* {"event":"mark","streamSid":…,"mark":{"name":"name"}} into b. */
static void build_mark(const phonecall_t *p, sbuf_t *b, const char *name)
{
    sbuf_reset(b);
    sbuf_puts(b, "{\"event\":\"mark\",\"streamSid\":");
    sbuf_puts(b, p->sid_json);
    sbuf_puts(b, ",\"mark\":{\"name\":");
    sbuf_json_str(b, name);
    sbuf_puts(b, "}}");
}

static void send_mark(session_t *s, const char *name)
{
    phonecall_t *p = s->phone;
    build_mark(p, &p->out, name);
    send_out(s);
    p->marks_out++;
}

/* The chunk and the mark of its position go out together: one post to the network thread and
 * one send() for the two messages, 50 times a second per call. */
void phonecall_audio_out(session_t *s, const char *b64, size_t len)
{
    phonecall_t *p = s->phone;
    if (p->media_prefix == NULL)
        return;
    sbuf_reset(&p->out);
    sbuf_puts(&p->out, p->media_prefix);
    sbuf_append(&p->out, b64, len); /* the upstream's base64, unchanged */
    sbuf_puts(&p->out, "\"}}");
    char name[96];
    snprintf(name, sizeof(name), "%s:%llu", s->play_item,
             (unsigned long long)(s->item_bytes / TWILIO_ULAW_BYTES_PER_MS));
    build_mark(p, &p->mark, name);
    net_ws_send_text2(s->conn, p->out.data, p->out.len, p->mark.data, p->mark.len);
    p->marks_out++;
}

void phonecall_audio_done(session_t *s)
{
    if (s->phone->media_prefix == NULL || s->play_item[0] == '\0')
        return;
    char name[80];
    snprintf(name, sizeof(name), "done:%s", s->play_item);
    send_mark(s, name);
}

/* ---- Barge-in ---------------------------------------------------------------------------------
 */

void phonecall_barge_in(session_t *s)
{
    phonecall_t *p = s->phone;
    if (p->marks_out == 0 || s->play_item[0] == '\0')
        return; /* everything sent has played: nothing to cut */
    uint64_t sent_ms = s->item_bytes / TWILIO_ULAW_BYTES_PER_MS;
    uint64_t heard = strcmp(p->heard_item, s->play_item) == 0 ? p->heard_ms : 0;
    uint64_t end_ms = heard < sent_ms ? heard : sent_ms;
    sbuf_reset(&p->out);
    sbuf_puts(&p->out, "{\"event\":\"clear\",\"streamSid\":");
    sbuf_puts(&p->out, p->sid_json);
    sbuf_putc(&p->out, '}');
    send_out(s);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "conversation.item.truncate");
    cJSON_AddStringToObject(ev, "item_id", s->play_item);
    cJSON_AddNumberToObject(ev, "content_index", 0);
    cJSON_AddNumberToObject(ev, "audio_end_ms", (double)end_ms);
    relay_send_up(s, ev);
    log_debug("phone.barge_in", LOG_S("sid", s->session_id), LOG_I("audio_end_ms", end_ms),
              LOG_I("sent_ms", sent_ms));
    s->play_item[0] = '\0'; /* the echoes the clear brings back are not playback */
}

/* ---- transferCall and endCall -----------------------------------------------------------------
 */

static void transfer_failed(session_t *s, const char *why)
{
    phonecall_t *p = s->phone;
    char out[256];
    snprintf(out, sizeof(out),
             "{\"error\":{\"code\":\"transfer_failed\",\"message\":\"the transfer failed: %s\"}}",
             why);
    log_warn("phone.transfer_failed", LOG_S("sid", s->session_id), LOG_S("why", why));
    voicetools_finish(s, p->transfer, "failed", out);
    p->transfer = NULL;
    p->action = ACTION_NONE;
    p->fetch_id = 0;
    if (s->state == SESSION_CLOSING || s->upstream == NULL)
        return;
    /* The model said it was transferring: it must now tell the caller it could not. */
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "conversation.item.create");
    cJSON *item = cJSON_AddObjectToObject(ev, "item");
    cJSON_AddStringToObject(item, "type", "message");
    cJSON_AddStringToObject(item, "role", "system");
    cJSON *part = cJSON_CreateObject();
    cJSON_AddStringToObject(part, "type", "input_text");
    cJSON_AddStringToObject(part, "text",
                            "The transfer failed: nobody can take the call now. Tell the caller "
                            "the transfer did not work and offer to help or take a message.");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(item, "content"), part);
    relay_send_up(s, ev);
    s->need_create = true;
    voicetools_maybe_create(s);
}

/* POST {api}/2010-04-01/Accounts/{sid}/Calls/{CallSid}.json Twiml=<Response><Dial>…. */
static void start_transfer(session_t *s)
{
    phonecall_t *p = s->phone;
    const char *number = s->tenant->cfg.phone.transfer_to;
    const char *sid = g_config->twilio_account_sid;
    sbuf_t url = SBUF_INIT, body = SBUF_INIT, twiml = SBUF_INIT, cred = SBUF_INIT;
    sbuf_printf(&url, "%s/2010-04-01/Accounts/", g_config->twilio_api_url);
    twilio_form_encode(&url, sid);
    sbuf_puts(&url, "/Calls/");
    twilio_form_encode(&url, p->call_sid);
    sbuf_puts(&url, ".json");
    twiml_dial(&twiml, number);
    sbuf_puts(&body, "Twiml=");
    twilio_form_encode(&body, twiml.data);
    sbuf_printf(&cred, "%s:%s", sid, g_config->twilio_auth_token);
    char *auth = xmalloc(sizeof("Authorization: Basic ") + b64_encoded_len(cred.len) + 1);
    size_t pl = strlen("Authorization: Basic ");
    memcpy(auth, "Authorization: Basic ", pl);
    b64_encode(cred.data, cred.len, auth + pl);
    net_fetch_req_t req = {.method = "POST",
                           .url = url.data,
                           .headers = {"Content-Type: application/x-www-form-urlencoded", auth},
                           .body = body.data,
                           .body_len = body.len,
                           .timeout_ms = TRANSFER_TIMEOUT_MS};
    p->stage = STAGE_ACTING;
    p->fetch_id = net_fetch(&req, &s->actor);
    sodium_memzero(cred.data, cred.len);
    sbuf_destroy(&cred);
    free(auth);
    sbuf_destroy(&url);
    sbuf_destroy(&body);
    sbuf_destroy(&twiml);
    if (p->fetch_id == 0)
        transfer_failed(s, "the Twilio API URL is not usable");
    else
        log_info("phone.transfer", LOG_S("sid", s->session_id), LOG_S("to", number));
}

/* The answer after the tool's output has played: act. */
static void act(session_t *s)
{
    phonecall_t *p = s->phone;
    if (p->action == ACTION_END) {
        p->stage = STAGE_ACTING;
        session_close(s, WS_CLOSE_NORMAL, END_AGENT_ENDED);
    } else if (p->action == ACTION_TRANSFER) {
        start_transfer(s);
    }
}

void phonecall_upstream_event(session_t *s, const char *type)
{
    phonecall_t *p = s->phone;
    if (p->action == ACTION_NONE)
        return;
    if (strcmp(type, "response.created") == 0 && p->stage == STAGE_WAIT_RESPONSE) {
        p->stage = STAGE_IN_RESPONSE;
    } else if (strcmp(type, "response.done") == 0 && p->stage == STAGE_IN_RESPONSE) {
        p->stage = STAGE_WAIT_PLAYED;
        if (p->marks_out == 0)
            act(s);
    }
}

const char *phonecall_tool(session_t *s, vcall_t *c)
{
    phonecall_t *p = s->phone;
    if (p == NULL)
        return "{\"error\":{\"code\":\"unknown_tool\",\"message\":\"no such tool\"}}";
    if (p->action != ACTION_NONE)
        return "{\"error\":{\"code\":\"busy\",\"message\":\"the call is already being ended or "
               "transferred\"}}";
    if (strcmp(c->name, VOICETOOL_END_CALL) == 0) {
        static const char out[] = "{\"ok\":true,\"note\":\"Say goodbye now; the call ends when "
                                  "you have finished speaking.\"}";
        p->action = ACTION_END;
        p->stage = STAGE_WAIT_RESPONSE;
        voicetools_answer_early(s, c, out);
        voicetools_finish(s, c, "completed", out);
        return NULL;
    }
    if (s->tenant->cfg.phone.transfer_to == NULL)
        return "{\"error\":{\"code\":\"no_transfer_number\",\"message\":\"there is no number to "
               "transfer to; tell the caller nobody can take the call and offer to help or take "
               "a message\"}}";
    if (g_config->twilio_account_sid == NULL)
        return "{\"error\":{\"code\":\"not_configured\",\"message\":\"transfers are not set up; "
               "tell the caller nobody can take the call now\"}}";
    p->action = ACTION_TRANSFER;
    p->stage = STAGE_WAIT_RESPONSE;
    p->transfer = c;
    voicetools_answer_early(s, c,
                            "{\"ok\":true,\"status\":\"transferring\",\"note\":\"Tell the caller "
                            "you are transferring them now; the transfer starts when you have "
                            "finished speaking.\"}");
    return NULL;
}

void phonecall_fetch_done(session_t *s, const net_fetch_done_msg_t *m)
{
    phonecall_t *p = s->phone;
    if (p == NULL || m->id != p->fetch_id || p->transfer == NULL)
        return;
    p->fetch_id = 0;
    if (m->error[0] || m->status < 200 || m->status > 299) {
        char why[128];
        if (m->error[0])
            snprintf(why, sizeof(why), "%s", m->error);
        else
            snprintf(why, sizeof(why), "Twilio answered %d", m->status);
        transfer_failed(s, why);
        return;
    }
    const char *number = s->tenant->cfg.phone.transfer_to;
    char out[160];
    snprintf(out, sizeof(out), "{\"ok\":true,\"transferredTo\":\"%s\"}", number);
    voicetools_finish(s, p->transfer, "completed", out);
    p->transfer = NULL;
    if (s->record_id[0])
        store_call_phone(s->store, s->record_id, p->from, p->to, p->call_sid, number);
    session_close(s, WS_CLOSE_NORMAL, END_TRANSFERRED);
}

/* ---- Keypad -----------------------------------------------------------------------------------
 */

/* The digits so far become one user text item and a response (SPEC 5.5). */
static void keypad_flush(session_t *s)
{
    phonecall_t *p = s->phone;
    actor_timer_stop(p->dtmf_timer);
    if (p->n_digits == 0 || !s->admitted || s->state != SESSION_LIVE)
        return;
    char text[sizeof(KEYPAD_PREFIX) + PHONECALL_DIGITS_MAX];
    snprintf(text, sizeof(text), KEYPAD_PREFIX "%s", p->digits);
    p->n_digits = 0;
    p->digits[0] = '\0';
    voicetools_user_text(s, text);
    relay_client_event(s, events_item_create(true, text));
    relay_client_event(s, cJSON_Parse("{\"type\":\"response.create\"}"));
}

static void keypad_digit(session_t *s, char digit)
{
    phonecall_t *p = s->phone;
    if (digit == '#') {
        keypad_flush(s);
        return;
    }
    if (p->n_digits < PHONECALL_DIGITS_MAX) {
        p->digits[p->n_digits++] = digit;
        p->digits[p->n_digits] = '\0';
    }
    actor_timer_start(p->dtmf_timer, PHONECALL_DTMF_MS, 0);
}

/* ---- Messages from Twilio ---------------------------------------------------------------------
 */

static const char *param(const twilio_msg_t *t, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->params, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void on_start(session_t *s, const twilio_msg_t *t)
{
    phonecall_t *p = s->phone;
    if (p->started)
        return;
    p->started = true;
    actor_timer_stop(p->start_timer);
    sbuf_t b = SBUF_INIT;
    sbuf_json_str(&b, t->stream_sid);
    p->sid_json = sbuf_take(&b);
    sbuf_printf(&b, "{\"event\":\"media\",\"streamSid\":%s,\"media\":{\"payload\":\"", p->sid_json);
    p->media_prefix = sbuf_take(&b);
    const char *from = param(t, "from");
    const char *to = param(t, "to");
    const char *token = param(t, "token");
    str_copy(p->from, from ? from : "", sizeof(p->from));
    str_copy(p->to, to ? to : "", sizeof(p->to));
    bool sid_ok = str_is_id(t->call_sid, strlen(t->call_sid), SESSION_ID_MIN, ID_MAX);
    str_copy(p->call_sid, sid_ok ? t->call_sid : "", sizeof(p->call_sid));
    str_copy(s->session_id, p->call_sid, sizeof(s->session_id));
    /* No Origin: the stream comes from Twilio's media servers, not a page. */
    gate_admit_msg_t *a =
        gate_admit_new(&s->actor, p->call_sid, token ? token : "", &p->peer, NULL, false);
    a->phone = true;
    actor_send(s->gate, &a->hdr);
    log_info("phone.start", LOG_S("call", p->call_sid), LOG_S("stream", t->stream_sid));
}

/* A media message read in full: its payload (base64 μ-law, checked, never decoded) becomes a
 * frame of audio for the relay, as net's fast reader makes it (phonecall_fast). */
static void on_media(session_t *s, const twilio_msg_t *t, uint64_t sent_ns)
{
    net_ws_binary_msg_t *f =
        (net_ws_binary_msg_t *)msg_new_head(NET_MSG_WS_BINARY, sizeof(*f) + t->payload_len, sizeof(*f));
    f->hdr.flags = MSG_F_AUDIO;
    f->hdr.sent_ns = sent_ns;
    f->conn = s->conn;
    f->num = -1;
    f->len = t->payload_len;
    memcpy(f->data, t->payload, t->payload_len);
    relay_client_audio(s, f); /* takes f */
}

static void on_mark(session_t *s, const char *name)
{
    phonecall_t *p = s->phone;
    char item[64];
    uint64_t ms;
    bool done;
    if (!twilio_mark_parse(name, item, sizeof(item), &ms, &done))
        return; /* not one of ours */
    if (p->marks_out > 0)
        p->marks_out--;
    if (!done && s->play_item[0] && strcmp(item, s->play_item) == 0) {
        str_copy(p->heard_item, item, sizeof(p->heard_item));
        p->heard_ms = ms;
    }
    if (p->action != ACTION_NONE && p->stage == STAGE_WAIT_PLAYED && p->marks_out == 0)
        act(s);
}

/* Counts a gap in sequenceNumber (Twilio's, or media dropped here under backpressure). */
static void note_seq(phonecall_t *p, int64_t seq)
{
    if (seq < 0)
        return;
    if (p->last_seq >= 0 && seq > p->last_seq + 1)
        phone_count_gap((uint64_t)(seq - p->last_seq - 1));
    if (seq > p->last_seq)
        p->last_seq = seq;
}

void phonecall_text(session_t *s, net_ws_text_msg_t *m)
{
    phonecall_t *p = s->phone;
    twilio_msg_t t;
    twilio_event_t ev = twilio_msg_parse(m->json, &t);
    note_seq(p, t.seq);
    if (ev == TWILIO_EV_MALFORMED) {
        phone_count_dropped(t.reason);
        return;
    }
    if (ev == TWILIO_EV_START) {
        on_start(s, &t);
        return;
    }
    if (ev == TWILIO_EV_CONNECTED || ev == TWILIO_EV_UNKNOWN)
        return;
    if (!p->started) {
        phone_count_dropped("before_start");
        return;
    }
    switch (ev) {
    case TWILIO_EV_MEDIA:
        on_media(s, &t, m->hdr.sent_ns);
        break;
    case TWILIO_EV_MARK:
        on_mark(s, t.mark);
        break;
    case TWILIO_EV_DTMF:
        keypad_digit(s, t.digit);
        break;
    case TWILIO_EV_STOP:
        log_info("phone.stop", LOG_S("call", p->call_sid));
        session_close(s, WS_CLOSE_NORMAL, END_CALLER_HUNG_UP);
        break;
    default:
        break;
    }
}

void phonecall_fast(session_t *s, net_ws_binary_msg_t *m)
{
    phonecall_t *p = s->phone;
    note_seq(p, m->num);
    if (!p->started) {
        phone_count_dropped("before_start");
        msg_free(&m->hdr);
    } else if (m->kind == TWILIO_EV_MEDIA) {
        relay_client_audio(s, m); /* takes m: the payload is the frame */
    } else {
        if (m->kind == TWILIO_EV_MARK)
            on_mark(s, (const char *)m->data);
        msg_free(&m->hdr);
    }
}

bool phonecall_scan(const char *s, size_t len, net_ws_fast_t *out)
{
    *out = (net_ws_fast_t){0};
    twilio_event_t ev = twilio_scan(s, len, &out->num, &out->data, &out->len);
    if (ev != TWILIO_EV_MEDIA && ev != TWILIO_EV_MARK)
        return false;
    out->kind = (int)ev;
    out->audio = ev == TWILIO_EV_MEDIA;
    return true;
}

void phonecall_activity(session_t *s, const net_ws_activity_msg_t *m)
{
    (void)s;
    if (m->refused)
        phone_count_dropped("invalid_json");
}

void phonecall_timer(session_t *s, uint32_t type)
{
    if (type == SESSION_MSG_PHONE_START) {
        if (!s->phone->started)
            session_close(s, WS_CLOSE_NO_START, END_ERROR);
    } else {
        keypad_flush(s);
    }
}

/* ---- The session's side -----------------------------------------------------------------------
 */

void phonecall_open(session_t *s, const net_ws_open_msg_t *m)
{
    phonecall_t *p = s->phone;
    p->peer = m->peer;
    p->last_seq = -1;
    actor_timer_start(p->start_timer, PHONECALL_START_MS, 0);
}

void phonecall_record(session_t *s)
{
    phonecall_t *p = s->phone;
    if (p && s->record_id[0])
        store_call_phone(s->store, s->record_id, p->from, p->to, p->call_sid, NULL);
}

char *phonecall_context(const session_t *s, const char *context)
{
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, context);
    if (s->phone && s->phone->from[0])
        sbuf_printf(&b, "\n\nThe caller is calling from %s.", s->phone->from);
    return sbuf_take(&b);
}

bool phonecall_hung_up(const session_t *s, const net_ws_closed_msg_t *m)
{
    return s->phone != NULL && m->why == WS_CLOSE_NONE;
}

void phonecall_free(session_t *s)
{
    phonecall_t *p = s->phone;
    if (p == NULL)
        return;
    if (p->fetch_id)
        net_fetch_cancel(p->fetch_id);
    if (p->transfer)
        voicetools_finish(s, p->transfer, "failed",
                          "{\"error\":{\"code\":\"call_ended\",\"message\":\"the call ended "
                          "before the transfer\"}}");
    actor_timer_free(p->start_timer);
    actor_timer_free(p->dtmf_timer);
    free(p->sid_json);
    free(p->media_prefix);
    sbuf_destroy(&p->out);
    sbuf_destroy(&p->mark);
    free(p);
    s->phone = NULL;
}

static const char *const phonecall_types[] = {PHONECALL_EVENT_TYPE, NULL};

const char *const *phonecall_event_types(void)
{
    return phonecall_types;
}

actor_t *phonecall_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why)
{
    (void)peer;
    (void)query;
    session_t *s = session_spawn(arg);
    if (s == NULL) {
        *why = WS_CLOSE_AT_CAPACITY;
        return NULL;
    }
    phonecall_t *p = xcalloc(1, sizeof(*p));
    sbuf_init(&p->out);
    sbuf_init(&p->mark);
    p->start_timer = actor_timer_new(&s->actor, SESSION_MSG_PHONE_START, NULL);
    p->dtmf_timer = actor_timer_new(&s->actor, SESSION_MSG_PHONE_DTMF, NULL);
    s->phone = p;
    return &s->actor;
}
