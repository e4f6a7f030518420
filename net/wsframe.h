/*
 * wsframe: RFC 6455 framing, done by us instead of libwebsockets: the client side of the
 * outbound connections, and the parsing of what clients send to our server connections.
 *
 * lws 4.1.6 masks a client's payload one byte at a time, reads a new masking key from
 * /dev/urandom (one read() syscall) for every frame, and parses a client's incoming frames one
 * byte at a time; on the upstream path those were the hottest loops in the service
 * (net/DESIGN.md, "Outbound WebSockets"). wsf_client_frame() writes the header into the
 * headroom before the payload and masks the payload eight bytes at a time with a key from a
 * per-thread generator; the caller hands header and payload to lws_write(..., LWS_WRITE_RAW),
 * which lws sends (or buffers) as opaque bytes. wsf_rx_next() parses what a server sends and
 * hands payload on in place.
 *
 * Pure: no I/O, no lws. Thread: any (the key generator is per thread).
 */
#ifndef SB_NET_WSFRAME_H
#define SB_NET_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/wsclose.h"

#define WSF_HEADER_MAX 14 /* 2 + 8 (64-bit length) + 4 (masking key): fits in LWS_PRE */

#define WSF_OP_TEXT   0x1
#define WSF_OP_BINARY 0x2

/* XORs n bytes at p with the 4-byte key, key[0] on p[0]. Thread: any. */
void wsf_mask(uint8_t *p, size_t n, const uint8_t key[4]);

/*
 * Frames the len bytes at p as one whole client frame (FIN set) of opcode, masked with key:
 * writes the header into the WSF_HEADER_MAX bytes before p (which the caller owns) and masks
 * p in place. Returns the header's length h; the frame is the h + len bytes at p - h.
 * Thread: any.
 */
size_t wsf_client_frame_key(uint8_t *p, size_t len, unsigned opcode, const uint8_t key[4]);

/*
 * As wsf_client_frame_key(), with a fresh masking key from the calling thread's generator
 * (xorshift64*, seeded once per thread from getrandom()). RFC 6455 10.3 asks only that the key
 * be unpredictable to the application whose data is framed, against cross-protocol attacks by
 * in-page scripts; no such script exists here. Thread: any.
 */
size_t wsf_client_frame(uint8_t *p, size_t len, unsigned opcode);

/*
 * Appends one client frame to a run of frames laid back to back in out, so that several go out
 * in one send: the caller has written the len bytes of payload at out + *at + WSF_HEADER_MAX;
 * they are framed as one whole frame of opcode (wsf_client_frame) and moved down so that the
 * frame starts at out + *at, which advances past it. Thread: any.
 */
void wsf_client_frame_append(uint8_t *out, size_t *at, size_t len, unsigned opcode);

/* As wsf_client_frame_append(), for a close frame carrying code and no reason (out needs
 * WSF_HEADER_MAX + 2 bytes free at *at). Thread: any. */
void wsf_client_close_append(uint8_t *out, size_t *at, uint16_t code);

/*
 * Writes the header of an unmasked (server) frame with FIN set into the bytes before p, for a
 * payload of len bytes; returns its length (at most WSF_SERVER_HEADER_MAX). Thread: any.
 */
#define WSF_SERVER_HEADER_MAX 10
size_t wsf_server_header(uint8_t *p, size_t len, unsigned opcode);

/* ---- Receiving ------------------------------------------------------------------------------ */

#define WSF_CONTROL_MAX 125 /* RFC 6455 5.5 */

#define WSF_OP_CONTINUATION 0x0
#define WSF_OP_CLOSE        0x8
#define WSF_OP_PING         0x9
#define WSF_OP_PONG         0xa

#define WSF_CLOSE_PROTOCOL_ERROR WS_CODE_PROTOCOL

typedef enum wsf_kind { WSF_DATA, WSF_PING, WSF_PONG, WSF_CLOSE } wsf_kind_t;

/* What wsf_rx_next() found. data points into the caller's input (data chunks) or into the
 * parser (control frames, whole), valid until the next call. */
typedef struct wsf_chunk {
    wsf_kind_t kind;
    const uint8_t *data;
    size_t len;
    bool binary;         /* data: the message is binary */
    bool first;          /* data: the first chunk of its message */
    bool last;           /* data: the last chunk of its message */
    uint64_t frame_left; /* data: bytes of this frame still to come (early size checks) */
} wsf_chunk_t;

/* Incremental parser of the frames a server sends: any split of the input gives the same
 * chunks' bytes. Zero it to start. */
typedef struct wsf_rx {
    uint64_t left;               /* payload bytes left in the current frame */
    uint8_t hdr[WSF_HEADER_MAX]; /* the header being read */
    uint8_t hdr_have;
    uint8_t opcode; /* of the current frame */
    bool fin;
    bool in_frame;      /* the header is read, payload (or its end) pending */
    bool in_message;    /* a data message has started and not ended */
    bool msg_binary;    /* of the open data message */
    bool first_pending; /* no chunk of the open message delivered yet */
    uint8_t ctl_len;
    uint8_t ctl[WSF_CONTROL_MAX];
    bool server;     /* set before the first call: frames from a client, which must be masked */
    uint8_t key[4];  /* the current frame's masking key (server) */
    uint8_t key_pos; /* payload bytes of the current frame unmasked so far, mod 4 */
} wsf_rx_t;

/*
 * The size of the whole frame (header and payload) that starts at p, of which n bytes are at
 * hand: 0 while its header is incomplete, SIZE_MAX when the length it announces does not fit in
 * a size_t. Validates nothing else (wsf_rx_next() does). A reader that has a whole frame in its
 * buffer can hand it on in place. Thread: any.
 */
size_t wsf_frame_size(const uint8_t *p, size_t n);

/*
 * Takes bytes from *p (*n of them) until a chunk is complete: returns 1 with *out filled, 0
 * when the input is used up first, or -WSF_CLOSE_PROTOCOL_ERROR for a frame RFC 6455 forbids
 * (reserved bits or opcodes, a fragmented or oversized control frame, a continuation out of
 * place, a 64-bit length with its top bit set, and a masked frame from a server or an unmasked
 * one from a client). *p and *n advance past what was used. With r->server set the input must
 * be writable: a client's payload is unmasked where it lies, and data chunks point at it.
 * After an error the parser must not be used again. Thread: the owner.
 */
int wsf_rx_next(wsf_rx_t *r, const uint8_t **p, size_t *n, wsf_chunk_t *out);

#endif
