/* The network as the actor unit tests play it; see fake_net.h. */
#include "tests/fakes/fake_net.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sbuf.h"
#include "base/util.h"
#include "net/net_int.h"

#define FAKE_CONN_FIRST  1000 /* connection ids start here: easy to tell from cookies in output */
#define FAKE_CALLS_MIN   64
#define FAKE_PEER_IP     "127.0.0.1"
#define FAKE_EXIT_SIGNAL SIGKILL /* how net_stop() ends a child (net.h) */

/* A connection the fake knows: inbound (accepted) or outbound (net_wsc_connect). */
typedef struct fconn {
    struct fconn *next;
    conn_id_t id;
    actor_t *target;  /* the connection's reference, dropped after WS_CLOSED */
    actor_t *text_to; /* outbound: net_wsc_route_text's actor (a reference), or NULL */
    uint64_t cookie;  /* outbound */
    bool outbound;
    bool opened; /* outbound: WS_OPEN was delivered */
} fconn_t;

/* A fetch or a child process in flight: its target is held until its last message. */
typedef struct fjob {
    struct fjob *next;
    uint64_t id;
    actor_t *target;
} fjob_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* signalled on every appended call */
    fake_net_call_t **calls; /* {lock} */
    size_t n, cap;           /* {lock} */
    fconn_t *conns;          /* {lock} */
    fjob_t *fetches;         /* {lock} */
    fjob_t *procs;           /* {lock} */
    uint64_t next_conn;      /* {lock} */
    uint64_t next_id;        /* {lock} fetch and process ids */
    bool stopped;            /* {lock} after fake_net_shutdown(): nothing is recorded or held */
} N = {.lock = PTHREAD_MUTEX_INITIALIZER};

void fake_net_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&N.cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&N.lock);
    N.stopped = false;
    N.next_conn = FAKE_CONN_FIRST;
    N.next_id = 0;
    pthread_mutex_unlock(&N.lock);
}

/* ---- The log --------------------------------------------------------------------------------- */

static fake_net_call_t *call_new(fake_net_op_t op, conn_id_t conn)
{
    fake_net_call_t *c = xcalloc(1, sizeof(*c));
    c->op = op;
    c->conn = conn;
    return c;
}

static void call_set_text(fake_net_call_t *c, const void *p, size_t len)
{
    c->text = xmalloc(len + 1);
    if (len)
        memcpy(c->text, p, len);
    c->text[len] = '\0';
    c->len = len;
    c->json = cJSON_ParseWithLength(c->text, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c->json, "type");
    c->type = cJSON_IsString(t) ? t->valuestring : NULL;
}

static void call_free(fake_net_call_t *c)
{
    free(c->url);
    free(c->bearer);
    free(c->text);
    cJSON_Delete(c->json);
    free(c);
}

/* Appends c to the log (or frees it after shutdown). Caller holds N.lock. */
static void append_locked(fake_net_call_t *c)
{
    if (N.stopped) {
        call_free(c);
        return;
    }
    if (N.n == N.cap) {
        N.cap = N.cap ? 2 * N.cap : FAKE_CALLS_MIN;
        N.calls = xrealloc(N.calls, N.cap * sizeof(*N.calls));
    }
    c->seq = N.n + 1;
    N.calls[N.n++] = c;
    pthread_cond_broadcast(&N.cond);
}

static void append(fake_net_call_t *c)
{
    pthread_mutex_lock(&N.lock);
    append_locked(c);
    pthread_mutex_unlock(&N.lock);
}

static bool matches(const fake_net_call_t *c, fake_net_op_t op, conn_id_t conn, const char *type)
{
    if (c->op != op || (conn && c->conn != conn))
        return false;
    return type == NULL || (c->type && strcmp(c->type, type) == 0);
}

static const fake_net_call_t *wait_for(uint64_t *cursor, fake_net_op_t op, conn_id_t conn,
                                       const char *type)
{
    struct timespec deadline;
    clock_deadline(&deadline, CLOCK_MONOTONIC, FAKE_NET_WAIT_MS);
    const fake_net_call_t *found = NULL;
    pthread_mutex_lock(&N.lock);
    size_t i = (size_t)*cursor;
    for (;;) {
        for (; i < N.n && found == NULL; i++)
            if (matches(N.calls[i], op, conn, type))
                found = N.calls[i];
        if (found || pthread_cond_timedwait(&N.cond, &N.lock, &deadline) == ETIMEDOUT)
            break;
    }
    if (found == NULL) /* one last look: calls appended while the wait timed out */
        for (; i < N.n && found == NULL; i++)
            if (matches(N.calls[i], op, conn, type))
                found = N.calls[i];
    pthread_mutex_unlock(&N.lock);
    if (found)
        *cursor = found->seq;
    return found;
}

