/* Tests of base/sbuf: growth, formatting, ownership hand-off and RFC 8259 string escaping. */
#include <stdlib.h>
#include <string.h>

#include "base/sbuf.h"
#include "tests/runner.h"

#define SBUF_TEST_GROW_ROUNDS 10000

/* Escapes n bytes of s and returns the result (caller frees). */
static char *json_of(const char *s, size_t n)
{
    sbuf_t b = SBUF_INIT;
    sbuf_json_strn(&b, s, n);
    return sbuf_take(&b);
}

TEST(sbuf_append_grows_and_terminates)
{
    sbuf_t b;
    sbuf_init(&b);
    for (int i = 0; i < SBUF_TEST_GROW_ROUNDS; i++)
        sbuf_putc(&b, (char)('a' + i % 26));
    ASSERT_EQ(b.len, SBUF_TEST_GROW_ROUNDS);
    ASSERT(b.cap > b.len);
    ASSERT_EQ(b.data[b.len], '\0');
    ASSERT_EQ(strlen(b.data), SBUF_TEST_GROW_ROUNDS);
    ASSERT_EQ(b.data[27], 'b');
    sbuf_append(&b, "xyz", 0); /* empty appends keep the buffer terminated */
    ASSERT_EQ(b.len, SBUF_TEST_GROW_ROUNDS);
    sbuf_destroy(&b);
    ASSERT(b.data == NULL);
    ASSERT_EQ(b.len, 0);
}

TEST(sbuf_puts_printf_reset)
{
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "hello");
    sbuf_printf(&b, " %s %d", "world", 42);
    ASSERT_STR_EQ(b.data, "hello world 42");
    ASSERT_EQ(b.len, strlen("hello world 42"));

    /* A format longer than the spare capacity takes the second vsnprintf. */
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sbuf_printf(&b, "[%s]", big);
    ASSERT_EQ(b.len, strlen("hello world 42") + 2 + strlen(big));
    ASSERT_EQ(b.data[b.len - 1], ']');
    ASSERT_EQ(b.data[b.len], '\0');

    size_t cap = b.cap;
    sbuf_reset(&b);
    ASSERT_EQ(b.len, 0);
    ASSERT_STR_EQ(b.data, "");
    ASSERT_EQ(b.cap, cap);
    sbuf_destroy(&b);
}

TEST(sbuf_take_hands_over)
{
    sbuf_t b = SBUF_INIT;
    char *empty = sbuf_take(&b);
    ASSERT_STR_EQ(empty, ""); /* an untouched buffer still yields a string to free */
    free(empty);

    sbuf_puts(&b, "abc");
    char *s = sbuf_take(&b);
    ASSERT_STR_EQ(s, "abc");
    ASSERT(b.data == NULL);
    ASSERT_EQ(b.len, 0);
    ASSERT_EQ(b.cap, 0);
    free(s);
}

TEST(sbuf_reserve_then_append_does_not_move)
{
    sbuf_t b = SBUF_INIT;
    sbuf_reserve(&b, 500);
    ASSERT(b.cap >= 501);
    char *before = b.data;
    for (int i = 0; i < 500; i++)
        sbuf_putc(&b, 'x');
    ASSERT(b.data == before);
    sbuf_destroy(&b);
}

TEST(sbuf_json_str_escapes_rfc8259)
{
    sbuf_t b = SBUF_INIT;
    sbuf_json_str(&b, "plain");
    ASSERT_STR_EQ(b.data, "\"plain\"");
    sbuf_reset(&b);
    sbuf_json_str(&b, "q\"b\\s/");
    ASSERT_STR_EQ(b.data, "\"q\\\"b\\\\s/\"");
    sbuf_reset(&b);
    sbuf_json_str(&b, "\n\r\t\b\f");
    ASSERT_STR_EQ(b.data, "\"\\n\\r\\t\\b\\f\"");
    sbuf_reset(&b);
    sbuf_json_str(&b, "\x01\x1f\x7f");
    ASSERT_STR_EQ(b.data, "\"\\u0001\\u001f\x7f\""); /* DEL needs no escape */
    sbuf_reset(&b);
    sbuf_json_str(&b, "");
    ASSERT_STR_EQ(b.data, "\"\"");
    sbuf_reset(&b);
    sbuf_json_str(&b, NULL);
    ASSERT_STR_EQ(b.data, "null");
    sbuf_destroy(&b);
}

TEST(sbuf_json_strn_embedded_nul)
{
    char *s = json_of("a\0b", 3);
    ASSERT_STR_EQ(s, "\"a\\u0000b\"");
    free(s);
}

TEST(sbuf_json_utf8_passes_through)
{
    /* 2-, 3- and 4-byte sequences: é, €, U+2028, 😀 (U+1F600). */
    const char *in = "caf\xC3\xA9 \xE2\x82\xAC \xE2\x80\xA8 \xF0\x9F\x98\x80";
    char *s = json_of(in, strlen(in));
    ASSERT_EQ(strlen(s), strlen(in) + 2);
    ASSERT(memcmp(s + 1, in, strlen(in)) == 0);
    free(s);
}

TEST(sbuf_json_invalid_utf8_replaced)
{
    /* Stray continuation, overlong '/', a surrogate, above U+10FFFF, a cut-short sequence. */
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"a\x80z", "\"a\xEF\xBF\xBDz\""},
        {"\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"\xF4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"x\xE2\x82", "\"x\xEF\xBF\xBD\xEF\xBF\xBD\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = json_of(cases[i].in, strlen(cases[i].in));
        ASSERT_STR_EQ(s, cases[i].out);
        free(s);
    }
}

TEST(sbuf_utf8_seq_len_boundaries)
{
    ASSERT_EQ(sbuf_utf8_seq_len("A", 1), 1);
    ASSERT_EQ(sbuf_utf8_seq_len("\xC2\x80", 2), 2);     /* U+0080, smallest 2-byte */
    ASSERT_EQ(sbuf_utf8_seq_len("\xC1\xBF", 2), 0);     /* overlong */
    ASSERT_EQ(sbuf_utf8_seq_len("\xE0\xA0\x80", 3), 3); /* U+0800 */
    ASSERT_EQ(sbuf_utf8_seq_len("\xE0\x9F\xBF", 3), 0); /* overlong */
    ASSERT_EQ(sbuf_utf8_seq_len("\xED\x9F\xBF", 3), 3); /* U+D7FF */
    ASSERT_EQ(sbuf_utf8_seq_len("\xEF\xBF\xBF", 3), 3); /* U+FFFF */
    ASSERT_EQ(sbuf_utf8_seq_len("\xF0\x90\x80\x80", 4), 4);
    ASSERT_EQ(sbuf_utf8_seq_len("\xF4\x8F\xBF\xBF", 4), 4); /* U+10FFFF */
    ASSERT_EQ(sbuf_utf8_seq_len("\xF5\x80\x80\x80", 4), 0);
    ASSERT_EQ(sbuf_utf8_seq_len("\xF0\x9F\x98\x80", 3), 0); /* cut short by n */
    ASSERT_EQ(sbuf_utf8_seq_len("\xE2\x28\xA1", 3), 0);     /* bad continuation */
}
