/*
 * booking: the built-in tools checkAvailability, bookAppointment and lookupCustomer (seed 002's
 * names and arguments; SPEC 7, 14), on the store's SQLite connection or on PostgreSQL.
 *
 * The shop is one resource: appointments on a day never overlap. Dates ("YYYY-MM-DD") and
 * times ("HH:MM", 24 h, on a SLOT_STEP_MIN grid from midnight) are wall-clock values in the
 * company time zone, stored as they are (date, minutes after midnight), so a DST change never
 * moves an appointment. Only "now" needs the zone: the offset at now_ms comes from the zone's
 * TZif file (base/tz.h), never from the process-global TZ.
 *
 * Decisions:
 *   - A closed day is not an error: checkAvailability answers "closed": true and no slots;
 *     bookAppointment on it is outside_hours.
 *   - A day before today is invalid_date; a time today that has already begun is invalid_time.
 *   - Phones are compared by their digits only; 7 to 15 digits are accepted (E.164's maximum).
 *
 * One tool run, two databases. A run is a booking_step_t: its start reads and checks the
 * arguments and either answers at once (an error, a closed day) or names the one database
 * operation it needs (booking_op_t: a day's busy times, a booking, a customer's appointments).
 * The operation's answer, rows of texts, finishes the run, or names another booking when the
 * confirmation number drawn exists already. booking_run() runs the operations on SQLite
 * synchronously (bookingsql.c); bookingpg.c sends them to PostgreSQL and feeds the answers back
 * when they come.
 * The checks, the slots, the numbers and the output JSON are this file's, for both.
 *
 * No double booking: on SQLite a booking's check and insert share one write transaction
 * (bookingsql.c); on PostgreSQL an exclusion constraint on the time range refuses an overlap
 * across nodes (bookingpg.c).
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/store/store.h"
#include "agents/store/store_int.h"
#include "agents/tools/tools.h"
#include "base/log.h"
#include "base/tz.h"
#include "base/util.h"

#define SLOT_STEP_MIN      30
#define MIN_PER_HOUR       60
#define MIN_PER_DAY        (24 * MIN_PER_HOUR)
#define MS_PER_S           1000
#define SECS_PER_MIN       60
#define PHONE_DIGITS_MIN   7
#define PHONE_DIGITS_MAX   15
#define CONFIRM_PREFIX_MAX 3 /* initials of the company: "PAL" for Prime Auto Lab */
#define CONFIRM_CHARS      6
#define CONFIRM_SIZE       (CONFIRM_PREFIX_MAX + 1 + CONFIRM_CHARS + 1) /* "PAL-7Q2K9X" and NUL */
#define CONFIRM_TRIES      4    /* a random confirmation number that exists already: draw again */
#define TEXT_MAX_BYTES     2000 /* customerName, notes */
#define DATE_LEN           10   /* YYYY-MM-DD */
#define HHMM_SIZE          6    /* "HH:MM" and its NUL */
#define BUSY_COLS          2    /* BOOKING_OP_BUSY's answer: start_min, end_min */
#define LOOKUP_COLS        8    /* BOOKING_OP_LOOKUP's: name, phone, then the appointment's 6 */

static const char confirm_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no 0/O, 1/I */

/* The answers of BOOKING_OP_BOOK (store_int.h). */
static const char BOOKED[] = BOOKING_BOOKED;
static const char TAKEN[] = BOOKING_TAKEN;
static const char CONFIRMATION_TAKEN[] = BOOKING_CONFIRMATION_TAKEN;


struct booking {
    booking_sql_t *sql; /* the SQLite statements; NULL: the tools of a PostgreSQL store */
    const agentcfg_t *ac;
    char tenant[TENANT_ID_MAX + 1]; /* whose calendar and customers (SPEC 16) */
    tz_t *tz;
    char prefix[CONFIRM_PREFIX_MAX + 1];
};

/*
 * A tool run between its start and its output. It keeps copies of what its answer needs, never
 * a pointer into the booking_t or its config (bookingpg.c's runs outlive a reload).
 */
