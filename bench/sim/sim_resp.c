/*
 * Realtime responses of the simulator: echo responses (each append comes straight back as an
 * audio delta), spoken or text answers paced in 100 ms chunks, function calls, and the
 * completed / cancelled endings with their usage.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/b64.h"
#include "base/util.h"
#include "bench/sim/sim_rt.h"
#include "bench/sim/sim_text.h"

#define ECHO_IDLE_MS           500 /* an echo response ends after this long without appends */
#define CHUNK_MS               100 /* agent audio goes out in chunks of this length */
#define CHUNK_MAX_SAMPLES      (SIM_AUDIO_PCM_RATE_HZ * CHUNK_MS / SIM_MS_PER_S)
#define TOKENS_BASE            40 /* instructions and tools, roughly */
#define TEXT_BYTES_PER_TOKEN   4
#define AUDIO_IN_MS_PER_TOKEN  100
#define AUDIO_OUT_MS_PER_TOKEN 50

typedef enum { RESP_ECHO = 0, RESP_SPEECH, RESP_CALL, RESP_EMPTY } resp_kind_t;

struct sim_resp {
    resp_kind_t kind;
    bool text_only; /* SPEECH as output_text instead of audio */
    char id[SIM_ID_MAX];
    char item_id[SIM_ID_MAX];
    char prev_item_id[SIM_ID_MAX]; /* "" when the item was the first */
    uint32_t bytes_per_ms;         /* of the audio this response sends */
    uint64_t audio_bytes;          /* audio sent so far */
    char *text;                    /* SPEECH: transcript; CALL: all arguments (for usage) */
    /* ECHO */
    uint64_t last_append_ns;
    char ids_tail[160]; /* ","response_id":…,"delta":" of every delta */
    size_t ids_tail_len;
    /* SPEECH */
    sim_fmt_t fmt;
    sim_speech_t sp;
    uint64_t started_ns;
    uint64_t samples_sent;
    uint32_t chunks_sent;
    uint32_t words_sent;
    size_t said_len; /* bytes of text covered by the deltas sent */
};

static struct {
    int16_t pcm[CHUNK_MAX_SAMPLES];
    uint8_t wire[CHUNK_MAX_SAMPLES * SIM_AUDIO_PCM16_BYTES];
    char b64[CHUNK_MAX_SAMPLES * SIM_AUDIO_PCM16_BYTES / 3 * 4 + 8]; /* base64: 4 per 3 */
} g_chunk;

/* ---- Shared pieces of events ----------------------------------------------------------------- */

/* The ids every delta and done event carries (function-call events have no content_index). */
static void ids_of(sim_rt_t *rt, const sim_resp_t *r, const char *item_id, int output_index,
                   bool content_index)
{
    sbuf_printf(&rt->out, ",\"response_id\":\"%s\",\"item_id\":\"%s\",\"output_index\":%d", r->id,
                item_id, output_index);
    if (content_index)
        sbuf_puts(&rt->out, ",\"content_index\":0");
}

static void ids(sim_rt_t *rt, const sim_resp_t *r, bool content_index)
{
    ids_of(rt, r, r->item_id, 0, content_index);
}

static void format_json(sbuf_t *b, sim_fmt_t f)
{
    sbuf_puts(b, f == SIM_FMT_PCMU   ? "{\"type\":\"audio/pcmu\"}"
                 : f == SIM_FMT_PCMA ? "{\"type\":\"audio/pcma\"}"
                                     : "{\"type\":\"audio/pcm\",\"rate\":24000}");
}

