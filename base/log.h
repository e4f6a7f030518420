/*
 * Structured logging (SPEC 10): one line per event on stderr, `key=value` text or JSON.
 *
 *     log_info("ws.open", LOG_S("sid", sid), LOG_I("conn", id));
 *
 * Values of keys that name secrets (token, secret, key, authorization, password) are redacted,
 * and so is any value that looks like an API key or session token (`sk-…`, `ek_…`).
 * Thread: any. A line is formatted on the stack and written with one write(2), so lines from
 * different threads never interleave.
 */
#ifndef SB_BASE_LOG_H
#define SB_BASE_LOG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level_t;
typedef enum { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 } log_format_t;

typedef enum { LOG_KV_STR, LOG_KV_INT, LOG_KV_DBL } log_kv_type_t;

typedef struct log_kv {
    const char *key;
    log_kv_type_t type;
    const char *s;
    long long i;
    double d;
} log_kv_t;

#define LOG_S(k, v) ((log_kv_t){.key = (k), .type = LOG_KV_STR, .s = (v)})
#define LOG_I(k, v) ((log_kv_t){.key = (k), .type = LOG_KV_INT, .i = (long long)(v)})
#define LOG_D(k, v) ((log_kv_t){.key = (k), .type = LOG_KV_DBL, .d = (double)(v)})

/* Sets the threshold and format. Call once at start-up, before threads start. */
void log_init(log_level_t level, log_format_t format);
/* True when a line at this level would be written (cheap; use to skip costly formatting). */
int log_enabled(log_level_t level);
/* Writes one line: time, level, event, then the n pairs. */
void log_write(log_level_t level, const char *event, const log_kv_t *kv, size_t n);
/*
 * Writes one line as log_write() would, but to out, in the given format and whatever the
 * threshold: for a report its caller sends where it chooses and prints in full (the start-up
 * configuration, config_print(), and where the service listens). The line is written and flushed
 * under the lock of log_write(), so it never interleaves with other threads' lines on stderr.
 * Thread: any.
 */
void log_print(FILE *out, log_format_t format, log_level_t level, const char *event,
               const log_kv_t *kv, size_t n);
/* Parses "error|warn|info|debug" / "text|json"; returns 0 or -1. */
int log_level_parse(const char *s, log_level_t *out);
int log_format_parse(const char *s, log_format_t *out);

#define LOG_KVS_(...) ((const log_kv_t[]){__VA_ARGS__})
#define LOG_NKV_(...) (sizeof((const log_kv_t[]){__VA_ARGS__}) / sizeof(log_kv_t))
#define log_at(lvl, ev, ...)                                                                       \
    do {                                                                                           \
        if (log_enabled(lvl))                                                                      \
            log_write(lvl, ev, LOG_KVS_(__VA_ARGS__), LOG_NKV_(__VA_ARGS__));                      \
    } while (0)
#define log_error(ev, ...) log_at(LOG_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_at(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_at(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_at(LOG_DEBUG, ev, __VA_ARGS__)

#endif
