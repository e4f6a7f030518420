/*
 * summary: the call_summary request and the check of its answer (summary.h).
 *
 * The check is the schema's, by hand: strict structured outputs make a conforming model's
 * answer match, but a model (or a proxy, or the simulator's fault rule) may still answer
 * something else, and a summary that does not match must fail the step with the reason rather
 * than be stored (SPEC 15).
 */
#include "agents/postcall/summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store.h"
#include "base/sbuf.h"
#include "base/util.h"

#define TOOL_TEXT_MAX 600 /* characters of a tool call's arguments or output shown to the model */
/* What of a long call the model is shown: the transcript's first TRANSCRIPT_HEAD_MAX and last
 * TRANSCRIPT_TAIL_MAX bytes of lines (who called and why; how it ended), and the newest
 * TOOL_CALLS_MAX tool calls. A call of hours, or a supervisor that made hundreds of tool calls,
 * then costs a bounded request (memory here, tokens there) like any other call. */
#define TRANSCRIPT_HEAD_MAX (8 * 1024)
#define TRANSCRIPT_TAIL_MAX (24 * 1024)
#define TOOL_CALLS_MAX      STORE_POSTCALL_TOOL_CALLS

static const char *const outcome_values[] = {"booked", "information", "callback", "transferred",
                                             "other"};
static const char *const sentiment_values[] = {"positive", "neutral", "negative"};
static const char *const top_keys[] = {"summary", "caller",   "reason",
                                       "outcome", "followUp", "sentiment"};
static const char *const caller_keys[] = {"name", "phone", "email"};

static const char system_prompt[] =
    "You summarise a finished call to a business for its records. Read the transcript and the "
    "tool calls and answer with the call_summary object: summary (two or three sentences), the "
    "caller's name, phone and email as the caller gave them, the reason for the call, the "
    "outcome (booked when an appointment was booked, information, callback, transferred, or "
    "other), any follow-up the business owes, and the caller's sentiment. Use null for anything "
    "the call does not say.";

static cJSON *nullable(const char *type)
{
    cJSON *t = cJSON_CreateObject();
    cJSON *types = cJSON_AddArrayToObject(t, "type");
    cJSON_AddItemToArray(types, cJSON_CreateString(type));
    cJSON_AddItemToArray(types, cJSON_CreateString("null"));
    return t;
}

static cJSON *nullable_enum(const char *const *values, size_t n)
{
    cJSON *t = nullable("string");
    cJSON *e = cJSON_AddArrayToObject(t, "enum");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(e, cJSON_CreateString(values[i]));
    cJSON_AddItemToArray(e, cJSON_CreateNull());
    return t;
}

static cJSON *object_schema(const char *const *keys, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "object");
    cJSON_AddBoolToObject(o, "additionalProperties", 0);
    cJSON *req = cJSON_AddArrayToObject(o, "required");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(req, cJSON_CreateString(keys[i]));
    cJSON_AddObjectToObject(o, "properties");
    return o;
}

