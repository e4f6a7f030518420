/*
 * Audio hot path, per 20 ms frame: resampling 48k -> 24k and 24k -> 48k at the default quality
 * (streaming, one converter per direction as the relay keeps them), μ-law encode and decode of
 * 160 samples (8 kHz), and base64 encode and decode of 960 bytes (24 kHz PCM16). Prints
 * nanoseconds per frame, best of BENCH_RUNS runs (and markdown rows with --markdown).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "audio/b64.h"
#include "audio/resample.h"
#include "audio/ulaw.h"
#include "base/util.h"

#define BENCH_RUNS           5
#define BENCH_FRAMES         20000 /* per run: 400 s of audio */
#define BENCH_FRAMES_PER_S   50    /* 20 ms frames */
#define BENCH_MAX_RATE_HZ    48000
#define BENCH_ULAW_SAMPLES   160 /* 20 ms at 8 kHz */
#define BENCH_B64_BYTES      960 /* 20 ms of 24 kHz PCM16 */
#define BENCH_TONE_HZ        440.0
#define BENCH_TONE_AMPLITUDE 8000.0

#define BENCH_FRAME_MAX (BENCH_MAX_RATE_HZ / BENCH_FRAMES_PER_S)

/* Folds every result in so the compiler cannot drop the work being timed. */
static volatile uint64_t bench_sink;

typedef void (*bench_fn)(void *ctx);

/* Times BENCH_FRAMES calls of fn(ctx) and returns the best ns per call over BENCH_RUNS. */
static double bench_best_ns(bench_fn fn, void *ctx)
{
    double best = 0.0;
    for (int run = 0; run < BENCH_RUNS; run++) {
        uint64_t t0 = clock_now_ns();
        for (int i = 0; i < BENCH_FRAMES; i++)
            fn(ctx);
        double ns = (double)(clock_now_ns() - t0) / BENCH_FRAMES;
        best = run == 0 || ns < best ? ns : best;
    }
    return best;
}

struct bench_resample {
    resample_t *r;
    size_t n_in;
    int16_t in[BENCH_FRAME_MAX];
    int16_t out[2 * BENCH_FRAME_MAX];
};

static void bench_resample_frame(void *ctx)
{
    struct bench_resample *b = ctx;
    size_t got = resample_process(b->r, b->in, b->n_in, b->out, ARRAY_LEN(b->out));
    bench_sink += got + (uint16_t)b->out[0];
}

struct bench_codec {
    int16_t pcm[BENCH_ULAW_SAMPLES];
    uint8_t ulaw[BENCH_ULAW_SAMPLES];
    uint8_t bytes[BENCH_B64_BYTES];
    char text[BENCH_B64_BYTES / 3 * 4 + 1];
    uint8_t decoded[BENCH_B64_BYTES];
};

static void bench_ulaw_encode(void *ctx)
{
    struct bench_codec *c = ctx;
    ulaw_encode(c->pcm, BENCH_ULAW_SAMPLES, c->ulaw);
    bench_sink += c->ulaw[BENCH_ULAW_SAMPLES - 1];
}

static void bench_ulaw_decode(void *ctx)
{
    struct bench_codec *c = ctx;
    ulaw_decode(c->ulaw, BENCH_ULAW_SAMPLES, c->pcm);
    bench_sink += (uint16_t)c->pcm[BENCH_ULAW_SAMPLES - 1];
}

static void bench_b64_encode(void *ctx)
{
    struct bench_codec *c = ctx;
    bench_sink += b64_encode(c->bytes, BENCH_B64_BYTES, c->text);
}

static void bench_b64_decode(void *ctx)
{
    struct bench_codec *c = ctx;
    bench_sink += (uint64_t)b64_decode(c->text, strlen(c->text), c->decoded);
}

/* Prints one result as plain text or as a markdown row. */
static void bench_report(int markdown, const char *what, double ns)
{
    if (markdown)
        printf("| %s | %.0f ns |\n", what, ns);
    else
        printf("%-44s %10.0f ns/frame (best of %d x %d)\n", what, ns, BENCH_RUNS, BENCH_FRAMES);
}

/* Measures a default-quality converter from in_rate to out_rate on a streaming tone. */
static void bench_resample(int markdown, int in_rate, int out_rate)
{
    static struct bench_resample b;
    b.r = resample_new(in_rate, out_rate, RESAMPLE_QUALITY_DEFAULT);
    if (b.r == NULL) {
        fprintf(stderr, "resample_new(%d, %d) failed\n", in_rate, out_rate);
        return;
    }
    b.n_in = (size_t)in_rate / BENCH_FRAMES_PER_S;
    /* A whole number of cycles per frame, so repeating the frame keeps the stream a clean tone. */
    for (size_t i = 0; i < b.n_in; i++)
        b.in[i] = (int16_t)lrint(BENCH_TONE_AMPLITUDE *
                                 sin(2.0 * M_PI * BENCH_TONE_HZ * (double)i / in_rate));
    char what[96];
    snprintf(what, sizeof(what), "resample %dk->%dk, 20 ms frame (q%d)", in_rate / 1000,
             out_rate / 1000, RESAMPLE_QUALITY_DEFAULT);
    bench_report(markdown, what, bench_best_ns(bench_resample_frame, &b));
    resample_free(b.r);
}

int main(int argc, char **argv)
{
    int markdown = argc > 1 && strcmp(argv[1], "--markdown") == 0;

    bench_resample(markdown, 48000, 24000);
    bench_resample(markdown, 24000, 48000);

    static struct bench_codec c;
    for (size_t i = 0; i < BENCH_ULAW_SAMPLES; i++)
        c.pcm[i] = (int16_t)lrint(BENCH_TONE_AMPLITUDE *
                                  sin(2.0 * M_PI * BENCH_TONE_HZ * (double)i / ULAW_RATE_HZ));
    for (size_t i = 0; i < BENCH_B64_BYTES; i++)
        c.bytes[i] = (uint8_t)(i * 131 + 7);
    b64_encode(c.bytes, BENCH_B64_BYTES, c.text);

    bench_report(markdown, "ulaw encode, 160 samples", bench_best_ns(bench_ulaw_encode, &c));
    bench_report(markdown, "ulaw decode, 160 samples", bench_best_ns(bench_ulaw_decode, &c));
    bench_report(markdown, "base64 encode, 960 bytes", bench_best_ns(bench_b64_encode, &c));
    bench_report(markdown, "base64 decode, 1280 chars", bench_best_ns(bench_b64_decode, &c));
    return 0;
}