struct booking_step {
    booking_op_t op; /* what the run waits for; its strings are the step's own */
    char tenant[TENANT_ID_MAX + 1];
    char digits[PHONE_DIGITS_MAX + 1]; /* bookAppointment, lookupCustomer */
    char *date;                        /* checkAvailability, bookAppointment */
    int duration_min;                  /* the service's */
    /* checkAvailability */
    cJSON *avail; /* the answer but its slots */
    int lo, hi;   /* slots start at or after lo and end by hi (minutes) */
    /* bookAppointment: the arguments, the service's configured name, company.timezone */
    char *time, *name, *phone, *notes, *service, *time_zone;
    char prefix[CONFIRM_PREFIX_MAX + 1];
    char confirm[CONFIRM_SIZE];
    int attempts; /* confirmation numbers drawn */
};

/* "Today" and the minute of the day, in the company time zone. */
typedef struct local_now {
    int64_t day; /* days since 1970-01-01 */
    int min;     /* minutes after local midnight */
} local_now_t;

/* ---- Results -------------------------------------------------------------------------------- */

/* {"error":{"code","message"[,extra_key: extra]}}; takes extra (may be NULL). */
static char *error_json(const char *code, const char *msg, const char *extra_key, cJSON *extra)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    if (extra)
        cJSON_AddItemToObject(e, extra_key, extra);
    return store_json_take(root);
}

char *booking_error(const char *code, const char *message, bool *is_error)
{
    *is_error = true;
    return error_json(code, message, NULL, NULL);
}

__attribute__((format(printf, 3, 4))) static char *tool_error(bool *is_error, const char *code,
                                                              const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return booking_error(code, msg, is_error);
}

static char *internal_error(bool *is_error)
{
    return booking_error("internal_error", "the booking system failed", is_error);
}

/* An answer that is not what the operation answers: a bug on one side or the other. */
static char *bad_answer(const booking_step_t *st, const booking_rows_t *rows, bool *is_error)
{
    log_error("booking.bad_answer", LOG_I("op", st->op.kind), LOG_I("rows", rows->nrows),
              LOG_I("cols", rows->ncols));
    return internal_error(is_error);
}

/* Minutes after midnight (0..MIN_PER_DAY) as "HH:MM". */
static void fmt_hhmm(char out[HHMM_SIZE], int min)
{
    unsigned m = (unsigned)min % (MIN_PER_DAY + 1);
    snprintf(out, HHMM_SIZE, "%02u:%02u", m / MIN_PER_HOUR, m % MIN_PER_HOUR);
}

static void add_hhmm(cJSON *obj, const char *key, int min)
{
    char t[HHMM_SIZE];
    fmt_hhmm(t, min);
    cJSON_AddStringToObject(obj, key, t);
}

/* ---- Answers -------------------------------------------------------------------------------- */

static const char *cell(const booking_rows_t *r, int row, int col)
{
    return r->values[(size_t)row * (size_t)r->ncols + (size_t)col];
}

/* A minute of the day, 0..MIN_PER_DAY, from an answer's text. */
static bool cell_min(const booking_rows_t *r, int row, int col, int *out)
{
    const char *s = cell(r, row, col);
    char *end;
    if (s == NULL)
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < 0 || v > MIN_PER_DAY)
        return false;
    *out = (int)v;
    return true;
}

/* ---- Parsing the arguments ------------------------------------------------------------------ */

/*
 * Reads the string members keys[0..n-1] of args into *dst[i] (trimmed copies; NULL when absent,
 * null or blank). Returns false when one is not a string or one of the first n_required is
 * missing; the caller frees with free_args() either way.
 */
static bool read_args(const cJSON *args, const char *const *keys, char **const *dst, size_t n,
                      size_t n_required)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        *dst[i] = NULL;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, keys[i]);
        if (v != NULL && !cJSON_IsNull(v) && !cJSON_IsString(v))
            ok = false;
        if (!cJSON_IsString(v))
            continue;
        const char *s = v->valuestring;
        while (isspace((unsigned char)*s))
            s++;
        size_t len = strlen(s);
        while (len > 0 && isspace((unsigned char)s[len - 1]))
            len--;
        *dst[i] = len ? xstrndup(s, len) : NULL;
    }
    for (size_t i = 0; i < n_required; i++)
        ok = ok && *dst[i] != NULL;
    return ok;
}

static void free_args(char **const *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(*dst[i]);
}

