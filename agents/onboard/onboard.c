/*
 * Onboarding's pure steps; see onboard.h.
 *
 * The schema the request sends is also the one the answer is checked against (check_schema(), a
 * walker for the subset of JSON Schema that strict structured outputs use: type, properties,
 * required, additionalProperties false, items, anyOf), so the two cannot drift apart. A model in
 * strict mode should never break it, but the base URL may point at anything that speaks the
 * protocol, and the file written must load as it is.
 *
 * The tenant keys of SPEC 16 (publicKey, apiSecret, allowedOrigins, phoneNumbers) are written
 * into the file, and the whole file is checked with the service's own parser, agentcfg_parse().
 */
#include "agents/onboard/onboard.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents/config/agentcfg.h"
#include "base/util.h"

#define SCHEMA_PATH_MAX_CHARS 128
#define ERR_REASON_MAX_CHARS  256
#define ERR_BODY_MAX_CHARS    200 /* of an error body without a message */
#define ERR_VALUE_MAX_CHARS   40  /* of a bad value quoted in a message */
#define TIME_TEXT_LEN         5   /* HH:MM */
#define MIN_PER_HOUR          60
#define HOURS_PER_DAY         24
#define DEFAULT_TIMEZONE      "UTC"
#define PUBLIC_KEY_PREFIX     "pk_"
#define API_SECRET_PREFIX     "sk_"

/* ---- The request --------------------------------------------------------------------------- */

/* A weekday: its opening and closing times, or null when closed. */
#define SCHEMA_DAY                                                                                 \
    "{\"anyOf\":[{\"type\":\"object\",\"additionalProperties\":false,"                             \
    "\"required\":[\"open\",\"close\"],\"properties\":{"                                           \
    "\"open\":{\"type\":\"string\",\"description\":\"opening time, 24-hour HH:MM\"},"              \
    "\"close\":{\"type\":\"string\",\"description\":\"closing time, 24-hour HH:MM (24:00 for "     \
    "midnight)\"}}},{\"type\":\"null\"}]}"

const char onboard_schema_json[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"company\",\"services\",\"hours\",\"brief\"],\"properties\":{"
    "\"company\":{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"name\",\"phone\",\"email\",\"timezone\"],\"properties\":{"
    "\"name\":{\"type\":\"string\",\"description\":\"the business's name\"},"
    "\"phone\":{\"type\":\"string\",\"description\":\"main phone number as written; empty when "
    "not given\"},"
    "\"email\":{\"type\":\"string\",\"description\":\"contact e-mail address; empty when not "
    "given\"},"
    "\"timezone\":{\"type\":\"string\",\"description\":\"IANA time zone such as "
    "America/Los_Angeles when the text states one or its address makes it certain; else "
    "empty\"}}},"
    "\"services\":{\"type\":\"array\",\"description\":\"every service offered\",\"items\":{"
    "\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"name\",\"duration_min\",\"price\"],\"properties\":{"
    "\"name\":{\"type\":\"string\"},"
    "\"duration_min\":{\"type\":\"integer\",\"description\":\"length of an appointment in "
    "minutes, 5 to 1440; 60 when not stated\"},"
    "\"price\":{\"type\":\"string\",\"description\":\"the price as written, e.g. $50-80; empty "
    "when not stated\"}}}},"
    "\"hours\":{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"],\"properties\":{"
    "\"mon\":" SCHEMA_DAY ",\"tue\":" SCHEMA_DAY ",\"wed\":" SCHEMA_DAY ",\"thu\":" SCHEMA_DAY
    ",\"fri\":" SCHEMA_DAY ",\"sat\":" SCHEMA_DAY ",\"sun\":" SCHEMA_DAY "}},"
    "\"brief\":{\"type\":\"string\",\"description\":\"what a receptionist needs to know about "
    "the business: what it does, its policies, what callers ask; in the text's own words\"}}}";

