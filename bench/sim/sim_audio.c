/*
 * Audio for the simulator's agent mode: formats, energy VAD and speech synthesis.
 * Thread: the simulator's only thread.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "bench/sim/sim_audio.h"

#define VAD_WINDOW_MS      20
#define VAD_START_WINDOWS  3 /* 60 ms of voiced windows start a turn */
#define VAD_THRESHOLD_DBFS (-45.0)
#define FULL_SCALE         32768.0

#define WAVE_TABLE_BITS     10
#define WAVE_TABLE_LEN      (1u << WAVE_TABLE_BITS)
#define WAVE_HARMONICS      12
#define SPEECH_PEAK         9000.0 /* about -11 dBFS: well above the VAD threshold */
#define SPEECH_F0_MHZ       140000 /* a 140 Hz voice */
#define SPEECH_F0_FINAL_MHZ 118000 /* the pitch falls at the end of a sentence */
#define WORD_BASE_MS        90
#define WORD_PER_LETTER_MS  45
#define WORD_MAX_MS         650
#define GAP_WORD_MS         70
#define GAP_COMMA_MS        200
#define GAP_SENTENCE_MS     350
#define ATTACK_MS           15
#define RELEASE_MS          35
#define SYLLABLE_MS         160 /* a gentle amplitude wobble per syllable */
#define SPEECH_MAX_WORDS    400

static int16_t g_wave[WAVE_TABLE_LEN];
static int16_t g_ulaw_dec[256];
static int16_t g_alaw_dec[256];
static uint64_t g_vad_threshold_sumsq;   /* per sample, squared RMS at the threshold */
static float g_syllable[WAVE_TABLE_LEN]; /* one period of the syllable wobble, 0.5 .. 1.0 */

/* ---- G.711 (ITU-T G.711 reference algorithms) ------------------------------------------------ */

