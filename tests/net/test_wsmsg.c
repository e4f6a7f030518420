/* Tests of the message reassembler (net/wsmsg.h): whole messages in place, fragments, chunks of
 * one frame, empty messages and empty first fragments, and the size limit. */
#include <string.h>

#include "net/wsmsg.h"
#include "tests/runner.h"

#define MSG_MAX_BYTES 100

static wsf_chunk_t chunk(const void *p, size_t len, bool first, bool last, uint64_t frame_left)
{
    wsf_chunk_t ch = {WSF_DATA, p, len, false, first, last, frame_left};
    return ch;
}

TEST(wsmsg_whole_message_is_handed_back_in_place)
{
    wsmsg_t m = {0};
    const uint8_t *msg = NULL;
    size_t n = 0;
    static const char text[] = "{\"type\":\"x\"}";
    wsf_chunk_t ch = chunk(text, strlen(text), true, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &ch, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT(msg == (const uint8_t *)text);
    ASSERT_EQ(n, strlen(text));
    ASSERT(m.buf == NULL); /* nothing allocated */
    wsmsg_destroy(&m);
}

TEST(wsmsg_fragments_and_pieces_are_joined)
{
    wsmsg_t m = {0};
    const uint8_t *msg = NULL;
    size_t n = 0;
    wsf_chunk_t a = chunk("abc", 3, true, false, 2); /* a frame in pieces: 2 bytes to come */
    wsf_chunk_t b = chunk("de", 2, false, false, 0);
    wsf_chunk_t c = chunk("f", 1, false, true, 0);
    a.binary = true;
    ASSERT_EQ(wsmsg_add(&m, &a, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    ASSERT_EQ(wsmsg_add(&m, &b, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    ASSERT_EQ(wsmsg_add(&m, &c, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT_EQ(n, 6);
    ASSERT(memcmp(msg, "abcdef", 6) == 0);
    ASSERT(m.binary);
    /* The next message starts afresh and reuses the buffer. */
    uint8_t *buf = m.buf;
    wsf_chunk_t d = chunk("gh", 2, true, false, 0);
    wsf_chunk_t e = chunk("i", 1, false, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &d, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    ASSERT_EQ(wsmsg_add(&m, &e, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT_EQ(n, 3);
    ASSERT(memcmp(msg, "ghi", 3) == 0);
    ASSERT(!m.binary);
    ASSERT(m.buf == buf);
    wsmsg_destroy(&m);
}

/* The bug this catches: an empty first frame copied 0 bytes to a NULL buffer (UB, UBSan). */
TEST(wsmsg_empty_messages_and_empty_first_fragments)
{
    wsmsg_t m = {0};
    const uint8_t *msg = NULL;
    size_t n = 1;
    wsf_chunk_t empty = chunk(NULL, 0, true, true, 0); /* lws may pass NULL for no payload */
    ASSERT_EQ(wsmsg_add(&m, &empty, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT(msg != NULL);
    ASSERT_EQ(n, 0);

    wsf_chunk_t first = chunk(NULL, 0, true, false, 0);
    wsf_chunk_t mid = chunk(NULL, 0, false, false, 0);
    wsf_chunk_t last = chunk(NULL, 0, false, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &first, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    ASSERT_EQ(wsmsg_add(&m, &mid, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    n = 1;
    ASSERT_EQ(wsmsg_add(&m, &last, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT(msg != NULL);
    ASSERT_EQ(n, 0);
    ASSERT(m.buf == NULL);

    wsf_chunk_t data = chunk("xy", 2, false, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &first, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    ASSERT_EQ(wsmsg_add(&m, &data, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT_EQ(n, 2);
    ASSERT(memcmp(msg, "xy", 2) == 0);
    wsmsg_destroy(&m);
}

TEST(wsmsg_too_big_is_refused_before_copying)
{
    wsmsg_t m = {0};
    const uint8_t *msg = NULL;
    size_t n = 0;
    uint8_t big[MSG_MAX_BYTES + 1];
    memset(big, 'a', sizeof(big));
    /* Refused on the first chunk, by what the frame announces. */
    wsf_chunk_t a = chunk(big, 10, true, false, MSG_MAX_BYTES);
    ASSERT_EQ(wsmsg_add(&m, &a, MSG_MAX_BYTES, &msg, &n), WSMSG_TOO_BIG);
    ASSERT(m.buf == NULL);
    /* Exactly the limit passes; one more byte over fragments does not. */
    wsf_chunk_t whole = chunk(big, MSG_MAX_BYTES, true, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &whole, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT_EQ(n, MSG_MAX_BYTES);
    wsf_chunk_t f1 = chunk(big, MSG_MAX_BYTES, true, false, 0);
    wsf_chunk_t f2 = chunk(big, 1, false, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &f1, MSG_MAX_BYTES, &msg, &n), WSMSG_MORE);
    ASSERT_EQ(wsmsg_add(&m, &f2, MSG_MAX_BYTES, &msg, &n), WSMSG_TOO_BIG);
    /* And the connection's next message is unaffected. */
    wsf_chunk_t ok = chunk("z", 1, true, true, 0);
    ASSERT_EQ(wsmsg_add(&m, &ok, MSG_MAX_BYTES, &msg, &n), WSMSG_DONE);
    ASSERT_EQ(n, 1);
    wsmsg_destroy(&m);
}