cJSON *summary_response_format(void)
{
    cJSON *caller = object_schema(caller_keys, ARRAY_LEN(caller_keys));
    cJSON *cp = cJSON_GetObjectItemCaseSensitive(caller, "properties");
    for (size_t i = 0; i < ARRAY_LEN(caller_keys); i++)
        cJSON_AddItemToObject(cp, caller_keys[i], nullable("string"));
    cJSON *schema = object_schema(top_keys, ARRAY_LEN(top_keys));
    cJSON *p = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    cJSON *summary = cJSON_CreateObject();
    cJSON_AddStringToObject(summary, "type", "string");
    cJSON_AddItemToObject(p, "summary", summary);
    cJSON_AddItemToObject(p, "caller", caller);
    cJSON_AddItemToObject(p, "reason", nullable("string"));
    cJSON_AddItemToObject(p, "outcome", nullable_enum(outcome_values, ARRAY_LEN(outcome_values)));
    cJSON_AddItemToObject(p, "followUp", nullable("string"));
    cJSON_AddItemToObject(p, "sentiment",
                          nullable_enum(sentiment_values, ARRAY_LEN(sentiment_values)));
    cJSON *rf = cJSON_CreateObject();
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    cJSON_AddStringToObject(js, "name", SUMMARY_SCHEMA_NAME);
    cJSON_AddBoolToObject(js, "strict", 1);
    cJSON_AddItemToObject(js, "schema", schema);
    return rf;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A JSON value (or text) as at most TOOL_TEXT_MAX bytes of text. */
static void put_value(sbuf_t *b, const cJSON *v)
{
    char *text = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
    const char *t = cJSON_IsString(v) ? v->valuestring : text ? text : "";
    size_t n = strlen(t);
    sbuf_append(b, t, n > TOOL_TEXT_MAX ? TOOL_TEXT_MAX : n);
    if (n > TOOL_TEXT_MAX)
        sbuf_puts(b, "…");
    free(text);
}

static void put_line(sbuf_t *b, const cJSON *line)
{
    const char *role = str_of(line, "role");
    sbuf_printf(b, "%s: %s\n", role && strcmp(role, "user") == 0 ? "Caller" : "Agent",
                str_of(line, "text") ? str_of(line, "text") : "");
}

/* About what put_line() writes for line: its text and the longer speaker label. */
static size_t line_bytes(const cJSON *line)
{
    const char *t = str_of(line, "text");
    return (t ? strlen(t) : 0) + sizeof("Caller: \n");
}

/* The transcript's lines, or its first and last lines within TRANSCRIPT_HEAD_MAX and
 * TRANSCRIPT_TAIL_MAX bytes with the number left out between them. */
static void put_transcript(sbuf_t *b, const cJSON *lines)
{
    size_t total = 0;
    const cJSON *line;
    cJSON_ArrayForEach(line, lines) total += line_bytes(line);
    if (total <= TRANSCRIPT_HEAD_MAX + TRANSCRIPT_TAIL_MAX) {
        cJSON_ArrayForEach(line, lines) put_line(b, line);
        return;
    }
    /* Lines from the end that fit the tail budget: where the tail starts. */
    int n = cJSON_GetArraySize(lines), tail_from = n;
    size_t tail = 0;
    for (int i = n - 1; i >= 0; i--) {
        size_t len = line_bytes(cJSON_GetArrayItem(lines, i));
        if (tail + len > TRANSCRIPT_TAIL_MAX)
            break;
        tail += len;
        tail_from = i;
    }
    size_t start = b->len;
    int i = 0, left_out = 0;
    cJSON_ArrayForEach(line, lines)
    {
        if (i == tail_from && left_out > 0)
            sbuf_printf(b, "(%d lines not shown)\n", left_out);
        if (i >= tail_from || b->len - start < TRANSCRIPT_HEAD_MAX)
            put_line(b, line);
        else
            left_out++;
        i++;
    }
}

cJSON *summary_request(const char *model, const cJSON *call)
{
    sbuf_t b = SBUF_INIT;
    const char *from = str_of(call, "from");
    sbuf_printf(&b, "Channel: %s\n", str_of(call, "channel") ? str_of(call, "channel") : "web");
    if (from)
        sbuf_printf(&b, "Caller's number: %s\n", from);
    sbuf_puts(&b, "Transcript:\n");
    put_transcript(&b, cJSON_GetObjectItemCaseSensitive(call, "transcript"));
    sbuf_puts(&b, "Tool calls:\n");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(call, "toolCalls");
    int n_calls = cJSON_GetArraySize(calls), i = 0;
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(call, "toolCallsTotal");
    int earlier = n_calls > TOOL_CALLS_MAX ? n_calls - TOOL_CALLS_MAX : 0;
    if (cJSON_IsNumber(total) && total->valueint > n_calls) /* the store sent the newest only */
        earlier += total->valueint - n_calls;
    if (earlier > 0)
        sbuf_printf(&b, "(%d earlier tool calls not shown)\n", earlier);
    const cJSON *tc;
    cJSON_ArrayForEach(tc, calls)
    {
        if (i++ < n_calls - TOOL_CALLS_MAX)
            continue;
        sbuf_printf(&b, "- %s (%s) arguments: ", str_of(tc, "name") ? str_of(tc, "name") : "?",
                    str_of(tc, "status") ? str_of(tc, "status") : "?");
        put_value(&b, cJSON_GetObjectItemCaseSensitive(tc, "arguments"));
        sbuf_puts(&b, " output: ");
        put_value(&b, cJSON_GetObjectItemCaseSensitive(tc, "output"));
        sbuf_putc(&b, '\n');
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "model", model);
    cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
    cJSON *sys = cJSON_CreateObject();
    cJSON_AddStringToObject(sys, "role", "system");
    cJSON_AddStringToObject(sys, "content", system_prompt);
    cJSON_AddItemToArray(msgs, sys);
    cJSON *user = cJSON_CreateObject();
    cJSON_AddStringToObject(user, "role", "user");
    cJSON_AddStringToObject(user, "content", b.data ? b.data : "");
    cJSON_AddItemToArray(msgs, user);
    sbuf_destroy(&b);
    cJSON_AddItemToObject(body, "response_format", summary_response_format());
    return body;
}

/* "summary does not match call_summary: <what> <how>"; returns 0. */
static int fail(char *err, size_t errlen, const char *what, const char *how)
{
    snprintf(err, errlen, "summary does not match call_summary: %s%s%s", what, how[0] ? " " : "",
             how);
    return 0;
}

/* v is a string or null. */
static int check_nullable(const cJSON *o, const char *key, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL)
        return fail(err, errlen, key, "is missing");
    if (!cJSON_IsString(v) && !cJSON_IsNull(v))
        return fail(err, errlen, key, "is not a string or null");
    return 1;
}

