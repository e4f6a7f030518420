/*
 * A slow, obviously correct UTF-8 check for tests: decode each code point, then reject
 * overlong forms, surrogates and values above U+10FFFF. The unit tests and the fuzz target
 * compare wsp_utf8_valid() against it.
 */
#ifndef SB_TESTS_FUZZ_UTF8_REF_H
#define SB_TESTS_FUZZ_UTF8_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool utf8_ref_valid(const uint8_t *p, size_t n)
{
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        int more;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            more = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i - 1 < (size_t)more)
            return false;
        for (int k = 1; k <= more; k++) {
            if ((p[i + (size_t)k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + (size_t)k] & 0x3f);
        }
        if (cp < min_cp[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (size_t)more + 1;
    }
    return true;
}

#endif
