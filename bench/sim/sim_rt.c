/*
 * The Realtime session of the simulator: opening, the client events (session.update, the
 * input audio buffer and its VAD turns, conversation items, truncation, responses), recording,
 * and the expiry fault (--expire-after-ms, and the expire kind of --faults). Responses
 * themselves live in sim_resp.c.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/b64.h"
#include "base/log.h"
#include "base/util.h"
#include "bench/sim/sim_rt.h"
#include "net/wsproto.h"

#define RT_MIN_COMMIT_MS    100
#define RT_VAD_EVENTS_MAX   8
#define RT_ITEMS_INITIAL    8
#define RT_CLOSE_GOING_AWAY 1001
#define RT_CLOSE_BETA       4000
#define RT_EXPIRE_MESSAGE   "Your session hit the maximum duration of 60 minutes."
#define RT_BETA_REASON      "beta_api_shape_disabled"

/* Decoding scratch for the VAD; grows to the largest append seen. */
static struct {
    uint8_t *bytes;
    size_t bytes_cap;
    int16_t *pcm;
    size_t pcm_cap;
} g_scratch;

/* ---- Event helpers --------------------------------------------------------------------------- */

void sim_rt_event_begin(sim_rt_t *rt, const char *type)
{
    char eid[SIM_ID_MAX];
    sim_id(eid, "event_");
    sim_conn_msg_begin(&rt->out);
    sbuf_puts(&rt->out, "{\"type\":\"");
    sbuf_puts(&rt->out, type);
    sbuf_puts(&rt->out, "\",\"event_id\":\"");
    sbuf_puts(&rt->out, eid);
    sbuf_putc(&rt->out, '"');
}

void sim_rt_event_send(sim_rt_t *rt)
{
    sbuf_putc(&rt->out, '}');
    sim_conn_send(rt->conn, &rt->out);
}

void sim_rt_error(sim_rt_t *rt, const char *code, const char *message, const char *param,
                  const char *client_event_id)
{
    sim_rt_event_begin(rt, "error");
    sbuf_puts(&rt->out, ",\"error\":{\"type\":\"invalid_request_error\",\"code\":");
    sbuf_json_str(&rt->out, code);
    sbuf_puts(&rt->out, ",\"message\":");
    sbuf_json_str(&rt->out, message);
    sbuf_puts(&rt->out, ",\"param\":");
    sbuf_json_str(&rt->out, param);
    sbuf_puts(&rt->out, ",\"event_id\":");
    sbuf_json_str(&rt->out, client_event_id);
    sbuf_putc(&rt->out, '}');
    sim_rt_event_send(rt);
}

/* ---- Conversation items ---------------------------------------------------------------------- */

sim_item_t *sim_rt_item_add(sim_rt_t *rt, sim_item_kind_t kind, const char *id, const char *text)
{
    if (rt->n_items == SIM_RT_ITEMS_MAX) {
        free(rt->items[0].text);
        memmove(rt->items, rt->items + 1, (rt->n_items - 1) * sizeof(sim_item_t));
        rt->n_items--;
    }
    if (rt->n_items == rt->cap_items) {
        rt->cap_items = rt->cap_items ? rt->cap_items * 2 : RT_ITEMS_INITIAL;
        rt->items = xrealloc(rt->items, rt->cap_items * sizeof(sim_item_t));
    }
    sim_item_t *it = &rt->items[rt->n_items++];
    memset(it, 0, sizeof(*it));
    if (id)
        str_copy(it->id, id, sizeof(it->id));
    else
        sim_id(it->id, "item_");
    it->kind = kind;
    it->text = xstrdup(text ? text : "");
    return it;
}

sim_item_t *sim_rt_item_find(sim_rt_t *rt, const char *id)
{
    for (uint32_t i = rt->n_items; i-- > 0;)
        if (strcmp(rt->items[i].id, id) == 0)
            return &rt->items[i];
    return NULL;
}

