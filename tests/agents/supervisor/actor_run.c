/*
 * A supervisor run (agents/supervisor/supervisor.c) started by the real pool (suppool.c) or
 * by supervisor_run_spawn() for a probe pool, on the fake network and clock (SPEC 7, 14 "Tool
 * calls"): the Chat Completions request, a built-in tool call through the store, the nested
 * tool.call events and the answer in order, the run's deadline, cancellation, and the references
 * a run gives back when it stops.
 */
#include <stdlib.h>
#include <string.h>

#include "agents/supervisor/supervisor.h"
#include "agents/supervisor/supervisor_int.h"
#include "tests/fakes/harness.h"

#define COOKIE       7
#define PARENT_CALL  "call_parent_1"
#define SESSION_ID   "sess_1"
#define CONTEXT      "Book a haircut tomorrow at 10:00 for Ann, 555-0100."
#define RUN_MS       15000
#define SHORT_RUN_MS 2000
#define CHAT_URL     "https://api.openai.com/v1/chat/completions"
#define BOOKING_OUT  "{\"confirmationNumber\":\"BK-1\"}"
#define ANSWER       "You're booked for 10:00 tomorrow, confirmation BK-1."
#define BOOK_ARGS                                                                                  \
    "{\\\"date\\\":\\\"2026-12-02\\\",\\\"time\\\":\\\"10:00\\\",\\\"customerName\\\":"            \
    "\\\"Ann\\\","                                                                                 \
    "\\\"customerPhone\\\":\\\"555-0100\\\",\\\"serviceType\\\":\\\"haircut\\\"}"
#define TOOL_CALL_BODY                                                                             \
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"        \
    "\"id\":\"tc_1\",\"type\":\"function\",\"function\":{\"name\":\"bookAppointment\","            \
    "\"arguments\":\"" BOOK_ARGS "\"}}]}}]}"
