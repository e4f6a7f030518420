/*
 * PCM16 helpers; see pcm.h.
 *
 * Byte order: on a little-endian host the wire format is the memory format and a memcpy does
 * the conversion; elsewhere samples are assembled byte by byte. PCM_HOST_LE comes from the
 * compiler's __BYTE_ORDER__; building with -DPCM_HOST_LE=0 forces the portable path, which is
 * how the tests exercise it on x86.
 */
#include "audio/pcm.h"

#include <math.h>
#include <string.h>

#ifndef PCM_HOST_LE
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&                                 \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PCM_HOST_LE 1
#else
#define PCM_HOST_LE 0
#endif
#endif

#define PCM_BITS_PER_BYTE 8
#define PCM_BYTE_MASK     0xFF
#define PCM_SAMPLE_CODES  0x10000 /* 2^16 bit patterns of a sample */
#define PCM_FULL_SCALE    32768.0 /* |INT16_MIN|: the reference of 0 dBFS */
#define PCM_POWER_DB      10.0    /* dB = 10 log10 of a power ratio */
/* Squares are summed exactly in 64 bits, folded into a double every this many samples: a block
 * sums to at most 2^30 * 2^30, far from overflow. */
#define PCM_RMS_BLOCK_SAMPLES ((size_t)1 << 30)

size_t pcm_bytes_for_ms(int rate, int ms)
{
    if (rate <= 0 || ms <= 0)
        return 0;
    uint64_t samples = (uint64_t)rate * (uint64_t)ms / PCM_MS_PER_SEC;
    return (size_t)(samples * PCM_BYTES_PER_SAMPLE);
}

uint64_t pcm_ms_for_bytes(int rate, size_t bytes)
{
    if (rate <= 0)
        return 0;
    uint64_t samples = bytes / PCM_BYTES_PER_SAMPLE;
    uint64_t r = (uint64_t)rate;
    /* samples * 1000 / rate, split so the product cannot overflow. */
    return samples / r * PCM_MS_PER_SEC + samples % r * PCM_MS_PER_SEC / r;
}

size_t pcm_from_le(const uint8_t *in, size_t n_bytes, int16_t *out)
{
    size_t n = n_bytes / PCM_BYTES_PER_SAMPLE;
#if PCM_HOST_LE
    if (n > 0)
        memcpy(out, in, n * PCM_BYTES_PER_SAMPLE);
#else
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = in + i * PCM_BYTES_PER_SAMPLE;
        uint16_t u = (uint16_t)(p[0] | (unsigned)p[1] << PCM_BITS_PER_BYTE);
        /* Two's complement back from the bit pattern, without an out-of-range conversion. */
        out[i] = (int16_t)(u > INT16_MAX ? (int32_t)u - PCM_SAMPLE_CODES : (int32_t)u);
    }
#endif
    return n;
}

size_t pcm_to_le(const int16_t *in, size_t n, uint8_t *out)
{
#if PCM_HOST_LE
    if (n > 0)
        memcpy(out, in, n * PCM_BYTES_PER_SAMPLE);
#else
    for (size_t i = 0; i < n; i++) {
        uint16_t u = (uint16_t)in[i]; /* modulo 2^16: well defined */
        out[i * PCM_BYTES_PER_SAMPLE] = (uint8_t)(u & PCM_BYTE_MASK);
        out[i * PCM_BYTES_PER_SAMPLE + 1] = (uint8_t)(u >> PCM_BITS_PER_BYTE);
    }
#endif
    return n * PCM_BYTES_PER_SAMPLE;
}

double pcm_rms_dbfs(const int16_t *in, size_t n)
{
    if (n == 0)
        return PCM_DBFS_SILENCE;
    double sum = 0.0;
    for (size_t start = 0; start < n; start += PCM_RMS_BLOCK_SAMPLES) {
        size_t end = n - start < PCM_RMS_BLOCK_SAMPLES ? n : start + PCM_RMS_BLOCK_SAMPLES;
        uint64_t block = 0;
        for (size_t i = start; i < end; i++)
            block += (uint64_t)((int32_t)in[i] * in[i]);
        sum += (double)block;
    }
    if (sum == 0.0)
        return PCM_DBFS_SILENCE;
    double db = PCM_POWER_DB * log10(sum / (double)n / (PCM_FULL_SCALE * PCM_FULL_SCALE));
    return db < PCM_DBFS_SILENCE ? PCM_DBFS_SILENCE : db;
}
