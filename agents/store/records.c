/*
 * records: the store's front (store.h): the store_*() functions any actor calls to send the store
 * a record or a question, each building one message that owns copies of its arguments, and the
 * store's answer to a chat open. No I/O and no state: these only build and send messages, so the
 * actor unit tests link them in front of a probe standing in for the store actor (store.c).
 * Thread: any, with a reference to the store held.
 */
#include <stdlib.h>

#include "agents/store/store.h"
#include "agents/store/store_int.h"
#include "base/util.h"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void rec_free(msg_t *m)
{
    store_rec_msg_t *r = (store_rec_msg_t *)m;
    char *owned[] = {r->call_id,    r->session_id,     r->end_reason,    r->openai_session_id,
                     r->request_id, r->role,           r->text,          r->tool_call_id,
                     r->name,       r->arguments,      r->output,        r->status,
                     r->via,        r->tenant,         r->from,          r->to,
                     r->call_sid,   r->transferred_to, r->parent_call_id};
    for (size_t i = 0; i < ARRAY_LEN(owned); i++)
        free(owned[i]);
    msg_block_free(r);
}

static store_rec_msg_t *rec_new(uint32_t type, const char *call_id, int64_t at_ms)
{
    store_rec_msg_t *r = MSG_NEW(store_rec_msg_t, type);
    r->hdr.free_fn = rec_free;
    r->call_id = xstrdup(call_id ? call_id : "");
    r->at_ms = at_ms;
    return r;
}

void store_call_start(actor_t *store, const char *call_id, const char *session_id,
                      const char *tenant, int64_t started_at_ms)
{
    store_rec_msg_t *r = rec_new(STORE_MSG_CALL_START, call_id, started_at_ms);
    r->session_id = dup_or_null(session_id);
    r->tenant = dup_or_null(tenant);
    actor_send(store, &r->hdr);
}

void store_call_end(actor_t *store, const char *call_id, int64_t ended_at_ms,
                    const char *end_reason, const char *openai_session_id, const char *request_id,
                    int64_t input_tokens, int64_t output_tokens)
{
    store_rec_msg_t *r = rec_new(STORE_MSG_CALL_END, call_id, ended_at_ms);
    r->end_reason = dup_or_null(end_reason);
    r->openai_session_id = dup_or_null(openai_session_id);
    r->request_id = dup_or_null(request_id);
    r->input_tokens = input_tokens;
    r->output_tokens = output_tokens;
    actor_send(store, &r->hdr);
}

void store_call_phone(actor_t *store, const char *call_id, const char *from, const char *to,
                      const char *call_sid, const char *transferred_to)
{
    store_rec_msg_t *r = rec_new(STORE_MSG_CALL_PHONE, call_id, 0);
    r->from = dup_or_null(from);
    r->to = dup_or_null(to);
    r->call_sid = dup_or_null(call_sid);
    r->transferred_to = dup_or_null(transferred_to);
    actor_send(store, &r->hdr);
}

void store_transcript(actor_t *store, const char *call_id, const char *role, const char *text,
                      int64_t at_ms)
{
    store_rec_msg_t *r = rec_new(STORE_MSG_TRANSCRIPT, call_id, at_ms);
    r->role = dup_or_null(role);
    r->text = dup_or_null(text);
    actor_send(store, &r->hdr);
}

void store_tool_record(actor_t *store, const char *call_id, const char *tool_call_id,
                       const char *parent_call_id, const char *name, const char *arguments,
                       const char *output, const char *status, int64_t duration_ms, const char *via,
                       int64_t at_ms)
{
    store_rec_msg_t *r = rec_new(STORE_MSG_TOOL_RECORD, call_id, at_ms);
    r->tool_call_id = dup_or_null(tool_call_id);
    r->parent_call_id = dup_or_null(parent_call_id);
    r->name = dup_or_null(name);
    r->arguments = dup_or_null(arguments);
    r->output = dup_or_null(output);
    r->status = dup_or_null(status);
    r->duration_ms = duration_ms;
    r->via = dup_or_null(via);
    actor_send(store, &r->hdr);
}

static void chat_msg_free(msg_t *m)
{
    store_chat_msg_t *c = (store_chat_msg_t *)m;
    char *owned[] = {c->thread_id, c->user_id, c->message_id, c->client_message_id,
                     c->role,      c->text,    c->run_id,     c->task,
                     c->status,    c->result,  c->error,      c->tenant};
    for (size_t i = 0; i < ARRAY_LEN(owned); i++)
        free(owned[i]);
    if (c->reply_to)
        actor_unref(c->reply_to);
    msg_block_free(c);
}

static store_chat_msg_t *chat_msg_new(uint32_t type, int64_t at_ms)
{
    store_chat_msg_t *c = MSG_NEW(store_chat_msg_t, type);
    c->hdr.free_fn = chat_msg_free;
    c->at_ms = at_ms;
    return c;
}

void store_chat_open(actor_t *store, actor_t *reply_to, uint64_t cookie, const char *thread_id,
                     const char *user_id, const char *tenant, int limit)
{
    store_chat_msg_t *c = chat_msg_new(STORE_MSG_CHAT_OPEN, (int64_t)clock_wall_ms());
    actor_ref(reply_to);
    c->reply_to = reply_to;
    c->cookie = cookie;
    c->limit = limit;
    c->thread_id = xstrdup(thread_id);
    c->user_id = xstrdup(user_id);
    c->tenant = dup_or_null(tenant);
    actor_send(store, &c->hdr);
}

