/*
 * pcm: framing helpers for 16-bit linear PCM, mono, little-endian on the wire (the Realtime
 * API's audio/pcm at 24 kHz, browser audio at 48 kHz): buffer sizes from durations and back,
 * byte order, and a frame's level for an energy VAD.
 *
 * Thread: any. The functions are stateless and touch only the buffers they are given.
 */
#ifndef SB_AUDIO_PCM_H
#define SB_AUDIO_PCM_H

#include <stddef.h>
#include <stdint.h>

#define PCM_BYTES_PER_SAMPLE 2
#define PCM_MS_PER_SEC       1000
/* The frame the relay works in: 960 bytes at 24 kHz. */
#define PCM_FRAME_MS 20
/*
 * What pcm_rms_dbfs() returns for empty input or digital silence, and the floor it clamps
 * quieter input to. 16-bit audio's own noise floor is near -96 dBFS, so no level a VAD must
 * tell apart lies below it.
 */
#define PCM_DBFS_SILENCE (-120.0)

/*
 * Bytes of PCM16 in ms milliseconds at rate Hz: whole samples only, so rate * ms / 1000 is
 * rounded down (20 ms at 24 kHz is 960 bytes; 1 ms at 22,050 Hz is 22 samples, 44 bytes).
 * Returns 0 for a rate or duration that is not positive.
 */
size_t pcm_bytes_for_ms(int rate, int ms);

/*
 * Milliseconds of audio in bytes of PCM16 at rate Hz, rounded down; a trailing odd byte is no
 * sample and does not count. Returns 0 for a rate that is not positive.
 */
uint64_t pcm_ms_for_bytes(int rate, size_t bytes);

/*
 * Reads n_bytes / 2 little-endian samples from in into out and returns that count; a trailing
 * odd byte is ignored. in need not be aligned. in and out must not overlap.
 */
size_t pcm_from_le(const uint8_t *in, size_t n_bytes, int16_t *out);

/*
 * Writes the n samples at in to out as 2 * n little-endian bytes and returns 2 * n. out need
 * not be aligned. in and out must not overlap.
 */
size_t pcm_to_le(const int16_t *in, size_t n, uint8_t *out);

/*
 * Level of the n samples at in: the RMS relative to full scale (32768), in dB. A full-scale
 * square wave reads 0 dBFS and a full-scale sine -3.01 dBFS. Returns PCM_DBFS_SILENCE for
 * n == 0, all-zero input, or anything quieter.
 */
double pcm_rms_dbfs(const int16_t *in, size_t n);

#endif
