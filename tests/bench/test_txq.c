/*
 * Tests of bench/loadgen/txq: what the socket takes goes at once, the rest is kept in order
 * behind what is already kept, the bound refuses without keeping a part, and a lost peer is an
 * error. On a nonblocking AF_UNIX stream pair with small buffers, so the socket fills quickly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/loadgen/txq.h"
#include "tests/runner.h"

#define TXQ_TEST_SNDBUF 4096
#define TXQ_TEST_CHUNK  1000
#define TXQ_TEST_MAX    (64u << 10)

/* A connected pair; the writer's end is nonblocking with a small send buffer. */
static void pair(int fds[2])
{
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    int sz = TXQ_TEST_SNDBUF;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
}

/* The byte at stream offset i: a pattern that shows any reordering or loss. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + i / 251);
}

/* Reads everything waiting at fd, checking it against the pattern from *off on. */
static size_t drain(int fd, size_t *off)
{
    uint8_t buf[TXQ_TEST_SNDBUF];
    size_t total = 0;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            ASSERT_EQ(buf[i], pattern(*off + (size_t)i));
        *off += (size_t)n;
        total += (size_t)n;
    }
    return total;
}

TEST(txq_sends_at_once_when_nothing_is_kept)
{
    int fds[2];
    pair(fds);
    txq_t q = {0};
    uint8_t chunk[100];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = pattern(i);
    ASSERT_EQ(txq_send(&q, fds[0], chunk, sizeof(chunk), TXQ_TEST_MAX), 0);
    ASSERT(!txq_pending(&q));
    ASSERT(q.buf == NULL); /* nothing was kept: nothing allocated */
    ASSERT_EQ(q.sends, 1);
    size_t off = 0;
    ASSERT_EQ(drain(fds[1], &off), sizeof(chunk));
    txq_destroy(&q);
    close(fds[0]);
    close(fds[1]);
}

TEST(txq_keeps_the_rest_in_order_and_flushes_it)
{
    int fds[2];
    pair(fds);
    txq_t q = {0};
    uint8_t chunk[TXQ_TEST_CHUNK];
    size_t written = 0, off = 0;
    /* Until the socket refuses: the first kept bytes, then whole chunks kept behind them. */
    int kept_runs = 0;
    while (kept_runs < 5) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = pattern(written + i);
        uint64_t sends = q.sends;
        ASSERT_EQ(txq_send(&q, fds[0], chunk, sizeof(chunk), TXQ_TEST_MAX), 0);
        written += sizeof(chunk);
        if (txq_pending(&q)) {
            kept_runs++;
            if (kept_runs > 1)
                ASSERT_EQ(q.sends, sends); /* kept behind: no send() tried */
        }
    }
    /* The reader catches up; flushes send what is kept, in order. */
    for (int i = 0; i < 1000 && txq_pending(&q); i++) {
        drain(fds[1], &off);
        ASSERT_EQ(txq_flush(&q, fds[0]), 0);
    }
    ASSERT(!txq_pending(&q));
    drain(fds[1], &off);
    ASSERT_EQ(off, written);
    txq_destroy(&q);
    close(fds[0]);
    close(fds[1]);
}

TEST(txq_bound_refuses_without_keeping_a_part)
{
    int fds[2];
    pair(fds);
    txq_t q = {0};
    uint8_t *big = malloc(2 * TXQ_TEST_MAX);
    for (size_t i = 0; i < 2 * TXQ_TEST_MAX; i++)
        big[i] = pattern(i);
    /* The socket takes a few KB; the rest (under the bound) is kept. */
    size_t first = TXQ_TEST_MAX / 2;
    ASSERT_EQ(txq_send(&q, fds[0], big, first, TXQ_TEST_MAX), 0);
    ASSERT(txq_pending(&q));
    size_t kept = q.len, room = TXQ_TEST_MAX - kept;
    /* One byte more than the bound leaves: refused, and what was kept is unchanged. */
    ASSERT_EQ(txq_send(&q, fds[0], big + first, room + 1, TXQ_TEST_MAX), -ENOBUFS);
    ASSERT_EQ(q.len, kept);
    /* Exactly the room left is kept, and everything arrives in order. */
    ASSERT_EQ(txq_send(&q, fds[0], big + first, room, TXQ_TEST_MAX), 0);
    ASSERT_EQ(q.len, TXQ_TEST_MAX);
    size_t off = 0;
    for (int i = 0; i < 10000 && txq_pending(&q); i++) {
        drain(fds[1], &off);
        ASSERT_EQ(txq_flush(&q, fds[0]), 0);
    }
    drain(fds[1], &off);
    ASSERT_EQ(off, first + room);
    free(big);
    txq_destroy(&q);
    close(fds[0]);
    close(fds[1]);
}

TEST(txq_a_lost_peer_is_an_error)
{
    int fds[2];
    pair(fds);
    close(fds[1]);
    txq_t q = {0};
    uint8_t b[10] = {0};
    /* MSG_NOSIGNAL: EPIPE comes back as an error, not as SIGPIPE. */
    ASSERT_EQ(txq_send(&q, fds[0], b, sizeof(b), TXQ_TEST_MAX), -EPIPE);
    ASSERT(!txq_pending(&q));
    txq_destroy(&q);
    close(fds[0]);
}
