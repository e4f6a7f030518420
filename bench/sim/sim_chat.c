/*
 * POST /v1/chat/completions of the simulator: authentication, the --chat-fail faults (and the
 * chat kinds of --faults) with the real error shapes, and deterministic tool rules on the last
 * message and the offered tools, answered as a chat.completion or, with "stream":true, as
 * server-sent events. A request for the json_schema "tenant_config" (switchboard-onboard) is
 * answered by sim_extract.c's rules instead, after its strict schema passes the API's checks.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/util.h"
#include "bench/sim/sim.h"
#include "bench/sim/sim_extract.h"
#include "bench/sim/sim_postcall.h"
#include "bench/sim/sim_text.h"

#define CHAT_DEFAULT_MODEL     "gpt-4.1-mini"
#define CHAT_TOOL_RESULT_CHARS 200
#define CHAT_SLOTS_SAID        3 /* open times read out before "and N more" */
#define CHAT_ECHO_QUESTION_CPS 300
#define CHAT_DEFAULT_SERVICE   "Oil Change"
#define CHAT_DEFAULT_PHONE     "555-0100"
#define CHAT_DEFAULT_TIME      "10:00"
#define CHAT_RETRY_AFTER_MS    "200"
#define CHAT_DEFAULT_QUESTION  "What should I do?"
#define CHAT_LIST_TOOLS        "list your tools"
#define CHAT_MCP_CALL          "mcp call "
#define TOKENS_PER_MESSAGE     4
#define CHARS_PER_TOKEN        4
#define SECONDS_PER_DAY        86400
#define DAYS_PER_WEEK          7
#define DATE_LEN               10 /* YYYY-MM-DD */
#define TIME_LEN               5  /* HH:MM */

static long g_failed; /* requests answered with the --chat-fail error so far */

void sim_chat_error_body(sbuf_t *b, const char *message, const char *type, const char *param,
                         const char *code)
{
    sbuf_puts(b, "{\"error\":{\"message\":");
    sbuf_json_str(b, message);
    sbuf_puts(b, ",\"type\":");
    sbuf_json_str(b, type);
    sbuf_puts(b, ",\"param\":");
    sbuf_json_str(b, param);
    sbuf_puts(b, ",\"code\":");
    sbuf_json_str(b, code);
    sbuf_puts(b, "}}");
}

/* ---- Reading the request --------------------------------------------------------------------- */

/* A message's content as text: a string, or the text parts of an array joined by spaces. */
static void content_text(const cJSON *msg, sbuf_t *out)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(c)) {
        sbuf_puts(out, c->valuestring);
        return;
    }
    const cJSON *part;
    cJSON_ArrayForEach(part, c)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(t)) {
            if (out->len)
                sbuf_putc(out, ' ');
            sbuf_puts(out, t->valuestring);
        }
    }
}

static const char *role_of(const cJSON *msg)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(msg, "role");
    return cJSON_IsString(r) ? r->valuestring : "";
}

/* The offered tool with this exact name, or NULL. */
static const cJSON *tool_named(const cJSON *tools, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return t;
    }
    return NULL;
}

/* The first offered tool whose name ends with suffix, or NULL. */
static const char *tool_name_suffix(const cJSON *tools, const char *suffix)
{
    size_t sl = strlen(suffix);
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        size_t nl = cJSON_IsString(n) ? strlen(n->valuestring) : 0;
        if (nl >= sl && strcmp(n->valuestring + nl - sl, suffix) == 0)
            return n->valuestring;
    }
    return NULL;
}

/* "Tools: a, b, c": the names of every offered tool, in order ("Tools: none" when none). */
static void tool_names(const cJSON *tools, sbuf_t *out)
{
    sbuf_puts(out, "Tools:");
    const char *sep = " ";
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(n)) {
            sbuf_printf(out, "%s%s", sep, n->valuestring);
            sep = ", ";
        }
    }
    if (sep[0] == ' ')
        sbuf_puts(out, "none");
}

/* ---- Argument helpers ------------------------------------------------------------------------ */

static void date_plus_days(int days, char out[DATE_LEN + 1])
{
    time_t t = time(NULL) + (time_t)days * SECONDS_PER_DAY;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, DATE_LEN + 1, "%Y-%m-%d", &tm);
}

/* A YYYY-MM-DD in the text, "today", "tomorrow", a weekday name (its next occurrence), else
 * next Monday (never today). */