const fake_net_call_t *fake_net_wait(uint64_t *cursor, fake_net_op_t op, conn_id_t conn)
{
    return wait_for(cursor, op, conn, NULL);
}

const fake_net_call_t *fake_net_wait_type(uint64_t *cursor, conn_id_t conn, const char *type)
{
    return wait_for(cursor, FNET_WS_TEXT, conn, type);
}

static int count(fake_net_op_t op, conn_id_t conn, const char *type)
{
    int n = 0;
    pthread_mutex_lock(&N.lock);
    for (size_t i = 0; i < N.n; i++)
        n += matches(N.calls[i], op, conn, type);
    pthread_mutex_unlock(&N.lock);
    return n;
}

int fake_net_count(fake_net_op_t op, conn_id_t conn)
{
    return count(op, conn, NULL);
}

int fake_net_count_type(conn_id_t conn, const char *type)
{
    return count(FNET_WS_TEXT, conn, type);
}

bool fake_net_is_close(const fake_net_call_t *c, ws_close_t why)
{
    return c->op == FNET_WS_CLOSE && c->why == why;
}

/* ---- net.h: sending -------------------------------------------------------------------------- */

void net_ws_send_text(conn_id_t c, const char *s, size_t len)
{
    fake_net_call_t *call = call_new(FNET_WS_TEXT, c);
    call_set_text(call, s, len);
    append(call);
}

/* Recorded as the two sends it stands for: what the peer receives is the same. */
void net_ws_send_text2(conn_id_t c, const char *a, size_t alen, const char *b, size_t blen)
{
    net_ws_send_text(c, a, alen);
    net_ws_send_text(c, b, blen);
}

void net_ws_send_binary(conn_id_t c, const void *p, size_t len)
{
    fake_net_call_t *call = call_new(FNET_WS_BINARY, c);
    call->text = xmalloc(len + 1);
    memcpy(call->text, p, len);
    call->text[len] = '\0';
    call->len = len;
    append(call);
}

void net_ws_protocol_error(conn_id_t c, const char *code, const char *message)
{
    fake_net_call_t *call = call_new(FNET_WS_PROTOCOL_ERROR, c);
    str_copy(call->code, code, sizeof(call->code));
    call_set_text(call, message, strlen(message));
    append(call);
}

void net_ws_close(conn_id_t c, ws_close_t why)
{
    fake_net_call_t *call = call_new(FNET_WS_CLOSE, c);
    call->close_code = ws_close_code(why);
    str_copy(call->close_reason, ws_close_reason(why), sizeof(call->close_reason));
    call->why = why;
    append(call);
}

void net_http_respond(conn_id_t c, int status, const char *body, size_t len,
                      const char *extra_headers)
{
    (void)extra_headers;
    fake_net_call_t *call = call_new(FNET_HTTP_RESPOND, c);
    call->status = status;
    call_set_text(call, body ? body : "", body ? len : 0);
    append(call);
}

void net_http_respond_typed(conn_id_t c, int status, const char *content_type, const char *body,
                            size_t len, const char *extra_headers)
{
    (void)content_type;
    net_http_respond(c, status, body, len, extra_headers);
}

/* No socket is bound in the actor tests. */
int net_port(void)
{
    return 0;
}

bool net_draining(void)
{
    return false;
}

/* No Redis in the actor tests: every actor runs in its one-process mode (SPEC 13). */
bool net_redis_on(void)
{
    return false;
}

bool net_redis_ready(void)
{
    return true;
}

bool net_redis_started(void)
{
    return false;
}

int net_redis_cmd(actor_t *target, uint64_t cookie, int argc, const char *const *argv,
                  const size_t *lens)
{
    (void)target;
    (void)cookie;
    (void)argc;
    (void)argv;
    (void)lens;
    return -EINVAL;
}

