/* Tests of the frame parser (net/wsframe.h), as a client and as a server, and the opening
 * handshake (net/wshs.h): RFC 6455 examples, every split of the input, fragmentation with
 * control frames between, protocol errors, and the Sec-WebSocket-Accept of RFC 6455 1.3. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "net/wsframe.h"
#include "net/wshs.h"
#include "tests/runner.h"

#define RX_TEST_OUT_MAX 70000

/* Feeds in[0..n) to a fresh parser in pieces of step bytes; collects data, counts controls. */
typedef struct collected {
    uint8_t data[RX_TEST_OUT_MAX];
    size_t len;
    int messages, pings, pongs, closes, firsts;
    uint8_t ctl[WSF_CONTROL_MAX];
    size_t ctl_len;
    bool binary;
    int error;
} collected_t;

static void feed_as(const uint8_t *src, size_t n, size_t step, bool server, collected_t *c)
{
    memset(c, 0, sizeof(*c));
    wsf_rx_t r;
    memset(&r, 0, sizeof(r));
    r.server = server;
    uint8_t in[RX_TEST_OUT_MAX + 16];
    ASSERT(n <= sizeof(in));
    memcpy(in, src, n); /* a server unmasks in place */
    for (size_t off = 0; off < n;) {
        size_t piece = n - off < step ? n - off : step;
        const uint8_t *p = in + off;
        size_t left = piece;
        wsf_chunk_t ch;
        int rc;
        while ((rc = wsf_rx_next(&r, &p, &left, &ch)) == 1) {
            switch (ch.kind) {
            case WSF_DATA:
                ASSERT(c->len + ch.len <= sizeof(c->data));
                memcpy(c->data + c->len, ch.data, ch.len);
                c->len += ch.len;
                c->firsts += ch.first;
                c->messages += ch.last;
                c->binary = ch.binary;
                break;
            case WSF_PING:
            case WSF_PONG:
            case WSF_CLOSE:
                c->pings += ch.kind == WSF_PING;
                c->pongs += ch.kind == WSF_PONG;
                c->closes += ch.kind == WSF_CLOSE;
                memcpy(c->ctl, ch.data, ch.len);
                c->ctl_len = ch.len;
                break;
            }
        }
        if (rc < 0) {
            c->error = rc;
            return;
        }
        ASSERT_EQ(left, 0);
        off += piece;
    }
}

static void feed(const uint8_t *in, size_t n, size_t step, collected_t *c)
{
    feed_as(in, n, step, false, c);
}

TEST(wsrx_rfc6455_examples_at_every_split)
{
    /* RFC 6455 5.7: unmasked "Hello"; "Hel" + "lo" fragmented; an unmasked ping "Hello". */
    static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    collected_t *c = calloc(1, sizeof(*c));
    for (size_t step = 1; step <= sizeof(frag); step++) {
        feed(hello, sizeof(hello), step, c);
        ASSERT_EQ(c->error, 0);
        ASSERT_EQ(c->messages, 1);
        ASSERT_EQ(c->firsts, 1);
        ASSERT_EQ(c->len, 5);
        ASSERT(memcmp(c->data, "Hello", 5) == 0);
        ASSERT(!c->binary);
        feed(frag, sizeof(frag), step, c);
        ASSERT_EQ(c->error, 0);
        ASSERT_EQ(c->messages, 1);
        ASSERT_EQ(c->firsts, 1);
        ASSERT(c->len == 5 && memcmp(c->data, "Hello", 5) == 0);
        feed(ping, sizeof(ping), step, c);
        ASSERT_EQ(c->pings, 1);
        ASSERT(c->ctl_len == 5 && memcmp(c->ctl, "Hello", 5) == 0);
    }
    free(c);
}

