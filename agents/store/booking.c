/*
 * booking: the built-in tools checkAvailability, bookAppointment and lookupCustomer (seed 002's
 * names and arguments; SPEC 7, 14), on the store's SQLite connection.
 *
 * The shop is one resource: appointments on a day never overlap. Dates ("YYYY-MM-DD") and
 * times ("HH:MM", 24 h, on a SLOT_STEP_MIN grid from midnight) are wall-clock values in the
 * company time zone, stored as they are (date text, minutes after midnight), so a DST change
 * never moves an appointment. Only "now" needs the zone: the offset at now_ms comes from the
 * zone's TZif file (base/tz.h), never from the process-global TZ.
 *
 * Decisions:
 *   - A closed day is not an error: checkAvailability answers "closed": true and no slots;
 *     bookAppointment on it is outside_hours.
 *   - A day before today is invalid_date; a time today that has already begun is invalid_time.
 *   - Phones are compared by their digits only; 7 to 15 digits are accepted (E.164's maximum).
 *
 * No double booking: bookAppointment runs its overlap check and insert in BEGIN IMMEDIATE,
 * which takes the file's write lock before reading, so a second writer (another connection, or
 * another process) waits for the first to commit and then sees its row. Behind that, the schema
 * (storedb.c) has a UNIQUE index on (date, start_min) and a trigger that aborts an overlapping
 * insert, so no code path can store a double booking.
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
#define CONFIRM_TRIES      4    /* a random confirmation number that exists already: draw again */
#define TEXT_MAX_BYTES     2000 /* customerName, notes */
#define DATE_LEN           10   /* YYYY-MM-DD */
#define HHMM_SIZE          6    /* "HH:MM" and its NUL */

static const char confirm_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; /* no 0/O, 1/I */

enum {
    ST_BUSY_OF_DAY,
    ST_OVERLAP,
    ST_UPSERT_CUSTOMER,
    ST_INSERT_APPT,
    ST_FIND_CUSTOMER,
    ST_CUSTOMER_APPTS,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    /* :t comes after every ?N: SQLite numbers a named parameter after the largest seen. */
    [ST_BUSY_OF_DAY] = "SELECT start_min, end_min FROM appointments WHERE date = ?1 AND "
                       "tenant = :t ORDER BY start_min",
    [ST_OVERLAP] = "SELECT 1 FROM appointments WHERE date = ?1 AND start_min < ?3 "
                   "AND end_min > ?2 AND tenant = :t LIMIT 1",
    [ST_UPSERT_CUSTOMER] = "INSERT INTO customers (phone_digits, phone, name, created_at, "
                           "updated_at, tenant) VALUES (?1, ?2, ?3, ?4, ?4, :t) "
                           "ON CONFLICT (tenant, phone_digits) "
                           "DO UPDATE SET phone = excluded.phone, name = excluded.name, "
                           "updated_at = excluded.updated_at RETURNING id",
    [ST_INSERT_APPT] = "INSERT INTO appointments (confirmation, customer_id, service, date, "
                       "start_min, end_min, notes, created_at, tenant) VALUES (?1, ?2, ?3, ?4, "
                       "?5, ?6, ?7, ?8, :t)",
    [ST_FIND_CUSTOMER] = "SELECT id, name, phone FROM customers WHERE phone_digits = ?1 AND "
                         "tenant = :t",
    [ST_CUSTOMER_APPTS] = "SELECT confirmation, date, start_min, end_min, service, notes "
                          "FROM appointments WHERE customer_id = ?1 ORDER BY date, start_min",
};

struct booking {
    sqlite3 *db;
    const agentcfg_t *ac;
    char tenant[TENANT_ID_MAX + 1]; /* whose calendar and customers (SPEC 16) */
    tz_t *tz;
    char prefix[CONFIRM_PREFIX_MAX + 1];
    sqlite3_stmt *st[ST_COUNT];
};

/* "Today" and the minute of the day, in the company time zone. */
typedef struct local_now {
    int64_t day; /* days since 1970-01-01 */
    int min;     /* minutes after local midnight */
} local_now_t;

/* A cached statement, reset, unbound, and bound to this booking's tenant (:t) when it has one. */
static sqlite3_stmt *stmt(const booking_t *b, sqlite3_stmt *st)
{
    store_stmt_fresh(st);
    int i = sqlite3_bind_parameter_index(st, ":t");
    if (i > 0)
        sqlite3_bind_text(st, i, b->tenant, -1, SQLITE_STATIC);
    return st;
}

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

