/*
 * sim_postcall: the call_summary answers and the CRM run's rules (sim_postcall.h).
 */
#include "bench/sim/sim_postcall.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "bench/sim/sim_text.h"

#define NAME_WORDS_MAX 3
#define REASON_CHARS   160
#define FIELD_MAX      160

/* ---- call_summary -----------------------------------------------------------------------------
 */

/* The caller's lines ("Caller: …") of the request text, joined by newlines. */
static void caller_lines(const char *text, sbuf_t *out)
{
    const char *p = text;
    while ((p = strstr(p, "Caller: ")) != NULL) {
        if (p != text && p[-1] != '\n') {
            p++;
            continue;
        }
        p += strlen("Caller: ");
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        sbuf_append(out, p, n);
        sbuf_putc(out, '\n');
        p += n;
    }
}

/* "my name is Ann Lee." -> "Ann Lee" (up to NAME_WORDS_MAX words, stopping at punctuation). */
static bool find_name(const char *u, sbuf_t *out)
{
    const char *at = sim_text_find_ci(u, "my name is ");
    if (at == NULL)
        return false;
    const char *p = at + strlen("my name is ");
    for (int w = 0; w < NAME_WORDS_MAX && *p && isalpha((unsigned char)*p); w++) {
        const char *s = p;
        while (*p && (isalpha((unsigned char)*p) || *p == '\'' || *p == '-'))
            p++;
        if (w > 0 && (strncmp(s, "and ", 4) == 0 || !isupper((unsigned char)*s)))
            break;
        if (w > 0)
            sbuf_putc(out, ' ');
        sbuf_append(out, s, (size_t)(p - s));
        if (*p != ' ')
            break;
        p++;
    }
    return out->len > 0;
}

/* The first word with an '@' and a '.' after it. */
static bool find_email(const char *u, sbuf_t *out)
{
    for (const char *at = strchr(u, '@'); at; at = strchr(at + 1, '@')) {
        const char *s = at, *e = at + 1;
        while (s > u && !isspace((unsigned char)s[-1]) && s[-1] != '<' && s[-1] != '(')
            s--;
        while (*e && !isspace((unsigned char)*e) && *e != '>' && *e != ')' && *e != ',')
            e++;
        while (e > at && (e[-1] == '.' || e[-1] == '!' || e[-1] == '?'))
            e--;
        const char *dot = memchr(at, '.', (size_t)(e - at));
        if (s < at && dot && dot + 1 < e) {
            sbuf_append(out, s, (size_t)(e - s));
            return true;
        }
    }
    return false;
}

static void put_or_null(sbuf_t *b, const char *key, const sbuf_t *v, bool first)
{
    if (!first)
        sbuf_putc(b, ',');
    sbuf_json_str(b, key);
    sbuf_putc(b, ':');
    if (v && v->len)
        sbuf_json_strn(b, v->data, v->len);
    else
        sbuf_puts(b, "null");
}

void sim_postcall_summary(const char *text, sbuf_t *out)
{
    sbuf_t u = SBUF_INIT, name = SBUF_INIT, phone = SBUF_INIT, email = SBUF_INIT;
    sbuf_t reason = SBUF_INIT, summary = SBUF_INIT, follow = SBUF_INIT;
    caller_lines(text, &u);
    const char *said = u.data ? u.data : "";
    const char *tools = strstr(text, "Tool calls:");
    find_name(said, &name);
    sim_text_phone(said, &phone);
    find_email(said, &email);
    const char *outcome = "information";
    if (tools && strstr(tools, "bookAppointment (completed)"))
        outcome = "booked";
    else if (tools && sim_text_find_ci(tools, "transferCall (completed)"))
        outcome = "transferred";
    else if (sim_text_find_ci(said, "call me back") || sim_text_find_ci(said, "callback"))
        outcome = "callback";
    else if (!said[0])
        outcome = "other";
    const char *nl = strchr(said, '\n');
    sim_text_prefix_cp(&reason, said,
                       nl ? (size_t)(nl - said) < REASON_CHARS ? (size_t)(nl - said) : REASON_CHARS
                          : REASON_CHARS);
    if (reason.len) {
        /* sim_text_prefix_cp counts code points: cut at the first newline if it went past. */
        char *cut = memchr(reason.data, '\n', reason.len);
        if (cut) {
            reason.len = (size_t)(cut - reason.data);
            reason.data[reason.len] = '\0';
        }
    }
    sbuf_printf(&summary, "%s called", name.len ? name.data : "A caller");
    if (reason.len)
        sbuf_printf(&summary, " and said: \"%s\"", reason.data);
    sbuf_printf(&summary, ". Outcome: %s.", outcome);
    if (strcmp(outcome, "callback") == 0)
        sbuf_puts(&follow, "Call the caller back.");
    const char *sentiment = "neutral";
    static const char *const good[] = {"thank", "great", "perfect", NULL};
    static const char *const bad[] = {"angry", "terrible", "awful", "complaint", NULL};
    if (sim_text_has_any(said, bad))
        sentiment = "negative";
    else if (sim_text_has_any(said, good))
        sentiment = "positive";
    if (sim_text_find_ci(said, "invalid summary"))
        outcome = "maybe"; /* not in the enum: the switchboard must refuse it */
    sbuf_puts(out, "{");
    put_or_null(out, "summary", &summary, true);
    sbuf_puts(out, ",\"caller\":{");
    put_or_null(out, "name", &name, true);
    put_or_null(out, "phone", &phone, false);
    put_or_null(out, "email", &email, false);
    sbuf_puts(out, "}");
    put_or_null(out, "reason", &reason, false);
    sbuf_printf(out, ",\"outcome\":\"%s\"", outcome);
    put_or_null(out, "followUp", &follow, false);
    sbuf_printf(out, ",\"sentiment\":\"%s\"}", sentiment);
    sbuf_t *all[] = {&u, &name, &phone, &email, &reason, &summary, &follow};
    for (size_t i = 0; i < ARRAY_LEN(all); i++)
        sbuf_destroy(all[i]);
}

