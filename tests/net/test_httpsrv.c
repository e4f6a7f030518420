/*
 * The server side of net/ over real sockets, with a whole-request deadline short enough for a
 * unit test (net_config_t.request_timeout_ms; the service uses NET_REQUEST_TIMEOUT_MS): a
 * request trickled a byte at a time is answered 408 and closed at its deadline, however often
 * bytes arrive, even one still in its head; a keep-alive connection gets a fresh deadline for
 * each request.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "actors/sched.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net.h"
#include "tests/runner.h"

#define DEADLINE_MS 400
#define TRICKLE_MS  50
#define GIVE_UP_MS  5000
#define RESP_MAX    4096
#define NS_PER_MS_  1000000ull

static void ping(const net_local_req_t *req, net_local_resp_t *resp)
{
    (void)req;
    resp->body = xstrdup("{}");
    resp->body_len = 2;
}

static const net_http_route_t ping_route = {
    .path = "/ping", .methods = NET_GET | NET_POST, .local = ping};

static void start(void)
{
    metrics_init();
    sched_config_t sc = {.workers = 1, .max_actors = 10, .mailbox_cap = 64};
    ASSERT_EQ(sched_start(&sc), 0);
    net_add_http_route(&ping_route);
    net_config_t nc = {.host = "127.0.0.1",
                       .port = 0,
                       .threads = 1,
                       .max_connections = 100,
                       .connections_per_ip = 100,
                       .request_timeout_ms = DEADLINE_MS,
                       .out_cap = 64};
    ASSERT_EQ(net_start(&nc), 0);
}

static void finish(void)
{
    net_stop();
    ASSERT_EQ(sched_stop(2000), 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / NS_PER_MS_;
}

static int connect_local(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)net_port()),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    ASSERT_EQ(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads what arrives within ms into buf (until it holds `until`, when not NULL); returns the
 * byte count, with *eof set when the server closed the connection. */
static size_t read_for(int fd, char *buf, size_t cap, int ms, bool *eof, const char *until)
{
    size_t n = 0;
    buf[0] = '\0';
    uint64_t end = now_ms() + (uint64_t)ms;
    *eof = false;
    while (n < cap - 1 && (until == NULL || strstr(buf, until) == NULL)) {
        int64_t left = (int64_t)(end - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) {
            *eof = true;
            break;
        }
        n += (size_t)r;
        buf[n] = '\0';
    }
    return n;
}

TEST(httpsrv_trickled_body_gets_408_at_its_deadline)
{
    start();
    int fd = connect_local();
    uint64_t t0 = now_ms();
    send_str(fd, "POST /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{");
    char buf[RESP_MAX];
    bool eof = false;
    /* A byte every TRICKLE_MS: each one used to restart the timeout. */
    while (!eof && now_ms() - t0 < GIVE_UP_MS) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TRICKLE_MS) > 0)
            break;
        send(fd, " ", 1, MSG_NOSIGNAL);
    }
    read_for(fd, buf, sizeof(buf), GIVE_UP_MS, &eof, NULL);
    uint64_t took = now_ms() - t0;
    ASSERT(strncmp(buf, "HTTP/1.1 408", 12) == 0);
    ASSERT(strstr(buf, "\"request_timeout\"") != NULL);
    ASSERT(eof);
    ASSERT_GE(took, DEADLINE_MS - TRICKLE_MS);
    ASSERT_LT(took, DEADLINE_MS * 4);
    close(fd);
    finish();
}

TEST(httpsrv_unfinished_head_gets_408_and_is_closed)
{
    start();
    int fd = connect_local();
    uint64_t t0 = now_ms();
    send_str(fd, "GET /pi");
    char buf[RESP_MAX];
    bool eof = false;
    read_for(fd, buf, sizeof(buf), GIVE_UP_MS, &eof, NULL);
    ASSERT(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
    ASSERT(strstr(buf, "\"request_timeout\"") != NULL);
    ASSERT(eof);
    ASSERT_LT(now_ms() - t0, DEADLINE_MS * 4);
    close(fd);
    finish();
}

TEST(httpsrv_keep_alive_requests_each_get_a_deadline)
{
    start();
    int fd = connect_local();
    char buf[RESP_MAX];
    bool eof = false;
    /* Three requests spread over more than one deadline, each well within its own. */
    for (int i = 0; i < 3; i++) {
        send_str(fd, "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        read_for(fd, buf, sizeof(buf), GIVE_UP_MS, &eof, "\r\n\r\n{}");
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
            TEST_FAIL_("request %d: eof %d, got \"%s\"", i, eof, buf);
        ASSERT(strncmp(buf, "HTTP/1.1 200", 12) == 0);
        ASSERT(!eof);
        usleep(DEADLINE_MS * 2 / 3 * 1000);
    }
    close(fd);
    finish();
}
