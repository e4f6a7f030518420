/* RFC 6455 framing and frame parsing; see wsframe.h. */
#include "net/wsframe.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

#define WSF_FIN            0x80
#define WSF_MASKED         0x80
#define WSF_LEN7_MAX       125
#define WSF_LEN16          126
#define WSF_LEN64          127
#define WSF_LEN16_MAX      0xffff
#define WSF_KEY_BYTES      4
#define XORSHIFT_MULT      0x2545F4914F6CDD1DULL /* xorshift64* (Vigna 2016) */
#define SEED_FALLBACK_MULT 0x9E3779B97F4A7C15ULL

void wsf_mask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    memcpy(&k32, key, sizeof(k32));
    /* Both halves hold the key in memory order, whatever the byte order of the host. */
    uint64_t k64 = (uint64_t)k32 << 32 | k32;
    size_t i = 0;
    for (; i + sizeof(k64) <= n; i += sizeof(k64)) {
        uint64_t v;
        memcpy(&v, p + i, sizeof(v));
        v ^= k64;
        memcpy(p + i, &v, sizeof(v));
    }
    for (; i < n; i++)
        p[i] ^= key[i & 3];
}

/* Writes FIN, opcode, the mask bit and the length into hdr; returns the bytes written. */
static size_t put_header(uint8_t *hdr, size_t len, unsigned opcode, uint8_t mask_bit)
{
    hdr[0] = (uint8_t)(WSF_FIN | (opcode & 0x0f));
    if (len <= WSF_LEN7_MAX) {
        hdr[1] = (uint8_t)(mask_bit | len);
        return 2;
    }
    if (len <= WSF_LEN16_MAX) {
        hdr[1] = mask_bit | WSF_LEN16;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = mask_bit | WSF_LEN64;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

size_t wsf_server_header(uint8_t *p, size_t len, unsigned opcode)
{
    uint8_t hdr[WSF_SERVER_HEADER_MAX];
    size_t h = put_header(hdr, len, opcode, 0);
    memcpy(p - h, hdr, h);
    return h;
}

size_t wsf_client_frame_key(uint8_t *p, size_t len, unsigned opcode, const uint8_t key[4])
{
    uint8_t hdr[WSF_HEADER_MAX];
    size_t h = put_header(hdr, len, opcode, WSF_MASKED);
    memcpy(hdr + h, key, WSF_KEY_BYTES);
    h += WSF_KEY_BYTES;
    memcpy(p - h, hdr, h);
    wsf_mask(p, len, key);
    return h;
}

void wsf_client_frame_append(uint8_t *out, size_t *at, size_t len, unsigned opcode)
{
    uint8_t *p = out + *at + WSF_HEADER_MAX;
    size_t h = wsf_client_frame(p, len, opcode);
    if (h != WSF_HEADER_MAX)
        memmove(out + *at, p - h, h + len);
    *at += h + len;
}

void wsf_client_close_append(uint8_t *out, size_t *at, uint16_t code)
{
    out[*at + WSF_HEADER_MAX] = (uint8_t)(code >> 8);
    out[*at + WSF_HEADER_MAX + 1] = (uint8_t)(code & 0xff);
    wsf_client_frame_append(out, at, 2, WSF_OP_CLOSE);
}

static _Thread_local uint64_t tl_rng; /* [owner] xorshift64* state; 0 = not seeded yet */

static uint64_t seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s) || s == 0) {
        /* No entropy yet (early boot): still a different stream per thread and run. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) * SEED_FALLBACK_MULT ^
            (uint64_t)(uintptr_t)&tl_rng;
    }
    return s ? s : SEED_FALLBACK_MULT;
}

size_t wsf_client_frame(uint8_t *p, size_t len, unsigned opcode)
{
    uint64_t x = tl_rng ? tl_rng : seed();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tl_rng = x;
    uint32_t r = (uint32_t)((x * XORSHIFT_MULT) >> 32); /* the high half is the strong one */
    uint8_t key[WSF_KEY_BYTES];
    memcpy(key, &r, sizeof(key));
    return wsf_client_frame_key(p, len, opcode, key);
}

/* Bytes of header a frame needs, known once its first two bytes are in. */
static uint8_t header_need(const uint8_t *h)
{
    uint8_t len7 = h[1] & 0x7f;
    return (uint8_t)(2 +
                     (len7 == WSF_LEN16   ? 2
                      : len7 == WSF_LEN64 ? 8
                                          : 0) +
                     (h[1] & WSF_MASKED ? WSF_KEY_BYTES : 0));
}

/* The payload length a complete header announces. */
static uint64_t payload_len(const uint8_t *h)
{
    uint8_t len7 = h[1] & 0x7f;
    uint64_t len = len7;
    if (len7 == WSF_LEN16) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (len7 == WSF_LEN64) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    }
    return len;
}