static bool digits_at(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" with a real month and day -> days since 1970-01-01. */
static bool parse_date(const char *s, int64_t *day)
{
    int y, m, d;
    if (strlen(s) != DATE_LEN || s[4] != '-' || s[7] != '-' || !digits_at(s, 4, &y) ||
        !digits_at(s + 5, 2, &m) || !digits_at(s + 8, 2, &d))
        return false;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > tz_days_in_month(y, m))
        return false;
    *day = tz_days_from_civil(y, m, d);
    return true;
}

/* "HH:MM" (or "H:MM", or with ":00" seconds) -> minutes after midnight; "24:00" is the end. */
static bool parse_hhmm(const char *s, int *min)
{
    int h, m, sec = 0;
    size_t n = strlen(s);
    int hl = (n >= 2 && s[1] == ':') ? 1 : 2;
    size_t rest = n - (size_t)hl;
    if (n < 4 || s[hl] != ':' || !digits_at(s, hl, &h) || !digits_at(s + hl + 1, 2, &m))
        return false;
    if (rest == 6 && (s[hl + 3] != ':' || !digits_at(s + hl + 4, 2, &sec) || sec != 0))
        return false;
    if (rest != 3 && rest != 6)
        return false;
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return false;
    *min = h * MIN_PER_HOUR + m;
    return true;
}

/* The configured service called name, ignoring case and surrounding blanks; NULL when none. */
static const agent_service_t *find_service(const agentcfg_t *ac, const char *name)
{
    for (size_t i = 0; i < ac->n_services; i++)
        if (strcasecmp(ac->services[i].name, name) == 0)
            return &ac->services[i];
    return NULL;
}

static char *unknown_service(const booking_t *b, const char *name, bool *is_error)
{
    cJSON *valid = cJSON_CreateArray();
    for (size_t i = 0; i < b->ac->n_services; i++)
        cJSON_AddItemToArray(valid, cJSON_CreateString(b->ac->services[i].name));
    char msg[TEXT_MAX_BYTES + 64];
    snprintf(msg, sizeof(msg), "\"%s\" is not one of our services (see \"valid\")", name);
    *is_error = true;
    return error_json("unknown_service", msg, "valid", valid);
}

/* Keeps the digits of phone; returns their count (past out's room only counts). */
static size_t phone_digits(const char *phone, char out[PHONE_DIGITS_MAX + 1])
{
    size_t n = 0;
    for (const char *p = phone; *p; p++) {
        if (isdigit((unsigned char)*p)) {
            if (n < PHONE_DIGITS_MAX)
                out[n] = *p;
            n++;
        }
    }
    out[n < PHONE_DIGITS_MAX ? n : PHONE_DIGITS_MAX] = '\0';
    return n;
}

static local_now_t local_now(const booking_t *b, int64_t now_ms)
{
    int64_t s = now_ms / MS_PER_S;
    int64_t local = s + tz_offset_s(b->tz, s);
    int64_t day = local / TZ_SECS_PER_DAY - (local % TZ_SECS_PER_DAY < 0);
    local_now_t n = {day, (int)((local - day * TZ_SECS_PER_DAY) / SECS_PER_MIN)};
    return n;
}

/* ---- checkAvailability ---------------------------------------------------------------------- */

typedef struct avail_req {
    char *date, *service, *start, *end, *tz;
} avail_req_t;

