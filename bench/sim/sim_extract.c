/*
 * The tenant_config answer of the simulator; see sim_extract.h for the rules.
 * Thread: any (pure).
 */
#include "bench/sim/sim_extract.h"
#include "bench/sim/sim_postcall.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "bench/sim/sim_text.h"

#define DAYS_PER_WEEK     7
#define MIN_PER_HOUR      60
#define TIME_LEN          5 /* HH:MM */
#define MAX_FIELDS        8 /* of a service line */
#define SCHEMA_DEPTH_MAX  32
#define MALFORMED_TRIGGER "malformed extraction"
#define UTF8_DASH_BYTES   3 /* en dash U+2013, em dash U+2014 */

static const char *const day_keys[DAYS_PER_WEEK] = {"mon", "tue", "wed", "thu",
                                                    "fri", "sat", "sun"};
static const char *const day_names[DAYS_PER_WEEK] = {"monday", "tuesday",  "wednesday", "thursday",
                                                     "friday", "saturday", "sunday"};

typedef enum { FIELD_NAME, FIELD_PHONE, FIELD_EMAIL, FIELD_TIMEZONE, FIELDS } field_t;

static const struct {
    const char *label;
    field_t field;
} labels[] = {
    {"company", FIELD_NAME},       {"business", FIELD_NAME},   {"name", FIELD_NAME},
    {"phone", FIELD_PHONE},        {"telephone", FIELD_PHONE}, {"tel", FIELD_PHONE},
    {"email", FIELD_EMAIL},        {"e-mail", FIELD_EMAIL},    {"timezone", FIELD_TIMEZONE},
    {"time zone", FIELD_TIMEZONE},
};

static const char *const headings[] = {"services", "hours", "opening hours", "business hours"};

/* What the rules have read so far. */
typedef struct extract {
    char *fields[FIELDS]; /* heap or NULL */
    char *first_line;     /* the first line no rule took: the name when none is labelled */
    cJSON *services;
    bool open[DAYS_PER_WEEK];
    char times[DAYS_PER_WEEK][2][TIME_LEN + 1];
    sbuf_t brief;
} extract_t;

/* ---- Small readers --------------------------------------------------------------------------- */

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The length of the dash at p: '-', an en dash or an em dash; 0 when there is none. */
static size_t dash_len(const char *p)
{
    if (*p == '-')
        return 1;
    if (strncmp(p, "\xe2\x80\x93", UTF8_DASH_BYTES) == 0 ||
        strncmp(p, "\xe2\x80\x94", UTF8_DASH_BYTES) == 0)
        return UTF8_DASH_BYTES;
    return 0;
}

/* The length of a range separator at p: a dash, or the word "to" and a space; 0 when none. */
static size_t range_len(const char *p)
{
    size_t n = dash_len(p);
    return n ? n : strncasecmp(p, "to ", 3) == 0 ? 3 : 0;
}

/* A weekday at p (its name or at least its first three letters): its index (0 = Monday) with
 * *end after it, or -1. */
static int parse_day(const char *p, const char **end)
{
    size_t n = 0;

    while (isalpha((unsigned char)p[n]))
        n++;
    if (n < 3)
        return -1;
    for (int d = 0; d < DAYS_PER_WEEK; d++) {
        if (n <= strlen(day_names[d]) && strncasecmp(p, day_names[d], n) == 0) {
            *end = p + n;
            return d;
        }
    }
    return -1;
}

/* The weekdays at the start of p (bit 0 = Monday): one, a range or a list of them; 0 when p does
 * not start with one. *end is after the last. */
static unsigned parse_days(const char *p, const char **end)
{
    const char *q, *r, *s;
    unsigned days = 0;
    int d = parse_day(p, &q);

    if (d < 0)
        return 0;
    for (;;) {
        days |= 1u << d;
        r = skip_spaces(q);
        size_t range = range_len(r);
        size_t list = *r == ',' || *r == '&' ? 1 : strncasecmp(r, "and ", 4) == 0 ? 4 : 0;
        if (range == 0 && list == 0)
            break;
        int e = parse_day(skip_spaces(r + (range ? range : list)), &s);
        if (e < 0)
            break;
        for (int i = d; range && i != e; i = (i + 1) % DAYS_PER_WEEK)
            days |= 1u << i;
        d = e;
        q = s;
    }
    *end = q;
    return days;
}

