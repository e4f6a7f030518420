/*
 * chat: the registry of /ws/chat connections and live chat threads (design in chat_int.h).
 *
 * On open it checks the query (threadId and userId: [A-Za-z0-9_-]{1,64}, else 1008
 * "unauthorized") and the token: an ephemeral `ek_` token is spent through the gate, which
 * answers with the token's user and tenant, and that user must be the userId; anything else
 * must be an HS256 JWT whose sub is the userId, verified for its tenant (auth_jwt()). Then the
 * connection is attached, with its tenant, to its thread's actor. Events that arrive while the
 * token is being checked are held (a few) and forwarded after the attach, in order.
 *
 * Every user message starts a paid supervisor run, so messages are counted per client IP in a
 * fixed window of CHAT_RATE_WINDOW_S; past SWITCHBOARD_CHAT_RUNS_PER_MIN the message is answered
 * with a rate_limited error and goes no further (the socket stays open).
 * Thread: the registry's worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/timer.h"
#include "agents/chat/chat_int.h"
#include "base/config.h"
#include "base/log.h"
#include "base/ratewin.h"
#include "base/strmap.h"
#include "base/util.h"

#define CHAT_TOKEN_MAX     4096 /* a JWT in the query; ephemeral tokens are 67 bytes */
#define CHAT_HELD_MAX      8    /* events held per connection while its token is checked */
#define EPHEMERAL_PREFIX   "ek_"
#define MS_PER_S           1000
#define CHAT_RATE_WINDOW_S 60    /* SWITCHBOARD_CHAT_RUNS_PER_MIN counts in windows this long */
#define CHAT_SWEEP_MS      60000 /* how often windows of quiet IPs are dropped */
#define CHAT_MSG_SWEEP     (MSG_TYPE_CHAT_BASE + 0xF0u) /* its own timer */

static const char *const chat_types[] = {"message", NULL};

typedef struct chat_conn {
    conn_id_t conn;
    char thread_id[ID_MAX + 1];
    char user_id[ID_MAX + 1];
    char ip[sizeof(((net_peer_t *)0)->ip)]; /* the client, for the per-IP run limit */
    tenant_t *tenant; /* once authenticated: the token's tenant (a reference) */
    actor_t *thread;  /* once attached: the thread's actor (the thread entry holds the reference) */
    net_ws_text_msg_t *held[CHAT_HELD_MAX];
    int n_held;
} chat_conn_t;

typedef struct thread_entry {
    actor_t *actor;    /* a reference */
    int conns;         /* attached connections */
    uint64_t attaches; /* ATTACH messages sent to this actor */
} thread_entry_t;

typedef struct chat {
    actor_t actor;
    chat_deps_t deps;     /* references, released at stop */
    strmap_t conns;       /* "<conn id hex>" -> chat_conn_t */
    strmap_t threads;     /* threadId -> thread_entry_t */
    ratewin_t windows;    /* client IP -> its user messages in the current minute */
    actor_timer_t *sweep; /* drops stale windows */
} chat_t;

static void conn_key(char *buf, size_t n, conn_id_t c)
{
    snprintf(buf, n, "%llx", (unsigned long long)c);
}

static chat_conn_t *conn_get(chat_t *ch, conn_id_t c)
{
    char key[24];
    conn_key(key, sizeof(key), c);
    return strmap_get(&ch->conns, key);
}

static void conn_free(chat_conn_t *cc)
{
    for (int i = 0; i < cc->n_held; i++)
        msg_free(&cc->held[i]->hdr);
    tenant_unref(cc->tenant);
    free(cc);
}

static void attach_free(msg_t *m)
{
    tenant_unref(((chat_attach_msg_t *)m)->tenant);
    msg_block_free(m);
}

chat_attach_msg_t *chat_attach_new(uint32_t type, conn_id_t conn, const char *user_id,
                                   tenant_t *tenant)
{
    chat_attach_msg_t *m = MSG_NEW(chat_attach_msg_t, type);
    m->hdr.free_fn = attach_free;
    m->conn = conn;
    str_copy(m->user_id, user_id ? user_id : "", sizeof(m->user_id));
    tenant_ref(tenant);
    m->tenant = tenant;
    return m;
}

/* Query value name as an id, or false. */
static bool query_id(const char *query, const char *name, char out[ID_MAX + 1])
{
    char buf[ID_MAX + 2];
    int n = net_query_get(query, name, buf, sizeof(buf));
    if (n < 0 || !str_is_id(buf, (size_t)n, 1, ID_MAX))
        return false;
    memcpy(out, buf, (size_t)n + 1);
    return true;
}

