/*
 * Message blocks, with a per-thread cache of freed ones by size class.
 *
 * Most messages are made on one thread and freed on another: a network thread makes a client's
 * audio frame and a worker frees it; a worker makes the frame for the socket and the network
 * thread frees it once it is sent. glibc's allocator gives every thread an arena of its own and
 * keeps per-thread caches only up to 1,032 bytes, so a 1.4 KB frame freed on the other thread
 * went back to its maker's arena under that arena's lock, against the maker's next calloc: at
 * 200 relay sessions, a sixth of the service's futex calls were those locks. Here a freed block
 * goes to the freeing thread's cache, and that thread's next message of the class takes it
 * without a lock. The flows do not balance (a worker makes two frames per round trip, for the
 * client and for the upstream, and frees one), so a thread whose cache of a class overflows
 * (two batches of 8 KB) moves one batch to a shared pool under one lock, and a thread whose
 * cache is empty takes a batch from there before it calls malloc: one lock per batch
 * instead of one per message. The pool keeps at most MSG_CACHE_BYTES of each class; more go
 * back to malloc. Under AddressSanitizer both are off, so a freed message still poisons.
 */
#include "mailbox/msg.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#if defined(__SANITIZE_ADDRESS__)
#define MSG_CACHE_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSG_CACHE_ON 0
#endif
#endif
#ifndef MSG_CACHE_ON
#define MSG_CACHE_ON 1
#endif

/* Before each message: its class, and room to keep the message 16-byte aligned. */
#define MSG_PREFIX 16u
#define CLASS_BIG  UINT32_MAX /* larger than the largest class: malloc'd and freed as it is */

static const uint32_t class_bytes[MSG_CACHE_CLASSES] = {128, 256, 512, 1024, 2048, 4096};
/* Blocks of a class moved at once between a thread's cache and the shared pool: at most 8 KB
 * worth, at most 16. A thread's cache holds at most two batches of a class: 76 KB in all. */
static const uint32_t class_batch[MSG_CACHE_CLASSES] = {16, 16, 16, 8, 4, 2};

typedef struct blk {
    struct blk *next;
} blk_t;

typedef struct cache {
    blk_t *top[MSG_CACHE_CLASSES];
    uint32_t n[MSG_CACHE_CLASSES];
    bool registered; /* with the key whose destructor empties the cache at thread exit */
} cache_t;

/*
 * The shared pool: where a thread that frees more blocks of a class than it makes (a network
 * thread frees the frames workers made) leaves them, a batch at a time, for a thread that makes
 * more than it frees. One lock per batch.
 */
