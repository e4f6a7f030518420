/*
 * voicetools: the voice model's tools and the session's side of running them (voicetools.h),
 * plus the call record (SPEC 9): transcript lines, tool calls, start and end.
 * Thread: the session's worker.
 */
#include "agents/voice/voicetools.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/voice/events.h"
#include "agents/voice/phonecall.h"
#include "agents/voice/session_int.h"
#include "agents/supervisor/supervisor.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"

#define RECORD_ID_BYTES 16

/* ---- Definitions ----------------------------------------------------------------------------- */

/* Adds a Realtime (flat) function tool {type,name,description,parameters}; returns its
 * properties. */
static cJSON *function_def(cJSON *arr, const char *name, const char *description,
                           const char *const *required)
{
    cJSON *t = cJSON_CreateObject(), *props;
    cJSON_AddStringToObject(t, "type", "function");
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "description", description);
    cJSON_AddItemToObject(t, "parameters", tool_params_new(required, &props));
    cJSON_AddItemToArray(arr, t);
    return props;
}

/* Whether the model of this surface may call name. */
static bool tool_allowed(const agentcfg_t *ac, bool phone, const char *name)
{
    if (phone)
        return strcmp(name, VOICETOOL_NAVIGATE) != 0 &&
               agentcfg_tool_allowed(&ac->tools_phone, name);
    return strcmp(name, VOICETOOL_TRANSFER) != 0 && strcmp(name, VOICETOOL_END_CALL) != 0 &&
           agentcfg_tool_allowed(&ac->tools_voice, name);
}

/* transferCall and endCall {reason}. */
static void phone_defs(const agentcfg_t *ac, cJSON *arr)
{
    static const char *const reason_req[] = {"reason", NULL};
    cJSON *props;
    if (tool_allowed(ac, true, VOICETOOL_TRANSFER)) {
        props = function_def(arr, VOICETOOL_TRANSFER,
                             "Transfer the caller to a person at the company, when they ask for "
                             "one or when you cannot help. Tell them you are transferring them.",
                             reason_req);
        tool_string_prop(props, "reason", "Why the caller is being transferred.");
    }
    if (tool_allowed(ac, true, VOICETOOL_END_CALL)) {
        props = function_def(arr, VOICETOOL_END_CALL,
                             "Hang up once the conversation is over and you have said goodbye.",
                             reason_req);
        tool_string_prop(props, "reason", "Why the call ends.");
    }
}

cJSON *voicetools_defs(const agentcfg_t *ac, bool phone)
{
    static const char *const sup_req[] = {"relevantContextFromLastUserMessage", NULL};
    static const char *const nav_req[] = {"section", NULL};
    cJSON *arr = cJSON_CreateArray(), *props;
    if (tool_allowed(ac, phone, VOICETOOL_SUPERVISOR)) {
        props =
            function_def(arr, VOICETOOL_SUPERVISOR,
                         "Ask the supervisor for the answer to the caller's request: bookings, "
                         "availability, customer records, or anything the company brief does not "
                         "answer. Say a short filler phrase first; then read the answer.",
                         sup_req);
        tool_string_prop(props, "relevantContextFromLastUserMessage",
                         "What the caller asked, with every detail they gave (dates, times, "
                         "names, phone numbers, services).");
    }
    if (phone)
        phone_defs(ac, arr);
    if (ac->n_pages > 0 && tool_allowed(ac, phone, VOICETOOL_NAVIGATE)) {
        props = function_def(arr, VOICETOOL_NAVIGATE,
                             "Scroll the caller's browser tab to a section of the website, e.g. "
                             "when they ask to see prices or the contact details.",
                             nav_req);
        cJSON *page =
            tool_string_prop(props, "page", "The page; leave it out for the caller's page.");
        cJSON *pe = cJSON_AddArrayToObject(page, "enum");
        cJSON *sections = cJSON_CreateArray();
        for (size_t i = 0; i < ac->n_pages; i++) {
            cJSON_AddItemToArray(pe, cJSON_CreateString(ac->pages[i].name));
            for (size_t j = 0; j < ac->pages[i].n_sections; j++) {
                const char *sec = ac->pages[i].sections[j];
                bool dup = false;
                const cJSON *x;
                cJSON_ArrayForEach(x, sections) dup = dup || strcmp(x->valuestring, sec) == 0;
                if (!dup)
                    cJSON_AddItemToArray(sections, cJSON_CreateString(sec));
            }
        }
        cJSON *section = tool_string_prop(props, "section", "The section to scroll to.");
        cJSON_AddItemToObject(section, "enum", sections);
    }
    return arr;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- The call record ------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    return (int64_t)clock_wall_ms();
}

