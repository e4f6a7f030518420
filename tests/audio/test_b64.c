/* Tests of audio/b64: RFC 4648 vectors, padding, random round trips and rejected input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/b64.h"
#include "base/util.h"
#include "tests/runner.h"

#define B64_TEST_FRAME_BYTES 960 /* 20 ms of 24 kHz mono PCM16 */
#define B64_TEST_FRAME_CHARS 1280
#define B64_TEST_ROUNDS      1000
#define B64_TEST_BUF_BYTES   64

/* RFC 4648 section 10. */
static const struct {
    const char *plain;
    const char *encoded;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

/* xorshift64: a fixed seed keeps the random cases reproducible. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

TEST(b64_rfc4648_vectors)
{
    for (size_t i = 0; i < ARRAY_LEN(rfc4648); i++) {
        const char *plain = rfc4648[i].plain, *enc = rfc4648[i].encoded;
        size_t n = strlen(plain);
        char out[B64_TEST_BUF_BYTES];
        memset(out, '#', sizeof(out));
        ASSERT_EQ(b64_encoded_len(n), strlen(enc));
        ASSERT_EQ(b64_encode(plain, n, out), strlen(enc));
        ASSERT_STR_EQ(out, enc);

        unsigned char dec[B64_TEST_BUF_BYTES];
        ASSERT_LE(b64_decoded_max(strlen(enc)), sizeof(dec));
        ASSERT_EQ(b64_decode(enc, strlen(enc), dec), (ssize_t)n);
        ASSERT(memcmp(dec, plain, n) == 0);
    }
}

TEST(b64_padding_cases)
{
    /* Lengths 3k, 3k+1, 3k+2 give 0, 2 and 1 padding characters. */
    static const unsigned char bytes[] = {0xff, 0x00, 0xfe, 0x01, 0x80};
    static const char *const expect[] = {"/wD+", "/wD+AQ==", "/wD+AYA="};
    for (size_t i = 0; i < 3; i++) {
        size_t n = 3 + i;
        char out[B64_TEST_BUF_BYTES];
        ASSERT_EQ(b64_encode(bytes, n, out), 8 - (i == 0 ? 4 : 0));
        ASSERT_STR_EQ(out, expect[i]);
        unsigned char dec[B64_TEST_BUF_BYTES];
        ASSERT_EQ(b64_decode(out, strlen(out), dec), (ssize_t)n);
        ASSERT(memcmp(dec, bytes, n) == 0);
    }
    ASSERT_EQ(b64_encoded_len(0), 0);
    ASSERT_EQ(b64_encoded_len(1), 4);
    ASSERT_EQ(b64_encoded_len(B64_TEST_FRAME_BYTES), B64_TEST_FRAME_CHARS);
    ASSERT_EQ(b64_decoded_max(0), 0);
    ASSERT_EQ(b64_decoded_max(4), 3);
    ASSERT_EQ(b64_decoded_max(B64_TEST_FRAME_CHARS), B64_TEST_FRAME_BYTES);
}

TEST(b64_random_frames_round_trip)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    unsigned char frame[B64_TEST_FRAME_BYTES], back[B64_TEST_FRAME_BYTES];
    char text[B64_TEST_FRAME_CHARS + 1];
    for (int r = 0; r < B64_TEST_ROUNDS; r++) {
        for (size_t i = 0; i < sizeof(frame); i++)
            frame[i] = (unsigned char)rng_next(&seed);
        /* Mostly whole frames; every tenth round a shorter tail to cover the padding. */
        size_t n = r % 10 ? sizeof(frame) : sizeof(frame) - (size_t)(rng_next(&seed) % 7);
        size_t len = b64_encode(frame, n, text);
        ASSERT_EQ(len, b64_encoded_len(n));
        ASSERT_EQ(strlen(text), len);
        ASSERT_EQ(b64_decode(text, len, back), (ssize_t)n);
        ASSERT(memcmp(frame, back, n) == 0);
    }
}

TEST(b64_rejects_invalid_input)
{
    static const char *const bad[] = {
        "Zg=",      /* length not a multiple of 4 */
        "Zm9vY",    /* ditto */
        "Zm9*",     /* character outside the alphabet */
        "Zm9v\n",   /* line break */
        " Zm9",     /* whitespace */
        "Zm9v Zg=", /* whitespace inside */
        "Zg==Zg==", /* padding in the middle */
        "Z===",     /* three padding characters */
        "====",     /* nothing but padding */
        "=Zm9",     /* padding first */
        "Zm=v",     /* '=' followed by data */
        "Zm9-",     /* base64url alphabet */
        "Zm9_",     /* ditto */
        "Zm9\xc3",  /* non-ASCII */
    };
    unsigned char dec[B64_TEST_BUF_BYTES];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        ssize_t r = b64_decode(bad[i], strlen(bad[i]), dec);
        if (r != -EINVAL)
            TEST_FAIL_("b64_decode(\"%s\") returned %zd, expected -EINVAL", bad[i], r);
    }
    /* An embedded NUL counts as a character, not an end. */
    ASSERT_EQ(b64_decode("Zm\0v", 4, dec), -EINVAL);
    ASSERT_EQ(b64_decode("", 0, dec), 0);
}