static void usage_json(sim_rt_t *rt, const sim_resp_t *r)
{
    uint64_t text_in = TOKENS_BASE;
    for (uint32_t i = 0; i < rt->n_items; i++)
        text_in += strlen(rt->items[i].text) / TEXT_BYTES_PER_TOKEN;
    uint64_t audio_in = rt->input_audio_ms / AUDIO_IN_MS_PER_TOKEN;
    uint64_t text_out = (r->text ? strlen(r->text) : 0) / TEXT_BYTES_PER_TOKEN + 1;
    uint64_t audio_out =
        r->bytes_per_ms ? r->audio_bytes / r->bytes_per_ms / AUDIO_OUT_MS_PER_TOKEN : 0;
    unsigned long long in = text_in + audio_in, out = text_out + audio_out;
    sbuf_printf(&rt->out,
                ",\"usage\":{\"total_tokens\":%llu,\"input_tokens\":%llu,\"output_tokens\":%llu,"
                "\"input_token_details\":{\"text_tokens\":%llu,\"audio_tokens\":%llu,"
                "\"image_tokens\":0,\"cached_tokens\":0,\"cached_tokens_details\":"
                "{\"text_tokens\":0,\"audio_tokens\":0,\"image_tokens\":0}},"
                "\"output_token_details\":{\"text_tokens\":%llu,\"audio_tokens\":%llu}}",
                in + out, in, out, (unsigned long long)text_in, (unsigned long long)audio_in,
                (unsigned long long)text_out, (unsigned long long)audio_out);
}

/* The response object of response.created (output empty, no usage) and response.done (the
 * items named in item_ids that still exist). */
static void response_json(sim_rt_t *rt, const sim_resp_t *r, const char *status, const char *reason,
                          char (*item_ids)[SIM_ID_MAX], unsigned n_items)
{
    sbuf_t *b = &rt->out;
    sbuf_printf(b,
                ",\"response\":{\"object\":\"realtime.response\",\"id\":\"%s\",\"status\":\"%s\"",
                r->id, status);
    if (reason)
        sbuf_printf(b, ",\"status_details\":{\"type\":\"cancelled\",\"reason\":\"%s\"}", reason);
    else
        sbuf_puts(b, ",\"status_details\":null");
    sbuf_puts(b, ",\"output\":[");
    bool first = true;
    for (unsigned i = 0; i < n_items; i++) {
        const sim_item_t *it = sim_rt_item_find(rt, item_ids[i]);
        if (it == NULL)
            continue; /* deleted by the client meanwhile */
        if (!first)
            sbuf_putc(b, ',');
        first = false;
        sim_rt_item_json(b, it, strcmp(status, "completed") == 0 ? "completed" : "incomplete");
    }
    sbuf_printf(b, "],\"conversation_id\":\"%s\",\"output_modalities\":[\"%s\"]", rt->conv_id,
                r->text_only ? "text" : "audio");
    sbuf_puts(b, ",\"max_output_tokens\":\"inf\",\"audio\":{\"output\":{\"format\":");
    format_json(b, r->fmt);
    sbuf_puts(b, "}},\"metadata\":null");
    if (strcmp(status, "in_progress") == 0)
        sbuf_puts(b, ",\"usage\":null");
    else
        usage_json(rt, r);
    sbuf_putc(b, '}');
}

static sim_resp_t *resp_new(sim_rt_t *rt, resp_kind_t kind)
{
    sim_resp_t *r = xcalloc(1, sizeof(*r));
    r->kind = kind;
    r->fmt = kind == RESP_ECHO ? rt->in_fmt : rt->out_fmt;
    r->text_only = kind == RESP_SPEECH && rt->text_only;
    sim_id(r->id, "resp_");
    sim_id(r->item_id, "item_");
    const char *last = sim_rt_last_item_id(rt);
    str_copy(r->prev_item_id, last ? last : "", sizeof(r->prev_item_id));
    r->bytes_per_ms = sim_audio_bytes_per_ms(r->fmt);
    g_sim_stats.responses++;
    return r;
}

static void resp_free(sim_resp_t *r)
{
    if (r == NULL)
        return;
    sim_speech_free(&r->sp);
    free(r->text);
    free(r);
}

/* response.created, the item in the conversation, response.output_item.added and
 * conversation.item.added. Returns the new item. */