/* Every check, then the answer but its slots; a closed day's answer is whole. */
static char *availability_start(const booking_t *b, booking_step_t *st, const avail_req_t *r,
                                int64_t now_ms, bool *is_error)
{
    int64_t day;
    int lo = 0, hi = MIN_PER_DAY;
    if (!parse_date(r->date, &day))
        return tool_error(is_error, "invalid_date", "date must be YYYY-MM-DD, got \"%s\"", r->date);
    if ((r->start && !parse_hhmm(r->start, &lo)) || (r->end && !parse_hhmm(r->end, &hi)))
        return tool_error(is_error, "invalid_time",
                          "start and end must be HH:MM (24-hour, business local time)");
    const agent_service_t *svc = find_service(b->ac, r->service);
    if (svc == NULL)
        return unknown_service(b, r->service, is_error);
    local_now_t now = local_now(b, now_ms);
    if (day < now.day)
        return tool_error(is_error, "invalid_date", "%s is in the past", r->date);

    const agent_hours_t *h = &b->ac->hours[tz_weekday(day)];
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "date", r->date);
    cJSON_AddStringToObject(res, "serviceType", svc->name);
    cJSON_AddNumberToObject(res, "durationMin", svc->duration_min);
    cJSON_AddStringToObject(res, "timeZone", b->ac->company_timezone);
    cJSON_AddArrayToObject(res, "slots");
    if (!h->open) {
        cJSON_AddBoolToObject(res, "closed", true);
        *is_error = false;
        return store_json_take(res);
    }
    add_hhmm(res, "opens", h->open_min);
    add_hhmm(res, "closes", h->close_min);
    if (lo < h->open_min)
        lo = h->open_min;
    if (hi > h->close_min)
        hi = h->close_min;
    if (day == now.day && lo <= now.min)
        lo = now.min + 1; /* a slot that has begun is gone */
    st->avail = res;
    st->lo = lo;
    st->hi = hi;
    st->duration_min = svc->duration_min;
    st->date = xstrdup(r->date);
    st->op.kind = BOOKING_OP_BUSY;
    st->op.date = st->date;
    return NULL;
}

static bool busy_overlaps(int (*busy)[2], int n, int start, int end)
{
    for (int i = 0; i < n; i++)
        if (busy[i][0] < end && busy[i][1] > start)
            return true;
    return false;
}

/* The slots on the grid between lo and hi that overlap none of the day's appointments. */
static char *availability_answer(booking_step_t *st, const booking_rows_t *rows, bool *is_error)
{
    if (rows->nrows > 0 && rows->ncols != BUSY_COLS)
        return bad_answer(st, rows, is_error);
    int(*busy)[2] = xcalloc((size_t)rows->nrows + 1, sizeof(*busy));
    for (int i = 0; i < rows->nrows; i++) {
        if (!cell_min(rows, i, 0, &busy[i][0]) || !cell_min(rows, i, 1, &busy[i][1])) {
            free(busy);
            return bad_answer(st, rows, is_error);
        }
    }
    cJSON *slots = cJSON_GetObjectItemCaseSensitive(st->avail, "slots");
    int first = (st->lo + SLOT_STEP_MIN - 1) / SLOT_STEP_MIN * SLOT_STEP_MIN;
    for (int t = first; t + st->duration_min <= st->hi; t += SLOT_STEP_MIN) {
        if (busy_overlaps(busy, rows->nrows, t, t + st->duration_min))
            continue;
        char hhmm[HHMM_SIZE];
        fmt_hhmm(hhmm, t);
        cJSON_AddItemToArray(slots, cJSON_CreateString(hhmm));
    }
    free(busy);
    cJSON *res = st->avail;
    st->avail = NULL;
    *is_error = false;
    return store_json_take(res);
}

static char *check_availability(const booking_t *b, booking_step_t *st, const cJSON *args,
                                int64_t now_ms, bool *is_error)
{
    static const char *const keys[] = {"date", "serviceType", "start", "end", "timeZone"};
    avail_req_t r;
    char **const dst[] = {&r.date, &r.service, &r.start, &r.end, &r.tz};
    char *out = read_args(args, keys, dst, ARRAY_LEN(dst), 2)
                    ? availability_start(b, st, &r, now_ms, is_error)
                    : tool_error(is_error, "invalid_arguments",
                                 "checkAvailability needs date (YYYY-MM-DD) and serviceType; "
                                 "start, end (HH:MM) and timeZone are optional strings");
    free_args(dst, ARRAY_LEN(dst));
    return out;
}

/* ---- bookAppointment ------------------------------------------------------------------------ */

typedef struct book_req {
    char *date, *time, *name, *phone, *service, *notes;
    int64_t day;
    int start;
    const agent_service_t *svc;
    char digits[PHONE_DIGITS_MAX + 1];
} book_req_t;