__attribute__((format(printf, 3, 4))) static char *tool_error(bool *is_error, const char *code,
                                                              const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    *is_error = true;
    return error_json(code, msg, NULL, NULL);
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

/* ---- SQLite helpers ------------------------------------------------------------------------- */

static int exec(booking_t *b, const char *sql)
{
    int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        log_warn("booking.sql", LOG_S("sql", sql), LOG_S("error", sqlite3_errmsg(b->db)));
    return rc;
}

static char *db_error(booking_t *b, bool *is_error)
{
    int rc = sqlite3_errcode(b->db);
    log_error("booking.db", LOG_S("error", sqlite3_errmsg(b->db)), LOG_I("rc", rc));
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return tool_error(is_error, "busy",
                          "the booking system is busy; please try again in a moment");
    return tool_error(is_error, "internal_error", "the booking system failed");
}

/* ---- checkAvailability ---------------------------------------------------------------------- */

typedef struct busy {
    int n;
    int cap;
    int (*iv)[2]; /* [start, end) minutes */
} busy_t;

static int busy_load(booking_t *b, const char *date, busy_t *out)
{
    sqlite3_stmt *st = stmt(b, b->st[ST_BUSY_OF_DAY]);
    store_bind_text(st, 1, date);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 16;
            out->iv = xrealloc(out->iv, (size_t)out->cap * sizeof(*out->iv));
        }
        out->iv[out->n][0] = sqlite3_column_int(st, 0);
        out->iv[out->n][1] = sqlite3_column_int(st, 1);
        out->n++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static bool busy_overlaps(const busy_t *bz, int start, int end)
{
    for (int i = 0; i < bz->n; i++)
        if (bz->iv[i][0] < end && bz->iv[i][1] > start)
            return true;
    return false;
}

typedef struct avail_req {
    char *date, *service, *start, *end, *tz;
} avail_req_t;

static char *availability(booking_t *b, const avail_req_t *r, int64_t now_ms, bool *is_error)
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
    cJSON *slots = cJSON_AddArrayToObject(res, "slots");
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
    busy_t bz = {0};
    if (busy_load(b, r->date, &bz) != 0) {
        free(bz.iv);
        cJSON_Delete(res);
        return db_error(b, is_error);
    }
    int first = (lo + SLOT_STEP_MIN - 1) / SLOT_STEP_MIN * SLOT_STEP_MIN;
    for (int t = first; t + svc->duration_min <= hi; t += SLOT_STEP_MIN) {
        if (busy_overlaps(&bz, t, t + svc->duration_min))
            continue;
        char hhmm[HHMM_SIZE];
        fmt_hhmm(hhmm, t);
        cJSON_AddItemToArray(slots, cJSON_CreateString(hhmm));
    }
    free(bz.iv);
    *is_error = false;
    return store_json_take(res);
}

