/*
 * Small helpers every layer uses: allocation that aborts loudly, the monotonic and wall clocks,
 * container_of, and string helpers.
 */
#ifndef SB_BASE_UTIL_H
#define SB_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdbool.h>

#define NS_PER_MS  1000000ULL
#define NS_PER_SEC 1000000000ULL
#define MS_PER_SEC 1000ULL

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#if defined(__GNUC__)
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#else
#define likely(x)   (x)
#define unlikely(x) (x)
#endif

/* Allocation never fails for callers: out of memory aborts with a message. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC; base/clock.c). Thread: any. */
uint64_t clock_now_ns(void);
/* Wall-clock time in Unix milliseconds. Thread: any. */
uint64_t clock_wall_ms(void);
/*
 * The absolute time ms from now on clock (util.c, the system's clock even where a test fakes
 * clock_now_ns()): the deadline of a sem_timedwait() or pthread_cond_timedwait() (CLOCK_REALTIME,
 * or the clock the condition variable was set to). Thread: any.
 */
void clock_deadline(struct timespec *ts, clockid_t clock, uint64_t ms);

/* Copies at most size-1 bytes of src into dst and always terminates it. Returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t size);

/* True when s (of length len) matches [A-Za-z0-9_-]{min,max}. */
bool str_is_id(const char *s, size_t len, size_t min, size_t max);

/* Code points in a NUL-terminated UTF-8 string (continuation bytes not counted): the unit of
 * the product's text limits (SPEC 14). The string is assumed valid (net checks UTF-8). */
static inline size_t str_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

#endif