void net_redis_reply_free(net_redis_reply_t *r)
{
    (void)r;
}

int net_redis_subscribe(actor_t *target, const char *channel)
{
    (void)target;
    (void)channel;
    return -EINVAL;
}

int net_redis_unsubscribe(actor_t *target, const char *channel)
{
    (void)target;
    (void)channel;
    return -EINVAL;
}

/* No PostgreSQL in the actor tests either: records stay in the SQLite store (SPEC 13). */
int net_pg_configure(const char *url)
{
    return url == NULL ? 0 : -EINVAL;
}

bool net_pg_on(void)
{
    return false;
}

bool net_pg_ready(void)
{
    return true;
}

void net_pg_set_setup(const char *sql)
{
    (void)sql;
}

void net_pg_register_metrics(void)
{
}

int net_pg_query(actor_t *target, uint64_t cookie, const char *sql, int nparams,
                 const char *const *params, unsigned flags)
{
    (void)target;
    (void)cookie;
    (void)sql;
    (void)nparams;
    (void)params;
    (void)flags;
    return -EINVAL;
}

/* ---- net.h: outbound WebSockets, fetches, processes ------------------------------------------ */

int net_wsc_connect(conn_id_t near, const char *url, const char *bearer, actor_t *target,
                    uint64_t cookie, size_t max_msg_bytes)
{
    (void)max_msg_bytes;
    if (url == NULL || (strncmp(url, "ws://", 5) != 0 && strncmp(url, "wss://", 6) != 0))
        return -EINVAL;
    fconn_t *fc = xcalloc(1, sizeof(*fc));
    fc->target = target;
    fc->cookie = cookie;
    fc->outbound = true;
    fake_net_call_t *call = call_new(FNET_WSC_CONNECT, 0);
    call->near = near;
    call->url = xstrdup(url);
    call->bearer = bearer ? xstrdup(bearer) : NULL;
    call->cookie = cookie;
    call->target = target;
    pthread_mutex_lock(&N.lock);
    if (N.stopped) {
        pthread_mutex_unlock(&N.lock);
        free(fc);
        call_free(call);
        return -EINVAL; /* nothing is posted, as for a malformed url */
    }
    actor_ref(target);
    fc->id = call->conn = ++N.next_conn;
    fc->next = N.conns;
    N.conns = fc;
    append_locked(call);
    pthread_mutex_unlock(&N.lock);
    return 0;
}

void net_wsc_route_text(conn_id_t c, actor_t *to)
{
    pthread_mutex_lock(&N.lock);
    fconn_t *fc = NULL;
    for (fconn_t *f = N.conns; f; f = f->next)
        if (f->id == c)
            fc = f;
    if (fc && fc->outbound) {
        if (to)
            actor_ref(to);
        if (fc->text_to)
            actor_unref(fc->text_to);
        fc->text_to = to;
    }
    pthread_mutex_unlock(&N.lock);
}

/* Registers a job holding target and logs call with its new id; 0 after shutdown. */
static uint64_t job_start(fjob_t **list, actor_t *target, fake_net_call_t *call)
{
    pthread_mutex_lock(&N.lock);
    if (N.stopped) {
        pthread_mutex_unlock(&N.lock);
        call_free(call);
        return 0;
    }
    fjob_t *j = xcalloc(1, sizeof(*j));
    actor_ref(target);
    j->target = target;
    uint64_t id = j->id = call->id = ++N.next_id;
    j->next = *list;
    *list = j;
    append_locked(call);
    pthread_mutex_unlock(&N.lock);
    return id; /* j may be answered and freed by now */
}

/* Unlinks job id from list and returns it (the caller delivers and frees), or NULL. */
static fjob_t *job_take(fjob_t **list, uint64_t id)
{
    fjob_t *found = NULL;
    pthread_mutex_lock(&N.lock);
    for (fjob_t **pp = list; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&N.lock);
    return found;
}

uint64_t net_fetch(const net_fetch_req_t *req, actor_t *target)
{
    if (req->url == NULL ||
        (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0))
        return 0;
    fake_net_call_t *call = call_new(FNET_FETCH, 0);
    str_copy(call->method,
             req->method ? req->method
             : req->body ? "POST"
                         : "GET",
             sizeof(call->method));
    call->url = xstrdup(req->url);
    call->bearer = req->bearer ? xstrdup(req->bearer) : NULL;
    call_set_text(call, req->body ? req->body : "", req->body ? req->body_len : 0);
    call->timeout_ms = req->timeout_ms;
    call->target = target;
    return job_start(&N.fetches, target, call);
}

