/*
 * Audio for the simulator's agent mode: the three Realtime wire formats, an energy VAD over
 * 20 ms windows, and a speech-like synthesiser (a voiced buzz shaped per word, with pauses)
 * whose word timings drive the transcript deltas.
 * Thread: the simulator's only thread; the functions touch only the state they are given,
 * apart from sim_audio_init's read-only tables.
 */
#ifndef SB_BENCH_SIM_AUDIO_H
#define SB_BENCH_SIM_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SIM_FMT_PCM24 = 0, SIM_FMT_PCMU, SIM_FMT_PCMA } sim_fmt_t;

#define SIM_AUDIO_PCM_RATE_HZ  24000
#define SIM_AUDIO_G711_RATE_HZ 8000
#define SIM_AUDIO_PCM16_BYTES  2    /* bytes per PCM16 sample */
#define SIM_MS_PER_S           1000 /* milliseconds per second */

/* Fills the lookup tables. Call once at start-up. */
void sim_audio_init(void);

/* Sample rate of a format, and its wire bytes per millisecond (48 for PCM16 at 24 kHz, 8 for
 * G.711 at 8 kHz). */
uint32_t sim_audio_rate(sim_fmt_t f);
uint32_t sim_audio_bytes_per_ms(sim_fmt_t f);

/*
 * Converts n wire bytes to linear samples in out (room for n samples). For PCM16 an odd final
 * byte is kept in *carry (-1 when none) and joined with the next call's first byte. Returns the
 * number of samples written.
 */
size_t sim_audio_to_linear(sim_fmt_t f, const uint8_t *in, size_t n, int *carry, int16_t *out);

/* Encodes n samples into out (2n bytes for PCM16 little-endian, n for G.711); returns bytes. */
size_t sim_audio_encode(sim_fmt_t f, const int16_t *in, size_t n, uint8_t *out);

/* ---- Energy VAD ------------------------------------------------------------------------------ */

typedef struct sim_vad {
    uint32_t rate_hz;
    uint32_t win_samples;     /* one 20 ms window */
    uint32_t silence_windows; /* silent windows that end a turn */
    uint64_t pos;             /* samples seen since the session started */
    uint64_t sumsq;           /* of the window being filled */
    uint32_t n;               /* samples in that window */
    uint32_t voiced_run;      /* consecutive voiced windows */
    uint32_t silent_run;      /* consecutive silent windows while in speech */
    bool in_speech;
    uint64_t run_start;       /* sample where the current voiced run began */
    uint64_t speech_start;    /* sample where the current turn's speech began */
    uint64_t last_voiced_end; /* sample just after the last voiced window */
} sim_vad_t;

typedef enum { SIM_VAD_NONE = 0, SIM_VAD_STARTED, SIM_VAD_STOPPED } sim_vad_kind_t;

typedef struct sim_vad_event {
    sim_vad_kind_t kind;
    uint64_t start_ms; /* where the speech began */
    uint64_t end_ms;   /* STOPPED: where it ended */
} sim_vad_event_t;

/* Prepares a VAD for a sample rate and a turn-ending silence. */
void sim_vad_init(sim_vad_t *v, uint32_t rate_hz, uint32_t silence_ms);

/* Forgets a turn in progress (input_audio_buffer.clear); the timeline keeps counting. */
void sim_vad_reset_turn(sim_vad_t *v);

/*
 * Feeds samples. Windows are judged as they fill; each start or end of speech is stored in
 * ev[] (at most max, in order). Returns the number of events.
 */
size_t sim_vad_feed(sim_vad_t *v, const int16_t *s, size_t n, sim_vad_event_t *ev, size_t max);

/* Milliseconds of input the VAD has seen. */
uint64_t sim_vad_now_ms(const sim_vad_t *v);

/* ---- Speech synthesis ------------------------------------------------------------------------ */

typedef struct sim_word {
    uint64_t start;    /* first sample */
    uint32_t voiced;   /* samples of sound */
    uint32_t f0_mhz;   /* pitch in millihertz */
    uint32_t text_off; /* this word's transcript delta: text[off, off + len) */
    uint32_t text_len;
} sim_word_t;

typedef struct sim_speech {
    uint32_t rate_hz;
    sim_word_t *words;
    uint32_t n_words;
    uint64_t total; /* samples in the whole utterance */
    uint32_t cur;   /* render cursor: the word at or after the last rendered sample */
    uint32_t phase; /* oscillator phase, 2^32 per period */
} sim_speech_t;

/*
 * Plans the utterance of text at rate_hz: word timings, pitches and transcript spans (each
 * word's span includes the spaces after it, so the deltas concatenate to text). Words beyond a
 * cap are folded into the last one. Free with sim_speech_free.
 */
void sim_speech_plan(sim_speech_t *sp, const char *text, uint32_t rate_hz);
void sim_speech_free(sim_speech_t *sp);

/* Renders samples [from, from + n) into out; calls must move forward through the utterance. */
void sim_speech_render(sim_speech_t *sp, uint64_t from, size_t n, int16_t *out);

#endif
