/*
 * redis: the shared state of a cluster (SPEC 13) on the network threads. Each network thread
 * owns one hiredis asynchronous connection on its libuv loop; a command travels as an
 * OUT_REDIS command through the inbox of the thread its target actor maps to (so one actor's
 * commands stay in order on one connection, and hiredis pipelines them), and its reply goes
 * back to that actor as NET_MSG_REDIS, copied out of hiredis's reply.
 *
 * Nothing waits: a command for a thread whose connection is down is answered at once with
 * ok = false (the caller answers 503 unavailable), and the thread reconnects with backoff
 * (100 ms doubling to 2 s). Host names are resolved with uv_getaddrinfo, off the loop.
 *
 * hiredis 0.14's own libuv adapter ignores a poll that ends in error: libuv reports a refused
 * connect as status UV_EBADF and stops the handle, and the adapter then never tells hiredis, so
 * the attempt hangs for good. The adapter here hands any error to hiredis (whose next read or
 * write finds it), and an attempt that has not connected within 2 s is dropped anyway.
 *
 * Pub/sub: the first network thread keeps a second connection, in subscriber mode, for the
 * channels actors subscribe to (net_redis_subscribe()); a message published on one goes to its
 * actor as NET_MSG_REDIS_PUB. The subscriptions are made again after every reconnect; what was
 * published while the connection was down is lost, as pub/sub promises nothing more.
 */
#include <arpa/inet.h>
#include <ck_pr.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net_int.h"

#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 2000
#define REDIS_HOST_MAX       256
#define REDIS_DEPTH_MAX      8 /* nesting of a reply copied out; deeper parts become nil */
#define REDIS_CONNECT_MS     2000 /* an attempt that has not connected by then is dropped */

/* Where to connect, parsed once by net_redis_configure(). Immutable once threads run. */
static struct {
    bool on;
    char host[REDIS_HOST_MAX]; /* "" with a unix socket */
    char path[REDIS_HOST_MAX]; /* unix socket path */
    int port;
    int db;
    char password[REDIS_HOST_MAX];
} redis_cfg;

/* [atomic, any] 1 from net_start() until net_stop() begins. Release and acquire: a caller that
 * reads 1 also sees the network threads net_start() set up. */
static int redis_accepting;
static int redis_up;      /* [atomic, any] network threads whose connection is up */
static int redis_threads; /* [atomic, any] network threads with a connection to keep */

typedef enum { RS_DOWN, RS_RESOLVING, RS_CONNECTING, RS_UP } redis_state_t;

/* A subscription (subscriber connection only). */
typedef struct redis_sub {
    struct redis_sub *next;
    actor_t *target; /* a reference */
    char channel[];
} redis_sub_t;

typedef struct redis_thr {
    netthr_t *thr;
    bool sub;           /* the subscriber connection (first thread's second one) */
    redis_sub_t *subs;  /* sub: the channels, subscribed while up */
    redisAsyncContext *ac; /* set from the connect attempt until it is freed */
    redis_state_t state;
    uv_timer_t retry;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    bool timer_closed;
    bool closing;
    uint32_t backoff_ms;
} redis_thr_t;

/* A command in flight: who gets the reply. */
typedef struct redis_pending {
    actor_t *target; /* a reference */
    uint64_t cookie;
    uint64_t t0_ns;
} redis_pending_t;

/* What an OUT_REDIS command carries after its net_out_t header. */
typedef struct redis_cmd {
    actor_t *target; /* a reference, NULL once taken */
    uint64_t cookie;
    int argc;
    size_t *lens;  /* into bytes below */
    char **argv;   /* into bytes below */
    char bytes[]; /* lens[argc], argv[argc], then the arguments */
} redis_cmd_t;

/* ---- Configuration ------------------------------------------------------------------------ */

