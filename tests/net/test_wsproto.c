/* Tests of net/wsproto's UTF-8 check: known good and bad sequences at every alignment, and
 * random byte strings against the decoding reference (tests/fuzz/utf8_ref.h). */
#include <stdint.h>
#include <string.h>

#include "net/wsproto.h"
#include "tests/fuzz/utf8_ref.h"
#include "tests/runner.h"

#define UTF8_TEST_PAD    24 /* ASCII around each case, so the 8-byte steps reach it misaligned */
#define UTF8_TEST_ROUNDS 200000
#define UTF8_TEST_MAXLEN 40

static const struct {
    const char *bytes;
    bool valid;
} cases[] = {
    {"", true},
    {"plain ascii", true},
    {"caf\xc3\xa9", true},
    {"\xe2\x82\xac", true},      /* U+20AC */
    {"\xf0\x9f\x98\x80", true},  /* U+1F600 */
    {"\xed\x9f\xbf", true},      /* U+D7FF, last before the surrogates */
    {"\xee\x80\x80", true},      /* U+E000, first after them */
    {"\xf4\x8f\xbf\xbf", true},  /* U+10FFFF */
    {"\xef\xbf\xbf", true},      /* U+FFFF */
    {"\x80", false},             /* lone continuation */
    {"\xc0\xaf", false},         /* overlong '/' */
    {"\xc1\xbf", false},         /* overlong */
    {"\xe0\x80\xaf", false},     /* overlong */
    {"\xe0\x9f\xbf", false},     /* overlong */
    {"\xf0\x8f\xbf\xbf", false}, /* overlong */
    {"\xed\xa0\x80", false},     /* U+D800 */
    {"\xed\xbf\xbf", false},     /* U+DFFF */
    {"\xf4\x90\x80\x80", false}, /* U+110000 */
    {"\xf5\x80\x80\x80", false}, /* F5 never appears */
    {"\xff", false},
    {"\xc3", false},             /* cut short */
    {"\xe2\x82", false},         /* cut short */
    {"\xf0\x9f\x98", false},     /* cut short */
    {"\xc3\x28", false},         /* bad continuation */
    {"\xe2\x28\xa1", false},     /* bad continuation */
    {"\xf0\x9f\x28\x80", false}, /* bad continuation */
};

TEST(wsproto_utf8_known_cases)
{
    uint8_t buf[2 * UTF8_TEST_PAD + 8];
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        size_t n = strlen(cases[k].bytes);
        for (size_t before = 0; before < UTF8_TEST_PAD; before++) {
            memset(buf, 'a', sizeof(buf));
            memcpy(buf + before, cases[k].bytes, n);
            /* With ASCII after it, and ending right after it. */
            if (wsp_utf8_valid(buf, sizeof(buf)) != cases[k].valid ||
                wsp_utf8_valid(buf, before + n) != cases[k].valid)
                TEST_FAIL_("case %zu at offset %zu: expected %s", k, before,
                           cases[k].valid ? "valid" : "invalid");
        }
    }
}

TEST(wsproto_utf8_matches_reference)
{
    /* Random strings biased toward the interesting bytes, so both answers come up often. */
    static const uint8_t alphabet[] = {'a',  0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
                                       0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 'z',  '"'};
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    uint8_t buf[UTF8_TEST_MAXLEN];
    unsigned valid = 0;
    for (int r = 0; r < UTF8_TEST_ROUNDS; r++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t n = (size_t)(s % UTF8_TEST_MAXLEN);
        uint64_t x = s;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = (x >> 60) < 9 ? (uint8_t)'a' : alphabet[(x >> 33) % sizeof(alphabet)];
        }
        bool want = utf8_ref_valid(buf, n);
        valid += want;
        if (wsp_utf8_valid(buf, n) != want)
            TEST_FAIL_("round %d (len %zu): expected %s", r, n, want ? "valid" : "invalid");
    }
    ASSERT_GT(valid, UTF8_TEST_ROUNDS / 20);
    ASSERT_LT(valid, UTF8_TEST_ROUNDS - UTF8_TEST_ROUNDS / 20);
}