static void pick_date(const char *text, char out[DATE_LEN + 1])
{
    for (const char *p = text; *p; p++) {
        if (strlen(p) >= DATE_LEN && p[4] == '-' && p[7] == '-') {
            bool ok = true;
            for (int i = 0; i < DATE_LEN && ok; i++)
                ok = (i == 4 || i == 7) || (p[i] >= '0' && p[i] <= '9');
            if (ok) {
                memcpy(out, p, DATE_LEN);
                out[DATE_LEN] = '\0';
                return;
            }
        }
    }
    if (sim_text_find_ci(text, "tomorrow")) {
        date_plus_days(1, out);
        return;
    }
    if (sim_text_find_ci(text, "today")) {
        date_plus_days(0, out);
        return;
    }
    static const char *const days[] = {"sunday",   "monday", "tuesday", "wednesday",
                                       "thursday", "friday", "saturday"};
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int want = 1; /* Monday */
    const char *first = NULL;
    for (int d = 0; d < DAYS_PER_WEEK; d++) {
        const char *m = sim_text_find_ci(text, days[d]);
        if (m && (first == NULL || m < first)) {
            first = m;
            want = d;
        }
    }
    int ahead = (want - tm.tm_wday + DAYS_PER_WEEK) % DAYS_PER_WEEK;
    date_plus_days(ahead ? ahead : DAYS_PER_WEEK, out);
}

static const struct {
    const char *word;
    const char *service;
} service_words[] = {
    {"oil", "Oil Change"},
    {"brake", "Brake Repair"},
    {"tire", "Tire Services"},
    {"tyre", "Tire Services"},
    {"diagnos", "Engine Diagnostics"},
    {"engine", "Engine Diagnostics"},
    {"maintenance", "General Maintenance"},
    {"air condition", "Air Conditioning Service"},
    {"a/c", "Air Conditioning Service"},
    {"battery", "Battery Replacement"},
};

/* The enum value of the tool's serviceType parameter that contains word, or NULL. */
static const char *enum_match(const cJSON *tool, const char *word)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(tool, "function");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "parameters");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(p, "properties");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(props, "serviceType");
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(st, "enum"))
    {
        if (cJSON_IsString(v) && sim_text_find_ci(v->valuestring, word))
            return v->valuestring;
    }
    return NULL;
}

/* The service named first in the text (an enum value of the tool when it declares them). */
static const char *pick_service(const char *text, const cJSON *tool)
{
    const char *first = NULL;
    size_t which = 0;
    for (size_t i = 0; i < ARRAY_LEN(service_words); i++) {
        const char *m = sim_text_find_ci(text, service_words[i].word);
        if (m && (first == NULL || m < first)) {
            first = m;
            which = i;
        }
    }
    const char *word = first ? service_words[which].word : "oil";
    const char *e = enum_match(tool, word);
    if (e)
        return e;
    return first ? service_words[which].service : CHAT_DEFAULT_SERVICE;
}

/* An HH:MM in the text, else the default time. */
static void pick_time(const char *text, char out[TIME_LEN + 1])
{
    for (const char *p = text; *p; p++) {
        int h1 = p[0] - '0', h2 = p[1] - '0';
        if (p[0] >= '0' && p[0] <= '2' && p[1] >= '0' && p[1] <= '9' && p[2] == ':' &&
            p[3] >= '0' && p[3] <= '5' && p[4] >= '0' && p[4] <= '9' && h1 * 10 + h2 < 24 &&
            (p == text || !(p[-1] >= '0' && p[-1] <= '9'))) {
            memcpy(out, p, TIME_LEN);
            out[TIME_LEN] = '\0';
            return;
        }
    }
    str_copy(out, CHAT_DEFAULT_TIME, TIME_LEN + 1);
}

/* ---- What the model says about a tool's result ------------------------------------------ */

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *jstr_or(const cJSON *o, const char *name, const char *dflt)
{
    const char *v = jstr(o, name);
    return v ? v : dflt;
}

/*
 * The sentence a caller should hear for a built-in booking tool's result (JSON text), appended
 * to out; false when the text is not one of theirs (it is then quoted as it is).
 */