int net_redis_configure(const char *url)
{
    memset(&redis_cfg, 0, sizeof(redis_cfg));
    if (url == NULL)
        return 0;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        if (p[0] != '/' || strlen(p) >= sizeof(redis_cfg.path))
            return -EINVAL;
        str_copy(redis_cfg.path, p, sizeof(redis_cfg.path));
        redis_cfg.on = true;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -EINVAL;
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) { /* [user]:password@ */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n == 0 || n >= sizeof(redis_cfg.password))
            return -EINVAL;
        memcpy(redis_cfg.password, pw, n);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(redis_cfg.host))
        return -EINVAL;
    memcpy(redis_cfg.host, p, hl);
    p += hl;
    redis_cfg.port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return -EINVAL;
        redis_cfg.port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != '\0' || db < 0 || db > 1000)
            return -EINVAL;
        redis_cfg.db = (int)db;
    } else if (*p == '/' || *p == '\0') {
        /* no database: 0 */
    } else {
        return -EINVAL;
    }
    redis_cfg.on = true;
    return 0;
}

void redis_global_open(void)
{
    __atomic_store_n(&redis_accepting, 1, __ATOMIC_RELEASE);
}

void redis_global_close(void)
{
    __atomic_store_n(&redis_accepting, 0, __ATOMIC_RELEASE);
}

static bool redis_accepts(void)
{
    return __atomic_load_n(&redis_accepting, __ATOMIC_ACQUIRE) != 0;
}

bool net_redis_started(void)
{
    return redis_accepts();
}

bool net_redis_on(void)
{
    return redis_cfg.on;
}

bool net_redis_ready(void)
{
    int n = ck_pr_load_int(&redis_threads);
    return !redis_cfg.on || (n > 0 && ck_pr_load_int(&redis_up) == n);
}

static double redis_connected_gauge(void *arg)
{
    (void)arg;
    return ck_pr_load_int(&redis_up);
}

void net_redis_register_metrics(void)
{
    if (redis_cfg.on)
        metrics_register_gauge_fn("switchboard_redis_connected",
                                  "Network threads whose Redis connection is up.",
                                  redis_connected_gauge, NULL);
}

/* ---- Replies ------------------------------------------------------------------------------ */

static net_redis_reply_t *reply_copy(const redisReply *r, int depth)
{
    net_redis_reply_t *o = xcalloc(1, sizeof(*o));
    if (r == NULL || depth > REDIS_DEPTH_MAX) {
        o->type = NET_REDIS_NIL;
        return o;
    }
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        o->type = r->type == REDIS_REPLY_STRING   ? NET_REDIS_STRING
                  : r->type == REDIS_REPLY_STATUS ? NET_REDIS_STATUS
                                                  : NET_REDIS_ERROR;
        o->len = r->len;
        o->str = xmalloc(r->len + 1);
        memcpy(o->str, r->str, r->len);
        o->str[r->len] = '\0';
        break;
    case REDIS_REPLY_INTEGER:
        o->type = NET_REDIS_INTEGER;
        o->integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        o->type = NET_REDIS_ARRAY;
        o->n = r->elements;
        o->elem = o->n ? xcalloc(o->n, sizeof(*o->elem)) : NULL;
        for (size_t i = 0; i < o->n; i++)
            o->elem[i] = reply_copy(r->element[i], depth + 1);
        break;
    default:
        o->type = NET_REDIS_NIL;
        break;
    }
    return o;
}

void net_redis_reply_free(net_redis_reply_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        net_redis_reply_free(r->elem[i]);
    free(r->elem);
    free(r->str);
    free(r);
}

static void redis_msg_free(msg_t *m)
{
    net_redis_reply_free(((net_redis_msg_t *)m)->reply);
    msg_block_free(m);
}

/* Answers target: the reply r (NULL: Redis unreachable). Takes the reference. */
static void redis_answer(actor_t *target, uint64_t cookie, const redisReply *r, uint64_t t0_ns)
{
    net_redis_msg_t *m = MSG_NEW(net_redis_msg_t, NET_MSG_REDIS);
    m->hdr.free_fn = redis_msg_free;
    m->cookie = cookie;
    m->ok = r != NULL;
    if (r != NULL) {
        m->reply = reply_copy(r, 0);
        metric_hist_observe_ns(&g_metrics.redis_seconds, clock_now_ns() - t0_ns);
    }
    actor_send(target, &m->hdr);
    actor_unref(target);
}

