/*
 * Structured log lines on stderr; see log.h.
 *
 * A line is built in a fixed buffer on the caller's stack, so logging never allocates. The buffer
 * keeps LOG_TAIL_RESERVE_BYTES free for what closes a line (a closing quote, the "…" marker, the
 * JSON "truncated" member and the newline): when a piece does not fit, the line is cut there and
 * still ends well-formed. A string value is cut at a character boundary and ends in "…"; a number
 * or key that does not fit is dropped whole with everything after it.
 */
#include "base/log.h"

#include <ck_pr.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "base/util.h"

#define LOG_LINE_MAX_BYTES     8192 /* a whole line, newline included */
#define LOG_TAIL_RESERVE_BYTES 32   /* worst closing sequence is 23 bytes: see line_finish() */
#define LOG_LINE_LIMIT_BYTES   (LOG_LINE_MAX_BYTES - LOG_TAIL_RESERVE_BYTES)
#define LOG_NUM_MAX_BYTES      64 /* "%lld" and "%.15g" need at most 24 */
#define LOG_TS_MAX_BYTES       40 /* "2026-11-22T10:00:00.123Z" is 24 */
#define LOG_UNIT_MAX_BYTES     8  /* longest escape, "\u00XX", plus a terminator */
#define LOG_MS_PER_S           1000

#define LOG_TRUNC_MARK       "\xE2\x80\xA6" /* U+2026 HORIZONTAL ELLIPSIS */
#define LOG_UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD: stands in for a byte that is not UTF-8 */
#define LOG_REDACTED         "[redacted]"

/*
 * The threshold and the format. log_init() stores them before other threads start (thread
 * creation orders the stores before those threads' loads). Relaxed loads are enough: no other
 * memory is published through them, and a later change only needs to be seen eventually.
 */
static int log_level_cur = LOG_INFO;         /* [atomic, any] */
static int log_format_cur = LOG_FORMAT_TEXT; /* [atomic, any] */

/*
 * Held around the write(2) of one line (and log_print()'s fwrite and fflush of one). A line
 * normally goes out in one call, but write() may return short (a line longer than PIPE_BUF into a
 * nearly full pipe, a signal); the lock keeps the rest of that line ahead of other threads' lines.
 * The kernel serialises writers to one pipe or file anyway, so the lock adds no waiting that the
 * system call would not have had.
 */
static pthread_mutex_t log_write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};
static const char *const log_format_names[] = {"text", "json"};

/* A key containing one of these words (any case) has its string value redacted. */
static const char *const log_secret_key_words[] = {"token", "secret", "key", "authorization",
                                                   "password"};

typedef struct log_line {
    char buf[LOG_LINE_MAX_BYTES];
    size_t len;
    bool json;
    bool full;   /* a piece did not fit: nothing more is added except the closing sequence */
    bool marked; /* a cut string value already ends in the "…" marker */
} log_line_t;

/* Appends n bytes if they fit below the limit; otherwise marks the line full and returns false. */
static bool line_put(log_line_t *l, const void *p, size_t n)
{
    if (l->full || l->len > LOG_LINE_LIMIT_BYTES || n > LOG_LINE_LIMIT_BYTES - l->len) {
        l->full = true;
        return false;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
    return true;
}

/* Appends into the reserved tail; only the closing sequence of a line uses this. */
static void line_put_tail(log_line_t *l, const char *s)
{
    size_t n = strlen(s);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/*
 * Appends the n bytes of s. Inside quotes (every JSON string, text values that need them) quote,
 * backslash and control bytes (DEL included) become JSON escapes; an unquoted text value holds
 * none of those but a backslash, which stays literal, as logfmt readers expect. Valid UTF-8
 * passes through and any other byte becomes U+FFFD. Stops at the first character that does not
 * fit and returns false.
 */
static bool line_put_escaped(log_line_t *l, const char *s, size_t n, bool quoted)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char esc[LOG_UNIT_MAX_BYTES];
        const char *unit = s + i;
        size_t unit_len = 1;

        if (c >= 0x80) {
            unit_len = sbuf_utf8_seq_len(s + i, n - i);
            if (unit_len == 0) {
                unit = LOG_UTF8_REPLACEMENT;
                unit_len = sizeof(LOG_UTF8_REPLACEMENT) - 1;
                i++;
            } else {
                i += unit_len;
            }
        } else if (!quoted) {
            i++; /* every ASCII byte of an unquoted text value is literal */
        } else {
            i++;
            if (c == '"' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)c;
                unit = esc;
                unit_len = 2;
            } else if (c == '\n' || c == '\r' || c == '\t') {
                esc[0] = '\\';
                esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
                unit = esc;
                unit_len = 2;
            } else if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                unit = esc;
                unit_len = 6;
            }
        }
        if (!line_put(l, unit, unit_len))
            return false;
    }
    return true;
}