static sim_item_t *begin(sim_rt_t *rt, sim_resp_t *r, sim_item_kind_t kind)
{
    sim_rt_event_begin(rt, "response.created");
    response_json(rt, r, "in_progress", NULL, NULL, 0);
    sim_rt_event_send(rt);
    sim_item_t *it = sim_rt_item_add(rt, kind, r->item_id, "");
    it->from_audio = !r->text_only;
    it->bytes_per_ms = r->bytes_per_ms;
    sim_rt_event_begin(rt, "response.output_item.added");
    sbuf_printf(&rt->out, ",\"response_id\":\"%s\",\"output_index\":0,\"item\":", r->id);
    sim_rt_item_json(&rt->out, it, "in_progress");
    sim_rt_event_send(rt);
    sim_rt_event_begin(rt, "conversation.item.added");
    sbuf_puts(&rt->out, ",\"previous_item_id\":");
    sbuf_json_str(&rt->out, r->prev_item_id[0] ? r->prev_item_id : NULL);
    sbuf_puts(&rt->out, ",\"item\":");
    sim_rt_item_json(&rt->out, it, "in_progress");
    sim_rt_event_send(rt);
    return it;
}

static void part_json(sim_rt_t *rt, const sim_resp_t *r, const char *text, size_t len)
{
    sbuf_puts(&rt->out, r->text_only ? ",\"part\":{\"type\":\"output_text\",\"text\":"
                                     : ",\"part\":{\"type\":\"output_audio\",\"transcript\":");
    sbuf_json_strn(&rt->out, text, len);
    sbuf_putc(&rt->out, '}');
}

/*
 * Ends the active response: the done events of its content and item, then response.done with
 * status completed (reason NULL) or cancelled (reason given). Frees the response.
 */
static void end(sim_rt_t *rt, const char *reason)
{
    sim_resp_t *r = rt->resp;
    const char *status = reason ? "cancelled" : "completed";
    const char *item_status = reason ? "incomplete" : "completed";
    const char *said = r->text ? r->text : "";
    size_t said_len = r->kind == RESP_SPEECH ? r->said_len : strlen(said);
    if (r->kind == RESP_ECHO || r->kind == RESP_SPEECH) {
        if (!r->text_only) {
            sim_rt_event_begin(rt, "response.output_audio.done");
            ids(rt, r, true);
            sim_rt_event_send(rt);
        }
        if (r->kind == RESP_SPEECH) {
            sim_rt_event_begin(rt, r->text_only ? "response.output_text.done"
                                                : "response.output_audio_transcript.done");
            ids(rt, r, true);
            sbuf_puts(&rt->out, r->text_only ? ",\"text\":" : ",\"transcript\":");
            sbuf_json_strn(&rt->out, said, said_len);
            sim_rt_event_send(rt);
        }
        sim_rt_event_begin(rt, "response.content_part.done");
        ids(rt, r, true);
        part_json(rt, r, said, said_len);
        sim_rt_event_send(rt);
    }
    sim_item_t *it = sim_rt_item_find(rt, r->item_id);
    if (it) {
        free(it->text);
        it->text = xstrndup(said, said_len);
        it->audio_bytes = r->audio_bytes;
        sim_rt_event_begin(rt, "response.output_item.done");
        sbuf_printf(&rt->out, ",\"response_id\":\"%s\",\"output_index\":0,\"item\":", r->id);
        sim_rt_item_json(&rt->out, it, item_status);
        sim_rt_event_send(rt);
        sim_rt_event_begin(rt, "conversation.item.done");
        sbuf_puts(&rt->out, ",\"previous_item_id\":");
        sbuf_json_str(&rt->out, r->prev_item_id[0] ? r->prev_item_id : NULL);
        sbuf_puts(&rt->out, ",\"item\":");
        sim_rt_item_json(&rt->out, it, item_status);
        sim_rt_event_send(rt);
    }
    sim_rt_event_begin(rt, "response.done");
    response_json(rt, r, status, reason, &r->item_id, 1);
    sim_rt_event_send(rt);
    rt->resp = NULL;
    resp_free(r);
}

/* ---- Echo ------------------------------------------------------------------------------------ */