/* ---- Commands ----------------------------------------------------------------------------- */

/* What an OUT_REDIS_SUB command carries after its net_out_t header. */
typedef struct redis_subcmd {
    actor_t *target; /* a reference */
    bool unsubscribe;
    char channel[];
} redis_subcmd_t;

static redis_cmd_t *cmd_of(net_out_t *o)
{
    return *(redis_cmd_t **)(void *)(o->buf + LWS_PRE);
}

/* A command no thread took is answered as unreachable. Thread: any. */
static void redis_cmd_free(msg_t *m)
{
    redis_cmd_t *c = cmd_of((net_out_t *)m);
    if (c != NULL && c->target != NULL)
        redis_answer(c->target, c->cookie, NULL, 0);
    free(c);
    msg_block_free(m);
}

int net_redis_cmd(actor_t *target, uint64_t cookie, int argc, const char *const *argv,
                  const size_t *lens)
{
    if (!redis_cfg.on || target == NULL || argc <= 0 || !redis_accepts())
        return -EINVAL;
    int n_threads = g_net.n_threads;
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += (lens ? lens[i] : strlen(argv[i])) + 1;
    size_t head = sizeof(redis_cmd_t) + (size_t)argc * (sizeof(size_t) + sizeof(char *));
    redis_cmd_t *c = xmalloc(head + total);
    c->cookie = cookie;
    c->argc = argc;
    c->lens = (size_t *)(void *)c->bytes;
    c->argv = (char **)(void *)(c->bytes + (size_t)argc * sizeof(size_t));
    char *p = (char *)c + head;
    for (int i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        memcpy(p, argv[i], l);
        p[l] = '\0';
        c->lens[i] = l;
        c->argv[i] = p;
        p += l + 1;
    }
    actor_ref(target);
    c->target = target;
    /* One actor, one connection: its commands are answered in the order it sent them. */
    uintptr_t h = (uintptr_t)target;
    h ^= h >> 17;
    netthr_t *thr = &g_net.threads[(h >> 4) % (uintptr_t)n_threads];
    net_out_t *o = net_out_new(0, OUT_REDIS, sizeof(redis_cmd_t *));
    o->hdr.free_fn = redis_cmd_free;
    *(redis_cmd_t **)(void *)(o->buf + LWS_PRE) = c;
    net_post_thread(thr, o);
    return 0;
}

/* ---- The event adapter: hiredis on the thread's libuv loop -------------------------------- */

typedef struct redis_ev {
    redisAsyncContext *ac; /* NULL once hiredis has cleaned up */
    uv_poll_t poll;
    int events;
} redis_ev_t;

