/*
 * Tests of bench/loadgen/wscli: the bench's WebSocket client against a scripted server on a
 * loopback socket, in the test's own thread (the client's loop runs between the server's steps).
 * The upgrade with the first frames in the same segment as the response head; whole frames
 * handed on in place and fragmented messages reassembled; a frame larger than the read buffer; a
 * message over the limit dropped while the stream goes on; pings answered with masked pongs;
 * close codes read exactly (1013) and echoed; our close waiting for the peer's; a refused
 * upgrade's status; a server's masked frame refused with 1002; and bytes kept while the peer does
 * not read, sent in order once it does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "bench/loadgen/wscli.h"
#include "net/wsframe.h"
#include "net/wshs.h"
#include "tests/runner.h"

#define SPIN_MAX         3000 /* 1 ms steps: a step that takes longer fails the test */
#define MSGS_MAX         8
#define MSG_KEEP         64
#define MAX_MSG          30000
#define BIG_BYTES        20000 /* more than WSCLI_RX_BYTES: goes through in pieces */
#define TOO_BIG_BYTES    40000
#define MID_BYTES        3000
#define SRV_BUF          (1u << 20)
#define SMALL_RCVBUF     4096
#define FLOOD_FRAME      16384
#define FLOOD_FRAMES_MAX 4096

typedef struct probe {
    wscli_t *c;
    bool opened, ended;
    int drained;
    int n_msgs;
    bool binary[MSGS_MAX];
    size_t len[MSGS_MAX];
    uint8_t head[MSGS_MAX][MSG_KEEP]; /* the first bytes of each */
    bool pattern_ok[MSGS_MAX];        /* binary: every byte is pattern(i) */
    int too_big;
    wscli_end_t end;
} probe_t;

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 13 + i / 253);
}

static void on_open(void *arg)
{
    ((probe_t *)arg)->opened = true;
}

static void on_message(void *arg, bool binary, const uint8_t *p, size_t n)
{
    probe_t *pr = arg;
    ASSERT_LT(pr->n_msgs, MSGS_MAX);
    int k = pr->n_msgs++;
    pr->binary[k] = binary;
    pr->len[k] = n;
    memcpy(pr->head[k], p, n < MSG_KEEP ? n : MSG_KEEP);
    pr->pattern_ok[k] = true;
    for (size_t i = 0; binary && i < n; i++)
        if (p[i] != pattern(i))
            pr->pattern_ok[k] = false;
}

static void on_too_big(void *arg)
{
    ((probe_t *)arg)->too_big++;
}

static void on_drained(void *arg)
{
    ((probe_t *)arg)->drained++;
}

static void on_ended(void *arg, const wscli_end_t *e)
{
    probe_t *pr = arg;
    ASSERT(!pr->ended);
    pr->ended = true;
    pr->end = *e;
    pr->c = NULL;
}

static const wscli_ops_t ops = {on_open, on_message, on_too_big, on_drained, on_ended};

/* The scripted server: one accepted socket and the client frames read from it. */
typedef struct srv {
    uv_loop_t loop; /* the client's */
    int lfd, fd;
    struct sockaddr_in addr;
    char key[WSHS_KEY_CHARS + 1];
    uint8_t *buf;
    size_t have, pos;
    wsf_rx_t rx;
} srv_t;

static void spin(srv_t *sv)
{
    uv_run(&sv->loop, UV_RUN_NOWAIT);
    usleep(1000);
}

static void srv_start(srv_t *sv, int rcvbuf)
{
    memset(sv, 0, sizeof(*sv));
    ASSERT_EQ(uv_loop_init(&sv->loop), 0);
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(sv->lfd >= 0);
    if (rcvbuf)
        setsockopt(sv->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sv->addr.sin_family = AF_INET;
    sv->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(sv->lfd, (struct sockaddr *)&sv->addr, sizeof(sv->addr)), 0);
    socklen_t len = sizeof(sv->addr);
    ASSERT_EQ(getsockname(sv->lfd, (struct sockaddr *)&sv->addr, &len), 0);
    ASSERT_EQ(listen(sv->lfd, 4), 0);
    sv->buf = malloc(SRV_BUF);
    sv->rx.server = true; /* the client's frames must be masked */
}

