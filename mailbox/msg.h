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
 * sets its type. Never fails (aborts on out of memory).
 */
msg_t *msg_new(uint32_t type, size_t size);

/* Frees m through its free_fn (or free()). NULL is ignored. */
void msg_free(msg_t *m);

#define MSG_NEW(T, type) ((T *)msg_new((type), sizeof(T)))

#endif
