/*
 * Outbound HTTP (net_fetch) on the network threads: one libcurl multi handle per thread, driven
 * by that thread's libuv loop through curl's socket interface (reference/c-dependencies.md 5).
 *
 * net_fetch() builds the whole easy handle on the caller's thread (parsing, copies, headers), so
 * a network thread only adds it to its multi handle: tool-calling actors cost the audio threads
 * as little as possible. The request travels as an OUT_FETCH command through the inbox of the
 * thread its id names; net_fetch_cancel() follows it as OUT_FETCH_CANCEL on the same inbox, so
 * a cancel is never handled before the request it names.
 *
 * Every request ends in exactly one NET_MSG_FETCH_DONE, whichever way it ends: completion,
 * error, cancel, thread teardown (OUT_STOP), or a command freed unread because the thread had
 * already stopped (the command's free_fn reports it). That is also where the target's reference
 * is dropped.
 *
 * Thread: net, except net_fetch(), net_fetch_cancel() and the command's free_fn (any thread).
 */
#include <ck_pr.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"
#include "net/url.h"

#define FETCH_MAX_BODY_DEFAULT_BYTES (8u * 1024 * 1024)
#define FETCH_CONNECT_TIMEOUT_MS     10000
#define FETCH_MAX_HOST_CONNECTIONS   32
#define FETCH_RETRY_AFTER_MAX_MS     (24LL * 3600 * 1000) /* longer hints are clamped */
#define FETCH_HOST_MAX               256
#define FETCH_HEADER_VALUE_MAX       256
#define FETCH_SEQ_MASK               ((1ULL << NET_ID_THREAD_SHIFT) - 1)
#define FETCH_USER_AGENT             "switchboard"

/* An intrusive doubly linked list node; a list is a pointer to its first node. */
typedef struct fetch_node {
    struct fetch_node *prev, *next;
} fetch_node_t;

/* The curl state of one network thread. Freed in the timer's close callback. */
typedef struct fetch_thr {
    CURLM *multi;
    uv_loop_t *loop;
    uv_timer_t timer;    /* CURLMOPT_TIMERFUNCTION */
    fetch_node_t *reqs;  /* fetch_t: requests in the multi handle */
    fetch_node_t *socks; /* fetch_sock_t: sockets curl asked us to watch */
    bool closing;        /* fetch_stop_net() has begun */
} fetch_thr_t;

/* One socket curl watches; freed in its poll handle's close callback. */
typedef struct fetch_sock {
    uv_poll_t poll;
    fetch_node_t node; /* in fetch_thr_t.socks */
    fetch_thr_t *ft;
    curl_socket_t fd;
} fetch_sock_t;

/* One request: built by net_fetch() on any thread, then owned by one network thread. */
typedef struct fetch {
    fetch_node_t node; /* in fetch_thr_t.reqs while in the multi handle */
    fetch_thr_t *ft;   /* NULL until the network thread adds it */
    uint64_t id;
    actor_t *target; /* a reference, dropped after DONE is sent */
    CURL *easy;
    struct curl_slist *headers; /* wiped before they are freed: Authorization is among them */
    char *req_body;
    size_t max_body;
    bool stream;
    bool too_large; /* the write or header callback refused the body */
    int code;       /* status of the response being received (0 before its status line) */
    int64_t retry_after_ms;
    int64_t retry_after_s_ms; /* from retry-after; retry-after-ms wins when both are present */
    uint64_t start_ns;
    sbuf_t resp;
    net_fetch_done_msg_t *done; /* pre-allocated; headers are parsed straight into it */
    char host[FETCH_HOST_MAX];  /* for logs: never the path, query or credentials */
} fetch_t;

/* The next request number: picks the thread round robin and makes ids unique. */
static uint64_t fetch_seq; /* [atomic, any] only the FAA's atomicity matters: relaxed */
/*
 * 1 from net_start() until net_stop() begins. Relaxed: it only turns away callers that come
 * after the stop has begun (curl is cleaned up at its end); a call racing net_stop() itself is
 * outside the contract of net.h, as for every other net_* call.
 */
