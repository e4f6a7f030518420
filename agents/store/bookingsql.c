/*
 * bookingsql: the booking tools' operations (booking_op_t) on the store's SQLite connection, and
 * booking_run(), which drives a tool run (booking.c) through them synchronously.
 *
 * No double booking on SQLite: a booking runs its overlap check and insert in BEGIN IMMEDIATE,
 * which takes the file's write lock before reading, so a second writer (another connection, or
 * another process) waits for the first to commit and then sees its row. Behind that, the schema
 * (storedb.c) has a UNIQUE index on (tenant, date, start_min) and a trigger that aborts an
 * overlapping insert, so no code path can store a double booking.
 * Thread: the store's (the connection's owner).
 */
#include <stdlib.h>
#include <string.h>

#include "agents/store/store_int.h"
#include "base/log.h"
#include "base/util.h"

/* The answers of BOOKING_OP_BOOK. */
static const char BOOKED[] = BOOKING_BOOKED;
static const char TAKEN[] = BOOKING_TAKEN;
static const char CONFIRMATION_TAKEN[] = BOOKING_CONFIRMATION_TAKEN;

enum { ST_BUSY_OF_DAY, ST_OVERLAP, ST_UPSERT_CUSTOMER, ST_INSERT_APPT, ST_LOOKUP, ST_COUNT };

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
    [ST_LOOKUP] = "SELECT c.name, c.phone, a.confirmation, a.date, a.start_min, a.end_min, "
                  "a.service, a.notes FROM customers c LEFT JOIN appointments a "
                  "ON a.customer_id = c.id WHERE c.phone_digits = ?1 AND c.tenant = :t "
                  "ORDER BY a.date, a.start_min",
};

struct booking_sql {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
};

booking_sql_t *booking_sql_new(sqlite3 *db, char *err, size_t errlen)
{
    booking_sql_t *b = xcalloc(1, sizeof(*b));
    b->db = db;
    if (!store_prepare_all(db, stmt_sql, b->st, ST_COUNT)) {
        snprintf(err, errlen, "database: cannot prepare the booking queries: %s",
                 sqlite3_errmsg(db));
        booking_sql_free(b);
        return NULL;
    }
    return b;
}

void booking_sql_free(booking_sql_t *b)
{
    if (b == NULL)
        return;
    store_finalize_all(b->st, ST_COUNT);
    free(b);
}

/* A cached statement, reset, unbound, and bound to tenant (:t) when it has that parameter. */
static sqlite3_stmt *stmt(sqlite3_stmt *st, const char *tenant)
{
    store_stmt_fresh(st);
    int i = sqlite3_bind_parameter_index(st, ":t");
    if (i > 0)
        sqlite3_bind_text(st, i, tenant, -1, SQLITE_STATIC);
    return st;
}

static int exec(booking_sql_t *b, const char *sql)
{
    int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        log_warn("booking.sql", LOG_S("sql", sql), LOG_S("error", sqlite3_errmsg(b->db)));
    return rc;
}

/* The tool error of the connection's last failure (read before a ROLLBACK resets it). */
static char *db_error(booking_sql_t *b, bool *is_error)
{
    int rc = sqlite3_errcode(b->db);
    log_error("booking.db", LOG_S("error", sqlite3_errmsg(b->db)), LOG_I("rc", rc));
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return booking_error("busy", "the booking system is busy; please try again in a moment",
                             is_error);
    return booking_error("internal_error", "the booking system failed", is_error);
}

/* An operation's answer read from SQLite: copies of the texts, row-major. */
typedef struct sql_rows {
    int nrows, ncols;
    size_t n, cap; /* values used and allocated */
    char **values;
} sql_rows_t;

static void rows_push(sql_rows_t *r, const char *s)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->values = xrealloc(r->values, r->cap * sizeof(*r->values));
    }
    r->values[r->n++] = s ? xstrdup(s) : NULL;
}

/* Appends the statement's current row (NULL for SQL NULL). */
static void rows_add(sql_rows_t *r, sqlite3_stmt *st)
{
    r->ncols = sqlite3_column_count(st);
    for (int c = 0; c < r->ncols; c++)
        rows_push(r, (const char *)sqlite3_column_text(st, c));
    r->nrows++;
}

static void rows_free(sql_rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->values[i]);
    free(r->values);
}