static bool say_builtin_result(const char *text, sbuf_t *out)
{
    cJSON *r = cJSON_Parse(text);
    bool said = true;
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(r, "slots");
    const cJSON *appt = cJSON_GetObjectItemCaseSensitive(r, "appointment");
    const cJSON *found = cJSON_GetObjectItemCaseSensitive(r, "found");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(r, "error");
    if (cJSON_IsArray(slots)) {
        int n = cJSON_GetArraySize(slots);
        if (n == 0) {
            sbuf_printf(out, "there are no open times on %s.", jstr_or(r, "date", "that day"));
        } else {
            sbuf_printf(out, "on %s, %s is open at", jstr_or(r, "date", "that day"),
                        jstr_or(r, "serviceType", "that service"));
            for (int i = 0; i < n && i < CHAT_SLOTS_SAID; i++) {
                const cJSON *t = cJSON_GetArrayItem(slots, i);
                sbuf_printf(out, "%s %s", i ? "," : "", cJSON_IsString(t) ? t->valuestring : "?");
            }
            if (n > CHAT_SLOTS_SAID)
                sbuf_printf(out, " and %d more times", n - CHAT_SLOTS_SAID);
            sbuf_putc(out, '.');
        }
    } else if (cJSON_IsObject(appt) && jstr(r, "confirmationNumber")) {
        sbuf_printf(out, "you are booked for %s on %s at %s. Your confirmation number is %s.",
                    jstr_or(appt, "serviceType", "your visit"), jstr_or(appt, "date", "that day"),
                    jstr_or(appt, "time", "that time"), jstr(r, "confirmationNumber"));
    } else if (cJSON_IsBool(found)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "customer");
        int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "appointments"));
        if (cJSON_IsTrue(found))
            sbuf_printf(out, "%s is a customer, with %d appointment%s on record.",
                        jstr_or(c, "name", "that caller"), n, n == 1 ? "" : "s");
        else
            sbuf_puts(out, "there is no customer with that phone number.");
    } else if (cJSON_IsObject(err) && jstr(err, "message")) {
        sbuf_printf(out, "%s.", jstr(err, "message"));
    } else {
        said = false;
    }
    cJSON_Delete(r);
    return said;
}

/* ---- The rules ------------------------------------------------------------------------------- */

/*
 * Appends the arguments the rules give the built-in tool `name` (offered as `tool`) for the user
 * text u: checkAvailability {date, serviceType}; bookAppointment {date, time, customerName,
 * customerPhone, serviceType}; lookupCustomer {phone}. Returns false, appending nothing, for any
 * other tool.
 */
static bool builtin_args(const char *name, const cJSON *tool, const char *u, sbuf_t *out)
{
    char date[DATE_LEN + 1], hhmm[TIME_LEN + 1];
    if (strcmp(name, "checkAvailability") == 0) {
        pick_date(u, date);
        sbuf_printf(out, "{\"date\":\"%s\",\"serviceType\":", date);
        sbuf_json_str(out, pick_service(u, tool));
        sbuf_putc(out, '}');
    } else if (strcmp(name, "bookAppointment") == 0) {
        pick_date(u, date);
        pick_time(u, hhmm);
        sbuf_printf(out,
                    "{\"date\":\"%s\",\"time\":\"%s\",\"customerName\":\"Test Caller\","
                    "\"customerPhone\":\"" CHAT_DEFAULT_PHONE "\",\"serviceType\":",
                    date, hhmm);
        sbuf_json_str(out, pick_service(u, tool));
        sbuf_putc(out, '}');
    } else if (strcmp(name, "lookupCustomer") == 0) {
        sbuf_t phone = SBUF_INIT;
        if (!sim_text_phone(u, &phone))
            sbuf_puts(&phone, CHAT_DEFAULT_PHONE);
        sbuf_puts(out, "{\"phone\":");
        sbuf_json_str(out, phone.data);
        sbuf_putc(out, '}');
        sbuf_destroy(&phone);
    } else {
        return false;
    }
    return true;
}

/* The built-in tool the user text u asks for, when it is offered; else NULL. */
static const char *builtin_wanted(const char *u, const cJSON *tools)
{
    static const char *const avail[] = {"available", "availability", NULL};
    static const char *const lookup[] = {"look up", "lookup", "customer", NULL};
    if (sim_text_has_any(u, avail) && tool_named(tools, "checkAvailability"))
        return "checkAvailability";
    if (sim_text_find_ci(u, "book") && tool_named(tools, "bookAppointment"))
        return "bookAppointment";
    if (sim_text_has_any(u, lookup) && tool_named(tools, "lookupCustomer"))
        return "lookupCustomer";
    return NULL;
}