static void echo_begin(sim_rt_t *rt)
{
    sim_resp_t *r = resp_new(rt, RESP_ECHO);
    rt->resp = r;
    begin(rt, r, SIM_ITEM_ASSISTANT);
    sim_rt_event_begin(rt, "response.content_part.added");
    ids(rt, r, true);
    part_json(rt, r, "", 0);
    sim_rt_event_send(rt);
    r->ids_tail_len = (size_t)snprintf(r->ids_tail, sizeof(r->ids_tail),
                                       "\",\"response_id\":\"%s\",\"item_id\":\"%s\","
                                       "\"output_index\":0,\"content_index\":0,\"delta\":\"",
                                       r->id, r->item_id);
}

void sim_resp_echo(sim_rt_t *rt, const char *b64, size_t n, size_t bytes)
{
    static const char head[] = "{\"type\":\"response.output_audio.delta\",\"event_id\":\"";
    if (rt->resp && rt->resp->kind != RESP_ECHO)
        return; /* cannot happen in echo mode: other responses end before they return */
    if (rt->resp == NULL)
        echo_begin(rt);
    sim_resp_t *r = rt->resp;
    /* A template: no JSON building and no escaping (base64 needs none) on the audio path. */
    char eid[SIM_ID_MAX];
    sim_id(eid, "event_");
    sbuf_t *b = &rt->out;
    sim_conn_msg_begin(b);
    sbuf_reserve(b, sizeof(head) + SIM_ID_MAX + r->ids_tail_len + n + 2);
    sbuf_append(b, head, sizeof(head) - 1);
    sbuf_append(b, eid, strlen(eid));
    sbuf_append(b, r->ids_tail, r->ids_tail_len);
    sbuf_append(b, b64, n);
    sbuf_append(b, "\"}", 2);
    sim_conn_send(rt->conn, b);
    r->audio_bytes += bytes;
    g_sim_stats.deltas++;
    uint64_t now = clock_now_ns();
    r->last_append_ns = now;
    sim_conn_wake_at(rt->conn, now + ECHO_IDLE_MS * NS_PER_MS);
}

/* ---- Speech and text answers ----------------------------------------------------------------- */

/* Sends the chunk that is due: transcript deltas for the words it starts, then its audio. */
static void send_chunk(sim_rt_t *rt, sim_resp_t *r)
{
    uint32_t rate = r->sp.rate_hz;
    uint64_t chunk = (uint64_t)rate * CHUNK_MS / SIM_MS_PER_S;
    uint64_t from = r->samples_sent;
    uint64_t to = from + chunk < r->sp.total ? from + chunk : r->sp.total;
    while (r->words_sent < r->sp.n_words && r->sp.words[r->words_sent].start < to) {
        const sim_word_t *w = &r->sp.words[r->words_sent++];
        sim_rt_event_begin(rt, r->text_only ? "response.output_text.delta"
                                            : "response.output_audio_transcript.delta");
        ids(rt, r, true);
        sbuf_puts(&rt->out, ",\"delta\":");
        sbuf_json_strn(&rt->out, r->text + w->text_off, w->text_len);
        sim_rt_event_send(rt);
        r->said_len = w->text_off + w->text_len;
    }
    if (!r->text_only && to > from) {
        sim_speech_render(&r->sp, from, (size_t)(to - from), g_chunk.pcm);
        size_t nb = sim_audio_encode(r->fmt, g_chunk.pcm, (size_t)(to - from), g_chunk.wire);
        size_t nc = b64_encode(g_chunk.wire, nb, g_chunk.b64);
        sim_rt_event_begin(rt, "response.output_audio.delta");
        ids(rt, r, true);
        sbuf_puts(&rt->out, ",\"delta\":\"");
        sbuf_append(&rt->out, g_chunk.b64, nc);
        sbuf_putc(&rt->out, '"');
        sim_rt_event_send(rt);
        r->audio_bytes += nb;
        g_sim_stats.deltas++;
    }
    r->samples_sent = to;
    r->chunks_sent++;
}

