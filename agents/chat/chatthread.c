/*
 * chatthread: one actor per live chat thread (design in chat_int.h; SPEC 5.3, 14 "Chat").
 *
 * Life: spawned by the registry on the thread's first connection; asks the store to open the
 * thread (creating it owned by that user and tenant) and for its newest CHAT_HISTORY_MAX
 * messages. Until that answer, connections and their events wait. Then every connection of
 * another user or tenant is closed 1008 "forbidden", the others get the history, and user
 * messages are taken in order: each is stored, sent to every connection, and queued; the queue's
 * head runs the supervisor (SURFACE_CHAT) with the thread's tenant and the thread so far, and
 * its answer is stored and sent as the assistant message. The actor reports idle to the
 * registry once no connection is left and nothing is queued or running.
 * Thread: the thread actor's worker.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/chat/chat_int.h"
#include "agents/supervisor/supervisor.h"
#include "agents/store/store.h"
#include "agents/tools/tools.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/util.h"

#define CHAT_RUN_DEADLINE_MS 120000 /* one supervisor run with its tools */
#define CHAT_QUEUE_MAX       32     /* user messages waiting for their answer */
#define CHAT_HELD_EVENTS_MAX 64     /* events held while the thread is loading */
#define CHAT_CLIENT_ID_MAX   128    /* clientMessageId, bytes */
#define MESSAGE_ID_BYTES     12
#define MESSAGE_ID_PREFIX    "msg_"
#define MESSAGE_ID_LEN       (sizeof(MESSAGE_ID_PREFIX) - 1 + 2 * MESSAGE_ID_BYTES)
/* Across nodes (SPEC 13) */
#define CHAT_CHANNEL_MAX     (16 + 3 * (ID_MAX + 1))
#define CHAT_LOCK_RETRY_MS   250
#define CHAT_MSG_LOCK_RETRY  (MSG_TYPE_CHAT_BASE + 0xF0u)
#define COOKIE_LOCK          1 /* NET_MSG_REDIS cookies: the run lock's SET ... */
#define COOKIE_UNLOCK        2 /* ... its release; 0: a publish */

typedef struct tconn {
    conn_id_t conn;
    char user_id[ID_MAX + 1];
} tconn_t;

/* A user message waiting for (or getting) its answer. */
typedef struct queued {
    struct queued *next;
    char message_id[MESSAGE_ID_LEN + 1];
    char *text;
} queued_t;

typedef enum thread_state {
    THREAD_NEW,     /* nothing asked yet */
    THREAD_LOADING, /* waiting for the store */
    THREAD_LOADED,
} thread_state_t;

typedef struct chat_thread {
    actor_t actor;
    actor_t *registry;                        /* a reference: told when the thread is idle */
    actor_t *pool;                            /* a reference: supervisor runs */
    actor_t *store;                           /* a reference: history and messages */
    char thread_id[ID_MAX + 1];               /* immutable */
    char owner[STORE_CHAT_ID_MAX + 1];        /* [owner] once loaded */
    char owner_tenant[STORE_CHAT_ID_MAX + 1]; /* [owner] once loaded: the thread's tenant */
    tenant_t *tenant;     /* [owner] its tenant as the newest connection's token had it (a
                             reference): the runs' brief, tools and servers */
    thread_state_t state; /* [owner] */
    bool load_failed;     /* [owner] the store could not open it */
    tconn_t *conns;       /* [owner] live connections of the owner (after load) */
    size_t n_conns, cap_conns;
    uint64_t attaches;      /* [owner] ATTACH messages handled */
    uint64_t idle_reported; /* [owner] `attaches` when CHAT_MSG_IDLE was last sent, +1 */
    msg_t **held;           /* [owner] events (and attaches) that came before the load */
    size_t n_held;
    cJSON *history;  /* [owner] newest CHAT_HISTORY_MAX items, oldest first */
    queued_t *queue; /* [owner] head: the message being answered when running */
    queued_t *queue_tail;
    int n_queued;
    uint64_t run_cookie; /* [owner] the supervisor run in flight, 0 when none */
    uint64_t next_cookie;
    /* Across nodes (Redis): the thread's channel, named by its tenant, owner and id, so that
     * only the same thread of the same owner shares events; our tag on what we publish; the
     * cluster-wide run lock. */
    char channel[CHAT_CHANNEL_MAX]; /* "" without Redis or before the load */
    char tag[17];
    bool locking;   /* a SET of the run lock is in flight */
    bool locked;    /* we hold the run lock */
    actor_timer_t *lock_retry;
} chat_thread_t;

