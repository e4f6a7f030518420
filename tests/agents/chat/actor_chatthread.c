/*
 * A chat thread actor (agents/chat/chatthread.c) on the fake network and clock, its registry,
 * supervisor pool and store played by probes (SPEC 5.3, 14 "Chat"): the thread is opened in the
 * store on the first attach and its history sent to every connection; a user message is stored,
 * fanned out, and answered by one supervisor run at a time, for the thread's tenant; a
 * connection of another user, or of the same userId of another tenant, is closed 1008
 * "forbidden"; the thread reports idle once nobody is left and nothing runs.
 */
#include <stdlib.h>
#include <string.h>

#include "agents/chat/chat_int.h"
#include "agents/supervisor/supervisor.h"
#include "tests/fakes/harness.h"

#define THREAD_ID   "thr_1"
#define OWNER       "user_ann"
#define STRANGER    "user_bob"
#define RUN_MS      120000 /* CHAT_RUN_DEADLINE_MS */
#define HISTORY_MAX 50     /* CHAT_HISTORY_MAX */
#define EARLIER                                                                                    \
    "[{\"role\":\"user\",\"text\":\"Hello\",\"messageId\":\"msg_a\",\"at\":1},"                    \
    "{\"role\":\"assistant\",\"text\":\"Hi! How can I help?\",\"messageId\":\"msg_b\",\"at\":2}]"

typedef struct rig {
    probe_t *registry, *pool, *store;
    chat_deps_t deps;
    actor_t *thread; /* the registry's reference, held by the test */
} rig_t;

static void rig_start(rig_t *r)
{
    harness_start(NULL);
    r->registry = probe_new("registry", LANE_TOOLS);
    r->pool = probe_new("pool", LANE_TOOLS);
    r->store = probe_new("store", LANE_TOOLS);
    r->deps = (chat_deps_t){.gate = NULL, .pool = &r->pool->actor, .store = &r->store->actor};
    r->thread = chatthread_spawn(THREAD_ID, &r->registry->actor, &r->deps);
    ASSERT(r->thread != NULL);
}

static void rig_stop(rig_t *r)
{
    actor_unref(r->thread);
    probe_wait_refs(r->store, 1); /* the thread stopped and let go of what it held */
    probe_wait_refs(r->pool, 1);
    probe_wait_refs(r->registry, 1);
    probe_free(r->registry);
    probe_free(r->pool);
    probe_free(r->store);
    harness_stop();
}

/* A tenant snapshot of its own (not in the registry): only its id is read here. */
static tenant_t *other_tenant(const char *id)
{
    tenant_t *t = xcalloc(1, sizeof(*t));
    t->refs = 1;
    str_copy(t->id, id, sizeof(t->id));
    return t;
}

/* A connection of user of tenant attaches (tenant NULL: the one tenant, `default`). */
static void attach_of(rig_t *r, conn_id_t conn, const char *user, tenant_t *tenant)
{
    tenant_t *t = tenant ? tenant : tenants_get(TENANT_DEFAULT_ID);
    actor_send(r->thread, &chat_attach_new(CHAT_MSG_ATTACH, conn, user, t)->hdr);
    if (tenant == NULL)
        tenant_unref(t);
}

static void attach(rig_t *r, conn_id_t conn, const char *user)
{
    attach_of(r, conn, user, NULL);
}

static void detach(rig_t *r, conn_id_t conn)
{
    actor_send(r->thread, &chat_attach_new(CHAT_MSG_DETACH, conn, NULL, NULL)->hdr);
}

/* The store opens the thread for its first attacher (of the default tenant) and answers with
 * history (JSON text) and the owner's tenant. */
static void store_answers_open_of(rig_t *r, const char *user, const char *owner,
                                  const char *owner_tenant, const char *history)
{
    store_chat_msg_t *o = PROBE_TAKE(r->store, store_chat_msg_t, STORE_MSG_CHAT_OPEN);
    ASSERT_STR_EQ(o->thread_id, THREAD_ID);
    ASSERT_STR_EQ(o->user_id, user);
    ASSERT_STR_EQ(o->tenant, TENANT_DEFAULT_ID);
    ASSERT_EQ(o->limit, HISTORY_MAX);
    ASSERT(o->reply_to == r->thread);
    actor_send(
        o->reply_to,
        &store_chat_thread_new(o->cookie, 0, owner, owner_tenant, cJSON_Parse(history))->hdr);
    msg_free(&o->hdr);
}

