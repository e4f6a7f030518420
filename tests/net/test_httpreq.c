/* Tests of net/httpreq.h: Content-Length values, chunked bodies and Host names (SPEC 14). */
#include <errno.h>
#include <string.h>

#include "base/sbuf.h"
#include "net/httpreq.h"
#include "tests/runner.h"

#define BODY_MAX (64 * 1024)

TEST(httpreq_content_length_accepts_one_number)
{
    uint64_t n = 1;
    ASSERT_EQ(httpreq_content_length("0", &n), 0);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(httpreq_content_length(" 65536\t", &n), 0);
    ASSERT_EQ(n, 65536);
    /* The same number repeated (two headers joined by lws, or a list) frames the body alike. */
    ASSERT_EQ(httpreq_content_length("42,42", &n), 0);
    ASSERT_EQ(n, 42);
    ASSERT_EQ(httpreq_content_length("42, 42 ,42", &n), 0);
    ASSERT_EQ(n, 42);
}

TEST(httpreq_content_length_refuses_conflicts_and_junk)
{
    static const char *const bad[] = {
        "",
        " ",
        "abc",
        "-1",
        "+2",
        "1x",
        "0x10",
        "2 2",
        "2, 50",
        "2,50",
        "2,",
        ",2",
        "1.",
        "1e3",
        "٣",
        "\t",
        "2,,2",
        "99999999999999999999999",
        "9007199254740993",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t n = 7;
        if (httpreq_content_length(bad[i], &n) != -EINVAL)
            TEST_FAIL_("accepted Content-Length \"%s\"", bad[i]);
        ASSERT_EQ(n, 7); /* untouched */
    }
    ASSERT_EQ(httpreq_content_length(NULL, &(uint64_t){0}), -EINVAL);
}

TEST(httpreq_te_chunked_only)
{
    ASSERT(httpreq_te_is_chunked("chunked"));
    ASSERT(httpreq_te_is_chunked(" Chunked "));
    ASSERT(!httpreq_te_is_chunked("gzip, chunked"));
    ASSERT(!httpreq_te_is_chunked("chunked,chunked"));
    ASSERT(!httpreq_te_is_chunked("identity"));
    ASSERT(!httpreq_te_is_chunked(""));
    ASSERT(!httpreq_te_is_chunked(NULL));
}

/* Feeds s to a fresh decoder split into pieces of `step` bytes; returns the last result. */
static httpreq_chunked_rc_t feed(const char *s, size_t step, sbuf_t *out, size_t max)
{
    httpreq_chunked_t st;
    memset(&st, 0, sizeof(st));
    size_t len = strlen(s), off = 0;
    httpreq_chunked_rc_t rc = HTTPREQ_CHUNKED_MORE;
    while (off < len && rc == HTTPREQ_CHUNKED_MORE) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        rc = httpreq_chunked_feed(&st, (const uint8_t *)s + off, n, out, max, &used);
        off += used;
    }
    return rc;
}

TEST(httpreq_chunked_decodes_in_any_split)
{
    const char *body = "7\r\n{\"a\":1,\r\n5;ext=1\r\n\"b\":2\r\n1\r\n}\r\n0\r\nX-T: y\r\n\r\n";
    for (size_t step = 1; step <= strlen(body); step++) {
        sbuf_t out = SBUF_INIT;
        ASSERT_EQ(feed(body, step, &out, BODY_MAX), HTTPREQ_CHUNKED_DONE);
        ASSERT_EQ(out.len, 13);
        ASSERT(memcmp(out.data, "{\"a\":1,\"b\":2}", 13) == 0);
        sbuf_destroy(&out);
    }
}

TEST(httpreq_chunked_leaves_what_follows)
{
    const char *s = "2\r\n{}\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    httpreq_chunked_t st;
    memset(&st, 0, sizeof(st));
    sbuf_t out = SBUF_INIT;
    size_t used = 0;
    ASSERT_EQ(httpreq_chunked_feed(&st, (const uint8_t *)s, strlen(s), &out, BODY_MAX, &used),
              HTTPREQ_CHUNKED_DONE);
    ASSERT_EQ(used, strlen("2\r\n{}\r\n0\r\n\r\n"));
    ASSERT_EQ(httpreq_chunked_feed(&st, (const uint8_t *)"x", 1, &out, BODY_MAX, &used),
              HTTPREQ_CHUNKED_DONE);
    ASSERT_EQ(used, 0);
    sbuf_destroy(&out);
}