static int16_t ulaw_decode(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

static int16_t alaw_decode(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0f) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

static uint8_t ulaw_encode(int16_t s)
{
    static const int bias = 0x84, clip = 32635;
    int sign = (s >> 8) & 0x80;
    int v = sign ? -(int)s : s;
    if (v > clip)
        v = clip;
    v += bias;
    int exp = 7;
    for (int mask = 0x4000; (v & mask) == 0 && exp > 0; mask >>= 1)
        exp--;
    int mant = (v >> (exp + 3)) & 0x0f;
    return (uint8_t) ~(sign | (exp << 4) | mant);
}

static uint8_t alaw_encode(int16_t s)
{
    int v = s;
    int mask = 0xd5;
    if (v < 0) {
        mask = 0x55;
        v = -v - 1;
    }
    v >>= 3;
    int seg = 0;
    for (int end = 0x1f; seg < 8 && v > end; end = (end << 1) | 1)
        seg++;
    if (seg >= 8)
        return (uint8_t)(0x7f ^ mask);
    int aval = seg << 4;
    aval |= (seg < 2) ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
    return (uint8_t)(aval ^ mask);
}

void sim_audio_init(void)
{
    double peak = 0, tmp[WAVE_TABLE_LEN];
    for (uint32_t i = 0; i < WAVE_TABLE_LEN; i++) {
        double x = 2.0 * M_PI * i / WAVE_TABLE_LEN, v = 0;
        /* A glottal-like buzz: falling harmonics with a formant-ish bump around the 3rd. */
        for (int k = 1; k <= WAVE_HARMONICS; k++)
            v += sin(k * x) * (k == 3 ? 0.8 : 1.0 / k);
        tmp[i] = v;
        if (fabs(v) > peak)
            peak = fabs(v);
    }
    for (uint32_t i = 0; i < WAVE_TABLE_LEN; i++)
        g_wave[i] = (int16_t)lrint(tmp[i] / peak * 32767.0);
    for (int i = 0; i < 256; i++) {
        g_ulaw_dec[i] = ulaw_decode((uint8_t)i);
        g_alaw_dec[i] = alaw_decode((uint8_t)i);
    }
    for (uint32_t i = 0; i < WAVE_TABLE_LEN; i++)
        g_syllable[i] = (float)(0.75 + 0.25 * cos(2.0 * M_PI * i / WAVE_TABLE_LEN));
    double rms = FULL_SCALE * pow(10.0, VAD_THRESHOLD_DBFS / 20.0);
    g_vad_threshold_sumsq = (uint64_t)(rms * rms);
}

uint32_t sim_audio_rate(sim_fmt_t f)
{
    return f == SIM_FMT_PCM24 ? SIM_AUDIO_PCM_RATE_HZ : SIM_AUDIO_G711_RATE_HZ;
}

uint32_t sim_audio_bytes_per_ms(sim_fmt_t f)
{
    return f == SIM_FMT_PCM24 ? SIM_AUDIO_PCM_RATE_HZ * SIM_AUDIO_PCM16_BYTES / SIM_MS_PER_S
                              : SIM_AUDIO_G711_RATE_HZ / SIM_MS_PER_S;
}

size_t sim_audio_to_linear(sim_fmt_t f, const uint8_t *in, size_t n, int *carry, int16_t *out)
{
    size_t k = 0;
    if (f == SIM_FMT_PCMU || f == SIM_FMT_PCMA) {
        const int16_t *tab = f == SIM_FMT_PCMU ? g_ulaw_dec : g_alaw_dec;
        for (size_t i = 0; i < n; i++)
            out[k++] = tab[in[i]];
        return k;
    }
    size_t i = 0;
    if (*carry >= 0 && n > 0) {
        out[k++] = (int16_t)(uint16_t)((unsigned)*carry | (unsigned)in[0] << 8);
        *carry = -1;
        i = 1;
    }
    for (; i + 1 < n; i += 2)
        out[k++] = (int16_t)(uint16_t)((unsigned)in[i] | (unsigned)in[i + 1] << 8);
    if (i < n)
        *carry = in[i];
    return k;
}

size_t sim_audio_encode(sim_fmt_t f, const int16_t *in, size_t n, uint8_t *out)
{
    if (f == SIM_FMT_PCMU) {
        for (size_t i = 0; i < n; i++)
            out[i] = ulaw_encode(in[i]);
        return n;
    }
    if (f == SIM_FMT_PCMA) {
        for (size_t i = 0; i < n; i++)
            out[i] = alaw_encode(in[i]);
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t u = (uint16_t)in[i];
        out[2 * i] = (uint8_t)(u & 0xff);
        out[2 * i + 1] = (uint8_t)(u >> 8);
    }
    return 2 * n;
}

/* ---- VAD ------------------------------------------------------------------------------------- */

void sim_vad_init(sim_vad_t *v, uint32_t rate_hz, uint32_t silence_ms)
{
    memset(v, 0, sizeof(*v));
    v->rate_hz = rate_hz;
    v->win_samples = rate_hz * VAD_WINDOW_MS / SIM_MS_PER_S;
    v->silence_windows = silence_ms / VAD_WINDOW_MS ? silence_ms / VAD_WINDOW_MS : 1;
}

void sim_vad_reset_turn(sim_vad_t *v)
{
    v->sumsq = 0;
    v->n = 0;
    v->voiced_run = 0;
    v->silent_run = 0;
    v->in_speech = false;
}

static uint64_t samples_to_ms(const sim_vad_t *v, uint64_t s)
{
    return s * SIM_MS_PER_S / v->rate_hz;
}

uint64_t sim_vad_now_ms(const sim_vad_t *v)
{
    return samples_to_ms(v, v->pos);
}

/* Judges the window that has just filled (it ends at v->pos). */
static size_t judge_window(sim_vad_t *v, sim_vad_event_t *ev)
{
    bool voiced = v->sumsq > g_vad_threshold_sumsq * v->win_samples;
    uint64_t win_start = v->pos - v->win_samples;
    v->sumsq = 0;
    v->n = 0;
    if (voiced) {
        if (v->voiced_run == 0)
            v->run_start = win_start;
        v->voiced_run++;
        v->silent_run = 0;
        v->last_voiced_end = v->pos;
        if (!v->in_speech && v->voiced_run >= VAD_START_WINDOWS) {
            v->in_speech = true;
            v->speech_start = v->run_start;
            ev->kind = SIM_VAD_STARTED;
            ev->start_ms = samples_to_ms(v, v->speech_start);
            ev->end_ms = 0;
            return 1;
        }
        return 0;
    }
    v->voiced_run = 0;
    if (!v->in_speech)
        return 0;
    if (++v->silent_run < v->silence_windows)
        return 0;
    v->in_speech = false;
    v->silent_run = 0;
    ev->kind = SIM_VAD_STOPPED;
    ev->start_ms = samples_to_ms(v, v->speech_start);
    ev->end_ms = samples_to_ms(v, v->last_voiced_end);
    return 1;
}

size_t sim_vad_feed(sim_vad_t *v, const int16_t *s, size_t n, sim_vad_event_t *ev, size_t max)
{
    size_t nev = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t x = s[i];
        v->sumsq += (uint64_t)(x * x);
        v->pos++;
        if (++v->n == v->win_samples && nev < max)
            nev += judge_window(v, &ev[nev]);
        else if (v->n == v->win_samples)
            judge_window(v, &(sim_vad_event_t){0}); /* no room: keep the state right */
    }
    return nev;
}

