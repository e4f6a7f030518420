/*
 * Tests of audio/ulaw: G.711 vectors worked by hand from the standard's algorithm, the decode
 * table against the formula, round trips over all 256 codes, monotonicity of both directions,
 * and the quantisation error bound.
 */
#include <stdint.h>
#include <stdlib.h>

#include "audio/ulaw.h"
#include "base/util.h"
#include "tests/runner.h"

#define ULAW_T_CODES    256
#define ULAW_T_POS_ZERO 0xFF
#define ULAW_T_NEG_ZERO 0x7F
#define ULAW_T_CLIP     32635
#define ULAW_T_FRAME    160 /* 20 ms at 8 kHz */

/* The G.711 decoding formula, written independently of the table in ulaw.c. */
static int ulaw_t_formula(int code)
{
    int u = ~code & 0xFF;
    int segment = (u >> 4) & 0x07, step = u & 0x0F;
    int magnitude = (((step << 3) + 0x84) << segment) - 0x84;
    return (u & 0x80) ? -magnitude : magnitude;
}

/*
 * Position of a code in increasing decoded value: 0x00 (most negative) .. 0x7F (-0), then
 * 0xFF (+0) .. 0x80 (most positive).
 */
static int ulaw_t_rank(int code)
{
    return code < 0x80 ? code : 0x80 + (0xFF - code);
}

TEST(ulaw_known_vectors)
{
    static const struct {
        uint8_t code;
        int16_t linear;
    } dec[] = {
        {0xFF, 0},    {0x7F, 0},     {0x00, -32124}, {0x80, 32124}, {0xFE, 8},
        {0x7E, -8},   {0xF0, 120},   {0xEF, 132},    {0xDF, 396},   {0xCE, 988},
        {0x9F, 8316}, {0x8F, 16764}, {0x0F, -16764}, {0x70, -120},  {0xF2, 104},
    };
    for (size_t i = 0; i < ARRAY_LEN(dec); i++)
        ASSERT_EQ(ulaw_decode_sample(dec[i].code), dec[i].linear);

    /* Worked by hand: clip to 32635, add 0x84, segment = top bit - 7, step = the next 4 bits,
     * invert. 0 + 0x84 = 0b1000_0100: segment 0, step 0, ~0x00 = 0xFF. */
    static const struct {
        int16_t linear;
        uint8_t code;
    } enc[] = {
        {0, 0xFF},     {1, 0xFF},      {3, 0xFF},      {4, 0xFE},      {-1, 0x7F},
        {-3, 0x7F},    {-4, 0x7E},     {100, 0xF2},    {123, 0xF0},    {124, 0xEF},
        {1000, 0xCE},  {-1000, 0x4E},  {8316, 0x9F},   {32124, 0x80},  {32635, 0x80},
        {32767, 0x80}, {-32124, 0x00}, {-32767, 0x00}, {-32768, 0x00},
    };
    for (size_t i = 0; i < ARRAY_LEN(enc); i++)
        if (ulaw_encode_sample(enc[i].linear) != enc[i].code)
            TEST_FAIL_("encode(%d) = 0x%02X, want 0x%02X", enc[i].linear,
                       ulaw_encode_sample(enc[i].linear), enc[i].code);
}

TEST(ulaw_table_matches_formula)
{
    for (int b = 0; b < ULAW_T_CODES; b++)
        ASSERT_EQ(ulaw_decode_sample((uint8_t)b), ulaw_t_formula(b));
}

TEST(ulaw_round_trip_every_code)
{
    for (int b = 0; b < ULAW_T_CODES; b++) {
        int want = b == ULAW_T_NEG_ZERO ? ULAW_T_POS_ZERO : b;
        uint8_t got = ulaw_encode_sample(ulaw_decode_sample((uint8_t)b));
        if (got != want)
            TEST_FAIL_("encode(decode(0x%02X)) = 0x%02X", b, got);
    }
}

TEST(ulaw_decode_monotonic)
{
    int16_t by_rank[ULAW_T_CODES];
    for (int b = 0; b < ULAW_T_CODES; b++)
        by_rank[ulaw_t_rank(b)] = ulaw_decode_sample((uint8_t)b);
    for (int i = 1; i < ULAW_T_CODES; i++) {
        if (i == ulaw_t_rank(ULAW_T_POS_ZERO))
            ASSERT_EQ(by_rank[i], by_rank[i - 1]); /* -0 and +0 */
        else
            ASSERT_GT(by_rank[i], by_rank[i - 1]);
    }
    ASSERT_EQ(by_rank[0], -ULAW_DECODED_MAX);
    ASSERT_EQ(by_rank[ULAW_T_CODES - 1], ULAW_DECODED_MAX);
}

TEST(ulaw_encode_monotonic_and_bounded)
{
    /* Over every 16-bit input: codes never go down in rank as the input rises, and the decoded
     * value is within one step of its segment of the input (inside the clip range). */
    int prev_rank = -1;
    for (int x = INT16_MIN; x <= INT16_MAX; x++) {
        uint8_t code = ulaw_encode_sample((int16_t)x);
        int rank = ulaw_t_rank(code);
        if (rank < prev_rank)
            TEST_FAIL_("encode(%d) = 0x%02X ranks below encode(%d)", x, code, x - 1);
        prev_rank = rank;
        if (abs(x) <= ULAW_T_CLIP) {
            int segment = ((~code & 0xFF) >> 4) & 0x07;
            int step = 8 << segment;
            int err = abs(ulaw_decode_sample(code) - x);
            if (err > step)
                TEST_FAIL_("decode(encode(%d)) = %d: error %d over step %d", x,
                           ulaw_decode_sample(code), err, step);
        }
    }
}

TEST(ulaw_bulk_matches_samples)
{
    int16_t pcm[ULAW_T_FRAME], back[ULAW_T_FRAME];
    uint8_t codes[ULAW_T_FRAME];
    for (int i = 0; i < ULAW_T_FRAME; i++)
        pcm[i] = (int16_t)(i * 409 - 32768);
    ulaw_encode(pcm, ULAW_T_FRAME, codes);
    ulaw_decode(codes, ULAW_T_FRAME, back);
    for (int i = 0; i < ULAW_T_FRAME; i++) {
        ASSERT_EQ(codes[i], ulaw_encode_sample(pcm[i]));
        ASSERT_EQ(back[i], ulaw_decode_sample(codes[i]));
    }
    ulaw_encode(pcm, 0, codes);
    ulaw_decode(codes, 0, back);
}
