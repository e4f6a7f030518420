/*
 * The built-in booking tools (SPEC 7, 14) on a real SQLite file with the demo company: slots
 * from hours, durations and bookings; booking and lookup; every error; no double booking across
 * two connections racing on a barrier, nor through the store actor from several threads.
 */
#include <regex.h>

#include "tests/agents/store/store_fixture.h"

#define RACE_ROUNDS   24
#define ACTOR_BOOKERS 20
#define ACTOR_THREADS 4

typedef struct conn {
    storedb_t *db;
    booking_t *b;
} conn_t;

static conn_t conn_open(void)
{
    char err[FIXTURE_ERR_LEN] = "";
    conn_t c;
    c.db = storedb_open(fixture_db, err, sizeof(err));
    if (c.db == NULL)
        TEST_FAIL_("storedb_open: %s", err);
    c.b = booking_new(storedb_handle(c.db), &fixture_ac, NULL, err, sizeof(err));
    if (c.b == NULL)
        TEST_FAIL_("booking_new: %s", err);
    return c;
}

static void conn_close(conn_t *c)
{
    booking_free(c->b);
    storedb_close(c->db);
}

static conn_t setup(void)
{
    fixture_init();
    return conn_open();
}

static void teardown(conn_t *c)
{
    conn_close(c);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

/* Runs a tool with args written with single quotes; returns the parsed output. */
static cJSON *run(conn_t *c, const char *name, const char *sq_args, bool *is_error)
{
    cJSON *args = fixture_args_sq(sq_args);
    char *out = booking_run(c->b, name, args, fixture_now_ms(), is_error);
    cJSON *res = cJSON_Parse(out);
    if (res == NULL)
        TEST_FAIL_("%s returned invalid JSON: %s", name, out);
    cJSON_Delete(args);
    free(out);
    return res;
}

static cJSON *run_ok(conn_t *c, const char *name, const char *sq_args)
{
    bool err = true;
    cJSON *res = run(c, name, sq_args, &err);
    if (err) {
        char *s = cJSON_PrintUnformatted(res);
        TEST_FAIL_("%s(%s) failed: %s", name, sq_args, s);
    }
    return res;
}

/* Expects a tool error with this code. */
static void expect_error(conn_t *c, const char *name, const char *sq_args, const char *code)
{
    bool err = false;
    cJSON *res = run(c, name, sq_args, &err);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(res, "error");
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!err || !cJSON_IsString(got) || strcmp(got->valuestring, code) != 0 ||
        !cJSON_IsString(msg) || msg->valuestring[0] == '\0') {
        char *s = cJSON_PrintUnformatted(res);
        TEST_FAIL_("%s(%s): want error %s, got %s (is_error %d)", name, sq_args, code, s, err);
    }
    cJSON_Delete(res);
}

/* The slots of an availability answer joined with commas. */
static void slots_of(const cJSON *res, char *out, size_t n)
{
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(res, "slots");
    const cJSON *s;
    out[0] = '\0';
    cJSON_ArrayForEach(s, slots)
    {
        if (out[0])
            strncat(out, ",", n - strlen(out) - 1);
        strncat(out, s->valuestring, n - strlen(out) - 1);
    }
}

static void expect_slots(conn_t *c, const char *sq_args, const char *want)
{
    cJSON *res = run_ok(c, "checkAvailability", sq_args);
    char got[2048];
    slots_of(res, got, sizeof(got));
    if (strcmp(got, want) != 0)
        TEST_FAIL_("checkAvailability(%s)\n#  got: %s\n# want: %s", sq_args, got, want);
    cJSON_Delete(res);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define OIL_DEC3_ALL                                                                               \
    "08:00,08:30,09:00,09:30,10:00,10:30,11:00,11:30,12:00,12:30,13:00,13:30,14:00,14:30,15:00,"   \
    "15:30,16:00,16:30,17:00,17:30"

/* Thursday 2026-12-03, open 08:00-18:00: every half hour from opening to closing - duration. */
TEST(booking_availability_weekday)
{
    conn_t c = setup();
    expect_slots(&c, "{'date':'2026-12-03','serviceType':'oil CHANGE'}", OIL_DEC3_ALL);
    cJSON *res =
        run_ok(&c, "checkAvailability", "{'date':'2026-12-03','serviceType':'Brake repair'}");
    ASSERT_STR_EQ(str_of(res, "serviceType"), "Brake repair");
    ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(res, "durationMin")->valueint, 120);
    ASSERT_STR_EQ(str_of(res, "timeZone"), "America/Los_Angeles");
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(res, "slots");
    ASSERT_EQ(cJSON_GetArraySize(slots), 17); /* 08:00 .. 16:00 */
    ASSERT_STR_EQ(cJSON_GetArrayItem(slots, 16)->valuestring, "16:00");
    cJSON_Delete(res);
    /* Saturday 09:00-16:00; a window narrows it; the service name is matched case-insensitively. */
    expect_slots(&c, "{'date':'2026-12-05','serviceType':'Tire services','start':'14:00'}",
                 "14:00,14:30,15:00");
    expect_slots(&c,
                 "{'date':'2026-12-03','serviceType':'Oil change','start':'09:00','end':'11:00',"
                 "'timeZone':'Europe/Berlin'}",
                 "09:00,09:30,10:00,10:30");
    teardown(&c);
}

