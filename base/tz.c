/* Time zones from TZif files and the civil calendar; see the notes in tz.h. */
#include "base/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define TZ_FILE_MAX_BYTES  (1024 * 1024) /* real files are a few KiB */
#define TZ_HEADER_BYTES    44
#define TZ_NAME_MAX        255
#define TZ_PATH_MAX        512
#define SECS_PER_HOUR      3600
#define SECS_PER_MIN       60
#define POSIX_HOURS_MAX    167                 /* RFC 8536 3.3.1: transition times within +-167 h */
#define POSIX_OFF_HOURS    24                  /* POSIX offsets are within +-24 h */
#define DEFAULT_RULE_S     (2 * SECS_PER_HOUR) /* a rule's time when it gives none: 02:00 */
#define DAYS_PER_WEEK      7
#define WEEKDAY_1970_01_01 3 /* Thursday, Monday = 0 */

/* One end of daylight time in a POSIX TZ string. */
typedef struct tz_rule {
    char kind;      /* 'J' (Jn, 1..365, no Feb 29), 'D' (n, 0..365) or 'M' (Mm.w.d) */
    int day;        /* J and D */
    int month;      /* M: 1..12 */
    int week;       /* M: 1..5, 5 = the last */
    int wday;       /* M: 0 = Sunday */
    int32_t time_s; /* local time of the change, may be negative or past 24 h */
} tz_rule_t;

/* The footer: the rule for times after the last transition. */
typedef struct tz_posix {
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    bool has_dst;
    tz_rule_t start, end;
} tz_posix_t;

struct tz {
    int64_t *trans; /* n_trans transition times, ascending */
    uint8_t *idx;   /* the local time type in force from each transition */
    int32_t *offs;  /* n_types offsets, seconds east */
    size_t n_trans;
    size_t n_types;
    bool has_footer;
    tz_posix_t footer;
};

/* ---- Calendar (H. Hinnant's days_from_civil / civil_from_days) ------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_weekday(int64_t days)
{
    return (int)((days % DAYS_PER_WEEK + DAYS_PER_WEEK + WEEKDAY_1970_01_01) % DAYS_PER_WEEK);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ---- POSIX TZ strings ("PST8PDT,M3.2.0,M11.1.0", "<+0330>-3:30") ---------------------------- */

static bool parse_name(const char **sp)
{
    const char *s = *sp;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (e == NULL || e == s + 1)
            return false;
        *sp = e + 1;
        return true;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    *sp = s;
    return s - b >= 3;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; returns seconds (sign as written). */
static bool parse_hms(const char **sp, int max_h, int32_t *out)
{
    const char *s = *sp;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return false;
        int v = 0, nd = 0;
        while (*s >= '0' && *s <= '9' && nd < 3) {
            v = v * 10 + (*s++ - '0');
            nd++;
        }
        part[i] = v;
    }
    if (part[0] > max_h || part[1] > 59 || part[2] > 59)
        return false;
    *out = sign * (part[0] * SECS_PER_HOUR + part[1] * SECS_PER_MIN + part[2]);
    *sp = s;
    return true;
}

static bool parse_int(const char **sp, int lo, int hi, int *out)
{
    const char *s = *sp;
    int v = 0, nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 4) {
        v = v * 10 + (*s++ - '0');
        nd++;
    }
    if (nd == 0 || v < lo || v > hi)
        return false;
    *out = v;
    *sp = s;
    return true;
}

static bool parse_rule(const char **sp, tz_rule_t *r)
{
    const char *s = *sp;
    bool ok;
    memset(r, 0, sizeof(*r));
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        ok = parse_int(&s, 1, 365, &r->day);
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        ok = parse_int(&s, 1, 12, &r->month) && *s++ == '.' && parse_int(&s, 1, 5, &r->week) &&
             *s++ == '.' && parse_int(&s, 0, 6, &r->wday);
    } else {
        r->kind = 'D';
        ok = parse_int(&s, 0, 365, &r->day);
    }
    if (!ok)
        return false;
    r->time_s = DEFAULT_RULE_S;
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, POSIX_HOURS_MAX, &r->time_s))
            return false;
    }
    *sp = s;
    return true;
}