static char *check_availability(booking_t *b, const cJSON *args, int64_t now_ms, bool *is_error)
{
    static const char *const keys[] = {"date", "serviceType", "start", "end", "timeZone"};
    avail_req_t r;
    char **const dst[] = {&r.date, &r.service, &r.start, &r.end, &r.tz};
    char *out = read_args(args, keys, dst, ARRAY_LEN(dst), 2)
                    ? availability(b, &r, now_ms, is_error)
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
static char *book_validate(booking_t *b, book_req_t *r, int64_t now_ms, bool *is_error)
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

static void new_confirmation(const booking_t *b, char *out, size_t outlen)
{
    unsigned char rnd[CONFIRM_CHARS];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        abort(); /* the CSPRNG cannot fail once seeded; if it does, stop loudly */
    char code[CONFIRM_CHARS + 1];
    for (int i = 0; i < CONFIRM_CHARS; i++)
        code[i] = confirm_alphabet[rnd[i] % (sizeof(confirm_alphabet) - 1)];
    code[CONFIRM_CHARS] = '\0';
    snprintf(out, outlen, "%s-%s", b->prefix, code);
}

/* Inside BEGIN IMMEDIATE: customer upsert and insert. Returns the SQLite result code. */
static int book_insert(booking_t *b, const book_req_t *r, int64_t now_ms, char *confirm,
                       size_t clen, bool *taken)
{
    sqlite3_stmt *st = stmt(b, b->st[ST_OVERLAP]);
    store_bind_text(st, 1, r->date);
    sqlite3_bind_int(st, 2, r->start);
    sqlite3_bind_int(st, 3, r->start + r->svc->duration_min);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        *taken = true;
        return SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        return rc;
    st = stmt(b, b->st[ST_UPSERT_CUSTOMER]);
    store_bind_text(st, 1, r->digits);
    store_bind_text(st, 2, r->phone);
    store_bind_text(st, 3, r->name);
    sqlite3_bind_int64(st, 4, now_ms);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc;
    }
    int64_t customer = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    for (int attempt = 0; attempt < CONFIRM_TRIES; attempt++) {
        new_confirmation(b, confirm, clen);
        st = stmt(b, b->st[ST_INSERT_APPT]);
        store_bind_text(st, 1, confirm);
        sqlite3_bind_int64(st, 2, customer);
        store_bind_text(st, 3, r->svc->name);
        store_bind_text(st, 4, r->date);
        sqlite3_bind_int(st, 5, r->start);
        sqlite3_bind_int(st, 6, r->start + r->svc->duration_min);
        store_bind_text(st, 7, r->notes);
        sqlite3_bind_int64(st, 8, now_ms);
        rc = sqlite3_step(st);
        int ext = sqlite3_extended_errcode(b->db);
        bool dup_code = rc == SQLITE_CONSTRAINT && ext == SQLITE_CONSTRAINT_UNIQUE &&
                        strstr(sqlite3_errmsg(b->db), "confirmation") != NULL;
        sqlite3_reset(st);
        if (rc == SQLITE_CONSTRAINT && !dup_code) {
            *taken = true; /* the slot index or the overlap trigger: someone else won */
            return SQLITE_DONE;
        }
        if (!dup_code)
            return rc;
    }
    return SQLITE_CONSTRAINT;
}

static char *book_result(const booking_t *b, const book_req_t *r, const char *confirm)
{
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "confirmationNumber", confirm);
    cJSON *a = cJSON_AddObjectToObject(res, "appointment");
    cJSON_AddStringToObject(a, "date", r->date);
    add_hhmm(a, "time", r->start);
    add_hhmm(a, "endTime", r->start + r->svc->duration_min);
    cJSON_AddStringToObject(a, "serviceType", r->svc->name);
    cJSON_AddNumberToObject(a, "durationMin", r->svc->duration_min);
    cJSON_AddStringToObject(a, "customerName", r->name);
    cJSON_AddStringToObject(a, "customerPhone", r->phone);
    if (r->notes)
        cJSON_AddStringToObject(a, "notes", r->notes);
    cJSON_AddStringToObject(a, "timeZone", b->ac->company_timezone);
    return store_json_take(res);
}

static char *book(booking_t *b, book_req_t *r, int64_t now_ms, bool *is_error)
{
    char *err = book_validate(b, r, now_ms, is_error);
    if (err)
        return err;
    if (exec(b, "BEGIN IMMEDIATE") != SQLITE_OK)
        return db_error(b, is_error);
    char confirm[CONFIRM_PREFIX_MAX + CONFIRM_CHARS + 2];
    bool taken = false;
    int rc = book_insert(b, r, now_ms, confirm, sizeof(confirm), &taken);
    if (rc != SQLITE_DONE || taken) {
        char *out = taken ? tool_error(is_error, "slot_unavailable",
                                       "%s at %s is already taken; check availability for "
                                       "another time",
                                       r->date, r->time)
                          : db_error(b, is_error);
        exec(b, "ROLLBACK");
        return out;
    }
    if (exec(b, "COMMIT") != SQLITE_OK) {
        char *out = db_error(b, is_error);
        exec(b, "ROLLBACK");
        return out;
    }
    log_info("booking.booked", LOG_S("confirmation", confirm), LOG_S("date", r->date),
             LOG_S("time", r->time), LOG_S("service", r->svc->name));
    *is_error = false;
    return book_result(b, r, confirm);
}

static char *book_appointment(booking_t *b, const cJSON *args, int64_t now_ms, bool *is_error)
{
    static const char *const keys[] = {"date",          "time",        "customerName",
                                       "customerPhone", "serviceType", "notes"};
    book_req_t r = {0};
    char **const dst[] = {&r.date, &r.time, &r.name, &r.phone, &r.service, &r.notes};
    char *out = read_args(args, keys, dst, ARRAY_LEN(dst), 5)
                    ? book(b, &r, now_ms, is_error)
                    : tool_error(is_error, "invalid_arguments",
                                 "bookAppointment needs the strings date (YYYY-MM-DD), time "
                                 "(HH:MM), customerName, customerPhone and serviceType; notes "
                                 "is optional");
    free_args(dst, ARRAY_LEN(dst));
    return out;
}

