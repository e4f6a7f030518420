/* Message blocks: every size gets usable memory, the per-thread cache, the shared pool. */
#include <string.h>

#include "mailbox/msg.h"
#include "tests/runner.h"

/* Every size up to past the largest class: the whole block is writable (ASan checks it). */
TEST(msg_new_sizes_are_whole)
{
    static const size_t sizes[] = {1, 24, 127, 128, 129, 1000, 1024, 1025, 2048, 4095, 4096,
                                   4097, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i] < sizeof(msg_t) ? sizeof(msg_t) : sizes[i];
        msg_t *m = msg_new(9, sizes[i]);
        ASSERT_EQ(m->type, 9u);
        ASSERT_EQ((uintptr_t)m % 16, 0u);
        uint8_t *p = (uint8_t *)m;
        for (size_t j = sizeof(msg_t); j < n; j++)
            ASSERT_EQ(p[j], 0);
        memset(p + sizeof(msg_t), 0xab, n - sizeof(msg_t));
        msg_free(m);
    }
    msg_cache_flush();
    msg_pool_flush();
}

/* A reused block is zeroed again by msg_new; msg_new_head zeroes only what it is told. */
TEST(msg_reuse_zeroes_what_is_asked)
{
    msg_cache_flush();
    msg_t *m = msg_new(1, 1500);
    memset((uint8_t *)m + sizeof(msg_t), 0x5a, 1500 - sizeof(msg_t));
    msg_free(m);
    msg_t *z = msg_new(2, 1500);
    for (size_t j = sizeof(msg_t); j < 1500; j++)
        ASSERT_EQ(((uint8_t *)z)[j], 0);
    memset((uint8_t *)z + sizeof(msg_t), 0x5a, 1500 - sizeof(msg_t));
    msg_free(z);
    msg_t *h = msg_new_head(3, 1500, 64);
    ASSERT_EQ(h->type, 3u);
    ASSERT(h->free_fn == NULL);
    for (size_t j = sizeof(msg_t); j < 64; j++)
        ASSERT_EQ(((uint8_t *)h)[j], 0);
    if (msg_cache_cap(4) > 0) /* the same block came back: the payload was left as it was */
        ASSERT_EQ(((uint8_t *)h)[100], 0x5a);
    msg_free(h);
    msg_cache_flush();
}

/* A thread's cache of a class holds 2 * BATCH blocks; past that, BATCH go to the pool, which
 * keeps MSG_CACHE_BYTES of the class; an empty cache takes from the pool before malloc. */
TEST(msg_cache_spills_to_the_pool_and_refills)
{
    uint32_t k = 4; /* 2 KB */
    uint32_t cap = msg_cache_cap(k);
    if (cap == 0) /* AddressSanitizer build: no caches */
        return;
    msg_cache_flush();
    msg_pool_flush();
    enum { N = 200 };
    msg_t *m[N];
    for (int i = 0; i < N; i++)
        m[i] = msg_new(1, 2000);
    for (uint32_t i = 0; i < cap; i++)
        msg_free(m[i]);
    ASSERT_EQ(msg_cache_count(k), cap);
    ASSERT_EQ(msg_pool_count(k), 0u);
    msg_free(m[cap]); /* one more: half the cache moves to the pool */
    ASSERT_EQ(msg_cache_count(k), cap + 1 - cap / 2);
    ASSERT_EQ(msg_pool_count(k), cap / 2);
    for (int i = (int)cap + 1; i < N; i++)
        msg_free(m[i]);
    uint32_t pool_max = MSG_CACHE_BYTES / 2048;
    ASSERT(msg_pool_count(k) <= pool_max);
    ASSERT(msg_cache_count(k) <= cap);
    /* Empty this thread's cache, then allocate: the blocks come from the pool. */
    msg_cache_flush();
    uint32_t pooled = msg_pool_count(k);
    ASSERT(pooled > 0);
    msg_t *again = msg_new(1, 1800);
    ASSERT_EQ(msg_pool_count(k), pooled - cap / 2);
    ASSERT_EQ(msg_cache_count(k), cap / 2 - 1);
    msg_free(again);
    /* Other classes were not touched. */
    ASSERT_EQ(msg_pool_count(0), 0u);
    ASSERT_EQ(msg_cache_count(5), 0u);
    msg_cache_flush();
    msg_pool_flush();
    ASSERT_EQ(msg_pool_count(k), 0u);
}

/* Messages larger than the largest class are not cached. */
TEST(msg_big_blocks_are_not_cached)
{
    msg_cache_flush();
    msg_free(msg_new(1, 5000));
    for (uint32_t k = 0; k < MSG_CACHE_CLASSES; k++)
        ASSERT_EQ(msg_cache_count(k), 0u);
}
