/*
 * Onboarding's pure steps (agents/onboard/onboard.c): the request body, the answer checked
 * against the schema and the config parser and turned into the tenant file, keys, ids, errors,
 * and the file written whole, never over another without force.
 */
#include "agents/onboard/onboard.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents/config/agentcfg.h"
#include "base/util.h"
#include "tests/runner.h"

#define ERR_LEN 512

/* A model answer that matches the schema, written with single quotes. */
#define GOOD_ANSWER                                                                                \
    "{'company': {'name': ' Acme Plumbing ', 'phone': '+1 512 555 0199', "                         \
    "'email': 'hello@acme.example', 'timezone': 'America/Chicago'}, "                              \
    "'services': [{'name': 'Drain cleaning', 'duration_min': 60, 'price': '$120-200'}, "           \
    "{'name': 'Water heater install', 'duration_min': 180, 'price': ''}], "                        \
    "'hours': {'mon': {'open': '8:00', 'close': '18:00'}, 'tue': {'open': '08:00', "               \
    "'close': '18:00'}, 'wed': null, 'thu': null, 'fri': {'open': '07:30', 'close': '24:00'}, "    \
    "'sat': null, 'sun': null}, "                                                                  \
    "'brief': '  A family plumber in Austin since 1998.\\n'}"

static const onboard_keys_t test_keys = {
    .public_key = "pk_00112233445566778899aabbccddeeff",
    .api_secret = "sk_0000000000000000000000000000000000000000000000000000000000000001",
};

/* s with every ' turned into " (heap). */
static char *dq(const char *s)
{
    char *out = xstrdup(s);
    for (char *q = out; *q; q++)
        if (*q == '\'')
            *q = '"';
    return out;
}

/* A chat.completion whose message content is the given text (NULL: null), finish_reason and
 * refusal (NULL: none). Heap. */
static char *completion(const char *content, const char *finish, const char *refusal)
{
    cJSON *root = cJSON_CreateObject(), *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *choice = cJSON_CreateObject(), *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddItemToArray(choices, choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON_AddStringToObject(choice, "finish_reason", finish ? finish : "stop");
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (content != NULL)
        cJSON_AddStringToObject(msg, "content", content);
    else
        cJSON_AddNullToObject(msg, "content");
    if (refusal != NULL)
        cJSON_AddStringToObject(msg, "refusal", refusal);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* Runs onboard_tenant_json() on a completion carrying answer_sq (single-quoted JSON). */
static int convert_sq(const char *answer_sq, const char *source, char **out, sbuf_t *notes,
                      char *err)
{
    char *answer = dq(answer_sq);
    char *resp = completion(answer, NULL, NULL);
    int rc = onboard_tenant_json(resp, strlen(resp), &test_keys, source, out, notes, err, ERR_LEN);
    free(resp);
    free(answer);
    return rc;
}

/* Expects answer_sq to be refused with a message containing want. */
static void refused(const char *answer_sq, const char *want)
{
    char err[ERR_LEN] = "", *out = (char *)1;
    int rc = convert_sq(answer_sq, NULL, &out, NULL, err);
    if (rc != -EINVAL)
        TEST_FAIL_("accepted %s", answer_sq);
    ASSERT(out == NULL);
    ASSERT_STR_CONTAINS(err, want);
}

/* GOOD_ANSWER with the text from `from` to `to` (exclusive, both found in it) replaced. */
static char *good_with(const char *from, const char *to, const char *with)
{
    const char *a = strstr(GOOD_ANSWER, from), *b = a ? strstr(a, to) : NULL;
    if (a == NULL || b == NULL)
        TEST_FAIL_("%s..%s not in GOOD_ANSWER", from, to);
    sbuf_t s = SBUF_INIT;
    sbuf_append(&s, GOOD_ANSWER, (size_t)(a - GOOD_ANSWER));
    sbuf_puts(&s, with);
    sbuf_puts(&s, b);
    return sbuf_take(&s);
}

static void refused_with(const char *from, const char *to, const char *with, const char *want)
{
    char *a = good_with(from, to, with);
    refused(a, want);
    free(a);
}

/* True when every object schema in s is strict: additionalProperties false and every property
 * required (what the API demands of strict mode). */
static bool strict_schema(const cJSON *s)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type"), *p, *any;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "object") == 0) {
        if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "additionalProperties")))
            return false;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "properties"))
        {
            bool listed = false;
            const cJSON *r;
            cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "required"))
            {
                listed |= strcmp(r->valuestring, p->string) == 0;
            }
            if (!listed || !strict_schema(p))
                return false;
        }
    }
    p = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (p != NULL && !strict_schema(p))
        return false;
    cJSON_ArrayForEach(any, cJSON_GetObjectItemCaseSensitive(s, "anyOf"))
    {
        if (!strict_schema(any))
            return false;
    }
    return true;
}