static int fetch_open; /* [atomic, any] */

void fetch_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_pr_store_int(&fetch_open, 1);
}

void fetch_global_close(void)
{
    ck_pr_store_int(&fetch_open, 0);
}

void fetch_global_cleanup(void)
{
    curl_global_cleanup();
}

static void fetch_list_push(fetch_node_t **head, fetch_node_t *n)
{
    n->prev = NULL;
    n->next = *head;
    if (n->next)
        n->next->prev = n;
    *head = n;
}

static void fetch_list_remove(fetch_node_t **head, fetch_node_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        *head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* ---- Requests: building and finishing (any thread) ----------------------------------------- */

static void fetch_done_msg_free(msg_t *m)
{
    free(((net_fetch_done_msg_t *)m)->body);
    msg_block_free(m);
}

static void fetch_reset_headers(fetch_t *f)
{
    net_fetch_done_msg_t *d = f->done;
    f->retry_after_ms = -1;
    f->retry_after_s_ms = -1;
    d->should_retry = -1;
    d->request_id[0] = d->content_type[0] = d->session_id[0] = '\0';
}

static void fetch_free(fetch_t *f)
{
    if (f->easy)
        curl_easy_cleanup(f->easy);
    for (struct curl_slist *h = f->headers; h; h = h->next)
        memset(h->data, 0, strlen(h->data));
    curl_slist_free_all(f->headers);
    free(f->req_body);
    sbuf_destroy(&f->resp);
    if (f->done)
        msg_free(&f->done->hdr);
    free(f);
}

/* Sends DONE with error ("" on success), drops the target's reference and frees f. */
static void fetch_complete(fetch_t *f, const char *error)
{
    net_fetch_done_msg_t *d = f->done;
    long status = 0;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    d->status = (int)status;
    str_copy(d->error, error, sizeof(d->error));
    if (error[0] == '\0' && f->resp.len > 0) {
        d->body_len = f->resp.len;
        d->body = sbuf_take(&f->resp);
    }
    d->retry_after_ms = f->retry_after_ms >= 0 ? f->retry_after_ms : f->retry_after_s_ms;
    log_debug("fetch.done", LOG_S("host", f->host), LOG_I("id", f->id), LOG_I("status", status),
              LOG_S("error", error), LOG_I("ms", (clock_now_ns() - f->start_ns) / NS_PER_MS));
    f->done = NULL;
    actor_send(f->target, &d->hdr);
    actor_unref(f->target);
    fetch_free(f);
}

/* Checks the scheme and that curl finds a host; copies the host for logs. Returns 0 or -EINVAL. */
static int fetch_parse_url(const char *url, char *host, size_t hostlen)
{
    static const char *const schemes[] = {"http", "https", NULL};
    url_parts_t u;
    if (url_parse(url, schemes, &u) != 0)
        return -EINVAL;
    str_copy(host, u.host, hostlen);
    url_parts_destroy(&u);
    return 0;
}

/* A header line or method we pass on must not smuggle in another line. */
static bool fetch_is_one_line(const char *s)
{
    return s[strcspn(s, "\r\n")] == '\0';
}

static bool fetch_is_token(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-");
    return n > 0 && s[n] == '\0';
}

/* Appends one header line; the slist copies it. Returns -ENOMEM when curl cannot. */
static int fetch_add_header(fetch_t *f, const char *line)
{
    struct curl_slist *l = curl_slist_append(f->headers, line);
    if (l == NULL)
        return -ENOMEM;
    f->headers = l;
    return 0;
}

/* Builds the request headers: the caller's, then Authorization, Content-Type and Expect. */
static int fetch_build_headers(fetch_t *f, const net_fetch_req_t *req, bool has_body)
{
    bool have_ctype = false;
    for (size_t i = 0; i < NET_FETCH_MAX_HEADERS; i++) {
        const char *h = req->headers[i];
        if (h == NULL)
            continue;
        if (!fetch_is_one_line(h) || strchr(h, ':') == NULL)
            return -EINVAL;
        have_ctype |= strncasecmp(h, "content-type:", 13) == 0;
        if (fetch_add_header(f, h) != 0)
            return -ENOMEM;
    }
    if (req->bearer) {
        if (!fetch_is_one_line(req->bearer))
            return -EINVAL;
        sbuf_t b = SBUF_INIT;
        sbuf_printf(&b, "Authorization: Bearer %s", req->bearer);
        int rc = fetch_add_header(f, b.data);
        memset(b.data, 0, b.len);
        sbuf_destroy(&b);
        if (rc != 0)
            return rc;
    }
    if (has_body && !have_ctype && fetch_add_header(f, "Content-Type: application/json") != 0)
        return -ENOMEM;
    /* No "Expect: 100-continue" for large bodies: servers that ignore it cost us a second. */
    return fetch_add_header(f, "Expect:");
}

static size_t fetch_on_header(char *p, size_t size, size_t n, void *arg);
static size_t fetch_on_body(char *p, size_t size, size_t n, void *arg);

/* Sets the method and body; curl keeps pointers to f's copies, not the caller's. */
static int fetch_set_method(fetch_t *f, const char *method, bool has_body, size_t body_len)
{
    CURL *e = f->easy;
    bool post = strcasecmp(method, "POST") == 0;
    if (!fetch_is_token(method))
        return -EINVAL;
    if (has_body || post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(has_body ? body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, has_body ? f->req_body : "");
    }
    if (strcasecmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (!post && (has_body || strcasecmp(method, "GET") != 0))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return 0;
}

static int fetch_setup(fetch_t *f, const net_fetch_req_t *req)
{
    bool has_body = req->body != NULL && req->body_len > 0;
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    CURL *e = f->easy = curl_easy_init();
    if (e == NULL)
        return -ENOMEM;
    if (has_body) {
        f->req_body = xmalloc(req->body_len + 1);
        memcpy(f->req_body, req->body, req->body_len);
        f->req_body[req->body_len] = '\0';
    }
    int rc = fetch_build_headers(f, req, has_body);
    if (rc == 0)
        rc = fetch_set_method(f, method, has_body, req->body_len);
    if (rc != 0)
        return rc;
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK)
        return -EINVAL;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, f);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, FETCH_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, fetch_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L); /* long SSE streams through NATs */
    /*
     * Without this, ending a transfer whose name is still being resolved (cancel, timeout,
     * teardown) joins curl's resolver thread: the loop would block for as long as getaddrinfo
     * takes. With it the resolver thread is detached and frees itself when it returns.
     */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    long connect_ms = FETCH_CONNECT_TIMEOUT_MS;
    if (req->timeout_ms > 0) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
        if ((long)req->timeout_ms < connect_ms)
            connect_ms = (long)req->timeout_ms;
    }
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    return 0;
}