/* Every check that needs no database, in the order the tool reports them. */
static char *book_validate(const booking_t *b, book_req_t *r, int64_t now_ms, bool *is_error)
{
    if (!parse_date(r->date, &r->day))
        return tool_error(is_error, "invalid_date", "date must be YYYY-MM-DD, got \"%s\"", r->date);
    if (!parse_hhmm(r->time, &r->start) || r->start % SLOT_STEP_MIN != 0)
        return tool_error(is_error, "invalid_time",
                          "time must be HH:MM (24-hour) on the %d-minute grid, got \"%s\"",
                          SLOT_STEP_MIN, r->time);
    r->svc = find_service(b->ac, r->service);
    if (r->svc == NULL)
        return unknown_service(b, r->service, is_error);
    size_t nd = phone_digits(r->phone, r->digits);
    if (nd < PHONE_DIGITS_MIN || nd > PHONE_DIGITS_MAX)
        return tool_error(is_error, "invalid_phone", "customerPhone needs %d to %d digits, got %zu",
                          PHONE_DIGITS_MIN, PHONE_DIGITS_MAX, nd);
    if (strlen(r->name) > TEXT_MAX_BYTES || (r->notes && strlen(r->notes) > TEXT_MAX_BYTES))
        return tool_error(is_error, "invalid_arguments",
                          "customerName and notes are limited to %d bytes", TEXT_MAX_BYTES);
    local_now_t now = local_now(b, now_ms);
    if (r->day < now.day)
        return tool_error(is_error, "invalid_date", "%s is in the past", r->date);
    if (r->day == now.day && r->start <= now.min)
        return tool_error(is_error, "invalid_time", "%s today has already passed", r->time);
    const agent_hours_t *h = &b->ac->hours[tz_weekday(r->day)];
    if (!h->open)
        return tool_error(is_error, "outside_hours", "we are closed on %s", r->date);
    if (r->start < h->open_min || r->start + r->svc->duration_min > h->close_min) {
        char o[HHMM_SIZE], c[HHMM_SIZE];
        fmt_hhmm(o, h->open_min);
        fmt_hhmm(c, h->close_min);
        return tool_error(is_error, "outside_hours",
                          "%s (%d min) must start at or after %s and end by %s on %s", r->svc->name,
                          r->svc->duration_min, o, c, r->date);
    }
    return NULL;
}

/* Draws the run's next confirmation number: prefix, '-', CONFIRM_CHARS random characters. */
static void new_confirmation(booking_step_t *st)
{
    unsigned char rnd[CONFIRM_CHARS];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        abort(); /* the CSPRNG cannot fail once seeded; if it does, stop loudly */
    char code[CONFIRM_CHARS + 1];
    for (int i = 0; i < CONFIRM_CHARS; i++)
        code[i] = confirm_alphabet[rnd[i] % (sizeof(confirm_alphabet) - 1)];
    code[CONFIRM_CHARS] = '\0';
    snprintf(st->confirm, sizeof(st->confirm), "%s-%s", st->prefix, code);
    st->attempts++;
}

static char *book_start(const booking_t *b, booking_step_t *st, book_req_t *r, int64_t now_ms,
                        bool *is_error)
{
    char *err = book_validate(b, r, now_ms, is_error);
    if (err)
        return err;
    st->date = xstrdup(r->date);
    st->time = xstrdup(r->time);
    st->name = xstrdup(r->name);
    st->phone = xstrdup(r->phone);
    st->notes = r->notes ? xstrdup(r->notes) : NULL;
    st->service = xstrdup(r->svc->name);
    st->time_zone = xstrdup(b->ac->company_timezone);
    st->duration_min = r->svc->duration_min;
    memcpy(st->digits, r->digits, sizeof(st->digits));
    memcpy(st->prefix, b->prefix, sizeof(st->prefix));
    new_confirmation(st);
    st->op = (booking_op_t){
        .kind = BOOKING_OP_BOOK,
        .tenant = st->tenant,
        .date = st->date,
        .digits = st->digits,
        .phone = st->phone,
        .name = st->name,
        .service = st->service,
        .notes = st->notes,
        .confirmation = st->confirm,
        .start_min = r->start,
        .end_min = r->start + st->duration_min,
        .at_ms = now_ms,
    };
    return NULL;
}

