/*
 * txq: the bytes one bench connection has framed and its socket has not taken yet.
 *
 * A connection writes runs of whole frames with txq_send(). While nothing is kept, a run goes to
 * send() at once and only what the socket does not take is kept; while something is kept, the
 * run is kept behind it, so bytes leave in the order they were given. The owner watches the
 * socket for POLLOUT only while txq_pending() and then calls txq_flush(). What is kept is
 * bounded by the max the caller passes: a peer that stops reading ends its connection rather
 * than growing the bench's memory.
 *
 * Thread: the owner (a session's load thread). No libuv: the socket is only written to.
 */
#ifndef SB_BENCH_TXQ_H
#define SB_BENCH_TXQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXQ_MIN_BYTES 4096 /* the buffer's first size, once something must be kept */

/* Zero it to start. */
typedef struct txq {
    uint8_t *buf; /* NULL until something had to be kept; kept for the next time */
    size_t head;  /* the first kept byte */
    size_t len;   /* bytes kept from head */
    size_t cap;
    uint64_t sends;   /* send() calls made */
    uint64_t partial; /* of which the socket took less than it was given */
} txq_t;

/*
 * Sends the n bytes at p on the nonblocking socket fd (MSG_NOSIGNAL), or keeps them behind the
 * bytes already kept. Returns 0 when they were sent or kept; -ENOBUFS when keeping them would
 * make more than max bytes kept (nothing of them is kept then, and the owner ends the
 * connection: a partial frame may be on the wire); or send()'s -errno (the connection is lost).
 */
int txq_send(txq_t *q, int fd, const void *p, size_t n, size_t max);

/* Sends the kept bytes, with one send(). Returns 0 (txq_pending() says whether some are still
 * kept), or send()'s -errno. */
int txq_flush(txq_t *q, int fd);

static inline bool txq_pending(const txq_t *q)
{
    return q->len > 0;
}

/* Frees the buffer. */
void txq_destroy(txq_t *q);

#endif