static void store_answers_open(rig_t *r, const char *user, const char *owner, const char *history)
{
    store_answers_open_of(r, user, owner, TENANT_DEFAULT_ID, history);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The history event on conn, with n messages whose texts start with first_text. */
static void assert_history(uint64_t *at, conn_id_t conn, int n, const char *first_text)
{
    const fake_net_call_t *h = fake_net_wait_type(at, conn, "history");
    ASSERT(h != NULL);
    ASSERT_STR_EQ(str_of(h->json, "threadId"), THREAD_ID);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h->json, "messages");
    ASSERT_EQ(cJSON_GetArraySize(msgs), n);
    if (n > 0)
        ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(msgs, 0), "text"), first_text);
}

/* The next `message` event on conn: its role and text; returns its messageId. */
static const char *assert_message(uint64_t *at, conn_id_t conn, const char *role, const char *text)
{
    const fake_net_call_t *m = fake_net_wait_type(at, conn, "message");
    ASSERT(m != NULL);
    ASSERT_STR_EQ(str_of(m->json, "role"), role);
    ASSERT_STR_EQ(str_of(m->json, "text"), text);
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(m->json, "at");
    ASSERT(cJSON_IsNumber(when));
    ASSERT_EQ((long long)when->valuedouble, FAKE_CLOCK_WALL_MS);
    return str_of(m->json, "messageId");
}

static void send_message(rig_t *r, conn_id_t conn, const char *text)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"type\":\"message\",\"text\":\"%s\",\"clientMessageId\":\"cm_%s\"}", text, text);
    fake_net_post_text(r->thread, conn, json);
}

static void stored(rig_t *r, const char *role, const char *text)
{
    store_chat_msg_t *m = PROBE_TAKE(r->store, store_chat_msg_t, STORE_MSG_CHAT_MESSAGE);
    ASSERT_STR_EQ(m->thread_id, THREAD_ID);
    ASSERT_STR_EQ(m->role, role);
    ASSERT_STR_EQ(m->text, text);
    ASSERT(strncmp(m->message_id, "msg_", 4) == 0);
    ASSERT_EQ(m->at_ms, FAKE_CLOCK_WALL_MS);
    msg_free(&m->hdr);
}

static void tool_event_free(msg_t *m)
{
    tool_event_msg_t *e = (tool_event_msg_t *)m;
    free(e->arguments);
    free(e->output);
    free(e->image_b64);
    msg_block_free(e);
}

/* A run's nested tool call starting, as the supervisor reports it to its observer. */
static void send_tool_started(rig_t *r, uint64_t cookie)
{
    tool_event_msg_t *e = MSG_NEW(tool_event_msg_t, SUP_MSG_TOOL_EVENT);
    e->hdr.free_fn = tool_event_free;
    e->cookie = cookie;
    str_copy(e->call_id, "tc_1", sizeof(e->call_id));
    str_copy(e->name, "checkAvailability", sizeof(e->name));
    str_copy(e->status, "started", sizeof(e->status));
    str_copy(e->via, "builtin", sizeof(e->via));
    e->arguments = xstrdup("{\"date\":\"2026-12-02\"}");
    e->duration_ms = -1;
    actor_send(r->thread, &e->hdr);
}

/* ---- Tests ----------------------------------------------------------------------------------- */

TEST(chatthread_attach_opens_the_thread_and_sends_its_history)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c2 = fake_net_conn_id();
    attach(&r, c1, OWNER);
    store_answers_open(&r, OWNER, OWNER, EARLIER);
    uint64_t at1 = 0, at2 = 0;
    assert_history(&at1, c1, 2, "Hello");
    /* A later connection gets the history it keeps, without asking the store again. */
    attach(&r, c2, OWNER);
    assert_history(&at2, c2, 2, "Hello");
    ASSERT_EQ(probe_count(r.store, STORE_MSG_CHAT_OPEN), 0);
    rig_stop(&r);
}

