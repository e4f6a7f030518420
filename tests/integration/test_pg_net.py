"""net_pg_query() (net/pg.c) against a real PostgreSQL (pgfix.py), which the tests stop and start
under it (SPEC 13).

The program under test is probe_pg (tests/net/probe_pg.c): the actor runtime and the network
threads of the service's library, and net_pg_query() driven by one JSON command a line on its
stdin. It is found in $SWITCHBOARD_PROBES/net/ (make test-integration sets it), else in the
build folder of $SWITCHBOARD_BIN (build/bin/switchboard: build/release/tests/net/)."""
import json
import os
import select
import subprocess
import tempfile
import time
import unittest

from harness import binary_path
from pgfix import Postgres

QUEUE = 1  # NET_PG_QUEUE
CMD_S = 90  # one command's answer, at most (a burst under TSan included)
READY_S = 15
QUEUE_MAX = 100000  # pg.c: PG_QUEUE_MAX
QUEUE_MAX_BYTES = 32 * 1024 * 1024  # pg.c: PG_QUEUE_MAX_BYTES


def probe_path():
    base = os.environ.get("SWITCHBOARD_PROBES")
    if not base:
        bindir = os.path.dirname(binary_path())  # build/bin, or build/<mode>/bin
        out = os.path.dirname(bindir)
        if os.path.basename(out) == "build":
            out = os.path.join(out, "release")
        base = os.path.join(out, "tests")
    return os.path.abspath(os.path.join(base, "net", "probe_pg"))


class Probe:
    """One probe_pg process: cmd() sends a command and returns its answer."""

    def __init__(self, url, setup=None):
        self.err = tempfile.NamedTemporaryFile(prefix="probe_pg-", suffix=".log", delete=False)
        argv = [probe_path(), url] + ([setup] if setup is not None else [])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True)
        self.stopped = None
        first = self._line()
        if not first.get("started"):
            raise AssertionError("probe_pg did not start: %r %s" % (first, self.log_text()))

    def _line(self, timeout=CMD_S):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("probe_pg answered nothing in %d s; log:\n%s"
                                 % (timeout, self.log_text()[-3000:]))
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("probe_pg exited (%s); log:\n%s"
                                 % (self.proc.wait(), self.log_text()[-3000:]))
        return json.loads(line)

    def cmd(self, op, **kw):
        kw["op"] = op
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        return self._line()

    def query(self, sql, params=None, flags=0, ms=10000):
        return self.cmd("query", sql=sql, params=params or [], flags=flags, ms=ms)

    def send(self, sql, cookie, params=None, flags=0, target=True):
        r = self.cmd("send", sql=sql, params=params or [], flags=flags, cookie=cookie,
                     target=target)
        assert r["rc"] == 0, r
        return r

    def collect(self, n, ms=20000):
        return self.cmd("collect", n=n, ms=ms)["answers"]

    def wait_ready(self, want=True, ms=READY_S * 1000):
        return self.cmd("wait_ready", want=want, ms=ms)["ready"]

    def metric(self, name):
        for line in self.cmd("metrics")["text"].splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        return None

    def quit(self):
        """Stops the probe (net_stop() drains first); returns its last line. Fails on a non-zero
        exit (a leak, a sanitizer report) or a sanitizer line in its log."""
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.flush()
        self.stopped = self._line()
        rc = self.proc.wait(30)
        log = self.log_text()
        assert rc == 0, "probe_pg exited %d:\n%s" % (rc, log[-3000:])
        for bad in ("Sanitizer", "runtime error:", "LeakSanitizer"):
            assert bad not in log, log[-3000:]
        return self.stopped

    def log_text(self):
        with open(self.err.name, errors="replace") as f:
            return f.read()

    def events(self, name):
        out = []
        for line in self.log_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and e.get("event") == name:
                out.append(e)
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.unlink(self.err.name)


def statuses(answers):
    return [(a["cookie"], a["status"]) for a in sorted(answers, key=lambda a: a["cookie"])]