/* ---- Sending ------------------------------------------------------------------------------- */

static void fan_out_local(chat_thread_t *t, const char *text)
{
    for (size_t i = 0; i < t->n_conns; i++)
        net_ws_send_text(t->conns[i].conn, text, strlen(text));
}

/* To every connection of the thread: ours, and through the thread's channel the other nodes'. */
static void fan_out(chat_thread_t *t, const cJSON *ev)
{
    char *text = cJSON_PrintUnformatted(ev);
    fan_out_local(t, text);
    if (t->channel[0]) {
        sbuf_t b = SBUF_INIT;
        sbuf_printf(&b, "{\"from\":\"%s\",\"ev\":%s}", t->tag, text);
        const char *argv[] = {"PUBLISH", t->channel, b.data};
        net_redis_cmd(&t->actor, 0, 3, argv, NULL);
        sbuf_destroy(&b);
    }
    free(text);
}

static void new_message_id(char out[MESSAGE_ID_LEN + 1])
{
    unsigned char raw[MESSAGE_ID_BYTES];
    randombytes_buf(raw, sizeof(raw));
    memcpy(out, MESSAGE_ID_PREFIX, sizeof(MESSAGE_ID_PREFIX) - 1);
    sodium_bin2hex(out + sizeof(MESSAGE_ID_PREFIX) - 1, 2 * MESSAGE_ID_BYTES + 1, raw, sizeof(raw));
}

/* A message as history shows it, or as the event (with "type" first) when type is set. */
static cJSON *message_json(const char *type, const char *role, const char *text,
                           const char *message_id, int64_t at, const char *client_message_id)
{
    cJSON *m = cJSON_CreateObject();
    if (type)
        cJSON_AddStringToObject(m, "type", type);
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "text", text);
    cJSON_AddStringToObject(m, "messageId", message_id);
    cJSON_AddNumberToObject(m, "at", (double)at);
    if (client_message_id)
        cJSON_AddStringToObject(m, "clientMessageId", client_message_id);
    return m;
}

/* A message of the thread: stored, and kept in the history (its newest CHAT_HISTORY_MAX). */
static void keep(chat_thread_t *t, const char *role, const char *text, const char *message_id,
                 int64_t at, const char *client_message_id)
{
    store_chat_message(t->store, t->thread_id, message_id, client_message_id, role, text, at);
    cJSON_AddItemToArray(t->history,
                         message_json(NULL, role, text, message_id, at, client_message_id));
    while (cJSON_GetArraySize(t->history) > CHAT_HISTORY_MAX)
        cJSON_DeleteItemFromArray(t->history, 0);
}

/* A new message: kept, and sent to every connection. */
static void post(chat_thread_t *t, const char *role, const char *text, const char *message_id,
                 const char *client_message_id)
{
    int64_t at = (int64_t)clock_wall_ms();
    keep(t, role, text, message_id, at, client_message_id);
    cJSON *ev = message_json("message", role, text, message_id, at, client_message_id);
    fan_out(t, ev);
    cJSON_Delete(ev);
}

static void send_history(const chat_thread_t *t, conn_id_t conn)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "history");
    cJSON_AddStringToObject(ev, "threadId", t->thread_id);
    cJSON_AddItemReferenceToObject(ev, "messages", t->history);
    net_ws_send_json(conn, ev);
    cJSON_Delete(ev);
}

/* ---- Runs ---------------------------------------------------------------------------------- */

static bool queued_id(const chat_thread_t *t, const char *message_id)
{
    for (const queued_t *q = t->queue; q; q = q->next)
        if (strcmp(q->message_id, message_id) == 0)
            return true;
    return false;
}

/* The thread so far for the supervisor: every kept message except those still waiting. */
static cJSON *run_history(const chat_thread_t *t)
{
    cJSON *h = cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, t->history)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "messageId");
        if (cJSON_IsString(id) && queued_id(t, id->valuestring))
            continue;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToObject(m, "role",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(item, "role"), 0));
        cJSON_AddItemToObject(m, "content",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(item, "text"), 0));
        cJSON_AddItemToArray(h, m);
    }
    return h;
}

