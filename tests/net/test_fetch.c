/*
 * Outbound HTTP (net_fetch) against a tiny HTTP/1.1 server of our own on plain sockets: it can
 * stall, stream chunks with pauses and send headers that net's own routes cannot. A sink actor
 * receives NET_MSG_FETCH_DATA / NET_MSG_FETCH_DONE and hands them to the test thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actors/sched.h"
#include "base/metrics.h"
#include "base/sbuf.h"
#include "base/util.h"
#include "net/net.h"
#include "tests/runner.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* The runner leaves a test with _exit(), which skips LeakSanitizer: ask for it here. */
#define CHECK_NO_LEAKS() ASSERT_EQ(__lsan_do_recoverable_leak_check(), 0)
#else
#define CHECK_NO_LEAKS() ((void)0)
#endif

#define WAIT_MS          5000
#define REQ_MAX_BYTES    (64 * 1024)
#define STREAM_CHUNKS    3
#define STREAM_PAUSE_US  50000
#define BIG_BODY_BYTES   100000
#define BIG_CHUNK_BYTES  1000
#define SMALL_CAP_BYTES  1000
#define MAX_MSGS         256
#define DATE_AHEAD_S     30
#define MANY_REQUESTS    40
#define NET_TEST_THREADS 2

/* ---- What the sink actor received, in arrival order {lk} ------------------------------------ */

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static msg_t *got[MAX_MSGS]; /* {lk} */
static int n_got;            /* {lk} */
static int hangs_seen;       /* {lk} requests the server is stalling */

static void sink_handle(actor_t *self, msg_t *m)
{
    (void)self;
    if (m->type != NET_MSG_FETCH_DATA && m->type != NET_MSG_FETCH_DONE) {
        msg_free(m);
        return;
    }
    pthread_mutex_lock(&lk);
    if (n_got < MAX_MSGS)
        got[n_got++] = m;
    else
        msg_free(m);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lk);
}

static const actor_type_t sink_type = {"fetch_sink", sink_handle, NULL};
static actor_t *sink;

/* Index in got[] of the DONE for id, or -1. Caller holds lk. */
static int find_done_locked(uint64_t id)
{
    for (int i = 0; i < n_got; i++)
        if (got[i]->type == NET_MSG_FETCH_DONE && ((net_fetch_done_msg_t *)got[i])->id == id)
            return i;
    return -1;
}

/* Waits for the DONE of id; fails the test after WAIT_MS. The message stays in got[]. */
static net_fetch_done_msg_t *wait_done(uint64_t id)
{
    struct timespec ts;
    clock_deadline(&ts, CLOCK_REALTIME, WAIT_MS);
    pthread_mutex_lock(&lk);
    int i;
    while ((i = find_done_locked(id)) < 0)
        if (pthread_cond_timedwait(&cv, &lk, &ts) == ETIMEDOUT)
            break;
    net_fetch_done_msg_t *d = i >= 0 ? (net_fetch_done_msg_t *)got[i] : NULL;
    pthread_mutex_unlock(&lk);
    if (d == NULL)
        TEST_FAIL_("no DONE for request %" PRIu64 " within %d ms", id, WAIT_MS);
    return d;
}

static int count_got(void)
{
    pthread_mutex_lock(&lk);
    int n = n_got;
    pthread_mutex_unlock(&lk);
    return n;
}

/* Waits until the server holds n stalled requests. */
static void wait_hangs(int n)
{
    struct timespec ts;
    clock_deadline(&ts, CLOCK_REALTIME, WAIT_MS);
    pthread_mutex_lock(&lk);
    while (hangs_seen < n && pthread_cond_timedwait(&cv, &lk, &ts) != ETIMEDOUT)
        ;
    int seen = hangs_seen;
    pthread_mutex_unlock(&lk);
    ASSERT_EQ(seen, n);
}

/* ---- The test server ------------------------------------------------------------------------ */

static int srv_fd = -1;
static int srv_port;
static pthread_t srv_th;

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client went away (an aborted transfer): fine */
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

static void send_chunk(int fd, const char *p, size_t n)
{
    char head[32];
    snprintf(head, sizeof(head), "%zx\r\n", n);
    send_str(fd, head);
    send_all(fd, p, n);
    send_str(fd, "\r\n");
}

