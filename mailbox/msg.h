/*
 * msg: the unit of communication between actors and between network threads and actors.
 *
 * A message is one heap block: this header first, then the payload of its type
 * (`struct { msg_t hdr; ... }`). It belongs to the sender until the push that queues it returns,
 * then to the receiver, which frees it with msg_free() or passes it on.
 */
#ifndef SB_MAILBOX_MSG_H
#define SB_MAILBOX_MSG_H

#include <ck_stack.h>
#include <stddef.h>
#include <stdint.h>

#include "mailbox/msgtypes.h" /* the type ranges */

/* Flags. */
#define MSG_F_AUDIO 0x1u /* droppable under backpressure (SPEC 3): oldest audio goes first */
#define MSG_F_TIMER 0x2u /* a timer expiry (actors/timer.h); stale ones never reach behaviour */

typedef struct msg msg_t;
typedef void (*msg_free_fn)(msg_t *m);

struct msg {
    ck_stack_entry_t link; /* owned by the queue that holds the message */
    uint32_t type;
    uint32_t flags;
    uint64_t sent_ns;    /* set by the sender when it wants latency measured (0 = not) */
    msg_free_fn free_fn; /* releases what the payload owns, then the block; NULL = free() */
};

/*
 * Allocates a zeroed message of size bytes (size >= sizeof(msg_t), the whole typed struct),
 * sets its type. Never fails (aborts on out of memory). The block comes from the calling
 * thread's cache of freed blocks when it has one of the size's class (msg.c).
 */
msg_t *msg_new(uint32_t type, size_t size);

/*
 * As msg_new(), but only the first zero bytes are zeroed (at least the msg_t): for a message
 * whose payload the caller fills at once (an audio frame).
 */
msg_t *msg_new_head(uint32_t type, size_t size, size_t zero);

/* Frees m through its free_fn (or msg_block_free()). NULL is ignored. */
void msg_free(msg_t *m);

/*
 * Releases the block of a message made by msg_new(): what a free_fn calls last, after releasing
 * what the payload owns. Never free() a message. Thread: any (the block goes to this thread's
 * cache, or back to malloc when the cache holds enough of its class).
 */
void msg_block_free(void *m);

/* The block cache's classes (128 B to 4 KB), and the bytes of a class the shared pool keeps. */
#define MSG_CACHE_CLASSES 6
#define MSG_CACHE_BYTES   (32u << 10)
/* Blocks of class k one thread's cache keeps before it moves some to the shared pool (0 when
 * the caches are off: AddressSanitizer builds). */
uint32_t msg_cache_cap(uint32_t k);
/* Blocks of class k in the calling thread's cache, and in the shared pool. */
uint32_t msg_cache_count(uint32_t k);
uint32_t msg_pool_count(uint32_t k);
/* Frees the calling thread's cached blocks (also done when a thread exits), and the pool's. */
void msg_cache_flush(void);
void msg_pool_flush(void);

#define MSG_NEW(T, type) ((T *)msg_new((type), sizeof(T)))

#endif