/* The text of the newest user message, appended to out. */
static void last_user_text(const cJSON *messages, sbuf_t *out)
{
    for (int i = cJSON_GetArraySize(messages) - 1; i >= 0; i--) {
        const cJSON *m = cJSON_GetArrayItem(messages, i);
        if (strcmp(role_of(m), "user") == 0) {
            content_text(m, out);
            return;
        }
    }
}

typedef struct decision {
    bool call;
    char name[128];
    sbuf_t text; /* the answer, or the call's arguments (a JSON object text) */
} decision_t;

/*
 * The "mcp call <tool> <json>" rule: the offered tool named <tool>, or else the first one whose
 * name ends with "__<tool>", or else <tool> itself (offered or not: the supervisor must refuse
 * it); the arguments are the text from the first '{' after the name to the last '}', else {}.
 */
static void mcp_call_rule(const char *at, const cJSON *tools, decision_t *d)
{
    const char *p = at + strlen(CHAT_MCP_CALL);
    while (*p == ' ')
        p++;
    size_t nl = strcspn(p, " {\n");
    char want[sizeof(d->name)], suffix[sizeof(d->name) + 2];
    snprintf(want, sizeof(want), "%.*s", (int)nl, p);
    snprintf(suffix, sizeof(suffix), "__%s", want);
    const char *by_suffix = tool_name_suffix(tools, suffix);
    str_copy(d->name,
             tool_named(tools, want) ? want
             : by_suffix             ? by_suffix
                                     : want,
             sizeof(d->name));
    const char *open = strchr(p + nl, '{');
    const char *close = strrchr(p + nl, '}');
    if (open && close && close > open)
        sbuf_append(&d->text, open, (size_t)(close - open + 1));
    else
        sbuf_puts(&d->text, "{}");
}

/*
 * The rules, on the last message and the offered tools (first match wins):
 * - the last user message says "keep calling tools" and a tool is offered: call the first
 *   offered tool again, whatever came back (tests the iteration cap; with the arguments the
 *   rules below give a built-in tool, else {}, so that a tool storm exercises the tools);
 * - the last message is a tool result: "Here is what I found: " and, for a built-in booking
 *   tool's result, a sentence (the first open times, the booking and its confirmation number,
 *   the customer, or the error's message), else its first 200 characters;
 * - "malformed arguments" with a tool offered: call it with arguments that are not JSON;
 * - "unknown tool": call a tool named "frobnicate", which nobody offers;
 * - otherwise, on the last user message: "available"/"availability" with checkAvailability
 *   offered: checkAvailability {date, serviceType}; "book" with bookAppointment offered:
 *   bookAppointment {date, time, customerName, customerPhone, serviceType}; "look up"/"lookup"/
 *   "customer" with lookupCustomer offered: lookupCustomer {phone}; "echo <x>" with a tool named
 *   "<alias>__echo" offered: that tool {message: x}; "screenshot" with a tool named
 *   "<alias>__get-tiny-image" offered: that tool {}; "ask me <q>" with ask_user offered (agent
 *   runs): ask_user {question: "<q>"} (the rest of the message, or "What should I do?");
 *   "list your tools": the text "Tools: <every offered tool's name, comma-separated>";
 *   "mcp call <tool> <json>": that tool with those arguments (mcp_call_rule());
 * - otherwise the text "Prime Auto Lab can help with that. You asked: "<question>"".
 * Dates are a YYYY-MM-DD in the text, today, tomorrow, the next named weekday, else next Monday
 * (local time); times an HH:MM in the text, else 10:00; services the first one named (the
 * tool's serviceType enum value when it declares one), else "Oil Change"; phones the first
 * phone-like run of digits, else 555-0100.
 */