/* Parses the footer string (without its newlines). An empty string leaves has_footer false. */
static bool parse_posix(const char *s, tz_t *z)
{
    tz_posix_t *p = &z->footer;
    int32_t v;
    if (*s == '\0')
        return true;
    if (!parse_name(&s) || !parse_hms(&s, POSIX_OFF_HOURS, &v))
        return false;
    p->std_off = -v; /* POSIX counts hours west of UTC */
    p->dst_off = p->std_off;
    z->has_footer = true;
    if (*s == '\0')
        return true;
    if (!parse_name(&s))
        return false;
    p->has_dst = true;
    p->dst_off = p->std_off + SECS_PER_HOUR;
    if (*s != ',' && *s != '\0') {
        if (!parse_hms(&s, POSIX_OFF_HOURS, &v))
            return false;
        p->dst_off = -v;
    }
    if (*s == '\0') {
        /* No rules: POSIX leaves them to the implementation; glibc uses the US ones. */
        s = ",M3.2.0,M11.1.0";
    }
    if (*s++ != ',' || !parse_rule(&s, &p->start) || *s++ != ',' || !parse_rule(&s, &p->end))
        return false;
    return *s == '\0';
}

/* The day (since 1970-01-01) on which rule r falls in year y. */
static int64_t rule_day(const tz_rule_t *r, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->day - 1 + (is_leap(y) && r->day >= 60);
    if (r->kind == 'D')
        return jan1 + r->day;
    int64_t first = tz_days_from_civil(y, r->month, 1);
    int wd_first = (tz_weekday(first) + 1) % DAYS_PER_WEEK; /* Sunday = 0 */
    int day = (r->wday - wd_first + DAYS_PER_WEEK) % DAYS_PER_WEEK + DAYS_PER_WEEK * (r->week - 1);
    while (day >= tz_days_in_month(y, r->month))
        day -= DAYS_PER_WEEK;
    return first + day;
}

static int32_t posix_offset(const tz_posix_t *p, int64_t t)
{
    if (!p->has_dst)
        return p->std_off;
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(t + p->std_off, TZ_SECS_PER_DAY), &y, &m, &d);
    /* The start happens in standard time, the end in daylight time. */
    int64_t start = rule_day(&p->start, y) * TZ_SECS_PER_DAY + p->start.time_s - p->std_off;
    int64_t end = rule_day(&p->end, y) * TZ_SECS_PER_DAY + p->end.time_s - p->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? p->dst_off : p->std_off;
}

/* ---- TZif ------------------------------------------------------------------------------------ */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts_t;

static bool read_header(const uint8_t *p, size_t avail, char *version, tzif_counts_t *c)
{
    if (avail < TZ_HEADER_BYTES || memcmp(p, "TZif", 4) != 0)
        return false;
    *version = (char)p[4];
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    return c->type >= 1 && c->type <= 256 && c->time <= TZ_FILE_MAX_BYTES &&
           c->leap <= TZ_FILE_MAX_BYTES && c->chars <= TZ_FILE_MAX_BYTES && c->isut <= 256 &&
           c->isstd <= 256;
}