static void remember(session_t *s, const char *role, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return;
    if (s->record_id[0])
        store_transcript(s->store, s->record_id, role, text, now_ms());
    if (s->history == NULL)
        s->history = cJSON_CreateArray();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(s->history, m);
    while (cJSON_GetArraySize(s->history) > g_config->replay_items)
        cJSON_DeleteItemFromArray(s->history, 0);
}

void voicetools_replay(session_t *s)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, s->history)
    {
        const char *role = str_field(h, "role");
        cJSON *ev = events_item_create(role && strcmp(role, "user") == 0, str_field(h, "content"));
        relay_send_up(s, ev);
    }
}

void voicetools_user_text(session_t *s, const char *text)
{
    remember(s, "user", text);
}

void voicetools_call_start(session_t *s)
{
    unsigned char raw[RECORD_ID_BYTES];
    randombytes_buf(raw, sizeof(raw));
    char hex[RECORD_ID_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
    snprintf(s->record_id, sizeof(s->record_id), "call_%s", hex);
    store_call_start(s->store, s->record_id, s->session_id, s->tenant->id, now_ms());
    phonecall_record(s);
}

void voicetools_call_end(session_t *s, const char *end_reason)
{
    for (vcall_t *c = s->calls; c; c = c->next)
        if (strcmp(c->via, "supervisor") == 0)
            supervisor_cancel(s->pool, &s->actor,
                              c->cookie); /* nobody is left to hear the answer */
    if (s->record_id[0] == '\0')
        return;
    store_call_end(s->store, s->record_id, now_ms(), end_reason,
                   s->openai_session[0] ? s->openai_session : NULL,
                   s->request_id[0] ? s->request_id : NULL, s->input_tokens, s->output_tokens);
}

/* ---- tool.call events ------------------------------------------------------------------------ */

/* Sends the client a tool.call event and, for a terminal status, records it. */
static void report(session_t *s, const tool_event_msg_t *e)
{
    if (s->phone == NULL) { /* the debug panel's events; a phone has no screen */
        cJSON *ev = tool_event_json(e);
        net_ws_send_json(s->conn, ev);
        cJSON_Delete(ev);
    }
    if (strcmp(e->status, "started") != 0 && s->record_id[0])
        store_tool_record(s->store, s->record_id, e->call_id, e->parent_call_id, e->name,
                          e->arguments, e->output, e->status, e->duration_ms, e->via, now_ms());
}

static void report_call(session_t *s, const vcall_t *c, const char *status, const char *output)
{
    tool_event_msg_t e = {.duration_ms = -1};
    str_copy(e.call_id, c->call_id, sizeof(e.call_id));
    str_copy(e.name, c->name, sizeof(e.name));
    str_copy(e.status, status, sizeof(e.status));
    str_copy(e.via, c->via, sizeof(e.via));
    e.arguments = c->arguments;
    e.output = (char *)output;
    if (output)
        e.duration_ms = (int64_t)((clock_now_ns() - c->started_ns) / NS_PER_MS);
    report(s, &e);
}

/* ---- Calls in flight ------------------------------------------------------------------------- */

static void send_upstream(session_t *s, cJSON *ev)
{
    relay_send_up(s, ev);
}

static bool seen(session_t *s, const char *call_id)
{
    for (int i = 0; i < SESSION_SEEN_CALLS; i++)
        if (strcmp(s->seen_calls[i], call_id) == 0)
            return true;
    str_copy(s->seen_calls[s->seen_next], call_id, sizeof(s->seen_calls[0]));
    s->seen_next = (s->seen_next + 1) % SESSION_SEEN_CALLS;
    return false;
}

static void nested_clear(vcall_t *c)
{
    while (c->nested) {
        nested_open_t *n = c->nested;
        c->nested = n->next;
        free(n->arguments);
        free(n);
    }
}

static void call_free(vcall_t *c)
{
    actor_timer_free(c->timer);
    nested_clear(c);
    free(c->arguments);
    free(c);
}

static void unlink_call(session_t *s, vcall_t *c)
{
    for (vcall_t **pp = &s->calls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            s->n_calls--;
            return;
        }
    }
}

/* The terminal event, the record and the metrics of c. */
static void report_end(session_t *s, vcall_t *c, const char *status, const char *output)
{
    uint64_t ns = clock_now_ns() - c->started_ns;
    metric_tool_call_observe(c->name, status, ns);
    log_info("session.tool", LOG_S("sid", s->session_id), LOG_S("tool", c->name),
             LOG_S("status", status), LOG_I("ms", ns / NS_PER_MS));
    report_call(s, c, status, output);
}