TEST(chatthread_message_fans_out_runs_the_supervisor_and_posts_the_answer)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c2 = fake_net_conn_id();
    attach(&r, c1, OWNER);
    attach(&r, c2, OWNER);
    store_answers_open(&r, OWNER, OWNER, EARLIER);
    uint64_t at1 = 0, at2 = 0;
    assert_history(&at1, c1, 2, "Hello");
    assert_history(&at2, c2, 2, "Hello");

    /* The user message: stored, then to every connection, then typing. */
    send_message(&r, c1, "slots");
    stored(&r, "user", "slots");
    const char *id1 = assert_message(&at1, c1, "user", "slots");
    const char *id2 = assert_message(&at2, c2, "user", "slots");
    ASSERT_STR_EQ(id1, id2);
    const fake_net_call_t *m1 = fake_net_wait_type(&at1, c1, "typing");
    ASSERT(m1 != NULL);
    ASSERT(fake_net_wait_type(&at2, c2, "typing") != NULL);

    /* One supervisor run with the thread so far and the message as its context. */
    supervisor_req_msg_t *q = PROBE_TAKE(r.pool, supervisor_req_msg_t, SUP_MSG_RUN);
    ASSERT(q->observer == r.thread);
    ASSERT_EQ(q->surface, SURFACE_CHAT);
    ASSERT_STR_EQ(q->context, "slots");
    ASSERT_EQ(q->deadline_ns, clock_now_ns() + RUN_MS * NS_PER_MS);
    ASSERT(q->tenant != NULL);
    ASSERT_STR_EQ(q->tenant->id, TENANT_DEFAULT_ID); /* the thread's tenant */
    ASSERT_EQ(cJSON_GetArraySize(q->history), 2);    /* not the message being answered */
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(q->history, 0), "role"), "user");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(q->history, 0), "content"), "Hello");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(q->history, 1), "role"), "assistant");

    /* Its tool events and its answer go to every connection, after the user message. */
    send_tool_started(&r, q->cookie);
    const fake_net_call_t *t1 = fake_net_wait_type(&at1, c1, "tool.call");
    ASSERT(t1 != NULL);
    ASSERT_STR_EQ(str_of(t1->json, "name"), "checkAvailability");
    ASSERT_STR_EQ(str_of(t1->json, "status"), "started");
    ASSERT(fake_net_wait_type(&at2, c2, "tool.call") != NULL);
    actor_send(r.thread, &tool_result_new(q->cookie, false, "Yes, 10:00 is open.")->hdr);
    assert_message(&at1, c1, "assistant", "Yes, 10:00 is open.");
    assert_message(&at2, c2, "assistant", "Yes, 10:00 is open.");
    stored(&r, "assistant", "Yes, 10:00 is open.");
    msg_free(&q->hdr);
    rig_stop(&r);
}

TEST(chatthread_runs_one_supervisor_run_at_a_time_in_order)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c9 = fake_net_conn_id();
    attach(&r, c1, OWNER);
    store_answers_open(&r, OWNER, OWNER, "[]");
    uint64_t at = 0, at9 = 0;
    assert_history(&at, c1, 0, NULL);
    send_message(&r, c1, "first");
    send_message(&r, c1, "second");
    assert_message(&at, c1, "user", "first");
    assert_message(&at, c1, "user", "second");
    /* A barrier: this attach is handled after both messages' turns. */
    attach(&r, c9, STRANGER);
    FAKE_ASSERT_CLOSE(fake_net_wait(&at9, FNET_WS_CLOSE, c9), WS_CLOSE_FORBIDDEN);
    ASSERT_EQ(probe_count(r.pool, SUP_MSG_RUN), 1);

    supervisor_req_msg_t *q1 = PROBE_TAKE(r.pool, supervisor_req_msg_t, SUP_MSG_RUN);
    ASSERT_STR_EQ(q1->context, "first");
    actor_send(r.thread, &tool_result_new(q1->cookie, false, "answer one")->hdr);
    assert_message(&at, c1, "assistant", "answer one");
    supervisor_req_msg_t *q2 = PROBE_TAKE(r.pool, supervisor_req_msg_t, SUP_MSG_RUN);
    ASSERT_STR_EQ(q2->context, "second");
    ASSERT_NE(q2->cookie, q1->cookie);
    /* The second run sees the first exchange, and not itself. */
    ASSERT_EQ(cJSON_GetArraySize(q2->history), 2);
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(q2->history, 0), "content"), "first");
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(q2->history, 1), "content"), "answer one");
    /* A late answer for the first run is dropped. */
    actor_send(r.thread, &tool_result_new(q1->cookie, false, "stale")->hdr);
    actor_send(r.thread, &tool_result_new(q2->cookie, false, "answer two")->hdr);
    assert_message(&at, c1, "assistant", "answer two");
    ASSERT_EQ(fake_net_count_type(c1, "message"), 4);
    msg_free(&q1->hdr);
    msg_free(&q2->hdr);
    rig_stop(&r);
}