/*
 * True when a text-format value must be quoted: it is empty, or it holds a byte that a key=value
 * reader would split on or misread (space, quote, '=', control bytes).
 */
static bool text_needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
            return true;
    return false;
}

/*
 * Appends a string value, quoted as the format requires; a cut value ends in the marker. Returns
 * false when not even the opening quote fitted, so that the caller can drop the key as well.
 */
static bool line_put_str(log_line_t *l, const char *s)
{
    bool quote = l->json || text_needs_quotes(s);
    if (quote && !line_put(l, "\"", 1))
        return false;
    if (!line_put_escaped(l, s, strlen(s), quote)) {
        line_put_tail(l, LOG_TRUNC_MARK);
        l->marked = true;
    }
    if (quote)
        line_put_tail(l, "\""); /* always fits: the tail reserve covers it */
    return true;
}

static bool key_is_secret(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(log_secret_key_words); i++)
        if (strcasestr(key, log_secret_key_words[i]) != NULL)
            return true;
    return false;
}

/* API keys (sk-…), ephemeral Realtime client secrets (ek_…) and bearer credentials. */
static bool value_is_secret(const char *s)
{
    return strncmp(s, "sk-", 3) == 0 || strncmp(s, "ek_", 3) == 0 ||
           strncasecmp(s, "Bearer ", 7) == 0;
}

/*
 * Appends one key/value pair. Key-based redaction applies to string values only: the secrets we
 * handle are all strings, while counts such as input_tokens (SPEC 14 logs token usage) must stay
 * readable.
 */
static void line_put_field(log_line_t *l, const log_kv_t *kv)
{
    if (l->full)
        return;
    size_t mark = l->len;
    const char *key = kv->key ? kv->key : "";
    bool ok = line_put(l, l->json ? ",\"" : " ", l->json ? 2 : 1) &&
              line_put_escaped(l, key, strlen(key), true) &&
              line_put(l, l->json ? "\":" : "=", l->json ? 2 : 1);
    if (!ok) {
        l->len = mark; /* drop the half-written key; the line ends with the marker */
        return;
    }

    char num[LOG_NUM_MAX_BYTES];
    int n = 0;
    switch (kv->type) {
    case LOG_KV_STR: {
        if (kv->s == NULL && l->json) {
            ok = line_put(l, "null", 4);
            break;
        }
        const char *s = kv->s ? kv->s : "";
        if (*s != '\0' && (key_is_secret(key) || value_is_secret(s)))
            s = LOG_REDACTED;
        ok = line_put_str(l, s);
        break;
    }
    case LOG_KV_INT:
        n = snprintf(num, sizeof(num), "%lld", kv->i);
        ok = line_put(l, num, (size_t)n);
        break;
    case LOG_KV_DBL:
        /* JSON has no NaN or infinities. */
        if (l->json && !isfinite(kv->d))
            n = snprintf(num, sizeof(num), "null");
        else
            n = snprintf(num, sizeof(num), "%.15g", kv->d);
        ok = line_put(l, num, (size_t)n);
        break;
    default:
        ok = line_put(l, "null", 4);
        break;
    }
    if (!ok)
        l->len = mark;
}

