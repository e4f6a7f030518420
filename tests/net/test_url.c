/* Tests of net/url.h: what the outbound WebSockets and outbound HTTP accept and refuse. */
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "net/url.h"
#include "tests/runner.h"

static const char *const ws_schemes[] = {"ws", "wss", NULL};
static const char *const http_schemes[] = {"http", "https", NULL};

TEST(url_splits_ws_urls)
{
    url_parts_t u;
    ASSERT_EQ(url_parse("ws://127.0.0.1:9000/v1/realtime?model=m", ws_schemes, &u), 0);
    ASSERT_STR_EQ(u.scheme, "ws");
    ASSERT_STR_EQ(u.host, "127.0.0.1");
    ASSERT_EQ(u.port, 9000);
    ASSERT(!u.tls);
    ASSERT_STR_EQ(u.target, "/v1/realtime?model=m");
    url_parts_destroy(&u);

    ASSERT_EQ(url_parse("wss://api.openai.com/v1/realtime", ws_schemes, &u), 0);
    ASSERT(u.tls);
    ASSERT_EQ(u.port, 443);
    ASSERT_STR_EQ(u.target, "/v1/realtime");
    url_parts_destroy(&u);

    ASSERT_EQ(url_parse("ws://[::1]:8080", ws_schemes, &u), 0);
    ASSERT_STR_EQ(u.host, "::1"); /* without brackets: for DNS, SNI and certificate checks */
    ASSERT_EQ(u.port, 8080);
    ASSERT_STR_EQ(u.target, "/");
    url_parts_destroy(&u);

    ASSERT_EQ(url_parse("ws://h?x=1#frag", ws_schemes, &u), 0);
    ASSERT_EQ(u.port, 80);
    ASSERT_STR_EQ(u.target, "/?x=1");
    url_parts_destroy(&u);

    ASSERT_EQ(url_parse("ws://h/a/../b", ws_schemes, &u), 0);
    ASSERT_STR_EQ(u.target, "/a/../b"); /* as written */
    ASSERT(!u.userinfo);
    url_parts_destroy(&u);

    ASSERT_EQ(url_parse("ws://user:pw@h/", ws_schemes, &u), 0);
    ASSERT(u.userinfo);
    url_parts_destroy(&u);
}

TEST(url_refuses_malformed)
{
    const char *bad[] = {
        "",          "ws://",    "ws://:80/", "ws://h:0/",  "ws://h:70000/", "ws://h:80x/",
        "http://h/", "ftp://h/", "h/path",    "ws://h/a b", "HTTPS://",      "http://:80/",
        "ws:/%7f:8", "ws://a%20b/", "ws://a%2fb/", "ws://%0d%0aX:1/"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        url_parts_t u;
        if (url_parse(bad[i], ws_schemes, &u) != -EINVAL)
            TEST_FAIL_("\"%s\" was accepted", bad[i]);
        ASSERT(u.target == NULL);
    }
    url_parts_t u;
    ASSERT_EQ(url_parse(NULL, http_schemes, &u), -EINVAL);
    ASSERT_EQ(url_parse("ws://127.0.0.1/", http_schemes, &u), -EINVAL);
    ASSERT_EQ(url_parse("HTTPS://example.com", http_schemes, &u), 0);
    ASSERT_STR_EQ(u.scheme, "https");
    ASSERT(u.tls);
    url_parts_destroy(&u);
}
