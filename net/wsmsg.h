/*
 * wsmsg: the WebSocket message reassembler of both directions (server connections in ws.c,
 * outbound ones in wsc.c). Chunks of a data message go in as wsf_chunk_t, whatever parsed them
 * (lws on the server side, wsf_rx_next() on the client side); a whole message comes out.
 *
 * A message that arrives as one chunk is handed back in place: nothing is copied or allocated,
 * which is the relay path's case (one audio frame, one chunk). Only fragmented messages, or a
 * frame lws delivers in pieces, are copied into a buffer that grows by doubling to what the frame
 * announces and is kept for the next message. The buffer never grows beyond the largest max it
 * was given: a connection's inbound memory is bounded by its route's message limits. Empty messages
 * and empty fragments are fine: an empty message is handed back as a valid (non-NULL) pointer with
 * length 0.
 *
 * Pure: no I/O, no lws. Thread: the connection's owner.
 */
#ifndef SB_NET_WSMSG_H
#define SB_NET_WSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/wsframe.h"

#define WSMSG_MIN_BYTES 4096 /* the buffer's first size */

enum {
    WSMSG_MORE = 0,    /* the message goes on */
    WSMSG_DONE = 1,    /* the message is complete */
    WSMSG_TOO_BIG = -1 /* it is (or will be, by what its frame announces) larger than the limit */
};

/* One connection's message in progress. Zero it to start. */
typedef struct wsmsg {
    uint8_t *buf; /* NULL until a message needs copying; kept for the next */
    size_t len;   /* bytes of the current message copied so far */
    size_t cap;
    bool binary; /* of the current message */
} wsmsg_t;

/*
 * Adds the data chunk ch (first: it starts a message of type ch->binary; last: it ends it;
 * frame_left: bytes of its frame still to come). Returns WSMSG_DONE with *msg and *msg_len set
 * to the whole message, valid until the next call on m (ch's own bytes when the chunk is the
 * whole message, else m's buffer); WSMSG_MORE; or WSMSG_TOO_BIG when the bytes so far, this
 * chunk and the rest of its frame exceed max, checked before anything is copied (the message is
 * then dropped; the caller closes the connection).
 */
int wsmsg_add(wsmsg_t *m, const wsf_chunk_t *ch, size_t max, const uint8_t **msg, size_t *msg_len);

/* Frees the buffer. */
void wsmsg_destroy(wsmsg_t *m);

#endif