static void ev_on_poll(uv_poll_t *h, int status, int events)
{
    redis_ev_t *e = h->data;
    if (status != 0) {
        /* The socket failed (a refused connect, a reset): hiredis learns it on its next
         * write (connecting) or read. libuv has stopped the handle. */
        e->events = 0;
        if (e->ac != NULL && !(e->ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(e->ac);
        else if (e->ac != NULL)
            redisAsyncHandleRead(e->ac);
        return;
    }
    if (e->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

static void ev_update(redis_ev_t *e, int events)
{
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, ev_on_poll);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p)
{
    redis_ev_t *e = p;
    ev_update(e, e->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    redis_ev_t *e = p;
    ev_update(e, e->events & ~UV_READABLE);
}

static void ev_add_write(void *p)
{
    redis_ev_t *e = p;
    ev_update(e, e->events | UV_WRITABLE);
}

static void ev_del_write(void *p)
{
    redis_ev_t *e = p;
    ev_update(e, e->events & ~UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    redis_ev_t *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    redis_ev_t *e = xcalloc(1, sizeof(*e));
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- The connection (network thread) ------------------------------------------------------ */

static void redis_connect(redis_thr_t *rt);
static void sub_send(redis_thr_t *rt, const char *verb, const char *channel);

static void on_retry(uv_timer_t *t)
{
    redis_connect(t->data);
}

static void redis_retry_later(redis_thr_t *rt);

/* The attempt did not connect in time (a host that drops SYNs): give it up. */
static void on_connect_deadline(uv_timer_t *t)
{
    redis_thr_t *rt = t->data;
    if (rt->state != RS_CONNECTING || rt->ac == NULL)
        return;
    redisAsyncContext *ac = rt->ac;
    rt->ac = NULL;
    log_debug("redis.connect_timeout", LOG_I("thread", rt->thr->idx));
    redisAsyncFree(ac); /* not connected: neither callback runs */
    redis_retry_later(rt);
}

static void redis_retry_later(redis_thr_t *rt)
{
    rt->state = RS_DOWN;
    if (rt->closing)
        return;
    uint32_t ms = rt->backoff_ms ? rt->backoff_ms : REDIS_BACKOFF_MIN_MS;
    rt->backoff_ms = ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : ms * 2;
    uv_timer_start(&rt->retry, on_retry, ms, 0);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    redis_pending_t *p = priv;
    redis_answer(p->target, p->cookie, r, p->t0_ns);
    free(p);
}

/* AUTH and SELECT: an error answer means this URL cannot work; drop the connection. */
static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    const redisReply *rep = r;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
        log_error("redis.setup_failed", LOG_S("error", rep->str));
        redisAsyncDisconnect(ac);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_thr_t *rt = ac->data;
    if (rt->state == RS_UP) {
        ck_pr_dec_int(&redis_up);
        log_warn("redis.down", LOG_I("thread", rt->thr->idx),
                 LOG_S("error", status == REDIS_OK ? "closed" : ac->errstr));
    }
    rt->ac = NULL; /* hiredis frees it after this callback */
    redis_retry_later(rt);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_thr_t *rt = ac->data;
    if (status != REDIS_OK) {
        log_debug("redis.connect_failed", LOG_S("error", ac->errstr));
        uv_timer_stop(&rt->retry); /* the connect deadline */
        rt->ac = NULL; /* freed by hiredis, without on_disconnect */
        redis_retry_later(rt);
        return;
    }
    uv_timer_stop(&rt->retry); /* the connect deadline */
    rt->state = RS_UP;
    rt->backoff_ms = 0;
    ck_pr_inc_int(&redis_up);
    log_info("redis.up", LOG_I("thread", rt->thr->idx), LOG_S("conn", rt->sub ? "pubsub" : "cmd"));
    for (redis_sub_t *s = rt->subs; rt->sub && s; s = s->next)
        sub_send(rt, "SUBSCRIBE", s->channel);
}

static void redis_open(redis_thr_t *rt, const char *ip)
{
    redisAsyncContext *ac = ip ? redisAsyncConnect(ip, redis_cfg.port)
                               : redisAsyncConnectUnix(redis_cfg.path);
    if (ac == NULL || ac->err) {
        log_debug("redis.connect_failed", LOG_S("error", ac ? ac->errstr : "out of memory"));
        if (ac)
            redisAsyncFree(ac);
        redis_retry_later(rt);
        return;
    }
    ac->data = rt;
    if (ev_attach(ac, &rt->thr->loop) != 0) {
        redisAsyncFree(ac);
        redis_retry_later(rt);
        return;
    }
    rt->ac = ac;
    rt->state = RS_CONNECTING;
    uv_timer_start(&rt->retry, on_connect_deadline, REDIS_CONNECT_MS, 0);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued before any command: hiredis writes them first once connected. */
    if (redis_cfg.password[0]) {
        const char *argv[] = {"AUTH", redis_cfg.password};
        redisAsyncCommandArgv(ac, on_setup_reply, NULL, 2, argv, NULL);
    }
    if (redis_cfg.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", redis_cfg.db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, on_setup_reply, NULL, 2, argv, NULL);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    redis_thr_t *rt = req->data;
    rt->gai_pending = false;
    char ip[64] = "";
    if (status == 0 && res != NULL)
        uv_ip_name(res->ai_addr, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    if (rt->closing) {
        if (rt->timer_closed)
            free(rt);
        return;
    }
    if (ip[0] == '\0') {
        log_debug("redis.resolve_failed", LOG_S("host", redis_cfg.host), LOG_I("status", status));
        redis_retry_later(rt);
        return;
    }
    redis_open(rt, ip);
}

static void redis_connect(redis_thr_t *rt)
{
    if (rt->closing || rt->state != RS_DOWN)
        return;
    if (redis_cfg.path[0]) {
        redis_open(rt, NULL);
        return;
    }
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, redis_cfg.host, &a4) == 1 ||
        inet_pton(AF_INET6, redis_cfg.host, &a6) == 1) {
        redis_open(rt, redis_cfg.host);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[8];
    snprintf(port, sizeof(port), "%d", redis_cfg.port);
    rt->gai.data = rt;
    if (uv_getaddrinfo(&rt->thr->loop, &rt->gai, on_resolved, redis_cfg.host, port, &hints) != 0) {
        redis_retry_later(rt);
        return;
    }
    rt->gai_pending = true;
    rt->state = RS_RESOLVING;
}

static redis_thr_t *redis_conn_new(netthr_t *thr, bool sub)
{
    redis_thr_t *rt = xcalloc(1, sizeof(*rt));
    rt->thr = thr;
    rt->sub = sub;
    uv_timer_init(&thr->loop, &rt->retry);
    rt->retry.data = rt;
    ck_pr_inc_int(&redis_threads);
    redis_connect(rt);
    return rt;
}

int redis_init_net(netthr_t *thr)
{
    if (!redis_cfg.on)
        return 0;
    thr->redis = redis_conn_new(thr, false);
    if (thr->idx == 0)
        thr->redis_sub = redis_conn_new(thr, true);
    return 0;
}

void redis_command_net(netthr_t *thr, net_out_t *o)
{
    redis_cmd_t *c = cmd_of(o);
    redis_thr_t *rt = thr->redis;
    if (c == NULL || c->target == NULL)
        return;
    if (rt == NULL || rt->state != RS_UP || rt->ac == NULL)
        return; /* the command's free_fn answers "unreachable" */
    redis_pending_t *p = xmalloc(sizeof(*p));
    p->target = c->target;
    p->cookie = c->cookie;
    p->t0_ns = clock_now_ns();
    if (redisAsyncCommandArgv(rt->ac, on_reply, p, c->argc, (const char **)c->argv, c->lens) !=
        REDIS_OK) {
        free(p);
        return;
    }
    c->target = NULL; /* on_reply answers now */
}

/* ---- Pub/sub ---------------------------------------------------------------------------- */

static void pub_msg_free(msg_t *m)
{
    net_redis_pub_msg_t *p = (net_redis_pub_msg_t *)m;
    free(p->channel);
    free(p->payload);
    msg_block_free(p);
}

/* Every reply on a subscribed channel: ["subscribe", ch, n], ["message", ch, payload], … */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    const redisReply *rep = r;
    redis_thr_t *rt = ac->data;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    for (redis_sub_t *s = rt->subs; s; s = s->next) {
        if (strcmp(s->channel, rep->element[1]->str) != 0)
            continue;
        net_redis_pub_msg_t *m = MSG_NEW(net_redis_pub_msg_t, NET_MSG_REDIS_PUB);
        m->hdr.free_fn = pub_msg_free;
        m->channel = xstrdup(s->channel);
        m->len = rep->element[2]->len;
        m->payload = xmalloc(m->len + 1);
        memcpy(m->payload, rep->element[2]->str, m->len);
        m->payload[m->len] = '\0';
        actor_send(s->target, &m->hdr);
    }
}

static void sub_send(redis_thr_t *rt, const char *verb, const char *channel)
{
    const char *argv[] = {verb, channel};
    redisAsyncCommandArgv(rt->ac, on_sub_reply, NULL, 2, argv, NULL);
}

static redis_subcmd_t *subcmd_of(net_out_t *o)
{
    return *(redis_subcmd_t **)(void *)(o->buf + LWS_PRE);
}

static void redis_subcmd_free(msg_t *m)
{
    redis_subcmd_t *c = subcmd_of((net_out_t *)m);
    if (c != NULL && c->target != NULL)
        actor_unref(c->target);
    free(c);
    msg_block_free(m);
}

static int redis_sub_post(actor_t *target, const char *channel, bool unsubscribe)
{
    if (!redis_cfg.on || target == NULL || !redis_accepts())
        return -EINVAL;
    size_t n = strlen(channel);
    redis_subcmd_t *c = xmalloc(sizeof(*c) + n + 1);
    memcpy(c->channel, channel, n + 1);
    c->target = target;
    c->unsubscribe = unsubscribe;
    actor_ref(target);
    net_out_t *o = net_out_new(0, OUT_REDIS_SUB, sizeof(redis_subcmd_t *));
    o->hdr.free_fn = redis_subcmd_free;
    *(redis_subcmd_t **)(void *)(o->buf + LWS_PRE) = c;
    net_post_thread(&g_net.threads[0], o);
    return 0;
}

int net_redis_subscribe(actor_t *target, const char *channel)
{
    return redis_sub_post(target, channel, false);
}

int net_redis_unsubscribe(actor_t *target, const char *channel)
{
    return redis_sub_post(target, channel, true);
}

void redis_sub_command_net(netthr_t *thr, net_out_t *o)
{
    redis_thr_t *rt = thr->redis_sub;
    redis_subcmd_t *c = subcmd_of(o);
    if (rt == NULL || c == NULL)
        return;
    redis_sub_t **pp = &rt->subs;
    while (*pp && strcmp((*pp)->channel, c->channel) != 0)
        pp = &(*pp)->next;
    if (c->unsubscribe) {
        redis_sub_t *s = *pp;
        if (s == NULL || s->target != c->target)
            return; /* another actor has the channel now */
        *pp = s->next;
        actor_unref(s->target);
        free(s);
        if (rt->state == RS_UP && rt->ac)
            sub_send(rt, "UNSUBSCRIBE", c->channel);
        return;
    }
    if (*pp != NULL) { /* one actor per channel: the newest */
        actor_unref((*pp)->target);
        (*pp)->target = c->target;
        c->target = NULL;
        return;
    }
    size_t n = strlen(c->channel);
    redis_sub_t *s = xmalloc(sizeof(*s) + n + 1);
    memcpy(s->channel, c->channel, n + 1);
    s->target = c->target;
    c->target = NULL;
    s->next = rt->subs;
    rt->subs = s;
    if (rt->state == RS_UP && rt->ac)
        sub_send(rt, "SUBSCRIBE", s->channel);
}

static void redis_timer_closed(uv_handle_t *h)
{
    redis_thr_t *rt = h->data;
    rt->timer_closed = true;
    if (!rt->gai_pending)
        free(rt);
}

static void redis_conn_stop(redis_thr_t *rt)
{
    if (rt == NULL)
        return;
    rt->closing = true;
    while (rt->subs) {
        redis_sub_t *s = rt->subs;
        rt->subs = s->next;
        actor_unref(s->target);
        free(s);
    }
    if (rt->state == RS_UP)
        ck_pr_dec_int(&redis_up);
    ck_pr_dec_int(&redis_threads);
    rt->state = RS_DOWN;
    if (rt->ac != NULL) {
        redisAsyncContext *ac = rt->ac;
        rt->ac = NULL;
        redisAsyncFree(ac); /* answers what is in flight with NULL: "unreachable" */
    }
    if (rt->gai_pending)
        uv_cancel((uv_req_t *)&rt->gai);
    uv_timer_stop(&rt->retry);
    uv_close((uv_handle_t *)&rt->retry, redis_timer_closed);
}

void redis_stop_net(netthr_t *thr)
{
    redis_conn_stop(thr->redis);
    thr->redis = NULL;
    redis_conn_stop(thr->redis_sub);
    thr->redis_sub = NULL;
}