/*
 * Inside BEGIN IMMEDIATE: the overlap check, the customer upsert, the insert. Returns SQLITE_DONE
 * with *status (BOOKED, TAKEN, CONFIRMATION_TAKEN), or the SQLite result code of a failure.
 */
static int book_insert(booking_sql_t *b, const booking_op_t *op, const char **status)
{
    sqlite3_stmt *st = stmt(b->st[ST_OVERLAP], op->tenant);
    store_bind_text(st, 1, op->date);
    sqlite3_bind_int(st, 2, op->start_min);
    sqlite3_bind_int(st, 3, op->end_min);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        *status = TAKEN;
        return SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        return rc;
    st = stmt(b->st[ST_UPSERT_CUSTOMER], op->tenant);
    store_bind_text(st, 1, op->digits);
    store_bind_text(st, 2, op->phone);
    store_bind_text(st, 3, op->name);
    sqlite3_bind_int64(st, 4, op->at_ms);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? SQLITE_ERROR : rc;
    }
    int64_t customer = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    st = stmt(b->st[ST_INSERT_APPT], op->tenant);
    store_bind_text(st, 1, op->confirmation);
    sqlite3_bind_int64(st, 2, customer);
    store_bind_text(st, 3, op->service);
    store_bind_text(st, 4, op->date);
    sqlite3_bind_int(st, 5, op->start_min);
    sqlite3_bind_int(st, 6, op->end_min);
    store_bind_text(st, 7, op->notes);
    sqlite3_bind_int64(st, 8, op->at_ms);
    rc = sqlite3_step(st);
    bool dup_code = rc == SQLITE_CONSTRAINT &&
                    sqlite3_extended_errcode(b->db) == SQLITE_CONSTRAINT_UNIQUE &&
                    strstr(sqlite3_errmsg(b->db), "confirmation") != NULL;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        *status = BOOKED;
    else if (rc == SQLITE_CONSTRAINT) /* the slot index or the overlap trigger: someone else won */
        *status = dup_code ? CONFIRMATION_TAKEN : TAKEN;
    else
        return rc;
    return SQLITE_DONE;
}

/* BOOKING_OP_BOOK in a transaction of its own, committed only when booked. */
static char *sqlite_book(booking_sql_t *b, const booking_op_t *op, sql_rows_t *rows,
                         bool *is_error)
{
    if (exec(b, "BEGIN IMMEDIATE") != SQLITE_OK)
        return db_error(b, is_error);
    const char *status = NULL;
    int rc = book_insert(b, op, &status);
    if (rc == SQLITE_DONE && status == BOOKED && exec(b, "COMMIT") != SQLITE_OK)
        rc = SQLITE_ERROR;
    char *err = rc == SQLITE_DONE ? NULL : db_error(b, is_error);
    if (err || status != BOOKED)
        exec(b, "ROLLBACK");
    if (err == NULL) {
        rows->ncols = 1;
        rows->nrows = 1;
        rows_push(rows, status);
    }
    return err;
}

/* Runs op on b's connection: NULL with its answer in rows, or the tool error output. */
static char *sqlite_op(booking_sql_t *b, const booking_op_t *op, sql_rows_t *rows,
                       bool *is_error)
{
    if (op->kind == BOOKING_OP_BOOK)
        return sqlite_book(b, op, rows, is_error);
    bool busy = op->kind == BOOKING_OP_BUSY;
    sqlite3_stmt *st = stmt(b->st[busy ? ST_BUSY_OF_DAY : ST_LOOKUP], op->tenant);
    store_bind_text(st, 1, busy ? op->date : op->digits);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        rows_add(rows, st);
    char *err = rc == SQLITE_DONE ? NULL : db_error(b, is_error);
    sqlite3_reset(st);
    return err;
}

char *booking_run(booking_t *b, const char *name, const cJSON *args, int64_t now_ms, bool *is_error)
{
    booking_step_t *st;
    char *out = booking_step_start(b, name, args, now_ms, is_error, &st);
    while (out == NULL) {
        sql_rows_t rows = {0};
        out = sqlite_op(booking_sql_of(b), booking_step_op(st), &rows, is_error);
        if (out == NULL) {
            booking_rows_t answer = {rows.nrows, rows.ncols, (const char *const *)rows.values};
            out = booking_step_answer(st, &answer, is_error);
        }
        rows_free(&rows);
    }
    booking_step_free(st);
    return out;
}
