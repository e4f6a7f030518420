/* Client data framing for RFC 6455; see wsframe.h. */
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

size_t wsf_client_frame_key(uint8_t *p, size_t len, unsigned opcode, const uint8_t key[4])
{
    uint8_t hdr[WSF_HEADER_MAX];
    size_t h = 2;
    hdr[0] = (uint8_t)(WSF_FIN | (opcode & 0x0f));
    if (len <= WSF_LEN7_MAX) {
        hdr[1] = (uint8_t)(WSF_MASKED | len);
    } else if (len <= WSF_LEN16_MAX) {
        hdr[1] = WSF_MASKED | WSF_LEN16;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        h = 4;
    } else {
        hdr[1] = WSF_MASKED | WSF_LEN64;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    memcpy(hdr + h, key, WSF_KEY_BYTES);
    h += WSF_KEY_BYTES;
    memcpy(p - h, hdr, h);
    wsf_mask(p, len, key);
    return h;
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
