/*
 * Tests of base/log: the text and JSON line formats, quoting, redaction, level filtering,
 * truncation, and that lines written by several threads at once never interleave.
 * stderr is captured through a pipe for the duration of each check.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sbuf.h"
#include "tests/runner.h"

#define LOG_TEST_TS_LEN         24 /* 2026-11-22T10:00:00.123Z */
#define LOG_TEST_LINE_MAX_BYTES 8192
#define LOG_TEST_READ_BYTES     65536
#define LOG_TEST_THREADS        4
#define LOG_TEST_LINES          2000
#define LOG_TEST_PAD_MAX_BYTES  6000 /* some lines longer than PIPE_BUF (4096) */

static int cap_saved_fd = -1;
static int cap_read_fd = -1;

/* Points stderr at a fresh pipe. Output must stay below the pipe's capacity until capture_end. */
static void capture_begin(void)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    cap_saved_fd = dup(STDERR_FILENO);
    ASSERT(cap_saved_fd >= 0);
    ASSERT(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    cap_read_fd = fds[0];
}

static char *read_all(int fd)
{
    sbuf_t b = SBUF_INIT;
    char chunk[LOG_TEST_READ_BYTES];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        sbuf_append(&b, chunk, (size_t)n);
    return sbuf_take(&b);
}

/* Restores stderr (closing the pipe's last write end) and returns what was written. */
static char *capture_end(void)
{
    dup2(cap_saved_fd, STDERR_FILENO);
    close(cap_saved_fd);
    char *s = read_all(cap_read_fd);
    close(cap_read_fd);
    return s;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks the shape of an RFC 3339 UTC time with milliseconds. */
static void assert_ts(const char *ts)
{
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < LOG_TEST_TS_LEN; i++) {
        if (shape[i] == 'd')
            ASSERT(is_digit(ts[i]));
        else
            ASSERT_EQ(ts[i], shape[i]);
    }
}

/* Returns the text line after its "ts=<time>" prefix, which it checks. */
static const char *after_text_ts(const char *line)
{
    ASSERT(strncmp(line, "ts=", 3) == 0);
    assert_ts(line + 3);
    return line + 3 + LOG_TEST_TS_LEN;
}

static const char *after_json_ts(const char *line)
{
    ASSERT(strncmp(line, "{\"ts\":\"", 7) == 0);
    assert_ts(line + 7);
    return line + 7 + LOG_TEST_TS_LEN;
}

