/*
 * fake_store: the record side of agents/store/store.h for the actor unit tests, linked instead
 * of agents/store/store.c into build/<mode>/tests/actors_unit.
 *
 * Every store_*() function sends the store actor it is given (in the tests, a probe) one
 * fake_store_rec_t of the real message type (STORE_MSG_CALL_START, STORE_MSG_CALL_END, …) with
 * every argument copied, so a test reads exactly what reached the store, in the order it was
 * sent. The answer to a chat open (STORE_MSG_CHAT_THREAD) is store.h's own message, which the
 * test builds with fake_store_thread_new(). The store's real behaviour (SQLite, bookings) is
 * tested on its own in tests/unit.
 *
 * CONTRACT: any thread, as store.h's functions. A record belongs to whoever receives it.
 */
#ifndef SB_TESTS_FAKES_FAKE_STORE_H
#define SB_TESTS_FAKES_FAKE_STORE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "agents/store/store.h"

typedef struct fake_store_rec {
    msg_t hdr;         /* hdr.type: the STORE_MSG_* of the function called */
    actor_t *reply_to; /* CHAT_OPEN: a reference, dropped by msg_free() */
    uint64_t cookie;   /* CHAT_OPEN */
    int limit;         /* CHAT_OPEN */
    int64_t at_ms;     /* the time argument of the call (started, ended, at) */
    int64_t ended_at_ms, record_id, duration_ms, input_tokens, output_tokens;
    /* Copies of the string arguments (NULL when the caller gave NULL or the call has none). */
    char *call_id, *session_id, *end_reason, *openai_session_id, *request_id;
    char *role, *text;
    char *tool_call_id, *name, *arguments, *output, *status, *via;
    char *thread_id, *user_id, *message_id, *client_message_id;
    char *run_id, *task, *result, *error;
} fake_store_rec_t;

/* The store's answer to a chat open: status 0, owner, and messages (taken; NULL = []). */
store_chat_thread_msg_t *fake_store_thread_new(uint64_t cookie, const char *owner, cJSON *messages);

#endif
