/*
 * Tests of audio/pcm: durations and sizes both ways, little-endian conversion against bytes laid
 * out by hand, and the level of known signals.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "audio/pcm.h"
#include "base/util.h"
#include "tests/runner.h"

#define PCM_T_RATE    24000
#define PCM_T_FRAME   960 /* samples: 40 ms at 24 kHz, a whole number of 1 kHz cycles */
#define PCM_T_TOL_DB  0.01
#define PCM_T_SINE_DB (-3.0103) /* 20 log10(1 / sqrt(2)) */

TEST(pcm_bytes_for_ms)
{
    ASSERT_EQ(PCM_BYTES_PER_SAMPLE, 2);
    ASSERT_EQ(pcm_bytes_for_ms(24000, 20), 960);
    ASSERT_EQ(pcm_bytes_for_ms(48000, 20), 1920);
    ASSERT_EQ(pcm_bytes_for_ms(16000, 20), 640);
    ASSERT_EQ(pcm_bytes_for_ms(8000, 20), 320);
    ASSERT_EQ(pcm_bytes_for_ms(24000, 1000), 48000);
    ASSERT_EQ(pcm_bytes_for_ms(22050, 1), 44); /* 22.05 samples: whole samples only */
    ASSERT_EQ(pcm_bytes_for_ms(44100, 10), 882);
    ASSERT_EQ(pcm_bytes_for_ms(24000, 0), 0);
    ASSERT_EQ(pcm_bytes_for_ms(0, 20), 0);
    ASSERT_EQ(pcm_bytes_for_ms(-24000, 20), 0);
    ASSERT_EQ(pcm_bytes_for_ms(24000, -20), 0);
    /* An hour at 192 kHz does not overflow on the way. */
    ASSERT_EQ(pcm_bytes_for_ms(192000, 3600 * 1000), 192000ULL * 3600 * 2);
}

TEST(pcm_ms_for_bytes)
{
    ASSERT_EQ(pcm_ms_for_bytes(24000, 960), 20);
    ASSERT_EQ(pcm_ms_for_bytes(24000, 959), 19); /* rounds down, odd byte ignored */
    ASSERT_EQ(pcm_ms_for_bytes(24000, 47), 0);
    ASSERT_EQ(pcm_ms_for_bytes(24000, 48), 1);
    ASSERT_EQ(pcm_ms_for_bytes(24000, 49), 1);
    ASSERT_EQ(pcm_ms_for_bytes(48000, 1920), 20);
    ASSERT_EQ(pcm_ms_for_bytes(22050, 44), 0);
    ASSERT_EQ(pcm_ms_for_bytes(22050, 46), 1); /* 23 samples = 1.04 ms */
    ASSERT_EQ(pcm_ms_for_bytes(24000, 0), 0);
    ASSERT_EQ(pcm_ms_for_bytes(0, 960), 0);
    ASSERT_EQ(pcm_ms_for_bytes(-1, 960), 0);
    /* Large counts do not overflow: at 8 kHz a sample is 1/8 ms exactly. */
    uint64_t samples = SIZE_MAX / PCM_BYTES_PER_SAMPLE;
    ASSERT(pcm_ms_for_bytes(8000, SIZE_MAX) == samples / 8);
    /* Round trip for every whole-millisecond duration of the common rates. */
    static const int rates[] = {8000, 16000, 24000, 44100, 48000};
    for (size_t i = 0; i < ARRAY_LEN(rates); i++)
        for (int ms = 0; ms <= 1000; ms += 20)
            ASSERT_EQ(pcm_ms_for_bytes(rates[i], pcm_bytes_for_ms(rates[i], ms)), ms);
}