static bool valid_utf8(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = sbuf_utf8_seq_len(s + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

TEST(log_text_format)
{
    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    capture_begin();
    log_info("ws.open", LOG_S("sid", "abc"), LOG_I("conn", 12), LOG_D("lat", 0.25),
             LOG_I("neg", -3));
    char *out = capture_end();
    ASSERT_STR_EQ(after_text_ts(out),
                  " level=info event=ws.open sid=abc conn=12 lat=0.25 neg=-3\n");
    free(out);
}

TEST(log_text_quoting)
{
    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    capture_begin();
    log_info("q", LOG_S("a", "hello world"), LOG_S("b", "say \"hi\""), LOG_S("c", "k=v"),
             LOG_S("d", "line\nbreak\tx\x01"), LOG_S("e", ""), LOG_S("f", "c:\\dir"),
             LOG_S("g", "a b\\c"), LOG_S("h", "caf\xC3\xA9"), LOG_S("i", NULL));
    char *out = capture_end();
    ASSERT_STR_EQ(after_text_ts(out),
                  " level=info event=q a=\"hello world\" b=\"say \\\"hi\\\"\" c=\"k=v\""
                  " d=\"line\\nbreak\\tx\\u0001\" e=\"\" f=c:\\dir g=\"a b\\\\c\""
                  " h=caf\xC3\xA9 i=\"\"\n");
    free(out);
}

TEST(log_json_format)
{
    log_init(LOG_DEBUG, LOG_FORMAT_JSON);
    capture_begin();
    log_warn("ws.open", LOG_S("sid", "abc"), LOG_I("conn", 12), LOG_D("lat", 0.5),
             LOG_S("msg", "a \"q\"\n\\"), LOG_S("nothing", NULL), LOG_D("bad", NAN),
             LOG_S("bytes", "x\xFFy"));
    char *out = capture_end();
    ASSERT_STR_EQ(after_json_ts(out),
                  "\",\"level\":\"warn\",\"event\":\"ws.open\",\"sid\":\"abc\",\"conn\":12,"
                  "\"lat\":0.5,\"msg\":\"a \\\"q\\\"\\n\\\\\",\"nothing\":null,\"bad\":null,"
                  "\"bytes\":\"x\xEF\xBF\xBDy\"}\n");
    free(out);
}

TEST(log_redacts_secret_keys_and_values)
{
    for (int fmt = LOG_FORMAT_TEXT; fmt <= LOG_FORMAT_JSON; fmt++) {
        log_init(LOG_INFO, (log_format_t)fmt);
        capture_begin();
        log_info("secrets", LOG_S("token", "t0ps3cr3t-1"), LOG_S("api_key", "t0ps3cr3t-2"),
                 LOG_S("X-Secret", "t0ps3cr3t-3"), LOG_S("Authorization", "t0ps3cr3t-4"),
                 LOG_S("PASSWORD", "t0ps3cr3t-5"), LOG_S("sessionToken", "t0ps3cr3t-6"),
                 LOG_S("note", "sk-t0ps3cr3t-7"), LOG_S("client", "ek_t0ps3cr3t-8"),
                 LOG_S("hdr", "Bearer t0ps3cr3t-9"), LOG_S("task", "task-sk-visible"),
                 LOG_I("input_tokens", 42));
        char *out = capture_end();
        ASSERT(strstr(out, "t0ps3cr3t") == NULL);
        if (fmt == LOG_FORMAT_TEXT) {
            ASSERT_STR_CONTAINS(out, " token=[redacted] api_key=[redacted]");
            ASSERT_STR_CONTAINS(out, " X-Secret=[redacted] Authorization=[redacted]");
            ASSERT_STR_CONTAINS(out, " PASSWORD=[redacted] sessionToken=[redacted]");
            ASSERT_STR_CONTAINS(out, " note=[redacted] client=[redacted] hdr=[redacted]");
            ASSERT_STR_CONTAINS(out, " task=task-sk-visible input_tokens=42\n");
        } else {
            ASSERT_STR_CONTAINS(out, "\"token\":\"[redacted]\",\"api_key\":\"[redacted]\"");
            ASSERT_STR_CONTAINS(out, "\"note\":\"[redacted]\",\"client\":\"[redacted]\"");
            ASSERT_STR_CONTAINS(out, "\"hdr\":\"[redacted]\"");
            ASSERT_STR_CONTAINS(out, "\"task\":\"task-sk-visible\",\"input_tokens\":42}\n");
        }
        free(out);
    }
}

TEST(log_level_filtering)
{
    log_init(LOG_WARN, LOG_FORMAT_TEXT);
    ASSERT(log_enabled(LOG_ERROR));
    ASSERT(log_enabled(LOG_WARN));
    ASSERT(!log_enabled(LOG_INFO));
    ASSERT(!log_enabled(LOG_DEBUG));
    capture_begin();
    log_debug("d", LOG_I("n", 1));
    log_info("i", LOG_I("n", 2));
    log_warn("w", LOG_I("n", 3));
    log_error("e", LOG_I("n", 4));
    log_write(LOG_INFO, "direct", NULL, 0); /* filtered even when called directly */
    char *out = capture_end();
    ASSERT(strstr(out, "event=d ") == NULL);
    ASSERT(strstr(out, "event=i ") == NULL);
    ASSERT(strstr(out, "direct") == NULL);
    ASSERT_STR_CONTAINS(out, " level=warn event=w n=3\n");
    ASSERT_STR_CONTAINS(out, " level=error event=e n=4\n");
    free(out);

    log_init(LOG_DEBUG, LOG_FORMAT_TEXT);
    capture_begin();
    log_debug("d", LOG_I("n", 1));
    out = capture_end();
    ASSERT_STR_CONTAINS(out, " level=debug event=d n=1\n");
    free(out);
}

/* log_print(): the stream and format its caller names, whatever the threshold and the format
 * log_init() set; a line all the same (redaction included). */
TEST(log_print_writes_its_format_to_its_stream)
{
    log_init(LOG_ERROR, LOG_FORMAT_TEXT);
    FILE *f = tmpfile();
    ASSERT(f != NULL);
    static const log_kv_t kv[] = {LOG_S("name", "X"), LOG_I("value", 7), LOG_S("v", "sk-abc")};
    log_print(f, LOG_FORMAT_JSON, LOG_INFO, "config", kv, sizeof(kv) / sizeof(kv[0]));
    log_print(f, LOG_FORMAT_TEXT, LOG_DEBUG, "config", kv, 1);
    char buf[512];
    size_t n = (size_t)ftell(f);
    ASSERT(n < sizeof(buf));
    rewind(f);
    ASSERT_EQ(fread(buf, 1, n, f), n);
    buf[n] = '\0';
    fclose(f);
    char *second = strchr(buf, '\n');
    ASSERT(second != NULL);
    *second++ = '\0';
    ASSERT_STR_EQ(after_json_ts(buf), "\",\"level\":\"info\",\"event\":\"config\",\"name\":\"X\","
                                      "\"value\":7,\"v\":\"[redacted]\"}");
    ASSERT_STR_EQ(after_text_ts(second), " level=debug event=config name=X\n");
}

TEST(log_parse_level_and_format)
{
    log_level_t lvl = LOG_ERROR;
    log_format_t fmt = LOG_FORMAT_TEXT;
    ASSERT_EQ(log_level_parse("debug", &lvl), 0);
    ASSERT_EQ(lvl, LOG_DEBUG);
    ASSERT_EQ(log_level_parse("WARN", &lvl), 0);
    ASSERT_EQ(lvl, LOG_WARN);
    ASSERT_EQ(log_level_parse("verbose", &lvl), -1);
    ASSERT_EQ(log_format_parse("json", &fmt), 0);
    ASSERT_EQ(fmt, LOG_FORMAT_JSON);
    ASSERT_EQ(log_format_parse("xml", &fmt), -1);
}

TEST(log_truncates_long_lines)
{
    size_t big = 3 * LOG_TEST_LINE_MAX_BYTES;
    char *plain = malloc(big + 1);
    memset(plain, 'x', big);
    plain[big] = '\0';
    /* 2-byte characters, so a cut in the middle of one would show as invalid UTF-8. */
    char *wide = malloc(big + 1);
    for (size_t i = 0; i + 1 < big; i += 2) {
        wide[i] = '\xC3';
        wide[i + 1] = '\xA9';
    }
    wide[big] = '\0';
    wide[big - 1] = ' '; /* forces quoting in the text format */

    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    capture_begin();
    log_info("big", LOG_S("v", plain), LOG_I("after", 1));
    char *out = capture_end();
    size_t len = strlen(out);
    ASSERT_LE(len, LOG_TEST_LINE_MAX_BYTES);
    ASSERT_GT(len, LOG_TEST_LINE_MAX_BYTES / 2);
    ASSERT_STR_EQ(out + len - 5, "x\xE2\x80\xA6\n");
    ASSERT(strstr(out, "after=") == NULL);
    free(out);

    capture_begin();
    log_info("big", LOG_S("v", wide));
    out = capture_end();
    len = strlen(out);
    ASSERT_LE(len, LOG_TEST_LINE_MAX_BYTES);
    ASSERT_STR_EQ(out + len - 5, "\xE2\x80\xA6\"\n");
    ASSERT(valid_utf8(out));
    free(out);

    log_init(LOG_INFO, LOG_FORMAT_JSON);
    capture_begin();
    log_info("big", LOG_S("v", wide), LOG_I("after", 1));
    out = capture_end();
    len = strlen(out);
    ASSERT_LE(len, LOG_TEST_LINE_MAX_BYTES);
    ASSERT_STR_CONTAINS(out, "\xE2\x80\xA6\",\"truncated\":true}\n");
    ASSERT(valid_utf8(out));
    free(out);

    /* A number that does not fit is dropped whole. */
    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    plain[LOG_TEST_LINE_MAX_BYTES - 120] = '\0';
    capture_begin();
    log_info("big", LOG_S("v", plain), LOG_I("n1", 1234567890123LL), LOG_I("n2", 1234567890123LL),
             LOG_I("n3", 1234567890123LL), LOG_I("n4", 1234567890123LL));
    out = capture_end();
    len = strlen(out);
    ASSERT_LE(len, LOG_TEST_LINE_MAX_BYTES);
    ASSERT_STR_EQ(out + len - 5, " \xE2\x80\xA6\n");
    ASSERT(strstr(out, " n4=") == NULL);
    free(out);

    free(plain);
    free(wide);
}

/* ---- lines from several threads -------------------------------------------------------- */

static pthread_barrier_t start_barrier;

static size_t pad_len(int t, int seq)
{
    return 1 + (size_t)(seq * 37 + t * 1013) % LOG_TEST_PAD_MAX_BYTES;
}

static void *writer_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    char *pad = malloc(LOG_TEST_PAD_MAX_BYTES + 1);
    memset(pad, 'a' + t, LOG_TEST_PAD_MAX_BYTES);
    pthread_barrier_wait(&start_barrier);
    for (int seq = 0; seq < LOG_TEST_LINES; seq++) {
        size_t n = pad_len(t, seq);
        pad[n] = '\0';
        log_info("stress", LOG_I("t", t), LOG_I("seq", seq), LOG_S("pad", pad));
        pad[n] = (char)('a' + t);
    }
    free(pad);
    return NULL;
}

static void *reader_main(void *arg)
{
    return read_all((int)(intptr_t)arg);
}

TEST(log_lines_from_threads_never_interleave)
{
    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    pthread_barrier_init(&start_barrier, NULL, LOG_TEST_THREADS);
    capture_begin();
    pthread_t reader, writers[LOG_TEST_THREADS];
    pthread_create(&reader, NULL, reader_main, (void *)(intptr_t)cap_read_fd);
    for (int t = 0; t < LOG_TEST_THREADS; t++)
        pthread_create(&writers[t], NULL, writer_main, (void *)(intptr_t)t);
    for (int t = 0; t < LOG_TEST_THREADS; t++)
        pthread_join(writers[t], NULL);
    dup2(cap_saved_fd, STDERR_FILENO); /* closes the last write end: the reader sees EOF */
    close(cap_saved_fd);
    void *res;
    pthread_join(reader, &res);
    close(cap_read_fd);
    pthread_barrier_destroy(&start_barrier);

    char *out = res;
    int next_seq[LOG_TEST_THREADS] = {0};
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *p = after_text_ts(line);
        int t = -1, seq = -1, off = 0;
        ASSERT_EQ(sscanf(p, " level=info event=stress t=%d seq=%d pad=%n", &t, &seq, &off), 2);
        ASSERT(off > 0);
        ASSERT(t >= 0 && t < LOG_TEST_THREADS);
        ASSERT_EQ(seq, next_seq[t]);
        next_seq[t]++;
        const char *pad = p + off;
        size_t n = strlen(pad);
        ASSERT_EQ(n, pad_len(t, seq));
        for (size_t i = 0; i < n; i++)
            if (pad[i] != 'a' + t)
                TEST_FAIL_("line of thread %d seq %d has '%c' at %zu", t, seq, pad[i], i);
        lines++;
    }
    ASSERT_EQ(lines, LOG_TEST_THREADS * LOG_TEST_LINES);
    free(out);
}
