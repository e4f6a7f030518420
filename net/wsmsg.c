/* The WebSocket message reassembler (wsmsg.h). */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/wsmsg.h"

/* What an empty message points at: never NULL, so callers may hand it to memcpy and parsers. */
static const uint8_t wsmsg_empty[1];

int wsmsg_add(wsmsg_t *m, const wsf_chunk_t *ch, size_t max, const uint8_t **msg, size_t *msg_len)
{
    if (ch->first) {
        m->len = 0;
        m->binary = ch->binary;
    }
    /* No overflow: m->len <= max, ch->len is what was read, and frame_left < 2^63 (wsframe.h). */
    if ((uint64_t)m->len + ch->len + ch->frame_left > max) {
        m->len = 0;
        return WSMSG_TOO_BIG;
    }
    if (ch->first && ch->last) {
        *msg = ch->len > 0 ? ch->data : wsmsg_empty;
        *msg_len = ch->len;
        return WSMSG_DONE;
    }
    if (ch->len > 0) {
        size_t need = m->len + ch->len;
        if (need > m->cap) {
            /* Room for the rest of this frame too, so a frame in pieces grows the buffer once. */
            size_t want = need + (size_t)ch->frame_left;
            size_t cap = m->cap ? m->cap : WSMSG_MIN_BYTES;
            while (cap < want)
                cap *= 2;
            if (cap > max)
                cap = max; /* want <= max (checked above): the buffer never outgrows the limit */
            m->buf = xrealloc(m->buf, cap);
            m->cap = cap;
        }
        memcpy(m->buf + m->len, ch->data, ch->len);
        m->len = need;
    }
    if (!ch->last)
        return WSMSG_MORE;
    *msg = m->len > 0 ? m->buf : wsmsg_empty;
    *msg_len = m->len;
    m->len = 0;
    return WSMSG_DONE;
}

void wsmsg_destroy(wsmsg_t *m)
{
    free(m->buf);
    m->buf = NULL;
    m->len = m->cap = 0;
}