/* Sends every chunk that is due; ends the response after the last. Returns the next deadline. */
static uint64_t pace(sim_rt_t *rt, uint64_t now_ns)
{
    sim_resp_t *r = rt->resp;
    uint64_t interval = CHUNK_MS * NS_PER_MS / g_sim_cfg.pace_x;
    while (rt->resp == r && r->started_ns + r->chunks_sent * interval <= now_ns) {
        send_chunk(rt, r);
        if (r->samples_sent >= r->sp.total) {
            end(rt, NULL);
            return 0;
        }
    }
    return r->started_ns + r->chunks_sent * interval;
}

static void speak(sim_rt_t *rt, const char *text, bool text_only)
{
    sim_resp_t *r = resp_new(rt, RESP_SPEECH);
    r->text_only = text_only;
    r->text = xstrdup(text);
    rt->resp = r;
    begin(rt, r, SIM_ITEM_ASSISTANT);
    sim_rt_event_begin(rt, "response.content_part.added");
    ids(rt, r, true);
    part_json(rt, r, "", 0);
    sim_rt_event_send(rt);
    sim_speech_plan(&r->sp, r->text, sim_audio_rate(r->fmt));
    r->started_ns = clock_now_ns();
    uint64_t next = pace(rt, r->started_ns);
    sim_conn_wake_at(rt->conn, next);
}

/* Sends one function call item of a response: added, argument deltas, done. */
static void send_call(sim_rt_t *rt, sim_resp_t *r, const sim_call_reply_t *c, int index,
                      char item_id[SIM_ID_MAX])
{
    const char *last = sim_rt_last_item_id(rt);
    char prev[SIM_ID_MAX], call_id[SIM_ID_MAX];
    str_copy(prev, last ? last : "", sizeof(prev));
    sim_item_t *it = sim_rt_item_add(rt, SIM_ITEM_CALL, index == 0 ? r->item_id : NULL, "");
    str_copy(item_id, it->id, SIM_ID_MAX);
    sim_id(it->call_id, "call_");
    str_copy(call_id, it->call_id, sizeof(call_id));
    str_copy(it->name, c->name, sizeof(it->name));
    sim_rt_event_begin(rt, "response.output_item.added");
    sbuf_printf(&rt->out, ",\"response_id\":\"%s\",\"output_index\":%d,\"item\":", r->id, index);
    sim_rt_item_json(&rt->out, it, "in_progress");
    sim_rt_event_send(rt);
    sim_rt_event_begin(rt, "conversation.item.added");
    sbuf_puts(&rt->out, ",\"previous_item_id\":");
    sbuf_json_str(&rt->out, last ? prev : NULL);
    sbuf_puts(&rt->out, ",\"item\":");
    sim_rt_item_json(&rt->out, it, "in_progress");
    sim_rt_event_send(rt);
    free(it->text);
    it->text = xstrndup(c->args.data, c->args.len);

    /* Two argument deltas, split on a UTF-8 boundary, as a model streams them. */
    const char *args = c->args.data;
    size_t len = c->args.len, half = len / 2;
    while (half > 0 && (args[half] & 0xc0) == 0x80)
        half--;
    size_t cuts[3] = {0, half, len};
    for (int i = 0; i < 2; i++) {
        if (cuts[i + 1] == cuts[i])
            continue;
        sim_rt_event_begin(rt, "response.function_call_arguments.delta");
        ids_of(rt, r, item_id, index, false);
        sbuf_printf(&rt->out, ",\"call_id\":\"%s\",\"delta\":", call_id);
        sbuf_json_strn(&rt->out, args + cuts[i], cuts[i + 1] - cuts[i]);
        sim_rt_event_send(rt);
    }
    sim_rt_event_begin(rt, "response.function_call_arguments.done");
    ids_of(rt, r, item_id, index, false);
    sbuf_printf(&rt->out, ",\"call_id\":\"%s\",\"name\":", call_id);
    sbuf_json_str(&rt->out, c->name);
    sbuf_puts(&rt->out, ",\"arguments\":");
    sbuf_json_strn(&rt->out, args, len);
    sim_rt_event_send(rt);

    it = sim_rt_item_find(rt, item_id);
    sim_rt_event_begin(rt, "response.output_item.done");
    sbuf_printf(&rt->out, ",\"response_id\":\"%s\",\"output_index\":%d,\"item\":", r->id, index);
    sim_rt_item_json(&rt->out, it, "completed");
    sim_rt_event_send(rt);
    sim_rt_event_begin(rt, "conversation.item.done");
    sbuf_puts(&rt->out, ",\"previous_item_id\":");
    sbuf_json_str(&rt->out, last ? prev : NULL);
    sbuf_puts(&rt->out, ",\"item\":");
    sim_rt_item_json(&rt->out, it, "completed");
    sim_rt_event_send(rt);
}