const char *sim_rt_last_item_id(const sim_rt_t *rt)
{
    return rt->n_items ? rt->items[rt->n_items - 1].id : NULL;
}

static void item_delete(sim_rt_t *rt, sim_item_t *it)
{
    size_t i = (size_t)(it - rt->items);
    free(it->text);
    memmove(it, it + 1, (rt->n_items - i - 1) * sizeof(sim_item_t));
    rt->n_items--;
}

void sim_rt_item_json(sbuf_t *b, const sim_item_t *it, const char *status)
{
    sbuf_puts(b, "{\"id\":");
    sbuf_json_str(b, it->id);
    sbuf_puts(b, ",\"object\":\"realtime.item\",\"type\":");
    switch (it->kind) {
    case SIM_ITEM_CALL:
        sbuf_printf(b, "\"function_call\",\"status\":\"%s\",\"call_id\":", status);
        sbuf_json_str(b, it->call_id);
        sbuf_puts(b, ",\"name\":");
        sbuf_json_str(b, it->name);
        sbuf_puts(b, ",\"arguments\":");
        sbuf_json_str(b, it->text);
        break;
    case SIM_ITEM_OUTPUT:
        sbuf_puts(b, "\"function_call_output\",\"call_id\":");
        sbuf_json_str(b, it->call_id);
        sbuf_puts(b, ",\"output\":");
        sbuf_json_str(b, it->text);
        break;
    default: {
        const char *role = it->kind == SIM_ITEM_USER     ? "user"
                           : it->kind == SIM_ITEM_SYSTEM ? "system"
                                                         : "assistant";
        sbuf_printf(b, "\"message\",\"status\":\"%s\",\"role\":\"%s\",\"content\":[", status, role);
        if (it->kind == SIM_ITEM_ASSISTANT)
            sbuf_puts(b, it->from_audio ? "{\"type\":\"output_audio\",\"transcript\":"
                                        : "{\"type\":\"output_text\",\"text\":");
        else
            sbuf_puts(b, it->from_audio ? "{\"type\":\"input_audio\",\"transcript\":"
                                        : "{\"type\":\"input_text\",\"text\":");
        sbuf_json_str(b, it->text);
        sbuf_puts(b, "}]");
    }
    }
    sbuf_putc(b, '}');
}

/* Sends conversation.item.added and conversation.item.done for a finished item. */
static void announce_item(sim_rt_t *rt, const sim_item_t *it, const char *previous_item_id)
{
    static const char *const types[] = {"conversation.item.added", "conversation.item.done"};
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        sim_rt_event_begin(rt, types[i]);
        sbuf_puts(&rt->out, ",\"previous_item_id\":");
        sbuf_json_str(&rt->out, previous_item_id);
        sbuf_puts(&rt->out, ",\"item\":");
        sim_rt_item_json(&rt->out, it, "completed");
        sim_rt_event_send(rt);
    }
}

/* ---- Opening and closing --------------------------------------------------------------------- */

static void send_session(sim_rt_t *rt, const char *type)
{
    char *s = cJSON_PrintUnformatted(rt->session);
    sim_rt_event_begin(rt, type);
    sbuf_puts(&rt->out, ",\"session\":");
    sbuf_puts(&rt->out, s ? s : "{}");
    sim_rt_event_send(rt);
    free(s);
}

