/*
 * ulaw: G.711 μ-law (ITU-T G.711, 1988), the 8 kHz, 8-bit telephony codec: Twilio Media Streams
 * and the Realtime API's audio/pcmu (g711_ulaw) carry it, 160 bytes per 20 ms frame. A byte
 * stores a sign, a 3-bit segment and a 4-bit step, all inverted; linear samples are 16-bit
 * PCM, of which μ-law keeps about 14 bits of range (±32124 after decoding).
 *
 * Encoding uses the usual bias-and-segment algorithm: clip the magnitude to 32635, add the bias
 * 0x84 (so every segment starts on a power of two), take the segment from the highest set bit
 * and the step from the four bits below it. Decoding reads a 256-entry constant table.
 * Two codes decode to 0: 0xFF (+0) and 0x7F (-0); 0 to 3 encode to 0xFF and -1 to -3 to 0x7F.
 *
 * Thread: any. The functions are stateless and touch only the buffers they are given.
 */
#ifndef SB_AUDIO_ULAW_H
#define SB_AUDIO_ULAW_H

#include <stddef.h>
#include <stdint.h>

#define ULAW_RATE_HZ 8000
/* Magnitude of the largest decoded sample: code 0x80 is +32124, 0x00 is -32124. */
#define ULAW_DECODED_MAX 32124

/* Encodes one 16-bit linear sample as a μ-law byte. Every input is valid; large ones clip. */
uint8_t ulaw_encode_sample(int16_t sample);

/* Decodes one μ-law byte to a 16-bit linear sample. Every byte is valid. */
int16_t ulaw_decode_sample(uint8_t code);

/*
 * Encodes the n samples at in into the n bytes at out. in and out must not overlap.
 */
void ulaw_encode(const int16_t *in, size_t n, uint8_t *out);

/*
 * Decodes the n bytes at in into the n samples at out. in and out must not overlap.
 */
void ulaw_decode(const uint8_t *in, size_t n, int16_t *out);

#endif
