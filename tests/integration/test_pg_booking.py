"""The booking schema and statements of the PostgreSQL store (agents/store/bookingpg.c; SPEC 13)
on a real PostgreSQL (pgfix.py): PGSCHEMA_BOOKING_V1 loads as a migration runs it (inside a
PL/pgSQL EXECUTE), bookings never overlap within a tenant's day (the exclusion constraint, also
for raw inserts), tenants keep their own calendars, 20 concurrent bookings of one slot store
exactly one, a confirmation number that exists is answered as such, a booking commits with
synchronous_commit on, and the lookup answers the customer with their appointments.

The SQL is read out of the C source (its string literals), so what runs here is what the store
sends; the statements run through PREPARE/EXECUTE with text parameters, as net_pg_query() sends
them (no parameter types)."""
import os
import re
import subprocess
import time
import unittest

import pgfix

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "agents", "store", "bookingpg.c")
CONCURRENT = 20
LOCK_KEY = 73162471  # the advisory lock the concurrent bookers wait on, to start together
WAIT_S = 15

C_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def c_string(src, name):
    """The value of `const char name[] = "..." "...";` in src: adjacent literals joined, escapes
    decoded, comments between them skipped."""
    m = re.search(r"\b%s\[\]\s*=" % re.escape(name), src)
    if m is None:
        raise AssertionError("%s is not defined in %s" % (name, SOURCE))
    i, out = m.end(), []
    while True:
        while src[i].isspace():
            i += 1
        if src.startswith("/*", i):
            i = src.index("*/", i) + 2
            continue
        if src[i] == ";":
            return "".join(out)
        if src[i] != '"':
            raise AssertionError("%s: unexpected %r" % (name, src[i:i + 40]))
        i += 1
        while src[i] != '"':
            if src[i] == "\\":
                out.append(C_ESCAPES[src[i + 1]])
                i += 2
            else:
                out.append(src[i])
                i += 1
        i += 1


def literal(v):
    return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"


class PgBookingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SOURCE) as f:
            src = f.read()
        cls.schema = c_string(src, "PGSCHEMA_BOOKING_V1")
        cls.busy_sql = c_string(src, "PGQ_BOOK_BUSY")
        cls.book_sql = c_string(src, "PGQ_BOOK_INSERT")
        cls.lookup_sql = c_string(src, "PGQ_BOOK_LOOKUP")
        cls.pg = pgfix.Postgres().start()
        try:
            # As pgschema_setup() runs a version: inside EXECUTE, in a DO block.
            cls.pg.sql("DO $mig$ BEGIN EXECUTE $v1$%s$v1$; END $mig$" % cls.schema)
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        self.pg.sql("TRUNCATE appointments, customers RESTART IDENTITY")

    def run_stmt(self, sql, *params):
        """Runs one of the store's statements with text params; returns its rows."""
        args = ", ".join(literal(p) for p in params)
        return self.pg.sql("PREPARE q AS %s; EXECUTE q(%s)" % (sql, args))

    def book(self, tenant="default", confirmation="PAL-AAAAAA", phone="(555) 010-0123",
             name="Grace Hopper", service="Oil change", date="2026-12-03", start=600, end=630,
             notes=None, at=1000):
        digits = re.sub(r"\D", "", phone)
        rows = self.run_stmt(self.book_sql, tenant, confirmation, digits, phone, name, service,
                             date, start, end, notes, at)
        self.assertEqual(len(rows), 1)
        return rows[0][0]

    def insert_raw(self, tenant, date, start, end, confirmation):
        """An appointment inserted without sb_book(): what the constraint alone allows."""
        self.pg.sql("INSERT INTO customers (tenant, phone_digits, phone, name, created_at, "
                    "updated_at) VALUES (%s, '5550100999', '5550100999', 'Raw', 0, 0) "
                    "ON CONFLICT DO NOTHING" % literal(tenant))
        self.pg.sql("INSERT INTO appointments (tenant, confirmation, customer_id, service, date, "
                    "start_min, end_min, created_at) SELECT %s, %s, id, 's', %s, %d, %d, 0 "
                    "FROM customers WHERE tenant = %s AND phone_digits = '5550100999'"
                    % (literal(tenant), literal(confirmation), literal(date), start, end,
                       literal(tenant)))

    def count(self, where="true"):
        return int(self.pg.value("SELECT count(*) FROM appointments WHERE " + where))

    def test_schema_text_fits_a_migration(self):
        for tag in ("$$", "$v1$", "$mig$", "--"):
            self.assertNotIn(tag, self.schema)
        self.assertIn("CREATE EXTENSION IF NOT EXISTS btree_gist", self.schema)
        self.assertEqual(self.pg.value("SELECT count(*) FROM pg_constraint WHERE conname = "
                                       "'appointments_no_overlap' AND contype = 'x'"), "1")

    def test_non_overlapping_bookings_succeed(self):
        self.assertEqual(self.book(confirmation="PAL-AAAAA1", start=600, end=720), "ok")
        self.assertEqual(self.book(confirmation="PAL-AAAAA2", start=720, end=750), "ok")
        self.assertEqual(self.book(confirmation="PAL-AAAAA3", start=540, end=600), "ok")
        self.assertEqual(self.book(confirmation="PAL-AAAAA4", date="2026-12-04", start=600,
                                   end=720), "ok")
        self.assertEqual(self.count(), 4)
        self.assertEqual(self.run_stmt(self.busy_sql, "default", "2026-12-03"),
                         [["540", "600"], ["600", "720"], ["720", "750"]])
        self.assertEqual(self.run_stmt(self.busy_sql, "default", "2026-12-05"), [])

    def test_overlap_is_refused_by_the_exclusion_constraint(self):
        self.assertEqual(self.book(confirmation="PAL-AAAAA1", start=600, end=720), "ok")
        # sb_book() answers "taken" for the same start and for an overlapping one, and keeps
        # nothing of the attempt (the customer upsert goes with it).
        self.assertEqual(self.book(confirmation="PAL-AAAAA2", phone="555 010 0124", start=600,
                                   end=630), "taken")
        self.assertEqual(self.book(confirmation="PAL-AAAAA3", phone="555 010 0124", start=690,
                                   end=750), "taken")
        self.assertEqual(self.book(confirmation="PAL-AAAAA4", phone="555 010 0124", start=540,
                                   end=630), "taken")
        self.assertEqual(self.count(), 1)
        self.assertEqual(self.pg.value("SELECT count(*) FROM customers"), "1")
        # A raw insert meets the constraint itself.
        with self.assertRaisesRegex(Exception, "appointments_no_overlap"):
            self.insert_raw("default", "2026-12-03", 700, 760, "RAW-1")
        self.insert_raw("default", "2026-12-03", 720, 760, "RAW-2")  # touching is not overlapping
        self.assertEqual(self.count(), 2)

    def test_another_tenant_books_the_same_slot(self):
        self.assertEqual(self.book(tenant="default", confirmation="PAL-AAAAA1"), "ok")
        self.assertEqual(self.book(tenant="acme", confirmation="ACM-AAAAA1"), "ok")
        self.assertEqual(self.book(tenant="acme", confirmation="ACM-AAAAA2"), "taken")
        self.insert_raw("beta", "2026-12-03", 600, 630, "RAW-1")
        self.assertEqual(self.count("date = '2026-12-03' AND start_min = 600"), 3)
        # Each tenant's busy list and customers are its own.
        self.assertEqual(self.run_stmt(self.busy_sql, "acme", "2026-12-03"), [["600", "630"]])
        self.assertEqual(len(self.run_stmt(self.lookup_sql, "acme", "5550100123")), 1)
        self.assertEqual(self.run_stmt(self.lookup_sql, "beta", "5550100123"), [])

    def test_existing_confirmation_number_is_answered_as_such(self):
        self.assertEqual(self.book(confirmation="PAL-SAME00"), "ok")
        self.assertEqual(self.book(confirmation="PAL-SAME00", phone="555 010 0124", start=720,
                                   end=750), "confirmation_taken")
        self.assertEqual(self.count(), 1)
        self.assertEqual(self.book(confirmation="PAL-OTHER0", phone="555 010 0124", start=720,
                                   end=750), "ok")

    def test_booking_commits_synchronously(self):
        # The session default is off (pgschema_setup()); the booking's transaction turns it on.
        out = self.pg.sql("BEGIN; SET LOCAL synchronous_commit = off; PREPARE q AS %s; "
                          "EXECUTE q('default', 'PAL-SYNC00', '5550100123', 'p', 'n', 's', "
                          "'2026-12-03', '600', '630', NULL, '1'); SHOW synchronous_commit"
                          % self.book_sql)
        self.assertEqual(out, [["ok"], ["on"]])
        self.assertEqual(self.count(), 0)  # psql -c ran it in one transaction, never committed

    def test_twenty_concurrent_bookings_of_one_slot_store_one(self):
        holder = subprocess.Popen(self.pg.psql_argv(), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        bookers = []
        try:
            holder.stdin.write("SELECT pg_advisory_lock(%d);\n\\echo locked\n" % LOCK_KEY)
            holder.stdin.flush()
            line = " "
            while line and line.strip() != "locked":  # after the lock's (empty) result row
                line = holder.stdout.readline()
            self.assertEqual(line.strip(), "locked")
            for i in range(CONCURRENT):
                phone = "555020%04d" % i
                steps = ["SELECT pg_advisory_lock_shared(%d)" % LOCK_KEY,
                         "PREPARE q AS " + self.book_sql,
                         "EXECUTE q('default', 'PAL-CC%04d', '%s', '%s', 'C%d', 'Oil change', "
                         "'2026-12-03', '600', '630', NULL, '1000')" % (i, phone, phone, i)]
                argv = self.pg.psql_argv()
                for step in steps:
                    argv += ["-c", step]
                bookers.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                text=True))
            deadline = time.monotonic() + WAIT_S
            while self.pg.value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                                "NOT granted") != str(CONCURRENT):
                self.assertLess(time.monotonic(), deadline, "the bookers did not all wait")
                time.sleep(0.02)
            holder.stdin.write("SELECT pg_advisory_unlock(%d);\n\\q\n" % LOCK_KEY)
            holder.stdin.flush()
            answers = []
            for p in bookers:
                out, err = p.communicate(timeout=WAIT_S)
                self.assertEqual(p.returncode, 0, err)
                answers.append([line for line in out.splitlines() if line][-1])
        finally:
            for p in bookers + [holder]:
                if p.poll() is None:
                    p.kill()
                p.wait()
        self.assertEqual(sorted(answers), ["ok"] + ["taken"] * (CONCURRENT - 1))
        self.assertEqual(self.count(), 1)
        self.assertEqual(self.pg.value("SELECT count(*) FROM customers"), "1")

    def test_lookup_by_phone_answers_customer_and_appointments(self):
        self.assertEqual(self.book(confirmation="PAL-LOOK01", date="2026-12-04", start=480,
                                   end=510, notes="2019 Civic"), "ok")
        self.assertEqual(self.book(confirmation="PAL-LOOK02", phone="555.010.0123",
                                   name="Grace B. Hopper", service="Brake repair",
                                   date="2026-12-03", start=600, end=720, at=2000), "ok")
        rows = self.run_stmt(self.lookup_sql, "default", "5550100123")
        # psql prints SQL NULL as an empty field.
        self.assertEqual(rows, [
            ["Grace B. Hopper", "555.010.0123", "PAL-LOOK02", "2026-12-03", "600", "720",
             "Brake repair", ""],
            ["Grace B. Hopper", "555.010.0123", "PAL-LOOK01", "2026-12-04", "480", "510",
             "Oil change", "2019 Civic"],
        ])
        self.assertEqual(self.pg.value("SELECT count(*) FROM appointments WHERE notes IS NULL"),
                         "1")
        self.assertEqual(self.pg.sql("SELECT created_at, updated_at FROM customers"),
                         [["1000", "2000"]])
        # A customer without appointments: one row, the appointment's columns NULL.
        self.pg.sql("INSERT INTO customers (tenant, phone_digits, phone, name, created_at, "
                    "updated_at) VALUES ('default', '5550100777', '555 010 0777', 'Ada', 0, 0)")
        self.assertEqual(self.run_stmt(self.lookup_sql, "default", "5550100777"),
                         [["Ada", "555 010 0777", "", "", "", "", "", ""]])
        self.assertEqual(self.run_stmt(self.lookup_sql, "default", "5559990000"), [])


if __name__ == "__main__":
    unittest.main()