void sim_rt_open(sim_conn_t *c)
{
    sim_rt_t *rt = xcalloc(1, sizeof(*rt));
    c->rt = rt;
    rt->conn = c;
    rt->carry = -1;
    rt->fault_slot = -1;
    sbuf_init(&rt->out);
    sim_id(rt->id, "sess_");
    sim_id(rt->conv_id, "conv_");
    str_copy(rt->model, c->hello.model[0] ? c->hello.model : SIM_RT_DEFAULT_MODEL,
             sizeof(rt->model));
    rt->session = sim_session_default(rt->id, rt->model);
    sim_session_derive(rt);
    rt->rec = sim_record_open(rt->id, rt->model, true, 101, c->hello.beta_header, &rt->rec);
    g_sim_stats.sessions_open++;
    g_sim_stats.sessions_total++;
    log_info("sim.session.open", LOG_S("session", rt->id), LOG_S("model", rt->model));
    if (c->hello.beta_header) {
        /* The beta shape was retired: the real service closes such sockets at once. */
        sim_conn_close(c, RT_CLOSE_BETA, RT_BETA_REASON);
        return;
    }
    uint64_t now = clock_now_ns();
    if (g_sim_cfg.drop_after_ms) {
        c->drop_at_ns = now + g_sim_cfg.drop_after_ms * NS_PER_MS;
        sim_conn_wake_at(c, c->drop_at_ns);
    }
    if (g_sim_cfg.expire_after_ms) {
        rt->expire_at_ns = now + g_sim_cfg.expire_after_ms * NS_PER_MS;
        sim_conn_wake_at(c, rt->expire_at_ns);
    }
    send_session(rt, "session.created");
    sim_rt_event_begin(rt, "conversation.created");
    sbuf_puts(&rt->out, ",\"conversation\":{\"id\":\"");
    sbuf_puts(&rt->out, rt->conv_id);
    sbuf_puts(&rt->out, "\",\"object\":\"realtime.conversation\"}");
    sim_rt_event_send(rt);
}

void sim_rt_close(sim_conn_t *c)
{
    sim_rt_t *rt = c->rt;
    if (rt == NULL)
        return;
    c->rt = NULL;
    sim_fault_target_remove(rt);
    sim_resp_free(rt);
    sim_record_close(rt->rec);
    log_info("sim.session.close", LOG_S("session", rt->id));
    for (uint32_t i = 0; i < rt->n_items; i++)
        free(rt->items[i].text);
    free(rt->items);
    cJSON_Delete(rt->session);
    sbuf_destroy(&rt->out);
    free(rt);
    g_sim_stats.sessions_open--;
}

void sim_rt_expire(sim_rt_t *rt)
{
    sim_fault_target_remove(rt);
    sim_resp_free(rt);
    rt->vad_on = false;
    sim_rt_event_begin(rt, "error");
    sbuf_puts(&rt->out, ",\"error\":{\"type\":\"invalid_request_error\",\"code\":"
                        "\"session_expired\",\"message\":\"" RT_EXPIRE_MESSAGE "\","
                        "\"param\":null,\"event_id\":null}");
    sim_rt_event_send(rt);
    sim_conn_close(rt->conn, RT_CLOSE_GOING_AWAY, RT_EXPIRE_MESSAGE);
}

uint64_t sim_rt_tick(sim_conn_t *c, uint64_t now_ns)
{
    sim_rt_t *rt = c->rt;
    if (rt->expire_at_ns && now_ns >= rt->expire_at_ns) {
        rt->expire_at_ns = 0;
        sim_rt_expire(rt);
        return 0;
    }
    uint64_t next = sim_resp_tick(rt, now_ns);
    if (rt->expire_at_ns && (next == 0 || rt->expire_at_ns < next))
        next = rt->expire_at_ns;
    return next;
}

/* ---- Input audio ----------------------------------------------------------------------------- */

/* The transcription of a user audio turn: deltas, then completed. A scripted transcript
 * (--transcripts) streams a word at a time, as a recogniser would; the made-up one in one
 * delta. */
