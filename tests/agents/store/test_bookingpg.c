/*
 * The booking tools on PostgreSQL (bookingpg.c), driven with hand-made answers: the statement a
 * run sends and its parameters, and outputs that are the SQLite store's for the same data
 * (availability, lookups, argument errors), a slot taken, a confirmation number that exists
 * already, PostgreSQL unreachable. The SQL itself runs on a real PostgreSQL in
 * tests/integration/test_pg_booking.py.
 */
#include <regex.h>

#include "tests/agents/store/store_fixture.h"

#define BOOK_PARAMS     11 /* PGQ_BOOK_INSERT's */
#define CONFIRM_TRIES   4  /* booking.c's */
#define MAX_ANSWER_ROWS 4

/* The same business twice: on a SQLite file, and as a PostgreSQL store's tools. */
typedef struct pair {
    storedb_t *db;
    booking_t *sqlite;
    booking_t *pg;
} pair_t;

static pair_t pair_open(const char *tenant)
{
    char err[FIXTURE_ERR_LEN] = "";
    fixture_init();
    pair_t p;
    p.db = storedb_open(fixture_db, err, sizeof(err));
    if (p.db == NULL)
        TEST_FAIL_("storedb_open: %s", err);
    p.sqlite = booking_new(storedb_handle(p.db), &fixture_ac, tenant, err, sizeof(err));
    p.pg = booking_new(NULL, &fixture_ac, tenant, err, sizeof(err));
    if (p.sqlite == NULL || p.pg == NULL)
        TEST_FAIL_("booking_new: %s", err);
    return p;
}

