/*
 * libFuzzer target: the text/event-stream parser of MCP's Streamable HTTP (agents/mcp/mcpsse.c)
 * on what a server sends, against a reference that reads the whole stream at once by the
 * WHATWG rules. The first byte is the size of the pieces the stream is fed in (1..32, or all at
 * once), so "\r\n" and every line get split everywhere. The dispatched events (type and data),
 * the last event id and the retry time must be the reference's; every event's data must be
 * NUL-terminated at its length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/mcp/mcp_int.h"

#define FUZZ_SSE_EVENT_MAX  64        /* mcpsse_t's event field */
#define FUZZ_SSE_RETRY_SURE INT32_MAX /* above it the parser may refuse a retry: not compared */

/* A running digest of the events seen, in order. */
typedef struct events {
    uint64_t hash;
    size_t count;
} events_t;

static void digest(events_t *e, const char *type, const char *data, size_t len)
{
    e->hash = (e->hash ^ e->count) * 1099511628211ULL;
    for (const char *c = type; *c; c++)
        e->hash = (e->hash ^ (uint8_t)*c) * 1099511628211ULL;
    e->hash = (e->hash ^ 0x100) * 1099511628211ULL;
    for (size_t i = 0; i < len; i++)
        e->hash = (e->hash ^ (uint8_t)data[i]) * 1099511628211ULL;
    e->count++;
}

static void on_event(void *arg, const char *event, const char *data, size_t len)
{
    if (len == 0 || data[len] != '\0' || event == NULL || event[0] == '\0')
        abort();
    digest(arg, event, data, len);
}

typedef struct ref {
    events_t ev;
    char *data;
    size_t data_len;
    bool has_data;
    char event[FUZZ_SSE_EVENT_MAX];
    char last_id[MCPSSE_ID_MAX];
    int64_t retry_ms; /* -1 none, -2 not known (a value the parser may take or refuse) */
} ref_t;

static void ref_field(ref_t *r, const char *line, size_t len)
{
    if (len == 0) {
        if (r->has_data && r->data_len > 0)
            digest(&r->ev, r->event[0] ? r->event : "message", r->data, r->data_len);
        r->data_len = 0;
        r->has_data = false;
        r->event[0] = '\0';
        return;
    }
    if (line[0] == ':')
        return; /* a comment */
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        if (r->has_data)
            r->data[r->data_len++] = '\n';
        memcpy(r->data + r->data_len, v, vlen);
        r->data_len += vlen;
        r->has_data = true;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = vlen < FUZZ_SSE_EVENT_MAX - 1 ? vlen : FUZZ_SSE_EVENT_MAX - 1;
        memcpy(r->event, v, n);
        r->event[n] = '\0'; /* a NUL inside cuts the type short, as for the parser */
    } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
        if (memchr(v, '\0', vlen) == NULL && vlen < MCPSSE_ID_MAX) {
            memcpy(r->last_id, v, vlen);
            r->last_id[vlen] = '\0';
        }
    } else if (nlen == 5 && memcmp(line, "retry", 5) == 0) {
        uint64_t ms = 0;
        size_t i = 0;
        for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
            ms = ms > FUZZ_SSE_RETRY_SURE ? ms : ms * 10 + (uint64_t)(v[i] - '0');
        if (i == vlen && vlen > 0)
            r->retry_ms = ms <= FUZZ_SSE_RETRY_SURE ? (int64_t)ms : -2;
    }
}

/* The whole stream: lines end in "\r\n", "\n" or "\r"; an unended last line is not read. */
static void ref_run(ref_t *r, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        if (j == n)
            return;
        ref_field(r, s + i, j - i);
        i = j + (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n' ? 2 : 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 33 == 0 ? size : data[0] % 33;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;

    mcpsse_t p;
    mcpsse_init(&p);
    events_t got = {.hash = 1469598103934665603ULL};
    for (size_t off = 0; off < n; off += step)
        mcpsse_feed(&p, s + off, n - off < step ? n - off : step, on_event, &got);

    ref_t r = {.ev = {.hash = 1469598103934665603ULL}, .retry_ms = -1};
    r.data = malloc(n + 1);
    ref_run(&r, s, n);

    if (got.count != r.ev.count || got.hash != r.ev.hash || strcmp(p.last_id, r.last_id) != 0)
        abort();
    if (r.retry_ms != -2 && p.retry_ms != r.retry_ms)
        abort();
    free(r.data);
    mcpsse_destroy(&p);
    return 0;
}