static void send_transcription(sim_rt_t *rt, const char *item_id, const char *transcript,
                               bool scripted, uint64_t speech_ms)
{
    const char *p = transcript;
    do {
        size_t n = scripted ? strcspn(p, " ") : strlen(p);
        n += strspn(p + n, " "); /* a delta carries the spaces after its word */
        sim_rt_event_begin(rt, "conversation.item.input_audio_transcription.delta");
        sbuf_printf(&rt->out, ",\"item_id\":\"%s\",\"content_index\":0,\"delta\":", item_id);
        sbuf_json_strn(&rt->out, p, n);
        sim_rt_event_send(rt);
        p += n;
    } while (*p);
    sim_rt_event_begin(rt, "conversation.item.input_audio_transcription.completed");
    sbuf_printf(&rt->out, ",\"item_id\":\"%s\",\"content_index\":0,\"transcript\":", item_id);
    sbuf_json_str(&rt->out, transcript);
    sbuf_printf(&rt->out, ",\"usage\":{\"type\":\"duration\",\"seconds\":%.1f}",
                (double)speech_ms / SIM_MS_PER_S);
    sim_rt_event_send(rt);
}

/* Ends a user audio turn: committed, the user item with its transcript: words (a VAD turn
 * that --transcripts scripts) or made up. */
static void commit_turn(sim_rt_t *rt, const char *item_id, uint64_t speech_ms, const char *words)
{
    char prev[SIM_ID_MAX];
    const char *last = sim_rt_last_item_id(rt);
    str_copy(prev, last ? last : "", sizeof(prev));
    sim_rt_event_begin(rt, "input_audio_buffer.committed");
    sbuf_puts(&rt->out, ",\"previous_item_id\":");
    sbuf_json_str(&rt->out, last ? prev : NULL);
    sbuf_printf(&rt->out, ",\"item_id\":\"%s\"", item_id);
    sim_rt_event_send(rt);

    char made_up[64];
    snprintf(made_up, sizeof(made_up), "(caller spoke for %.1f seconds)",
             (double)speech_ms / SIM_MS_PER_S);
    bool scripted = words != NULL && words[0] != '\0';
    const char *transcript = scripted ? words : made_up;
    sim_item_t *it = sim_rt_item_add(rt, SIM_ITEM_USER, item_id, transcript);
    it->from_audio = true;
    it->scripted = scripted;
    rt->input_audio_ms += speech_ms;
    rt->buf_bytes = 0;
    announce_item(rt, it, last ? prev : NULL);
    send_transcription(rt, item_id, transcript, scripted, speech_ms);
}

static void on_vad_event(sim_rt_t *rt, const sim_vad_event_t *e)
{
    if (e->kind == SIM_VAD_STARTED) {
        sim_id(rt->speech_item, "item_");
        uint64_t start = e->start_ms > rt->prefix_ms ? e->start_ms - rt->prefix_ms : 0;
        sim_rt_event_begin(rt, "input_audio_buffer.speech_started");
        sbuf_printf(&rt->out, ",\"audio_start_ms\":%llu,\"item_id\":\"%s\"",
                    (unsigned long long)start, rt->speech_item);
        sim_rt_event_send(rt);
        if (rt->resp && rt->interrupt_response)
            sim_resp_cancel(rt, "turn_detected"); /* barge-in */
        return;
    }
    sim_rt_event_begin(rt, "input_audio_buffer.speech_stopped");
    sbuf_printf(&rt->out, ",\"audio_end_ms\":%llu,\"item_id\":\"%s\"",
                (unsigned long long)e->end_ms, rt->speech_item);
    sim_rt_event_send(rt);
    uint32_t turn = rt->vad_turns++;
    const char *words = turn < g_sim_cfg.n_transcripts ? g_sim_cfg.transcripts[turn] : NULL;
    commit_turn(rt, rt->speech_item, e->end_ms - e->start_ms, words);
    if (rt->create_response && rt->resp == NULL)
        sim_resp_auto(rt);
}

