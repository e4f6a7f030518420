/*
 * wsframe: the client side of RFC 6455 data framing, done by us instead of libwebsockets.
 *
 * lws 4.1.6 masks a client's payload one byte at a time and reads a new masking key from
 * /dev/urandom (one read() syscall) for every frame; on the upstream path that was the hottest
 * loop in the service (net/DESIGN.md, "Client frames"). wsf_client_frame() writes the header
 * into the headroom before the payload and masks the payload eight bytes at a time with a key
 * from a per-thread generator; the caller then hands header and payload to
 * lws_write(..., LWS_WRITE_RAW), which lws sends (or buffers) as opaque bytes.
 *
 * Pure: no I/O, no lws. Thread: any (the key generator is per thread).
 */
#ifndef SB_NET_WSFRAME_H
#define SB_NET_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

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

#endif