TEST(onboard_request_body)
{
    const char *text = "Acme \"Plumbing\"\nMon\xe2\x80\x93"
                       "Fri 08:00\xe2\x80\x93"
                       "18:00\n";
    char *body = onboard_request_body("gpt-test", text);
    cJSON *root = cJSON_Parse(body), *schema = cJSON_Parse(onboard_schema_json);
    ASSERT(root != NULL && schema != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(root, "model")->valuestring, "gpt-test");
    const cJSON *msgs = cJSON_GetObjectItem(root, "messages");
    ASSERT_EQ(cJSON_GetArraySize(msgs), 2);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "system");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "role")->valuestring, "user");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content")->valuestring, text);
    const cJSON *rf = cJSON_GetObjectItem(root, "response_format");
    const cJSON *js = cJSON_GetObjectItem(rf, "json_schema");
    ASSERT_STR_EQ(cJSON_GetObjectItem(rf, "type")->valuestring, "json_schema");
    ASSERT_STR_EQ(cJSON_GetObjectItem(js, "name")->valuestring, ONBOARD_SCHEMA_NAME);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(js, "strict")));
    ASSERT(cJSON_Compare(cJSON_GetObjectItem(js, "schema"), schema, true));
    cJSON_Delete(schema);
    cJSON_Delete(root);
    free(body);
}

TEST(onboard_schema_is_strict)
{
    cJSON *schema = cJSON_Parse(onboard_schema_json);
    ASSERT(schema != NULL);
    ASSERT(strict_schema(schema));
    const cJSON *req = cJSON_GetObjectItem(schema, "required");
    ASSERT_EQ(cJSON_GetArraySize(req), 4);
    cJSON_Delete(schema);
}

TEST(onboard_tenant_json_good)
{
    char err[ERR_LEN] = "", *out = NULL;
    sbuf_t notes = SBUF_INIT;
    ASSERT_EQ(convert_sq(GOOD_ANSWER, NULL, &out, &notes, err), 0);
    ASSERT(notes.len == 0);
    ASSERT(out[strlen(out) - 1] == '\n');
    cJSON *t = cJSON_Parse(out);
    ASSERT(t != NULL);
    const cJSON *co = cJSON_GetObjectItem(t, "company");
    ASSERT_STR_EQ(cJSON_GetObjectItem(co, "name")->valuestring, "Acme Plumbing");
    ASSERT_STR_EQ(cJSON_GetObjectItem(co, "timezone")->valuestring, "America/Chicago");
    ASSERT_STR_EQ(cJSON_GetObjectItem(t, "brief")->valuestring,
                  "A family plumber in Austin since 1998.");
    ASSERT_STR_EQ(cJSON_GetObjectItem(t, "publicKey")->valuestring, test_keys.public_key);
    ASSERT_STR_EQ(cJSON_GetObjectItem(t, "apiSecret")->valuestring, test_keys.api_secret);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(t, "allowedOrigins")), 0);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(t, "phoneNumbers")), 0);
    const cJSON *mon = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "hours"), "mon");
    ASSERT_STR_EQ(cJSON_GetArrayItem(mon, 0)->valuestring, "08:00"); /* from "8:00" */

    /* The 2.2 part is what the service's parser reads. */
    static const char *const tenant_only[] = {"publicKey", "apiSecret", "allowedOrigins",
                                              "phoneNumbers"};
    for (size_t i = 0; i < ARRAY_LEN(tenant_only); i++)
        cJSON_DeleteItemFromObject(t, tenant_only[i]);
    char *plain = cJSON_PrintUnformatted(t);
    agentcfg_t ac;
    ASSERT_EQ(agentcfg_parse(&ac, plain, strlen(plain), NULL, err, sizeof(err)), 0);
    ASSERT_EQ(ac.n_services, 2);
    ASSERT_STR_EQ(ac.services[0].name, "Drain cleaning");
    ASSERT_EQ(ac.services[0].duration_min, 60);
    ASSERT_STR_EQ(ac.services[0].price, "$120-200");
    ASSERT_EQ(ac.services[1].duration_min, 180);
    ASSERT_STR_EQ(ac.services[1].price, "");
    ASSERT(ac.hours[0].open && ac.hours[0].open_min == 8 * 60 && ac.hours[0].close_min == 18 * 60);
    ASSERT(!ac.hours[2].open && !ac.hours[6].open);
    ASSERT(ac.hours[4].open && ac.hours[4].open_min == 7 * 60 + 30);
    ASSERT_EQ(ac.hours[4].close_min, 24 * 60);
    agentcfg_free(&ac);
    free(plain);
    cJSON_Delete(t);
    sbuf_destroy(&notes);
    free(out);
}