/* The hot path: echo it back, or run the VAD on it. */
static void on_append(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "audio");
    if (!cJSON_IsString(a)) {
        sim_rt_error(rt, "missing_required_parameter", "Missing required parameter: 'audio'.",
                     "audio", eid);
        return;
    }
    size_t n = strlen(a->valuestring);
    size_t bytes = n / 4 * 3;
    if (n >= 1 && a->valuestring[n - 1] == '=')
        bytes -= 1 + (n >= 2 && a->valuestring[n - 2] == '=');
    g_sim_stats.appends++;
    sim_record_append(rt->rec, bytes);
    if (g_sim_cfg.mode == SIM_MODE_ECHO) {
        rt->buf_bytes += bytes;
        sim_resp_echo(rt, a->valuestring, n, bytes);
        return;
    }
    size_t need = b64_decoded_max(n);
    if (need > g_scratch.bytes_cap) {
        g_scratch.bytes_cap = need;
        g_scratch.bytes = xrealloc(g_scratch.bytes, need);
        g_scratch.pcm_cap = need + 1;
        g_scratch.pcm = xrealloc(g_scratch.pcm, g_scratch.pcm_cap * sizeof(int16_t));
    }
    ssize_t got = b64_decode(a->valuestring, n, g_scratch.bytes);
    if (got < 0) {
        sim_rt_error(rt, "invalid_value", "Invalid 'audio': expected base64-encoded audio bytes.",
                     "audio", eid);
        return;
    }
    rt->buf_bytes += (uint64_t)got;
    size_t ns =
        sim_audio_to_linear(rt->in_fmt, g_scratch.bytes, (size_t)got, &rt->carry, g_scratch.pcm);
    sim_vad_event_t ev[RT_VAD_EVENTS_MAX];
    size_t nev = sim_vad_feed(&rt->vad, g_scratch.pcm, ns, ev, ARRAY_LEN(ev));
    for (size_t i = 0; i < nev && rt->vad_on && rt->conn->rt == rt; i++)
        on_vad_event(rt, &ev[i]);
}

static void on_commit(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    (void)j;
    if (g_sim_cfg.mode == SIM_MODE_ECHO) {
        sim_resp_finish(rt);
        char id[SIM_ID_MAX];
        sim_id(id, "item_");
        commit_turn(rt, id, rt->buf_bytes / sim_audio_bytes_per_ms(rt->in_fmt), NULL);
        return;
    }
    uint64_t ms = rt->buf_bytes / sim_audio_bytes_per_ms(rt->in_fmt);
    if (ms < RT_MIN_COMMIT_MS) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Error committing input audio buffer: buffer too small. Expected at least "
                 "%dms of audio, but buffer only has %llums of audio.",
                 RT_MIN_COMMIT_MS, (unsigned long long)ms);
        sim_rt_error(rt, "input_audio_buffer_commit_empty", msg, NULL, eid);
        return;
    }
    char id[SIM_ID_MAX];
    if (rt->vad.in_speech)
        str_copy(id, rt->speech_item, sizeof(id));
    else
        sim_id(id, "item_");
    sim_vad_reset_turn(&rt->vad);
    commit_turn(rt, id, ms, NULL);
}

static void on_clear(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    (void)j;
    (void)eid;
    rt->buf_bytes = 0;
    rt->carry = -1;
    sim_vad_reset_turn(&rt->vad);
    sim_rt_event_begin(rt, "input_audio_buffer.cleared");
    sim_rt_event_send(rt);
}

/* ---- Session, items, responses --------------------------------------------------------------- */

static void on_session_update(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    if (g_sim_cfg.reject_session_update) {
        sim_rt_error(rt, "invalid_value",
                     "Invalid value for 'session': rejected (switchboard-sim "
                     "--reject-session-update).",
                     "session", eid);
        return;
    }
    const cJSON *upd = cJSON_GetObjectItemCaseSensitive(j, "session");
    const char *code = NULL;
    char param[160], msg[300];
    if (sim_session_check(upd, &code, param, sizeof(param), msg, sizeof(msg)) != 0) {
        sim_rt_error(rt, code, msg, param, eid);
        return;
    }
    sim_session_merge(rt->session, upd);
    sim_session_derive(rt);
    send_session(rt, "session.updated");
    sim_fault_target_add(rt);
}