/* A response of function calls: everything goes out at once (there is nothing to pace). */
static void calls(sim_rt_t *rt, const sim_reply_t *reply)
{
    sim_resp_t *r = resp_new(rt, RESP_CALL);
    rt->resp = r;
    sim_rt_event_begin(rt, "response.created");
    response_json(rt, r, "in_progress", NULL, NULL, 0);
    sim_rt_event_send(rt);
    char item_ids[SIM_REPLY_MAX_CALLS][SIM_ID_MAX];
    sbuf_t all = SBUF_INIT;
    for (unsigned i = 0; i < reply->n_calls; i++) {
        send_call(rt, r, &reply->calls[i], (int)i, item_ids[i]);
        sbuf_append(&all, reply->calls[i].args.data, reply->calls[i].args.len);
    }
    r->text = sbuf_take(&all); /* for the usage figures */
    sim_rt_event_begin(rt, "response.done");
    response_json(rt, r, "completed", NULL, item_ids, reply->n_calls);
    sim_rt_event_send(rt);
    rt->resp = NULL;
    resp_free(r);
}

/* Decides and starts the answer to the conversation so far. */
static void answer(sim_rt_t *rt, bool text_only)
{
    /* Function outputs nobody has spoken yet: say them. */
    sbuf_t said = SBUF_INIT;
    for (uint32_t i = 0; i < rt->n_items; i++) {
        sim_item_t *it = &rt->items[i];
        if ((it->kind == SIM_ITEM_OUTPUT || it->kind == SIM_ITEM_SYSTEM) && !it->answered) {
            it->answered = true;
            if (said.len)
                sbuf_putc(&said, ' ');
            sbuf_puts(&said, it->text);
        }
    }
    if (said.len) {
        speak(rt, said.data, text_only);
        sbuf_destroy(&said);
        return;
    }
    sbuf_destroy(&said);
    sim_item_t *user = NULL;
    for (uint32_t i = rt->n_items; i-- > 0 && user == NULL;)
        if (rt->items[i].kind == SIM_ITEM_USER)
            user = &rt->items[i];
    if (user == NULL) {
        speak(rt, SIM_TEXT_GREETING, text_only);
        return;
    }
    user->answered = true;
    sim_reply_t reply;
    sim_reply_init(&reply);
    /* A phone call's own tools: "a person" / "transfer" moves the call, "goodbye" ends it. */
    static const char *const transfer_words[] = {"transfer", "a person", "a human", NULL};
    static const char *const end_words[] = {"goodbye", "hang up", NULL};
    const char *phone_tool = rt->has_transfer && sim_text_has_any(user->text, transfer_words)
                                 ? "transferCall"
                             : rt->has_end_call && sim_text_has_any(user->text, end_words)
                                 ? "endCall"
                                 : NULL;
    if (phone_tool) {
        sim_call_reply_t *c = &reply.calls[reply.n_calls++];
        str_copy(c->name, phone_tool, sizeof(c->name));
        sbuf_puts(&c->args, "{\"reason\":");
        sbuf_json_str(&c->args, user->text);
        sbuf_putc(&c->args, '}');
    } else {
        /* A scripted spoken turn has real words: the same rules as a typed one. */
        sim_text_voice_reply(user->text, user->from_audio && !user->scripted, rt->has_navigate,
                             rt->section_enum, &reply);
    }
    if (reply.n_calls)
        calls(rt, &reply);
    else
        speak(rt, reply.text.data, text_only);
    sim_reply_destroy(&reply);
}

