/*
 * Sample-rate conversion on speexdsp; see resample.h.
 *
 * speexdsp's process call consumes only as much input as its output room allows and reports
 * both counts, so resample_process() loops until the input is used up; with the room
 * resample_out_max() promises, one pass normally does it. Lengths are spx_uint32_t there, so
 * longer buffers go through in pieces.
 *
 * A fresh speexdsp state primes its filter with zeros and emits them first (the output latency,
 * e.g. 40 samples at 48k -> 24k). speex_resampler_skip_zeros() drops them, here and after every
 * reset, so a stream's first output sample lines up with its first input sample.
 *
 * Equal rates bypass speexdsp: a same-rate speexdsp state still filters and delays the signal,
 * and a copy is both exact and free.
 */
#include "audio/resample.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <speex/speex_resampler.h>

#include "base/util.h"

#define RESAMPLE_MONO_CHANNELS 1
#define RESAMPLE_CHANNEL_INDEX 0
/* speexdsp lengths are spx_uint32_t; calls take at most this many samples at a time. */
#define RESAMPLE_SPX_MAX_SAMPLES ((size_t)UINT32_MAX)
/* Margin of resample_out_max() over the exact ceiling, for the rounding of speexdsp's phase. */
#define RESAMPLE_OUT_MARGIN_SAMPLES 1

struct resample {
    SpeexResamplerState *st; /* [owner] NULL for a pass-through */
    size_t num;              /* out_rate / gcd(in_rate, out_rate); fixed */
    size_t den;              /* in_rate / gcd(in_rate, out_rate); fixed */
    int latency_out;         /* output samples held in the filter; fixed */
};

/* Greatest common divisor of two positive rates, for the reduced ratio. */
static int resample_gcd(int a, int b)
{
    while (b != 0) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* True when rate_hz is one resample_new() accepts. */
static int resample_rate_ok(int rate_hz)
{
    return rate_hz >= RESAMPLE_RATE_MIN_HZ && rate_hz <= RESAMPLE_RATE_MAX_HZ;
}

resample_t *resample_new(int in_rate, int out_rate, int quality)
{
    if (!resample_rate_ok(in_rate) || !resample_rate_ok(out_rate))
        return NULL;
    if (quality < RESAMPLE_QUALITY_MIN || quality > RESAMPLE_QUALITY_MAX)
        return NULL;

    resample_t *r = xcalloc(1, sizeof(*r));
    int g = resample_gcd(in_rate, out_rate);
    r->num = (size_t)(out_rate / g);
    r->den = (size_t)(in_rate / g);
    if (in_rate == out_rate)
        return r;

    int err = RESAMPLER_ERR_SUCCESS;
    r->st = speex_resampler_init(RESAMPLE_MONO_CHANNELS, (spx_uint32_t)in_rate,
                                 (spx_uint32_t)out_rate, quality, &err);
    if (r->st == NULL || err != RESAMPLER_ERR_SUCCESS) {
        if (r->st != NULL)
            speex_resampler_destroy(r->st);
        free(r);
        return NULL;
    }
    r->latency_out = speex_resampler_get_output_latency(r->st);
    speex_resampler_skip_zeros(r->st);
    return r;
}

void resample_free(resample_t *r)
{
    if (r == NULL)
        return;
    if (r->st != NULL)
        speex_resampler_destroy(r->st);
    free(r);
}

size_t resample_out_max(const resample_t *r, size_t n_in)
{
    if (r->st == NULL)
        return n_in;
    /* ceil(n_in * num / den), split so that n_in * num cannot overflow for any real n_in. */
    size_t whole = n_in / r->den * r->num;
    size_t part = (n_in % r->den * r->num + r->den - 1) / r->den;
    return whole + part + RESAMPLE_OUT_MARGIN_SAMPLES;
}

size_t resample_process(resample_t *r, const int16_t *in, size_t n_in, int16_t *out, size_t out_cap)
{
    assert(out_cap >= resample_out_max(r, n_in));
    if (r->st == NULL) {
        size_t n = n_in < out_cap ? n_in : out_cap;
        if (n > 0)
            memcpy(out, in, n * sizeof(*in));
        return n;
    }

    size_t used = 0, written = 0;
    while (used < n_in && written < out_cap) {
        size_t in_left = n_in - used, out_left = out_cap - written;
        spx_uint32_t in_len =
            (spx_uint32_t)(in_left < RESAMPLE_SPX_MAX_SAMPLES ? in_left : RESAMPLE_SPX_MAX_SAMPLES);
        spx_uint32_t out_len =
            (spx_uint32_t)(out_left < RESAMPLE_SPX_MAX_SAMPLES ? out_left
                                                               : RESAMPLE_SPX_MAX_SAMPLES);
        int err = speex_resampler_process_int(r->st, RESAMPLE_CHANNEL_INDEX, in + used, &in_len,
                                              out + written, &out_len);
        /* Neither failure nor a pass that moves nothing happens with valid arguments; stop
         * rather than spin if speexdsp ever disagrees. */
        if (err != RESAMPLER_ERR_SUCCESS || (in_len == 0 && out_len == 0))
            break;
        used += in_len;
        written += out_len;
    }
    return written;
}

void resample_reset(resample_t *r)
{
    if (r->st == NULL)
        return;
    speex_resampler_reset_mem(r->st);
    speex_resampler_skip_zeros(r->st);
}

int resample_latency_samples(const resample_t *r)
{
    return r->latency_out;
}
