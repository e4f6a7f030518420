/*
 * Network thread -> actor -> network thread round trip.
 *
 * Starts the real network layer and scheduler in-process with two WebSocket paths on one route:
 * {"type":"ping"} is answered by the network thread itself, {"type":"echo"} is posted to an echo
 * actor that sends the frame back through the outbox. A blocking client on loopback times both,
 * paced (the threads park between messages, the realistic case for 20 ms audio frames) and back
 * to back. The difference of the two is what the hop through an actor costs: mailbox push,
 * worker wake-up, turn, outbox push, network-thread wake-up.
 *
 *   bench_roundtrip [--markdown] [--samples N] [--pace-us U]
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/sched.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "net/net.h"

#define SAMPLES_DEFAULT 5000
#define PACE_US_DEFAULT 1000
#define WARMUP          200

typedef struct echo {
    actor_t actor;
} echo_t;

static void echo_handle(actor_t *self, msg_t *m)
{
    (void)self;
    if (m->type == NET_MSG_WS_TEXT) {
        net_ws_text_msg_t *t = (net_ws_text_msg_t *)m;
        net_ws_send_json(t->conn, t->json);
    }
    msg_free(m);
}

static const actor_type_t echo_type = {"echo", echo_handle, NULL};
static actor_t *echo_actor;

static actor_t *echo_target(void *arg, const net_peer_t *peer, const char *query, ws_close_t *why)
{
    (void)arg, (void)peer, (void)query, (void)why;
    actor_ref(echo_actor);
    return echo_actor;
}

static const char *const echo_types[] = {"echo", NULL};
static net_ws_route_t route = {"/echo", 4096, 0, echo_types, echo_target, NULL, false, NULL, NULL};

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, 0);
        if (w <= 0)
            die("send");
        c += w;
        n -= (size_t)w;
    }
}

static void recv_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0)
            die("recv");
        c += r;
        n -= (size_t)r;
    }
}

static int ws_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const char *req = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[1024];
    size_t got = 0;
    while (got < sizeof(buf) - 1) { /* read the 101 response up to the blank line */
        ssize_t r = recv(fd, buf + got, 1, 0);
        if (r <= 0)
            die("handshake");
        got++;
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    buf[got] = '\0';
    if (strstr(buf, " 101 ") == NULL) {
        fprintf(stderr, "handshake refused: %s\n", buf);
        exit(1);
    }
    return fd;
}

/* Sends one small masked text frame and waits for one text frame back. Returns the RTT in ns. */
static uint64_t round_trip(int fd, const char *text)
{
    unsigned char f[256];
    size_t n = strlen(text);
    static const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
    f[0] = 0x81;
    f[1] = (unsigned char)(0x80 | n);
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (unsigned char)text[i] ^ mask[i % 4];
    uint64_t t0 = clock_now_ns();
    send_all(fd, f, 6 + n);
    unsigned char h[2];
    recv_all(fd, h, 2);
    size_t len = h[1] & 0x7f;
    unsigned char body[256];
    recv_all(fd, body, len);
    return clock_now_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, int n, double p)
{
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static void measure(int fd, const char *text, int samples, int pace_us, double out[3])
{
    uint64_t *v = xmalloc((size_t)samples * sizeof(*v));
    for (int i = 0; i < WARMUP; i++)
        round_trip(fd, text);
    for (int i = 0; i < samples; i++) {
        if (pace_us)
            usleep((useconds_t)pace_us);
        v[i] = round_trip(fd, text);
    }
    qsort(v, (size_t)samples, sizeof(*v), cmp_u64);
    out[0] = pct_us(v, samples, 50);
    out[1] = pct_us(v, samples, 99);
    out[2] = (double)v[samples - 1] / 1000.0;
    free(v);
}

int main(int argc, char **argv)
{
    int markdown = 0, samples = SAMPLES_DEFAULT, pace_us = PACE_US_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0)
            markdown = 1;
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
            samples = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pace-us") == 0 && i + 1 < argc)
            pace_us = atoi(argv[++i]);
    }
    static config_t cfg;
    char err[256];
    setenv("SWITCHBOARD_LOG_LEVEL", "error", 1);
    if (config_from_env(&cfg, 2, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    g_config = &cfg;
    log_init(LOG_ERROR, LOG_FORMAT_TEXT);
    metrics_init();
    sched_config_t sc = {.workers = cfg.workers, .max_actors = 1000, .mailbox_cap = 1024};
    sched_start(&sc);
    echo_t *e = xcalloc(1, sizeof(*e));
    actor_spawn(&e->actor, &echo_type, LANE_REALTIME);
    echo_actor = &e->actor;
    net_add_ws_route(&route);
    net_config_t nc = {
        .host = "127.0.0.1", .port = 0, .threads = 1, .max_connections = 100, .out_cap = 1024};
    if (net_start(&nc) != 0)
        die("net_start");
    int fd = ws_connect(net_port());

    struct {
        const char *name;
        int pace;
    } modes[] = {{"paced", pace_us}, {"back-to-back", 0}};
    for (size_t m = 0; m < ARRAY_LEN(modes); m++) {
        double net_only[3], via_actor[3];
        measure(fd, "{\"type\":\"ping\"}", samples, modes[m].pace, net_only);
        measure(fd, "{\"type\":\"echo\"}", samples, modes[m].pace, via_actor);
        if (markdown) {
            printf("| round trip %s (%d us pace), net thread only | %.0f | %.0f | %.0f |\n",
                   modes[m].name, modes[m].pace, net_only[0], net_only[1], net_only[2]);
            printf("| round trip %s (%d us pace), net -> actor -> net | %.0f | %.0f | %.0f |\n",
                   modes[m].name, modes[m].pace, via_actor[0], via_actor[1], via_actor[2]);
            printf("| actor hop cost (difference), %s | %.0f | %.0f | |\n", modes[m].name,
                   via_actor[0] - net_only[0], via_actor[1] - net_only[1]);
        } else {
            printf("%-13s net-thread only:      p50 %7.1f us  p99 %7.1f us  max %8.1f us\n",
                   modes[m].name, net_only[0], net_only[1], net_only[2]);
            printf("%-13s net->actor->net:      p50 %7.1f us  p99 %7.1f us  max %8.1f us\n",
                   modes[m].name, via_actor[0], via_actor[1], via_actor[2]);
            printf("%-13s actor hop (difference): p50 %7.1f us  p99 %7.1f us\n", modes[m].name,
                   via_actor[0] - net_only[0], via_actor[1] - net_only[1]);
        }
    }
    close(fd);
    net_stop();
    actor_unref(echo_actor);
    sched_stop(1000);
    config_free(&cfg);
    return 0;
}