TEST(onboard_tenant_json_defaults)
{
    char err[ERR_LEN] = "", *out = NULL;
    sbuf_t notes = SBUF_INIT;
    char *a = good_with("'timezone': 'America", "}, 'services'", "'timezone': ''");
    char *b = good_with("'brief': '", "}", "'brief': ' '");

    ASSERT_EQ(convert_sq(a, NULL, &out, &notes, err), 0);
    ASSERT_STR_CONTAINS(out, "\"timezone\":\t\"UTC\"");
    ASSERT_STR_CONTAINS(notes.data, "company.timezone");
    free(out);

    sbuf_reset(&notes);
    ASSERT_EQ(convert_sq(b, "  The PDF's own words.\n", &out, &notes, err), 0);
    ASSERT_STR_CONTAINS(out, "\"brief\":\t\"The PDF's own words.\"");
    ASSERT_STR_CONTAINS(notes.data, "brief:");
    free(out);

    ASSERT_EQ(convert_sq(b, NULL, &out, NULL, err), -EINVAL);
    ASSERT_STR_CONTAINS(err, "brief: the model gave no brief");
    free(a);
    free(b);
    sbuf_destroy(&notes);
}

TEST(onboard_tenant_json_off_schema)
{
    refused("[]", "(top level): expected an object, got an array");
    refused("{'company': {'name': 'x'}}", "company.phone: required key is missing");
    refused_with("'brief'", "}", "'brief': 'b', 'extra': 1", "extra: unknown key");
    refused_with("'brief'", "}", "'brief': 'b', 'brief': 'c'", "brief: duplicate key");
    refused_with("'duration_min': 60", ",", "'duration_min': '60'",
                 "services[0].duration_min: expected an integer, got a string");
    refused_with("'duration_min': 60", ",", "'duration_min': 2.5",
                 "services[0].duration_min: expected an integer, got a number");
    refused_with("'duration_min': 60", ",", "'duration_min': 1e12", "expected an integer");
    refused_with("'wed': null", ",", "'wed': '08:00-18:00'",
                 "hours.wed: expected an object or a null, got a string");
    refused_with("'wed': null", ",", "'wed': {'open': '08:00'}",
                 "hours.wed.close: required key is missing");
    refused_with("'services': [", "]", "'services': [7", "services[0]: expected an object");
    refused_with("'services': ", ", 'hours'", "'services': {}",
                 "services: expected an array, got an object");
}

TEST(onboard_tenant_json_not_a_config)
{
    refused_with("'tue': {'open': '08:00'", "}", "'tue': {'open': '9am', 'close': '17:00'",
                 "hours.tue.open: expected a time \"HH:MM\", got \"9am\"");
    refused_with("'tue': {'open': '08:00'", "}", "'tue': {'open': '08:00', 'close': '24:30'",
                 "hours.tue.close");
    refused_with("'tue': {'open': '08:00'", "}", "'tue': {'open': '18:00', 'close': '08:00'",
                 "the opening time must come first");
    refused_with("'duration_min': 60", ",", "'duration_min': 0",
                 "config: services[0].duration_min: expected a whole number 5..1440");
    refused_with("'Water heater install'", ",", "'Drain cleaning'", "duplicate service name");
    refused_with("'email': 'hello", "',", "'email': 'nobody", "company.email");
    refused_with("'name': ' Acme Plumbing '", ",", "'name': '  '", "company.name");
}