size_t wsf_frame_size(const uint8_t *p, size_t n)
{
    if (n < 2 || n < header_need(p))
        return 0;
    size_t h = header_need(p);
    uint64_t len = payload_len(p);
    return len > SIZE_MAX - h ? SIZE_MAX : (size_t)len + h;
}

/* Checks the complete header in r->hdr and starts its frame; 0 or -1002. */
static int start_frame(wsf_rx_t *r)
{
    const uint8_t *h = r->hdr;
    uint8_t op = h[0] & 0x0f;
    /* No extension was offered or accepted (RSV bits); clients always mask, servers never. */
    if ((h[0] & 0x70) || !(h[1] & WSF_MASKED) != !r->server)
        return -WSF_CLOSE_PROTOCOL_ERROR;
    if (r->server) {
        memcpy(r->key, h + header_need(h) - WSF_KEY_BYTES, WSF_KEY_BYTES);
        r->key_pos = 0;
    }
    uint64_t len = payload_len(h);
    if (len >> 63)
        return -WSF_CLOSE_PROTOCOL_ERROR;
    bool fin = (h[0] & WSF_FIN) != 0;
    switch (op) {
    case WSF_OP_CLOSE:
    case WSF_OP_PING:
    case WSF_OP_PONG:
        if (!fin || len > WSF_CONTROL_MAX)
            return -WSF_CLOSE_PROTOCOL_ERROR;
        r->ctl_len = 0;
        break;
    case WSF_OP_CONTINUATION:
        if (!r->in_message)
            return -WSF_CLOSE_PROTOCOL_ERROR;
        break;
    case WSF_OP_TEXT:
    case WSF_OP_BINARY:
        if (r->in_message)
            return -WSF_CLOSE_PROTOCOL_ERROR;
        r->in_message = true;
        r->msg_binary = op == WSF_OP_BINARY;
        r->first_pending = true;
        break;
    default:
        return -WSF_CLOSE_PROTOCOL_ERROR;
    }
    r->opcode = op;
    r->fin = fin;
    r->left = len;
    r->in_frame = true;
    r->hdr_have = 0;
    return 0;
}

/* Unmasks n bytes at p, the next of the current frame's payload (server side). */
static void unmask(wsf_rx_t *r, uint8_t *p, size_t n)
{
    if (!r->server || n == 0)
        return;
    uint8_t k[WSF_KEY_BYTES];
    for (int i = 0; i < WSF_KEY_BYTES; i++)
        k[i] = r->key[(r->key_pos + i) & 3];
    wsf_mask(p, n, k);
    r->key_pos = (uint8_t)((r->key_pos + n) & 3);
}

int wsf_rx_next(wsf_rx_t *r, const uint8_t **p, size_t *n, wsf_chunk_t *out)
{
    while (!r->in_frame) {
        uint8_t need = r->hdr_have < 2 ? 2 : header_need(r->hdr);
        if (r->hdr_have == need) {
            int rc = start_frame(r);
            if (rc < 0)
                return rc;
            break;
        }
        if (*n == 0)
            return 0;
        size_t take = need - r->hdr_have;
        if (take > *n)
            take = *n;
        memcpy(r->hdr + r->hdr_have, *p, take);
        r->hdr_have = (uint8_t)(r->hdr_have + take);
        *p += take;
        *n -= take;
    }
    size_t take = r->left < *n ? (size_t)r->left : *n;
    if (r->opcode >= WSF_OP_CLOSE) {
        memcpy(r->ctl + r->ctl_len, *p, take);
        unmask(r, r->ctl + r->ctl_len, take);
        r->ctl_len = (uint8_t)(r->ctl_len + take);
        *p += take;
        *n -= take;
        r->left -= take;
        if (r->left > 0)
            return 0;
        r->in_frame = false;
        out->kind = r->opcode == WSF_OP_CLOSE  ? WSF_CLOSE
                    : r->opcode == WSF_OP_PING ? WSF_PING
                                               : WSF_PONG;
        out->data = r->ctl;
        out->len = r->ctl_len;
        out->binary = false;
        out->first = out->last = true;
        out->frame_left = 0;
        return 1;
    }
    if (take == 0 && r->left > 0)
        return 0; /* a chunk is only reported with bytes, or when its frame ends */
    unmask(r, (uint8_t *)(uintptr_t)*p, take); /* server side: the caller's writable input */
    out->kind = WSF_DATA;
    out->data = *p;
    out->len = take;
    *p += take;
    *n -= take;
    r->left -= take;
    out->binary = r->msg_binary;
    out->first = r->first_pending;
    r->first_pending = false;
    out->frame_left = r->left;
    out->last = r->left == 0 && r->fin;
    if (r->left == 0) {
        r->in_frame = false;
        if (r->fin)
            r->in_message = false;
    }
    return 1;
}
