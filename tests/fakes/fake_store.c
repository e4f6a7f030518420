/* The store's record functions as messages a test can read; see fake_store.h. */
#include "tests/fakes/fake_store.h"

#include <stdlib.h>

#include "base/util.h"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void rec_free(msg_t *m)
{
    fake_store_rec_t *r = (fake_store_rec_t *)m;
    char *owned[] = {r->call_id,
                     r->session_id,
                     r->end_reason,
                     r->openai_session_id,
                     r->request_id,
                     r->role,
                     r->text,
                     r->tool_call_id,
                     r->name,
                     r->arguments,
                     r->output,
                     r->status,
                     r->via,
                     r->thread_id,
                     r->user_id,
                     r->message_id,
                     r->client_message_id,
                     r->run_id,
                     r->task,
                     r->result,
                     r->error};
    for (size_t i = 0; i < ARRAY_LEN(owned); i++)
        free(owned[i]);
    if (r->reply_to)
        actor_unref(r->reply_to);
    free(r);
}

static fake_store_rec_t *rec_new(uint32_t type, int64_t at_ms)
{
    fake_store_rec_t *r = MSG_NEW(fake_store_rec_t, type);
    r->hdr.free_fn = rec_free;
    r->at_ms = at_ms;
    return r;
}

void store_call_start(actor_t *store, const char *call_id, const char *session_id,
                      int64_t started_at_ms)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_CALL_START, started_at_ms);
    r->call_id = dup_or_null(call_id);
    r->session_id = dup_or_null(session_id);
    actor_send(store, &r->hdr);
}

void store_call_end(actor_t *store, const char *call_id, int64_t ended_at_ms,
                    const char *end_reason, const char *openai_session_id, const char *request_id,
                    int64_t input_tokens, int64_t output_tokens)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_CALL_END, ended_at_ms);
    r->call_id = dup_or_null(call_id);
    r->end_reason = dup_or_null(end_reason);
    r->openai_session_id = dup_or_null(openai_session_id);
    r->request_id = dup_or_null(request_id);
    r->input_tokens = input_tokens;
    r->output_tokens = output_tokens;
    actor_send(store, &r->hdr);
}

void store_transcript(actor_t *store, const char *call_id, const char *role, const char *text,
                      int64_t at_ms)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_TRANSCRIPT, at_ms);
    r->call_id = dup_or_null(call_id);
    r->role = dup_or_null(role);
    r->text = dup_or_null(text);
    actor_send(store, &r->hdr);
}

void store_tool_record(actor_t *store, const char *call_id, const char *tool_call_id,
                       const char *name, const char *arguments, const char *output,
                       const char *status, int64_t duration_ms, const char *via, int64_t at_ms)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_TOOL_RECORD, at_ms);
    r->call_id = dup_or_null(call_id);
    r->tool_call_id = dup_or_null(tool_call_id);
    r->name = dup_or_null(name);
    r->arguments = dup_or_null(arguments);
    r->output = dup_or_null(output);
    r->status = dup_or_null(status);
    r->duration_ms = duration_ms;
    r->via = dup_or_null(via);
    actor_send(store, &r->hdr);
}

void store_chat_open(actor_t *store, actor_t *reply_to, uint64_t cookie, const char *thread_id,
                     const char *user_id, int limit)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_CHAT_OPEN, (int64_t)clock_wall_ms());
    actor_ref(reply_to);
    r->reply_to = reply_to;
    r->cookie = cookie;
    r->limit = limit;
    r->thread_id = dup_or_null(thread_id);
    r->user_id = dup_or_null(user_id);
    actor_send(store, &r->hdr);
}

void store_chat_message(actor_t *store, const char *thread_id, const char *message_id,
                        const char *client_message_id, const char *role, const char *text,
                        int64_t at_ms)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_CHAT_MESSAGE, at_ms);
    r->thread_id = dup_or_null(thread_id);
    r->message_id = dup_or_null(message_id);
    r->client_message_id = dup_or_null(client_message_id);
    r->role = dup_or_null(role);
    r->text = dup_or_null(text);
    actor_send(store, &r->hdr);
}

void store_agent_run(actor_t *store, int64_t record_id, const char *run_id, const char *user_id,
                     const char *task, const char *status, const char *result, const char *error,
                     int64_t started_at_ms, int64_t ended_at_ms)
{
    fake_store_rec_t *r = rec_new(STORE_MSG_AGENT_RUN, started_at_ms);
    r->record_id = record_id;
    r->ended_at_ms = ended_at_ms;
    r->run_id = dup_or_null(run_id);
    r->user_id = dup_or_null(user_id);
    r->task = dup_or_null(task);
    r->status = dup_or_null(status);
    r->result = dup_or_null(result);
    r->error = dup_or_null(error);
    actor_send(store, &r->hdr);
}

static void thread_free(msg_t *m)
{
    cJSON_Delete(((store_chat_thread_msg_t *)m)->messages);
    free(m);
}

store_chat_thread_msg_t *fake_store_thread_new(uint64_t cookie, const char *owner, cJSON *messages)
{
    store_chat_thread_msg_t *t = MSG_NEW(store_chat_thread_msg_t, STORE_MSG_CHAT_THREAD);
    t->hdr.free_fn = thread_free;
    t->cookie = cookie;
    str_copy(t->owner, owner, sizeof(t->owner));
    t->messages = messages ? messages : cJSON_CreateArray();
    return t;
}
