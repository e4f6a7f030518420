/*
 * Tests of audio/resample: frame and stream lengths for the conversions the relay uses, a 1 kHz
 * sine that must come out as the same 1 kHz sine (frequency, level, phase), pass-through, reset,
 * odd chunk sizes, and rejected arguments.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/resample.h"
#include "base/util.h"
#include "tests/runner.h"

#define RS_FRAMES_PER_SEC   50
#define RS_STREAM_SEC       1
#define RS_TONE_HZ          1000.0
#define RS_SPUR_HZ          3000.0 /* third harmonic: where distortion would show first */
#define RS_TONE_AMPLITUDE   10000.0
#define RS_LEVEL_TOL_DB     1.0
#define RS_SPUR_MIN_DB      60.0  /* tone-to-3 kHz power ratio the filter must keep */
#define RS_SETTLE_MS        10    /* output skipped past the latency before measuring */
#define RS_PHASE_TOL        0.001 /* max |output - ideal| over the amplitude: 10 LSB */
#define RS_MAX_RATE_HZ      48000
#define RS_MS_PER_SEC       1000
#define RS_CHUNK_MAX        2000
#define RS_CHUNK_STREAM_SEC 2

static const struct {
    int in_rate, out_rate;
} rs_pairs[] = {
    {16000, 24000}, {48000, 24000}, {24000, 16000}, {24000, 48000},
    {8000, 24000},  {24000, 8000},  {44100, 24000},
};

/* xorshift64: a fixed seed keeps the random cases reproducible. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Fills out[0..n) with the tone at sample indices first.., at rate Hz and phase 0 at index 0. */
static void rs_tone(int16_t *out, size_t n, size_t first, int rate, double hz)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (int16_t)lrint(RS_TONE_AMPLITUDE *
                                sin(2.0 * M_PI * hz * (double)(first + i) / (double)rate));
}

/* Power of the component at hz in x[0..n) by the Goertzel recurrence (unnormalised). */
static double rs_goertzel(const int16_t *x, size_t n, int rate, double hz)
{
    double w = 2.0 * M_PI * hz / (double)rate, c = 2.0 * cos(w);
    double s1 = 0.0, s2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s0 = (double)x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
}

/*
 * Runs RS_STREAM_SEC of the 1 kHz tone through a default-quality converter in 20 ms frames,
 * checking every frame's length, and returns the output (caller frees) with its length.
 */
static int16_t *rs_run_tone(int in_rate, int out_rate, size_t *n_out, int *latency)
{
    resample_t *r = resample_new(in_rate, out_rate, RESAMPLE_QUALITY_DEFAULT);
    ASSERT(r != NULL);
    *latency = resample_latency_samples(r);
    ASSERT_GT(*latency, 0);
    size_t frame_in = (size_t)in_rate / RS_FRAMES_PER_SEC;
    size_t frame_out = (size_t)out_rate / RS_FRAMES_PER_SEC;
    size_t cap = (size_t)out_rate * RS_STREAM_SEC + RS_FRAMES_PER_SEC;
    int16_t *out = xmalloc(cap * sizeof(*out));
    int16_t in[RS_MAX_RATE_HZ / RS_FRAMES_PER_SEC];
    size_t total = 0;
    for (int f = 0; f < RS_FRAMES_PER_SEC * RS_STREAM_SEC; f++) {
        rs_tone(in, frame_in, (size_t)f * frame_in, in_rate, RS_TONE_HZ);
        size_t max = resample_out_max(r, frame_in);
        ASSERT_LE(total + max, cap);
        size_t got = resample_process(r, in, frame_in, out + total, max);
        ASSERT_LE(got, max);
        /* The first frame is short by the latency (no leading zeros); the rest are exact. */
        long want = (long)frame_out - (f == 0 ? *latency : 0);
        ASSERT_LE(labs((long)got - want), 1);
        total += got;
    }
    long want_total = (long)out_rate * RS_STREAM_SEC - *latency;
    ASSERT_LE(labs((long)total - want_total), 1);
    resample_free(r);
    *n_out = total;
    return out;
}

