/*
 * An incremental text/event-stream parser for MCP's Streamable HTTP (mcp_int.h), following the
 * WHATWG rules: lines end in "\r\n", "\n" or "\r" (a "\r\n" may be split across chunks); `field:
 * value` with one optional space after the colon; `data` lines of an event are joined with '\n';
 * a blank line ends the event; lines starting with ':' are comments (keep-alives); `id` sets the
 * last event id even when the event has no data (priming events), and an id containing NUL is
 * ignored; `retry` is a whole number of milliseconds. Events without data are not dispatched.
 * Thread: owner.
 */
#include <stdlib.h>
#include <string.h>

#include "agents/mcp/mcp_int.h"
#include "base/util.h"

void mcpsse_init(mcpsse_t *p)
{
    memset(p, 0, sizeof(*p));
    sbuf_init(&p->line);
    sbuf_init(&p->data);
    p->retry_ms = -1;
}

void mcpsse_destroy(mcpsse_t *p)
{
    sbuf_destroy(&p->line);
    sbuf_destroy(&p->data);
}

static void mcpsse_dispatch(mcpsse_t *p, mcpsse_event_fn fn, void *arg)
{
    if (p->has_data && p->data.len > 0 && fn) /* an empty data buffer dispatches nothing */
        fn(arg, p->event[0] ? p->event : "message", p->data.data ? p->data.data : "", p->data.len);
    sbuf_reset(&p->data);
    p->has_data = false;
    p->event[0] = '\0';
}

static void mcpsse_field(mcpsse_t *p, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen > 0 && *v == ' ') {
        v++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        if (p->has_data)
            sbuf_putc(&p->data, '\n');
        sbuf_append(&p->data, v, vlen);
        p->has_data = true;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = vlen < sizeof(p->event) - 1 ? vlen : sizeof(p->event) - 1;
        memcpy(p->event, v, n);
        p->event[n] = '\0';
    } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
        if (memchr(v, '\0', vlen) == NULL && vlen < sizeof(p->last_id)) {
            memcpy(p->last_id, v, vlen);
            p->last_id[vlen] = '\0';
        }
    } else if (nlen == 5 && memcmp(line, "retry", 5) == 0) {
        int64_t ms = 0;
        size_t i = 0;
        for (; i < vlen && v[i] >= '0' && v[i] <= '9' && ms < INT32_MAX; i++)
            ms = ms * 10 + (v[i] - '0');
        if (i == vlen && vlen > 0)
            p->retry_ms = ms;
    }
}

static void mcpsse_line(mcpsse_t *p, mcpsse_event_fn fn, void *arg)
{
    const char *line = p->line.data ? p->line.data : "";
    size_t len = p->line.len;
    if (len == 0)
        mcpsse_dispatch(p, fn, arg);
    else if (line[0] != ':')
        mcpsse_field(p, line, len);
    sbuf_reset(&p->line);
}

void mcpsse_feed(mcpsse_t *p, const char *s, size_t n, mcpsse_event_fn fn, void *arg)
{
    size_t i = 0;
    if (p->cr && n > 0 && s[0] == '\n')
        i = 1; /* the second half of a "\r\n" */
    p->cr = false;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        sbuf_append(&p->line, s + i, j - i);
        if (j == n)
            break;
        if (s[j] == '\r') {
            if (j + 1 < n && s[j + 1] == '\n')
                j++;
            else if (j + 1 == n)
                p->cr = true;
        }
        mcpsse_line(p, fn, arg);
        i = j + 1;
    }
}