static size_t block_len(const tzif_counts_t *c, size_t tsize)
{
    return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chars +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

static tz_t *fail(tz_t *z, char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    tz_free(z);
    return NULL;
}

tz_t *tz_parse(const void *data, size_t len, char *err, size_t errlen)
{
    const uint8_t *p = data;
    char version;
    tzif_counts_t c;
    size_t tsize = 4;
    if (!read_header(p, len, &version, &c))
        return fail(NULL, err, errlen, "not a TZif file");
    if (version >= '2') {
        /* Skip the 32-bit block: the 64-bit one after it is complete. */
        size_t skip = TZ_HEADER_BYTES + block_len(&c, 4);
        if (skip > len || !read_header(p + skip, len - skip, &version, &c))
            return fail(NULL, err, errlen, "truncated TZif file");
        p += skip;
        len -= skip;
        tsize = 8;
    }
    size_t need = TZ_HEADER_BYTES + block_len(&c, tsize);
    if (need > len)
        return fail(NULL, err, errlen, "truncated TZif file");
    tz_t *z = xcalloc(1, sizeof(*z));
    z->n_trans = c.time;
    z->n_types = c.type;
    z->trans = xcalloc(c.time + 1, sizeof(*z->trans));
    z->idx = xcalloc(c.time + 1, 1);
    z->offs = xcalloc(c.type, sizeof(*z->offs));
    const uint8_t *q = p + TZ_HEADER_BYTES;
    for (uint32_t i = 0; i < c.time; i++, q += tsize) {
        z->trans[i] = tsize == 8 ? be64(q) : (int32_t)be32(q);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return fail(z, err, errlen, "TZif transitions out of order");
    }
    for (uint32_t i = 0; i < c.time; i++, q++) {
        z->idx[i] = *q;
        if (*q >= c.type)
            return fail(z, err, errlen, "TZif transition names a missing type");
    }
    for (uint32_t i = 0; i < c.type; i++, q += 6)
        z->offs[i] = (int32_t)be32(q);
    if (tsize == 8) {
        /* The footer: "\n<POSIX TZ string>\n". */
        const char *f = (const char *)p + need;
        size_t flen = len - need;
        const char *nl = flen > 1 && f[0] == '\n' ? memchr(f + 1, '\n', flen - 1) : NULL;
        if (nl == NULL)
            return fail(z, err, errlen, "TZif footer missing");
        char *footer = xstrndup(f + 1, (size_t)(nl - f - 1));
        bool ok = parse_posix(footer, z);
        free(footer);
        if (!ok)
            return fail(z, err, errlen, "TZif footer is not a POSIX TZ string");
    }
    return z;
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/')
        return false;
    for (const char *s = name; *s; s++) {
        if (*s == '.' && s[1] == '.' && (s == name || s[-1] == '/') &&
            (s[2] == '/' || s[2] == '\0'))
            return false;
    }
    return true;
}

tz_t *tz_load(const char *name, char *err, size_t errlen)
{
    if (name == NULL || !name_ok(name)) {
        snprintf(err, errlen, "\"%s\" is not a time zone name", name ? name : "");
        return NULL;
    }
    const char *dir = getenv("TZDIR");
    char path[TZ_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : TZ_DIR_DEFAULT, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "unknown time zone \"%s\" (%s: %s)", name, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    ssize_t got = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= TZ_FILE_MAX_BYTES) {
        buf = xmalloc((size_t)st.st_size + 1);
        got = read(fd, buf, (size_t)st.st_size);
    }
    close(fd);
    tz_t *z = NULL;
    if (got != (ssize_t)st.st_size || got < 0) {
        snprintf(err, errlen, "time zone \"%s\": cannot read %s", name, path);
    } else {
        char why[128];
        z = tz_parse(buf, (size_t)got, why, sizeof(why));
        if (z == NULL)
            snprintf(err, errlen, "time zone \"%s\": %s", name, why);
    }
    free(buf);
    return z;
}

void tz_free(tz_t *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->idx);
    free(z->offs);
    free(z);
}

int32_t tz_offset_s(const tz_t *z, int64_t t_s)
{
    if (z->n_trans == 0)
        return z->has_footer ? posix_offset(&z->footer, t_s) : z->offs[0];
    if (t_s < z->trans[0])
        return z->offs[0]; /* RFC 8536: before the first transition, type 0 */
    if (t_s >= z->trans[z->n_trans - 1] && z->has_footer)
        return posix_offset(&z->footer, t_s);
    /* The last transition at or before t_s. */
    size_t lo = 0, hi = z->n_trans;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t_s)
            lo = mid;
        else
            hi = mid;
    }
    return z->offs[z->idx[lo]];
}