static char *book_result(const booking_step_t *st)
{
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "confirmationNumber", st->confirm);
    cJSON *a = cJSON_AddObjectToObject(res, "appointment");
    cJSON_AddStringToObject(a, "date", st->date);
    add_hhmm(a, "time", st->op.start_min);
    add_hhmm(a, "endTime", st->op.end_min);
    cJSON_AddStringToObject(a, "serviceType", st->service);
    cJSON_AddNumberToObject(a, "durationMin", st->duration_min);
    cJSON_AddStringToObject(a, "customerName", st->name);
    cJSON_AddStringToObject(a, "customerPhone", st->phone);
    if (st->notes)
        cJSON_AddStringToObject(a, "notes", st->notes);
    cJSON_AddStringToObject(a, "timeZone", st->time_zone);
    return store_json_take(res);
}

static char *book_answer(booking_step_t *st, const booking_rows_t *rows, bool *is_error)
{
    const char *status = rows->nrows == 1 && rows->ncols == 1 ? cell(rows, 0, 0) : NULL;
    if (status == NULL)
        return bad_answer(st, rows, is_error);
    if (strcmp(status, BOOKED) == 0) {
        log_info("booking.booked", LOG_S("confirmation", st->confirm), LOG_S("date", st->date),
                 LOG_S("time", st->time), LOG_S("service", st->service));
        *is_error = false;
        return book_result(st);
    }
    if (strcmp(status, TAKEN) == 0)
        return tool_error(is_error, "slot_unavailable",
                          "%s at %s is already taken; check availability for another time",
                          st->date, st->time);
    if (strcmp(status, CONFIRMATION_TAKEN) != 0)
        return bad_answer(st, rows, is_error);
    if (st->attempts < CONFIRM_TRIES) {
        new_confirmation(st);
        return NULL;
    }
    log_error("booking.confirmation_taken", LOG_I("attempts", st->attempts));
    return internal_error(is_error);
}

static char *book_appointment(const booking_t *b, booking_step_t *st, const cJSON *args,
                              int64_t now_ms, bool *is_error)
{
    static const char *const keys[] = {"date",          "time",        "customerName",
                                       "customerPhone", "serviceType", "notes"};
    book_req_t r = {0};
    char **const dst[] = {&r.date, &r.time, &r.name, &r.phone, &r.service, &r.notes};
    char *out = read_args(args, keys, dst, ARRAY_LEN(dst), 5)
                    ? book_start(b, st, &r, now_ms, is_error)
                    : tool_error(is_error, "invalid_arguments",
                                 "bookAppointment needs the strings date (YYYY-MM-DD), time "
                                 "(HH:MM), customerName, customerPhone and serviceType; notes "
                                 "is optional");
    free_args(dst, ARRAY_LEN(dst));
    return out;
}

/* ---- lookupCustomer ------------------------------------------------------------------------- */

static char *lookup_start(booking_step_t *st, const char *phone, bool *is_error)
{
    size_t nd = phone_digits(phone, st->digits);
    if (nd < PHONE_DIGITS_MIN || nd > PHONE_DIGITS_MAX)
        return tool_error(is_error, "invalid_phone", "phone needs %d to %d digits, got %zu",
                          PHONE_DIGITS_MIN, PHONE_DIGITS_MAX, nd);
    st->op.kind = BOOKING_OP_LOOKUP;
    st->op.digits = st->digits;
    return NULL;
}

/* One appointment of the customer (row i), or false when the row is malformed. */
static bool lookup_appointment(const booking_rows_t *rows, int i, cJSON *appts)
{
    int start, end;
    const char *date = cell(rows, i, 3), *service = cell(rows, i, 6), *notes = cell(rows, i, 7);
    if (date == NULL || service == NULL || !cell_min(rows, i, 4, &start) ||
        !cell_min(rows, i, 5, &end))
        return false;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "confirmationNumber", cell(rows, i, 2));
    cJSON_AddStringToObject(a, "date", date);
    add_hhmm(a, "time", start);
    add_hhmm(a, "endTime", end);
    cJSON_AddStringToObject(a, "serviceType", service);
    if (notes)
        cJSON_AddStringToObject(a, "notes", notes);
    cJSON_AddItemToArray(appts, a);
    return true;
}