/* "H:MM" or "HH:MM" at p, written "HH:MM" into out; *end after it. */
static bool parse_time(const char *p, const char **end, char out[TIME_LEN + 1])
{
    int h = 0, digits = 0;

    for (; isdigit((unsigned char)*p) && digits < 2; p++, digits++)
        h = h * 10 + (*p - '0');
    if (digits == 0 || p[0] != ':' || !isdigit((unsigned char)p[1]) ||
        !isdigit((unsigned char)p[2]))
        return false;
    snprintf(out, TIME_LEN + 1, "%02d:%c%c", h, p[1], p[2]);
    *end = p + 3;
    return true;
}

/* A duration field ("30 min", "2 hours"): its minutes, else 0. */
static int parse_duration(const char *f, size_t len)
{
    static const struct {
        const char *unit;
        int minutes;
    } units[] = {{"min", 1},
                 {"mins", 1},
                 {"minute", 1},
                 {"minutes", 1},
                 {"h", MIN_PER_HOUR},
                 {"hr", MIN_PER_HOUR},
                 {"hrs", MIN_PER_HOUR},
                 {"hour", MIN_PER_HOUR},
                 {"hours", MIN_PER_HOUR}};
    size_t i = 0;
    long n = 0;

    while (i < len && isdigit((unsigned char)f[i]) && n < 100000)
        n = n * 10 + (f[i++] - '0');
    if (i == 0)
        return 0;
    while (i < len && f[i] == ' ')
        i++;
    for (size_t u = 0; u < ARRAY_LEN(units); u++)
        if (len - i == strlen(units[u].unit) && strncasecmp(f + i, units[u].unit, len - i) == 0)
            return (int)(n * units[u].minutes);
    return 0;
}

/* ---- The rules ------------------------------------------------------------------------------- */

static bool take_label(extract_t *x, const char *line)
{
    for (size_t i = 0; i < ARRAY_LEN(labels); i++) {
        size_t n = strlen(labels[i].label);
        if (strncasecmp(line, labels[i].label, n) == 0 && line[n] == ':') {
            free(x->fields[labels[i].field]);
            x->fields[labels[i].field] = xstrdup(skip_spaces(line + n + 1));
            return true;
        }
    }
    return false;
}

static bool take_heading(const char *line)
{
    size_t n = strlen(line);

    if (n > 0 && line[n - 1] == ':')
        n--;
    for (size_t i = 0; i < ARRAY_LEN(headings); i++)
        if (n == strlen(headings[i]) && strncasecmp(line, headings[i], n) == 0)
            return true;
    return false;
}

static bool take_hours(extract_t *x, const char *line)
{
    char t[2][TIME_LEN + 1];
    const char *p;
    unsigned days = parse_days(line, &p);
    bool closed;

    if (days == 0)
        return false;
    p = skip_spaces(p);
    if (*p == ':')
        p = skip_spaces(p + 1);
    closed = strncasecmp(p, "closed", 6) == 0;
    if (closed) {
        p += 6;
    } else {
        if (!parse_time(p, &p, t[0]))
            return false;
        p = skip_spaces(p);
        size_t r = range_len(p);
        if (r == 0 || !parse_time(skip_spaces(p + r), &p, t[1]))
            return false;
    }
    if (*skip_spaces(p) != '\0')
        return false;
    for (int d = 0; d < DAYS_PER_WEEK; d++) {
        if (!(days & (1u << d)))
            continue;
        x->open[d] = !closed;
        if (!closed)
            memcpy(x->times[d], t, sizeof(t));
    }
    return true;
}

/* Appends fields [from, to) to b, joined by " - ". */
static void join_fields(sbuf_t *b, const char *const *f, const size_t *len, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (i > from)
            sbuf_puts(b, " - ");
        sbuf_append(b, f[i], len[i]);
    }
}