/* Counts a user message of ip; true when it is over SWITCHBOARD_CHAT_RUNS_PER_MIN. */
static bool over_run_limit(chat_t *ch, const char *ip)
{
    return !ratewin_hit(&ch->windows, ip, clock_now_ns(), (uint32_t)g_config->chat_runs_per_min,
                        NULL);
}

/* Sends m (taken) on to the thread actor, unless it is a message over the per-IP run limit. */
static void forward(chat_t *ch, chat_conn_t *cc, net_ws_text_msg_t *m)
{
    if (strcmp(m->type, "message") == 0 && over_run_limit(ch, cc->ip)) {
        log_info("chat.rate_limited", LOG_S("ip", cc->ip), LOG_S("thread", cc->thread_id));
        net_ws_send_error(m->conn, "rate_limited",
                          "too many chat messages from this address; retry in a minute");
        msg_free(&m->hdr);
        return;
    }
    actor_send(cc->thread, &m->hdr);
}

/* The token checked: attach to the thread (spawning its actor), then forward what was held. */
static void attach(chat_t *ch, chat_conn_t *cc)
{
    thread_entry_t *t = strmap_get(&ch->threads, cc->thread_id);
    if (t == NULL) {
        actor_t *a = chatthread_spawn(cc->thread_id, &ch->actor, &ch->deps);
        if (a == NULL) {
            log_warn("chat.spawn_failed", LOG_S("thread", cc->thread_id));
            net_ws_close(cc->conn, WS_CLOSE_AT_CAPACITY);
            return;
        }
        t = xcalloc(1, sizeof(*t));
        t->actor = a;
        strmap_put(&ch->threads, cc->thread_id, t);
    }
    t->conns++;
    t->attaches++;
    cc->thread = t->actor;
    actor_send(t->actor, &chat_attach_new(CHAT_MSG_ATTACH, cc->conn, cc->user_id, cc->tenant)->hdr);
    for (int i = 0; i < cc->n_held; i++)
        forward(ch, cc, cc->held[i]);
    cc->n_held = 0;
}

static void on_open(chat_t *ch, const net_ws_open_msg_t *m)
{
    chat_conn_t *cc = xcalloc(1, sizeof(*cc));
    cc->conn = m->conn;
    char key[24];
    conn_key(key, sizeof(key), m->conn);
    strmap_put(&ch->conns, key, cc);
    str_copy(cc->ip, m->peer.ip, sizeof(cc->ip));
    char *token = xmalloc(CHAT_TOKEN_MAX + 1);
    int tl = net_query_get(m->query, "token", token, CHAT_TOKEN_MAX + 1);
    bool ids =
        query_id(m->query, "threadId", cc->thread_id) && query_id(m->query, "userId", cc->user_id);
    if (!ids || tl <= 0 || tl > CHAT_TOKEN_MAX) {
        net_ws_close(m->conn, WS_CLOSE_UNAUTHORIZED);
    } else if (strncmp(token, EPHEMERAL_PREFIX, strlen(EPHEMERAL_PREFIX)) == 0) {
        actor_send(ch->deps.gate, &gate_redeem_new(&ch->actor, m->conn, token)->hdr);
    } else {
        jwtauth_claims_t claims;
        int64_t now_s = (int64_t)(clock_wall_ms() / MS_PER_S);
        jwtauth_status_t st = auth_jwt(token, now_s, &claims, &cc->tenant);
        if (st == JWTAUTH_OK && strcmp(claims.sub, cc->user_id) == 0) {
            attach(ch, cc);
        } else {
            log_info("chat.refused", LOG_S("thread", cc->thread_id), LOG_S("user", cc->user_id),
                     LOG_S("reason", st == JWTAUTH_OK ? "sub is not userId" : jwtauth_reason(st)));
            net_ws_close(m->conn, WS_CLOSE_UNAUTHORIZED);
        }
    }
    free(token);
}

static void on_redeemed(chat_t *ch, gate_redeemed_msg_t *m)
{
    chat_conn_t *cc = conn_get(ch, (conn_id_t)m->cookie);
    if (cc == NULL || cc->thread)
        return; /* closed meanwhile */
    if (m->ok && m->tenant && strcmp(m->user_id, cc->user_id) == 0) {
        cc->tenant = m->tenant; /* taken from the message */
        m->tenant = NULL;
        attach(ch, cc);
    } else {
        /* The gate has spent the token either way: a token is good for one try. */
        log_info("chat.refused", LOG_S("thread", cc->thread_id), LOG_S("user", cc->user_id),
                 LOG_S("reason", !m->ok      ? "not a chat token, or unknown, spent or expired"
                                 : m->tenant ? "the token belongs to another user"
                                             : "the token's tenant is gone"));
        net_ws_close(cc->conn, WS_CLOSE_UNAUTHORIZED);
    }
}