/* The function_call_output of c upstream; one response.create becomes due. */
static void send_output(session_t *s, vcall_t *c, const char *output)
{
    if (s->state != SESSION_CLOSING && s->upstream) {
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "type", "conversation.item.create");
        cJSON *item = cJSON_AddObjectToObject(ev, "item");
        cJSON_AddStringToObject(item, "type", "function_call_output");
        cJSON_AddStringToObject(item, "call_id", c->call_id);
        cJSON_AddStringToObject(item, "output", output);
        send_upstream(s, ev);
        s->need_create = true;
    }
}

/* The call's answer: function_call_output upstream, the terminal event, the record, metrics. */
static void complete(session_t *s, vcall_t *c, const char *status, const char *output)
{
    unlink_call(s, c);
    report_end(s, c, status, output);
    send_output(s, c, output);
    call_free(c);
    voicetools_maybe_create(s);
}

void voicetools_answer_early(session_t *s, vcall_t *c, const char *output)
{
    unlink_call(s, c);
    actor_timer_stop(c->timer);
    send_output(s, c, output);
    voicetools_maybe_create(s);
}

void voicetools_finish(session_t *s, vcall_t *c, const char *status, const char *output)
{
    report_end(s, c, status, output);
    call_free(c);
}

static vcall_t *call_by_cookie(session_t *s, uint64_t cookie)
{
    for (vcall_t *c = s->calls; c; c = c->next)
        if (c->cookie == cookie)
            return c;
    return NULL;
}

static void start_call(session_t *s, const char *call_id, const char *name, const char *args)
{
    if (call_id == NULL || name == NULL || seen(s, call_id))
        return;
    vcall_t *c = xcalloc(1, sizeof(*c));
    str_copy(c->call_id, call_id, sizeof(c->call_id));
    str_copy(c->name, name, sizeof(c->name));
    c->arguments = xstrdup(args ? args : "");
    c->cookie = ++s->next_cookie;
    c->started_ns = clock_now_ns();
    c->next = s->calls;
    s->calls = c;
    s->n_calls++;
    bool phone = s->phone != NULL;
    const agentcfg_t *ac = &s->tenant->cfg;
    bool sup = strcmp(name, VOICETOOL_SUPERVISOR) == 0 && tool_allowed(ac, phone, name);
    bool nav =
        strcmp(name, VOICETOOL_NAVIGATE) == 0 && ac->n_pages > 0 && tool_allowed(ac, phone, name);
    bool call_tool =
        (strcmp(name, VOICETOOL_TRANSFER) == 0 || strcmp(name, VOICETOOL_END_CALL) == 0) &&
        tool_allowed(ac, phone, name);
    c->via = sup ? "supervisor" : nav ? "client" : "builtin";
    report_call(s, c, "started", NULL);
    cJSON *parsed = cJSON_Parse(c->arguments[0] ? c->arguments : "{}");
    if (!cJSON_IsObject(parsed) || (!sup && !nav && !call_tool)) {
        cJSON_Delete(parsed);
        complete(s, c, "failed",
                 sup || nav || call_tool
                     ? "{\"error\":{\"code\":\"invalid_arguments\",\"message\":\"the "
                       "arguments are not a JSON object\"}}"
                     : "{\"error\":{\"code\":\"unknown_tool\",\"message\":\"no such "
                       "tool\"}}");
        return;
    }
    uint64_t timeout_ms = (uint64_t)g_config->tool_timeout_ms;
    c->timer = actor_timer_new(&s->actor, SESSION_MSG_TOOL_TIMEOUT, c);
    actor_timer_start(c->timer, timeout_ms, 0);
    if (call_tool) {
        cJSON_Delete(parsed);
        const char *err = phonecall_tool(s, c);
        if (err)
            complete(s, c, "failed", err);
        return;
    }
    if (sup) {
        const cJSON *ctx =
            cJSON_GetObjectItemCaseSensitive(parsed, "relevantContextFromLastUserMessage");
        char *context = phonecall_context(s, cJSON_IsString(ctx) ? ctx->valuestring : "");
        cJSON *history = s->history ? cJSON_Duplicate(s->history, 1) : NULL;
        supervisor_run(s->pool, &s->actor, c->cookie, c->call_id, s->session_id, history, context,
                       c->started_ns + timeout_ms * NS_PER_MS, SURFACE_VOICE, s->tenant);
        cJSON_Delete(parsed);
    } else {
        tool_call_msg_t *m = tool_call_new(&s->actor, c->cookie, name, parsed);
        str_copy(m->session_id, s->session_id, sizeof(m->session_id));
        actor_send(s->router, &m->hdr);
    }
}

void voicetools_result(session_t *s, const tool_result_msg_t *m)
{
    vcall_t *c = call_by_cookie(s, m->cookie);
    if (c == NULL)
        return; /* after its deadline: dropped (SPEC 14) */
    complete(s, c,
             m->timeout    ? "timeout"
             : m->is_error ? "failed"
                           : "completed",
             m->output ? m->output : "");
}