/* ---- The CRM run ------------------------------------------------------------------------------
 */

static const char *role_of(const cJSON *m)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(r) ? r->valuestring : "";
}

static const char *content_of(const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    return cJSON_IsString(c) ? c->valuestring : "";
}

static const char *tool_suffix(const cJSON *tools, const char *suffix)
{
    size_t sl = strlen(suffix);
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        size_t nl = cJSON_IsString(n) ? strlen(n->valuestring) : 0;
        if (nl >= sl && strcmp(n->valuestring + nl - sl, suffix) == 0)
            return n->valuestring;
    }
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), sl = strlen(suffix);
    return n >= sl && strcmp(s + n - sl, suffix) == 0;
}

/* The value of "<label>: …" in the context, unless "unknown". */
static bool field(const char *ctx, const char *label, char out[FIELD_MAX])
{
    const char *p = strstr(ctx, label);
    if (p == NULL)
        return false;
    p += strlen(label);
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || n >= FIELD_MAX || (n == 7 && strncmp(p, "unknown", 7) == 0))
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Adds "key":"value" to the arguments object a when value is known. */
static void arg(cJSON *a, const char *key, bool known, const char *value)
{
    if (known)
        cJSON_AddStringToObject(a, key, value);
}

bool sim_postcall_crm(const cJSON *messages, const cJSON *tools, bool *call, char *name,
                      size_t name_len, sbuf_t *text)
{
    const cJSON *m, *ctx_msg = NULL, *last_call = NULL, *last_tool = NULL;
    const char *find = tool_suffix(tools, "__find_contact");
    cJSON_ArrayForEach(m, messages)
    {
        if (strcmp(role_of(m), "user") == 0 && strstr(content_of(m), SIM_CRM_MARK))
            ctx_msg = m;
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (strcmp(role_of(m), "assistant") == 0 && cJSON_GetArraySize(tc) > 0)
            last_call = cJSON_GetArrayItem(tc, 0);
        if (strcmp(role_of(m), "tool") == 0)
            last_tool = m;
    }
    if (ctx_msg == NULL || find == NULL)
        return false;
    const char *ctx = content_of(ctx_msg);
    char nm[FIELD_MAX], phone[FIELD_MAX], email[FIELD_MAX];
    bool has_name = field(ctx, "Caller name: ", nm),
         has_phone = field(ctx, "Caller phone: ", phone),
         has_email = field(ctx, "Caller email: ", email);
    const char *note = strstr(ctx, "Note:\n");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(last_call, "function");
    const cJSON *fname = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const char *last = cJSON_IsString(fname) ? fname->valuestring : "";
    cJSON *result = last_tool ? cJSON_Parse(content_of(last_tool)) : NULL;
    cJSON *args = cJSON_CreateObject();
    const char *next = NULL;
    *call = true;
    if (last_call == NULL && !has_phone && !has_email) {
        *call = false; /* nobody to look up: no lead */
        sbuf_puts(text, "The caller left no phone number or email: nothing to record.");
    } else if (last_call == NULL) {
        next = find;
        if (has_phone)
            cJSON_AddStringToObject(args, "phone", phone);
        else
            arg(args, "email", has_email, email);
    } else if (result == NULL) {
        *call = false;
        sbuf_printf(text, "The CRM step failed: %s", last_tool ? content_of(last_tool) : "");
    } else if (ends_with(last, "__find_contact")) {
        const cJSON *contact = cJSON_GetObjectItemCaseSensitive(result, "contact");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(contact, "id");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "found")) && cJSON_IsString(id)) {
            next = tool_suffix(tools, "__update_contact");
            cJSON_AddStringToObject(args, "id", id->valuestring);
        } else {
            next = tool_suffix(tools, "__create_contact");
            arg(args, "phone", has_phone, phone);
        }
        arg(args, "name", has_name, nm);
        arg(args, "email", has_email, email);
    } else if (ends_with(last, "__create_contact") || ends_with(last, "__update_contact")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(result, "contact"), "id");
        next = tool_suffix(tools, "__add_note");
        arg(args, "contactId", cJSON_IsString(id), cJSON_IsString(id) ? id->valuestring : "");
        cJSON_AddStringToObject(args, "text", note ? note + strlen("Note:\n") : ctx);
    } else {
        *call = false;
        sbuf_puts(text, "Recorded the call in the CRM: contact up to date, note attached.");
    }
    if (*call && next == NULL) {
        *call = false;
        sbuf_puts(text, "The CRM does not offer the tool needed next.");
    }
    if (*call) {
        str_copy(name, next, name_len);
        char *a = cJSON_PrintUnformatted(args);
        sbuf_puts(text, a);
        free(a);
    }
    cJSON_Delete(args);
    cJSON_Delete(result);
    return true;
}