static const char onboard_instructions[] =
    "You read a business's brief and extract the configuration of its phone and web "
    "receptionist. Use only what the text says; never invent details. company: the business's "
    "name, main phone number and contact e-mail as written, and its IANA time zone when the text "
    "states one or its address makes it certain (else empty). services: every service offered, "
    "with the length of an appointment in minutes (60 when not stated) and the price as written "
    "(empty when not stated). hours: the opening and closing time of each weekday in 24-hour "
    "HH:MM, null on days it is closed or that the text does not list. brief: the description a "
    "receptionist needs (what the business does, policies, what callers ask about), in the "
    "text's own words.";

static const char *const day_keys[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

bool onboard_tenant_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > ONBOARD_TENANT_ID_MAX_CHARS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

static void random_hex(char *out, size_t out_size, const char *prefix, size_t nbytes)
{
    unsigned char raw[ONBOARD_API_SECRET_RANDOM_BYTES];
    size_t pl = strlen(prefix);

    if (nbytes > sizeof(raw) || out_size < pl + 2 * nbytes + 1)
        abort();
    randombytes_buf(raw, nbytes);
    memcpy(out, prefix, pl);
    sodium_bin2hex(out + pl, out_size - pl, raw, nbytes);
    sodium_memzero(raw, sizeof(raw));
}

void onboard_keys_generate(onboard_keys_t *k)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "onboard: libsodium cannot start\n");
        abort();
    }
    random_hex(k->public_key, sizeof(k->public_key), PUBLIC_KEY_PREFIX,
               ONBOARD_PUBLIC_KEY_RANDOM_BYTES);
    random_hex(k->api_secret, sizeof(k->api_secret), API_SECRET_PREFIX,
               ONBOARD_API_SECRET_RANDOM_BYTES);
}

static cJSON *message(const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    return m;
}

char *onboard_request_body(const char *model, const char *text)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *messages = cJSON_AddArrayToObject(body, "messages");
    cJSON *format = cJSON_AddObjectToObject(body, "response_format");
    cJSON *schema = cJSON_AddObjectToObject(format, "json_schema");

    cJSON_AddStringToObject(body, "model", model);
    cJSON_AddItemToArray(messages, message("system", onboard_instructions));
    cJSON_AddItemToArray(messages, message("user", text));
    cJSON_AddStringToObject(format, "type", "json_schema");
    cJSON_AddStringToObject(schema, "name", ONBOARD_SCHEMA_NAME);
    cJSON_AddBoolToObject(schema, "strict", true);
    cJSON_AddItemToObject(schema, "schema", cJSON_Parse(onboard_schema_json));
    char *out = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (out == NULL)
        abort(); /* cJSON's allocation failed */
    return out;
}

/* ---- Errors ---------------------------------------------------------------------------------- */

static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the message into err and returns rc (a negative errno). */
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Appends at most about max bytes of s[0..len) to b for a one-line message: control bytes and
 * broken UTF-8 as '?', "..." when cut. */
static void put_printable(sbuf_t *b, const char *s, size_t len, size_t max)
{
    size_t i = 0;

    while (i < len && i < max) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : sbuf_utf8_seq_len(s + i, len - i);
        if (n <= 1 && (c < 0x20 || c >= 0x7f)) {
            sbuf_putc(b, '?');
            i++;
        } else {
            sbuf_append(b, s + i, n);
            i += n;
        }
    }
    if (i < len)
        sbuf_puts(b, "...");
}

void onboard_http_error(int status, const char *body, size_t len, char *err, size_t errlen)
{
    cJSON *root = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    sbuf_t b = SBUF_INIT;

    if (cJSON_IsString(m))
        put_printable(&b, m->valuestring, strlen(m->valuestring), ERR_REASON_MAX_CHARS);
    else if (body != NULL && len > 0)
        put_printable(&b, body, len, ERR_BODY_MAX_CHARS);
    else
        sbuf_puts(&b, "(empty body)");
    snprintf(err, errlen, "HTTP %d: %s", status, b.data);
    sbuf_destroy(&b);
    cJSON_Delete(root);
}