TEST(chatthread_closes_another_users_connection_forbidden)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c3 = fake_net_conn_id(), c4 = fake_net_conn_id();
    /* Both attach before the store answers: the first attacher owns the thread. */
    attach(&r, c1, OWNER);
    attach(&r, c3, STRANGER);
    store_answers_open(&r, OWNER, OWNER, EARLIER);
    uint64_t at1 = 0, at3 = 0, at4 = 0;
    assert_history(&at1, c1, 2, "Hello");
    FAKE_ASSERT_CLOSE(fake_net_wait(&at3, FNET_WS_CLOSE, c3), WS_CLOSE_FORBIDDEN);
    /* What the refused connection sends is ignored. */
    send_message(&r, c3, "intrusion");
    attach(&r, c4, OWNER); /* a barrier after it */
    assert_history(&at4, c4, 2, "Hello");
    ASSERT_EQ(fake_net_count_type(c3, "history"), 0);
    ASSERT_EQ(fake_net_count_type(c1, "message"), 0);
    ASSERT_EQ(probe_count(r.store, STORE_MSG_CHAT_MESSAGE), 0);
    ASSERT_EQ(probe_count(r.pool, 0), 0);
    rig_stop(&r);
}

TEST(chatthread_reports_idle_once_the_last_connection_leaves)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c2 = fake_net_conn_id();
    attach(&r, c1, OWNER);
    attach(&r, c2, OWNER);
    store_answers_open(&r, OWNER, OWNER, EARLIER);
    detach(&r, c1);
    detach(&r, c2);
    chat_idle_msg_t *idle = PROBE_TAKE(r.registry, chat_idle_msg_t, CHAT_MSG_IDLE);
    ASSERT(idle->thread == r.thread);
    ASSERT_EQ(idle->attaches, 2);
    ASSERT_STR_EQ(idle->thread_id, THREAD_ID);
    msg_free(&idle->hdr);
    fake_clock_settle();
    ASSERT_EQ(probe_count(r.registry, CHAT_MSG_IDLE), 0); /* once, not once per detach */
    rig_stop(&r);
}

TEST(chatthread_finishes_its_run_before_reporting_idle)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c9 = fake_net_conn_id();
    attach(&r, c1, OWNER);
    store_answers_open(&r, OWNER, OWNER, "[]");
    send_message(&r, c1, "question");
    supervisor_req_msg_t *q = PROBE_TAKE(r.pool, supervisor_req_msg_t, SUP_MSG_RUN);
    detach(&r, c1);
    uint64_t at9 = 0;
    attach(&r, c9, STRANGER); /* a barrier after the detach */
    FAKE_ASSERT_CLOSE(fake_net_wait(&at9, FNET_WS_CLOSE, c9), WS_CLOSE_FORBIDDEN);
    ASSERT_EQ(probe_count(r.registry, CHAT_MSG_IDLE), 0); /* a run is still going */

    actor_send(r.thread, &tool_result_new(q->cookie, false, "the answer")->hdr);
    stored(&r, "user", "question");
    stored(&r, "assistant", "the answer"); /* stored although nobody is connected */
    chat_idle_msg_t *idle = PROBE_TAKE(r.registry, chat_idle_msg_t, CHAT_MSG_IDLE);
    ASSERT_EQ(idle->attaches, 2);
    msg_free(&idle->hdr);
    msg_free(&q->hdr);
    rig_stop(&r);
}

TEST(chatthread_closes_the_same_user_of_another_tenant_forbidden)
{
    rig_t r;
    rig_start(&r);
    conn_id_t c1 = fake_net_conn_id(), c2 = fake_net_conn_id(), c3 = fake_net_conn_id();
    tenant_t *beta = other_tenant("beta");
    /* The same userId, once of the thread's tenant and once of another. */
    attach(&r, c1, OWNER);
    attach_of(&r, c2, OWNER, beta);
    store_answers_open(&r, OWNER, OWNER, EARLIER);
    uint64_t at1 = 0, at2 = 0, at3 = 0;
    assert_history(&at1, c1, 2, "Hello");
    FAKE_ASSERT_CLOSE(fake_net_wait(&at2, FNET_WS_CLOSE, c2), WS_CLOSE_FORBIDDEN);
    ASSERT_EQ(fake_net_count_type(c2, "history"), 0);
    /* A thread another tenant opened first is not this tenant's either. */
    tenant_unref(beta);
    rig_stop(&r);

    rig_start(&r);
    attach(&r, c3, OWNER);
    store_answers_open_of(&r, OWNER, OWNER, "beta", "[]");
    FAKE_ASSERT_CLOSE(fake_net_wait(&at3, FNET_WS_CLOSE, c3), WS_CLOSE_FORBIDDEN);
    rig_stop(&r);
}