TEST(pcm_le_conversion)
{
    static const int16_t samples[] = {0,         1,         -1,     0x1234, -0x1234,
                                      INT16_MAX, INT16_MIN, 0x00FF, 0x0100};
    static const uint8_t bytes[] = {0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0x34, 0x12, 0xCC,
                                    0xED, 0xFF, 0x7F, 0x00, 0x80, 0xFF, 0x00, 0x00, 0x01};
    enum { N = ARRAY_LEN(samples) };
    ASSERT_EQ(sizeof(bytes), N * PCM_BYTES_PER_SAMPLE);

    uint8_t out[sizeof(bytes) + 1];
    memset(out, 0xA5, sizeof(out));
    ASSERT_EQ(pcm_to_le(samples, N, out), sizeof(bytes));
    ASSERT(memcmp(out, bytes, sizeof(bytes)) == 0);
    ASSERT_EQ(out[sizeof(bytes)], 0xA5);

    int16_t back[N + 1];
    back[N] = 0x5A5A;
    ASSERT_EQ(pcm_from_le(bytes, sizeof(bytes), back), N);
    for (size_t i = 0; i < N; i++)
        ASSERT_EQ(back[i], samples[i]);
    ASSERT_EQ(back[N], 0x5A5A);

    /* A trailing odd byte is not a sample; unaligned input and output are fine. */
    uint8_t shifted[sizeof(bytes) + 2];
    memcpy(shifted + 1, bytes, sizeof(bytes));
    shifted[sizeof(bytes) + 1] = 0x77;
    ASSERT_EQ(pcm_from_le(shifted + 1, sizeof(bytes) + 1, back), N);
    for (size_t i = 0; i < N; i++)
        ASSERT_EQ(back[i], samples[i]);
    ASSERT_EQ(pcm_to_le(samples, N, shifted + 1), sizeof(bytes));
    ASSERT(memcmp(shifted + 1, bytes, sizeof(bytes)) == 0);
    ASSERT_EQ(pcm_from_le(bytes, 1, back), 0);
    ASSERT_EQ(pcm_to_le(samples, 0, out), 0);
}

TEST(pcm_rms_dbfs_levels)
{
    int16_t buf[PCM_T_FRAME] = {0};
    ASSERT(pcm_rms_dbfs(buf, 0) == PCM_DBFS_SILENCE);
    ASSERT(pcm_rms_dbfs(buf, PCM_T_FRAME) == PCM_DBFS_SILENCE);

    /* Full scale (|INT16_MIN|) held constant is 0 dBFS; a square wave at half of it -6.02. */
    for (size_t i = 0; i < PCM_T_FRAME; i++)
        buf[i] = INT16_MIN;
    ASSERT(fabs(pcm_rms_dbfs(buf, PCM_T_FRAME)) < PCM_T_TOL_DB);
    for (size_t i = 0; i < PCM_T_FRAME; i++)
        buf[i] = i % 2 ? 16384 : -16384;
    ASSERT(fabs(pcm_rms_dbfs(buf, PCM_T_FRAME) - 20.0 * log10(0.5)) < PCM_T_TOL_DB);

    /* A full-scale 1 kHz sine over whole cycles is -3.01 dBFS; 40 dB down is -43.01. */
    for (size_t i = 0; i < PCM_T_FRAME; i++)
        buf[i] = (int16_t)lrint(32767.0 * sin(2.0 * M_PI * 1000.0 * (double)i / PCM_T_RATE));
    double db = pcm_rms_dbfs(buf, PCM_T_FRAME);
    if (fabs(db - PCM_T_SINE_DB) > PCM_T_TOL_DB)
        TEST_FAIL_("full-scale sine: %.4f dBFS", db);
    for (size_t i = 0; i < PCM_T_FRAME; i++)
        buf[i] = (int16_t)lrint(327.67 * sin(2.0 * M_PI * 1000.0 * (double)i / PCM_T_RATE));
    db = pcm_rms_dbfs(buf, PCM_T_FRAME);
    if (fabs(db - (PCM_T_SINE_DB - 40.0)) > PCM_T_TOL_DB * 10)
        TEST_FAIL_("-40 dB sine: %.4f dBFS", db);

    /* One LSB alone is -90.31 dBFS; spread over 96 samples 19.8 dB lower, still above the
     * floor; over a 960-sample frame it would be -120.1 and clamps to the floor. */
    memset(buf, 0, sizeof(buf));
    buf[0] = 1;
    ASSERT(fabs(pcm_rms_dbfs(buf, 1) - 20.0 * log10(1.0 / 32768.0)) < PCM_T_TOL_DB);
    db = pcm_rms_dbfs(buf, 96);
    ASSERT(db > PCM_DBFS_SILENCE && db < -110.0);
    ASSERT(pcm_rms_dbfs(buf, PCM_T_FRAME) == PCM_DBFS_SILENCE);
}