/* Reads one request (head and Content-Length body) into b; returns the head's length or -1. */
static long read_request(int fd, sbuf_t *b)
{
    char tmp[4096];
    char *end = NULL;
    while ((end = b->data ? strstr(b->data, "\r\n\r\n") : NULL) == NULL) {
        ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
        if (r <= 0 || b->len + (size_t)r > REQ_MAX_BYTES)
            return -1;
        sbuf_append(b, tmp, (size_t)r);
    }
    long head = (long)(end - b->data) + 4;
    const char *cl = strcasestr(b->data, "\r\nContent-Length:");
    size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    while (b->len < (size_t)head + want) {
        ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
        if (r <= 0)
            return -1;
        sbuf_append(b, tmp, (size_t)r);
    }
    return head;
}

static void respond(int fd, const char *status_line, const char *headers, const char *body)
{
    sbuf_t r = SBUF_INIT;
    sbuf_printf(&r, "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n%s",
                status_line, strlen(body), headers, body);
    send_all(fd, r.data, r.len);
    sbuf_destroy(&r);
}

static void serve_stream(int fd)
{
    send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < STREAM_CHUNKS; i++) {
        char ev[32];
        int n = snprintf(ev, sizeof(ev), "data: %d\n\n", i);
        send_chunk(fd, ev, (size_t)n);
        usleep(STREAM_PAUSE_US);
    }
    send_str(fd, "0\r\n\r\n");
}

static void serve_big(int fd, bool chunked)
{
    char *body = xmalloc(BIG_BODY_BYTES + 1);
    memset(body, 'x', BIG_BODY_BYTES);
    body[BIG_BODY_BYTES] = '\0';
    if (!chunked) {
        respond(fd, "200 OK", "", body);
    } else {
        send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < BIG_BODY_BYTES; off += BIG_CHUNK_BYTES)
            send_chunk(fd, body + off, BIG_CHUNK_BYTES);
        send_str(fd, "0\r\n\r\n");
    }
    free(body);
}

/* Holds the request unanswered until the client closes the connection. */
static void serve_hang(int fd)
{
    pthread_mutex_lock(&lk);
    hangs_seen++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lk);
    char tmp[256];
    while (recv(fd, tmp, sizeof(tmp), 0) > 0)
        ;
}

static void serve_date(int fd)
{
    char date[64], hdr[96];
    time_t at = time(NULL) + DATE_AHEAD_S;
    struct tm tm;
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&at, &tm));
    snprintf(hdr, sizeof(hdr), "Retry-After: %s\r\n", date);
    respond(fd, "429 Too Many Requests", hdr, "{}");
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    sbuf_t req = SBUF_INIT;
    if (read_request(fd, &req) < 0) {
        close(fd);
        sbuf_destroy(&req);
        return NULL;
    }
    const char *path = strchr(req.data, ' ');
    path = path ? path + 1 : "";
    if (strncmp(path, "/get ", 5) == 0)
        respond(fd, "200 OK",
                "X-Request-Id: req-abc\r\nretry-after: 7\r\nX-Should-Retry: true\r\n"
                "Content-Type: text/plain\r\nMcp-Session-Id: sess-42\r\n",
                "hello fetch");
    else if (strncmp(path, "/echo ", 6) == 0)
        respond(fd, "200 OK", "Content-Type: application/json\r\n", req.data);
    else if (strncmp(path, "/fail ", 6) == 0)
        respond(fd, "500 Internal Server Error",
                "Retry-After-Ms: 1500\r\nRetry-After: 9\r\nx-should-retry: false\r\n",
                "{\"error\":\"boom\"}");
    else if (strncmp(path, "/date ", 6) == 0)
        serve_date(fd);
    else if (strncmp(path, "/stream ", 8) == 0)
        serve_stream(fd);
    else if (strncmp(path, "/big ", 5) == 0)
        serve_big(fd, false);
    else if (strncmp(path, "/bigchunked ", 12) == 0)
        serve_big(fd, true);
    else if (strncmp(path, "/hang ", 6) == 0)
        serve_hang(fd);
    else
        respond(fd, "404 Not Found", "", "");
    sbuf_destroy(&req);
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* shut down */
        }
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_create(&th, &attr, serve_conn, (void *)(intptr_t)fd);
        pthread_attr_destroy(&attr);
    }
}

/* Binds 127.0.0.1:0; returns the fd and stores the port. */
static int bind_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- Set-up -----------------------------------------------------------------------------------
 */

