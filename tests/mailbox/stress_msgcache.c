/*
 * Stress of the message block caches (mailbox/msg.c): P producer threads make messages of every
 * class, fill them with a pattern naming producer and sequence, and pass them through one
 * mailbox to a consumer that checks and frees them, so nearly every block is freed on a thread
 * other than its maker's and moves through the shared pool; meanwhile the consumer makes and
 * frees blocks of its own. Checks: no message lost or duplicated, FIFO per producer, every
 * payload intact (a block handed out twice at once would be overwritten), and the caches stay
 * within their bounds. Run under TSan by `make tsan` (the pool's lock and the hand-offs).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailbox/mbox.h"
#include "mailbox/msg.h"

#define PRODUCERS 4
#define PER_PROD  200000

typedef struct item {
    msg_t hdr;
    uint32_t prod;
    uint32_t seq;
    uint32_t len;
    uint8_t fill[]; /* len bytes of (prod + seq + i) */
} item_t;

static mbox_t mb;
static pthread_barrier_t start;

static void fail(const char *what, unsigned a, unsigned b)
{
    fprintf(stderr, "stress_msgcache: %s (%u, %u)\n", what, a, b);
    exit(1);
}

static uint32_t size_of(uint32_t prod, uint32_t seq)
{
    static const uint32_t sizes[] = {64, 100, 200, 400, 900, 1500, 3000, 4000, 5000};
    return sizes[(prod * 7 + seq * 13) % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void *producer(void *arg)
{
    uint32_t prod = (uint32_t)(uintptr_t)arg;
    pthread_barrier_wait(&start);
    for (uint32_t seq = 0; seq < PER_PROD; seq++) {
        uint32_t size = size_of(prod, seq);
        item_t *it = (item_t *)msg_new_head(1, size, sizeof(item_t));
        it->prod = prod;
        it->seq = seq;
        it->len = size - (uint32_t)sizeof(item_t);
        for (uint32_t i = 0; i < it->len; i++)
            it->fill[i] = (uint8_t)(prod + seq + i);
        while (mbox_depth(&mb) > 4096) /* bounded: the consumer keeps up */
            sched_yield();
        mbox_push_mp(&mb, &it->hdr);
        for (uint32_t k = 0; k < MSG_CACHE_CLASSES; k++)
            if (msg_cache_count(k) > msg_cache_cap(k))
                fail("a cache past its bound", k, msg_cache_count(k));
    }
    return NULL;
}

int main(void)
{
    mbox_init(&mb, 1u << 20);
    pthread_barrier_init(&start, NULL, PRODUCERS + 1);
    pthread_t th[PRODUCERS];
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        pthread_create(&th[p], NULL, producer, (void *)p);
    uint32_t next[PRODUCERS] = {0};
    uint64_t got = 0, total = (uint64_t)PRODUCERS * PER_PROD;
    pthread_barrier_wait(&start);
    while (got < total) {
        msg_t *m = mbox_pop_sc(&mb);
        if (m == NULL) {
            mbox_done_sc(&mb);
            sched_yield();
            continue;
        }
        item_t *it = (item_t *)m;
        if (it->prod >= PRODUCERS)
            fail("unknown producer", it->prod, 0);
        if (it->seq != next[it->prod])
            fail("lost, duplicated or reordered", it->seq, next[it->prod]);
        next[it->prod]++;
        if (it->len != size_of(it->prod, it->seq) - sizeof(item_t))
            fail("length changed", it->prod, it->seq);
        for (uint32_t i = 0; i < it->len; i++)
            if (it->fill[i] != (uint8_t)(it->prod + it->seq + i))
                fail("payload overwritten", it->prod, it->seq);
        /* A block of our own now and then, made and freed here. */
        if ((got & 7) == 0)
            msg_free(msg_new(2, 64 + (got % 3000)));
        msg_free(m);
        if ((++got & 63) == 0)
            mbox_done_sc(&mb); /* the depth the producers watch counts what is not given back */
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(th[p], NULL);
    for (uint32_t k = 0; k < MSG_CACHE_CLASSES; k++)
        if (msg_pool_count(k) > MSG_CACHE_BYTES / (128u << k))
            fail("the pool past its bound", k, msg_pool_count(k));
    msg_cache_flush();
    msg_pool_flush();
    mbox_destroy(&mb);
    printf("stress_msgcache: %d producers x %d messages through one mailbox: none lost, none "
           "duplicated, FIFO per producer, every payload intact\n", PRODUCERS, PER_PROD);
    return 0;
}