static char *lookup_answer(booking_step_t *st, const booking_rows_t *rows, bool *is_error)
{
    if (rows->nrows == 0) {
        *is_error = false;
        return xstrdup("{\"found\":false}");
    }
    if (rows->ncols != LOOKUP_COLS || cell(rows, 0, 0) == NULL || cell(rows, 0, 1) == NULL)
        return bad_answer(st, rows, is_error);
    cJSON *res = cJSON_CreateObject();
    cJSON_AddBoolToObject(res, "found", true);
    cJSON *c = cJSON_AddObjectToObject(res, "customer");
    cJSON_AddStringToObject(c, "name", cell(rows, 0, 0));
    cJSON_AddStringToObject(c, "phone", cell(rows, 0, 1));
    cJSON *appts = cJSON_AddArrayToObject(c, "appointments");
    for (int i = 0; i < rows->nrows; i++) {
        if (cell(rows, i, 2) != NULL && !lookup_appointment(rows, i, appts)) {
            cJSON_Delete(res);
            return bad_answer(st, rows, is_error);
        }
    }
    *is_error = false;
    return store_json_take(res);
}

static char *lookup_customer(booking_step_t *st, const cJSON *args, bool *is_error)
{
    static const char *const keys[] = {"phone"};
    char *phone;
    char **const dst[] = {&phone};
    char *out = read_args(args, keys, dst, 1, 1) ? lookup_start(st, phone, is_error)
                                                 : tool_error(is_error, "invalid_arguments",
                                                              "lookupCustomer needs the string "
                                                              "phone");
    free_args(dst, 1);
    return out;
}

/* ---- A run, whatever the database ----------------------------------------------------------- */

bool booking_is_tool(const char *name)
{
    return name && (strcmp(name, "checkAvailability") == 0 ||
                    strcmp(name, "bookAppointment") == 0 || strcmp(name, "lookupCustomer") == 0);
}

char *booking_step_start(booking_t *b, const char *name, const cJSON *args, int64_t now_ms,
                         bool *is_error, booking_step_t **stp)
{
    cJSON *empty = NULL;
    if (args == NULL || !cJSON_IsObject(args))
        args = empty = cJSON_CreateObject();
    booking_step_t *st = xcalloc(1, sizeof(*st));
    str_copy(st->tenant, b->tenant, sizeof(st->tenant));
    st->op.tenant = st->tenant;
    char *out;
    if (strcmp(name, "checkAvailability") == 0)
        out = check_availability(b, st, args, now_ms, is_error);
    else if (strcmp(name, "bookAppointment") == 0)
        out = book_appointment(b, st, args, now_ms, is_error);
    else if (strcmp(name, "lookupCustomer") == 0)
        out = lookup_customer(st, args, is_error);
    else
        out = tool_error(is_error, "unknown_tool", "no built-in tool is called \"%s\"", name);
    cJSON_Delete(empty);
    if (out) {
        booking_step_free(st);
        st = NULL;
    }
    *stp = st;
    return out;
}

const booking_op_t *booking_step_op(const booking_step_t *st)
{
    return &st->op;
}

char *booking_step_answer(booking_step_t *st, const booking_rows_t *rows, bool *is_error)
{
    if (st->op.kind == BOOKING_OP_BUSY)
        return availability_answer(st, rows, is_error);
    if (st->op.kind == BOOKING_OP_BOOK)
        return book_answer(st, rows, is_error);
    return lookup_answer(st, rows, is_error);
}

void booking_step_free(booking_step_t *st)
{
    if (st == NULL)
        return;
    cJSON_Delete(st->avail);
    free(st->date);
    free(st->time);
    free(st->name);
    free(st->phone);
    free(st->notes);
    free(st->service);
    free(st->time_zone);
    free(st);
}

/* ---- Tool definitions (Chat Completions `tools`) -------------------------------------------- */

/* Adds {type:"function",function:{name,description,parameters}}; returns the properties. */
static cJSON *add_def(cJSON *arr, const char *name, const char *description,
                      const char *const *required)
{
    cJSON *t = cJSON_CreateObject(), *props;
    cJSON_AddStringToObject(t, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(t, "function");
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "description", description);
    cJSON_AddItemToObject(f, "parameters", tool_params_new(required, &props));
    cJSON_AddItemToArray(arr, t);
    return props;
}