/* Decision: a closed day is not an error; it answers closed:true and no slots. */
TEST(booking_availability_closed_day)
{
    conn_t c = setup();
    cJSON *res =
        run_ok(&c, "checkAvailability", "{'date':'2026-12-06','serviceType':'Oil change'}");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "closed")));
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "slots")), 0);
    cJSON_Delete(res);
    teardown(&c);
}

/* Today (12:00 local) lists only slots that have not begun. */
TEST(booking_availability_today)
{
    conn_t c = setup();
    expect_slots(&c, "{'date':'2026-12-01','serviceType':'Brake repair'}",
                 "12:30,13:00,13:30,14:00,14:30,15:00,15:30,16:00");
    expect_error(&c, "checkAvailability", "{'date':'2026-11-30','serviceType':'Oil change'}",
                 "invalid_date");
    teardown(&c);
}

TEST(booking_availability_excludes_bookings)
{
    conn_t c = setup();
    cJSON_Delete(run_ok(&c, "bookAppointment",
                        "{'date':'2026-12-03','time':'10:00','customerName':'Ada',"
                        "'customerPhone':'555-0100-111','serviceType':'Brake repair'}"));
    /* 10:00-12:00 is taken: 30-minute slots inside it go, 09:30 and 12:00 stay. */
    expect_slots(&c,
                 "{'date':'2026-12-03','serviceType':'Oil change','start':'09:00','end':'13:00'}",
                 "09:00,09:30,12:00,12:30");
    /* 90 minutes: 08:30-10:00 fits, 09:00-10:30 overlaps. */
    expect_slots(&c, "{'date':'2026-12-03','serviceType':'Engine diagnostics','end':'12:00'}",
                 "08:00,08:30");
    /* Another day is untouched. */
    expect_slots(&c, "{'date':'2026-12-04','serviceType':'Oil change'}", OIL_DEC3_ALL);
    teardown(&c);
}

TEST(booking_book_and_lookup)
{
    conn_t c = setup();
    cJSON *res = run_ok(&c, "bookAppointment",
                        "{'date':'2026-12-03','time':'09:30','customerName':'Grace Hopper',"
                        "'customerPhone':'(555) 010-0123','serviceType':'oil change',"
                        "'notes':'2019 Civic'}");
    const char *confirm = str_of(res, "confirmationNumber");
    regex_t re;
    ASSERT_EQ(regcomp(&re, "^PAL-[A-Z0-9]{6}$", REG_EXTENDED | REG_NOSUB), 0);
    ASSERT(confirm != NULL && regexec(&re, confirm, 0, NULL, 0) == 0);
    regfree(&re);
    const cJSON *appt = cJSON_GetObjectItemCaseSensitive(res, "appointment");
    ASSERT_STR_EQ(str_of(appt, "date"), "2026-12-03");
    ASSERT_STR_EQ(str_of(appt, "time"), "09:30");
    ASSERT_STR_EQ(str_of(appt, "endTime"), "10:00");
    ASSERT_STR_EQ(str_of(appt, "serviceType"), "Oil change");
    ASSERT_STR_EQ(str_of(appt, "customerName"), "Grace Hopper");

    cJSON *found = run_ok(&c, "lookupCustomer", "{'phone':'5550100123'}");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(found, "found")));
    const cJSON *cust = cJSON_GetObjectItemCaseSensitive(found, "customer");
    ASSERT_STR_EQ(str_of(cust, "name"), "Grace Hopper");
    ASSERT_STR_EQ(str_of(cust, "phone"), "(555) 010-0123");
    const cJSON *appts = cJSON_GetObjectItemCaseSensitive(cust, "appointments");
    ASSERT_EQ(cJSON_GetArraySize(appts), 1);
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(appts, 0), "confirmationNumber"), confirm);
    ASSERT_STR_EQ(str_of(cJSON_GetArrayItem(appts, 0), "notes"), "2019 Civic");
    cJSON_Delete(found);
    cJSON_Delete(res);

    /* A second booking by the same phone, written differently, is the same customer. */
    cJSON_Delete(run_ok(&c, "bookAppointment",
                        "{'date':'2026-12-04','time':'08:00','customerName':'Grace B. Hopper',"
                        "'customerPhone':'555.010.0123','serviceType':'Battery replacement'}"));
    found = run_ok(&c, "lookupCustomer", "{'phone':'+ 555 010 0123'}");
    cust = cJSON_GetObjectItemCaseSensitive(found, "customer");
    ASSERT_STR_EQ(str_of(cust, "name"), "Grace B. Hopper");
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cust, "appointments")), 2);
    cJSON_Delete(found);

    found = run_ok(&c, "lookupCustomer", "{'phone':'555-999-0000'}");
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(found, "found")));
    ASSERT(cJSON_GetObjectItemCaseSensitive(found, "customer") == NULL);
    cJSON_Delete(found);
    teardown(&c);
}