static void pair_close(pair_t *p)
{
    booking_free(p->pg);
    booking_free(p->sqlite);
    storedb_close(p->db);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

/* The output of tool name on SQLite; *is_error as it says. */
static char *on_sqlite(pair_t *p, const char *name, const char *sq_args, bool *is_error)
{
    cJSON *args = fixture_args_sq(sq_args);
    char *out = booking_run(p->sqlite, name, args, fixture_now_ms(), is_error);
    cJSON_Delete(args);
    return out;
}

/* Starts tool name on PostgreSQL; expects a statement to send. */
static booking_pgq_t *pg_start(pair_t *p, const char *name, const char *sq_args)
{
    cJSON *args = fixture_args_sq(sq_args);
    booking_pgq_t *q = NULL;
    bool is_error = false;
    char *out = booking_pg_start(p->pg, name, args, fixture_now_ms(), &is_error, &q);
    cJSON_Delete(args);
    if (out != NULL || q == NULL)
        TEST_FAIL_("%s(%s) answered at once: %s", name, sq_args, out ? out : "(null)");
    return q;
}

/* An OK answer of nrows rows of ncols texts (values row-major, NULL for SQL NULL). */
static net_pg_msg_t ok_answer(int nrows, int ncols, char **values)
{
    return (net_pg_msg_t){.status = NET_PG_OK, .nrows = nrows, .ncols = ncols, .values = values};
}

/* The one-text answer of a booking statement. */
static char *resume_text(booking_pgq_t *q, char *text, bool *is_error)
{
    char *v[1] = {text};
    net_pg_msg_t m = ok_answer(1, 1, v);
    return booking_pg_resume(q, &m, is_error);
}

static const char *param(const booking_pgq_t *q, int i)
{
    ASSERT_LT(i, booking_pgq_nparams(q));
    return booking_pgq_params(q)[i];
}

static void expect_code(const char *out, bool is_error, const char *code)
{
    cJSON *res = cJSON_Parse(out);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(res, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!is_error || !cJSON_IsString(c) || strcmp(c->valuestring, code) != 0 ||
        !cJSON_IsString(msg) || msg->valuestring[0] == '\0')
        TEST_FAIL_("want error %s, got %s (is_error %d)", code, out, is_error);
    cJSON_Delete(res);
}

/* ---- checkAvailability ---------------------------------------------------------------------- */

/* The busy list of 2026-12-03 after SQLite's booking of Brake repair 10:00-12:00, as PostgreSQL
 * answers it; and the one of today (12-01) after Oil change 14:00-14:30. */
static char *busy_dec3[] = {"600", "720"};
static char *busy_dec1[] = {"840", "870"};

static void expect_same_availability(pair_t *p, const char *sq_args, const char *date, char **busy,
                                     int nbusy)
{
    bool sq_err = true, pg_err = true;
    char *want = on_sqlite(p, "checkAvailability", sq_args, &sq_err);
    booking_pgq_t *q = pg_start(p, "checkAvailability", sq_args);
    ASSERT_STR_CONTAINS(booking_pgq_sql(q), "FROM appointments");
    ASSERT_EQ(booking_pgq_nparams(q), 2);
    ASSERT_STR_EQ(param(q, 0), "default");
    ASSERT_STR_EQ(param(q, 1), date);
    net_pg_msg_t m = ok_answer(nbusy, 2, busy);
    char *got = booking_pg_resume(q, &m, &pg_err);
    ASSERT(got != NULL);
    ASSERT_EQ(pg_err, sq_err);
    ASSERT_STR_EQ(got, want);
    booking_pgq_free(q);
    free(want);
    free(got);
}

TEST(bookingpg_availability_matches_sqlite)
{
    pair_t p = pair_open(NULL);
    bool is_error = true;
    free(on_sqlite(&p, "bookAppointment",
                   "{'date':'2026-12-03','time':'10:00','customerName':'Ada',"
                   "'customerPhone':'555-0100-111','serviceType':'Brake repair'}",
                   &is_error));
    ASSERT(!is_error);
    free(on_sqlite(&p, "bookAppointment",
                   "{'date':'2026-12-01','time':'14:00','customerName':'Ada',"
                   "'customerPhone':'555-0100-111','serviceType':'Oil change'}",
                   &is_error));
    ASSERT(!is_error);
    expect_same_availability(&p, "{'date':'2026-12-03','serviceType':'oil CHANGE'}", "2026-12-03",
                             busy_dec3, 1);
    expect_same_availability(
        &p, "{'date':'2026-12-03','serviceType':'Engine diagnostics','start':'8:00','end':'12:00'}",
        "2026-12-03", busy_dec3, 1);
    expect_same_availability(&p, "{'date':'2026-12-01','serviceType':'Brake repair'}", "2026-12-01",
                             busy_dec1, 1);
    expect_same_availability(&p, "{'date':'2026-12-04','serviceType':'Oil change'}", "2026-12-04",
                             NULL, 0);
    pair_close(&p);
}

/* What needs no database is answered at once, exactly as on SQLite: argument errors, a closed
 * day, an unknown tool. */
TEST(bookingpg_answers_without_database_as_sqlite)
{
    static const char *const cases[][2] = {
        {"checkAvailability", "{'date':'2026-12-06','serviceType':'Oil change'}"},
        {"checkAvailability", "{'date':'2026-11-30','serviceType':'Oil change'}"},
        {"checkAvailability", "{'date':'2026-12-03','serviceType':'x'}"},
        {"checkAvailability", "{'date':'2026-12-03','serviceType':'Oil change','start':'noon'}"},
        {"checkAvailability", "{'serviceType':'Oil change'}"},
        {"bookAppointment", "{'date':'2026-12-06','time':'10:00','customerName':'B',"
                            "'customerPhone':'5550100999','serviceType':'Oil change'}"},
        {"bookAppointment", "{'date':'2026-12-03','time':'09:15','customerName':'B',"
                            "'customerPhone':'5550100999','serviceType':'Oil change'}"},
        {"bookAppointment", "{'date':'2026-12-03','time':'14:00','customerName':'B',"
                            "'customerPhone':'12-34','serviceType':'Oil change'}"},
        {"bookAppointment", "{'date':'2026-12-03','time':1400,'customerName':'B',"
                            "'customerPhone':'5550100999','serviceType':'Oil change'}"},
        {"lookupCustomer", "{'phone':'123'}"},
        {"lookupCustomer", "{}"},
        {"cancelEverything", "{}"},
    };
    pair_t p = pair_open(NULL);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool sq_err = false, pg_err = false;
        char *want = on_sqlite(&p, cases[i][0], cases[i][1], &sq_err);
        cJSON *args = fixture_args_sq(cases[i][1]);
        static char set_me;
        booking_pgq_t *q = (booking_pgq_t *)&set_me; /* booking_pg_start() sets it to NULL */
        char *got = booking_pg_start(p.pg, cases[i][0], args, fixture_now_ms(), &pg_err, &q);
        ASSERT(q == NULL);
        ASSERT_STR_EQ(got, want);
        ASSERT_EQ(pg_err, sq_err);
        cJSON_Delete(args);
        free(want);
        free(got);
    }
    /* Arguments that are not an object are {}, as on SQLite. */
    bool is_error = false;
    booking_pgq_t *q = NULL;
    char *out = booking_pg_start(p.pg, "lookupCustomer", NULL, fixture_now_ms(), &is_error, &q);
    expect_code(out, is_error, "invalid_arguments");
    free(out);
    pair_close(&p);
}