static void start(void)
{
    setenv("no_proxy", "127.0.0.1", 1);
    metrics_init();
    sched_config_t sc = {.workers = 2, .max_actors = 100, .mailbox_cap = 1024};
    ASSERT_EQ(sched_start(&sc), 0);
    sink = xcalloc(1, sizeof(actor_t));
    ASSERT_EQ(actor_spawn(sink, &sink_type, LANE_TOOLS), 0);
    net_config_t nc = {.host = "127.0.0.1",
                       .port = 0,
                       .threads = NET_TEST_THREADS,
                       .max_connections = 100,
                       .out_cap = 64};
    ASSERT_EQ(net_start(&nc), 0);
    srv_fd = bind_loopback(&srv_port);
    ASSERT_EQ(listen(srv_fd, 64), 0);
    pthread_create(&srv_th, NULL, serve, NULL);
}

/* Stops net first (it ends what is in flight), then checks no actor reference leaked. */
static void finish(void)
{
    net_stop();
    shutdown(srv_fd, SHUT_RDWR);
    pthread_join(srv_th, NULL);
    close(srv_fd);
    actor_unref(sink);
    ASSERT_EQ(sched_stop(2000), 0);
    for (int i = 0; i < n_got; i++)
        msg_free(got[i]);
    n_got = 0;
    CHECK_NO_LEAKS();
}

static char url_buf[128];

static const char *url(const char *path)
{
    snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", srv_port, path);
    return url_buf;
}

static net_fetch_done_msg_t *fetch_and_wait(const net_fetch_req_t *req)
{
    uint64_t id = net_fetch(req, sink);
    ASSERT_NE(id, 0);
    return wait_done(id);
}

/* ---- Tests ------------------------------------------------------------------------------------
 */

TEST(fetch_get_parses_headers)
{
    start();
    net_fetch_req_t req = {.url = url("/get")};
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    ASSERT_EQ(d->status, 200);
    ASSERT_STR_EQ(d->error, "");
    ASSERT_STR_EQ(d->body, "hello fetch");
    ASSERT_EQ(d->body_len, strlen("hello fetch"));
    ASSERT_STR_EQ(d->request_id, "req-abc");
    ASSERT_EQ(d->retry_after_ms, 7000);
    ASSERT_EQ(d->should_retry, 1);
    ASSERT_STR_EQ(d->content_type, "text/plain");
    ASSERT_STR_EQ(d->session_id, "sess-42");
    finish();
}

TEST(fetch_post_json_round_trip)
{
    start();
    const char *json = "{\"model\":\"m\",\"n\":1}";
    net_fetch_req_t req = {.url = url("/echo"),
                           .headers = {"X-Custom: yes"},
                           .bearer = "tok-1",
                           .body = json,
                           .body_len = strlen(json),
                           .timeout_ms = 3000};
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    ASSERT_EQ(d->status, 200);
    ASSERT_STR_EQ(d->error, "");
    ASSERT_STR_CONTAINS(d->body, "POST /echo HTTP/1.1\r\n");
    ASSERT_STR_CONTAINS(d->body, "\r\nContent-Type: application/json\r\n");
    ASSERT_STR_CONTAINS(d->body, "\r\nAuthorization: Bearer tok-1\r\n");
    ASSERT_STR_CONTAINS(d->body, "\r\nX-Custom: yes\r\n");
    ASSERT(strstr(d->body, "Expect:") == NULL);
    size_t n = strlen(json);
    ASSERT(d->body_len > n);
    ASSERT_STR_EQ(d->body + d->body_len - n, json); /* the body arrived intact */
    ASSERT_STR_EQ(d->content_type, "application/json");
    ASSERT_EQ(d->retry_after_ms, -1);
    ASSERT_EQ(d->should_retry, -1);
    ASSERT_STR_EQ(d->request_id, "");
    finish();
}

TEST(fetch_methods_and_caller_content_type)
{
    start();
    net_fetch_req_t del = {.method = "DELETE", .url = url("/echo")};
    net_fetch_done_msg_t *d = fetch_and_wait(&del);
    ASSERT_EQ(d->status, 200);
    ASSERT_STR_CONTAINS(d->body, "DELETE /echo HTTP/1.1\r\n");
    ASSERT(strcasestr(d->body, "content-type") == NULL); /* no body, no default type */

    net_fetch_req_t put = {.method = "PUT",
                           .url = url("/echo"),
                           .headers = {NULL, "content-type: text/plain"},
                           .body = "abc",
                           .body_len = 3};
    d = fetch_and_wait(&put);
    ASSERT_EQ(d->status, 200);
    ASSERT_STR_CONTAINS(d->body, "PUT /echo HTTP/1.1\r\n");
    ASSERT_STR_CONTAINS(d->body, "\r\ncontent-type: text/plain\r\n");
    ASSERT(strstr(d->body, "application/json") == NULL);
    ASSERT_STR_EQ(d->body + d->body_len - 3, "abc");
    finish();
}