static int check_enum(const cJSON *o, const char *key, const char *const *values, size_t n,
                      char *err, size_t errlen)
{
    if (!check_nullable(o, key, err, errlen))
        return 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNull(v))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v->valuestring, values[i]) == 0)
            return 1;
    return fail(err, errlen, key, "is not one of its values");
}

/* Every member of o is one of keys[0..n-1]. */
static int only_keys(const cJSON *o, const char *const *keys, size_t n, char *err, size_t errlen)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
    {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(m->string, keys[i]) == 0;
        if (!known)
            return fail(err, errlen, m->string, "is not one of its keys");
    }
    return 1;
}

int summary_check(const cJSON *v, char *err, size_t errlen)
{
    if (!cJSON_IsObject(v))
        return fail(err, errlen, "the answer", "is not an object");
    if (!only_keys(v, top_keys, ARRAY_LEN(top_keys), err, errlen))
        return 0;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "summary")))
        return fail(err, errlen, "summary", "is not a string");
    const cJSON *caller = cJSON_GetObjectItemCaseSensitive(v, "caller");
    if (!cJSON_IsObject(caller))
        return fail(err, errlen, "caller", "is not an object");
    if (!only_keys(caller, caller_keys, ARRAY_LEN(caller_keys), err, errlen))
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(caller_keys); i++)
        if (!check_nullable(caller, caller_keys[i], err, errlen))
            return 0;
    return check_nullable(v, "reason", err, errlen) && check_nullable(v, "followUp", err, errlen) &&
           check_enum(v, "outcome", outcome_values, ARRAY_LEN(outcome_values), err, errlen) &&
           check_enum(v, "sentiment", sentiment_values, ARRAY_LEN(sentiment_values), err, errlen);
}

cJSON *summary_parse(const char *completion, const char *caller_from, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(completion ? completion : "");
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const char *content = str_of(msg, "content");
    const char *refusal = str_of(msg, "refusal");
    cJSON *v = content ? cJSON_Parse(content) : NULL;
    if (content == NULL)
        snprintf(err, errlen, "the model gave no summary%s%s", refusal ? ": " : "",
                 refusal ? refusal : "");
    else if (v == NULL)
        snprintf(err, errlen, "summary does not match call_summary: not JSON");
    cJSON_Delete(root);
    if (v == NULL || !summary_check(v, err, errlen)) {
        cJSON_Delete(v);
        return NULL;
    }
    cJSON *caller = cJSON_GetObjectItemCaseSensitive(v, "caller");
    if (caller_from && caller_from[0] &&
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(caller, "phone")))
        cJSON_ReplaceItemInObjectCaseSensitive(caller, "phone", cJSON_CreateString(caller_from));
    return v;
}