/* Starts the head of the queue unless a run is in flight. */
static void run_next(chat_thread_t *t)
{
    if (t->run_cookie || t->queue == NULL)
        return;
    if (t->channel[0] && !t->locked) {
        /* One run per thread in the cluster: take the lock (its lease outlives a run), then
         * run; someone else's run: try again shortly. */
        if (t->locking)
            return;
        char key[CHAT_CHANNEL_MAX + 8], ttl[24];
        snprintf(key, sizeof(key), "%s:run", t->channel);
        snprintf(ttl, sizeof(ttl), "%d", CHAT_RUN_DEADLINE_MS + 10000);
        const char *argv[] = {"SET", key, t->tag, "NX", "PX", ttl};
        if (net_redis_cmd(&t->actor, COOKIE_LOCK, 6, argv, NULL) == 0) {
            t->locking = true;
            return;
        }
    }
    t->run_cookie = ++t->next_cookie;
    cJSON *typing = cJSON_CreateObject();
    cJSON_AddStringToObject(typing, "type", "typing");
    fan_out(t, typing);
    cJSON_Delete(typing);
    uint64_t deadline = clock_now_ns() + CHAT_RUN_DEADLINE_MS * NS_PER_MS;
    supervisor_run(t->pool, &t->actor, t->run_cookie, NULL, NULL, run_history(t),
                   xstrdup(t->queue->text), deadline, SURFACE_CHAT, t->tenant);
}

static void on_event(chat_thread_t *t, const tool_event_msg_t *e)
{
    if (e->cookie != t->run_cookie || t->run_cookie == 0)
        return;
    cJSON *ev = tool_event_json(e);
    fan_out(t, ev);
    cJSON_Delete(ev);
}

static void maybe_idle(chat_thread_t *t);

static void on_result(chat_thread_t *t, const tool_result_msg_t *r)
{
    if (r->cookie != t->run_cookie || t->run_cookie == 0)
        return;
    t->run_cookie = 0;
    queued_t *q = t->queue;
    t->queue = q->next;
    if (t->queue == NULL)
        t->queue_tail = NULL;
    t->n_queued--;
    free(q->text);
    free(q);
    char id[MESSAGE_ID_LEN + 1];
    new_message_id(id);
    post(t, "assistant", r->output && r->output[0] ? r->output : SUP_SAY_TROUBLE, id, NULL);
    if (t->locked) { /* released for the other nodes; taken again for our next message */
        t->locked = false;
        char key[CHAT_CHANNEL_MAX + 8];
        snprintf(key, sizeof(key), "%s:run", t->channel);
        const char *argv[] = {"EVAL",
                              "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                              "return redis.call('DEL', KEYS[1]) end return 0",
                              "1", key, t->tag};
        net_redis_cmd(&t->actor, COOKIE_UNLOCK, 5, argv, NULL);
    }
    run_next(t);
    maybe_idle(t);
}

/* ---- Across nodes (SPEC 13) ---------------------------------------------------------------- */

static void on_redis(chat_thread_t *t, const net_redis_msg_t *m)
{
    if (m->cookie != COOKIE_LOCK)
        return;
    t->locking = false;
    const net_redis_reply_t *r = m->ok ? m->reply : NULL;
    if (r && r->type == NET_REDIS_STATUS && strcmp(r->str, "OK") == 0) {
        t->locked = true;
        run_next(t);
        return;
    }
    /* Held by another node's run (or Redis unreachable): again shortly. */
    if (t->lock_retry == NULL)
        t->lock_retry = actor_timer_new(&t->actor, CHAT_MSG_LOCK_RETRY, NULL);
    actor_timer_start(t->lock_retry, CHAT_LOCK_RETRY_MS, 0);
}

/* Another node's event of this thread: to our connections, and a message into our history. */
static void on_published(chat_thread_t *t, const net_redis_pub_msg_t *m)
{
    cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "from"));
    cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "ev");
    if (from == NULL || strcmp(from, t->tag) == 0 || !cJSON_IsObject(ev)) {
        cJSON_Delete(j);
        return;
    }
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
    if (type && strcmp(type, "message") == 0) {
        const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "role"));
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "text"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "messageId"));
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(ev, "at");
        /* Each node's store keeps the whole thread (records stay per node: SPEC 13). */
        if (role && text && id && cJSON_IsNumber(at))
            keep(t, role, text, id, (int64_t)at->valuedouble,
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "clientMessageId")));
    }
    char *text = cJSON_PrintUnformatted(ev);
    fan_out_local(t, text);
    free(text);
    cJSON_Delete(j);
}

/* ---- Connections and client events --------------------------------------------------------- */

static void conn_remove(chat_thread_t *t, conn_id_t conn)
{
    for (size_t i = 0; i < t->n_conns; i++) {
        if (t->conns[i].conn == conn) {
            t->conns[i] = t->conns[--t->n_conns];
            return;
        }
    }
}

