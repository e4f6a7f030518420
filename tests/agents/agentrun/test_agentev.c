/*
 * Tests of agents/agentev: the /ws/agent events built from a run's messages (SPEC 5.4), among
 * them the step_update `screenshot` from a tool that returned an image (end to end that needs
 * an image-returning MCP tool, issue 5), and of wsproto's bare {"answer"} form.
 */
#include <string.h>

#include "agents/agentrun/agentev.h"
#include "net/wsproto.h"
#include "tests/runner.h"

#define TINY_PNG_B64                                                                               \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+"                                \
    "M9QDwADhgGAWjR9awAAAABJRU5ErkJggg"                                                            \
    "=="

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static tool_event_msg_t event(const char *name, const char *status, char *args, char *output)
{
    tool_event_msg_t e = {.duration_ms = 12};
    strcpy(e.name, name);
    strcpy(e.status, status);
    strcpy(e.via, "mcp:demo");
    e.arguments = args;
    e.output = output;
    return e;
}

TEST(agentev_step_update_shape)
{
    tool_event_msg_t e = event("checkAvailability", "completed",
                               "{\"date\":\"2026-12-07\",\"serviceType\":\"Oil change\"}",
                               "{\"slots\":[\"08:00\"]}");
    cJSON *ev = agentev_step_update("run-7", 3, &e);
    ASSERT_STR_EQ(str_of(ev, "type"), "step_update");
    ASSERT_STR_EQ(str_of(ev, "runId"), "run-7");
    ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(ev, "stepNumber")->valueint, 3);
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(ev, "action");
    ASSERT_STR_EQ(str_of(action, "type"), "tool_call");
    ASSERT_STR_EQ(str_of(action, "name"), "checkAvailability");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(action, "arguments");
    ASSERT(cJSON_IsObject(args));
    ASSERT_STR_EQ(str_of(args, "date"), "2026-12-07");
    ASSERT_STR_EQ(str_of(ev, "explanation"), "{\"slots\":[\"08:00\"]}");
    ASSERT_STR_EQ(str_of(ev, "status"), "completed");
    ASSERT(cJSON_GetObjectItemCaseSensitive(ev, "screenshot") == NULL);
    cJSON_Delete(ev);
}

TEST(agentev_step_update_screenshot)
{
    tool_event_msg_t e = event("demo__get-tiny-image", "completed", "{}", "an image");
    e.image_b64 = TINY_PNG_B64;
    cJSON *ev = agentev_step_update("r", 1, &e);
    ASSERT_STR_EQ(str_of(ev, "screenshot"), TINY_PNG_B64);
    cJSON_Delete(ev);
    e.image_b64 = "";
    ev = agentev_step_update("r", 1, &e);
    ASSERT(cJSON_GetObjectItemCaseSensitive(ev, "screenshot") == NULL);
    cJSON_Delete(ev);
}

TEST(agentev_step_update_failures_and_raw_arguments)
{
    tool_event_msg_t e = event("bookAppointment", "failed", "{\"date\": tomorrow",
                               "{\"error\":{\"code\":\"invalid_arguments\"}}");
    cJSON *ev = agentev_step_update("r", 2, &e);
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ev, "action"), "arguments");
    ASSERT_STR_EQ(cJSON_IsString(args) ? args->valuestring : NULL, "{\"date\": tomorrow");
    ASSERT_STR_EQ(str_of(ev, "explanation"),
                  "failed: {\"error\":{\"code\":\"invalid_arguments\"}}");
    cJSON_Delete(ev);
}

TEST(agentev_explanation_is_cut_on_a_character)
{
    /* 1001 two-byte characters: cut to 1000 of them plus an ellipsis, never mid-character. */
    char out[2 * (AGENTEV_EXPLANATION_MAX_CHARS + 1) + 1];
    for (int i = 0; i <= AGENTEV_EXPLANATION_MAX_CHARS; i++)
        memcpy(out + 2 * i, "\xc3\xa9", 2);
    out[sizeof(out) - 1] = '\0';
    tool_event_msg_t e = event("t", "completed", "{}", out);
    cJSON *ev = agentev_step_update("r", 1, &e);
    const char *x = str_of(ev, "explanation");
    ASSERT_EQ(strlen(x), 2 * AGENTEV_EXPLANATION_MAX_CHARS + strlen("…"));
    ASSERT(strcmp(x + 2 * AGENTEV_EXPLANATION_MAX_CHARS, "…") == 0);
    cJSON_Delete(ev);
}

TEST(agentev_completion_question_authentication)
{
    cJSON *ev = agentev_completion("r1", "All done.", NULL, NULL);
    char *s = cJSON_PrintUnformatted(ev);
    ASSERT_STR_EQ(s, "{\"type\":\"completion\",\"runId\":\"r1\",\"status\":\"success\","
                     "\"result\":\"All done.\",\"commands\":[]}");
    cJSON_free(s);
    cJSON_Delete(ev);
    ev = agentev_completion("r1", "ignored", "iteration_limit", NULL);
    s = cJSON_PrintUnformatted(ev);
    ASSERT_STR_EQ(s, "{\"type\":\"completion\",\"runId\":\"r1\",\"status\":\"failed\","
                     "\"error\":\"iteration_limit\"}");
    cJSON_free(s);
    cJSON_Delete(ev);
    ev = agentev_question("r1", "Which day?");
    s = cJSON_PrintUnformatted(ev);
    ASSERT_STR_EQ(s, "{\"type\":\"question\",\"runId\":\"r1\",\"question\":\"Which day?\"}");
    cJSON_free(s);
    cJSON_Delete(ev);
    ev = agentev_authentication(NULL);
    s = cJSON_PrintUnformatted(ev);
    ASSERT_STR_EQ(s, "{\"type\":\"authentication\",\"status\":\"success\"}");
    cJSON_free(s);
    cJSON_Delete(ev);
    ev = agentev_authentication("timeout");
    s = cJSON_PrintUnformatted(ev);
    ASSERT_STR_EQ(s, "{\"type\":\"authentication\",\"status\":\"failed\",\"error\":\"timeout\"}");
    cJSON_free(s);
    cJSON_Delete(ev);
}

TEST(wsproto_untyped_objects_take_the_route_type)
{
    static const char *const types[] = {"answer", NULL};
    cJSON *j = NULL;
    const char *bare = "{\"answer\":\"blue\"}";
    ASSERT_EQ(wsp_classify_untyped(bare, strlen(bare), types, "answer", &j), WSP_EVENT);
    ASSERT_STR_EQ(str_of(j, "type"), "answer");
    ASSERT_STR_EQ(str_of(j, "answer"), "blue");
    cJSON_Delete(j);
    /* Without the route's word it stays an invalid event; a non-string type is never taken. */
    ASSERT_EQ(wsp_classify(bare, strlen(bare), types, &j), WSP_INVALID_EVENT);
    const char *typed = "{\"type\":7,\"answer\":\"x\"}";
    ASSERT_EQ(wsp_classify_untyped(typed, strlen(typed), types, "answer", &j), WSP_INVALID_EVENT);
    ASSERT_EQ(wsp_classify_untyped("[1]", 3, types, "answer", &j), WSP_INVALID_EVENT);
    ASSERT(j == NULL);
}