/* ---- bookAppointment ------------------------------------------------------------------------ */

#define GRACE                                                                                      \
    "{'date':'2026-12-03','time':'9:30','customerName':'Grace Hopper',"                            \
    "'customerPhone':'(555) 010-0123','serviceType':'oil change','notes':'2019 Civic'}"

TEST(bookingpg_book_statement_and_output)
{
    pair_t p = pair_open("acme");
    booking_pgq_t *q = pg_start(&p, "bookAppointment", GRACE);
    ASSERT_STR_CONTAINS(booking_pgq_sql(q), "sb_book(");
    ASSERT_EQ(booking_pgq_nparams(q), BOOK_PARAMS);
    char at[24];
    snprintf(at, sizeof(at), "%lld", (long long)fixture_now_ms());
    const char *want[BOOK_PARAMS] = {"acme",
                                     NULL,
                                     "5550100123",
                                     "(555) 010-0123",
                                     "Grace Hopper",
                                     "Oil change",
                                     "2026-12-03",
                                     "570",
                                     "600",
                                     "2019 Civic",
                                     at};
    for (int i = 0; i < BOOK_PARAMS; i++)
        if (want[i])
            ASSERT_STR_EQ(param(q, i), want[i]);
    regex_t re;
    ASSERT_EQ(regcomp(&re, "^PAL-[A-Z0-9]{6}$", REG_EXTENDED | REG_NOSUB), 0);
    ASSERT_EQ(regexec(&re, param(q, 1), 0, NULL, 0), 0);
    regfree(&re);
    char confirm[16];
    str_copy(confirm, param(q, 1), sizeof(confirm));

    bool is_error = true;
    char *out = resume_text(q, "ok", &is_error);
    ASSERT(!is_error);
    booking_pgq_free(q);
    /* The output is SQLite's for the same booking, but for the confirmation number. */
    char *sq = on_sqlite(&p, "bookAppointment", GRACE, &is_error);
    ASSERT(!is_error);
    cJSON *pg_res = cJSON_Parse(out), *sq_res = cJSON_Parse(sq);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(pg_res, "confirmationNumber")->valuestring,
                  confirm);
    ASSERT(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(pg_res, "appointment"),
                         cJSON_GetObjectItemCaseSensitive(sq_res, "appointment"), true));
    cJSON_DeleteItemFromObject(pg_res, "confirmationNumber");
    cJSON_DeleteItemFromObject(sq_res, "confirmationNumber");
    ASSERT(cJSON_Compare(pg_res, sq_res, true));
    cJSON_Delete(pg_res);
    cJSON_Delete(sq_res);
    free(sq);
    free(out);

    /* No notes: a NULL parameter. */
    q = pg_start(&p, "bookAppointment",
                 "{'date':'2026-12-04','time':'08:00','customerName':'Bob',"
                 "'customerPhone':'5550100999','serviceType':'Battery replacement'}");
    ASSERT(param(q, 9) == NULL);
    ASSERT_STR_EQ(param(q, 7), "480");
    ASSERT_STR_EQ(param(q, 8), "510");
    booking_pgq_free(q);
    pair_close(&p);
}

TEST(bookingpg_book_taken_is_slot_unavailable)
{
    pair_t p = pair_open(NULL);
    bool is_error = true;
    free(on_sqlite(&p, "bookAppointment", GRACE, &is_error));
    ASSERT(!is_error);
    char *want = on_sqlite(&p, "bookAppointment", GRACE, &is_error); /* SQLite's "taken" */
    expect_code(want, is_error, "slot_unavailable");
    booking_pgq_t *q = pg_start(&p, "bookAppointment", GRACE);
    is_error = false;
    char *got = resume_text(q, "taken", &is_error);
    ASSERT(is_error);
    ASSERT_STR_EQ(got, want);
    booking_pgq_free(q);
    free(got);
    free(want);
    pair_close(&p);
}