/* ---- The answer against the schema ----------------------------------------------------------- */

typedef struct schema_ctx {
    char path[SCHEMA_PATH_MAX_CHARS];
    size_t plen;
    char *err;
    size_t errlen;
} schema_ctx_t;

/* Appends ".key" (or "key" at the top) to the key path; returns the length to go back to. A path
 * too long for the buffer is cut short, never overrun. */
static size_t path_key(schema_ctx_t *c, const char *key)
{
    size_t saved = c->plen;

    snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s", c->plen ? "." : "", key);
    c->plen += strlen(c->path + c->plen);
    return saved;
}

static size_t path_index(schema_ctx_t *c, size_t i)
{
    size_t saved = c->plen;

    snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);
    c->plen += strlen(c->path + c->plen);
    return saved;
}

static void path_back(schema_ctx_t *c, size_t saved)
{
    c->plen = saved;
    c->path[saved] = '\0';
}

static int schema_fail(schema_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "model output does not match the tenant_config schema: <path>: <reason>". */
static int schema_fail(schema_ctx_t *c, const char *fmt, ...)
{
    char reason[ERR_REASON_MAX_CHARS];
    sbuf_t where = SBUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (c->plen > 0)
        put_printable(&where, c->path, c->plen, SCHEMA_PATH_MAX_CHARS);
    else
        sbuf_puts(&where, "(top level)");
    int rc = fail(-EINVAL, c->err, c->errlen, "model output does not match the %s schema: %s: %s",
                  ONBOARD_SCHEMA_NAME, where.data, reason);
    sbuf_destroy(&where);
    return rc;
}

static const char *kind_of(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "object";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    return "null";
}

/* "a" or "an" before a type's name (all of them start with a letter). */
static const char *article(const char *word)
{
    return strchr("aeiou", word[0]) != NULL ? "an" : "a";
}

/* True when v is of the schema type named by type: "integer" is a whole number that fits an
 * int, "number" any number, the others what kind_of() says. */
static bool type_accepts(const char *type, const cJSON *v)
{
    if (strcmp(type, "integer") == 0)
        return cJSON_IsNumber(v) && v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX &&
               v->valuedouble == (double)(int)v->valuedouble;
    return strcmp(type, kind_of(v)) == 0;
}

static const char *type_of(const cJSON *schema)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type");
    return cJSON_IsString(t) ? t->valuestring : "?";
}

static int check_schema(schema_ctx_t *c, const cJSON *schema, const cJSON *v);

/* anyOf: the first branch whose type fits v decides. */
static int check_any_of(schema_ctx_t *c, const cJSON *branches, const cJSON *v)
{
    const cJSON *b;
    sbuf_t want = SBUF_INIT;

    cJSON_ArrayForEach(b, branches)
    {
        if (type_accepts(type_of(b), v)) {
            sbuf_destroy(&want);
            return check_schema(c, b, v);
        }
        sbuf_printf(&want, "%s%s %s", want.len ? " or " : "", article(type_of(b)), type_of(b));
    }
    int rc = schema_fail(c, "expected %s, got %s %s", want.data ? want.data : "nothing",
                         article(kind_of(v)), kind_of(v));
    sbuf_destroy(&want);
    return rc;
}

static int check_object(schema_ctx_t *c, const cJSON *schema, const cJSON *v)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *k, *r;
    int rc;

    for (k = v->child; k != NULL; k = k->next) {
        size_t saved = path_key(c, k->string);
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(props, k->string);
        if (sub == NULL)
            return schema_fail(c, "unknown key");
        for (const cJSON *d = v->child; d != k; d = d->next)
            if (strcmp(d->string, k->string) == 0)
                return schema_fail(c, "duplicate key");
        if ((rc = check_schema(c, sub, k)) != 0)
            return rc;
        path_back(c, saved);
    }
    cJSON_ArrayForEach(r, req)
    {
        if (cJSON_GetObjectItemCaseSensitive(v, r->valuestring) == NULL) {
            path_key(c, r->valuestring);
            return schema_fail(c, "required key is missing");
        }
    }
    return 0;
}