static void decide(const cJSON *messages, const cJSON *tools, decision_t *d)
{
    int n = cJSON_GetArraySize(messages);
    const cJSON *last = cJSON_GetArrayItem(messages, n - 1);
    sbuf_t text = SBUF_INIT;
    const cJSON *first_tool = cJSON_GetArrayItem(tools, 0);
    const cJSON *first_fn = cJSON_GetObjectItemCaseSensitive(first_tool, "function");
    const cJSON *first_name = cJSON_GetObjectItemCaseSensitive(first_fn, "name");
    last_user_text(messages, &text);
    const char *u = text.data ? text.data : "";
    if (sim_postcall_crm(messages, tools, &d->call, d->name, sizeof(d->name), &d->text)) {
        sbuf_destroy(&text);
        return;
    }
    if (cJSON_IsString(first_name) && sim_text_find_ci(u, "keep calling tools")) {
        d->call = true;
        str_copy(d->name, first_name->valuestring, sizeof(d->name));
        if (!builtin_args(d->name, first_tool, u, &d->text))
            sbuf_puts(&d->text, "{}");
        sbuf_destroy(&text);
        return;
    }
    if (strcmp(role_of(last), "tool") == 0) {
        sbuf_reset(&text);
        content_text(last, &text);
        sbuf_puts(&d->text, "Here is what I found: ");
        if (!say_builtin_result(text.data ? text.data : "", &d->text))
            sim_text_prefix_cp(&d->text, text.data ? text.data : "", CHAT_TOOL_RESULT_CHARS);
        sbuf_destroy(&text);
        return;
    }
    const char *builtin, *mcp_at;
    const char *echo_tool = tool_name_suffix(tools, "__echo");
    const char *echo_at = sim_text_find_ci(u, "echo ");
    const char *ask_at = sim_text_find_ci(u, "ask me");
    const char *image_tool = tool_name_suffix(tools, "__get-tiny-image");
    d->call = true;
    if (sim_text_find_ci(u, "malformed arguments") && cJSON_IsString(first_name)) {
        str_copy(d->name, first_name->valuestring, sizeof(d->name));
        sbuf_puts(&d->text, "{\"date\": tomorrow");
    } else if (sim_text_find_ci(u, "unknown tool")) {
        str_copy(d->name, "frobnicate", sizeof(d->name));
        sbuf_puts(&d->text, "{}");
    } else if (sim_text_find_ci(u, CHAT_LIST_TOOLS)) {
        d->call = false;
        tool_names(tools, &d->text);
    } else if ((mcp_at = sim_text_find_ci(u, CHAT_MCP_CALL)) != NULL) {
        mcp_call_rule(mcp_at, tools, d);
    } else if ((builtin = builtin_wanted(u, tools)) != NULL) {
        str_copy(d->name, builtin, sizeof(d->name));
        builtin_args(builtin, tool_named(tools, builtin), u, &d->text);
    } else if (ask_at && tool_named(tools, "ask_user")) {
        str_copy(d->name, "ask_user", sizeof(d->name));
        const char *q = ask_at + strlen("ask me");
        while (*q == ' ' || *q == ':')
            q++;
        size_t ql = strlen(q);
        while (ql > 0 && (q[ql - 1] == ' ' || q[ql - 1] == '\n'))
            ql--;
        sbuf_puts(&d->text, "{\"question\":");
        if (ql)
            sbuf_json_strn(&d->text, q, ql);
        else
            sbuf_json_str(&d->text, CHAT_DEFAULT_QUESTION);
        sbuf_putc(&d->text, '}');
    } else if (sim_text_find_ci(u, "screenshot") && image_tool) {
        str_copy(d->name, image_tool, sizeof(d->name));
        sbuf_puts(&d->text, "{}");
    } else if (echo_at && echo_tool) {
        str_copy(d->name, echo_tool, sizeof(d->name));
        const char *x = echo_at + strlen("echo ");
        size_t xl = strlen(x);
        while (xl > 0 && (x[xl - 1] == ' ' || x[xl - 1] == '\n'))
            xl--;
        sbuf_puts(&d->text, "{\"message\":");
        sbuf_json_strn(&d->text, x, xl);
        sbuf_putc(&d->text, '}');
    } else {
        d->call = false;
        sbuf_puts(&d->text, "Prime Auto Lab can help with that.");
        if (*u) {
            sbuf_puts(&d->text, " You asked: \"");
            sim_text_prefix_cp(&d->text, u, CHAT_ECHO_QUESTION_CPS);
            sbuf_putc(&d->text, '"');
        }
    }
    sbuf_destroy(&text);
}

/* ---- Answers --------------------------------------------------------------------------------- */

static void usage_json(sbuf_t *b, const cJSON *messages, const decision_t *d)
{
    size_t chars = 0;
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, messages)
    {
        sbuf_t t = SBUF_INIT;
        content_text(m, &t);
        chars += t.len;
        sbuf_destroy(&t);
        n++;
    }
    unsigned long long prompt = chars / CHARS_PER_TOKEN + (size_t)n * TOKENS_PER_MESSAGE;
    unsigned long long completion = d->text.len / CHARS_PER_TOKEN + 1;
    sbuf_printf(b, "{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"total_tokens\":%llu}",
                prompt, completion, prompt + completion);
}