static void srv_stop(srv_t *sv, probe_t *pr)
{
    if (pr->c)
        wscli_abort(pr->c, NULL);
    ASSERT_EQ(uv_run(&sv->loop, UV_RUN_DEFAULT), 0); /* the connection's handle has closed */
    ASSERT_EQ(uv_loop_close(&sv->loop), 0);
    if (sv->fd > 0)
        close(sv->fd);
    close(sv->lfd);
    free(sv->buf);
}

static void client_start(srv_t *sv, probe_t *pr, size_t max_msg)
{
    memset(pr, 0, sizeof(*pr));
    wscli_cfg_t cfg = {(const struct sockaddr *)&sv->addr,
                       sizeof(sv->addr),
                       "test.example:80",
                       "/v1/realtime?x=1",
                       "sk-test",
                       NULL,
                       max_msg};
    ASSERT_EQ(wscli_connect(&sv->loop, &cfg, &ops, pr, &pr->c), 0);
    sv->fd = accept(sv->lfd, NULL, NULL); /* the kernel completed the connect */
    ASSERT(sv->fd >= 0);
    fcntl(sv->fd, F_SETFL, O_NONBLOCK);
}

/* Reads from the server's socket while the client's loop runs; false at EOF. */
static bool srv_recv(srv_t *sv)
{
    for (int i = 0; i < SPIN_MAX; i++) {
        ssize_t n = recv(sv->fd, sv->buf + sv->have, SRV_BUF - sv->have, 0);
        if (n > 0) {
            sv->have += (size_t)n;
            return true;
        }
        if (n == 0)
            return false;
        ASSERT(errno == EAGAIN);
        spin(sv);
    }
    TEST_FAIL_("the client sent nothing");
}

/* Reads the upgrade request and notes its key. */
static void srv_read_request(srv_t *sv)
{
    while (memmem(sv->buf, sv->have, "\r\n\r\n", 4) == NULL)
        ASSERT(srv_recv(sv));
    sv->buf[sv->have] = '\0';
    const char *req = (const char *)sv->buf;
    ASSERT(strncmp(req, "GET /v1/realtime?x=1 HTTP/1.1\r\n", 31) == 0);
    ASSERT_STR_CONTAINS(req, "\r\nHost: test.example:80\r\n");
    ASSERT_STR_CONTAINS(req, "\r\nAuthorization: Bearer sk-test\r\n");
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    ASSERT(k != NULL);
    memcpy(sv->key, k + 19, WSHS_KEY_CHARS);
    sv->key[WSHS_KEY_CHARS] = '\0';
    sv->have = sv->pos = 0;
}