TEST(resample_stream_lengths_and_tone)
{
    for (size_t p = 0; p < ARRAY_LEN(rs_pairs); p++) {
        int in_rate = rs_pairs[p].in_rate, out_rate = rs_pairs[p].out_rate;
        size_t n = 0;
        int latency = 0;
        int16_t *out = rs_run_tone(in_rate, out_rate, &n, &latency);

        /* Measure past the latency and the filter's start-up transient. */
        size_t skip = (size_t)latency + (size_t)out_rate * RS_SETTLE_MS / RS_MS_PER_SEC;
        ASSERT_LT(skip, n);
        const int16_t *w = out + skip;
        size_t wn = n - skip;

        /* Level: the RMS of a sine is its amplitude over sqrt(2). */
        double sq = 0.0;
        for (size_t i = 0; i < wn; i++)
            sq += (double)w[i] * w[i];
        double level_db = 20.0 * log10(sqrt(2.0 * sq / (double)wn) / RS_TONE_AMPLITUDE);
        if (fabs(level_db) > RS_LEVEL_TOL_DB)
            TEST_FAIL_("%d->%d: level %.3f dB", in_rate, out_rate, level_db);

        /* Frequency: the power sits at 1 kHz, not at 3 kHz, and the sign changes twice a cycle. */
        double tone = rs_goertzel(w, wn, out_rate, RS_TONE_HZ);
        double spur = rs_goertzel(w, wn, out_rate, RS_SPUR_HZ);
        double ratio_db = 10.0 * log10(tone / (spur > 0.0 ? spur : 1e-9));
        if (ratio_db < RS_SPUR_MIN_DB)
            TEST_FAIL_("%d->%d: 1 kHz over 3 kHz only %.1f dB", in_rate, out_rate, ratio_db);
        long crossings = 0;
        for (size_t i = 1; i < wn; i++)
            crossings += (w[i - 1] < 0) != (w[i] < 0);
        long want = lrint(2.0 * RS_TONE_HZ * (double)wn / out_rate);
        ASSERT_LE(labs(crossings - want), 2);

        /* Phase: skip_zeros aligns output sample k with input time k / out_rate, so the output
         * is the ideal tone at the output rate, not a delayed copy. */
        double worst = 0.0;
        for (size_t i = skip; i < n; i++) {
            double ideal =
                RS_TONE_AMPLITUDE * sin(2.0 * M_PI * RS_TONE_HZ * (double)i / (double)out_rate);
            double err = fabs((double)out[i] - ideal) / RS_TONE_AMPLITUDE;
            worst = err > worst ? err : worst;
        }
        if (worst > RS_PHASE_TOL)
            TEST_FAIL_("%d->%d: output strays %.4f of the amplitude from the aligned tone", in_rate,
                       out_rate, worst);
        printf("# %d->%d latency %d level %+.4f dB, 1k/3k %.1f dB, crossings %ld/%ld, "
               "phase error %.5f\n",
               in_rate, out_rate, latency, level_db, ratio_db, crossings, want, worst);
        free(out);
    }
}

TEST(resample_first_frame_has_no_leading_zeros)
{
    /* A constant input: without skip_zeros the first `latency` outputs would be near 0. Past
     * the filter's half-window ramp (the samples before time 0 are zeros), it reads the DC. */
    enum { DC = 8000, FRAME = 960 };
    resample_t *r = resample_new(48000, 24000, RESAMPLE_QUALITY_DEFAULT);
    ASSERT(r != NULL);
    int16_t in[FRAME], out[FRAME];
    for (size_t i = 0; i < FRAME; i++)
        in[i] = DC;
    size_t got = resample_process(r, in, FRAME, out, ARRAY_LEN(out));
    ASSERT_EQ(got, FRAME / 2 - (size_t)resample_latency_samples(r));
    /* The very first sample is about half the step, as the filter is centred on time 0. */
    ASSERT_GT(out[0], DC / 4);
    ASSERT_LT(out[0], DC * 3 / 4);
    for (size_t i = (size_t)resample_latency_samples(r); i < got; i++)
        ASSERT_LE(abs(out[i] - DC), DC / 100);
    resample_free(r);
}

TEST(resample_passthrough_bit_exact)
{
    enum { N = 4801 };
    resample_t *r = resample_new(24000, 24000, RESAMPLE_QUALITY_DEFAULT);
    ASSERT(r != NULL);
    ASSERT_EQ(resample_latency_samples(r), 0);
    ASSERT_EQ(resample_out_max(r, N), N);
    int16_t *in = xmalloc(N * sizeof(*in)), *out = xmalloc(N * sizeof(*out));
    uint64_t seed = 0x5eed;
    for (size_t i = 0; i < N; i++)
        in[i] = (int16_t)(rng_next(&seed) & 0xFFFF);
    size_t done = 0;
    for (size_t chunk = 1; done < N; chunk = chunk * 3 + 1) {
        size_t n = N - done < chunk ? N - done : chunk;
        ASSERT_EQ(resample_process(r, in + done, n, out + done, resample_out_max(r, n)), n);
        done += n;
    }
    ASSERT(memcmp(in, out, N * sizeof(*in)) == 0);
    resample_reset(r);
    ASSERT_EQ(resample_process(r, in, 0, out, 0), 0);
    resample_free(r);
}

TEST(resample_rejects_bad_arguments)
{
    static const int bad_rates[] = {
        0, -1, -24000, RESAMPLE_RATE_MIN_HZ - 1, RESAMPLE_RATE_MAX_HZ + 1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < ARRAY_LEN(bad_rates); i++) {
        ASSERT(resample_new(bad_rates[i], 24000, RESAMPLE_QUALITY_DEFAULT) == NULL);
        ASSERT(resample_new(24000, bad_rates[i], RESAMPLE_QUALITY_DEFAULT) == NULL);
        ASSERT(resample_new(bad_rates[i], bad_rates[i], RESAMPLE_QUALITY_DEFAULT) == NULL);
    }
    ASSERT(resample_new(48000, 24000, RESAMPLE_QUALITY_MIN - 1) == NULL);
    ASSERT(resample_new(48000, 24000, RESAMPLE_QUALITY_MAX + 1) == NULL);
    ASSERT(resample_new(24000, 24000, -1) == NULL);

    /* The bounds themselves are accepted. */
    resample_t *r = resample_new(RESAMPLE_RATE_MIN_HZ, RESAMPLE_RATE_MAX_HZ, RESAMPLE_QUALITY_MIN);
    ASSERT(r != NULL);
    resample_free(r);
    r = resample_new(RESAMPLE_RATE_MAX_HZ, RESAMPLE_RATE_MIN_HZ, RESAMPLE_QUALITY_MAX);
    ASSERT(r != NULL);
    resample_free(r);
    resample_free(NULL);
}