TEST(onboard_tenant_json_bad_responses)
{
    char err[ERR_LEN], *out = NULL;
    struct {
        const char *body;
        const char *want;
    } cases[] = {
        {"", "not a chat completion"},
        {"{\"error\": {\"message\": \"x\"}}", "not a chat completion"},
        {"{\"choices\": []}", "not a chat completion"},
        {"{\"choices\": [{\"message\": {\"content\": \"{\\\"company\\\"\"}}]}",
         "model output is not JSON"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        ASSERT_EQ(onboard_tenant_json(cases[i].body, strlen(cases[i].body), &test_keys, NULL, &out,
                                      NULL, err, sizeof(err)),
                  -EINVAL);
        ASSERT_STR_CONTAINS(err, cases[i].want);
        ASSERT(out == NULL);
    }
    char *answer = dq(GOOD_ANSWER);
    char *r = completion(NULL, NULL, "I can't help with that.\n");
    ASSERT_EQ(onboard_tenant_json(r, strlen(r), &test_keys, NULL, &out, NULL, err, sizeof(err)),
              -EINVAL);
    ASSERT_STR_CONTAINS(err, "the model refused: I can't help with that.?");
    free(r);
    r = completion(answer, "length", NULL);
    ASSERT_EQ(onboard_tenant_json(r, strlen(r), &test_keys, NULL, &out, NULL, err, sizeof(err)),
              -EINVAL);
    ASSERT_STR_CONTAINS(err, "cut short");
    free(r);
    r = completion(NULL, NULL, NULL);
    ASSERT_EQ(onboard_tenant_json(r, strlen(r), &test_keys, NULL, &out, NULL, err, sizeof(err)),
              -EINVAL);
    ASSERT_STR_CONTAINS(err, "no text content");
    free(r);
    free(answer);
}

TEST(onboard_http_error_message)
{
    char err[ERR_LEN];
    const char *body = "{\"error\":{\"message\":\"Incorrect API key provided.\",\"code\":\"x\"}}";
    onboard_http_error(401, body, strlen(body), err, sizeof(err));
    ASSERT_STR_EQ(err, "HTTP 401: Incorrect API key provided.");
    const char *html = "<html>Bad\ngateway</html>";
    onboard_http_error(502, html, strlen(html), err, sizeof(err));
    ASSERT_STR_EQ(err, "HTTP 502: <html>Bad?gateway</html>");
    body = "{\"error\":{\"message\":\"Caf\xc3\xa9 \xff\x01 ok\"}}";
    onboard_http_error(400, body, strlen(body), err, sizeof(err));
    ASSERT_STR_EQ(err, "HTTP 400: Caf\xc3\xa9 ?? ok");
    onboard_http_error(500, NULL, 0, err, sizeof(err));
    ASSERT_STR_EQ(err, "HTTP 500: (empty body)");
}

TEST(onboard_tenant_ids)
{
    ASSERT(onboard_tenant_id_ok("acme"));
    ASSERT(onboard_tenant_id_ok("a"));
    ASSERT(onboard_tenant_id_ok("bright-smile-2"));
    ASSERT(onboard_tenant_id_ok("0123456789012345678901234567890123456789"));
    ASSERT(!onboard_tenant_id_ok("01234567890123456789012345678901234567890"));
    ASSERT(!onboard_tenant_id_ok(""));
    ASSERT(!onboard_tenant_id_ok("Acme"));
    ASSERT(!onboard_tenant_id_ok("a_b"));
    ASSERT(!onboard_tenant_id_ok("../x"));
    ASSERT(!onboard_tenant_id_ok("a.json"));
}

TEST(onboard_keys_are_random)
{
    onboard_keys_t a, b;
    onboard_keys_generate(&a);
    onboard_keys_generate(&b);
    ASSERT_EQ(strlen(a.public_key), 3 + 32);
    ASSERT_EQ(strlen(a.api_secret), 3 + 64);
    ASSERT(strncmp(a.public_key, "pk_", 3) == 0 && strncmp(a.api_secret, "sk_", 3) == 0);
    ASSERT_EQ(strspn(a.public_key + 3, "0123456789abcdef"), 32);
    ASSERT_EQ(strspn(a.api_secret + 3, "0123456789abcdef"), 64);
    ASSERT(strcmp(a.public_key, b.public_key) != 0);
    ASSERT(strcmp(a.api_secret, b.api_secret) != 0);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[256];
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return xstrdup(buf);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

TEST(onboard_write_never_over_a_file_without_force)
{
    char dir[] = "/tmp/test_onboard.XXXXXX", path[256], err[ERR_LEN];
    struct stat st;
    ASSERT(mkdtemp(dir) != NULL);
    ASSERT_EQ(onboard_path(path, sizeof(path), dir, "acme"), 0);

    ASSERT_EQ(onboard_write(dir, "acme", "{\"v\": 1}\n", false, err, sizeof(err)), 0);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    char *text = read_all(path);
    ASSERT_STR_EQ(text, "{\"v\": 1}\n");
    free(text);

    ASSERT_EQ(onboard_write(dir, "acme", "{\"v\": 2}\n", false, err, sizeof(err)), -EEXIST);
    ASSERT_STR_CONTAINS(err, "already exists");
    text = read_all(path);
    ASSERT_STR_EQ(text, "{\"v\": 1}\n");
    free(text);
    ASSERT_EQ(count_entries(dir), 1); /* no temporary file left behind */

    ASSERT_EQ(onboard_write(dir, "acme", "{\"v\": 3}\n", true, err, sizeof(err)), 0);
    text = read_all(path);
    ASSERT_STR_EQ(text, "{\"v\": 3}\n");
    free(text);
    ASSERT_EQ(count_entries(dir), 1);

    ASSERT_EQ(onboard_write(dir, "../acme", "{}", true, err, sizeof(err)), -EINVAL);
    unlink(path);
    ASSERT_EQ(rmdir(dir), 0);
    ASSERT_EQ(onboard_write(dir, "acme", "{}", false, err, sizeof(err)), -ENOENT);
    ASSERT_STR_CONTAINS(err, dir);
}
