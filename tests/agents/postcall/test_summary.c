/* The pure parts of the post-call work: the call_summary request and its check (summary.c), and
 * the search text and cursor of the calls list (querydb.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/postcall/summary.h"
#include "agents/store/store_int.h"
#include "tests/runner.h"

#define GOOD                                                                                       \
    "{\"summary\":\"s\",\"caller\":{\"name\":\"Ann\",\"phone\":null,\"email\":null},"              \
    "\"reason\":null,\"outcome\":\"booked\",\"followUp\":null,\"sentiment\":\"neutral\"}"

/* A chat.completion whose content is text. */
static char *completion(const char *text)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *choice = cJSON_CreateObject();
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "content", text);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static void expect_error(const char *content, const char *want)
{
    char err[SUMMARY_ERR_MAX] = "";
    char *body = completion(content);
    cJSON *v = summary_parse(body, NULL, err, sizeof(err));
    free(body);
    ASSERT(v == NULL);
    ASSERT_STR_CONTAINS(err, want);
}

TEST(summary_accepts_the_schema_and_fills_the_phone)
{
    char err[SUMMARY_ERR_MAX] = "";
    char *body = completion(GOOD);
    cJSON *v = summary_parse(body, "+14155550100", err, sizeof(err));
    free(body);
    ASSERT(v != NULL);
    const cJSON *phone =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "caller"), "phone");
    ASSERT_STR_EQ(phone->valuestring, "+14155550100");
    cJSON_Delete(v);
}

TEST(summary_refuses_what_breaks_the_schema)
{
    expect_error("not json", "not JSON");
    expect_error("[1]", "is not an object");
    expect_error("{\"summary\":\"s\"}", "caller is not an object");
    expect_error("{\"summary\":\"s\",\"caller\":{\"name\":null,\"phone\":null,\"email\":null},"
                 "\"reason\":null,\"outcome\":\"maybe\",\"followUp\":null,\"sentiment\":null}",
                 "outcome is not one of its values");
    expect_error("{\"summary\":\"s\",\"caller\":{\"name\":null,\"phone\":null,\"email\":null},"
                 "\"reason\":null,\"outcome\":null,\"followUp\":null,\"sentiment\":null,"
                 "\"extra\":1}",
                 "extra is not one of its keys");
    expect_error("{\"summary\":\"s\",\"caller\":{\"name\":1,\"phone\":null,\"email\":null},"
                 "\"reason\":null,\"outcome\":null,\"followUp\":null,\"sentiment\":null}",
                 "name is not a string or null");
    expect_error("{\"summary\":\"s\",\"caller\":{\"name\":null,\"phone\":null,\"email\":null},"
                 "\"outcome\":null,\"followUp\":null,\"sentiment\":null}",
                 "reason is missing");
}

TEST(summary_request_is_strict_json_schema)
{
    cJSON *call = cJSON_Parse("{\"from\":\"+1415\",\"transcript\":[{\"role\":\"user\",\"text\":"
                              "\"hi\"}],\"toolCalls\":[{\"name\":\"bookAppointment\",\"status\":"
                              "\"completed\",\"arguments\":{},\"output\":\"ok\"}]}");
    cJSON *body = summary_request("m", call);
    char *text = cJSON_PrintUnformatted(body);
    ASSERT_STR_CONTAINS(text, "\"name\":\"call_summary\",\"strict\":true");
    ASSERT_STR_CONTAINS(text, "Caller: hi");
    ASSERT_STR_CONTAINS(text, "bookAppointment (completed)");
    ASSERT_STR_CONTAINS(text, "Caller's number: +1415");
    free(text);
    cJSON_Delete(body);
    cJSON_Delete(call);
}

/* The user message of a summary request for call. */
static char *summary_input(const cJSON *call)
{
    cJSON *body = summary_request("m", call);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    char *text = strdup(cJSON_GetArrayItem(msgs, 1)->child->next->valuestring);
    cJSON_Delete(body);
    return text;
}