TEST(resample_reset_restarts_the_stream)
{
    enum { FRAME_IN = 320, FRAME_CAP = 512 };
    resample_t *used = resample_new(16000, 24000, RESAMPLE_QUALITY_DEFAULT);
    resample_t *fresh = resample_new(16000, 24000, RESAMPLE_QUALITY_DEFAULT);
    ASSERT(used != NULL && fresh != NULL);
    int16_t in[FRAME_IN], a[FRAME_CAP], b[FRAME_CAP];
    uint64_t seed = 42;
    for (int f = 0; f < 3; f++) {
        for (size_t i = 0; i < FRAME_IN; i++)
            in[i] = (int16_t)(rng_next(&seed) & 0xFFFF);
        resample_process(used, in, FRAME_IN, a, FRAME_CAP);
    }
    resample_reset(used);
    rs_tone(in, FRAME_IN, 0, 16000, RS_TONE_HZ);
    size_t na = resample_process(used, in, FRAME_IN, a, FRAME_CAP);
    size_t nb = resample_process(fresh, in, FRAME_IN, b, FRAME_CAP);
    ASSERT_EQ(na, nb);
    ASSERT(memcmp(a, b, na * sizeof(a[0])) == 0);
    resample_free(used);
    resample_free(fresh);
}

TEST(resample_odd_chunks_match_one_call)
{
    /* 44.1 kHz is not a multiple of 24 kHz, so speexdsp's phase is fractional; random chunks
     * (1 to RS_CHUNK_MAX samples) must give the same samples as one call on the whole stream,
     * and never more than resample_out_max(). */
    const int in_rate = 44100, out_rate = 24000;
    size_t n_in = (size_t)in_rate * RS_CHUNK_STREAM_SEC;
    int16_t *in = xmalloc(n_in * sizeof(*in));
    uint64_t seed = 7;
    for (size_t i = 0; i < n_in; i++)
        in[i] = (int16_t)((rng_next(&seed) & 0xFFFF) / 4 - 0x2000);

    resample_t *whole = resample_new(in_rate, out_rate, RESAMPLE_QUALITY_DEFAULT);
    ASSERT(whole != NULL);
    size_t cap = resample_out_max(whole, n_in);
    int16_t *one = xmalloc(cap * sizeof(*one)), *many = xmalloc(cap * sizeof(*many));
    size_t n_one = resample_process(whole, in, n_in, one, cap);
    long want = (long)out_rate * RS_CHUNK_STREAM_SEC - resample_latency_samples(whole);
    ASSERT_LE(labs((long)n_one - want), 1);

    resample_t *r = resample_new(in_rate, out_rate, RESAMPLE_QUALITY_DEFAULT);
    size_t used = 0, n_many = 0;
    while (used < n_in) {
        size_t n = 1 + (size_t)(rng_next(&seed) % RS_CHUNK_MAX);
        if (n > n_in - used)
            n = n_in - used;
        size_t max = resample_out_max(r, n);
        int16_t tmp[RS_CHUNK_MAX + 2];
        ASSERT_LE(max, ARRAY_LEN(tmp));
        size_t got = resample_process(r, in + used, n, tmp, max);
        ASSERT_LE(got, max);
        ASSERT_LE(n_many + got, cap);
        memcpy(many + n_many, tmp, got * sizeof(*tmp));
        n_many += got;
        used += n;
    }
    ASSERT_EQ(n_many, n_one);
    ASSERT(memcmp(one, many, n_one * sizeof(*one)) == 0);
    resample_free(whole);
    resample_free(r);
    free(in);
    free(one);
    free(many);
}

TEST(resample_out_max_bounds)
{
    resample_t *up = resample_new(8000, 24000, RESAMPLE_QUALITY_DEFAULT);
    resample_t *down = resample_new(48000, 24000, RESAMPLE_QUALITY_DEFAULT);
    resample_t *odd = resample_new(44100, 24000, RESAMPLE_QUALITY_DEFAULT);
    ASSERT(up != NULL && down != NULL && odd != NULL);
    ASSERT_EQ(resample_out_max(up, 160), 481);
    ASSERT_EQ(resample_out_max(down, 960), 481);
    ASSERT_EQ(resample_out_max(down, 1), 2);
    ASSERT_EQ(resample_out_max(odd, 882), 481);
    ASSERT_EQ(resample_out_max(odd, 1), 2);
    ASSERT_EQ(resample_out_max(up, 0), 1);
    resample_free(up);
    resample_free(down);
    resample_free(odd);
}