TEST(bookingpg_confirmation_collision_draws_again)
{
    pair_t p = pair_open(NULL);
    booking_pgq_t *q = pg_start(&p, "bookAppointment", GRACE);
    char first[16];
    str_copy(first, param(q, 1), sizeof(first));
    bool is_error = false;
    ASSERT(resume_text(q, "confirmation_taken", &is_error) == NULL);
    /* The same booking again with another number. */
    ASSERT_STR_CONTAINS(booking_pgq_sql(q), "sb_book(");
    ASSERT_EQ(booking_pgq_nparams(q), BOOK_PARAMS);
    ASSERT(strcmp(param(q, 1), first) != 0);
    ASSERT_STR_EQ(param(q, 6), "2026-12-03");
    ASSERT_STR_EQ(param(q, 7), "570");
    char second[16];
    str_copy(second, param(q, 1), sizeof(second));
    char *out = resume_text(q, "ok", &is_error);
    ASSERT(out != NULL && !is_error);
    cJSON *res = cJSON_Parse(out);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(res, "confirmationNumber")->valuestring, second);
    cJSON_Delete(res);
    free(out);
    booking_pgq_free(q);

    /* A number that keeps existing: the booking system failed, after CONFIRM_TRIES numbers. */
    q = pg_start(&p, "bookAppointment", GRACE);
    out = NULL;
    for (int i = 0; i < CONFIRM_TRIES && out == NULL; i++)
        out = resume_text(q, "confirmation_taken", &is_error);
    expect_code(out, is_error, "internal_error");
    free(out);
    booking_pgq_free(q);
    pair_close(&p);
}

/* ---- Failures ------------------------------------------------------------------------------- */

/* Unreachable, a full queue, a refused statement: every tool is "unavailable". */
TEST(bookingpg_unreachable_is_unavailable)
{
    static const char *const tools[][2] = {
        {"checkAvailability", "{'date':'2026-12-03','serviceType':'Oil change'}"},
        {"bookAppointment", GRACE},
        {"lookupCustomer", "{'phone':'5550100123'}"},
    };
    static const net_pg_status_t statuses[] = {NET_PG_UNREACHABLE, NET_PG_FULL, NET_PG_FAILED};
    pair_t p = pair_open(NULL);
    for (size_t t = 0; t < ARRAY_LEN(tools); t++) {
        for (size_t s = 0; s < ARRAY_LEN(statuses); s++) {
            booking_pgq_t *q = pg_start(&p, tools[t][0], tools[t][1]);
            net_pg_msg_t m = {.status = statuses[s]};
            if (statuses[s] == NET_PG_FAILED) {
                str_copy(m.sqlstate, "57P01", sizeof(m.sqlstate));
                m.error = "terminating connection due to administrator command";
            }
            bool is_error = false;
            char *out = booking_pg_resume(q, &m, &is_error);
            expect_code(out, is_error, "unavailable");
            free(out);
            booking_pgq_free(q);
        }
    }
    pair_close(&p);
}

/* An answer of the wrong shape is the booking system's failure, never a made-up output. */
TEST(bookingpg_malformed_answer_is_internal_error)
{
    pair_t p = pair_open(NULL);
    char *one[] = {"600"}, *words[] = {"ten", "noon"}, *status[] = {"maybe"};
    struct {
        const char *tool, *args;
        net_pg_msg_t m;
    } cases[] = {
        {"checkAvailability", "{'date':'2026-12-03','serviceType':'Oil change'}",
         ok_answer(1, 1, one)},
        {"checkAvailability", "{'date':'2026-12-03','serviceType':'Oil change'}",
         ok_answer(1, 2, words)},
        {"bookAppointment", GRACE, ok_answer(0, 1, NULL)},
        {"bookAppointment", GRACE, ok_answer(1, 1, status)},
        {"lookupCustomer", "{'phone':'5550100123'}", ok_answer(1, 2, words)},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        booking_pgq_t *q = pg_start(&p, cases[i].tool, cases[i].args);
        bool is_error = false;
        char *out = booking_pg_resume(q, &cases[i].m, &is_error);
        expect_code(out, is_error, "internal_error");
        free(out);
        booking_pgq_free(q);
    }
    pair_close(&p);
}

/* ---- lookupCustomer ------------------------------------------------------------------------- */

/* The rows PostgreSQL answers for the customer SQLite found (res: its lookup output). */
static int lookup_rows(const cJSON *res, char *rows[MAX_ANSWER_ROWS * 8])
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(res, "customer");
    const cJSON *appts = cJSON_GetObjectItemCaseSensitive(c, "appointments"), *a;
    int n = 0;
    cJSON_ArrayForEach(a, appts)
    {
        static char mins[MAX_ANSWER_ROWS][2][8];
        ASSERT_LT(n, MAX_ANSWER_ROWS);
        char **row = &rows[n * 8];
        int h, m;
        row[0] = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        row[1] = cJSON_GetObjectItemCaseSensitive(c, "phone")->valuestring;
        row[2] = cJSON_GetObjectItemCaseSensitive(a, "confirmationNumber")->valuestring;
        row[3] = cJSON_GetObjectItemCaseSensitive(a, "date")->valuestring;
        for (int k = 0; k < 2; k++) {
            const char *t =
                cJSON_GetObjectItemCaseSensitive(a, k ? "endTime" : "time")->valuestring;
            ASSERT_EQ(sscanf(t, "%d:%d", &h, &m), 2);
            snprintf(mins[n][k], sizeof(mins[n][k]), "%d", h * 60 + m);
            row[4 + k] = mins[n][k];
        }
        row[6] = cJSON_GetObjectItemCaseSensitive(a, "serviceType")->valuestring;
        const cJSON *notes = cJSON_GetObjectItemCaseSensitive(a, "notes");
        row[7] = notes ? notes->valuestring : NULL;
        n++;
    }
    return n;
}