/* Joins the text of a message's content parts; says whether there was audio content. */
static void content_text(const cJSON *content, sbuf_t *b, bool *audio, bool *text)
{
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "type");
        const char *tt = cJSON_IsString(t) ? t->valuestring : "";
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (strstr(tt, "audio")) {
            *audio = true;
            v = cJSON_GetObjectItemCaseSensitive(part, "transcript");
        } else {
            *text = true;
        }
        if (cJSON_IsString(v)) {
            if (b->len)
                sbuf_putc(b, ' ');
            sbuf_puts(b, v->valuestring);
        }
    }
}

static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void on_item_create(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(j, "item");
    if (!cJSON_IsObject(item)) {
        sim_rt_error(rt, "missing_required_parameter", "Missing required parameter: 'item'.",
                     "item", eid);
        return;
    }
    const char *type = str_member(item, "type");
    const char *id = str_member(item, "id");
    if (type == NULL)
        type = "message";
    if (id && sim_rt_item_find(rt, id)) {
        sim_rt_error(rt, "invalid_value", "An item with this id already exists.", "item.id", eid);
        return;
    }
    char prev[SIM_ID_MAX];
    const char *last = sim_rt_last_item_id(rt);
    str_copy(prev, last ? last : "", sizeof(prev));
    sim_item_t *it;
    if (strcmp(type, "message") == 0) {
        const char *role = str_member(item, "role");
        sim_item_kind_t kind = SIM_ITEM_USER;
        if (role && strcmp(role, "system") == 0)
            kind = SIM_ITEM_SYSTEM;
        else if (role && strcmp(role, "assistant") == 0)
            kind = SIM_ITEM_ASSISTANT;
        else if (role == NULL || strcmp(role, "user") != 0) {
            sim_rt_error(rt, "invalid_value",
                         "Invalid 'item.role': expected user, system or "
                         "assistant.",
                         "item.role", eid);
            return;
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
        if (!cJSON_IsArray(content)) {
            sim_rt_error(rt, "missing_required_parameter",
                         "Missing required parameter: 'item.content'.", "item.content", eid);
            return;
        }
        sbuf_t text = SBUF_INIT;
        bool audio = false, has_text = false;
        content_text(content, &text, &audio, &has_text);
        it = sim_rt_item_add(rt, kind, id, text.data);
        it->from_audio = audio && !has_text;
        sbuf_destroy(&text);
    } else if (strcmp(type, "function_call_output") == 0) {
        const char *call_id = str_member(item, "call_id");
        const char *output = str_member(item, "output");
        if (call_id == NULL || output == NULL) {
            sim_rt_error(rt, "missing_required_parameter",
                         call_id ? "Invalid 'item.output': expected a string."
                                 : "Missing required parameter: 'item.call_id'.",
                         call_id ? "item.output" : "item.call_id", eid);
            return;
        }
        bool found = false;
        for (uint32_t i = 0; i < rt->n_items && !found; i++)
            found =
                rt->items[i].kind == SIM_ITEM_CALL && strcmp(rt->items[i].call_id, call_id) == 0;
        if (!found) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Tool call ID '%.60s' not found in conversation.", call_id);
            sim_rt_error(rt, "invalid_value", msg, "item.call_id", eid);
            return;
        }
        it = sim_rt_item_add(rt, SIM_ITEM_OUTPUT, id, output);
        str_copy(it->call_id, call_id, sizeof(it->call_id));
    } else if (strcmp(type, "function_call") == 0) {
        const char *call_id = str_member(item, "call_id"), *name = str_member(item, "name");
        if (call_id == NULL || name == NULL) {
            sim_rt_error(rt, "missing_required_parameter",
                         "Missing required parameter: 'item.call_id' or 'item.name'.",
                         call_id ? "item.name" : "item.call_id", eid);
            return;
        }
        const char *args = str_member(item, "arguments");
        it = sim_rt_item_add(rt, SIM_ITEM_CALL, id, args ? args : "{}");
        str_copy(it->call_id, call_id, sizeof(it->call_id));
        str_copy(it->name, name, sizeof(it->name));
    } else {
        sim_rt_error(rt, "invalid_value",
                     "Invalid 'item.type': expected message, "
                     "function_call or function_call_output.",
                     "item.type", eid);
        return;
    }
    announce_item(rt, it, last ? prev : NULL);
}