void voicetools_nested(session_t *s, const tool_event_msg_t *m)
{
    vcall_t *c = call_by_cookie(s, m->cookie);
    if (c == NULL)
        return; /* its parent has ended: nothing may follow its terminal event */
    if (strcmp(m->status, "started") == 0) {
        nested_open_t *n = xcalloc(1, sizeof(*n));
        str_copy(n->call_id, m->call_id, sizeof(n->call_id));
        str_copy(n->name, m->name, sizeof(n->name));
        str_copy(n->via, m->via, sizeof(n->via));
        n->arguments = xstrdup(m->arguments ? m->arguments : "");
        n->started_ns = clock_now_ns();
        n->next = c->nested;
        c->nested = n;
    } else {
        for (nested_open_t **pp = &c->nested; *pp; pp = &(*pp)->next) {
            if (strcmp((*pp)->call_id, m->call_id) == 0) {
                nested_open_t *n = *pp;
                *pp = n->next;
                free(n->arguments);
                free(n);
                break;
            }
        }
    }
    report(s, m);
}

void voicetools_timeout(session_t *s, void *call)
{
    vcall_t *c = call;
    bool live = false;
    for (vcall_t *x = s->calls; x; x = x->next)
        live = live || x == c;
    if (!live)
        return;
    /* Nested calls still open end first, as timeouts too (SPEC 14). */
    while (c->nested) {
        nested_open_t *n = c->nested;
        c->nested = n->next;
        tool_event_msg_t e = {.duration_ms =
                                  (int64_t)((clock_now_ns() - n->started_ns) / NS_PER_MS)};
        str_copy(e.parent_call_id, c->call_id, sizeof(e.parent_call_id));
        str_copy(e.call_id, n->call_id, sizeof(e.call_id));
        str_copy(e.name, n->name, sizeof(e.name));
        str_copy(e.status, "timeout", sizeof(e.status));
        str_copy(e.via, n->via, sizeof(e.via));
        e.arguments = n->arguments;
        e.output = "{\"error\":{\"code\":\"timeout\",\"message\":\"the tool did not answer "
                   "in time\"}}";
        report(s, &e);
        free(n->arguments);
        free(n);
    }
    if (strcmp(c->via, "supervisor") == 0)
        supervisor_cancel(s->pool, &s->actor, c->cookie);
    complete(s, c, "timeout", SUP_SAY_TIMEOUT);
}

void voicetools_maybe_create(session_t *s)
{
    if (s->response_active || s->n_calls > 0 || !s->up_ready || s->state == SESSION_CLOSING)
        return;
    if (!s->need_create && !s->create_waiting)
        return;
    s->need_create = false;
    s->create_waiting = false;
    send_upstream(s, cJSON_Parse("{\"type\":\"response.create\"}"));
    s->response_active = true; /* until the upstream confirms with its own events */
}

/* ---- Upstream events ------------------------------------------------------------------------- */

static void add_usage(session_t *s, const cJSON *ev)
{
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(resp, "usage");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(usage, "input_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(usage, "output_tokens");
    if (cJSON_IsNumber(in))
        s->input_tokens += (int64_t)in->valuedouble;
    if (cJSON_IsNumber(out))
        s->output_tokens += (int64_t)out->valuedouble;
}

void voicetools_upstream_event(session_t *s, const char *type, const cJSON *ev)
{
    if (strcmp(type, "response.output_item.done") == 0) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
        const char *it = str_field(item, "type");
        if (it && strcmp(it, "function_call") == 0)
            start_call(s, str_field(item, "call_id"), str_field(item, "name"),
                       str_field(item, "arguments"));
    } else if (strcmp(type, "response.function_call_arguments.done") == 0) {
        start_call(s, str_field(ev, "call_id"), str_field(ev, "name"), str_field(ev, "arguments"));
    } else if (strcmp(type, "response.done") == 0) {
        add_usage(s, ev);
    } else if (strcmp(type, "conversation.item.input_audio_transcription.completed") == 0) {
        remember(s, "user", str_field(ev, "transcript"));
    } else if (strcmp(type, "response.output_audio_transcript.done") == 0 ||
               strcmp(type, "response.audio_transcript.done") == 0) {
        remember(s, "assistant", str_field(ev, "transcript"));
    } else if (strcmp(type, "response.output_text.done") == 0 ||
               strcmp(type, "response.text.done") == 0) {
        remember(s, "assistant", str_field(ev, "text"));
    }
}

void voicetools_free(session_t *s)
{
    while (s->calls) {
        vcall_t *c = s->calls;
        s->calls = c->next;
        call_free(c);
    }
    s->n_calls = 0;
    cJSON_Delete(s->history);
    s->history = NULL;
}