#define ANSWER_BODY                                                                                \
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"" ANSWER "\"}}]}"

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Whether the request body offers the tool called name. */
static bool offers(const cJSON *body, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(body, "tools"))
    {
        const char *n = str_of(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* Asks the pool (real or probe) for a voice run with a deadline run_ms from now. */
static void ask(actor_t *pool, probe_t *observer, uint64_t run_ms)
{
    cJSON *history = cJSON_Parse("[{\"role\":\"user\",\"content\":\"Hi, this is Ann.\"},"
                                 "{\"role\":\"assistant\",\"content\":\"Hello Ann!\"}]");
    supervisor_run(pool, &observer->actor, COOKIE, PARENT_CALL, SESSION_ID, history,
                   xstrdup(CONTEXT), clock_now_ns() + run_ms * NS_PER_MS, SURFACE_VOICE, NULL);
}

/* The next request to Chat Completions, checked for what every request carries. */
static const fake_net_call_t *next_request(uint64_t *at, uint32_t timeout_ms)
{
    const fake_net_call_t *f = fake_net_wait(at, FNET_FETCH, 0);
    ASSERT(f != NULL);
    ASSERT_STR_EQ(f->method, "POST");
    ASSERT_STR_EQ(f->url, CHAT_URL);
    ASSERT_STR_EQ(f->bearer, HARNESS_API_KEY);
    ASSERT_EQ(f->timeout_ms, timeout_ms); /* what is left of the run's deadline */
    ASSERT(f->json != NULL);
    ASSERT_STR_EQ(str_of(f->json, "model"), "gpt-4o-mini");
    ASSERT(offers(f->json, "bookAppointment"));
    ASSERT(offers(f->json, "checkAvailability"));
    ASSERT(offers(f->json, "lookupCustomer"));
    ASSERT_STR_EQ(str_of(f->json, "tool_choice"), "auto");
    return f;
}

static tool_event_msg_t *next_event(probe_t *observer, const char *status)
{
    msg_t *m = probe_next(observer);
    ASSERT_EQ(m->type, SUP_MSG_TOOL_EVENT);
    tool_event_msg_t *e = (tool_event_msg_t *)m;
    ASSERT_EQ(e->cookie, COOKIE);
    ASSERT_STR_EQ(e->status, status);
    ASSERT_STR_EQ(e->call_id, "tc_1");
    ASSERT_STR_EQ(e->parent_call_id, PARENT_CALL);
    ASSERT_STR_EQ(e->name, "bookAppointment");
    ASSERT_STR_EQ(e->via, "builtin");
    return e;
}

TEST(supervisor_run_calls_a_builtin_tool_then_answers)
{
    harness_start(NULL);
    probe_t *store = probe_new("store", LANE_TOOLS);
    probe_t *observer = probe_new("observer", LANE_REALTIME);
    actor_t *pool = supervisor_pool_spawn(&store->actor);
    ASSERT(pool != NULL);
    ask(pool, observer, RUN_MS);

    /* Round 1: the system prompt, the conversation so far, the caller's context, every tool. */
    uint64_t at = 0;
    const fake_net_call_t *f1 = next_request(&at, RUN_MS);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(f1->json, "messages");
    ASSERT_EQ(cJSON_GetArraySize(msgs), 4);
    const cJSON *sys = cJSON_GetArrayItem(msgs, 0);
    ASSERT_STR_EQ(str_of(sys, "role"), "system");
    ASSERT_STR_CONTAINS(str_of(sys, "content"), "<company_brief>");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(msgs, 1), "content"), "Hi, this is Ann.");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(msgs, 2), "role"), "assistant");
    const cJSON *user = cJSON_GetArrayItem(msgs, 3);
    ASSERT_STR_EQ(str_of(user, "role"), "user");
    ASSERT_STR_CONTAINS(str_of(user, "content"), CONTEXT);
    fake_net_fetch_done(f1->id, 200, TOOL_CALL_BODY, "");

    /* The booking tool runs in the store, announced to the observer first. */
    tool_event_msg_t *started = next_event(observer, "started");
    ASSERT_EQ(started->duration_ms, -1);
    ASSERT(started->output == NULL);
    ASSERT_STR_CONTAINS(started->arguments, "\"customerName\":\"Ann\"");
    msg_free(&started->hdr);
    tool_call_msg_t *call = PROBE_TAKE(store, tool_call_msg_t, TOOL_MSG_CALL);
    ASSERT_STR_EQ(call->name, "bookAppointment");
    ASSERT_STR_EQ(str_of(call->args, "customerPhone"), "555-0100");
    ASSERT_STR_EQ(call->session_id, SESSION_ID);
    ASSERT_EQ(call->timeout_ms, RUN_MS); /* the smaller of its own and the run's */
    ASSERT_EQ(call->now_ms, FAKE_CLOCK_WALL_MS);
    ASSERT(call->reply_to != pool); /* the run itself */
    actor_send(call->reply_to, &tool_result_new(call->cookie, false, BOOKING_OUT)->hdr);
    msg_free(&call->hdr);

    tool_event_msg_t *done = next_event(observer, "completed");
    ASSERT_STR_EQ(done->output, BOOKING_OUT);
    ASSERT_GE(done->duration_ms, 0);
    msg_free(&done->hdr);

    /* Round 2: the model reads the tool's output, and answers. */
    const fake_net_call_t *f2 = next_request(&at, RUN_MS);
    msgs = cJSON_GetObjectItemCaseSensitive(f2->json, "messages");
    ASSERT_EQ(cJSON_GetArraySize(msgs), 6);
    const cJSON *asked = cJSON_GetArrayItem(msgs, 4);
    ASSERT_STR_EQ(str_of(asked, "role"), "assistant");
    ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(asked, "tool_calls")));
    const cJSON *tool = cJSON_GetArrayItem(msgs, 5);
    ASSERT_STR_EQ(str_of(tool, "role"), "tool");
    ASSERT_STR_EQ(str_of(tool, "tool_call_id"), "tc_1");
    ASSERT_STR_EQ(str_of(tool, "content"), BOOKING_OUT);
    fake_net_fetch_done(f2->id, 200, ANSWER_BODY, "");

    msg_t *m = probe_next(observer);
    ASSERT_EQ(m->type, TOOL_MSG_RESULT);
    tool_result_msg_t *res = (tool_result_msg_t *)m;
    ASSERT_EQ(res->cookie, COOKIE);
    ASSERT(!res->is_error);
    ASSERT_STR_EQ(res->output, ANSWER);
    msg_free(m);

    /* Done: the run has let go of the observer and the store; the pool keeps the store. */
    probe_wait_refs(observer, 1);
    probe_wait_refs(store, 2);
    ASSERT_EQ(fake_net_count(FNET_FETCH, 0), 2);
    ASSERT_EQ(probe_count(observer, 0), 0); /* exactly one answer */
    actor_unref(pool);
    probe_wait_refs(store, 1);
    probe_free(observer);
    probe_free(store);
    harness_stop();
}