/* Takes m: forwarded to the thread, held until the attach, or dropped. */
static void on_text(chat_t *ch, net_ws_text_msg_t *m)
{
    chat_conn_t *cc = conn_get(ch, m->conn);
    if (cc && cc->thread) {
        forward(ch, cc, m);
        return;
    }
    if (cc && cc->n_held < CHAT_HELD_MAX) {
        cc->held[cc->n_held++] = m;
        return;
    }
    msg_free(&m->hdr);
}

static void on_closed(chat_t *ch, conn_id_t conn)
{
    char key[24];
    conn_key(key, sizeof(key), conn);
    chat_conn_t *cc = strmap_del(&ch->conns, key);
    if (cc == NULL)
        return;
    thread_entry_t *t = cc->thread ? strmap_get(&ch->threads, cc->thread_id) : NULL;
    if (t) {
        t->conns--;
        actor_send(t->actor, &chat_attach_new(CHAT_MSG_DETACH, conn, NULL, NULL)->hdr);
    }
    conn_free(cc);
}

static void on_idle(chat_t *ch, const chat_idle_msg_t *m)
{
    thread_entry_t *t = strmap_get(&ch->threads, m->thread_id);
    if (t == NULL || t->actor != m->thread || t->conns > 0 || t->attaches != m->attaches)
        return; /* a connection came back since: the actor carries on */
    strmap_del(&ch->threads, m->thread_id);
    actor_stop(t->actor);
    actor_unref(t->actor);
    free(t);
}

static void chat_handle(actor_t *self, msg_t *m)
{
    chat_t *ch = (chat_t *)self;
    switch (m->type) {
    case NET_MSG_WS_OPEN:
        on_open(ch, (net_ws_open_msg_t *)m);
        break;
    case GATE_MSG_REDEEMED:
        on_redeemed(ch, (gate_redeemed_msg_t *)m);
        break;
    case NET_MSG_WS_TEXT:
        on_text(ch, (net_ws_text_msg_t *)m);
        return; /* taken */
    case NET_MSG_WS_CLOSED:
        on_closed(ch, ((net_ws_closed_msg_t *)m)->conn);
        break;
    case CHAT_MSG_IDLE:
        on_idle(ch, (chat_idle_msg_t *)m);
        break;
    case CHAT_MSG_SWEEP:
        ratewin_sweep(&ch->windows, clock_now_ns());
        break;
    default:
        break;
    }
    msg_free(m);
}

static int drop_conn(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    conn_free(value);
    return 1;
}

static int drop_thread(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    thread_entry_t *t = value;
    actor_stop(t->actor);
    actor_unref(t->actor);
    free(t);
    return 1;
}

static void chat_stop(actor_t *self)
{
    chat_t *ch = (chat_t *)self;
    actor_timer_free(ch->sweep);
    strmap_filter(&ch->conns, drop_conn, NULL);
    strmap_filter(&ch->threads, drop_thread, NULL);
    strmap_destroy(&ch->conns);
    strmap_destroy(&ch->threads);
    ratewin_destroy(&ch->windows);
    actor_unref(ch->deps.gate);
    actor_unref(ch->deps.pool);
    actor_unref(ch->deps.store);
}

static const actor_type_t chat_type = {"chat", chat_handle, chat_stop};

actor_t *chat_spawn(const chat_deps_t *deps)
{
    chat_t *ch = xcalloc(1, sizeof(*ch));
    if (actor_spawn(&ch->actor, &chat_type, LANE_TOOLS) != 0) {
        free(ch);
        return NULL;
    }
    strmap_init(&ch->conns);
    strmap_init(&ch->threads);
    ratewin_init(&ch->windows, CHAT_RATE_WINDOW_S * NS_PER_SEC);
    ch->sweep = actor_timer_new(&ch->actor, CHAT_MSG_SWEEP, NULL);
    /* Arming from main before any message is safe: no worker runs this actor yet. */
    actor_timer_start(ch->sweep, CHAT_SWEEP_MS, CHAT_SWEEP_MS);
    ch->deps = *deps; /* the gate redeems tokens; the rest is passed on to thread actors */
    actor_ref(deps->gate);
    actor_ref(deps->pool);
    actor_ref(deps->store);
    return &ch->actor;
}

actor_t *chat_ws_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why)
{
    (void)peer;
    (void)query;
    (void)why;
    actor_t *registry = arg;
    actor_ref(registry);
    return registry;
}

const char *const *chat_event_types(void)
{
    return chat_types;
}