static void on_item_truncate(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    const char *item_id = str_member(j, "item_id");
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(j, "audio_end_ms");
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(j, "content_index");
    if (item_id == NULL || !cJSON_IsNumber(end) || end->valuedouble < 0) {
        sim_rt_error(rt, "missing_required_parameter",
                     "Missing required parameter: 'item_id' or 'audio_end_ms'.",
                     item_id ? "audio_end_ms" : "item_id", eid);
        return;
    }
    sim_item_t *it = sim_rt_item_find(rt, item_id);
    char msg[200];
    if (it == NULL) {
        snprintf(msg, sizeof(msg), "Item with item_id '%.60s' not found.", item_id);
        sim_rt_error(rt, "invalid_value", msg, "item_id", eid);
        return;
    }
    uint64_t bytes = it->audio_bytes;
    bool active = sim_resp_item_audio(rt, item_id, &bytes);
    if (it->kind != SIM_ITEM_ASSISTANT || (!it->from_audio && !active)) {
        sim_rt_error(rt, "invalid_value", "Only model output audio messages can be truncated",
                     "item_id", eid);
        return;
    }
    uint64_t have_ms = it->bytes_per_ms ? bytes / it->bytes_per_ms : 0;
    uint64_t want_ms = (uint64_t)end->valuedouble;
    if (want_ms > have_ms) {
        snprintf(msg, sizeof(msg), "Audio content of %llums is already shorter than %llums",
                 (unsigned long long)have_ms, (unsigned long long)want_ms);
        sim_rt_error(rt, "invalid_value", msg, "audio_end_ms", eid);
        return;
    }
    sim_rt_event_begin(rt, "conversation.item.truncated");
    sbuf_puts(&rt->out, ",\"item_id\":");
    sbuf_json_str(&rt->out, item_id);
    sbuf_printf(&rt->out, ",\"content_index\":%d,\"audio_end_ms\":%llu",
                cJSON_IsNumber(ci) ? ci->valueint : 0, (unsigned long long)want_ms);
    sim_rt_event_send(rt);
}

static void on_item_retrieve_or_delete(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    const char *item_id = str_member(j, "item_id");
    sim_item_t *it = item_id ? sim_rt_item_find(rt, item_id) : NULL;
    if (it == NULL) {
        sim_rt_error(rt, "invalid_value", "Item with this item_id not found.", "item_id", eid);
        return;
    }
    const char *type = str_member(j, "type");
    if (strcmp(type, "conversation.item.delete") == 0) {
        item_delete(rt, it);
        sim_rt_event_begin(rt, "conversation.item.deleted");
        sbuf_puts(&rt->out, ",\"item_id\":");
        sbuf_json_str(&rt->out, item_id);
    } else {
        sim_rt_event_begin(rt, "conversation.item.retrieved");
        sbuf_puts(&rt->out, ",\"item\":");
        sim_rt_item_json(&rt->out, it, "completed");
    }
    sim_rt_event_send(rt);
}

static void on_response_create(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    sim_resp_create(rt, cJSON_GetObjectItemCaseSensitive(j, "response"), eid);
}

static void on_response_cancel(sim_rt_t *rt, const cJSON *j, const char *eid)
{
    (void)j;
    if (rt->resp == NULL) {
        sim_rt_error(rt, "response_cancel_not_active",
                     "Cancellation failed: no active response found", NULL, eid);
        return;
    }
    sim_resp_cancel(rt, "client_cancelled");
}