#define BOOK(date, time, svc)                                                                      \
    "{'date':'" date "','time':'" time "','customerName':'Bob','customerPhone':'5550100999',"      \
    "'serviceType':'" svc "'}"

TEST(booking_errors)
{
    conn_t c = setup();
    cJSON_Delete(run_ok(&c, "bookAppointment", BOOK("2026-12-03", "10:00", "Brake repair")));
    /* The same slot, and an overlapping one with another start. */
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "10:00", "Oil change"),
                 "slot_unavailable");
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "11:30", "Oil change"),
                 "slot_unavailable");
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "09:00", "Engine diagnostics"),
                 "slot_unavailable");
    /* Closed Sunday; past closing; before opening. */
    expect_error(&c, "bookAppointment", BOOK("2026-12-06", "10:00", "Oil change"), "outside_hours");
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "17:00", "Brake repair"),
                 "outside_hours");
    expect_error(&c, "bookAppointment", BOOK("2026-12-05", "08:00", "Oil change"), "outside_hours");
    /* Past days, today's past hours, malformed and impossible dates. */
    expect_error(&c, "bookAppointment", BOOK("2026-11-30", "10:00", "Oil change"), "invalid_date");
    expect_error(&c, "bookAppointment", BOOK("12/03/2026", "10:00", "Oil change"), "invalid_date");
    expect_error(&c, "bookAppointment", BOOK("2026-02-30", "10:00", "Oil change"), "invalid_date");
    expect_error(&c, "bookAppointment", BOOK("2026-12-01", "11:00", "Oil change"), "invalid_time");
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "9am", "Oil change"), "invalid_time");
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "09:15", "Oil change"), "invalid_time");
    expect_error(&c, "checkAvailability",
                 "{'date':'2026-12-03','serviceType':'Oil change','start':'noon'}", "invalid_time");
    /* Services; phones; missing or mistyped fields. */
    expect_error(&c, "bookAppointment", BOOK("2026-12-03", "14:00", "Teleportation"),
                 "unknown_service");
    bool err = false;
    cJSON *res = run(&c, "checkAvailability", "{'date':'2026-12-03','serviceType':'x'}", &err);
    const cJSON *valid =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "error"), "valid");
    ASSERT_EQ(cJSON_GetArraySize(valid), 7);
    ASSERT_STR_EQ(cJSON_GetArrayItem(valid, 0)->valuestring, "Oil change");
    cJSON_Delete(res);
    expect_error(&c, "bookAppointment",
                 "{'date':'2026-12-03','time':'14:00','customerName':'Bob',"
                 "'customerPhone':'12-34','serviceType':'Oil change'}",
                 "invalid_phone");
    expect_error(&c, "lookupCustomer", "{'phone':'123'}", "invalid_phone");
    expect_error(&c, "bookAppointment",
                 "{'date':'2026-12-03','time':'14:00','customerPhone':'5550100999',"
                 "'serviceType':'Oil change'}",
                 "invalid_arguments");
    expect_error(&c, "bookAppointment",
                 "{'date':'2026-12-03','time':1400,'customerName':'Bob',"
                 "'customerPhone':'5550100999','serviceType':'Oil change'}",
                 "invalid_arguments");
    expect_error(&c, "checkAvailability", "{'serviceType':'Oil change'}", "invalid_arguments");
    expect_error(&c, "lookupCustomer", "{}", "invalid_arguments");
    expect_error(&c, "cancelEverything", "{}", "unknown_tool");
    teardown(&c);
}