/* 0 when v matches schema (a schema of onboard_schema_json's subset), else -EINVAL naming the
 * key path. Recursion is as deep as the schema, whatever v holds. */
static int check_schema(schema_ctx_t *c, const cJSON *schema, const cJSON *v)
{
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(schema, "anyOf");
    const char *type = type_of(schema);
    int rc;

    if (any != NULL)
        return check_any_of(c, any, v);
    if (!type_accepts(type, v))
        return schema_fail(c, "expected %s %s, got %s %s", article(type), type, article(kind_of(v)),
                           kind_of(v));
    if (cJSON_IsObject(v))
        return check_object(c, schema, v);
    if (cJSON_IsArray(v)) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            size_t saved = path_index(c, i++);
            if ((rc = check_schema(c, items, e)) != 0)
                return rc;
            path_back(c, saved);
        }
    }
    return 0;
}

/* ---- The answer into the tenant file --------------------------------------------------------- */

/* The string at o.key; only called where check_schema() has made sure there is one. */
static const char *str_at(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key)->valuestring;
}

/* A copy of s without leading and trailing white space (heap). */
static char *trimmed(const char *s)
{
    static const char space[] = " \t\r\n\f\v";
    size_t lead = strspn(s, space), n = strlen(s + lead);

    while (n > 0 && strchr(space, s[lead + n - 1]) != NULL)
        n--;
    return xstrndup(s + lead, n);
}

/* Adds o.key = s trimmed; returns the added string. */
static const char *add_trimmed(cJSON *o, const char *key, const char *s)
{
    char *copy = trimmed(s);
    cJSON *item = cJSON_AddStringToObject(o, key, copy);
    free(copy);
    return item->valuestring;
}

/* "H:MM" or "HH:MM" from 00:00 to 24:00, written as "HH:MM" into out; false when s is not one. */
static bool normal_time(const char *s, char out[TIME_TEXT_LEN + 1])
{
    int h = 0, digits = 0;

    for (; *s >= '0' && *s <= '9' && digits < 2; s++, digits++)
        h = h * 10 + (*s - '0');
    if (digits == 0 || s[0] != ':' || s[1] < '0' || s[1] > '5' || s[2] < '0' || s[2] > '9' ||
        s[3] != '\0')
        return false;
    int m = (s[1] - '0') * 10 + (s[2] - '0');
    if (h > HOURS_PER_DAY || (h == HOURS_PER_DAY && m != 0))
        return false;
    /* h is 0..24 and m 0..59 (checked above); unsigned so the compiler sees two digits each. */
    snprintf(out, TIME_TEXT_LEN + 1, "%02u:%02u", (unsigned)h % 100u, (unsigned)m % 60u);
    return true;
}

static int convert_hours(const cJSON *hours, cJSON *t, char *err, size_t errlen)
{
    cJSON *out = cJSON_AddObjectToObject(t, "hours");

    for (size_t d = 0; d < ARRAY_LEN(day_keys); d++) {
        const cJSON *day = cJSON_GetObjectItemCaseSensitive(hours, day_keys[d]);
        if (cJSON_IsNull(day)) {
            cJSON_AddNullToObject(out, day_keys[d]);
            continue;
        }
        static const char *const ends[2] = {"open", "close"};
        char times[2][TIME_TEXT_LEN + 1];
        for (int e = 0; e < 2; e++) {
            char *s = trimmed(str_at(day, ends[e]));
            bool ok = normal_time(s, times[e]);
            if (!ok) {
                sbuf_t b = SBUF_INIT;
                put_printable(&b, s, strlen(s), ERR_VALUE_MAX_CHARS);
                fail(-EINVAL, err, errlen,
                     "model output: hours.%s.%s: expected a time \"HH:MM\", got \"%s\"",
                     day_keys[d], ends[e], b.data ? b.data : "");
                sbuf_destroy(&b);
            }
            free(s);
            if (!ok)
                return -EINVAL;
        }
        const char *pair[2] = {times[0], times[1]};
        cJSON_AddItemToObject(out, day_keys[d], cJSON_CreateStringArray(pair, 2));
    }
    return 0;
}

