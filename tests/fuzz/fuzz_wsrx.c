/*
 * libFuzzer target: what an upstream server sends before and after the upgrade, and what a
 * client sends to our server connections. The input goes to wshs_parse_response() (the response
 * head) and wshs_accept(), and through the frame parser (wsf_rx_next) twice: whole, and in
 * pieces of a size taken from the first byte, as a client (server frames) or, when the first
 * byte is odd, as a server (masked client frames, unmasked in place in a copy). Both runs must
 * give the same chunks' bytes, the same control frames and the same verdict, whatever the split.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wsframe.h"
#include "net/wshs.h"

typedef struct digest {
    uint64_t data_hash, data_len;
    unsigned messages, controls;
    int rc;
} digest_t;

static void run(const uint8_t *src, size_t n, size_t step, bool server, digest_t *d)
{
    wsf_rx_t r;
    memset(&r, 0, sizeof(r));
    r.server = server;
    uint8_t *in = malloc(n ? n : 1); /* the server side unmasks where the bytes lie */
    memcpy(in, src, n);
    memset(d, 0, sizeof(*d));
    d->data_hash = 1469598103934665603ULL;
    for (size_t off = 0; off < n;) {
        size_t piece = n - off < step ? n - off : step;
        const uint8_t *p = in + off;
        size_t left = piece;
        wsf_chunk_t ch;
        int rc;
        while ((rc = wsf_rx_next(&r, &p, &left, &ch)) == 1) {
            if (ch.kind == WSF_DATA) {
                for (size_t i = 0; i < ch.len; i++)
                    d->data_hash = (d->data_hash ^ ch.data[i]) * 1099511628211ULL;
                d->data_len += ch.len;
                d->messages += ch.last;
            } else {
                if (ch.len > WSF_CONTROL_MAX)
                    abort();
                d->controls++;
            }
        }
        if (rc < 0) {
            d->rc = rc;
            break;
        }
        if (left != 0)
            abort(); /* 0 means the input is used up */
        off += piece;
    }
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    wshs_response_t resp;
    int hl = wshs_parse_response((const char *)data, size, "dGhlIHNhbXBsZSBub25jZQ==", &resp);
    if (hl > (int)size)
        abort();
    char key[32], accept[WSHS_ACCEPT_CHARS + 1];
    size_t kl = size - 1 < sizeof(key) - 1 ? size - 1 : sizeof(key) - 1;
    memcpy(key, data + 1, kl);
    key[kl] = '\0';
    if (wshs_accept(key, accept) && strlen(accept) != WSHS_ACCEPT_CHARS)
        abort();
    size_t step = (size_t)data[0] % 17 + 1;
    bool server = data[0] & 1;
    digest_t whole, split;
    run(data + 1, size - 1, size, server, &whole);
    run(data + 1, size - 1, step, server, &split);
    if (memcmp(&whole, &split, sizeof(whole)) != 0)
        abort();
    return 0;
}