/* ---- Two connections racing for one slot ---------------------------------------------------- */

typedef struct racer {
    pthread_barrier_t *barrier;
    int id;
    int wins;
    char lost_code[RACE_ROUNDS][32];
} racer_t;

static void *race_thread(void *arg)
{
    racer_t *r = arg;
    conn_t c = conn_open();
    for (int round = 0; round < RACE_ROUNDS; round++) {
        /* Odd rounds: the same start; even rounds: overlapping with different starts. */
        static const int days[] = {3, 4, 7}; /* Thursday, Friday, Monday: open 08:00-18:00 */
        int day = days[round / 8], hour = 8 + round % 8;
        char args[256];
        snprintf(args, sizeof(args),
                 "{\"date\":\"2026-12-%02d\",\"time\":\"%02d:%s\",\"customerName\":\"R%d\","
                 "\"customerPhone\":\"555010%04d\",\"serviceType\":\"%s\"}",
                 day, hour, (round % 2 == 0 && r->id == 1) ? "30" : "00", r->id, r->id,
                 r->id == 0 ? "Tire services" : "Oil change");
        cJSON *a = cJSON_Parse(args);
        bool is_error = true;
        pthread_barrier_wait(r->barrier);
        char *out = booking_run(c.b, "bookAppointment", a, fixture_now_ms(), &is_error);
        if (!is_error) {
            r->wins++;
        } else {
            cJSON *res = cJSON_Parse(out);
            const char *code = str_of(cJSON_GetObjectItemCaseSensitive(res, "error"), "code");
            str_copy(r->lost_code[round], code ? code : "?", sizeof(r->lost_code[round]));
            cJSON_Delete(res);
        }
        free(out);
        cJSON_Delete(a);
    }
    conn_close(&c);
    return NULL;
}

TEST(booking_two_connections_race)
{
    conn_t c = setup(); /* creates the file and schema */
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    racer_t r[2] = {{.barrier = &barrier, .id = 0}, {.barrier = &barrier, .id = 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    ASSERT_EQ(r[0].wins + r[1].wins, RACE_ROUNDS);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        bool lost0 = r[0].lost_code[round][0] != '\0', lost1 = r[1].lost_code[round][0] != '\0';
        if (lost0 == lost1)
            TEST_FAIL_("round %d: %s winners", round, lost0 ? "no" : "two");
        ASSERT_STR_EQ(lost0 ? r[0].lost_code[round] : r[1].lost_code[round], "slot_unavailable");
    }
    /* The database holds one appointment per round, whatever the interleaving. */
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(storedb_handle(c.db), "SELECT count(*) FROM appointments", -1, &st,
                                 NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), RACE_ROUNDS);
    sqlite3_finalize(st);
    teardown(&c);
}

/* The schema refuses an overlap even from code that skips the check. */
TEST(booking_schema_refuses_overlap)
{
    conn_t c = setup();
    sqlite3 *db = storedb_handle(c.db);
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT INTO customers (phone_digits, phone, name, created_at, "
                           "updated_at) VALUES ('5550100', '5550100', 'X', 0, 0);"
                           "INSERT INTO appointments (confirmation, customer_id, service, date, "
                           "start_min, end_min, created_at) VALUES ('A', 1, 's', '2026-12-03', "
                           "600, 720, 0)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT INTO appointments (confirmation, customer_id, service, date, "
                           "start_min, end_min, created_at) VALUES ('B', 1, 's', '2026-12-03', "
                           "690, 750, 0)",
                           NULL, NULL, NULL),
              SQLITE_CONSTRAINT);
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT INTO appointments (confirmation, customer_id, service, date, "
                           "start_min, end_min, created_at) VALUES ('C', 1, 's', '2026-12-03', "
                           "720, 750, 0)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    teardown(&c);
}

/* ---- Through the store actor ---------------------------------------------------------------- */

typedef struct sender {
    collector_t *c;
    int first, count;
} sender_t;

static void *send_bookings(void *arg)
{
    sender_t *s = arg;
    for (int i = s->first; i < s->first + s->count; i++) {
        char args[256];
        snprintf(args, sizeof(args),
                 "{\"date\":\"2026-12-03\",\"time\":\"10:00\",\"customerName\":\"C%d\","
                 "\"customerPhone\":\"555020%04d\",\"serviceType\":\"Oil change\"}",
                 i, i);
        fixture_call_tool(s->c, (uint64_t)i, "bookAppointment", args);
    }
    return NULL;
}