static void fetch_done_free(msg_t *m)
{
    free(((net_fetch_done_msg_t *)m)->body);
    msg_block_free(m);
}

/* Delivers the one FETCH_DONE of job j and drops its reference. */
static void deliver_done(fjob_t *j, int status, const char *body, const char *error)
{
    net_fetch_done_msg_t *d = MSG_NEW(net_fetch_done_msg_t, NET_MSG_FETCH_DONE);
    d->hdr.free_fn = fetch_done_free;
    d->id = j->id;
    d->status = status;
    str_copy(d->error, error ? error : "", sizeof(d->error));
    if (body && body[0]) {
        d->body = xstrdup(body);
        d->body_len = strlen(body);
    }
    d->retry_after_ms = -1;
    d->should_retry = -1;
    str_copy(d->content_type, "application/json", sizeof(d->content_type));
    actor_send(j->target, &d->hdr);
    actor_unref(j->target);
    free(j);
}

void net_fetch_cancel(uint64_t id)
{
    fake_net_call_t *call = call_new(FNET_FETCH_CANCEL, 0);
    call->id = id;
    append(call);
    fjob_t *j = job_take(&N.fetches, id);
    if (j)
        deliver_done(j, 0, NULL, "cancelled");
}

void fake_net_fetch_done(uint64_t id, int status, const char *body, const char *error)
{
    fjob_t *j = job_take(&N.fetches, id);
    if (j == NULL)
        TEST_FAIL_("fetch %llu is not in flight", (unsigned long long)id);
    deliver_done(j, status, body, error);
}

uint64_t net_proc_spawn(const net_proc_req_t *req, actor_t *target)
{
    if (req->file == NULL || req->file[0] == '\0')
        return 0;
    fake_net_call_t *call = call_new(FNET_PROC_SPAWN, 0);
    call->url = xstrdup(req->file);
    call->target = target;
    return job_start(&N.procs, target, call);
}

void net_proc_write(uint64_t id, const void *data, size_t len)
{
    fake_net_call_t *call = call_new(FNET_PROC_WRITE, 0);
    call->id = id;
    call_set_text(call, data, len);
    append(call);
}

void net_proc_kill(uint64_t id, int signum)
{
    fake_net_call_t *call = call_new(FNET_PROC_KILL, 0);
    call->id = id;
    call->status = signum;
    append(call);
}

void net_proc_shutdown(uint64_t id, uint32_t grace_ms)
{
    fake_net_call_t *call = call_new(FNET_PROC_KILL, 0);
    call->id = id;
    call->status = (int)grace_ms;
    append(call);
}

/* ---- Playing the network: connections -------------------------------------------------------- */

conn_id_t fake_net_conn_id(void)
{
    pthread_mutex_lock(&N.lock);
    conn_id_t c = ++N.next_conn;
    pthread_mutex_unlock(&N.lock);
    return c;
}

static fconn_t *conn_find_locked(conn_id_t c)
{
    for (fconn_t *fc = N.conns; fc; fc = fc->next)
        if (fc->id == c)
            return fc;
    return NULL;
}

static fconn_t *conn_take(conn_id_t c)
{
    fconn_t *found = NULL;
    pthread_mutex_lock(&N.lock);
    for (fconn_t **pp = &N.conns; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == c) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&N.lock);
    if (found == NULL)
        TEST_FAIL_("connection %llu is not open", (unsigned long long)c);
    return found;
}

/* The target of open connection c with a reference for the caller; fails the test when none. */
static actor_t *conn_target_ref(conn_id_t c, fconn_t *copy)
{
    pthread_mutex_lock(&N.lock);
    fconn_t *fc = conn_find_locked(c);
    if (fc) {
        actor_ref(fc->target);
        *copy = *fc;
    }
    pthread_mutex_unlock(&N.lock);
    if (fc == NULL)
        TEST_FAIL_("connection %llu is not open", (unsigned long long)c);
    return copy->target;
}