TEST(wsrx_lengths_and_control_inside_a_message)
{
    /* A 256-byte binary frame (16-bit length), a 65536-byte one (64-bit), and a text message in
     * two fragments with a ping and a pong between them; every split size up to 300. */
    size_t n = 0;
    static uint8_t in[4 + 256 + 10 + 65536 + 64];
    in[n++] = 0x82;
    in[n++] = 126;
    in[n++] = 0x01;
    in[n++] = 0x00;
    for (int i = 0; i < 256; i++)
        in[n++] = (uint8_t)i;
    in[n++] = 0x82;
    in[n++] = 127;
    static const uint8_t len64[8] = {0, 0, 0, 0, 0, 1, 0, 0};
    memcpy(in + n, len64, 8);
    n += 8;
    for (int i = 0; i < 65536; i++)
        in[n++] = (uint8_t)(i * 7);
    static const uint8_t tail[] = {0x01, 0x02, 'a',  'b', 0x89, 0x00, 0x8a, 0x01,
                                   'x',  0x80, 0x01, 'c', 0x88, 0x02, 0x03, 0xe8};
    memcpy(in + n, tail, sizeof(tail));
    n += sizeof(tail);
    collected_t *c = calloc(1, sizeof(*c));
    for (size_t step = 1; step <= 300; step += 13) {
        feed(in, n, step, c);
        ASSERT_EQ(c->error, 0);
        ASSERT_EQ(c->messages, 3);
        ASSERT_EQ(c->firsts, 3);
        ASSERT_EQ(c->len, 256 + 65536 + 3);
        ASSERT_EQ(c->data[255], 255);
        ASSERT_EQ(c->data[256 + 65535], (uint8_t)(65535 * 7));
        ASSERT(memcmp(c->data + 256 + 65536, "abc", 3) == 0);
        ASSERT_EQ(c->pings, 1);
        ASSERT_EQ(c->pongs, 1);
        ASSERT_EQ(c->closes, 1);
        ASSERT(c->ctl_len == 2 && c->ctl[0] == 0x03 && c->ctl[1] == 0xe8); /* close 1000 */
    }
    free(c);
}

TEST(wsrx_empty_messages)
{
    static const uint8_t in[] = {0x81, 0x00, 0x02, 0x00, 0x80, 0x00};
    collected_t *c = calloc(1, sizeof(*c));
    feed(in, sizeof(in), 1, c);
    ASSERT_EQ(c->error, 0);
    ASSERT_EQ(c->messages, 2);
    ASSERT_EQ(c->firsts, 2);
    ASSERT_EQ(c->len, 0);
    free(c);
}

TEST(wsrx_protocol_errors)
{
    static const struct {
        uint8_t bytes[12];
        size_t len;
    } bad[] = {
        {{0xc1, 0x00}, 2},                             /* RSV1 */
        {{0x83, 0x00}, 2},                             /* reserved opcode 3 */
        {{0x8b, 0x00}, 2},                             /* reserved opcode 0xb */
        {{0x81, 0x81, 1, 2, 3, 4, 'x'}, 7},            /* masked by the server */
        {{0x09, 0x00}, 2},                             /* fragmented ping */
        {{0x89, 0x7e, 0x00, 0x7e}, 4},                 /* 126-byte ping */
        {{0x80, 0x00}, 2},                             /* continuation, no message */
        {{0x01, 0x00, 0x81, 0x00}, 4},                 /* new message inside one */
        {{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10}, /* 64-bit length, top bit */
    };
    collected_t *c = calloc(1, sizeof(*c));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        feed(bad[i].bytes, bad[i].len, 1, c);
        if (c->error != -WSF_CLOSE_PROTOCOL_ERROR)
            TEST_FAIL_("case %zu: error %d", i, c->error);
    }
    free(c);
}

TEST(wshs_accept_and_response_parsing)
{
    /* RFC 6455 1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" is answered "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
     */
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\n"
                     "upgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "X-Request-Id: req_123\r\n"
                     "\r\n\x81\x00";
    size_t n = (size_t)(strstr(ok, "\r\n\r\n") + 4 - ok); /* the head, without the frame */
    wshs_response_t r;
    for (size_t cut = 0; cut < n; cut++)
        ASSERT_EQ(wshs_parse_response(ok, cut, key, &r), 0);    /* incomplete head */
    ASSERT_EQ(wshs_parse_response(ok, n + 2, key, &r), (int)n); /* frames follow the head */
    ASSERT_EQ(r.status, 101);
    ASSERT(r.upgraded);
    ASSERT_STR_EQ(r.request_id, "req_123");

    char bad_accept[512];
    snprintf(bad_accept, sizeof(bad_accept), "%s", ok);
    memcpy(strstr(bad_accept, "s3pP"), "x3pP", 4);
    ASSERT_GT(wshs_parse_response(bad_accept, strlen(bad_accept), key, &r), 0);
    ASSERT(!r.upgraded);

    const char *ext = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                      "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    ASSERT_GT(wshs_parse_response(ext, strlen(ext), key, &r), 0);
    ASSERT(!r.upgraded); /* an extension we never offered */

    const char *denied = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    ASSERT_GT(wshs_parse_response(denied, strlen(denied), key, &r), 0);
    ASSERT_EQ(r.status, 401);
    ASSERT(!r.upgraded);

    ASSERT_EQ(wshs_parse_response("SSH-2.0-x\r\n\r\n", 13, key, &r), -EINVAL);
    static char big[WSHS_RESPONSE_MAX + 10];
    memset(big, 'a', sizeof(big));
    ASSERT_EQ(wshs_parse_response(big, sizeof(big), key, &r), -EMSGSIZE);
}