static void service_prop(const agentcfg_t *ac, cJSON *props)
{
    cJSON *p =
        tool_string_prop(props, "serviceType", "The service, exactly one of the listed names");
    cJSON *e = cJSON_AddArrayToObject(p, "enum");
    for (size_t i = 0; i < ac->n_services; i++)
        cJSON_AddItemToArray(e, cJSON_CreateString(ac->services[i].name));
}

void booking_tool_defs(const agentcfg_t *ac, cJSON *arr)
{
    static const char *const avail_req[] = {"date", "serviceType", NULL};
    static const char *const book_req[] = {"date",          "time",        "customerName",
                                           "customerPhone", "serviceType", NULL};
    static const char *const lookup_req[] = {"phone", NULL};
    char desc[512];

    snprintf(desc, sizeof(desc),
             "Open appointment start times for a service on one day. Times are HH:MM (24-hour) "
             "in the business's local time zone (%s), every %d minutes; use this before "
             "booking.",
             ac->company_timezone, SLOT_STEP_MIN);
    cJSON *p = add_def(arr, "checkAvailability", desc, avail_req);
    tool_string_prop(p, "date",
                     "The day, YYYY-MM-DD (e.g. 2026-12-03), in the business's local calendar");
    service_prop(ac, p);
    tool_string_prop(p, "start",
                     "Optional: earliest start time, HH:MM 24-hour, business local time");
    tool_string_prop(p, "end", "Optional: latest end time, HH:MM 24-hour, business local time");
    tool_string_prop(p, "timeZone",
                     "Optional: the caller's IANA time zone (informational; slots are "
                     "always in the business's local time)");

    snprintf(desc, sizeof(desc),
             "Book an appointment after checking availability and confirming the customer's "
             "name and phone number. date is YYYY-MM-DD and time HH:MM (24-hour), business "
             "local time (%s). Returns a confirmation number.",
             ac->company_timezone);
    p = add_def(arr, "bookAppointment", desc, book_req);
    tool_string_prop(p, "date", "The day, YYYY-MM-DD");
    tool_string_prop(p, "time",
                     "Start time, HH:MM 24-hour, one of the slots checkAvailability returned");
    tool_string_prop(p, "customerName", "The customer's full name");
    tool_string_prop(p, "customerPhone", "The customer's phone number, any formatting");
    service_prop(ac, p);
    tool_string_prop(p, "notes", "Optional: anything the shop should know (vehicle, symptoms)");

    p = add_def(arr, "lookupCustomer",
                "Look up a returning customer and their appointments by phone number (any "
                "formatting; only the digits are compared).",
                lookup_req);
    tool_string_prop(p, "phone", "The customer's phone number");
}

/* Initials of the company's words, upper case: "Prime Auto Lab" -> "PAL"; "APT" when none. */
static void confirmation_prefix(const char *company, char out[CONFIRM_PREFIX_MAX + 1])
{
    size_t n = 0;
    bool at_word = true;
    for (const char *p = company ? company : ""; *p && n < CONFIRM_PREFIX_MAX; p++) {
        bool alnum = isalnum((unsigned char)*p);
        if (alnum && at_word)
            out[n++] = (char)toupper((unsigned char)*p);
        at_word = !alnum;
    }
    out[n] = '\0';
    if (n == 0)
        str_copy(out, "APT", CONFIRM_PREFIX_MAX + 1);
}

booking_sql_t *booking_sql_of(const booking_t *b)
{
    return b->sql;
}

booking_t *booking_new(sqlite3 *db, const agentcfg_t *ac, const char *tenant, char *err,
                       size_t errlen)
{
    char why[256];
    tz_t *tz = tz_load(ac->company_timezone, why, sizeof(why));
    if (tz == NULL) {
        snprintf(err, errlen, "config: company.timezone: %s", why);
        return NULL;
    }
    booking_t *b = xcalloc(1, sizeof(*b));
    b->ac = ac;
    b->tz = tz;
    str_copy(b->tenant, tenant ? tenant : TENANT_DEFAULT_ID, sizeof(b->tenant));
    confirmation_prefix(ac->company_name, b->prefix);
    if (db && (b->sql = booking_sql_new(db, err, errlen)) == NULL) {
        booking_free(b);
        return NULL;
    }
    return b;
}

void booking_free(booking_t *b)
{
    if (b == NULL)
        return;
    booking_sql_free(b->sql);
    tz_free(b->tz);
    free(b);
}