/* ---- Dispatch -------------------------------------------------------------------------------- */

typedef void (*handler_fn)(sim_rt_t *rt, const cJSON *j, const char *eid);

static const struct {
    const char *type;
    handler_fn fn;
} handlers[] = {
    {"session.update", on_session_update},
    {"input_audio_buffer.commit", on_commit},
    {"input_audio_buffer.clear", on_clear},
    {"conversation.item.create", on_item_create},
    {"conversation.item.truncate", on_item_truncate},
    {"conversation.item.retrieve", on_item_retrieve_or_delete},
    {"conversation.item.delete", on_item_retrieve_or_delete},
    {"response.create", on_response_create},
    {"response.cancel", on_response_cancel},
};

/*
 * The event as cJSON. Appends (50 a second per session, ~1.3 KB) skip cJSON's parser, which was
 * most of the simulator's CPU: when wsp_scan_event() (net/wsproto.h) vouches for the text, a tree
 * of the members on_append() reads is built from it. Anything else is parsed in full.
 */
static cJSON *parse_event(const char *s, size_t len)
{
    static const char *const names[] = {"type", "audio", "event_id"};
    wsp_span_t f[ARRAY_LEN(names)];
    if (wsp_scan_event(s, len, names, ARRAY_LEN(names), f) &&
        wsp_span_is(f[0], "input_audio_buffer.append"))
        return wsp_scan_tree(names, f, ARRAY_LEN(names));
    return cJSON_ParseWithLength(s, len);
}

void sim_rt_on_text(sim_conn_t *c, const char *s, size_t len)
{
    sim_rt_t *rt = c->rt;
    cJSON *j = parse_event(s, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        sbuf_t b = SBUF_INIT;
        sbuf_printf(&b, "{\"type\":\"%s\",\"bytes\":%zu}", j ? "invalid_event" : "invalid_json",
                    len);
        sim_record_event(rt->rec, sbuf_take(&b));
        if (j)
            sim_rt_error(rt, "invalid_value",
                         "An event must be a JSON object with a string "
                         "'type'.",
                         "type", NULL);
        else
            sim_rt_error(rt, "invalid_json", "The event is not valid JSON.", NULL, NULL);
        cJSON_Delete(j);
        return;
    }
    const char *eid = str_member(j, "event_id");
    if (strcmp(type->valuestring, "input_audio_buffer.append") == 0) {
        on_append(rt, j, eid);
        cJSON_Delete(j);
        return;
    }
    sim_record_event(rt->rec, cJSON_PrintUnformatted(j));
    for (size_t i = 0; i < ARRAY_LEN(handlers); i++) {
        if (strcmp(type->valuestring, handlers[i].type) == 0) {
            handlers[i].fn(rt, j, eid);
            cJSON_Delete(j);
            return;
        }
    }
    char msg[512];
    snprintf(msg, sizeof(msg),
             "Invalid value: '%.80s'. Supported values are: 'session.update', "
             "'input_audio_buffer.append', 'input_audio_buffer.commit', "
             "'input_audio_buffer.clear', 'conversation.item.create', "
             "'conversation.item.truncate', 'conversation.item.delete', "
             "'conversation.item.retrieve', 'response.create' and 'response.cancel'.",
             type->valuestring);
    sim_rt_error(rt, "invalid_value", msg, "type", eid);
    cJSON_Delete(j);
}

void sim_rt_on_binary(sim_conn_t *c, size_t len)
{
    sim_rt_t *rt = c->rt;
    sbuf_t b = SBUF_INIT;
    sbuf_printf(&b, "{\"type\":\"binary\",\"bytes\":%zu}", len);
    sim_record_event(rt->rec, sbuf_take(&b));
    sim_rt_error(rt, "invalid_value", "Binary frames are not supported: send JSON text events.",
                 NULL, NULL);
}