/*
 * Builds the tenant file t from the model's answer m (which matches the schema). See
 * onboard_tenant_json() for source_text and notes.
 */
static int convert(const cJSON *m, const onboard_keys_t *keys, const char *source_text, cJSON *t,
                   sbuf_t *notes, char *err, size_t errlen)
{
    const cJSON *co = cJSON_GetObjectItemCaseSensitive(m, "company"), *s;
    cJSON *company = cJSON_AddObjectToObject(t, "company");
    cJSON *services = cJSON_AddArrayToObject(t, "services");
    int rc;

    add_trimmed(company, "name", str_at(co, "name"));
    add_trimmed(company, "phone", str_at(co, "phone"));
    add_trimmed(company, "email", str_at(co, "email"));
    if (add_trimmed(company, "timezone", str_at(co, "timezone"))[0] == '\0') {
        cJSON_ReplaceItemInObjectCaseSensitive(company, "timezone",
                                               cJSON_CreateString(DEFAULT_TIMEZONE));
        if (notes != NULL)
            sbuf_puts(notes,
                      "company.timezone: the brief does not say; " DEFAULT_TIMEZONE " assumed\n");
    }
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(m, "services"))
    {
        cJSON *sv = cJSON_CreateObject();
        cJSON_AddItemToArray(services, sv);
        add_trimmed(sv, "name", str_at(s, "name"));
        cJSON_AddNumberToObject(sv, "duration_min",
                                cJSON_GetObjectItemCaseSensitive(s, "duration_min")->valuedouble);
        add_trimmed(sv, "price", str_at(s, "price"));
    }
    if ((rc = convert_hours(cJSON_GetObjectItemCaseSensitive(m, "hours"), t, err, errlen)) != 0)
        return rc;
    char *brief = trimmed(str_at(m, "brief"));
    if (brief[0] == '\0' && source_text != NULL) {
        free(brief);
        brief = trimmed(source_text);
        if (notes != NULL && brief[0] != '\0')
            sbuf_puts(notes, "brief: the model gave none; the PDF's text is the brief\n");
    }
    if (brief[0] == '\0') {
        free(brief);
        return fail(-EINVAL, err, errlen, "model output: brief: the model gave no brief");
    }
    cJSON_AddStringToObject(t, "brief", brief);
    free(brief);
    cJSON_AddStringToObject(t, "publicKey", keys->public_key);
    cJSON_AddStringToObject(t, "apiSecret", keys->api_secret);
    cJSON_AddArrayToObject(t, "allowedOrigins");
    cJSON_AddArrayToObject(t, "phoneNumbers");
    return 0;
}

/* 0 when the tenant file t loads with the service's parser as it is. */
static int check_loads(const cJSON *t, char *err, size_t errlen)
{
    char why[ERR_REASON_MAX_CHARS];
    agentcfg_t ac;
    char *text = cJSON_PrintUnformatted(t);
    int rc = agentcfg_parse(&ac, text, strlen(text), NULL, why, sizeof(why));
    free(text);
    if (rc != 0)
        return fail(-EINVAL, err, errlen, "model output does not make a valid tenant config: %s",
                    why);
    agentcfg_free(&ac);
    return 0;
}