TEST(bookingpg_lookup_matches_sqlite)
{
    pair_t p = pair_open(NULL);
    bool is_error = true;
    free(on_sqlite(&p, "bookAppointment", GRACE, &is_error));
    ASSERT(!is_error);
    free(on_sqlite(&p, "bookAppointment",
                   "{'date':'2026-12-02','time':'08:00','customerName':'Grace B. Hopper',"
                   "'customerPhone':'555.010.0123','serviceType':'Battery replacement'}",
                   &is_error));
    ASSERT(!is_error);
    char *want = on_sqlite(&p, "lookupCustomer", "{'phone':'+ 555 010 0123'}", &is_error);
    ASSERT(!is_error);
    cJSON *want_res = cJSON_Parse(want);
    char *rows[MAX_ANSWER_ROWS * 8];
    int n = lookup_rows(want_res, rows);
    ASSERT_EQ(n, 2);

    booking_pgq_t *q = pg_start(&p, "lookupCustomer", "{'phone':'+ 555 010 0123'}");
    ASSERT_STR_CONTAINS(booking_pgq_sql(q), "FROM customers");
    ASSERT_EQ(booking_pgq_nparams(q), 2);
    ASSERT_STR_EQ(param(q, 0), "default");
    ASSERT_STR_EQ(param(q, 1), "5550100123");
    net_pg_msg_t m = ok_answer(n, 8, rows);
    is_error = true;
    char *got = booking_pg_resume(q, &m, &is_error);
    ASSERT(!is_error);
    ASSERT_STR_EQ(got, want);
    booking_pgq_free(q);
    free(got);
    cJSON_Delete(want_res);
    free(want);

    /* No such customer; a customer without appointments (one row, its appointment NULL). */
    want = on_sqlite(&p, "lookupCustomer", "{'phone':'555-999-0000'}", &is_error);
    q = pg_start(&p, "lookupCustomer", "{'phone':'555-999-0000'}");
    m = ok_answer(0, 8, NULL);
    got = booking_pg_resume(q, &m, &is_error);
    ASSERT(!is_error);
    ASSERT_STR_EQ(got, want);
    booking_pgq_free(q);
    free(got);
    free(want);
    char *lone[8] = {"Ada", "555 0100", NULL, NULL, NULL, NULL, NULL, NULL};
    q = pg_start(&p, "lookupCustomer", "{'phone':'5550100'}");
    m = ok_answer(1, 8, lone);
    got = booking_pg_resume(q, &m, &is_error);
    ASSERT(!is_error);
    ASSERT_STR_EQ(got, "{\"found\":true,\"customer\":{\"name\":\"Ada\",\"phone\":\"555 0100\","
                       "\"appointments\":[]}}");
    booking_pgq_free(q);
    free(got);
    pair_close(&p);
}

/* A run keeps what it needs: the tools it started from may go (a tenant's reload) while it
 * waits for PostgreSQL. */
TEST(bookingpg_run_outlives_its_tools)
{
    pair_t p = pair_open(NULL);
    booking_pgq_t *avail =
        pg_start(&p, "checkAvailability", "{'date':'2026-12-03','serviceType':'Brake repair'}");
    booking_pgq_t *book = pg_start(&p, "bookAppointment", GRACE);
    booking_free(p.pg);
    p.pg = NULL;
    bool is_error = true;
    net_pg_msg_t m = ok_answer(1, 2, busy_dec3);
    char *out = booking_pg_resume(avail, &m, &is_error);
    ASSERT(!is_error);
    ASSERT_STR_CONTAINS(out, "\"slots\":[\"08:00\",\"12:00\",\"12:30\"");
    free(out);
    ASSERT(resume_text(book, "confirmation_taken", &is_error) == NULL);
    out = resume_text(book, "ok", &is_error);
    ASSERT(!is_error);
    ASSERT_STR_CONTAINS(out, "\"timeZone\":\"America/Los_Angeles\"");
    free(out);
    booking_pgq_free(avail);
    booking_pgq_free(book);
    pair_close(&p);
}