/* What an OUT_FETCH command carries after its net_out_t header. */
static fetch_t **fetch_of(net_out_t *o)
{
    return (fetch_t **)(void *)(o->buf + LWS_PRE);
}

/* Frees a command; one that no thread took reports its request cancelled. Thread: any. */
static void fetch_cmd_free(msg_t *m)
{
    fetch_t *f = *fetch_of((net_out_t *)m);
    if (f)
        fetch_complete(f, "cancelled");
    msg_block_free(m);
}

uint64_t net_fetch(const net_fetch_req_t *req, actor_t *target)
{
    char host[FETCH_HOST_MAX];
    int n_threads = g_net.n_threads;
    if (req == NULL || target == NULL || n_threads <= 0 || !ck_pr_load_int(&fetch_open) ||
        fetch_parse_url(req->url, host, sizeof(host)) != 0)
        return 0;
    fetch_t *f = xcalloc(1, sizeof(*f));
    f->done = MSG_NEW(net_fetch_done_msg_t, NET_MSG_FETCH_DONE);
    f->done->hdr.free_fn = fetch_done_msg_free;
    fetch_reset_headers(f);
    sbuf_init(&f->resp);
    str_copy(f->host, host, sizeof(f->host));
    f->max_body = req->max_body ? req->max_body : FETCH_MAX_BODY_DEFAULT_BYTES;
    f->stream = req->stream;
    int rc = fetch_setup(f, req);
    if (rc != 0) {
        log_warn("fetch.invalid", LOG_S("host", host), LOG_I("errno", -rc));
        fetch_free(f);
        return 0;
    }
    /* The thread index sits where conn ids keep theirs, so net_post() routes by id. 2^56
     * requests would be needed before a sequence number of 0 could make an id 0. */
    uint64_t seq = ck_pr_faa_64(&fetch_seq, 1) + 1;
    uint64_t thread = seq % (uint64_t)n_threads;
    f->id = f->done->id = (thread << NET_ID_THREAD_SHIFT) | (seq & FETCH_SEQ_MASK);
    actor_ref(target);
    f->target = target;
    f->start_ns = clock_now_ns();
    uint64_t id = f->id; /* f belongs to the network thread once posted */
    net_out_t *o = net_out_new(id, OUT_FETCH, sizeof(fetch_t *));
    o->hdr.free_fn = fetch_cmd_free;
    *fetch_of(o) = f;
    log_debug("fetch.start", LOG_S("host", host), LOG_I("id", id));
    net_post(o);
    return id;
}

