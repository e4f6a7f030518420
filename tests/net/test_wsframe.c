/* Tests of net/wsframe: RFC 6455 5.7 examples, the three length forms, masking against a
 * byte-at-a-time reference at every length and alignment, the per-thread key generator, runs of
 * frames laid back to back, and the size of a frame from its header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wsframe.h"
#include "tests/runner.h"

#define WSF_TEST_MAX_LEN  200
#define WSF_TEST_KEYS     1000
#define WSF_TEST_LEN16    256
#define WSF_TEST_LEN64    65536
#define WSF_TEST_HEADROOM 16

static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Unmasks in place the frame of h + len bytes at f with the key it carries. */
static void unmask_ref(uint8_t *f, size_t h, size_t len)
{
    const uint8_t *key = f + h - 4;
    for (size_t i = 0; i < len; i++)
        f[h + i] ^= key[i % 4];
}

TEST(wsframe_rfc6455_masked_hello)
{
    /* RFC 6455 5.7: "A single-frame masked text message". */
    static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t buf[WSF_TEST_HEADROOM + 5];
    memcpy(buf + WSF_TEST_HEADROOM, "Hello", 5);
    size_t h = wsf_client_frame_key(buf + WSF_TEST_HEADROOM, 5, WSF_OP_TEXT, rfc_key);
    ASSERT_EQ(h, 6);
    ASSERT(memcmp(buf + WSF_TEST_HEADROOM - h, want, sizeof(want)) == 0);
}

TEST(wsframe_length_forms)
{
    /* RFC 6455 5.7: 256 bytes use the 16-bit form, 64 KiB the 64-bit form; masked here. */
    uint8_t *buf = calloc(1, WSF_TEST_HEADROOM + WSF_TEST_LEN64);
    uint8_t *p = buf + WSF_TEST_HEADROOM;
    size_t h = wsf_client_frame_key(p, WSF_TEST_LEN16, WSF_OP_BINARY, rfc_key);
    ASSERT_EQ(h, 8);
    static const uint8_t want16[] = {0x82, 0xfe, 0x01, 0x00, 0x37, 0xfa, 0x21, 0x3d};
    ASSERT(memcmp(p - h, want16, sizeof(want16)) == 0);

    memset(p, 0, WSF_TEST_LEN64);
    h = wsf_client_frame_key(p, WSF_TEST_LEN64, WSF_OP_BINARY, rfc_key);
    ASSERT_EQ(h, 14);
    static const uint8_t want64[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0x37, 0xfa, 0x21, 0x3d};
    ASSERT(memcmp(p - h, want64, sizeof(want64)) == 0);
    for (size_t i = 0; i < WSF_TEST_LEN64; i++)
        ASSERT_EQ(p[i], rfc_key[i % 4]); /* zeros masked are the key repeated */

    /* The boundaries of the 7-bit and 16-bit forms. */
    ASSERT_EQ(wsf_client_frame_key(p, 125, WSF_OP_TEXT, rfc_key), 6);
    ASSERT_EQ((p - 6)[1], 0x80 | 125);
    ASSERT_EQ(wsf_client_frame_key(p, 126, WSF_OP_TEXT, rfc_key), 8);
    ASSERT_EQ((p - 8)[1], 0x80 | 126);
    ASSERT_EQ(wsf_client_frame_key(p, 65535, WSF_OP_TEXT, rfc_key), 8);
    ASSERT_EQ((p - 8)[2], 0xff);
    ASSERT_EQ((p - 8)[3], 0xff);
    free(buf);
}

TEST(wsframe_mask_matches_reference)
{
    /* Every length up to WSF_TEST_MAX_LEN at every alignment, against the bytewise XOR. */
    uint8_t src[WSF_TEST_MAX_LEN + 8], a[WSF_TEST_MAX_LEN + 8];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 131 + 7);
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n <= WSF_TEST_MAX_LEN; n++) {
            memcpy(a, src, sizeof(a));
            wsf_mask(a + off, n, key);
            for (size_t i = 0; i < sizeof(a); i++) {
                uint8_t want = src[i];
                if (i >= off && i < off + n)
                    want ^= key[(i - off) % 4];
                if (a[i] != want)
                    TEST_FAIL_("off %zu len %zu byte %zu: %02x vs %02x", off, n, i, a[i], want);
            }
        }
    }
}