TEST(wshs_request_format)
{
    char buf[1024], key[WSHS_KEY_CHARS + 1];
    wshs_new_key(key);
    ASSERT_EQ(strlen(key), WSHS_KEY_CHARS);
    int n = wshs_request(buf, sizeof(buf), "api.example.com", "/v1/realtime?model=m", "sk-1", key);
    ASSERT_GT(n, 0);
    ASSERT(strncmp(buf, "GET /v1/realtime?model=m HTTP/1.1\r\n", 35) == 0);
    ASSERT(strstr(buf, "\r\nHost: api.example.com\r\n"));
    ASSERT(strstr(buf, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
    ASSERT(strstr(buf, "\r\nSec-WebSocket-Version: 13\r\n"));
    ASSERT(strstr(buf, "\r\nAuthorization: Bearer sk-1\r\n"));
    ASSERT(strstr(buf, key));
    ASSERT(strcmp(buf + n - 4, "\r\n\r\n") == 0);
    ASSERT_EQ(wshs_request(buf, sizeof(buf), "h", "/", "evil\r\nX: 1", key), -EINVAL);
    ASSERT_EQ(wshs_request(buf, 20, "h", "/", NULL, key), -ENOSPC);
    n = wshs_request(buf, sizeof(buf), "h", "/", NULL, key);
    ASSERT(n > 0 && strstr(buf, "Authorization") == NULL);
}

TEST(wsrx_server_unmasks_client_frames_at_every_split)
{
    /* RFC 6455 5.7: a masked "Hello", then a masked ping "Hi" and a fragmented masked text. */
    static const uint8_t in[] = {0x81,    0x85, 0x37, 0xfa, 0x21, 0x3d,    0x7f,   0x9f,    0x4d,
                                 0x51,    0x58, 0x89, 0x82, 0x01, 0x02,    0x03,   0x04,    'H' ^ 1,
                                 'i' ^ 2, 0x01, 0x81, 9,    9,    9,       9,      'a' ^ 9, 0x80,
                                 0x82,    1,    1,    1,    1,    'b' ^ 1, 'c' ^ 1};
    collected_t *c = calloc(1, sizeof(*c));
    for (size_t step = 1; step <= sizeof(in); step++) {
        feed_as(in, sizeof(in), step, true, c);
        ASSERT_EQ(c->error, 0);
        ASSERT_EQ(c->len, 8);
        ASSERT(memcmp(c->data, "Helloabc", 8) == 0);
        ASSERT_EQ(c->messages, 2);
        ASSERT_EQ(c->pings, 1);
        ASSERT_EQ(c->ctl_len, 2);
        ASSERT(memcmp(c->ctl, "Hi", 2) == 0);
    }
    free(c);
}

TEST(wsrx_server_refuses_unmasked_client_frames)
{
    static const uint8_t text[] = {0x81, 0x02, 'h', 'i'};
    static const uint8_t ping[] = {0x89, 0x00};
    collected_t *c = calloc(1, sizeof(*c));
    feed_as(text, sizeof(text), 1, true, c);
    ASSERT_EQ(c->error, -WSF_CLOSE_PROTOCOL_ERROR);
    ASSERT_EQ(c->len, 0);
    feed_as(ping, sizeof(ping), 2, true, c);
    ASSERT_EQ(c->error, -WSF_CLOSE_PROTOCOL_ERROR);
    free(c);
}

TEST(wshs_accept_checks_the_key)
{
    char out[WSHS_ACCEPT_CHARS + 1];
    ASSERT(wshs_accept("dGhlIHNhbXBsZSBub25jZQ==", out)); /* RFC 6455 1.3 */
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ASSERT(!wshs_accept(NULL, out));
    ASSERT(!wshs_accept("", out));
    ASSERT(!wshs_accept("dGhlIHNhbXBsZSBub25jZQ=", out));  /* 23 characters */
    ASSERT(!wshs_accept("dGhlIHNhbXBsZSBub25jZQ=x", out)); /* no "==" */
    ASSERT(!wshs_accept("dGhlIHNhbXBsZSBub25j*Q==", out)); /* not base64 */
    ASSERT(!wshs_accept("dGhlIHNhbXBsZSBub25jZR==", out)); /* stray low bits */
}
