/*
 * chat_int: the messages between the chat registry (chat.c) and its thread actors
 * (chatthread.c), SPEC 5.3 and 14 "Chat".
 *
 * Design. /ws/chat connections all target one registry actor. It checks the query and
 * the token (a JWT in place; an ephemeral token through the gate), then attaches the connection
 * to the actor of its thread, spawning it on the first connection. It forwards the connection's
 * events there and, on close, detaches it. One thread actor per live thread owns everything
 * about it: the owner check (the thread's user and tenant), the history (read once from the store
 * when the actor starts, then kept in step with what it writes), the fan-out to every connection,
 * and the FIFO of user messages that runs one supervisor run at a time.
 *
 * Stopping without a race: the registry counts attaches per thread. A thread actor with no
 * connection and nothing to run reports CHAT_MSG_IDLE with the attaches it has seen; the
 * registry stops it only when that count is still the registry's own and no connection is
 * attached, so an attach in flight is never lost. A run still going when the last connection
 * closes is finished (and its answer stored) before the actor reports idle.
 *
 * CONTRACT
 *   Messages are owned by the receiver. For one connection, the registry sends ATTACH, then its
 *   forwarded NET_MSG_WS_TEXTs in arrival order, then DETACH, all to the same thread actor.
 *   Thread: the registry's or the thread actor's worker; nothing here is shared.
 */
#ifndef SB_AGENTS_CHAT_INT_H
#define SB_AGENTS_CHAT_INT_H

#include "agents/auth/auth.h"
#include "agents/chat/chat.h"
#include "mailbox/msgtypes.h"

#define CHAT_HISTORY_MAX    50   /* history items on connect (SPEC 5.3), and kept per live thread */
#define CHAT_TEXT_MAX_CHARS 8000 /* SPEC 5.3 */

enum {
    CHAT_MSG_ATTACH = MSG_TYPE_CHAT_BASE + 1, /* registry -> thread: chat_attach_msg_t */
    CHAT_MSG_DETACH, /* registry -> thread: chat_attach_msg_t (conn only) */
    CHAT_MSG_IDLE,   /* thread -> registry: chat_idle_msg_t */
};

typedef struct chat_attach_msg {
    msg_t hdr;
    conn_id_t conn;
    char user_id[ID_MAX + 1]; /* authenticated: a JWT's sub, or the userId an ek_ token came with */
    tenant_t *tenant;         /* ATTACH: the token's tenant, a reference owned by the message
                                 (take it by setting this NULL); DETACH: NULL */
} chat_attach_msg_t;

typedef struct chat_idle_msg {
    msg_t hdr;
    actor_t *thread;   /* not a reference: compared with the registry's entry only */
    uint64_t attaches; /* ATTACH messages the thread actor has handled */
    char thread_id[ID_MAX + 1];
} chat_idle_msg_t;

/* Builds CHAT_MSG_ATTACH (takes a new reference to tenant) or CHAT_MSG_DETACH (user_id and
 * tenant NULL). */
chat_attach_msg_t *chat_attach_new(uint32_t type, conn_id_t conn, const char *user_id,
                                   tenant_t *tenant);

/* Spawns the actor of thread_id; NULL when the runtime refuses. The reference is the caller's.
 * The thread takes references of its own to the registry (told when idle) and to deps' pool
 * and store. Thread: the registry's worker. */
actor_t *chatthread_spawn(const char *thread_id, actor_t *registry, const chat_deps_t *deps);

#endif