TEST(httpreq_chunked_refuses_bad_framing)
{
    static const char *const bad[] = {
        "zz\r\n{}\r\n0\r\n\r\n",
        "2\r\n{}XX0\r\n\r\n",
        "-2\r\n{}\r\n0\r\n\r\n",
        "\r\n",
        "2\n{}\r\n",
        "2\r\n{}\r\n0\r\n\n",
        "2 x\r\n",
        "0\r\nX-T\n",
        "2\r\n{}\r\r",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sbuf_t out = SBUF_INIT;
        if (feed(bad[i], 1, &out, BODY_MAX) != HTTPREQ_CHUNKED_MALFORMED)
            TEST_FAIL_("accepted chunked body #%zu", i);
        sbuf_destroy(&out);
    }
}

TEST(httpreq_chunked_limit_counts_decoded_bytes)
{
    sbuf_t out = SBUF_INIT;
    /* One announced size past the limit is refused before any data arrives. */
    ASSERT_EQ(feed("10001\r\n", 3, &out, BODY_MAX), HTTPREQ_CHUNKED_TOO_BIG);
    ASSERT_EQ(out.len, 0);
    /* A size that would overflow 64 bits is refused as too big, not wrapped. */
    ASSERT_EQ(feed("ffffffffffffffffffff1\r\n", 1, &out, BODY_MAX), HTTPREQ_CHUNKED_TOO_BIG);
    /* Many small chunks add up. */
    sbuf_reset(&out);
    ASSERT_EQ(feed("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 4, &out, 5), HTTPREQ_CHUNKED_TOO_BIG);
    ASSERT(out.len <= 5);
    sbuf_reset(&out);
    ASSERT_EQ(feed("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 4, &out, 5), HTTPREQ_CHUNKED_DONE);
    ASSERT_EQ(out.len, 5);
    sbuf_destroy(&out);
}

TEST(httpreq_host_names)
{
    char n[64];
    ASSERT(httpreq_host_name("Example.COM:8080", n, sizeof(n)));
    ASSERT_STR_EQ(n, "example.com");
    ASSERT(httpreq_host_name("[::1]:80", n, sizeof(n)));
    ASSERT_STR_EQ(n, "::1");
    ASSERT(httpreq_host_name("127.0.0.1", n, sizeof(n)));
    ASSERT_STR_EQ(n, "127.0.0.1");
    static const char *const bad[] = {
        "", ":80", "a b", "[::1", "[x]:1", "h:", "h:port", "h:123456", "[::1]x", "evil@h", "h/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (httpreq_host_name(bad[i], n, sizeof(n)))
            TEST_FAIL_("accepted Host \"%s\"", bad[i]);
    ASSERT(!httpreq_host_name("a-very-long-name.example", n, 8));
}

TEST(httpreq_loopback_hosts)
{
    ASSERT(httpreq_host_is_loopback("localhost"));
    ASSERT(httpreq_host_is_loopback("127.0.0.1"));
    ASSERT(httpreq_host_is_loopback("127.8.9.10"));
    ASSERT(httpreq_host_is_loopback("::1"));
    ASSERT(!httpreq_host_is_loopback("localhost.evil.example"));
    ASSERT(!httpreq_host_is_loopback("128.0.0.1"));
    ASSERT(!httpreq_host_is_loopback("::ffff:10.0.0.1"));
    ASSERT(!httpreq_host_is_loopback("evil.example"));
}

TEST(httpreq_hosts_of_ours)
{
    ASSERT(httpreq_host_is_ours("localhost:9999", "127.0.0.1", NULL));
    ASSERT(httpreq_host_is_ours("[::1]:8080", "127.0.0.1", NULL));
    ASSERT(httpreq_host_is_ours("GW.example.com", "gw.example.com", NULL));
    ASSERT(httpreq_host_is_ours("10.0.0.5:8080", "10.0.0.5", NULL));
    ASSERT(httpreq_host_is_ours("[fd00::5]:8080", "fd00::5", NULL));
    ASSERT(httpreq_host_is_ours("gw.example.com", "0.0.0.0", "gw.example.com"));
    /* A rebinding page's name, and wildcards, are never ours. */
    ASSERT(!httpreq_host_is_ours("evil.example:8080", "127.0.0.1", NULL));
    ASSERT(!httpreq_host_is_ours("0.0.0.0:8080", "0.0.0.0", NULL));
    ASSERT(!httpreq_host_is_ours("[::]:8080", "::", NULL));
    ASSERT(!httpreq_host_is_ours("evil.example", "0.0.0.0", "gw.example.com"));
    ASSERT(!httpreq_host_is_ours("", "127.0.0.1", NULL));
    ASSERT(!httpreq_host_is_ours(NULL, "127.0.0.1", NULL));
}