void net_fetch_cancel(uint64_t id)
{
    if (id != 0)
        net_post(net_out_new(id, OUT_FETCH_CANCEL, 0));
}

/* ---- Response callbacks (network thread, inside curl) -------------------------------------- */

static bool fetch_name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* Milliseconds from a number of seconds or milliseconds (scale), or -1 when it is not one. */
static int64_t fetch_parse_ms(const char *v, double scale)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || !(x >= 0))
        return -1;
    x *= scale;
    return x > (double)FETCH_RETRY_AFTER_MAX_MS ? FETCH_RETRY_AFTER_MAX_MS : (int64_t)(x + 0.5);
}

/* retry-after: delta seconds, or an HTTP-date (a date in the past means now). */
static int64_t fetch_parse_retry_after(const char *v)
{
    int64_t ms = fetch_parse_ms(v, 1000.0);
    if (ms >= 0)
        return ms;
    time_t at = curl_getdate(v, NULL);
    if (at == -1)
        return -1;
    time_t now = time(NULL);
    ms = at > now ? (int64_t)(at - now) * 1000 : 0;
    return ms > FETCH_RETRY_AFTER_MAX_MS ? FETCH_RETRY_AFTER_MAX_MS : ms;
}

/* The body will be buffered (not streamed) for the response being received. */
static bool fetch_buffers(const fetch_t *f)
{
    return !(f->stream && f->code / 100 == 2);
}

static void fetch_header(fetch_t *f, const char *name, size_t nlen, const char *v)
{
    net_fetch_done_msg_t *d = f->done;
    if (fetch_name_is(name, nlen, "retry-after-ms"))
        f->retry_after_ms = fetch_parse_ms(v, 1.0);
    else if (fetch_name_is(name, nlen, "retry-after"))
        f->retry_after_s_ms = fetch_parse_retry_after(v);
    else if (fetch_name_is(name, nlen, "x-should-retry"))
        d->should_retry = strcasecmp(v, "true") == 0 ? 1 : strcasecmp(v, "false") == 0 ? 0 : -1;
    else if (fetch_name_is(name, nlen, "x-request-id"))
        str_copy(d->request_id, v, sizeof(d->request_id));
    else if (fetch_name_is(name, nlen, "content-type"))
        str_copy(d->content_type, v, sizeof(d->content_type));
    else if (fetch_name_is(name, nlen, "mcp-session-id"))
        str_copy(d->session_id, v, sizeof(d->session_id));
    else if (fetch_name_is(name, nlen, "content-length") && fetch_buffers(f) &&
             strtoull(v, NULL, 10) > f->max_body)
        f->too_large = true; /* refuse before a byte of the body arrives */
}