static void head_json(sbuf_t *b, const char *id, const char *object, const char *model,
                      long long created)
{
    sbuf_printf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", id, object,
                created);
    sbuf_json_str(b, model);
    sbuf_puts(b, ",\"system_fingerprint\":\"fp_switchboard_sim\"");
}

static void answer_json(sbuf_t *b, const char *model, const cJSON *messages, const decision_t *d)
{
    char id[SIM_ID_MAX], call_id[SIM_ID_MAX];
    sim_id(id, "chatcmpl-");
    head_json(b, id, "chat.completion", model, (long long)time(NULL));
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (d->call) {
        sim_id(call_id, "call_");
        sbuf_printf(b,
                    "null,\"refusal\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
                    "\"function\":{\"name\":",
                    call_id);
        sbuf_json_str(b, d->name);
        sbuf_puts(b, ",\"arguments\":");
        sbuf_json_str(b, d->text.data);
        sbuf_puts(b, "}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]");
    } else {
        sbuf_json_str(b, d->text.data);
        sbuf_puts(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
    }
    sbuf_puts(b, ",\"usage\":");
    usage_json(b, messages, d);
    sbuf_putc(b, '}');
}

/* One SSE chunk with the given delta object text and finish reason (NULL: null). */
static void chunk(sbuf_t *b, const char *id, const char *model, long long created,
                  const char *delta, const char *finish)
{
    sbuf_puts(b, "data: ");
    head_json(b, id, "chat.completion.chunk", model, created);
    sbuf_printf(
        b, ",\"choices\":[{\"index\":0,\"delta\":%s,\"logprobs\":null,\"finish_reason\":", delta);
    if (finish)
        sbuf_printf(b, "\"%s\"", finish);
    else
        sbuf_puts(b, "null");
    sbuf_puts(b, "}]}\n\n");
}

static void answer_stream(sbuf_t *b, const char *model, const cJSON *messages, const decision_t *d,
                          bool include_usage)
{
    char id[SIM_ID_MAX], call_id[SIM_ID_MAX];
    sim_id(id, "chatcmpl-");
    long long created = (long long)time(NULL);
    const char *s = d->text.data;
    size_t len = d->text.len, half = len / 2;
    while (half > 0 && (s[half] & 0xc0) == 0x80)
        half--;
    size_t cuts[3] = {0, half, len};
    sbuf_t delta = SBUF_INIT;
    if (d->call) {
        sim_id(call_id, "call_");
        sbuf_printf(&delta,
                    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                    "\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":",
                    call_id);
        sbuf_json_str(&delta, d->name);
        sbuf_puts(&delta, ",\"arguments\":\"\"}}]}");
    } else {
        sbuf_puts(&delta, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}");
    }
    chunk(b, id, model, created, delta.data, NULL);
    for (int i = 0; i < 2; i++) {
        if (cuts[i + 1] == cuts[i])
            continue;
        sbuf_reset(&delta);
        sbuf_puts(&delta, d->call ? "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                                  : "{\"content\":");
        sbuf_json_strn(&delta, s + cuts[i], cuts[i + 1] - cuts[i]);
        sbuf_puts(&delta, d->call ? "}}]}" : "}");
        chunk(b, id, model, created, delta.data, NULL);
    }
    chunk(b, id, model, created, "{}", d->call ? "tool_calls" : "stop");
    if (include_usage) {
        sbuf_puts(b, "data: ");
        head_json(b, id, "chat.completion.chunk", model, created);
        sbuf_puts(b, ",\"choices\":[],\"usage\":");
        usage_json(b, messages, d);
        sbuf_puts(b, "}\n\n");
    }
    sbuf_puts(b, "data: [DONE]\n\n");
    sbuf_destroy(&delta);
}

/* A failed answer: the --chat-fail one, or the one a --faults fault armed. */
static void fail(sim_chat_fail_t kind, int *status, sbuf_t *headers, sbuf_t *body)
{
    switch (kind) {
    case SIM_CHAT_FAIL_429:
        *status = 429;
        sbuf_puts(headers, "retry-after-ms: " CHAT_RETRY_AFTER_MS "\r\n"
                           "x-ratelimit-remaining-requests: 0\r\n");
        sim_chat_error_body(body,
                            "Rate limit reached for requests (switchboard-sim --chat-fail 429). "
                            "Please try again in " CHAT_RETRY_AFTER_MS "ms.",
                            "requests", NULL, "rate_limit_exceeded");
        break;
    case SIM_CHAT_FAIL_QUOTA:
        *status = 429;
        sim_chat_error_body(body,
                            "You exceeded your current quota, please check your plan and billing "
                            "details (switchboard-sim --chat-fail 429-quota).",
                            "insufficient_quota", NULL, "insufficient_quota");
        break;
    case SIM_CHAT_FAIL_500:
        *status = 500;
        sim_chat_error_body(body,
                            "The server had an error while processing your request. Sorry about "
                            "that! (switchboard-sim --chat-fail 500)",
                            "server_error", NULL, NULL);
        break;
    default:
        *status = 401;
        sim_chat_error_body(body, "Incorrect API key provided (switchboard-sim --chat-fail 401).",
                            "invalid_request_error", NULL, "invalid_api_key");
        break;
    }
}

void sim_chat_handle(bool has_bearer, const char *body, size_t len, int *status, sbuf_t *headers,
                     sbuf_t *out, const char **ctype)
{
    char req_id[SIM_ID_MAX];
    sim_id(req_id, "req_");
    sbuf_printf(headers, "x-request-id: %s\r\n", req_id);
    *ctype = "application/json";
    if (!has_bearer) {
        *status = 401;
        sim_chat_error_body(out,
                            "You didn't provide an API key. You need to provide your API key in "
                            "an Authorization header using Bearer auth (i.e. Authorization: "
                            "Bearer YOUR_KEY).",
                            "invalid_request_error", NULL, "invalid_api_key");
        return;
    }
    sim_chat_fail_t injected = sim_fault_take_chat();
    if (injected != SIM_CHAT_FAIL_NONE) {
        fail(injected, status, headers, out);
        return;
    }
    if (g_sim_cfg.chat_fail != SIM_CHAT_FAIL_NONE &&
        (g_sim_cfg.chat_fail_count < 0 || g_failed < g_sim_cfg.chat_fail_count)) {
        g_failed++;
        fail(g_sim_cfg.chat_fail, status, headers, out);
        return;
    }
    cJSON *req = cJSON_ParseWithLength(body, len);
    const cJSON *schema = NULL;
    sbuf_t why = SBUF_INIT;
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!cJSON_IsObject(req)) {
        *status = 400;
        sim_chat_error_body(out, "We could not parse the JSON body of your request.",
                            "invalid_request_error", NULL, NULL);
    } else if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        *status = 400;
        sim_chat_error_body(out, "Missing required parameter: 'messages'.", "invalid_request_error",
                            "messages", "missing_required_parameter");
    } else if (model != NULL && !cJSON_IsString(model)) {
        *status = 400;
        sim_chat_error_body(out, "Invalid type for 'model': expected a string.",
                            "invalid_request_error", "model", "invalid_type");
    } else if ((schema = sim_extract_wanted(req)) != NULL &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, "strict")) &&
               !sim_extract_schema_ok(schema, &why)) {
        *status = 400;
        sim_chat_error_body(out, why.data, "invalid_request_error", "response_format", NULL);
    } else {
        *status = 200;
        const char *m = cJSON_IsString(model) ? model->valuestring : CHAT_DEFAULT_MODEL;
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
        decision_t d = {.text = SBUF_INIT};
        if (schema != NULL) {
            /* The extraction of switchboard-onboard (tenant_config) or a call's summary. */
            sbuf_t text = SBUF_INIT;
            last_user_text(messages, &text);
            const cJSON *sn = cJSON_GetObjectItemCaseSensitive(schema, "name");
            if (strcmp(sn->valuestring, SIM_SUMMARY_SCHEMA_NAME) == 0)
                sim_postcall_summary(text.data ? text.data : "", &d.text);
            else
                sim_extract_tenant(text.data ? text.data : "", &d.text);
            sbuf_destroy(&text);
        } else {
            decide(messages, tools, &d);
        }
        if (d.text.data == NULL)
            sbuf_puts(&d.text, "");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"))) {
            const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
            *ctype = "text/event-stream";
            answer_stream(out, m, messages, &d,
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage")));
        } else {
            answer_json(out, m, messages, &d);
        }
        sbuf_destroy(&d.text);
    }
    sbuf_destroy(&why);
    cJSON_Delete(req);
}
