/* Tests of the request-head reader (net/httphead.h): where a head ends, what it holds, what is
 * refused (and why), request targets, and query values. */
#include <errno.h>
#include <string.h>

#include "net/httphead.h"
#include "tests/runner.h"

static int end_of(const char *s)
{
    return httphead_end((const uint8_t *)s, strlen(s));
}

/* Parses s (a whole head); returns the result, h filled (the caller frees it). */
static int parse(const char *s, httphead_t *h, const char **why)
{
    int n = end_of(s);
    ASSERT_EQ(n, (int)strlen(s));
    return httphead_parse(h, (const uint8_t *)s, (size_t)n, why);
}

TEST(httphead_end_finds_the_blank_line)
{
    ASSERT_EQ(end_of("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    ASSERT_EQ(end_of("GET / HTTP/1.1\r\nHost: x\r\n\r"), 0);
    ASSERT_EQ(end_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 27);
    ASSERT_EQ(end_of("GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY"), 27);
    ASSERT_EQ(end_of("GET / HTTP/1.1\nHost: x\n\n"), 24);    /* bare LF line ends */
    ASSERT_EQ(end_of("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 22); /* empty lines first are skipped */
    ASSERT_EQ(end_of(""), 0);
    char big[HTTPHEAD_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(end_of(big), -EMSGSIZE);
}

TEST(httphead_parse_reads_the_line_and_the_fields)
{
    httphead_t h;
    const char *why = NULL;
    ASSERT_EQ(parse("POST /api/sessions?x=1 HTTP/1.1\r\nHost: a.example:80\r\n"
                    "content-length: 2\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n"
                    "X-Other: ignored\r\nOrigin:   http://a.example  \r\n"
                    "X-Switchboard-Key: pk_1\r\n\r\n",
                    &h, &why),
              0);
    ASSERT_STR_EQ(h.method, "POST");
    ASSERT_STR_EQ(h.target, "/api/sessions?x=1");
    ASSERT_EQ(h.minor, 1);
    ASSERT_STR_EQ(h.fields[HH_HOST], "a.example:80");
    ASSERT_STR_EQ(h.fields[HH_CONTENT_LENGTH], "2");
    ASSERT_STR_EQ(h.fields[HH_X_FORWARDED_FOR], "1.1.1.1, 2.2.2.2");
    ASSERT_STR_EQ(h.fields[HH_ORIGIN], "http://a.example");
    ASSERT_STR_EQ(h.fields[HH_X_SWITCHBOARD_KEY], "pk_1");
    ASSERT(h.fields[HH_AUTHORIZATION] == NULL);
    httphead_free(&h);

    /* Two Content-Length fields are joined: httpreq_content_length() judges the list. */
    ASSERT_EQ(parse("POST / HTTP/1.0\r\nContent-Length: 2\r\nContent-Length: 50\r\n\r\n", &h, &why),
              0);
    ASSERT_EQ(h.minor, 0);
    ASSERT_STR_EQ(h.fields[HH_CONTENT_LENGTH], "2, 50");
    httphead_free(&h);
}

TEST(httphead_parse_refuses_what_is_not_plain_http)
{
    static const char *bad[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
        "GET / HTTP/1.1\r\nContent-Length : 2\r\n\r\n", /* blank before the colon */
        "GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",          /* bare CR */
        "GET / HTTP/1.1\r\nX-A: a\001b\r\n\r\n",        /* control byte */
        "GET / HTTP/2.0\r\n\r\n",                       /* version */
        "GET / HTTP/1.1 x\r\n\r\n",                     /* trailing junk */
        "GET /\r\n\r\n",                                /* HTTP/0.9 shape */
        "G(T / HTTP/1.1\r\n\r\n",                       /* method not a token */
        "GET /\x80 HTTP/1.1\r\n\r\n",                   /* target not ASCII */
        "GET / HTTP/1.1\r\nno colon here\r\n\r\n",      /* no colon */
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",       /* empty name */
        "GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", /* single, twice */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        httphead_t h;
        const char *why = NULL;
        int n = end_of(bad[i]);
        ASSERT(n > 0);
        ASSERT_EQ(httphead_parse(&h, (const uint8_t *)bad[i], (size_t)n, &why), -EINVAL);
        ASSERT(why != NULL && *why != '\0');
        httphead_free(&h);
    }
    /* More than HTTPHEAD_MAX_FIELDS fields: 431, not 400. */
    char many[HTTPHEAD_MAX];
    size_t o = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTPHEAD_MAX_FIELDS; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "X-%d: 1\r\n", i);
    o += (size_t)snprintf(many + o, sizeof(many) - o, "\r\n");
    httphead_t h;
    const char *why = NULL;
    ASSERT_EQ(httphead_parse(&h, (const uint8_t *)many, o, &why), -EMSGSIZE);
    httphead_free(&h);
}

TEST(httphead_path_decodes_and_refuses)
{
    char path[64];
    const char *q = NULL;
    ASSERT_EQ(httphead_path("/a%20b/c?x=1&y=%41#frag", path, sizeof(path), &q), 0);
    ASSERT_STR_EQ(path, "/a b/c");
    ASSERT_STR_EQ(q, "x=1&y=%41#frag"); /* raw: net_query_get() decodes one value */
    ASSERT_EQ(httphead_path("/", path, sizeof(path), &q), 0);
    ASSERT_STR_EQ(q, "");
    ASSERT_EQ(httphead_path("*", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("http://h/x", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("healthz", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("/a%00b", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("/a%0ab", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("/a%zz", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("/a%4", path, sizeof(path), &q), -EINVAL);
    ASSERT_EQ(httphead_path("/static/../web/x", path, sizeof(path), &q), -ENOENT);
    ASSERT_EQ(httphead_path("/static/%2e%2e/%2E%2e/etc", path, sizeof(path), &q), -ENOENT);
    ASSERT_EQ(httphead_path("/a/./b", path, sizeof(path), &q), -ENOENT);
    ASSERT_EQ(httphead_path("/a/..", path, sizeof(path), &q), -ENOENT);
    ASSERT_EQ(httphead_path("/a/.b/..c", path, sizeof(path), &q), 0); /* names, not dots */
    char small[4];
    ASSERT_EQ(httphead_path("/abcdef", small, sizeof(small), &q), -ENOSPC);
}

TEST(httphead_tokens_and_query_values)
{
    ASSERT(httphead_has_token("keep-alive, Upgrade", "upgrade"));
    ASSERT(httphead_has_token("websocket", "websocket"));
    ASSERT(!httphead_has_token("websockets", "websocket"));
    ASSERT(!httphead_has_token(NULL, "upgrade"));
    ASSERT(!httphead_has_token("", "upgrade"));
    char v[16];
    ASSERT_EQ(httphead_query_decode("a%20b+c", 7, v, sizeof(v)), 5);
    ASSERT_STR_EQ(v, "a b c");
    ASSERT_EQ(httphead_query_decode("%26x", 4, v, sizeof(v)), 2);
    ASSERT_STR_EQ(v, "&x");
    ASSERT_EQ(httphead_query_decode("%00", 3, v, sizeof(v)), -1);
    ASSERT_EQ(httphead_query_decode("%g1", 3, v, sizeof(v)), -1);
    ASSERT_EQ(httphead_query_decode("0123456789abcdef", 16, v, sizeof(v)), -1); /* no room */
}