/* The model's answer inside a Chat Completions response, parsed; NULL with err set. */
static cJSON *answer_of(const char *response, size_t len, char *err, size_t errlen)
{
    cJSON *root = cJSON_ParseWithLength(response, len), *answer = NULL;
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const cJSON *refusal = cJSON_GetObjectItemCaseSensitive(msg, "refusal");
    const cJSON *finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    sbuf_t b = SBUF_INIT;

    if (!cJSON_IsObject(msg)) {
        fail(-EINVAL, err, errlen, "the response is not a chat completion (no choices[0].message)");
    } else if (cJSON_IsString(refusal) && refusal->valuestring[0] != '\0') {
        put_printable(&b, refusal->valuestring, strlen(refusal->valuestring), ERR_REASON_MAX_CHARS);
        fail(-EINVAL, err, errlen, "the model refused: %s", b.data);
    } else if (cJSON_IsString(finish) && strcmp(finish->valuestring, "length") == 0) {
        fail(-EINVAL, err, errlen, "the model's answer was cut short (finish_reason \"length\")");
    } else if (!cJSON_IsString(content)) {
        fail(-EINVAL, err, errlen, "the model's answer has no text content");
    } else if ((answer = cJSON_Parse(content->valuestring)) == NULL) {
        fail(-EINVAL, err, errlen, "model output is not JSON");
    }
    sbuf_destroy(&b);
    cJSON_Delete(root);
    return answer;
}

int onboard_tenant_json(const char *response, size_t len, const onboard_keys_t *keys,
                        const char *source_text, char **out, sbuf_t *notes, char *err,
                        size_t errlen)
{
    schema_ctx_t c = {.err = err, .errlen = errlen};
    cJSON *schema = cJSON_Parse(onboard_schema_json);
    cJSON *answer = answer_of(response, len, err, errlen);
    cJSON *t = cJSON_CreateObject();
    int rc = -EINVAL;

    *out = NULL;
    if (answer != NULL && (rc = check_schema(&c, schema, answer)) == 0 &&
        (rc = convert(answer, keys, source_text, t, notes, err, errlen)) == 0 &&
        (rc = check_loads(t, err, errlen)) == 0) {
        char *text = cJSON_Print(t);
        sbuf_t b = SBUF_INIT;
        sbuf_puts(&b, text);
        sbuf_putc(&b, '\n');
        free(text);
        *out = sbuf_take(&b);
    }
    cJSON_Delete(t);
    cJSON_Delete(answer);
    cJSON_Delete(schema);
    return rc;
}

/* ---- The file -------------------------------------------------------------------------------- */

int onboard_path(char *path, size_t size, const char *dir, const char *id)
{
    int n = snprintf(path, size, "%s/%s.json", dir, id);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Writes all of text to fd and syncs it; 0 or -errno. */
static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        text += n;
        len -= (size_t)n;
    }
    return fsync(fd) != 0 ? -errno : 0;
}

int onboard_write(const char *dir, const char *id, const char *json, bool force, char *err,
                  size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int n, fd, rc;

    if (!onboard_tenant_id_ok(id))
        return fail(-EINVAL, err, errlen, "invalid tenant id (expected [a-z0-9-]{1,%d})",
                    ONBOARD_TENANT_ID_MAX_CHARS);
    n = snprintf(tmp, sizeof(tmp), "%s/.%s.json.XXXXXX", dir, id);
    if (onboard_path(path, sizeof(path), dir, id) != 0 || n < 0 || (size_t)n >= sizeof(tmp))
        return fail(-ENAMETOOLONG, err, errlen, "the directory's path is too long");
    fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0)
        return fail(-errno, err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
    rc = write_all(fd, json, strlen(json));
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && force)
        rc = rename(tmp, path) != 0 ? -errno : 0;
    else if (rc == 0)
        rc = link(tmp, path) != 0 ? -errno : 0;
    if (rc != 0 || !force)
        unlink(tmp);
    if (rc == -EEXIST)
        return fail(rc, err, errlen, "%s already exists", path);
    if (rc != 0)
        return fail(rc, err, errlen, "cannot write %s: %s", path, strerror(-rc));
    /* The new name is durable once the directory is. */
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}