/* Writes the UTC time with milliseconds, e.g. 2026-11-22T10:00:00.123Z. */
static void format_ts(char *out, size_t size)
{
    uint64_t ms = clock_wall_ms();
    time_t secs = (time_t)(ms / LOG_MS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03uZ", (unsigned)(ms % LOG_MS_PER_S));
}

/*
 * Closes the line. Worst case (JSON, a cut value): closing quote and marker were already added
 * by line_put_str (4 bytes), then ,"truncated":true (17), } and the newline: 23 bytes in all,
 * inside LOG_TAIL_RESERVE_BYTES.
 */
static void line_finish(log_line_t *l)
{
    if (l->json) {
        if (l->full)
            line_put_tail(l, ",\"truncated\":true");
        line_put_tail(l, "}\n");
    } else {
        if (l->full && !l->marked)
            line_put_tail(l, " " LOG_TRUNC_MARK);
        line_put_tail(l, "\n");
    }
}

static void log_emit(const char *p, size_t n)
{
    int saved_errno = errno; /* callers often log and then inspect errno */
    pthread_mutex_lock(&log_write_lock);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* nowhere to report a failing stderr; drop the rest of the line */
        }
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&log_write_lock);
    errno = saved_errno;
}

void log_init(log_level_t level, log_format_t format)
{
    ck_pr_store_int(&log_level_cur, (int)level);
    ck_pr_store_int(&log_format_cur, (int)format);
}

int log_enabled(log_level_t level)
{
    return (int)level <= ck_pr_load_int(&log_level_cur);
}

/* Builds the whole line (newline included) in l, in JSON or text as json says. */
static void line_build(log_line_t *l, bool json, log_level_t level, const char *event,
                       const log_kv_t *kv, size_t n)
{
    if ((int)level < LOG_ERROR || (int)level > LOG_DEBUG)
        level = LOG_ERROR;
    l->len = 0;
    l->json = json;
    l->full = false;
    l->marked = false;

    char ts[LOG_TS_MAX_BYTES];
    format_ts(ts, sizeof(ts));
    const char *lvl = log_level_names[level];
    if (l->json) {
        line_put(l, "{\"ts\":\"", 7);
        line_put(l, ts, strlen(ts));
        line_put(l, "\",\"level\":\"", 11);
        line_put(l, lvl, strlen(lvl));
        line_put(l, "\",\"event\":", 10);
    } else {
        line_put(l, "ts=", 3);
        line_put(l, ts, strlen(ts));
        line_put(l, " level=", 7);
        line_put(l, lvl, strlen(lvl));
        line_put(l, " event=", 7);
    }
    line_put_str(l, event ? event : "");
    for (size_t i = 0; i < n; i++)
        line_put_field(l, &kv[i]);
    line_finish(l);
}

void log_write(log_level_t level, const char *event, const log_kv_t *kv, size_t n)
{
    if (!log_enabled(level))
        return;
    log_line_t l;
    line_build(&l, ck_pr_load_int(&log_format_cur) == LOG_FORMAT_JSON, level, event, kv, n);
    log_emit(l.buf, l.len);
}

void log_print(FILE *out, log_format_t format, log_level_t level, const char *event,
               const log_kv_t *kv, size_t n)
{
    log_line_t l;
    line_build(&l, format == LOG_FORMAT_JSON, level, event, kv, n);
    int saved_errno = errno;
    pthread_mutex_lock(&log_write_lock);
    fwrite(l.buf, 1, l.len, out);
    fflush(out);
    pthread_mutex_unlock(&log_write_lock);
    errno = saved_errno;
}

int log_level_parse(const char *s, log_level_t *out)
{
    for (size_t i = 0; i < ARRAY_LEN(log_level_names); i++) {
        if (strcasecmp(s, log_level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, log_format_t *out)
{
    for (size_t i = 0; i < ARRAY_LEN(log_format_names); i++) {
        if (strcasecmp(s, log_format_names[i]) == 0) {
            *out = (log_format_t)i;
            return 0;
        }
    }
    return -1;
}
