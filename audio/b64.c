/*
 * Base64 on OpenSSL's block functions; see b64.h.
 *
 * EVP_DecodeBlock alone is too lenient for us: it skips leading and trailing whitespace and
 * decodes '=' anywhere as a zero sextet. So the input is checked here first, with a table, and
 * only well-formed input reaches OpenSSL. EVP_DecodeBlock then returns 3 bytes per quad including
 * the zero bytes the padding stands for, and we subtract one per trailing '='.
 * The EVP functions take int lengths, so long inputs go through in chunks.
 */
#include "audio/b64.h"

#include <errno.h>
#include <stdint.h>
#include <openssl/evp.h>

#define B64_QUAD_CHARS  4
#define B64_GROUP_BYTES 3
/* Chunk sizes for the int-length EVP calls: whole groups and quads, far below INT_MAX. */
#define B64_ENC_CHUNK_BYTES ((size_t)B64_GROUP_BYTES << 24)
#define B64_DEC_CHUNK_CHARS ((size_t)B64_QUAD_CHARS << 24)

/* 1 for the 64 characters of the RFC 4648 alphabet; '=' is handled apart. */
static const uint8_t b64_alphabet[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, /* 0x20: '+' '/' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30: digits */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40: A-O */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, /* 0x50: P-Z */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60: a-o */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, /* 0x70: p-z */
    /* 0x80 to 0xff: zero */
};

size_t b64_encoded_len(size_t n)
{
    return (n + B64_GROUP_BYTES - 1) / B64_GROUP_BYTES * B64_QUAD_CHARS;
}

size_t b64_decoded_max(size_t n)
{
    return (n + B64_QUAD_CHARS - 1) / B64_QUAD_CHARS * B64_GROUP_BYTES;
}

size_t b64_encode(const void *src, size_t n, char *dst)
{
    const unsigned char *in = src;
    unsigned char *out = (unsigned char *)dst;
    size_t written = 0;
    dst[0] = '\0';
    for (size_t off = 0; off < n; off += B64_ENC_CHUNK_BYTES) {
        size_t len = n - off < B64_ENC_CHUNK_BYTES ? n - off : B64_ENC_CHUNK_BYTES;
        /* Writes 4 characters per started group and a NUL; never fails. */
        written += (size_t)EVP_EncodeBlock(out + written, in + off, (int)len);
    }
    return written;
}

ssize_t b64_decode(const char *src, size_t n, void *dst)
{
    if (n % B64_QUAD_CHARS != 0)
        return -EINVAL;
    if (n == 0)
        return 0;

    const unsigned char *in = (const unsigned char *)src;
    size_t pad = 0;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_alphabet[in[i]])
            return -EINVAL;

    unsigned char *out = dst;
    size_t got = 0;
    for (size_t off = 0; off < n; off += B64_DEC_CHUNK_CHARS) {
        size_t len = n - off < B64_DEC_CHUNK_CHARS ? n - off : B64_DEC_CHUNK_CHARS;
        int r = EVP_DecodeBlock(out + got, in + off, (int)len);
        if (r < 0)
            return -EINVAL; /* not expected after the check above */
        got += (size_t)r;
    }
    return (ssize_t)(got - pad);
}