TEST(supervisor_run_deadline_answers_the_timeout_fallback_and_cancels_the_fetch)
{
    harness_start(NULL);
    probe_t *store = probe_new("store", LANE_TOOLS);
    probe_t *observer = probe_new("observer", LANE_REALTIME);
    probe_t *pool = probe_new("pool", LANE_TOOLS);
    ask(&pool->actor, observer, SHORT_RUN_MS);
    supervisor_req_msg_t *q = PROBE_TAKE(pool, supervisor_req_msg_t, SUP_MSG_RUN);
    actor_t *run;
    ASSERT(supervisor_run_spawn(q, &pool->actor, &store->actor, &run));
    msg_free(&q->hdr);

    uint64_t at = 0;
    const fake_net_call_t *f = next_request(&at, SHORT_RUN_MS);
    uint64_t fetch_id = f->id;

    /* Nothing before the deadline, ... */
    fake_clock_advance_ms(SHORT_RUN_MS - 1);
    fake_clock_settle();
    ASSERT_EQ(probe_count(observer, 0), 0);
    ASSERT_EQ(fake_net_count(FNET_FETCH_CANCEL, 0), 0);

    /* ... then the spoken timeout fallback, and the request is abandoned. */
    fake_clock_advance_ms(2);
    tool_result_msg_t *res = PROBE_TAKE(observer, tool_result_msg_t, TOOL_MSG_RESULT);
    ASSERT_EQ(res->cookie, COOKIE);
    ASSERT(res->is_error);
    ASSERT(res->timeout);
    ASSERT_STR_EQ(res->output, SUP_SAY_TIMEOUT);
    ASSERT_STR_EQ(res->reason, SUP_REASON_TIMEOUT);
    msg_free(&res->hdr);
    const fake_net_call_t *cancel = fake_net_wait(&at, FNET_FETCH_CANCEL, 0);
    ASSERT(cancel != NULL);
    ASSERT_EQ(cancel->id, fetch_id);

    /* The pool hears the run is done; the run gives back its references when it stops. */
    run_done_msg_t *d = PROBE_TAKE(pool, run_done_msg_t, SUP_MSG_RUN_DONE);
    ASSERT(d->run == run);
    msg_free(&d->hdr);
    actor_unref(run); /* the pool's reference, which the probe pool does not keep */
    probe_wait_refs(observer, 1);
    probe_wait_refs(store, 1);
    probe_wait_refs(pool, 1);
    ASSERT_EQ(probe_count(observer, 0), 0);
    probe_free(pool);
    probe_free(observer);
    probe_free(store);
    harness_stop();
}

TEST(supervisor_cancel_stops_the_run_without_an_answer)
{
    harness_start(NULL);
    probe_t *store = probe_new("store", LANE_TOOLS);
    probe_t *observer = probe_new("observer", LANE_REALTIME);
    actor_t *pool = supervisor_pool_spawn(&store->actor);
    ASSERT(pool != NULL);
    ask(pool, observer, RUN_MS);
    uint64_t at = 0;
    uint64_t fetch_id = next_request(&at, RUN_MS)->id;

    supervisor_cancel(pool, &observer->actor, COOKIE);
    const fake_net_call_t *cancel = fake_net_wait(&at, FNET_FETCH_CANCEL, 0);
    ASSERT(cancel != NULL);
    ASSERT_EQ(cancel->id, fetch_id);
    probe_wait_refs(observer, 1); /* the run and the cancel message are gone */
    probe_wait_refs(store, 2);
    ASSERT_EQ(probe_count(observer, 0), 0);
    actor_unref(pool);
    probe_free(observer);
    probe_free(store);
    harness_stop();
}