static void srv_send(srv_t *sv, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(sv->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            spin(sv);
            continue;
        }
        ASSERT(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

/* Appends an unmasked server frame (fin, opcode, n bytes of payload) to out at *at. */
static void put_frame(uint8_t *out, size_t *at, bool fin, unsigned op, const void *p, size_t n)
{
    out[*at] = (uint8_t)((fin ? 0x80 : 0) | op);
    size_t h = 2;
    if (n < 126) {
        out[*at + 1] = (uint8_t)n;
    } else if (n < 65536) {
        out[*at + 1] = 126;
        out[*at + 2] = (uint8_t)(n >> 8);
        out[*at + 3] = (uint8_t)n;
        h = 4;
    } else {
        out[*at + 1] = 127;
        for (int i = 0; i < 8; i++)
            out[*at + 2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    memcpy(out + *at + h, p, n);
    *at += h + n;
}

/* Appends the 101 answer to the request read last. */
static void put_101(srv_t *sv, uint8_t *out, size_t *at)
{
    char accept[WSHS_ACCEPT_CHARS + 1];
    ASSERT(wshs_accept(sv->key, accept));
    *at += (size_t)sprintf((char *)out + *at,
                           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                           accept);
}

/* The next chunk the client sent (its frames unmasked by the parser). */
static wsf_chunk_t srv_chunk(srv_t *sv)
{
    wsf_chunk_t ch;
    for (;;) {
        const uint8_t *p = sv->buf + sv->pos;
        size_t n = sv->have - sv->pos;
        int rc = wsf_rx_next(&sv->rx, &p, &n, &ch);
        ASSERT(rc >= 0); /* masked, well formed */
        sv->pos = (size_t)(p - sv->buf);
        if (rc == 1)
            return ch;
        sv->have = sv->pos = 0;
        ASSERT(srv_recv(sv));
    }
}

/* The next frame the client wrote must be a close carrying code. */
static void srv_expect_close(srv_t *sv, uint16_t code)
{
    wsf_chunk_t ch = srv_chunk(sv);
    ASSERT_EQ(ch.kind, WSF_CLOSE);
    ASSERT(ch.len == 2 && ch.data[0] == (code >> 8) && ch.data[1] == (code & 0xff));
}

static void open_session(srv_t *sv, probe_t *pr, size_t max_msg)
{
    client_start(sv, pr, max_msg);
    srv_read_request(sv);
    uint8_t out[512];
    size_t at = 0;
    put_101(sv, out, &at);
    srv_send(sv, out, at);
    for (int i = 0; i < SPIN_MAX && !pr->opened; i++)
        spin(sv);
    ASSERT(pr->opened);
}

static void spin_until(srv_t *sv, const bool *flag)
{
    for (int i = 0; i < SPIN_MAX && !*flag; i++)
        spin(sv);
    ASSERT(*flag);
}

TEST(wscli_reads_frames_in_place_reassembles_and_answers_pings)
{
    srv_t sv;
    probe_t pr;
    srv_start(&sv, 0);
    client_start(&sv, &pr, MAX_MSG);
    srv_read_request(&sv);
    uint8_t *out = malloc(2 * TOO_BIG_BYTES);
    uint8_t *bin = malloc(TOO_BIG_BYTES);
    for (size_t i = 0; i < TOO_BIG_BYTES; i++)
        bin[i] = pattern(i);
    /* The head and the first frames in one segment; a ping between two fragments. */
    size_t at = 0;
    put_101(&sv, out, &at);
    put_frame(out, &at, true, WSF_OP_TEXT, "hello", 5);
    put_frame(out, &at, false, WSF_OP_TEXT, "ab", 2);
    put_frame(out, &at, false, WSF_OP_CONTINUATION, "cd", 2);
    put_frame(out, &at, true, WSF_OP_PING, "p1", 2);
    put_frame(out, &at, true, WSF_OP_CONTINUATION, "ef", 2);
    put_frame(out, &at, true, WSF_OP_BINARY, bin, MID_BYTES);
    srv_send(&sv, out, at);
    /* A frame larger than the client's buffer, in two segments. */
    at = 0;
    put_frame(out, &at, true, WSF_OP_BINARY, bin, BIG_BYTES);
    srv_send(&sv, out, at / 2);
    for (int i = 0; i < 20; i++)
        spin(&sv);
    srv_send(&sv, out + at / 2, at - at / 2);
    /* Over the limit, then the stream goes on; then 1013, which lws used to turn into 1002. */
    at = 0;
    put_frame(out, &at, true, WSF_OP_BINARY, bin, TOO_BIG_BYTES);
    put_frame(out, &at, true, WSF_OP_TEXT, "after", 5);
    put_frame(out, &at, true, WSF_OP_CLOSE,
              "\x03\xf5"
              "at capacity",
              13);
    srv_send(&sv, out, at);
    spin_until(&sv, &pr.ended);

    ASSERT(pr.opened);
    ASSERT_EQ(pr.n_msgs, 5);
    ASSERT(!pr.binary[0] && pr.len[0] == 5 && memcmp(pr.head[0], "hello", 5) == 0);
    ASSERT(!pr.binary[1] && pr.len[1] == 6 && memcmp(pr.head[1], "abcdef", 6) == 0);
    ASSERT(pr.binary[2] && pr.pattern_ok[2]);
    ASSERT_EQ(pr.len[2], MID_BYTES);
    ASSERT(pr.binary[3] && pr.pattern_ok[3]);
    ASSERT_EQ(pr.len[3], BIG_BYTES);
    ASSERT(!pr.binary[4] && pr.len[4] == 5 && memcmp(pr.head[4], "after", 5) == 0);
    ASSERT_EQ(pr.too_big, 1);
    ASSERT(pr.end.opened && pr.end.peer_closed && !pr.end.close_sent);
    ASSERT_EQ(pr.end.close_code, 1013);
    ASSERT_STR_EQ(pr.end.close_text, "at capacity");
    ASSERT_STR_EQ(pr.end.error, "");
    /* What the client wrote: the pong (masked: the parser refuses anything else), the echo. */
    wsf_chunk_t ch = srv_chunk(&sv);
    ASSERT_EQ(ch.kind, WSF_PONG);
    ASSERT(ch.len == 2 && memcmp(ch.data, "p1", 2) == 0);
    srv_expect_close(&sv, 1013);
    ASSERT(!srv_recv(&sv)); /* then the socket closed */
    free(out);
    free(bin);
    srv_stop(&sv, &pr);
}

TEST(wscli_our_close_waits_for_the_peers)
{
    srv_t sv;
    probe_t pr;
    srv_start(&sv, 0);
    open_session(&sv, &pr, MAX_MSG);
    wscli_close(pr.c, 1000);
    srv_expect_close(&sv, 1000);
    /* Frames still come in until the peer's close; the client does not hang up first. */
    uint8_t out[64];
    size_t at = 0;
    put_frame(out, &at, true, WSF_OP_TEXT, "late", 4);
    srv_send(&sv, out, at);
    for (int i = 0; i < 20; i++)
        spin(&sv);
    ASSERT(!pr.ended);
    ASSERT_EQ(pr.n_msgs, 1);
    at = 0;
    put_frame(out, &at, true, WSF_OP_CLOSE, "\x03\xe8", 2);
    srv_send(&sv, out, at);
    spin_until(&sv, &pr.ended);
    ASSERT(pr.end.close_sent && pr.end.peer_closed);
    ASSERT_EQ(pr.end.close_code, 1000);
    ASSERT_STR_EQ(pr.end.error, "");
    ASSERT(!srv_recv(&sv)); /* no second close frame: the socket just closed */
    srv_stop(&sv, &pr);
}

TEST(wscli_refused_upgrade_reports_the_status)
{
    srv_t sv;
    probe_t pr;
    srv_start(&sv, 0);
    client_start(&sv, &pr, MAX_MSG);
    srv_read_request(&sv);
    static const char refusal[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n";
    srv_send(&sv, refusal, sizeof(refusal) - 1);
    spin_until(&sv, &pr.ended);
    ASSERT(!pr.opened && !pr.end.opened);
    ASSERT_EQ(pr.end.http_status, 429);
    ASSERT_STR_EQ(pr.end.error, "upgrade failed: HTTP 429");
    srv_stop(&sv, &pr);
}

TEST(wscli_a_masked_server_frame_is_a_protocol_error)
{
    srv_t sv;
    probe_t pr;
    srv_start(&sv, 0);
    open_session(&sv, &pr, MAX_MSG);
    static const uint8_t masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    srv_send(&sv, masked, sizeof(masked));
    spin_until(&sv, &pr.ended);
    ASSERT_EQ(pr.n_msgs, 0);
    ASSERT_STR_CONTAINS(pr.end.error, "protocol error");
    srv_expect_close(&sv, 1002);
    srv_stop(&sv, &pr);
}

TEST(wscli_keeps_what_the_socket_does_not_take_until_it_drains)
{
    srv_t sv;
    probe_t pr;
    srv_start(&sv, SMALL_RCVBUF);
    open_session(&sv, &pr, MAX_MSG);
    /* The server does not read: frames go out until the socket holds them back. */
    uint8_t *f = malloc(WSF_HEADER_MAX + FLOOD_FRAME);
    uint32_t sent = 0;
    while (!wscli_blocked(pr.c) && sent < FLOOD_FRAMES_MAX) {
        size_t at = 0;
        for (size_t i = 0; i < FLOOD_FRAME; i++)
            f[WSF_HEADER_MAX + i] = (uint8_t)(sent + i);
        wsf_client_frame_append(f, &at, FLOOD_FRAME, WSF_OP_BINARY);
        ASSERT_EQ(wscli_send(pr.c, f, at), 0);
        sent++;
    }
    ASSERT(wscli_blocked(pr.c));
    ASSERT_EQ(pr.drained, 0);
    /* The server reads: every frame arrives whole and in order, and drained() follows. */
    for (uint32_t k = 0; k < sent; k++) {
        size_t got = 0;
        while (got < FLOOD_FRAME) {
            wsf_chunk_t ch = srv_chunk(&sv);
            ASSERT_EQ(ch.kind, WSF_DATA);
            for (size_t i = 0; i < ch.len; i++)
                ASSERT_EQ(ch.data[i], (uint8_t)(k + got + i));
            got += ch.len;
        }
        ASSERT_EQ(got, FLOOD_FRAME);
    }
    for (int i = 0; i < SPIN_MAX && pr.drained == 0; i++)
        spin(&sv);
    ASSERT_EQ(pr.drained, 1);
    ASSERT(!wscli_blocked(pr.c));
    free(f);
    srv_stop(&sv, &pr);
}