TEST(summary_request_of_a_long_call_is_bounded)
{
    /* 2,000 transcript lines of ~100 bytes and 500 tool calls: the request keeps the first
     * and last lines and the newest 40 tool calls, and says what it left out. */
    cJSON *call = cJSON_CreateObject();
    cJSON *lines = cJSON_AddArrayToObject(call, "transcript");
    char text[128];
    for (int i = 0; i < 2000; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "role", i % 2 ? "assistant" : "user");
        snprintf(text, sizeof(text), "line %04d %s", i,
                 "....................................................................");
        cJSON_AddStringToObject(l, "text", text);
        cJSON_AddItemToArray(lines, l);
    }
    cJSON *calls = cJSON_AddArrayToObject(call, "toolCalls");
    for (int i = 0; i < 500; i++) {
        cJSON *t = cJSON_CreateObject();
        snprintf(text, sizeof(text), "tool%03d", i);
        cJSON_AddStringToObject(t, "name", text);
        cJSON_AddStringToObject(t, "status", "completed");
        cJSON_AddStringToObject(t, "output", "ok");
        cJSON_AddItemToArray(calls, t);
    }
    char *in = summary_input(call);
    ASSERT(strlen(in) < 48 * 1024);
    ASSERT_STR_CONTAINS(in, "Caller: line 0000"); /* the start */
    ASSERT_STR_CONTAINS(in, "Agent: line 1999");  /* the end */
    ASSERT(strstr(in, "line 1000") == NULL);      /* the middle is left out, and said so */
    ASSERT_STR_CONTAINS(in, " lines not shown)\n");
    ASSERT(strstr(in, "line 0000") < strstr(in, "lines not shown"));
    ASSERT(strstr(in, "lines not shown") < strstr(in, "line 1999"));
    ASSERT_STR_CONTAINS(in, "(460 earlier tool calls not shown)\n- tool460 (completed)");
    ASSERT_STR_CONTAINS(in, "- tool499 (completed)");
    ASSERT(strstr(in, "tool459") == NULL);
    free(in);

    /* A short call is shown whole. */
    cJSON_DeleteItemFromObject(call, "toolCalls");
    while (cJSON_GetArraySize(lines) > 10)
        cJSON_DeleteItemFromArray(lines, 10);
    in = summary_input(call);
    ASSERT(strstr(in, "not shown") == NULL);
    ASSERT_STR_CONTAINS(in, "Agent: line 0009");
    free(in);
    cJSON_Delete(call);
}

TEST(querydb_search_words_are_quoted)
{
    char *q = querydb_fts_query(" brake \"pads  OR x");
    ASSERT_STR_EQ(q, "\"brake\" \"pads\" \"OR\" \"x\"");
    free(q);
    q = querydb_fts_query("  ");
    ASSERT_STR_EQ(q, "");
    free(q);
}

TEST(querydb_cursor_round_trip)
{
    int64_t at = 0, rowid = 0;
    ASSERT(querydb_parse_cursor("1764633600000.42", &at, &rowid));
    ASSERT_EQ(at, 1764633600000LL);
    ASSERT_EQ(rowid, 42);
    ASSERT(!querydb_parse_cursor("x", &at, &rowid));
    ASSERT(!querydb_parse_cursor("1.0", &at, &rowid));
    ASSERT(!querydb_parse_cursor("1.2x", &at, &rowid));
}

TEST(jobs_retry_delays_double_up_to_five_attempts)
{
    ASSERT_EQ(jobsdb_retry_delay_ms(1, 30000), 30000);
    ASSERT_EQ(jobsdb_retry_delay_ms(2, 30000), 60000);
    ASSERT_EQ(jobsdb_retry_delay_ms(4, 30000), 240000);
    ASSERT_EQ(jobsdb_retry_delay_ms(5, 30000), -1);
}