actor_t *fake_net_ws_target(conn_id_t c)
{
    pthread_mutex_lock(&N.lock);
    fconn_t *fc = conn_find_locked(c);
    actor_t *a = fc ? fc->target : NULL;
    pthread_mutex_unlock(&N.lock);
    return a;
}

actor_t *fake_net_text_target(conn_id_t c)
{
    pthread_mutex_lock(&N.lock);
    fconn_t *fc = conn_find_locked(c);
    actor_t *a = fc ? (fc->text_to ? fc->text_to : fc->target) : NULL;
    pthread_mutex_unlock(&N.lock);
    return a;
}

static void open_msg_free(msg_t *m)
{
    free(((net_ws_open_msg_t *)m)->query);
    msg_block_free(m);
}

static void loopback_peer(net_peer_t *p)
{
    memset(p, 0, sizeof(*p));
    str_copy(p->ip, FAKE_PEER_IP, sizeof(p->ip));
    p->addr16[10] = p->addr16[11] = 0xff;
    p->addr16[12] = 127;
    p->addr16[15] = 1;
    p->loopback = true;
}

conn_id_t fake_net_ws_accept(net_ws_target_fn fn, void *arg, const char *query)
{
    net_peer_t peer;
    loopback_peer(&peer);
    ws_close_t why = WS_CLOSE_AT_CAPACITY;
    conn_id_t id = fake_net_conn_id();
    actor_t *target = fn(arg, &peer, query ? query : "", &why);
    if (target == NULL) {
        net_ws_close(id, why); /* what net does with a refusal, logged the same way */
        return 0;
    }
    fconn_t *fc = xcalloc(1, sizeof(*fc));
    fc->id = id;
    fc->target = target; /* the reference fn gave the connection */
    fc->opened = true;
    net_ws_open_msg_t *m = MSG_NEW(net_ws_open_msg_t, NET_MSG_WS_OPEN);
    m->hdr.free_fn = open_msg_free;
    m->conn = id;
    m->path = "/fake";
    m->query = xstrdup(query ? query : "");
    m->peer = peer;
    pthread_mutex_lock(&N.lock);
    fc->next = N.conns;
    N.conns = fc;
    pthread_mutex_unlock(&N.lock);
    actor_send(target, &m->hdr);
    return id;
}

void fake_net_ws_opened(conn_id_t c, const char *request_id)
{
    fconn_t fc;
    actor_t *target = conn_target_ref(c, &fc);
    pthread_mutex_lock(&N.lock);
    fconn_t *live = conn_find_locked(c);
    if (live)
        live->opened = true;
    pthread_mutex_unlock(&N.lock);
    net_ws_open_msg_t *m = MSG_NEW(net_ws_open_msg_t, NET_MSG_WS_OPEN);
    m->hdr.free_fn = open_msg_free;
    m->conn = c;
    m->query = xstrdup("");
    m->cookie = fc.cookie;
    str_copy(m->request_id, request_id ? request_id : "", sizeof(m->request_id));
    actor_send(target, &m->hdr);
    actor_unref(target);
}

static void text_msg_free(msg_t *m)
{
    cJSON_Delete(((net_ws_text_msg_t *)m)->json);
    msg_block_free(m);
}

static net_ws_text_msg_t *text_msg_new(conn_id_t conn, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(t))
        TEST_FAIL_("not an event (an object with a string type): %s", json);
    net_ws_text_msg_t *m = MSG_NEW(net_ws_text_msg_t, NET_MSG_WS_TEXT);
    m->hdr.free_fn = text_msg_free;
    m->conn = conn;
    m->json = j;
    m->type = t->valuestring;
    m->len = strlen(json);
    return m;
}

void fake_net_post_text(actor_t *actor, conn_id_t conn, const char *json)
{
    actor_send(actor, &text_msg_new(conn, json)->hdr);
}

void fake_net_ws_text(conn_id_t c, const char *json)
{
    actor_t *target = NULL;
    bool outbound = false;
    pthread_mutex_lock(&N.lock);
    fconn_t *fc = conn_find_locked(c);
    if (fc) {
        target = fc->text_to ? fc->text_to : fc->target; /* as net routes text (net.h) */
        outbound = fc->outbound;
        actor_ref(target);
    }
    pthread_mutex_unlock(&N.lock);
    if (target == NULL)
        TEST_FAIL_("connection %llu is not open", (unsigned long long)c);
    /* An outbound connection's audio delta arrives as net/wsc.c posts it. */
    net_ws_binary_msg_t *fast = outbound ? netmsg_audio_delta_new(c, json, strlen(json), 0) : NULL;
    actor_send(target, fast ? &fast->hdr : &text_msg_new(c, json)->hdr);
    actor_unref(target);
}

