/*
 * G.711 μ-law; see ulaw.h.
 *
 * A code is ~(sign | segment << 4 | step). Decoding it gives
 *   magnitude = (((step << 3) + ULAW_BIAS) << segment) - ULAW_BIAS,
 * negative when the (inverted) sign bit is set. The table below is that formula evaluated for
 * all 256 codes (tests/test_ulaw.c recomputes it), the same values as G.711's decoder table.
 * Encoding runs the formula backwards on the biased magnitude, whose highest set bit, 7 to 14,
 * names the segment.
 */
#include "audio/ulaw.h"

#define ULAW_BIAS           0x84  /* G.711's bias of 33 on its 14-bit scale, times 4 */
#define ULAW_CLIP           32635 /* 32767 - ULAW_BIAS: the biased magnitude stays in 15 bits */
#define ULAW_SIGN_BIT       0x80
#define ULAW_SEGMENT_SHIFT  4
#define ULAW_STEP_MASK      0x0F
#define ULAW_STEP_SHIFT     3 /* bits of the biased magnitude below the step in segment 0 */
#define ULAW_SEGMENT_MAX    7
#define ULAW_SEGMENT_TOPBIT 0x4000 /* bit 14: set in a biased magnitude of segment 7 */

/* Linear value of each code: index with the μ-law byte. */
/* clang-format off */
static const int16_t ulaw_decode_table[256] = {
    -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, /* 0x00 */
    -23932, -22908, -21884, -20860, -19836, -18812, -17788, -16764, /* 0x08 */
    -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412, /* 0x10 */
    -11900, -11388, -10876, -10364,  -9852,  -9340,  -8828,  -8316, /* 0x18 */
     -7932,  -7676,  -7420,  -7164,  -6908,  -6652,  -6396,  -6140, /* 0x20 */
     -5884,  -5628,  -5372,  -5116,  -4860,  -4604,  -4348,  -4092, /* 0x28 */
     -3900,  -3772,  -3644,  -3516,  -3388,  -3260,  -3132,  -3004, /* 0x30 */
     -2876,  -2748,  -2620,  -2492,  -2364,  -2236,  -2108,  -1980, /* 0x38 */
     -1884,  -1820,  -1756,  -1692,  -1628,  -1564,  -1500,  -1436, /* 0x40 */
     -1372,  -1308,  -1244,  -1180,  -1116,  -1052,   -988,   -924, /* 0x48 */
      -876,   -844,   -812,   -780,   -748,   -716,   -684,   -652, /* 0x50 */
      -620,   -588,   -556,   -524,   -492,   -460,   -428,   -396, /* 0x58 */
      -372,   -356,   -340,   -324,   -308,   -292,   -276,   -260, /* 0x60 */
      -244,   -228,   -212,   -196,   -180,   -164,   -148,   -132, /* 0x68 */
      -120,   -112,   -104,    -96,    -88,    -80,    -72,    -64, /* 0x70 */
       -56,    -48,    -40,    -32,    -24,    -16,     -8,      0, /* 0x78 */
     32124,  31100,  30076,  29052,  28028,  27004,  25980,  24956, /* 0x80 */
     23932,  22908,  21884,  20860,  19836,  18812,  17788,  16764, /* 0x88 */
     15996,  15484,  14972,  14460,  13948,  13436,  12924,  12412, /* 0x90 */
     11900,  11388,  10876,  10364,   9852,   9340,   8828,   8316, /* 0x98 */
      7932,   7676,   7420,   7164,   6908,   6652,   6396,   6140, /* 0xA0 */
      5884,   5628,   5372,   5116,   4860,   4604,   4348,   4092, /* 0xA8 */
      3900,   3772,   3644,   3516,   3388,   3260,   3132,   3004, /* 0xB0 */
      2876,   2748,   2620,   2492,   2364,   2236,   2108,   1980, /* 0xB8 */
      1884,   1820,   1756,   1692,   1628,   1564,   1500,   1436, /* 0xC0 */
      1372,   1308,   1244,   1180,   1116,   1052,    988,    924, /* 0xC8 */
       876,    844,    812,    780,    748,    716,    684,    652, /* 0xD0 */
       620,    588,    556,    524,    492,    460,    428,    396, /* 0xD8 */
       372,    356,    340,    324,    308,    292,    276,    260, /* 0xE0 */
       244,    228,    212,    196,    180,    164,    148,    132, /* 0xE8 */
       120,    112,    104,     96,     88,     80,     72,     64, /* 0xF0 */
        56,     48,     40,     32,     24,     16,      8,      0, /* 0xF8 */
};
/* clang-format on */

uint8_t ulaw_encode_sample(int16_t sample)
{
    int magnitude = sample;
    int sign = 0;
    if (magnitude < 0) {
        magnitude = -magnitude; /* int, so -32768 is fine */
        sign = ULAW_SIGN_BIT;
    }
    if (magnitude > ULAW_CLIP)
        magnitude = ULAW_CLIP;
    magnitude += ULAW_BIAS;

    /* The bias sets bit 7 at least, so the search stops by segment 0. */
    int segment = ULAW_SEGMENT_MAX;
    for (int bit = ULAW_SEGMENT_TOPBIT; segment > 0 && !(magnitude & bit); bit >>= 1)
        segment--;
    int step = (magnitude >> (segment + ULAW_STEP_SHIFT)) & ULAW_STEP_MASK;
    return (uint8_t) ~(sign | segment << ULAW_SEGMENT_SHIFT | step);
}

int16_t ulaw_decode_sample(uint8_t code)
{
    return ulaw_decode_table[code];
}

void ulaw_encode(const int16_t *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ulaw_encode_sample(in[i]);
}

void ulaw_decode(const uint8_t *in, size_t n, int16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ulaw_decode_table[in[i]];
}