/* ---- Speech synthesis ------------------------------------------------------------------------ */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

void sim_speech_plan(sim_speech_t *sp, const char *text, uint32_t rate_hz)
{
    memset(sp, 0, sizeof(*sp));
    sp->rate_hz = rate_hz;
    size_t len = strlen(text), cap = 8;
    sp->words = xmalloc(cap * sizeof(sim_word_t));
    uint64_t t = 0;
    size_t i = 0;
    while (i < len && is_space(text[i]))
        i++;
    while (i < len) {
        size_t start = i;
        uint32_t letters = 0;
        while (i < len && !is_space(text[i]))
            letters += (text[i++] & 0xc0) != 0x80; /* count code points, not bytes */
        char last = text[i - 1];
        while (i < len && is_space(text[i]))
            i++;
        if (sp->n_words == SPEECH_MAX_WORDS) {
            sim_word_t *lw = &sp->words[sp->n_words - 1];
            lw->text_len = (uint32_t)(i - lw->text_off);
            continue; /* the rest of the text rides on the last word */
        }
        if (sp->n_words == cap) {
            cap *= 2;
            sp->words = xrealloc(sp->words, cap * sizeof(sim_word_t));
        }
        uint32_t ms = WORD_BASE_MS + WORD_PER_LETTER_MS * letters;
        if (ms > WORD_MAX_MS)
            ms = WORD_MAX_MS;
        bool sentence_end = last == '.' || last == '?' || last == '!';
        sim_word_t *w = &sp->words[sp->n_words];
        w->start = t;
        w->voiced = (uint32_t)((uint64_t)ms * rate_hz / SIM_MS_PER_S);
        /* A small deterministic intonation pattern around the base pitch. */
        static const int32_t wobble_mhz[] = {0, 9000, -6000, 4000, -9000, 6000};
        w->f0_mhz =
            sentence_end || i >= len
                ? SPEECH_F0_FINAL_MHZ
                : (uint32_t)(SPEECH_F0_MHZ + wobble_mhz[sp->n_words % ARRAY_LEN(wobble_mhz)]);
        w->text_off = (uint32_t)start;
        w->text_len = (uint32_t)(i - start);
        uint32_t gap = last == ',' || last == ';' || last == ':' ? GAP_COMMA_MS
                       : sentence_end                            ? GAP_SENTENCE_MS
                                                                 : GAP_WORD_MS;
        t += w->voiced + (uint64_t)gap * rate_hz / SIM_MS_PER_S;
        sp->n_words++;
    }
    sp->total = t;
}

void sim_speech_free(sim_speech_t *sp)
{
    free(sp->words);
    sp->words = NULL;
    sp->n_words = 0;
}

/* The amplitude envelope of a word at sample k of its voiced part (0..1). */
static double envelope(const sim_speech_t *sp, const sim_word_t *w, uint32_t k)
{
    double ms = (double)k * SIM_MS_PER_S / sp->rate_hz;
    double left = (double)(w->voiced - k) * SIM_MS_PER_S / sp->rate_hz;
    double e = 1.0;
    if (ms < ATTACK_MS)
        e = ms / ATTACK_MS;
    if (left < RELEASE_MS)
        e = fmin(e, left / RELEASE_MS);
    uint32_t at = (uint32_t)(ms * WAVE_TABLE_LEN / SYLLABLE_MS) & (WAVE_TABLE_LEN - 1);
    return e * g_syllable[at];
}

void sim_speech_render(sim_speech_t *sp, uint64_t from, size_t n, int16_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t s = from + i;
        while (sp->cur < sp->n_words && s >= sp->words[sp->cur].start + sp->words[sp->cur].voiced)
            sp->cur++;
        if (sp->cur >= sp->n_words || s < sp->words[sp->cur].start) {
            out[i] = 0; /* a pause */
            continue;
        }
        const sim_word_t *w = &sp->words[sp->cur];
        uint32_t inc = (uint32_t)(((uint64_t)w->f0_mhz << 32) / SIM_MS_PER_S / sp->rate_hz);
        sp->phase += inc;
        int16_t v = g_wave[sp->phase >> (32 - WAVE_TABLE_BITS)];
        double a = envelope(sp, w, (uint32_t)(s - w->start)) * SPEECH_PEAK / 32767.0;
        out[i] = (int16_t)lrint(v * a);
    }
}