void fake_net_ws_binary(conn_id_t c, const void *data, size_t len)
{
    fconn_t fc;
    actor_t *target = conn_target_ref(c, &fc);
    net_ws_binary_msg_t *m =
        (net_ws_binary_msg_t *)msg_new(NET_MSG_WS_BINARY, sizeof(net_ws_binary_msg_t) + len);
    m->hdr.flags = MSG_F_AUDIO;
    m->conn = c;
    m->num = -1;
    m->len = len;
    memcpy(m->data, data, len);
    actor_send(target, &m->hdr);
    actor_unref(target);
}

/* WS_CLOSED for fc (taken off the list), then the connection's reference goes. */
static void deliver_closed(fconn_t *fc, ws_close_t why, uint16_t code, const char *reason)
{
    net_ws_closed_msg_t *m = MSG_NEW(net_ws_closed_msg_t, NET_MSG_WS_CLOSED);
    m->conn = fc->id;
    m->why = why;
    m->by_server = why != WS_CLOSE_NONE;
    m->code = code;
    str_copy(m->reason, reason ? reason : "", sizeof(m->reason));
    m->cookie = fc->cookie;
    m->never_opened = fc->outbound && !fc->opened;
    actor_send(fc->target, &m->hdr);
    actor_unref(fc->target);
    if (fc->text_to)
        actor_unref(fc->text_to);
    free(fc);
}

void fake_net_ws_closed(conn_id_t c, ws_close_t why)
{
    deliver_closed(conn_take(c), why, ws_close_code(why), ws_close_reason(why));
}

void fake_net_ws_peer_closed(conn_id_t c, uint16_t code)
{
    deliver_closed(conn_take(c), WS_CLOSE_NONE, code, "");
}

void fake_net_ws_finish_close(conn_id_t c)
{
    const fake_net_call_t *last = NULL;
    pthread_mutex_lock(&N.lock);
    for (size_t i = N.n; i > 0 && last == NULL; i--)
        if (N.calls[i - 1]->op == FNET_WS_CLOSE && N.calls[i - 1]->conn == c)
            last = N.calls[i - 1];
    pthread_mutex_unlock(&N.lock);
    if (last == NULL)
        TEST_FAIL_("nobody asked to close connection %llu", (unsigned long long)c);
    deliver_closed(conn_take(c), last->why, last->close_code, last->close_reason);
}

/* ---- Shutdown -------------------------------------------------------------------------------- */

static void proc_exit(fjob_t *j)
{
    net_proc_exit_msg_t *m = MSG_NEW(net_proc_exit_msg_t, NET_MSG_PROC_EXIT);
    m->id = j->id;
    m->term_signal = FAKE_EXIT_SIGNAL;
    actor_send(j->target, &m->hdr);
    actor_unref(j->target);
    free(j);
}

void fake_net_shutdown(void)
{
    pthread_mutex_lock(&N.lock);
    N.stopped = true;
    fconn_t *conns = N.conns;
    fjob_t *fetches = N.fetches, *procs = N.procs;
    N.conns = NULL;
    N.fetches = N.procs = NULL;
    fake_net_call_t **calls = N.calls;
    size_t n = N.n;
    N.calls = NULL;
    N.n = N.cap = 0;
    pthread_mutex_unlock(&N.lock);
    while (conns) {
        fconn_t *fc = conns;
        conns = fc->next;
        deliver_closed(fc, WS_CLOSE_SHUTDOWN, ws_close_code(WS_CLOSE_SHUTDOWN),
                       ws_close_reason(WS_CLOSE_SHUTDOWN));
    }
    while (fetches) {
        fjob_t *j = fetches;
        fetches = j->next;
        deliver_done(j, 0, NULL, "cancelled");
    }
    while (procs) {
        fjob_t *j = procs;
        procs = j->next;
        proc_exit(j);
    }
    for (size_t i = 0; i < n; i++)
        call_free(calls[i]);
    free(calls);
    pthread_cond_destroy(&N.cond);
}
