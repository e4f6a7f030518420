/* The small string helpers of base/util.h. */
#include <string.h>

#include "base/util.h"
#include "tests/runner.h"

TEST(util_utf8_chars_counts_code_points)
{
    ASSERT_EQ(str_utf8_chars(""), 0);
    ASSERT_EQ(str_utf8_chars("abc"), 3);
    ASSERT_EQ(str_utf8_chars("caf\xc3\xa9"), 4);         /* é: 2 bytes */
    ASSERT_EQ(str_utf8_chars("\xe2\x86\x92"), 1);        /* →: 3 bytes */
    ASSERT_EQ(str_utf8_chars("\xf0\x9f\x93\x9e ok"), 4); /* 📞: 4 bytes */
}

TEST(util_str_copy_truncates_and_terminates)
{
    char buf[4];
    ASSERT_EQ(str_copy(buf, "ab", sizeof(buf)), 2);
    ASSERT_STR_EQ(buf, "ab");
    str_copy(buf, "abcdef", sizeof(buf));
    ASSERT_STR_EQ(buf, "abc");
}