TEST(wsframe_round_trip_with_fresh_keys)
{
    /* Random keys: the payload unmasks to itself, keys vary, and none repeats at once. */
    uint8_t buf[WSF_TEST_HEADROOM + WSF_TEST_MAX_LEN];
    uint8_t *p = buf + WSF_TEST_HEADROOM;
    uint32_t prev = 0, zero_keys = 0, repeats = 0;
    for (int k = 0; k < WSF_TEST_KEYS; k++) {
        size_t n = (size_t)k % WSF_TEST_MAX_LEN;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(i ^ (size_t)k);
        size_t h = wsf_client_frame(p, n, WSF_OP_BINARY);
        ASSERT_EQ(p[-(long)h], 0x82);
        uint32_t key;
        memcpy(&key, p - 4, sizeof(key));
        zero_keys += key == 0;
        repeats += key == prev;
        prev = key;
        unmask_ref(p - h, h, n);
        for (size_t i = 0; i < n; i++)
            ASSERT_EQ(p[i], (uint8_t)(i ^ (size_t)k));
    }
    ASSERT_LE(zero_keys, 1);
    ASSERT_LE(repeats, 1);
}

TEST(wsframe_append_lays_frames_back_to_back)
{
    /* Three frames of the three length forms in one run: each parses whole and in order. */
    static const size_t lens[] = {5, WSF_TEST_LEN16, 0};
    static const unsigned ops[] = {WSF_OP_TEXT, WSF_OP_BINARY, WSF_OP_TEXT};
    uint8_t *run = malloc(3 * WSF_HEADER_MAX + WSF_TEST_LEN16 + 5);
    size_t at = 0;
    for (int f = 0; f < 3; f++) {
        for (size_t i = 0; i < lens[f]; i++)
            run[at + WSF_HEADER_MAX + i] = (uint8_t)(i + (size_t)f);
        wsf_client_frame_append(run, &at, lens[f], ops[f]);
    }
    ASSERT_EQ(at, (2 + 4 + 5) + (4 + 4 + WSF_TEST_LEN16) + (2 + 4));
    wsf_rx_t rx = {.server = true};
    const uint8_t *p = run;
    size_t n = at;
    for (int f = 0; f < 3; f++) {
        ASSERT_EQ(wsf_frame_size(p, n), (f == 1 ? 8 : 6) + lens[f]);
        wsf_chunk_t ch;
        ASSERT_EQ(wsf_rx_next(&rx, &p, &n, &ch), 1);
        ASSERT_EQ(ch.kind, WSF_DATA);
        ASSERT_EQ(ch.binary, ops[f] == WSF_OP_BINARY);
        ASSERT(ch.first && ch.last);
        ASSERT_EQ(ch.len, lens[f]);
        for (size_t i = 0; i < lens[f]; i++)
            ASSERT_EQ(ch.data[i], (uint8_t)(i + (size_t)f));
    }
    ASSERT_EQ(n, 0);
    free(run);
}

TEST(wsframe_close_append_carries_the_code)
{
    uint8_t f[WSF_HEADER_MAX + 2];
    size_t at = 0;
    wsf_client_close_append(f, &at, 1002);
    ASSERT_EQ(at, 2 + 4 + 2);
    wsf_rx_t rx = {.server = true};
    const uint8_t *p = f;
    size_t n = at;
    wsf_chunk_t ch;
    ASSERT_EQ(wsf_rx_next(&rx, &p, &n, &ch), 1);
    ASSERT_EQ(ch.kind, WSF_CLOSE);
    ASSERT_EQ(ch.len, 2);
    ASSERT_EQ(ch.data[0] << 8 | ch.data[1], 1002);
    ASSERT_EQ(n, 0);
}

TEST(wsframe_size_needs_the_whole_header)
{
    /* An unmasked 64-bit length: 10 header bytes; every shorter prefix is "not yet". */
    uint8_t f[WSF_TEST_HEADROOM];
    memset(f, 0, sizeof(f));
    f[0] = 0x82;
    f[1] = 127;
    f[6] = 0x01; /* the length 0x01000000: 16 MiB */
    for (size_t n = 0; n < 10; n++)
        ASSERT_EQ(wsf_frame_size(f, n), 0);
    ASSERT_EQ(wsf_frame_size(f, 10), 10 + 0x1000000);
    /* A masked 7-bit length: 2 + 4 header bytes. */
    uint8_t g[] = {0x81, 0x80 | 3, 1, 2, 3, 4, 'a', 'b', 'c'};
    ASSERT_EQ(wsf_frame_size(g, 5), 0);
    ASSERT_EQ(wsf_frame_size(g, 6), sizeof(g));
    ASSERT_EQ(wsf_frame_size(g, 1), 0);
    /* A length that no size_t holds. */
    memset(f + 2, 0xff, 8);
    ASSERT_EQ(wsf_frame_size(f, 10), SIZE_MAX);
}
