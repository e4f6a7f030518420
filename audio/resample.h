/*
 * resample: mono PCM16 sample-rate conversion for one stream in one direction, on speexdsp's
 * resampler (browser 48 kHz <-> upstream 24 kHz, telephony 8 kHz <-> 24 kHz, and so on).
 *
 * A converter is streaming state: it keeps the tail of the previous frame for its filter, so use
 * one per stream and per direction and feed it the frames in order. The first output is aligned
 * with the first input (the filter's leading zeros are skipped), which means a stream's output
 * runs resample_latency_samples() behind the exact ratio: that much is still inside the filter.
 *
 * CONTRACT
 *   Thread: owner. A resample_t is not thread-safe; one thread uses it at a time. It lives in the
 *   actor that owns the stream and moves with it, with the happens-before the mailbox hand-off
 *   provides. Different converters are independent.
 *   Ownership: resample_new() returns a converter the caller frees with resample_free(). The
 *   sample buffers stay the caller's; the converter keeps no pointer to them.
 */
#ifndef SB_AUDIO_RESAMPLE_H
#define SB_AUDIO_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * speexdsp quality 5 (its "desktop" setting). Per 20 ms frame it costs 17.7 µs for 48k -> 24k
 * and 7.4 µs for 8k -> 24k (reference c-dependencies.md section 8; bench/bench_audio measures
 * about 12 µs for 48k <-> 24k), some 0.05 % of a core per stream and direction, so CPU is no
 * reason to go lower. The filter holds back at most 5 ms (120 output samples for 8k -> 24k, 40
 * for 48k -> 24k), against 16 ms at quality 10.
 */
#define RESAMPLE_QUALITY_DEFAULT 5
#define RESAMPLE_QUALITY_MIN     0
#define RESAMPLE_QUALITY_MAX     10

/*
 * Rates accepted by resample_new(). 8 kHz telephony is the lowest rate we meet and 192 kHz the
 * highest a sound card offers; the bounds also keep the filter length, which grows with the
 * downsampling ratio, small.
 */
#define RESAMPLE_RATE_MIN_HZ 4000
#define RESAMPLE_RATE_MAX_HZ 192000

typedef struct resample resample_t;

/*
 * Creates a converter from in_rate to out_rate (in Hz, each within RESAMPLE_RATE_MIN_HZ and
 * RESAMPLE_RATE_MAX_HZ) at quality RESAMPLE_QUALITY_MIN to RESAMPLE_QUALITY_MAX. Equal rates
 * give a pass-through converter that copies its input bit for bit. Returns NULL for a rate or
 * quality out of range, or when speexdsp refuses the conversion.
 * Thread: any (the new converter belongs to the caller).
 */
resample_t *resample_new(int in_rate, int out_rate, int quality);

/*
 * Frees a converter and its filter state. NULL is allowed.
 * Thread: owner.
 */
void resample_free(resample_t *r);

/*
 * Upper bound on the samples one resample_process() call writes for n_in input samples:
 * ceil(n_in * out_rate / in_rate) plus one sample of margin, or n_in for a pass-through.
 * Thread: any (reads only the rates, which never change).
 */
size_t resample_out_max(const resample_t *r, size_t n_in);

/*
 * Converts the n_in samples at in, continuing the stream from the previous call, and writes the
 * result to out, which holds out_cap samples. All of the input is consumed. out_cap must be at
 * least resample_out_max(r, n_in); were it smaller, output would stop at out_cap and the rest of
 * the input would be lost to the stream. Returns the number of samples written: in_rate to
 * out_rate times n_in within one sample once the stream is past its first
 * resample_latency_samples() of output, and fewer in the first call. in and out must not overlap.
 * Thread: owner.
 */
size_t resample_process(resample_t *r, const int16_t *in, size_t n_in, int16_t *out,
                        size_t out_cap);

/*
 * Starts a new stream: forgets the filter history so the next call behaves like the first call
 * on a new converter (a barge-in or a new response, where the old tail must not leak in).
 * Thread: owner.
 */
void resample_reset(resample_t *r);

/*
 * The converter's delay in output samples: how far a stream's output runs behind in_rate to
 * out_rate times its input. 0 for a pass-through. Divide by out_rate for seconds.
 * Thread: any (the value is fixed at construction).
 */
int resample_latency_samples(const resample_t *r);

#endif
