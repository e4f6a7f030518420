/*
 * tz: UTC offsets of an IANA time zone, read from the system's TZif files (RFC 8536), and the
 * proleptic Gregorian calendar in days since 1970-01-01.
 *
 * Why not localtime_r(): the zone it uses is the process-global TZ, and switching it (setenv +
 * tzset) races with every other thread that reads the environment or the zone (libcurl, libc's
 * own time functions). A loaded tz_t is immutable, so any number of threads may ask it for
 * offsets at once, and nothing global is touched.
 *
 * Coverage: version 1, 2 and 3 files; times before the first transition use the first local
 * time type; times after the last use the POSIX TZ string of the footer (Jn, n and Mm.w.d rules,
 * transition times from -167 to 167 hours, as RFC 8536 allows), so slim files and years after
 * 2037 are right too. Leap-second records are skipped (zoneinfo/ files have none; right/ ones
 * are not civil time).
 *
 * CONTRACT
 *   tz_load() and tz_free(): any thread, one call per object. tz_offset_s() and the calendar
 *   functions: any thread, concurrently (pure functions of immutable data).
 */
#ifndef SB_BASE_TZ_H
#define SB_BASE_TZ_H

#include <stddef.h>
#include <stdint.h>

#define TZ_DIR_DEFAULT  "/usr/share/zoneinfo"
#define TZ_SECS_PER_DAY 86400

typedef struct tz tz_t;

/*
 * Loads the zone called name ("America/Los_Angeles", "UTC") from $TZDIR, else TZ_DIR_DEFAULT.
 * Returns the zone, or NULL with a message in err: the name is not a zone name (empty, absolute,
 * or with a ".." segment), the file is missing, or it is not a valid TZif file.
 */
tz_t *tz_load(const char *name, char *err, size_t errlen);
/* Parses a TZif image already in memory (tests). Same result as tz_load(). */
tz_t *tz_parse(const void *data, size_t len, char *err, size_t errlen);
void tz_free(tz_t *z);

/* The offset of local time from UTC, in seconds east, at Unix time t_s. */
int32_t tz_offset_s(const tz_t *z, int64_t t_s);

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12, d 1..31; not range-checked). */
int64_t tz_days_from_civil(int64_t y, int m, int d);
/* The civil date of days since 1970-01-01. */
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Day of the week of days since 1970-01-01: 0 = Monday ... 6 = Sunday. */
int tz_weekday(int64_t days);
/* Days in month m (1..12) of year y. */
int tz_days_in_month(int64_t y, int m);

#endif