/* ---- The API of sim_rt.h --------------------------------------------------------------------- */

/* A user text item or a function output that no response has used yet. */
static bool has_unanswered_text(const sim_rt_t *rt)
{
    for (uint32_t i = 0; i < rt->n_items; i++) {
        const sim_item_t *it = &rt->items[i];
        if (!it->answered &&
            ((it->kind == SIM_ITEM_USER && !it->from_audio) || it->kind == SIM_ITEM_OUTPUT ||
             it->kind == SIM_ITEM_SYSTEM))
            return true;
    }
    return false;
}

void sim_resp_create(sim_rt_t *rt, const cJSON *params, const char *client_event_id)
{
    if (rt->resp) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Conversation already has an active response in progress: %s. Wait until the "
                 "response is finished before creating a new one.",
                 rt->resp->id);
        sim_rt_error(rt, "conversation_already_has_active_response", msg, NULL, client_event_id);
        return;
    }
    if (g_sim_cfg.mode == SIM_MODE_ECHO && !has_unanswered_text(rt)) {
        /* Echo mode has nothing to say to audio: an empty, completed response. Text turns
         * (and function outputs) are answered as in agent mode, so a load run can mix audio
         * sessions with sessions that keep tools busy (switchboard-bench --tool-storm). */
        sim_resp_t *r = resp_new(rt, RESP_EMPTY);
        rt->resp = r;
        sim_rt_event_begin(rt, "response.created");
        response_json(rt, r, "in_progress", NULL, NULL, 0);
        sim_rt_event_send(rt);
        sim_rt_event_begin(rt, "response.done");
        response_json(rt, r, "completed", NULL, NULL, 0);
        sim_rt_event_send(rt);
        rt->resp = NULL;
        resp_free(r);
        return;
    }
    bool text_only = rt->text_only || (g_sim_cfg.mode == SIM_MODE_ECHO && g_sim_cfg.text_answers);
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(params, "output_modalities");
    const cJSON *m0 = cJSON_GetArrayItem(mods, 0);
    if (cJSON_IsString(m0))
        text_only = strcmp(m0->valuestring, "text") == 0;
    answer(rt, text_only);
}

void sim_resp_auto(sim_rt_t *rt)
{
    if (rt->resp == NULL && g_sim_cfg.mode == SIM_MODE_AGENT)
        answer(rt, rt->text_only);
}

void sim_resp_finish(sim_rt_t *rt)
{
    if (rt->resp)
        end(rt, NULL);
}

void sim_resp_cancel(sim_rt_t *rt, const char *reason)
{
    if (rt->resp)
        end(rt, reason);
}

bool sim_resp_item_audio(const sim_rt_t *rt, const char *item_id, uint64_t *bytes)
{
    if (rt->resp == NULL || strcmp(rt->resp->item_id, item_id) != 0)
        return false;
    *bytes = rt->resp->audio_bytes;
    return true;
}

uint64_t sim_resp_tick(sim_rt_t *rt, uint64_t now_ns)
{
    sim_resp_t *r = rt->resp;
    if (r == NULL)
        return 0;
    if (r->kind == RESP_ECHO) {
        uint64_t idle_at = r->last_append_ns + ECHO_IDLE_MS * NS_PER_MS;
        if (now_ns < idle_at)
            return idle_at;
        end(rt, NULL);
        return 0;
    }
    if (r->kind == RESP_SPEECH)
        return pace(rt, now_ns);
    return 0;
}

void sim_resp_free(sim_rt_t *rt)
{
    resp_free(rt->resp);
    rt->resp = NULL;
}