/* ---- lookupCustomer ------------------------------------------------------------------------- */

static char *lookup(booking_t *b, const char *phone, bool *is_error)
{
    char digits[PHONE_DIGITS_MAX + 1];
    size_t nd = phone_digits(phone, digits);
    if (nd < PHONE_DIGITS_MIN || nd > PHONE_DIGITS_MAX)
        return tool_error(is_error, "invalid_phone", "phone needs %d to %d digits, got %zu",
                          PHONE_DIGITS_MIN, PHONE_DIGITS_MAX, nd);
    sqlite3_stmt *st = stmt(b, b->st[ST_FIND_CUSTOMER]);
    store_bind_text(st, 1, digits);
    int rc = sqlite3_step(st);
    cJSON *res = cJSON_CreateObject();
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        cJSON_Delete(res);
        if (rc != SQLITE_DONE)
            return db_error(b, is_error);
        *is_error = false;
        return xstrdup("{\"found\":false}");
    }
    int64_t id = sqlite3_column_int64(st, 0);
    cJSON_AddBoolToObject(res, "found", true);
    cJSON *c = cJSON_AddObjectToObject(res, "customer");
    cJSON_AddStringToObject(c, "name", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddStringToObject(c, "phone", (const char *)sqlite3_column_text(st, 2));
    sqlite3_reset(st);
    cJSON *appts = cJSON_AddArrayToObject(c, "appointments");
    st = stmt(b, b->st[ST_CUSTOMER_APPTS]);
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "confirmationNumber", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(a, "date", (const char *)sqlite3_column_text(st, 1));
        add_hhmm(a, "time", sqlite3_column_int(st, 2));
        add_hhmm(a, "endTime", sqlite3_column_int(st, 3));
        cJSON_AddStringToObject(a, "serviceType", (const char *)sqlite3_column_text(st, 4));
        if (sqlite3_column_type(st, 5) != SQLITE_NULL)
            cJSON_AddStringToObject(a, "notes", (const char *)sqlite3_column_text(st, 5));
        cJSON_AddItemToArray(appts, a);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(res);
        return db_error(b, is_error);
    }
    *is_error = false;
    return store_json_take(res);
}

static char *lookup_customer(booking_t *b, const cJSON *args, bool *is_error)
{
    static const char *const keys[] = {"phone"};
    char *phone;
    char **const dst[] = {&phone};
    char *out = read_args(args, keys, dst, 1, 1) ? lookup(b, phone, is_error)
                                                 : tool_error(is_error, "invalid_arguments",
                                                              "lookupCustomer needs the string "
                                                              "phone");
    free_args(dst, 1);
    return out;
}

/* ---- Entry points --------------------------------------------------------------------------- */

bool booking_is_tool(const char *name)
{
    return name && (strcmp(name, "checkAvailability") == 0 ||
                    strcmp(name, "bookAppointment") == 0 || strcmp(name, "lookupCustomer") == 0);
}

char *booking_run(booking_t *b, const char *name, const cJSON *args, int64_t now_ms, bool *is_error)
{
    cJSON *empty = NULL;
    if (args == NULL || !cJSON_IsObject(args))
        args = empty = cJSON_CreateObject();
    char *out;
    if (strcmp(name, "checkAvailability") == 0)
        out = check_availability(b, args, now_ms, is_error);
    else if (strcmp(name, "bookAppointment") == 0)
        out = book_appointment(b, args, now_ms, is_error);
    else if (strcmp(name, "lookupCustomer") == 0)
        out = lookup_customer(b, args, is_error);
    else
        out = tool_error(is_error, "unknown_tool", "no built-in tool is called \"%s\"", name);
    cJSON_Delete(empty);
    return out;
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
    b->db = db;
    b->ac = ac;
    b->tz = tz;
    str_copy(b->tenant, tenant ? tenant : TENANT_DEFAULT_ID, sizeof(b->tenant));
    confirmation_prefix(ac->company_name, b->prefix);
    if (!store_prepare_all(db, stmt_sql, b->st, ST_COUNT)) {
        snprintf(err, errlen, "database: cannot prepare the booking queries: %s",
                 sqlite3_errmsg(db));
        booking_free(b);
        return NULL;
    }
    return b;
}

void booking_free(booking_t *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(b->st[i]);
    tz_free(b->tz);
    free(b);
}