static struct {
    pthread_mutex_t lock;
    blk_t *top[MSG_CACHE_CLASSES]; /* {lock} */
    uint32_t n[MSG_CACHE_CLASSES]; /* {lock} */
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local cache_t tl_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* Frees a NULL-terminated chain of blocks. */
static void free_chain(blk_t *b)
{
    while (b) {
        blk_t *next = b->next;
        free(b);
        b = next;
    }
}

static void cache_empty(void *arg)
{
    cache_t *c = arg;
    for (int k = 0; k < MSG_CACHE_CLASSES; k++) {
        free_chain(c->top[k]);
        c->top[k] = NULL;
        c->n[k] = 0;
    }
}

static void cache_key_init(void)
{
    pthread_key_create(&cache_key, cache_empty);
}

static uint32_t class_of(size_t size)
{
    for (uint32_t k = 0; k < MSG_CACHE_CLASSES; k++)
        if (size <= class_bytes[k])
            return k;
    return CLASS_BIG;
}

uint32_t msg_cache_cap(uint32_t k)
{
    return MSG_CACHE_ON && k < MSG_CACHE_CLASSES ? 2 * class_batch[k] : 0;
}

static uint32_t pool_cap(uint32_t k)
{
    return MSG_CACHE_ON ? MSG_CACHE_BYTES / class_bytes[k] : 0;
}

uint32_t msg_cache_count(uint32_t k)
{
    return k < MSG_CACHE_CLASSES ? tl_cache.n[k] : 0;
}

uint32_t msg_pool_count(uint32_t k)
{
    pthread_mutex_lock(&P.lock);
    uint32_t n = k < MSG_CACHE_CLASSES ? P.n[k] : 0;
    pthread_mutex_unlock(&P.lock);
    return n;
}

void msg_cache_flush(void)
{
    cache_empty(&tl_cache);
}

void msg_pool_flush(void)
{
    pthread_mutex_lock(&P.lock);
    blk_t *chains[MSG_CACHE_CLASSES];
    memcpy(chains, P.top, sizeof(chains));
    memset(P.top, 0, sizeof(P.top));
    memset(P.n, 0, sizeof(P.n));
    pthread_mutex_unlock(&P.lock);
    for (int k = 0; k < MSG_CACHE_CLASSES; k++)
        free_chain(chains[k]);
}

/* Moves up to class_batch[k] blocks of class k from the pool to this thread's (empty) cache. */
static void refill(uint32_t k)
{
    pthread_mutex_lock(&P.lock);
    blk_t *first = P.top[k], *last = NULL;
    uint32_t n = 0;
    for (blk_t *b = first; b && n < class_batch[k]; b = b->next) {
        last = b;
        n++;
    }
    if (n > 0) {
        P.top[k] = last->next;
        P.n[k] -= n;
    }
    pthread_mutex_unlock(&P.lock);
    if (n > 0) {
        last->next = tl_cache.top[k];
        tl_cache.top[k] = first;
        tl_cache.n[k] += n;
    }
}

/* Moves class_batch[k] blocks of class k from this thread's (full) cache to the pool, or to
 * malloc when the pool holds MSG_CACHE_BYTES of the class. */
static void spill(uint32_t k)
{
    blk_t *first = tl_cache.top[k], *last = first;
    for (uint32_t i = 1; i < class_batch[k]; i++)
        last = last->next;
    tl_cache.top[k] = last->next;
    tl_cache.n[k] -= class_batch[k];
    pthread_mutex_lock(&P.lock);
    bool room = P.n[k] + class_batch[k] <= pool_cap(k);
    if (room) {
        last->next = P.top[k];
        P.top[k] = first;
        P.n[k] += class_batch[k];
    }
    pthread_mutex_unlock(&P.lock);
    if (!room) {
        last->next = NULL;
        free_chain(first);
    }
}

static msg_t *block_alloc(size_t size, size_t zero)
{
    uint32_t k = class_of(size);
    blk_t *top = NULL;
    if (k != CLASS_BIG && MSG_CACHE_ON) {
        if (tl_cache.top[k] == NULL)
            refill(k);
        if ((top = tl_cache.top[k]) != NULL) {
            tl_cache.top[k] = top->next;
            tl_cache.n[k]--;
        }
    }
    uint8_t *b = top ? (uint8_t *)top
                     : xmalloc(MSG_PREFIX + (k == CLASS_BIG ? size : class_bytes[k]));
    memcpy(b, &k, sizeof(k));
    msg_t *m = (msg_t *)(b + MSG_PREFIX);
    memset(m, 0, zero);
    return m;
}

msg_t *msg_new(uint32_t type, size_t size)
{
    return msg_new_head(type, size, size);
}

msg_t *msg_new_head(uint32_t type, size_t size, size_t zero)
{
    if (size < sizeof(msg_t))
        size = sizeof(msg_t);
    msg_t *m = block_alloc(size, zero < sizeof(msg_t) ? sizeof(msg_t) : zero > size ? size : zero);
    m->type = type;
    return m;
}

void msg_block_free(void *m)
{
    if (m == NULL)
        return;
    uint8_t *b = (uint8_t *)m - MSG_PREFIX;
    uint32_t k;
    memcpy(&k, b, sizeof(k));
    if (k == CLASS_BIG || !MSG_CACHE_ON) {
        free(b);
        return;
    }
    if (!tl_cache.registered) {
        pthread_once(&cache_once, cache_key_init);
        pthread_setspecific(cache_key, &tl_cache);
        tl_cache.registered = true;
    }
    blk_t *blk = (blk_t *)b;
    blk->next = tl_cache.top[k];
    tl_cache.top[k] = blk;
    if (++tl_cache.n[k] > msg_cache_cap(k))
        spill(k);
}

void msg_free(msg_t *m)
{
    if (m == NULL)
        return;
    if (m->free_fn)
        m->free_fn(m);
    else
        msg_block_free(m);
}