static void on_attach(chat_thread_t *t, chat_attach_msg_t *a)
{
    if (t->load_failed || a->tenant == NULL) {
        net_ws_close(a->conn, WS_CLOSE_UNAUTHORIZED);
        return;
    }
    /* A thread is its first user's, of that user's tenant: the same userId of another tenant
     * is someone else (SPEC 14 "Chat", 16). */
    if (strcmp(a->user_id, t->owner) != 0 || strcmp(a->tenant->id, t->owner_tenant) != 0) {
        log_info("chat.forbidden", LOG_S("thread", t->thread_id), LOG_S("user", a->user_id),
                 LOG_S("tenant", a->tenant->id));
        net_ws_close(a->conn, WS_CLOSE_FORBIDDEN);
        return;
    }
    tenant_unref(t->tenant);
    t->tenant = a->tenant; /* taken: the newest snapshot of the tenant runs from now on */
    a->tenant = NULL;
    if (t->n_conns == t->cap_conns) {
        t->cap_conns = t->cap_conns ? 2 * t->cap_conns : 4;
        t->conns = xrealloc(t->conns, t->cap_conns * sizeof(tconn_t));
    }
    t->conns[t->n_conns].conn = a->conn;
    str_copy(t->conns[t->n_conns].user_id, a->user_id, sizeof(t->conns[0].user_id));
    t->n_conns++;
    send_history(t, a->conn);
}

static bool attached(const chat_thread_t *t, conn_id_t conn)
{
    for (size_t i = 0; i < t->n_conns; i++)
        if (t->conns[i].conn == conn)
            return true;
    return false;
}

/* {"type":"message","text","clientMessageId"?} from a connection of the owner. */
static void on_message(chat_thread_t *t, const net_ws_text_msg_t *m)
{
    if (!attached(t, m->conn))
        return; /* refused, or closing */
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(m->json, "text");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(m->json, "clientMessageId");
    if (!cJSON_IsString(text) || text->valuestring[0] == '\0' ||
        (cid && !(cJSON_IsString(cid) && cid->valuestring[0] &&
                  strlen(cid->valuestring) <= CHAT_CLIENT_ID_MAX))) {
        net_ws_protocol_error(m->conn, "invalid_event",
                              "message takes a non-empty string text and an optional string "
                              "clientMessageId of at most 128 bytes");
        return;
    }
    if (str_utf8_chars(text->valuestring) > CHAT_TEXT_MAX_CHARS) {
        net_ws_send_error(m->conn, "text_too_long", "text is limited to 8000 characters");
        return;
    }
    if (t->n_queued >= CHAT_QUEUE_MAX) {
        net_ws_send_error(m->conn, "rate_limited",
                          "too many messages are waiting for an answer in this thread");
        return;
    }
    queued_t *q = xcalloc(1, sizeof(*q));
    new_message_id(q->message_id);
    q->text = xstrdup(text->valuestring);
    if (t->queue_tail)
        t->queue_tail->next = q;
    else
        t->queue = q;
    t->queue_tail = q;
    t->n_queued++;
    post(t, "user", q->text, q->message_id, cid ? cid->valuestring : NULL);
    run_next(t);
}

static void handle_loaded(chat_thread_t *t, msg_t *m);

/* Anything that needs the thread loaded first: held until then. Takes m. */
static void hold(chat_thread_t *t, msg_t *m)
{
    if (t->n_held >= CHAT_HELD_EVENTS_MAX && m->type == NET_MSG_WS_TEXT) {
        msg_free(m); /* a flood before the database answered: events only, never attaches */
        return;
    }
    t->held = xrealloc(t->held, (t->n_held + 1) * sizeof(msg_t *));
    t->held[t->n_held++] = m;
}

static void on_thread(chat_thread_t *t, store_chat_thread_msg_t *r)
{
    t->state = THREAD_LOADED;
    if (r->status != 0) {
        log_error("chat.load_failed", LOG_S("thread", t->thread_id));
        t->load_failed = true;
    } else {
        str_copy(t->owner, r->owner, sizeof(t->owner));
        str_copy(t->owner_tenant, r->tenant, sizeof(t->owner_tenant));
        cJSON_Delete(t->history);
        t->history = r->messages;
        r->messages = NULL;
        if (net_redis_on()) {
            snprintf(t->channel, sizeof(t->channel), "sb:chat:%s:%s:%s", t->owner_tenant,
                     t->owner, t->thread_id);
            if (net_redis_subscribe(&t->actor, t->channel) != 0)
                t->channel[0] = '\0';
        }
    }
    msg_t **held = t->held;
    size_t n = t->n_held;
    t->held = NULL;
    t->n_held = 0;
    for (size_t i = 0; i < n; i++)
        handle_loaded(t, held[i]);
    free(held);
}