/*
 * One header line ("Name: value\r\n"), a status line, or the blank line that ends a block.
 * A status line starts a new block (100 Continue, a proxy's CONNECT answer), so what the
 * previous block said is forgotten.
 */
static size_t fetch_on_header(char *p, size_t size, size_t n, void *arg)
{
    fetch_t *f = arg;
    size_t len = size * n;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        const char *d = memchr(p, ' ', len), *end = p + len; /* p is not NUL-terminated */
        f->code = 0;
        for (d = d ? d + 1 : end; d < end && *d >= '0' && *d <= '9'; d++)
            f->code = f->code * 10 + (*d - '0');
        fetch_reset_headers(f);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon == NULL)
        return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char value[FETCH_HEADER_VALUE_MAX];
    size_t vlen = (size_t)(end - v) < sizeof(value) ? (size_t)(end - v) : sizeof(value) - 1;
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    fetch_header(f, p, nlen, value);
    return f->too_large ? 0 : len;
}

static size_t fetch_on_body(char *p, size_t size, size_t n, void *arg)
{
    fetch_t *f = arg;
    size_t len = size * n;
    if (!fetch_buffers(f)) {
        net_fetch_data_msg_t *m =
            (net_fetch_data_msg_t *)msg_new(NET_MSG_FETCH_DATA, sizeof(*m) + len + 1);
        m->id = f->id;
        m->status = f->code;
        str_copy(m->content_type, f->done->content_type, sizeof(m->content_type));
        str_copy(m->session_id, f->done->session_id, sizeof(m->session_id));
        m->len = len;
        memcpy(m->data, p, len);
        m->data[len] = '\0';
        actor_send(f->target, &m->hdr);
        return len;
    }
    if (len > f->max_body - f->resp.len) {
        f->too_large = true;
        return 0; /* the transfer ends with CURLE_WRITE_ERROR */
    }
    sbuf_append(&f->resp, p, len);
    return len;
}

/* ---- The multi handle on the loop (network thread) ----------------------------------------- */

static const char *fetch_error_text(const fetch_t *f, CURLcode res)
{
    if (f->too_large)
        return "body_too_large";
    switch (res) {
    case CURLE_OK:
        return "";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "dns";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    default:
        return curl_easy_strerror(res);
    }
}

/* Takes f out of the multi handle and reports it. Never called from inside a curl callback. */
static void fetch_finish_net(fetch_t *f, const char *error)
{
    fetch_thr_t *ft = f->ft;
    curl_multi_remove_handle(ft->multi, f->easy); /* may close sockets: fetch_on_socket */
    fetch_list_remove(&ft->reqs, &f->node);
    fetch_complete(f, error);
}

/* Reports every transfer curl has finished. The CURLMsg dies with curl_multi_remove_handle. */
static void fetch_check_done_net(fetch_thr_t *ft)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(ft->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode res = msg->data.result;
        fetch_t *f = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        fetch_finish_net(f, fetch_error_text(f, res));
    }
}