TEST(fetch_status_500_is_not_an_error)
{
    start();
    net_fetch_req_t req = {.url = url("/fail")};
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    ASSERT_EQ(d->status, 500);
    ASSERT_STR_EQ(d->error, "");
    ASSERT_STR_EQ(d->body, "{\"error\":\"boom\"}");
    ASSERT_EQ(d->retry_after_ms, 1500); /* retry-after-ms wins over retry-after */
    ASSERT_EQ(d->should_retry, 0);
    finish();
}

TEST(fetch_retry_after_http_date)
{
    start();
    net_fetch_req_t req = {.url = url("/date")};
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    ASSERT_EQ(d->status, 429);
    ASSERT_GE(d->retry_after_ms, (DATE_AHEAD_S - 5) * 1000);
    ASSERT_LE(d->retry_after_ms, DATE_AHEAD_S * 1000);
    finish();
}

TEST(fetch_stream_chunks_in_order)
{
    start();
    net_fetch_req_t req = {.url = url("/stream"), .stream = true};
    uint64_t id = net_fetch(&req, sink);
    ASSERT_NE(id, 0);
    net_fetch_done_msg_t *d = wait_done(id);
    ASSERT_EQ(d->status, 200);
    ASSERT_STR_EQ(d->error, "");
    ASSERT(d->body == NULL);
    ASSERT_STR_EQ(d->content_type, "text/event-stream");
    sbuf_t all = SBUF_INIT;
    int chunks = 0;
    pthread_mutex_lock(&lk);
    int done_at = find_done_locked(id);
    for (int i = 0; i < n_got; i++) {
        if (got[i]->type != NET_MSG_FETCH_DATA)
            continue;
        net_fetch_data_msg_t *m = (net_fetch_data_msg_t *)got[i];
        ASSERT_EQ(m->id, id);
        ASSERT_EQ(m->status, 200);
        ASSERT_LT(i, done_at); /* every DATA before the DONE */
        ASSERT_EQ(strlen(m->data), m->len);
        sbuf_append(&all, m->data, m->len);
        chunks++;
    }
    pthread_mutex_unlock(&lk);
    ASSERT_GE(chunks, STREAM_CHUNKS); /* the pauses make each chunk its own read */
    ASSERT_STR_EQ(all.data, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    sbuf_destroy(&all);
    finish();
}

TEST(fetch_stream_non_2xx_is_buffered)
{
    start();
    net_fetch_req_t req = {.url = url("/fail"), .stream = true};
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    ASSERT_EQ(d->status, 500);
    ASSERT_STR_EQ(d->body, "{\"error\":\"boom\"}");
    ASSERT_EQ(count_got(), 1); /* no DATA */
    finish();
}

TEST(fetch_connect_refused)
{
    start();
    int port;
    int fd = bind_loopback(&port); /* bound, never listening: connections are refused */
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", port);
    net_fetch_req_t req = {.url = u, .timeout_ms = 3000};
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    close(fd);
    ASSERT_EQ(d->status, 0);
    ASSERT_STR_EQ(d->error, "connect");
    ASSERT(d->body == NULL);
    finish();
}

TEST(fetch_timeout)
{
    start();
    net_fetch_req_t req = {.url = url("/hang"), .timeout_ms = 300};
    uint64_t t0 = clock_now_ns();
    net_fetch_done_msg_t *d = fetch_and_wait(&req);
    uint64_t ms = (clock_now_ns() - t0) / NS_PER_MS;
    ASSERT_EQ(d->status, 0);
    ASSERT_STR_EQ(d->error, "timeout");
    ASSERT_GE(ms, 250);
    ASSERT_LT(ms, 3000);
    finish();
}

TEST(fetch_cancel)
{
    start();
    net_fetch_req_t req = {.url = url("/hang")};
    uint64_t id = net_fetch(&req, sink);
    ASSERT_NE(id, 0);
    wait_hangs(1);
    uint64_t t0 = clock_now_ns();
    net_fetch_cancel(id);
    net_fetch_cancel(id);     /* twice: the second finds nothing */
    net_fetch_cancel(id + 2); /* an id never issued on this thread */
    net_fetch_done_msg_t *d = wait_done(id);
    ASSERT_STR_EQ(d->error, "cancelled");
    ASSERT_EQ(d->status, 0);
    ASSERT_LT((clock_now_ns() - t0) / NS_PER_MS, 2000);
    usleep(100000);
    ASSERT_EQ(count_got(), 1); /* exactly one DONE */
    finish();
}

TEST(fetch_body_too_large)
{
    start();
    net_fetch_req_t req = {.url = url("/big"), .max_body = SMALL_CAP_BYTES};
    net_fetch_done_msg_t *d = fetch_and_wait(&req); /* refused on Content-Length */
    ASSERT_STR_EQ(d->error, "body_too_large");
    ASSERT_EQ(d->status, 200);
    ASSERT(d->body == NULL);
    net_fetch_req_t chunked = {.url = url("/bigchunked"), .max_body = SMALL_CAP_BYTES};
    d = fetch_and_wait(&chunked); /* refused while it arrives */
    ASSERT_STR_EQ(d->error, "body_too_large");
    ASSERT(d->body == NULL);
    net_fetch_req_t fits = {.url = url("/bigchunked"), .max_body = BIG_BODY_BYTES};
    d = fetch_and_wait(&fits); /* exactly at the cap is fine */
    ASSERT_STR_EQ(d->error, "");
    ASSERT_EQ(d->body_len, BIG_BODY_BYTES);
    finish();
}

TEST(fetch_malformed_returns_0)
{
    start();
    net_fetch_req_t req = {.url = NULL};
    ASSERT_EQ(net_fetch(NULL, sink), 0);
    ASSERT_EQ(net_fetch(&req, sink), 0);
    const char *bad[] = {"",         "ftp://127.0.0.1/", "http://", "127.0.0.1/get", "http://:80/",
                         "HTTPS://", "ws://127.0.0.1/"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        req.url = bad[i];
        if (net_fetch(&req, sink) != 0)
            TEST_FAIL_("url \"%s\" was accepted", bad[i]);
    }
    net_fetch_req_t inject = {.url = url("/get"), .headers = {"X-A: 1\r\nX-B: 2"}};
    ASSERT_EQ(net_fetch(&inject, sink), 0);
    net_fetch_req_t bearer = {.url = url("/get"), .bearer = "t\r\nX-B: 2"};
    ASSERT_EQ(net_fetch(&bearer, sink), 0);
    net_fetch_req_t method = {.method = "GE T", .url = url("/get")};
    ASSERT_EQ(net_fetch(&method, sink), 0);
    net_fetch_req_t good = {.url = url("/get")};
    ASSERT_EQ(net_fetch(&good, NULL), 0);
    uint64_t id = net_fetch(&good, sink); /* the control: the same request is fine */
    ASSERT_NE(id, 0);
    wait_done(id);
    usleep(100000);
    ASSERT_EQ(count_got(), 1); /* nothing was posted for the refused ones */
    finish();
}

TEST(fetch_many_round_robin)
{
    start();
    uint64_t ids[MANY_REQUESTS];
    bool thread_used[NET_TEST_THREADS] = {false};
    for (int i = 0; i < MANY_REQUESTS; i++) {
        net_fetch_req_t req = {.url = url("/get")};
        ids[i] = net_fetch(&req, sink);
        ASSERT_NE(ids[i], 0);
        for (int j = 0; j < i; j++)
            ASSERT_NE(ids[i], ids[j]);
        unsigned thread = (unsigned)(ids[i] >> 56);
        ASSERT_LT(thread, NET_TEST_THREADS);
        thread_used[thread] = true;
    }
    for (int i = 0; i < MANY_REQUESTS; i++) {
        net_fetch_done_msg_t *d = wait_done(ids[i]);
        ASSERT_EQ(d->status, 200);
        ASSERT_STR_EQ(d->body, "hello fetch");
    }
    for (int t = 0; t < NET_TEST_THREADS; t++)
        ASSERT(thread_used[t]);
    finish();
}

TEST(fetch_stop_cancels_in_flight)
{
    /* finish() asserts sched_stop() == 0: the DONEs released every reference to the sink. */
    start();
    enum { N = 3 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        net_fetch_req_t req = {.url = url("/hang"), .stream = i == 0};
        ids[i] = net_fetch(&req, sink);
        ASSERT_NE(ids[i], 0);
    }
    wait_hangs(N);
    net_stop();
    for (int i = 0; i < N; i++)
        ASSERT_STR_EQ(wait_done(ids[i])->error, "cancelled");
    net_fetch_req_t late = {.url = url("/get")};
    ASSERT_EQ(net_fetch(&late, sink), 0); /* after the stop: refused */
    usleep(100000);
    ASSERT_EQ(count_got(), N);
    finish();
}