TEST(booking_through_store_actor)
{
    fixture_init();
    fixture_start_store();
    collector_t *c = collector_new();
    pthread_t th[ACTOR_THREADS];
    sender_t s[ACTOR_THREADS];
    for (int i = 0; i < ACTOR_THREADS; i++) {
        s[i] = (sender_t){c, i * (ACTOR_BOOKERS / ACTOR_THREADS), ACTOR_BOOKERS / ACTOR_THREADS};
        ASSERT_EQ(pthread_create(&th[i], NULL, send_bookings, &s[i]), 0);
    }
    for (int i = 0; i < ACTOR_THREADS; i++)
        pthread_join(th[i], NULL);
    collector_wait(c, ACTOR_BOOKERS);
    pthread_mutex_lock(&c->lock);
    ASSERT_EQ(c->ok, 1);
    ASSERT_EQ(c->failed, ACTOR_BOOKERS - 1);
    pthread_mutex_unlock(&c->lock);

    /* A name the store does not run. */
    fixture_call_tool(c, 99, "getNextResponseFromSupervisor", "{}");
    collector_wait(c, 1);
    pthread_mutex_lock(&c->lock);
    ASSERT_STR_CONTAINS(c->last, "unknown_tool");
    pthread_mutex_unlock(&c->lock);
    actor_unref(&c->actor);
    fixture_stop_store();
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

TEST(booking_tool_defs)
{
    fixture_init();
    cJSON *arr = cJSON_CreateArray();
    booking_tool_defs(&fixture_ac, arr);
    ASSERT_EQ(cJSON_GetArraySize(arr), 3);
    const char *names[] = {"checkAvailability", "bookAppointment", "lookupCustomer"};
    for (int i = 0; i < 3; i++) {
        const cJSON *t = cJSON_GetArrayItem(arr, i);
        ASSERT_STR_EQ(str_of(t, "type"), "function");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        ASSERT_STR_EQ(str_of(f, "name"), names[i]);
        ASSERT(booking_is_tool(names[i]));
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "parameters");
        ASSERT_STR_EQ(str_of(p, "type"), "object");
        ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(p, "required")));
    }
    ASSERT(!booking_is_tool("navigate"));
    const cJSON *book = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 1), "function");
    ASSERT_STR_CONTAINS(str_of(book, "description"), "YYYY-MM-DD");
    ASSERT_STR_CONTAINS(str_of(book, "description"), "HH:MM");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(book, "parameters"), "properties");
    const cJSON *svc_enum = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(props, "serviceType"), "enum");
    ASSERT_EQ(cJSON_GetArraySize(svc_enum), 7);
    ASSERT_STR_EQ(cJSON_GetArrayItem(svc_enum, 6)->valuestring, "Battery replacement");
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                  cJSON_GetObjectItemCaseSensitive(book, "parameters"), "required")),
              5);
    cJSON_Delete(arr);
    fixture_cleanup();
    FIXTURE_LEAK_CHECK();
}

/* Two tenants keep separate calendars and customers on one database (SPEC 16). */
TEST(booking_tenants_have_their_own_calendars)
{
    conn_t a = setup();
    char err[FIXTURE_ERR_LEN] = "";
    conn_t b = {.db = a.db,
                .b = booking_new(storedb_handle(a.db), &fixture_ac, "beta", err, sizeof(err))};
    ASSERT(b.b != NULL);
    const char *slot = "{'date':'2026-12-03','time':'09:30','customerName':'Ann',"
                       "'customerPhone':'555 010 0199','serviceType':'oil change'}";
    cJSON *ra = run_ok(&a, "bookAppointment", slot);
    cJSON *rb = run_ok(&b, "bookAppointment", slot); /* the same slot, the other calendar */
    bool is_error = false;
    cJSON *again = run(&b, "bookAppointment", slot, &is_error);
    ASSERT(is_error); /* but not twice in one */
    cJSON *found = run_ok(&b, "lookupCustomer", "{'phone':'5550100199'}");
    const cJSON *appts = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(found, "customer"), "appointments");
    ASSERT_EQ(cJSON_GetArraySize(appts), 1); /* beta's customer sees beta's booking only */
    cJSON_Delete(ra);
    cJSON_Delete(rb);
    cJSON_Delete(again);
    cJSON_Delete(found);
    booking_free(b.b);
    teardown(&a);
}
