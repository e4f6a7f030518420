/*
 * b64: standard base64 (RFC 4648 section 4, "+/" alphabet, '=' padding, no line breaks) for the
 * audio path, on OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock: about 1 µs for a 20 ms frame of
 * 24 kHz PCM16 (960 bytes <-> 1,280 characters). It is not constant-time; use libsodium for
 * secrets.
 *
 * Thread: any. The functions are stateless and touch only the buffers they are given.
 */
#ifndef SB_AUDIO_B64_H
#define SB_AUDIO_B64_H

#include <stddef.h>
#include <sys/types.h>

/* Length of the encoding of n bytes, without a terminator: 4 * ceil(n / 3). */
size_t b64_encoded_len(size_t n);

/*
 * Encodes the n bytes at src into dst, which must hold b64_encoded_len(n) + 1 bytes, and
 * terminates it with a NUL. Returns the length written, without the NUL. src and dst must not
 * overlap.
 */
size_t b64_encode(const void *src, size_t n, char *dst);

/*
 * Room dst needs to decode n characters: 3 * ceil(n / 4). This is also what is written, since
 * padding decodes to zero bytes past the returned length.
 */
size_t b64_decoded_max(size_t n);

/*
 * Decodes the n characters at src (no terminator needed) into dst, which must hold
 * b64_decoded_max(n) bytes. The input must be canonical in shape: a length that is a multiple
 * of 4, only alphabet characters, and '=' only as one or two final padding characters;
 * whitespace and line breaks are rejected. Returns the number of decoded bytes, or -EINVAL for
 * input that is not valid (dst may then have been written). src and dst must not overlap.
 */
ssize_t b64_decode(const char *src, size_t n, void *dst);

#endif