static bool take_service(extract_t *x, const char *line)
{
    const char *f[MAX_FIELDS];
    size_t len[MAX_FIELDS], n = 0, k, sep;
    int minutes = 0;

    for (const char *p = line, *start = line;; p++) {
        sep = *p == '|' ? 1 : strncmp(p, " - ", 3) == 0 ? 3 : dash_len(p) > 1 ? UTF8_DASH_BYTES : 0;
        if (*p != '\0' && sep == 0)
            continue;
        if (n == MAX_FIELDS)
            return false;
        const char *e = p;
        start = skip_spaces(start);
        while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        f[n] = start;
        len[n++] = (size_t)(e - start);
        if (*p == '\0')
            break;
        p += sep - 1;
        start = p + 1;
    }
    for (k = 1; k < n && (minutes = parse_duration(f[k], len[k])) == 0; k++)
        ;
    if (k >= n)
        return false;
    sbuf_t name = SBUF_INIT, price = SBUF_INIT;
    join_fields(&name, f, len, 0, k);
    join_fields(&price, f, len, k + 1, n);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "name", name.data ? name.data : "");
    cJSON_AddNumberToObject(s, "duration_min", minutes);
    cJSON_AddStringToObject(s, "price", price.data ? price.data : "");
    cJSON_AddItemToArray(x->services, s);
    sbuf_destroy(&name);
    sbuf_destroy(&price);
    return true;
}

static void take_line(extract_t *x, const char *line)
{
    if ((strncmp(line, "\xe2\x80\xa2", 3) == 0 && line[3] == ' ') ||
        ((line[0] == '-' || line[0] == '*') && line[1] == ' '))
        line = skip_spaces(line + (line[0] == '-' || line[0] == '*' ? 1 : 3));
    if (*line == '\0' || take_label(x, line) || take_heading(line) || take_hours(x, line) ||
        take_service(x, line))
        return;
    if (x->first_line == NULL)
        x->first_line = xstrdup(line);
    if (x->brief.len)
        sbuf_putc(&x->brief, '\n');
    sbuf_puts(&x->brief, line);
}

static const char *field_or(const extract_t *x, field_t f, const char *dflt)
{
    return x->fields[f] != NULL ? x->fields[f] : dflt;
}

void sim_extract_tenant(const char *text, sbuf_t *out)
{
    extract_t x = {.brief = SBUF_INIT, .services = cJSON_CreateArray()};
    sbuf_t line = SBUF_INIT;

    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, "\r\n");
        sbuf_reset(&line);
        sbuf_append(&line, p, n);
        while (line.len > 0 && isspace((unsigned char)line.data[line.len - 1]))
            line.data[--line.len] = '\0';
        take_line(&x, line.data ? skip_spaces(line.data) : "");
        p += n;
        p += strspn(p, "\r\n");
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *company = cJSON_AddObjectToObject(root, "company");
    cJSON_AddStringToObject(company, "name",
                            field_or(&x, FIELD_NAME, x.first_line ? x.first_line : ""));
    if (sim_text_find_ci(text, MALFORMED_TRIGGER) == NULL) {
        cJSON_AddStringToObject(company, "phone", field_or(&x, FIELD_PHONE, ""));
        cJSON_AddStringToObject(company, "email", field_or(&x, FIELD_EMAIL, ""));
        cJSON_AddStringToObject(company, "timezone", field_or(&x, FIELD_TIMEZONE, ""));
        cJSON_AddItemToObject(root, "services", x.services);
        x.services = NULL;
        cJSON *hours = cJSON_AddObjectToObject(root, "hours");
        for (int d = 0; d < DAYS_PER_WEEK; d++) {
            if (!x.open[d]) {
                cJSON_AddNullToObject(hours, day_keys[d]);
                continue;
            }
            cJSON *day = cJSON_AddObjectToObject(hours, day_keys[d]);
            cJSON_AddStringToObject(day, "open", x.times[d][0]);
            cJSON_AddStringToObject(day, "close", x.times[d][1]);
        }
        cJSON_AddStringToObject(root, "brief", x.brief.len ? x.brief.data : text);
    }
    char *json = cJSON_PrintUnformatted(root);
    sbuf_puts(out, json);
    free(json);
    cJSON_Delete(root);
    cJSON_Delete(x.services);
    for (int f = 0; f < FIELDS; f++)
        free(x.fields[f]);
    free(x.first_line);
    sbuf_destroy(&x.brief);
    sbuf_destroy(&line);
}