void store_chat_message(actor_t *store, const char *thread_id, const char *message_id,
                        const char *client_message_id, const char *role, const char *text,
                        int64_t at_ms)
{
    store_chat_msg_t *c = chat_msg_new(STORE_MSG_CHAT_MESSAGE, at_ms);
    c->thread_id = xstrdup(thread_id);
    c->message_id = xstrdup(message_id);
    c->client_message_id = dup_or_null(client_message_id);
    c->role = xstrdup(role);
    c->text = dup_or_null(text);
    actor_send(store, &c->hdr);
}

void store_agent_run(actor_t *store, int64_t record_id, const char *run_id, const char *user_id,
                     const char *tenant, const char *task, const char *status, const char *result,
                     const char *error, int64_t started_at_ms, int64_t ended_at_ms)
{
    store_chat_msg_t *c = chat_msg_new(STORE_MSG_AGENT_RUN, started_at_ms);
    c->record_id = record_id;
    c->ended_at_ms = ended_at_ms;
    c->run_id = dup_or_null(run_id);
    c->user_id = dup_or_null(user_id);
    c->tenant = dup_or_null(tenant);
    c->task = dup_or_null(task);
    c->status = dup_or_null(status);
    c->result = dup_or_null(result);
    c->error = dup_or_null(error);
    actor_send(store, &c->hdr);
}

static void chat_thread_free(msg_t *m)
{
    cJSON_Delete(((store_chat_thread_msg_t *)m)->messages);
    msg_block_free(m);
}

store_chat_thread_msg_t *store_chat_thread_new(uint64_t cookie, int status, const char *owner,
                                               const char *tenant, cJSON *messages)
{
    store_chat_thread_msg_t *t = MSG_NEW(store_chat_thread_msg_t, STORE_MSG_CHAT_THREAD);
    t->hdr.free_fn = chat_thread_free;
    t->cookie = cookie;
    t->status = status;
    str_copy(t->owner, owner ? owner : "", sizeof(t->owner));
    str_copy(t->tenant, tenant ? tenant : "", sizeof(t->tenant));
    t->messages = messages ? messages : cJSON_CreateArray();
    return t;
}

void store_call_first_audio(actor_t *store, const char *call_id, int64_t latency_ms)
{
    store_rec_msg_t *r = rec_new(STORE_MSG_FIRST_AUDIO, call_id, 0);
    r->duration_ms = latency_ms;
    actor_send(store, &r->hdr);
}

/* ---- Post-call jobs -------------------------------------------------------------------------- */

static void pc_free(msg_t *m)
{
    store_pc_msg_t *p = (store_pc_msg_t *)m;
    char *owned[] = {p->call_id, p->summary, p->outcome, p->crm, p->error};
    for (size_t i = 0; i < ARRAY_LEN(owned); i++)
        free(owned[i]);
    if (p->actor)
        actor_unref(p->actor);
    msg_block_free(p);
}

static store_pc_msg_t *pc_new(uint32_t type, actor_t *actor, const char *call_id)
{
    store_pc_msg_t *p = MSG_NEW(store_pc_msg_t, type);
    p->hdr.free_fn = pc_free;
    if (actor) {
        actor_ref(actor);
        p->actor = actor;
    }
    p->call_id = dup_or_null(call_id);
    return p;
}

void store_postcall_attach(actor_t *store, actor_t *runner)
{
    actor_send(store, &pc_new(STORE_MSG_PC_ATTACH, runner, NULL)->hdr);
}

void store_postcall_claim(actor_t *store, actor_t *reply_to, int max)
{
    store_pc_msg_t *p = pc_new(STORE_MSG_PC_CLAIM, reply_to, NULL);
    p->max = max;
    actor_send(store, &p->hdr);
}

void store_postcall_summary(actor_t *store, const char *call_id, const char *summary,
                            const char *outcome, const char *error)
{
    store_pc_msg_t *p = pc_new(STORE_MSG_PC_SUMMARY, NULL, call_id);
    p->summary = dup_or_null(summary);
    p->outcome = dup_or_null(outcome);
    p->error = dup_or_null(error);
    actor_send(store, &p->hdr);
}

void store_postcall_end(actor_t *store, const char *call_id, const char *crm, const char *error)
{
    store_pc_msg_t *p = pc_new(STORE_MSG_PC_END, NULL, call_id);
    p->crm = dup_or_null(crm);
    p->error = dup_or_null(error);
    actor_send(store, &p->hdr);
}

static void pc_jobs_free(msg_t *m)
{
    cJSON_Delete(((store_pc_jobs_msg_t *)m)->jobs);
    msg_block_free(m);
}

store_pc_jobs_msg_t *store_pc_jobs_new(cJSON *jobs, int64_t next_due_ms)
{
    store_pc_jobs_msg_t *j = MSG_NEW(store_pc_jobs_msg_t, STORE_MSG_PC_JOBS);
    j->hdr.free_fn = pc_jobs_free;
    j->jobs = jobs;
    j->next_due_ms = next_due_ms;
    return j;
}