static void fetch_on_poll(uv_poll_t *h, int status, int events)
{
    fetch_sock_t *s = h->data;
    int flags = 0, running;
    if (status < 0) {
        flags = CURL_CSELECT_ERR; /* the multi-uv example drops this: curl would never learn */
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    fetch_thr_t *ft = s->ft; /* curl may close s in the call below */
    curl_multi_socket_action(ft->multi, s->fd, flags, &running);
    fetch_check_done_net(ft);
}

static void fetch_on_timer(uv_timer_t *t)
{
    fetch_thr_t *ft = t->data;
    int running;
    curl_multi_socket_action(ft->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    fetch_check_done_net(ft);
}

static void fetch_sock_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Stops watching s at once (curl may reuse the fd number right away) and closes its handle. */
static void fetch_sock_close(fetch_sock_t *s)
{
    fetch_thr_t *ft = s->ft;
    uv_poll_stop(&s->poll);
    fetch_list_remove(&ft->socks, &s->node);
    uv_close((uv_handle_t *)&s->poll, fetch_sock_close_cb);
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to know about socket fd. */
static int fetch_on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    fetch_thr_t *ft = userp;
    fetch_sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            fetch_sock_close(s);
            curl_multi_assign(ft->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        if (uv_poll_init_socket(ft->loop, &s->poll, fd) != 0) {
            log_warn("fetch.poll_init", LOG_I("fd", fd));
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->ft = ft;
        s->fd = fd;
        fetch_list_push(&ft->socks, &s->node);
        curl_multi_assign(ft->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, fetch_on_poll);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION. Never drives curl from here: that would re-enter it. */
static int fetch_on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    fetch_thr_t *ft = userp;
    if (timeout_ms < 0 || ft->closing)
        uv_timer_stop(&ft->timer);
    else
        uv_timer_start(&ft->timer, fetch_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

int fetch_init_net(netthr_t *thr)
{
    fetch_thr_t *ft = xcalloc(1, sizeof(*ft));
    ft->multi = curl_multi_init();
    if (ft->multi == NULL) {
        free(ft);
        return -ENOMEM;
    }
    curl_multi_setopt(ft->multi, CURLMOPT_SOCKETFUNCTION, fetch_on_socket);
    curl_multi_setopt(ft->multi, CURLMOPT_SOCKETDATA, ft);
    curl_multi_setopt(ft->multi, CURLMOPT_TIMERFUNCTION, fetch_on_curl_timer);
    curl_multi_setopt(ft->multi, CURLMOPT_TIMERDATA, ft);
    curl_multi_setopt(ft->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)FETCH_MAX_HOST_CONNECTIONS);
    ft->loop = &thr->loop;
    uv_timer_init(ft->loop, &ft->timer);
    ft->timer.data = ft;
    thr->fetch = ft;
    return 0;
}

static void fetch_start_net(netthr_t *thr, fetch_t *f)
{
    fetch_thr_t *ft = thr->fetch;
    if (thr->stopping || ft == NULL || ft->closing) {
        fetch_complete(f, "cancelled");
        return;
    }
    CURLMcode mc = curl_multi_add_handle(ft->multi, f->easy);
    if (mc != CURLM_OK) {
        fetch_complete(f, curl_multi_strerror(mc));
        return;
    }
    f->ft = ft;
    fetch_list_push(&ft->reqs, &f->node);
}

/* Cancels by id; a linear scan, as cancels are rare and a thread carries tens of requests. */
static void fetch_cancel_net(netthr_t *thr, uint64_t id)
{
    fetch_thr_t *ft = thr->fetch;
    for (fetch_node_t *n = ft ? ft->reqs : NULL; n; n = n->next) {
        fetch_t *f = container_of(n, fetch_t, node);
        if (f->id == id) {
            fetch_finish_net(f, "cancelled");
            return;
        }
    }
    /* Already finished: its DONE is on its way. */
}

void fetch_command_net(netthr_t *thr, net_out_t *o)
{
    if (o->kind == OUT_FETCH_CANCEL) {
        fetch_cancel_net(thr, o->conn);
        return;
    }
    fetch_t *f = *fetch_of(o);
    *fetch_of(o) = NULL; /* ours now; the command's free_fn must not report it */
    if (f)
        fetch_start_net(thr, f);
}

static void fetch_thr_close_cb(uv_handle_t *h)
{
    free(h->data);
}

void fetch_stop_net(netthr_t *thr)
{
    fetch_thr_t *ft = thr->fetch;
    if (ft == NULL)
        return;
    ft->closing = true;
    while (ft->reqs)
        fetch_finish_net(container_of(ft->reqs, fetch_t, node), "cancelled");
    curl_multi_cleanup(ft->multi); /* closes cached connections; may still call fetch_on_socket */
    ft->multi = NULL;
    while (ft->socks) /* curl normally removed them all; never leave a handle open */
        fetch_sock_close(container_of(ft->socks, fetch_sock_t, node));
    uv_timer_stop(&ft->timer);
    uv_close((uv_handle_t *)&ft->timer, fetch_thr_close_cb);
    thr->fetch = NULL;
}
