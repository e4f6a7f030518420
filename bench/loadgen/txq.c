/* Bytes a connection has framed and its socket has not taken yet; see txq.h. */
#include "bench/loadgen/txq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"

/* One send(); the bytes taken (0 when the socket is full), or -errno. */
static ssize_t send_some(txq_t *q, int fd, const void *p, size_t n)
{
    ssize_t w;
    do {
        w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (w < 0 && errno == EINTR);
    q->sends++;
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    if ((size_t)w < n)
        q->partial++;
    return w;
}

/* Appends n bytes behind the kept ones; the buffer grows by doubling up to what is needed. */
static void keep(txq_t *q, const uint8_t *p, size_t n)
{
    if (q->head + q->len + n > q->cap) {
        if (q->head > 0) {
            memmove(q->buf, q->buf + q->head, q->len);
            q->head = 0;
        }
        if (q->len + n > q->cap) {
            size_t cap = q->cap ? q->cap : TXQ_MIN_BYTES;
            while (cap < q->len + n)
                cap *= 2;
            q->buf = xrealloc(q->buf, cap);
            q->cap = cap;
        }
    }
    memcpy(q->buf + q->head + q->len, p, n);
    q->len += n;
}

int txq_send(txq_t *q, int fd, const void *p, size_t n, size_t max)
{
    const uint8_t *b = p;
    if (q->len == 0) {
        ssize_t w = send_some(q, fd, b, n);
        if (w < 0)
            return (int)w;
        b += w;
        n -= (size_t)w;
    }
    if (n == 0)
        return 0;
    if (q->len + n > max)
        return -ENOBUFS;
    keep(q, b, n);
    return 0;
}

int txq_flush(txq_t *q, int fd)
{
    if (q->len == 0)
        return 0;
    ssize_t w = send_some(q, fd, q->buf + q->head, q->len);
    if (w < 0)
        return (int)w;
    /* A short write means the socket is full: the next POLLOUT says when to go on. */
    q->head += (size_t)w;
    q->len -= (size_t)w;
    if (q->len == 0)
        q->head = 0;
    return 0;
}

void txq_destroy(txq_t *q)
{
    free(q->buf);
    q->buf = NULL;
    q->head = q->len = q->cap = 0;
}
