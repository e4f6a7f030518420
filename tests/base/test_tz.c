/*
 * Time zones from TZif files: offsets against glibc's localtime_r() (this test process is single
 * threaded, so switching TZ here is safe), DST edges, the POSIX footer past 2037, the calendar.
 */
#include "base/tz.h"
#include "base/util.h"
#include "tests/runner.h"

#include <stdlib.h>
#include <time.h>

#define ERR_LEN        256
#define SECS_PER_HOUR  3600
#define SAMPLE_STEP_S  (7 * 3600 + 13 * 60 + 7) /* an odd step so samples fall at all hours */
#define SAMPLE_FROM_S  (-2000000000LL)          /* 1906 */
#define SAMPLE_UNTIL_S 4200000000LL             /* 2103 */

static int32_t libc_offset(const char *zone, int64_t t)
{
    setenv("TZ", zone, 1);
    tzset();
    time_t tt = (time_t)t;
    struct tm tm;
    ASSERT(localtime_r(&tt, &tm) != NULL);
    return (int32_t)tm.tm_gmtoff;
}

static tz_t *load(const char *name)
{
    char err[ERR_LEN] = "";
    tz_t *z = tz_load(name, err, sizeof(err));
    if (z == NULL)
        TEST_FAIL_("tz_load(%s): %s", name, err);
    return z;
}

/* Every sample of two centuries agrees with glibc, which reads the same file. */
TEST(tz_matches_libc)
{
    static const char *const zones[] = {
        "America/Los_Angeles",
        "Europe/Berlin",
        "Australia/Sydney",
        "Asia/Kolkata",
        "America/Sao_Paulo",
        "Pacific/Chatham",
        "UTC",
        "America/St_Johns",
        "Africa/Casablanca",
        "Europe/Dublin",
    };
    for (size_t i = 0; i < ARRAY_LEN(zones); i++) {
        tz_t *z = load(zones[i]);
        for (int64_t t = SAMPLE_FROM_S; t < SAMPLE_UNTIL_S; t += SAMPLE_STEP_S) {
            int32_t mine = tz_offset_s(z, t), libc = libc_offset(zones[i], t);
            if (mine != libc)
                TEST_FAIL_("%s at %lld: %d vs libc %d", zones[i], (long long)t, mine, libc);
        }
        tz_free(z);
    }
}

/* 2026-03-08 02:00 PST = 10:00 UTC: the second before is standard time, the change is daylight. */
TEST(tz_dst_edges)
{
    tz_t *z = load("America/Los_Angeles");
    int64_t spring = tz_days_from_civil(2026, 3, 8) * TZ_SECS_PER_DAY + 10 * SECS_PER_HOUR;
    ASSERT_EQ(tz_offset_s(z, spring - 1), -8 * SECS_PER_HOUR);
    ASSERT_EQ(tz_offset_s(z, spring), -7 * SECS_PER_HOUR);
    /* 2026-11-01 02:00 PDT = 09:00 UTC. */
    int64_t fall = tz_days_from_civil(2026, 11, 1) * TZ_SECS_PER_DAY + 9 * SECS_PER_HOUR;
    ASSERT_EQ(tz_offset_s(z, fall - 1), -7 * SECS_PER_HOUR);
    ASSERT_EQ(tz_offset_s(z, fall), -8 * SECS_PER_HOUR);
    /* Past the file's last transition the footer rules: 2090-07-01 is daylight time. */
    ASSERT_EQ(tz_offset_s(z, tz_days_from_civil(2090, 7, 1) * TZ_SECS_PER_DAY), -7 * SECS_PER_HOUR);
    ASSERT_EQ(tz_offset_s(z, tz_days_from_civil(2090, 12, 1) * TZ_SECS_PER_DAY),
              -8 * SECS_PER_HOUR);
    tz_free(z);
}

TEST(tz_bad_names)
{
    char err[ERR_LEN];
    ASSERT(tz_load("../etc/passwd", err, sizeof(err)) == NULL);
    ASSERT_STR_CONTAINS(err, "not a time zone name");
    ASSERT(tz_load("/etc/passwd", err, sizeof(err)) == NULL);
    ASSERT(tz_load("", err, sizeof(err)) == NULL);
    ASSERT(tz_load("Mars/Olympus_Mons", err, sizeof(err)) == NULL);
    ASSERT_STR_CONTAINS(err, "unknown time zone");
    ASSERT(tz_parse("TZif2", 5, err, sizeof(err)) == NULL);
    ASSERT_STR_CONTAINS(err, "not a TZif file");
}

/* A hand-made v2 file with no transitions and only a footer (like a slim file). */
TEST(tz_footer_only)
{
    uint8_t img[2 * 44 + 6 + 4 + 6 + 4 + 32] = {0};
    size_t n = 0;
    for (int h = 0; h < 2; h++) {
        memcpy(img + n, "TZif2", 5);
        img[n + 39] = 1; /* typecnt */
        img[n + 43] = 4; /* charcnt */
        n += 44;
        n += 6; /* ttinfo: offset 0 */
        memcpy(img + n, "UTC", 4);
        n += 4;
    }
    const char *footer = "\nCET-1CEST,M3.5.0,M10.5.0/3\n";
    memcpy(img + n, footer, strlen(footer));
    n += strlen(footer);
    char err[ERR_LEN] = "";
    tz_t *z = tz_parse(img, n, err, sizeof(err));
    if (z == NULL)
        TEST_FAIL_("tz_parse: %s", err);
    ASSERT_EQ(tz_offset_s(z, tz_days_from_civil(2031, 1, 10) * TZ_SECS_PER_DAY), SECS_PER_HOUR);
    ASSERT_EQ(tz_offset_s(z, tz_days_from_civil(2031, 7, 10) * TZ_SECS_PER_DAY), 2 * SECS_PER_HOUR);
    tz_free(z);
}

TEST(tz_calendar)
{
    ASSERT_EQ(tz_days_from_civil(1970, 1, 1), 0);
    ASSERT_EQ(tz_days_from_civil(2000, 3, 1), 11017);
    ASSERT_EQ(tz_days_from_civil(1969, 12, 31), -1);
    ASSERT_EQ(tz_weekday(0), 3);                               /* Thursday */
    ASSERT_EQ(tz_weekday(tz_days_from_civil(2026, 12, 6)), 6); /* a Sunday */
    ASSERT_EQ(tz_weekday(tz_days_from_civil(1900, 1, 1)), 0);  /* a Monday */
    for (int64_t d = -800000; d < 800000; d += 37) {
        int64_t y;
        int m, dd;
        tz_civil_from_days(d, &y, &m, &dd);
        ASSERT_EQ(tz_days_from_civil(y, m, dd), d);
        ASSERT(dd >= 1 && dd <= tz_days_in_month(y, m));
    }
    ASSERT_EQ(tz_days_in_month(2024, 2), 29);
    ASSERT_EQ(tz_days_in_month(2100, 2), 28);
    ASSERT_EQ(tz_days_in_month(2000, 2), 29);
}
