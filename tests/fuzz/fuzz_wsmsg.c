/*
 * libFuzzer target: the WebSocket message reassembler (net/wsmsg.h) against a model that keeps
 * the message so far in a flat buffer. The first byte picks the size limit and where the chunks
 * come from:
 *
 *   bit 0 clear  the client side (net/wsc.c): the rest is what a server sends, parsed by
 *                wsf_rx_next() in pieces of 1..16 bytes, so one frame arrives as several chunks;
 *   bit 0 set    the server side (net/ws.c): the rest is a list of chunks as lws hands them over,
 *                each a flags byte (first, final, binary, length), a frame_left byte and the
 *                payload; an empty chunk has a NULL data pointer, as lws may pass.
 *
 * Empty messages, empty first fragments, continuations without a start and sizes either side of
 * the limit all come up. Every verdict, length and byte must match the model; a whole message
 * must come back where it lay; an empty one as a non-NULL pointer (it goes on to memcmp, which
 * UBSan checks for NULL, as the callers' parsers and memcpy would be).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wsframe.h"
#include "net/wsmsg.h"

#define FUZZ_WSMSG_INPUT_MAX 16384 /* -max_len of make fuzz; longer inputs are cut */

typedef struct model {
    uint8_t buf[FUZZ_WSMSG_INPUT_MAX];
    size_t len;
    bool binary;
} model_t;

/* The size limit: small ones to meet often, powers of two up to 4 MiB for the buffer's growth. */
static size_t limit_of(uint8_t b)
{
    return (b & 0x80) ? (size_t)1 << ((b & 0x7f) % 23) : (size_t)(b & 0x7f);
}

static void add(wsmsg_t *m, model_t *ref, const wsf_chunk_t *ch, size_t max)
{
    if (ch->first) {
        ref->len = 0;
        ref->binary = ch->binary;
    }
    int want;
    if ((uint64_t)ref->len + ch->len + ch->frame_left > max)
        want = WSMSG_TOO_BIG;
    else
        want = ch->last ? WSMSG_DONE : WSMSG_MORE;
    bool whole = ch->first && ch->last;
    if (want != WSMSG_TOO_BIG && !whole && ch->len > 0) {
        if (ref->len + ch->len > sizeof(ref->buf))
            abort(); /* the input bounds the payload */
        memcpy(ref->buf + ref->len, ch->data, ch->len);
        ref->len += ch->len;
    }

    const uint8_t *msg = NULL;
    size_t n = SIZE_MAX;
    int rc = wsmsg_add(m, ch, max, &msg, &n);
    if (rc != want)
        abort();
    if (ch->first && m->binary != ch->binary)
        abort();
    if (rc == WSMSG_DONE) {
        if (msg == NULL)
            abort();
        if (whole) {
            if (n != ch->len || (ch->len > 0 && msg != ch->data) ||
                memcmp(msg, ch->data ? ch->data : msg, n) != 0)
                abort(); /* a whole message is handed back in place */
        } else if (n != ref->len || memcmp(msg, ref->buf, n) != 0) {
            abort();
        }
    }
    if (rc != WSMSG_MORE)
        ref->len = 0;
    if (m->len > max || (m->len > 0 && m->len > m->cap))
        abort();
}

/* The client side: frames from a server, in pieces of step bytes. */
static void from_frames(wsmsg_t *m, model_t *ref, const uint8_t *in, size_t n, size_t step,
                        size_t max)
{
    wsf_rx_t r;
    memset(&r, 0, sizeof(r));
    for (size_t off = 0; off < n;) {
        size_t piece = n - off < step ? n - off : step;
        const uint8_t *p = in + off;
        size_t left = piece;
        wsf_chunk_t ch;
        int rc;
        while ((rc = wsf_rx_next(&r, &p, &left, &ch)) == 1)
            if (ch.kind == WSF_DATA)
                add(m, ref, &ch, max);
        if (rc < 0)
            return;
        off += piece;
    }
}

/* The server side: chunks as lws delivers them (see the comment at the top). */
static void from_chunks(wsmsg_t *m, model_t *ref, const uint8_t *in, size_t n, size_t max)
{
    size_t i = 0;
    while (i + 2 <= n) {
        uint8_t flags = in[i], fl = in[i + 1];
        i += 2;
        size_t len = flags >> 3;
        if (len > n - i)
            len = n - i;
        /* frame_left: small counts, or a power of two up to 2^62 (wsframe.h bounds it by 2^63) */
        uint64_t frame_left = fl < 0xc0 ? fl : (uint64_t)1 << ((fl & 0x3f) % 63);
        wsf_chunk_t ch = {.kind = WSF_DATA,
                          .data = len > 0 ? in + i : NULL,
                          .len = len,
                          .binary = flags & 4,
                          .first = flags & 1,
                          .last = (flags & 2) && frame_left == 0, /* as net/ws.c derives it */
                          .frame_left = frame_left};
        add(m, ref, &ch, max);
        i += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static model_t ref;
    if (size < 2)
        return 0;
    if (size > FUZZ_WSMSG_INPUT_MAX)
        size = FUZZ_WSMSG_INPUT_MAX;
    size_t max = limit_of(data[1]);
    wsmsg_t m = {0};
    ref.len = 0;
    ref.binary = false;
    if (data[0] & 1)
        from_chunks(&m, &ref, data + 2, size - 2, max);
    else
        from_frames(&m, &ref, data + 2, size - 2, (size_t)(data[0] >> 1) % 16 + 1, max);
    wsmsg_destroy(&m);
    return 0;
}
