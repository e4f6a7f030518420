/*
 * libFuzzer target: jwtauth_verify() (agents/auth/jwtauth.c), which every /ws/chat and
 * /ws/agent connection runs on its token, with a fixed secret. The first byte picks the mode
 * and the size of the sub buffer:
 *
 *   bit 0 clear  the rest is the token itself; the seeds are tokens signed with FUZZ_JWT_SECRET,
 *                so mutations of good tokens reach the header and payload checks too;
 *   bit 0 set    the rest is a header and a payload (split at the first '\n'; no '\n': the
 *                payload under the HS256 header), which the target encodes and signs with the
 *                secret itself, so every mutation of the JSON gets past the signature.
 *
 * Beyond "no crash, no leak, no UB": a status in range; sub NUL-terminated within its buffer and
 * empty unless OK; never OK under another secret; OK earlier whenever OK now, expired later
 * whenever expired now.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/auth/jwtauth.h"

#define FUZZ_JWT_SECRET  "fuzz-secret-0123456789abcdef"
#define FUZZ_JWT_NOW_S   1700000000
#define FUZZ_JWT_HEADER  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define FUZZ_JWT_SHIFT_S 1000

/* Appends the base64url form (no padding) of n bytes at p to out; returns the new end. */
static char *b64url(char *out, const uint8_t *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *out++ = abc[v >> 18];
        *out++ = abc[(v >> 12) & 63];
        *out++ = abc[(v >> 6) & 63];
        *out++ = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *out++ = abc[v >> 18];
        *out++ = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *out++ = abc[v >> 18];
        *out++ = abc[(v >> 12) & 63];
        *out++ = abc[(v >> 6) & 63];
    }
    *out = '\0';
    return out;
}

/* header.payload.signature, HMAC-SHA256 with the secret whatever the header says. */
static char *sign(const uint8_t *hdr, size_t hl, const uint8_t *payload, size_t pl)
{
    char *tok = malloc((hl + pl) * 2 + 128); /* base64 is 4/3 of the bytes; the MAC is 43 */
    char *e = b64url(tok, hdr, hl);
    *e++ = '.';
    e = b64url(e, payload, pl);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    if (HMAC(EVP_sha256(), FUZZ_JWT_SECRET, (int)strlen(FUZZ_JWT_SECRET), (const uint8_t *)tok,
             (size_t)(e - tok), mac, &ml) == NULL)
        abort();
    *e++ = '.';
    b64url(e, mac, ml);
    return tok;
}

static jwtauth_status_t verify(const char *tok, const char *secret, int64_t now, char *sub,
                               size_t sub_len)
{
    memset(sub, 'x', sub_len);
    jwtauth_status_t st = jwtauth_verify(tok, secret, now, sub, sub_len);
    if (st > JWTAUTH_EXPIRED)
        abort();
    if (memchr(sub, '\0', sub_len) == NULL || (st != JWTAUTH_OK && sub[0] != '\0'))
        abort();
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    char *tok;
    if (mode & 1) {
        const uint8_t *nl = memchr(data, '\n', size);
        if (nl)
            tok = sign(data, (size_t)(nl - data), nl + 1, size - (size_t)(nl - data) - 1);
        else
            tok = sign((const uint8_t *)FUZZ_JWT_HEADER, strlen(FUZZ_JWT_HEADER), data, size);
    } else {
        tok = strndup((const char *)data, size);
    }
    /* sub buffers from 1 byte (truncated to "") to the size the callers use */
    size_t sub_len = (mode >> 1) % 8 == 0 ? JWTAUTH_SUB_MAX + 1 : (mode >> 1) % 8;
    char *sub = malloc(sub_len);

    jwtauth_status_t st = verify(tok, FUZZ_JWT_SECRET, FUZZ_JWT_NOW_S, sub, sub_len);
    if (st == JWTAUTH_OK) {
        if (verify(tok, FUZZ_JWT_SECRET "x", FUZZ_JWT_NOW_S, sub, sub_len) == JWTAUTH_OK)
            abort();
        if (verify(tok, FUZZ_JWT_SECRET, FUZZ_JWT_NOW_S - FUZZ_JWT_SHIFT_S, sub, sub_len) !=
            JWTAUTH_OK)
            abort();
    } else if (st == JWTAUTH_EXPIRED) {
        if (verify(tok, FUZZ_JWT_SECRET, FUZZ_JWT_NOW_S + FUZZ_JWT_SHIFT_S, sub, sub_len) !=
            JWTAUTH_EXPIRED)
            abort();
    }
    free(sub);
    free(tok);
    return 0;
}