/* ---- The request ----------------------------------------------------------------------------- */

const cJSON *sim_extract_wanted(const cJSON *req)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(js, "name");

    if (cJSON_IsString(type) && strcmp(type->valuestring, "json_schema") == 0 &&
        cJSON_IsString(name) &&
        (strcmp(name->valuestring, SIM_EXTRACT_SCHEMA_NAME) == 0 ||
         strcmp(name->valuestring, SIM_SUMMARY_SCHEMA_NAME) == 0))
        return js;
    return NULL;
}

/* Where a schema check stands: the context as the API prints it, ('properties', 'company'). */
typedef struct schema_walk {
    const char *ctx[SCHEMA_DEPTH_MAX];
    int depth;
    const char *name;
    sbuf_t *why;
} schema_walk_t;

static bool schema_fail(schema_walk_t *w, const char *what, const char *missing)
{
    sbuf_printf(w->why, "Invalid schema for response_format '%s': In context=(", w->name);
    for (int i = 0; i < w->depth; i++)
        sbuf_printf(w->why, "%s'%s'", i ? ", " : "", w->ctx[i]);
    sbuf_printf(w->why, "%s), %s", w->depth == 1 ? "," : "", what);
    if (missing != NULL)
        sbuf_printf(w->why, " Missing '%s'.", missing);
    return false;
}

static bool walk(schema_walk_t *w, const cJSON *s);

static bool walk_child(schema_walk_t *w, const char *a, const char *b, const cJSON *s)
{
    if (w->depth + 2 > SCHEMA_DEPTH_MAX)
        return true; /* deeper than any schema of ours: not checked */
    w->ctx[w->depth++] = a;
    if (b != NULL)
        w->ctx[w->depth++] = b;
    bool ok = walk(w, s);
    w->depth -= b != NULL ? 2 : 1;
    return ok;
}

static bool walk(schema_walk_t *w, const cJSON *s)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    const cJSON *p;
    static const char *const index_names[] = {"0", "1", "2", "3", "4", "5", "6", "7"};

    if (cJSON_IsString(type) && strcmp(type->valuestring, "object") == 0) {
        if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "additionalProperties")))
            return schema_fail(
                w, "'additionalProperties' is required to be supplied and to be false.", NULL);
        cJSON_ArrayForEach(p, props)
        {
            bool listed = false;
            const cJSON *r;
            cJSON_ArrayForEach(r, req)
            {
                listed |= cJSON_IsString(r) && strcmp(r->valuestring, p->string) == 0;
            }
            if (!listed)
                return schema_fail(w,
                                   "'required' is required to be supplied and to be an array "
                                   "including every key in properties.",
                                   p->string);
        }
        cJSON_ArrayForEach(p, props)
        {
            if (!walk_child(w, "properties", p->string, p))
                return false;
        }
    }
    if (items != NULL && !walk_child(w, "items", NULL, items))
        return false;
    int i = 0;
    cJSON_ArrayForEach(p, any)
    {
        if (i < (int)ARRAY_LEN(index_names) && !walk_child(w, "anyOf", index_names[i], p))
            return false;
        i++;
    }
    return true;
}

bool sim_extract_schema_ok(const cJSON *json_schema, sbuf_t *why)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(json_schema, "name");
    schema_walk_t w = {.name = cJSON_IsString(name) ? name->valuestring : SIM_EXTRACT_SCHEMA_NAME,
                       .why = why};
    return walk(&w, cJSON_GetObjectItemCaseSensitive(json_schema, "schema"));
}