class PgNetTest(unittest.TestCase):
    """One PostgreSQL for the class; a test that stops it starts it again."""

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres().start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        self.probes = []
        if self.pg.proc is None:
            self.pg.start()

    def tearDown(self):
        for p in self.probes:
            p.close()
        if self.pg.proc is None:
            self.pg.start()

    def probe(self, url=None, setup=None, ready=True):
        p = Probe(url or self.pg.url, setup)
        self.probes.append(p)
        if ready:
            self.assertTrue(p.wait_ready(), p.log_text())
        return p

    def table(self, name, columns="a int, s int"):
        self.pg.sql("DROP TABLE IF EXISTS %s; CREATE TABLE %s (%s)" % (name, name, columns))

    # ---- Answers ---------------------------------------------------------------------------

    def test_rows_columns_and_nulls(self):
        p = self.probe()
        r = p.query("SELECT g, CASE WHEN g = 2 THEN NULL ELSE 'v' || g END, $1::text, $2::text "
                    "FROM generate_series(1, 3) g ORDER BY g", params=["é ü", None])
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["ncols"], 4)
        self.assertEqual(r["rows"], [["1", "v1", "é ü", None], ["2", None, "é ü", None],
                                     ["3", "v3", "é ü", None]])
        r = p.query("SELECT ''::text, NULL::int")
        self.assertEqual(r["rows"], [["", None]])
        r = p.query("SELECT 1 WHERE false")
        self.assertEqual((r["status"], r["ncols"], r["rows"]), ("ok", 1, []))
        self.table("pg_cmd")
        r = p.query("INSERT INTO pg_cmd VALUES ($1::int, $2::int)", params=["7", "8"])
        self.assertEqual((r["status"], r["ncols"], r["rows"]), ("ok", 0, []))
        self.assertEqual(self.pg.sql("SELECT a, s FROM pg_cmd"), [["7", "8"]])
        p.quit()

    def test_failure_answers_sqlstate_and_the_next_query_runs(self):
        p = self.probe()
        self.table("pg_uniq", "k int PRIMARY KEY")
        # Sent back to back: they share the pipeline, each in its own transaction.
        p.send("INSERT INTO pg_uniq VALUES (1)", 1)
        p.send("INSERT INTO pg_uniq VALUES (1)", 2)
        p.send("SELECT 1 / 0", 3)
        p.send("SELECT * FROM pg_no_such_table", 4)
        p.send("INSERT INTO pg_uniq VALUES (2) RETURNING k", 5)
        got = {a["cookie"]: a for a in p.collect(5)}
        self.assertEqual(sorted(got), [1, 2, 3, 4, 5])
        self.assertEqual(got[1]["status"], "ok")
        self.assertEqual((got[2]["status"], got[2]["sqlstate"]), ("failed", "23505"))
        self.assertIn("duplicate key", got[2]["error"])
        self.assertEqual((got[3]["status"], got[3]["sqlstate"]), ("failed", "22012"))
        self.assertEqual((got[4]["status"], got[4]["sqlstate"]), ("failed", "42P01"))
        self.assertEqual((got[5]["status"], got[5]["rows"]), ("ok", [["2"]]))
        self.assertEqual(self.pg.sql("SELECT k FROM pg_uniq ORDER BY k"), [["1"], ["2"]])
        # Without a target the failure is logged: SQLSTATE, error, the statement's start.
        p.send("SELECT 1 / 0 AS this_statement_is_longer_than_eighty_characters_so_the_log_"
               "keeps_only_its_first_eighty", 0, target=False)
        self.assertEqual(p.query("SELECT 1")["status"], "ok")
        logged = p.events("pg.query_failed")
        self.assertEqual(len(logged), 1, p.log_text())
        self.assertEqual(logged[0]["sqlstate"], "22012")
        self.assertEqual(len(logged[0]["sql"]), 80)
        self.assertTrue(logged[0]["sql"].startswith("SELECT 1 / 0 AS this_statement"))
        p.quit()

    def test_ten_thousand_queries_from_four_actors_in_order(self):
        p = self.probe()
        self.table("pg_burst")
        r = p.cmd("burst", actors=4, per_actor=2500, sql="INSERT INTO pg_burst VALUES "
                  "($1::int, $2::int) RETURNING s", ms=CMD_S * 1000 - 5000)
        self.assertEqual(r, {"done": True, "answers": 10000, "ok": 10000, "in_order": True})
        self.assertEqual(self.pg.sql("SELECT count(*), count(DISTINCT (a, s)), min(s), max(s) "
                                     "FROM pg_burst"), [["10000", "10000", "0", "2499"]])
        self.assertEqual(p.metric("switchboard_pg_seconds_count"), 10000)
        self.assertEqual(p.metric("switchboard_pg_connected"), 1)
        self.assertEqual(p.metric("switchboard_store_queued"), 0)
        p.quit()

    # ---- PostgreSQL goes away and comes back ---------------------------------------------------

    def test_writes_queued_while_down_are_applied_once(self):
        p = self.probe()
        self.table("pg_down")
        self.table("pg_down_nt", "v int")
        self.pg.stop()
        self.assertFalse(p.wait_ready(False))
        self.assertEqual(p.metric("switchboard_pg_connected"), 0)
        for i in range(200):
            p.send("INSERT INTO pg_down VALUES ($1::int, $2::int)", 1000 + i, params=[1, i],
                   flags=QUEUE)
        self.assertEqual(p.cmd("flood", n=50, sql="INSERT INTO pg_down_nt VALUES ($1::int)",
                               flags=QUEUE), {"accepted": 50})
        # Without NET_PG_QUEUE: answered at once, not sent.
        t0 = time.monotonic()
        r = p.query("INSERT INTO pg_down VALUES (2, 0)")
        self.assertEqual(r["status"], "unreachable")
        self.assertLess(time.monotonic() - t0, 2)
        p.send("INSERT INTO pg_down VALUES (3, 0)", 1, flags=0)
        self.assertEqual(statuses(p.collect(1)), [(1, "unreachable")])
        self.assertEqual(p.metric("switchboard_store_queued"), 250)
        self.assertFalse(p.cmd("ready")["ready"])
        self.pg.start()
        self.assertTrue(p.wait_ready())
        answers = p.collect(200)
        self.assertEqual(statuses(answers), [(1000 + i, "ok") for i in range(200)])
        self.assertEqual(self.pg.sql("SELECT a, count(*), count(DISTINCT s) FROM pg_down "
                                     "GROUP BY a"), [["1", "200", "200"]])
        self.assertEqual(self.pg.value("SELECT count(*) FROM pg_down_nt"), "50")
        self.assertEqual(p.metric("switchboard_store_queued"), 0)
        self.assertEqual(p.events("pg.query_failed"), [])
        p.quit()

    def test_in_flight_when_the_server_stops(self):
        p = self.probe()
        self.table("pg_flight", "v int")
        # Both are in flight while the first sleeps (long enough for a loaded machine to stop
        # the server meanwhile); a fast shutdown ends the session (FATAL).
        p.send("INSERT INTO pg_flight SELECT 1 FROM pg_sleep(3)", 1, flags=QUEUE)
        p.send("INSERT INTO pg_flight VALUES (2)", 2, flags=0)
        time.sleep(0.5)
        self.pg.stop()
        self.assertEqual(statuses(p.collect(1, ms=5000)), [(2, "unreachable")])
        self.pg.start()
        self.assertEqual(statuses(p.collect(1)), [(1, "ok")])
        self.assertEqual(self.pg.sql("SELECT v FROM pg_flight"), [["1"]])
        self.assertEqual(len(p.events("pg.down")), 1, p.log_text())
        p.quit()

    def test_unreachable_at_start_then_ready(self):
        self.pg.stop()
        p = self.probe(ready=False)
        time.sleep(0.5)
        self.assertFalse(p.cmd("ready")["ready"])
        self.assertEqual(p.query("SELECT 1")["status"], "unreachable")
        p.send("SELECT 'waited'", 9, flags=QUEUE)
        self.assertEqual(p.metric("switchboard_pg_connected"), 0)
        self.pg.start()
        self.assertTrue(p.wait_ready())
        a = p.collect(1)
        self.assertEqual((a[0]["cookie"], a[0]["status"], a[0]["rows"]), (9, "ok", [["waited"]]))
        p.quit()

    # ---- Set-up --------------------------------------------------------------------------------

    def test_setup_runs_on_every_connection(self):
        self.pg.sql("DROP TABLE IF EXISTS pg_setup_made")
        p = self.probe(setup="CREATE TABLE IF NOT EXISTS pg_setup_made (x int); "
                             "SET application_name = 'probe_set_up'")
        self.assertEqual(self.pg.value("SELECT count(*) FROM pg_setup_made"), "0")
        r = p.query("SELECT current_setting('application_name')")
        self.assertEqual(r["rows"], [["probe_set_up"]])
        self.pg.restart()
        self.assertTrue(p.wait_ready())
        self.assertEqual(p.query("SELECT current_setting('application_name')")["rows"],
                         [["probe_set_up"]])
        self.assertEqual(p.events("pg.setup_failed"), [])
        p.quit()

    def test_failed_setup_is_retried_until_it_works(self):
        self.pg.sql("DROP TABLE IF EXISTS pg_setup_gate")
        p = self.probe(setup="SET application_name = 'gated'; SELECT 1 FROM pg_setup_gate",
                       ready=False)
        time.sleep(1.5)
        self.assertFalse(p.cmd("ready")["ready"])
        self.assertEqual(p.query("SELECT 1")["status"], "unreachable")
        p.send("SELECT current_setting('application_name')", 4, flags=QUEUE)
        failed = p.events("pg.setup_failed")
        self.assertGreaterEqual(len(failed), 2, p.log_text())  # tried again, with backoff
        self.assertIn("pg_setup_gate", failed[0]["error"])
        self.pg.sql("CREATE TABLE pg_setup_gate (x int)")
        self.assertTrue(p.wait_ready())
        a = p.collect(1)
        self.assertEqual((a[0]["cookie"], a[0]["rows"]), (4, [["gated"]]))
        p.quit()

    # ---- Bounds, shutdown, configuration ---------------------------------------------------------

    def test_queue_bound_in_queries_and_abandoned_at_stop(self):
        self.pg.stop()
        p = self.probe(ready=False)
        r = p.cmd("flood", n=QUEUE_MAX + 5, sql="SELECT $1::int", flags=QUEUE)
        self.assertEqual(r, {"accepted": QUEUE_MAX + 5})
        self.assertEqual(p.query("SELECT 2", flags=QUEUE)["status"], "full")
        self.assertEqual(p.metric("switchboard_store_queued"), QUEUE_MAX)
        lost = p.events("pg.query_failed")
        self.assertGreaterEqual(len(lost), 1, p.log_text()[-2000:])
        self.assertEqual(lost[0]["error"], "queue full")
        t0 = time.monotonic()
        p.quit()
        self.assertLess(time.monotonic() - t0, 4)  # not connected: no drain
        ab = p.events("pg.abandoned")
        self.assertEqual([(a["queries"], a["writes"]) for a in ab], [(QUEUE_MAX, QUEUE_MAX)])

    def test_queue_bound_in_bytes(self):
        self.pg.stop()
        p = self.probe(ready=False)
        mib = "x" * (1024 * 1024)
        for i in range(40):
            p.send("SELECT length($1)", i, params=[mib], flags=QUEUE)
        # 32 MiB hold 31 queries of a 1 MiB parameter and their bookkeeping; 9 are refused.
        full = p.collect(9)
        self.assertEqual(statuses(full), [(i, "full") for i in range(31, 40)])
        self.assertEqual(p.metric("switchboard_store_queued"), 31)
        self.pg.start()
        self.assertTrue(p.wait_ready())
        answers = p.collect(31)
        self.assertEqual(statuses(answers), [(i, "ok") for i in range(31)])
        self.assertEqual(answers[0]["rows"], [[str(1024 * 1024)]])
        p.quit()

    def test_stop_waits_for_queued_writes(self):
        p = self.probe()
        self.table("pg_drain", "v int")
        r = p.cmd("flood", n=5000, sql="INSERT INTO pg_drain VALUES ($1::int)", flags=QUEUE)
        self.assertEqual(r, {"accepted": 5000})
        p.quit()
        self.assertEqual(self.pg.value("SELECT count(DISTINCT v) FROM pg_drain"), "5000")
        self.assertEqual(p.events("pg.abandoned"), [])

    def test_unix_socket_and_host_name(self):
        sock = "postgresql:///switchboard?host=%s&port=%d&user=sb" % (self.pg.dir, self.pg.port)
        p = self.probe(url=sock)
        self.assertEqual(p.query("SELECT inet_client_addr() IS NULL")["rows"], [["t"]])
        p.quit()
        # localhost is resolved off the loop; ::1 may come first and be refused (the server
        # listens on 127.0.0.1 only): the next address is tried in the same attempt.
        p = self.probe(url="postgres://sb@localhost:%d/switchboard" % self.pg.port)
        self.assertEqual(p.query("SELECT host(inet_client_addr())")["rows"], [["127.0.0.1"]])
        p.quit()

    def test_configure_accepts_postgres_urls_only(self):
        def rc(url):
            out = subprocess.run([probe_path(), "--check-url", url], stdout=subprocess.PIPE,
                                 text=True, timeout=30, check=True).stdout
            return json.loads(out)["rc"]

        self.assertEqual(rc("postgres://sb@127.0.0.1:5432/db"), 0)
        self.assertEqual(rc("postgresql://u:p@db.example:6543/x?sslmode=disable"), 0)
        self.assertEqual(rc("postgresql:///db?host=/var/run/postgresql"), 0)
        self.assertEqual(rc("mysql://u@h/db"), -22)
        self.assertEqual(rc("http://h/db"), -22)
        self.assertEqual(rc("host=h dbname=x"), -22)
        self.assertEqual(rc("postgres://a,b/db"), -22)  # one server
        self.assertEqual(rc("postgres://h/db?connect_timeout=x"), -22)


if __name__ == "__main__":
    unittest.main()