static void maybe_idle(chat_thread_t *t)
{
    if (t->n_conns > 0 || t->run_cookie || t->queue || t->state == THREAD_LOADING ||
        t->idle_reported == t->attaches + 1)
        return;
    t->idle_reported = t->attaches + 1;
    chat_idle_msg_t *m = MSG_NEW(chat_idle_msg_t, CHAT_MSG_IDLE);
    m->thread = &t->actor;
    m->attaches = t->attaches;
    str_copy(m->thread_id, t->thread_id, sizeof(m->thread_id));
    actor_send(t->registry, &m->hdr);
}

/* A message once the thread is loaded. Takes m. */
static void handle_loaded(chat_thread_t *t, msg_t *m)
{
    switch (m->type) {
    case CHAT_MSG_ATTACH:
        on_attach(t, (chat_attach_msg_t *)m);
        break;
    case NET_MSG_WS_TEXT:
        if (strcmp(((net_ws_text_msg_t *)m)->type, "message") == 0)
            on_message(t, (net_ws_text_msg_t *)m);
        break;
    case CHAT_MSG_DETACH:
        conn_remove(t, ((chat_attach_msg_t *)m)->conn);
        maybe_idle(t);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void thread_handle(actor_t *self, msg_t *m)
{
    chat_thread_t *t = (chat_thread_t *)self;
    switch (m->type) {
    case CHAT_MSG_ATTACH:
        t->attaches++;
        if (t->state == THREAD_NEW) {
            const chat_attach_msg_t *a = (chat_attach_msg_t *)m;
            t->state = THREAD_LOADING;
            store_chat_open(t->store, &t->actor, 0, t->thread_id, a->user_id,
                            a->tenant ? a->tenant->id : NULL, CHAT_HISTORY_MAX);
        }
        /* fall through */
    case CHAT_MSG_DETACH:
    case NET_MSG_WS_TEXT:
        if (t->state == THREAD_LOADING)
            hold(t, m);
        else
            handle_loaded(t, m);
        return; /* taken */
    case STORE_MSG_CHAT_THREAD:
        on_thread(t, (store_chat_thread_msg_t *)m);
        maybe_idle(t);
        break;
    case SUP_MSG_TOOL_EVENT:
        on_event(t, (tool_event_msg_t *)m);
        break;
    case TOOL_MSG_RESULT:
        on_result(t, (tool_result_msg_t *)m);
        break;
    case NET_MSG_REDIS:
        on_redis(t, (net_redis_msg_t *)m);
        break;
    case NET_MSG_REDIS_PUB:
        on_published(t, (net_redis_pub_msg_t *)m);
        break;
    case CHAT_MSG_LOCK_RETRY:
        run_next(t);
        break;
    default:
        break;
    }
    msg_free(m);
}

static void thread_stop(actor_t *self)
{
    chat_thread_t *t = (chat_thread_t *)self;
    if (t->run_cookie)
        supervisor_cancel(t->pool, &t->actor, t->run_cookie);
    actor_timer_free(t->lock_retry);
    if (t->channel[0])
        net_redis_unsubscribe(&t->actor, t->channel);
    for (size_t i = 0; i < t->n_held; i++)
        msg_free(t->held[i]);
    free(t->held);
    while (t->queue) {
        queued_t *q = t->queue;
        t->queue = q->next;
        free(q->text);
        free(q);
    }
    free(t->conns);
    cJSON_Delete(t->history);
    actor_unref(t->registry);
    actor_unref(t->pool);
    actor_unref(t->store);
    tenant_unref(t->tenant);
}

static const actor_type_t thread_type = {"chat thread", thread_handle, thread_stop};

actor_t *chatthread_spawn(const char *thread_id, actor_t *registry, const chat_deps_t *deps)
{
    chat_thread_t *t = xcalloc(1, sizeof(*t));
    if (actor_spawn(&t->actor, &thread_type, LANE_TOOLS) != 0) {
        free(t);
        return NULL;
    }
    str_copy(t->thread_id, thread_id, sizeof(t->thread_id));
    t->history = cJSON_CreateArray();
    unsigned char tag[8];
    randombytes_buf(tag, sizeof(tag));
    sodium_bin2hex(t->tag, sizeof(t->tag), tag, sizeof(tag));
    /* It sends to these until it stops. */
    actor_ref(registry);
    t->registry = registry;
    actor_ref(deps->pool);
    t->pool = deps->pool;
    actor_ref(deps->store);
    t->store = deps->store;
    return &t->actor;
}
