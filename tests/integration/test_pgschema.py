"""The store's schema and statements on PostgreSQL (agents/store/pgschema.c, SPEC 13 and 15) on a
real PostgreSQL (pgfix.py), through psql: the migrations (idempotent, serialised by the advisory
lock, a newer stored version refused), then every statement as the store sends it, PREPAREd with
text parameters and EXECUTEd, answering the JSON the SQLite store answers for the same data.

The expected answers are written out from the C code that builds them on SQLite (storedb.c,
querydb.c, jobsdb.c, chatdb.c); test_pgschema_sqlite.py also runs one long scenario on both and
compares every answer. The statements come from build/<mode>/tests/pgschema_dump
($SWITCHBOARD_PGSCHEMA_DUMP)."""
import json
import os
import re
import subprocess
import threading
import time
import unittest

import pgfix
from harness import REPO, binary_path

FS, RS, NULL = "\x1f", "\x1e", "\x02"  # psql's field and record separators, and its NULL
MARK = "\x1d@@op@@"  # printed after each operation of a batch
STALE_MS = 600000  # a running job claimed this long ago is taken by another claim
RETRY_MS = 30000  # the post-call retry base of these tests (SPEC 15: 30 s)

# What each statement's parameters are, as PostgreSQL infers them from the casts in the
# statement (what a driver that sends untyped texts gets).
PARAM_TYPES = {
    "PGQ_CALL_START": "text,text,text,bigint",
    "PGQ_CALL_END": "text,bigint,text,text,text,bigint,bigint",
    "PGQ_FIRST_AUDIO": "text,bigint",
    "PGQ_CALL_PHONE": "text,text,text,text,text",
    "PGQ_TRANSCRIPT": "text,text,text,bigint",
    "PGQ_TOOL_RECORD": "text,text,text,text,text,text,text,bigint,text,bigint",
    "PGQ_CHAT_MESSAGE": "text,text,text,text,text,bigint",
    "PGQ_AGENT_RUN": "bigint,text,text,text,text,text,text,text,bigint,bigint",
    "PGQ_EXPIRE": "bigint",
    "PGQ_SERVER_KEY": "text,text",
    "PGQ_CHAT_OPEN": "text,text,text,bigint,integer",
    "PGQ_CALL_JSON": "text,text",
    "PGQ_CALL_DELETE": "text,text",
    "PGQ_CALLS": "text,bigint,bigint,text,text,text,bigint,bigint,integer",
    "PGQ_ANALYTICS": "text,bigint[]",
    "PGQ_JOBS_RECOVER": "text,bigint",
    "PGQ_CALL_INFO": "text,text",
    "PGQ_JOB_QUEUE": "text,text,boolean,bigint",
    "PGQ_JOBS_CLAIM": "bigint,integer,integer,text",
    "PGQ_JOB_SUMMARY": "text,text,text,text,bigint,boolean",
    "PGQ_JOB_END": "text,text,text,bigint,bigint,boolean",
}

# The members of a call (storedb.c's call_tree()), of a list entry (querydb.c), of a job
# (jobsdb_job_json()), in their order.
CALL_KEYS = ["id", "sessionId", "startedAt", "endedAt", "endReason", "durationMs", "tenant",
             "channel", "from", "to", "callSid", "transferredTo", "outcome", "openaiSessionId",
             "requestId", "usage", "summary", "firstAudioMs", "postcall", "transcript",
             "toolCalls"]
LIST_KEYS = ["id", "sessionId", "startedAt", "endedAt", "endReason", "durationMs", "tenant",
             "channel", "from", "to", "callSid", "transferredTo", "outcome", "postcall"]
TOOL_KEYS = ["callId", "name", "arguments", "output", "status", "durationMs", "via", "at",
             "parentCallId"]


def dump_path():
    """pgschema_dump of the build whose service binary is under test, unless
    $SWITCHBOARD_PGSCHEMA_DUMP names it (build/bin/switchboard: build/release/tests/...)."""
    p = os.environ.get("SWITCHBOARD_PGSCHEMA_DUMP")
    if not p:
        top = os.path.dirname(os.path.dirname(binary_path()))
        if os.path.basename(top) == "build":
            top = os.path.join(top, "release")
        p = os.path.join(top, "tests", "pgschema_dump")
    return p if os.path.isabs(p) else os.path.join(REPO, p)


def lit(v):
    """v as the text literal the store would send as the parameter ($n is cast in the
    statement), NULL for None."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        v = "true" if v else "false"
    return "'" + str(v).replace("'", "''") + "'"


def same(a, b):
    """Equal JSON, members in the same order."""
    return json.dumps(a) == json.dumps(b)


def ordered(test, got, want, what=""):
    test.assertEqual(got, want, what)
    test.assertTrue(same(got, want), "%s: members out of order:\n%s\n%s"
                    % (what, json.dumps(got), json.dumps(want)))


class PgCase(unittest.TestCase):
    """One PostgreSQL for the class; each test on a database of its own with the schema
    applied. The classes below run at once under run.py -j."""

    @classmethod
    def setUpClass(cls):
        path = dump_path()
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s is not built (make %s)" % (path, os.path.relpath(path, REPO)))
        cls.dump_bin = path
        cls.dump = json.loads(subprocess.run([path], stdout=subprocess.PIPE, check=True,
                                             text=True).stdout)
        cls.pg = pgfix.Postgres().start()
        cls.n_db = 0

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        self.db = self.fresh_db()
        self.psql(self.dump["setup"])

    # ---- psql ----------------------------------------------------------------------------------

    def fresh_db(self):
        type(self).n_db += 1
        name = "t%d_%s" % (self.n_db, self._testMethodName[5:40].lower())
        self.psql("CREATE DATABASE %s" % name, db="postgres")
        return name

    def psql_proc(self, db, args, **kw):
        return subprocess.Popen(
            self.pg.psql_argv(db) + ["-F", FS, "-R", RS, "-P", "null=" + NULL] + args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def psql(self, sql, db=None, check=True):
        """Runs sql as one query (one implicit transaction); returns its rows, or (check=False)
        (returncode, stdout, stderr)."""
        p = self.psql_proc(db or self.db, ["-c", sql])
        out, err = p.communicate(timeout=60)
        if not check:
            return p.returncode, out, err
        self.assertEqual(p.returncode, 0, "psql: %s\n%s" % (err.strip(), sql[:300]))
        return self.rows(out.rstrip("\n"))

    @staticmethod
    def rows(chunk):
        if chunk == "":
            return []
        return [[None if v == NULL else v for v in r.split(FS)] for r in chunk.split(RS)]

    def nparams(self, name):
        return max([int(n) for n in re.findall(r"\$(\d+)", self.dump[name])] or [0])

    def prepare(self, name):
        n = self.nparams(name)
        types = "(%s)" % ", ".join(["text"] * n) if n else ""
        return "PREPARE %s%s AS %s;\n" % (name.lower(), types, self.dump[name])

    def batch(self, ops, db=None):
        """Runs ops [(statement name without PGQ_, params...)] in one session, each EXECUTEd in
        its own transaction with text parameters, as the store sends them; returns the rows of
        each."""
        names = sorted(set("PGQ_" + op[0].upper() for op in ops))
        script = "".join(self.prepare(n) for n in names)
        for op in ops:
            args = ", ".join(lit(a) for a in op[1:])
            script += "EXECUTE pgq_%s%s;\n\\echo %s\n" % (op[0], "(%s)" % args if args else "",
                                                         MARK)
        p = self.psql_proc(db or self.db, ["-f", "-"], stdin=subprocess.PIPE)
        out, err = p.communicate(script, timeout=120)
        self.assertEqual(p.returncode, 0, "psql: %s" % err.strip())
        chunks = out.split(MARK + "\n")
        self.assertEqual(len(chunks), len(ops) + 1)
        return [self.rows(c[:-1] if c.endswith("\n") else c) for c in chunks[:-1]]

    def q(self, name, *params):
        """One statement's rows."""
        return self.batch([(name,) + params])[0]

    def j(self, name, *params):
        """One statement's one JSON value (None for SQL NULL)."""
        rows = self.q(name, *params)
        self.assertEqual(len(rows), 1, rows)
        return None if rows[0][0] is None else json.loads(rows[0][0])

    def v(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    # ---- shapes written out from the C code ----------------------------------------------------

    @staticmethod
    def call(id_, started, **kw):
        """A call as call_tree() shows it: every member, nulls where nothing was recorded."""
        c = {"id": id_, "sessionId": kw.get("session", "s-" + id_), "startedAt": started,
             "endedAt": None, "endReason": None, "durationMs": None,
             "tenant": kw.get("tenant", "default"), "channel": "web", "from": None, "to": None,
             "callSid": None, "transferredTo": None, "outcome": None, "openaiSessionId": None,
             "requestId": None, "usage": {"inputTokens": 0, "outputTokens": 0},
             "summary": None, "firstAudioMs": None, "postcall": None, "transcript": [],
             "toolCalls": []}
        for k, v in kw.items():
            if k in c:
                c[k] = v
        return c

    @staticmethod
    def entry(c):
        """A call's entry in the list (querydb.c): its first members and postcall's state and
        steps."""
        e = {k: c[k] for k in LIST_KEYS[:-1]}
        pc = c["postcall"]
        e["postcall"] = None if pc is None else {"state": pc["state"], "steps": pc["steps"]}
        return e

    @staticmethod
    def job(state, attempts, steps, updated, last_error=None, next_at=None):
        return {"state": state, "attempts": attempts, "lastError": last_error, "nextAt": next_at,
                "steps": {"summary": steps[0], "crm": steps[1]}, "updatedAt": updated}

    def start(self, id_, at, tenant=None, lines=(), end=None):
        """A call with transcript lines [(role, text, at)], ended at end when given."""
        ops = [("call_start", id_, "s-" + id_, tenant, at)]
        ops += [("transcript", id_, r, t, a) for r, t, a in lines]
        if end is not None:
            ops.append(("call_end", id_, end, "client_closed", None, None, 0, 0))
        self.batch(ops)


class MigrationTest(PgCase):
    """PGSCHEMA_SETUP: one DO block under the advisory lock, then the session's setting."""

    def test_setup_twice_is_a_noop(self):
        objects = ("SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::"
                   "regnamespace) || '/' || (SELECT count(*) FROM pg_proc WHERE pronamespace = "
                   "'public'::regnamespace)")
        before = self.v(objects)
        self.start("c1", 1000, lines=[("user", "hello", 1001)])
        rows = self.psql(self.dump["setup"] + ";\nSHOW synchronous_commit")
        self.assertEqual(rows, [["off"]])  # the session's setting, after the migrations
        self.assertEqual(self.v(objects), before)
        self.assertEqual(self.psql("SELECT version FROM schema_version"),
                         [[str(self.dump["version"])]])
        self.assertEqual(self.v("SELECT count(*) FROM transcript_items"), "1")
        for t in ("calls", "transcript_items", "tool_calls", "chat_threads", "chat_messages",
                  "agent_runs", "postcall_jobs", "server_keys"):
            self.assertIsNotNone(self.v("SELECT to_regclass('%s')" % t), t)

    def test_concurrent_setup_applies_once(self):
        """Three connections run the set-up at once on a new database: the advisory lock lets
        one apply version 1 (a second application would fail on CREATE TABLE) and the others
        find it done."""
        for _ in range(3):
            db = self.fresh_db()
            procs = [self.psql_proc(db, ["-c", self.dump["setup"]]) for _ in range(3)]
            results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
            for out, err, rc in results:
                self.assertEqual(rc, 0, err)
            self.assertEqual(self.psql("SELECT version FROM schema_version", db=db), [["1"]])

    def test_setup_takes_the_advisory_lock(self):
        """While another session holds the lock, the set-up waits for it."""
        holder = self.psql_proc(self.db, ["-f", "-"], stdin=subprocess.PIPE)
        holder.stdin.write("BEGIN;\nSELECT pg_advisory_xact_lock(%s);\n\\echo locked\n"
                           "SELECT pg_sleep(1.5);\nCOMMIT;\n" % self.dump["lockKey"])
        holder.stdin.close()
        for line in iter(holder.stdout.readline, ""):
            if line.strip() == "locked":
                break
        t0 = time.monotonic()
        self.psql(self.dump["setup"])
        self.assertGreater(time.monotonic() - t0, 1.0)
        holder.wait(timeout=10)

    def test_newer_stored_version_is_refused(self):
        self.psql("INSERT INTO schema_version (version) VALUES (%d)" % (self.dump["version"] + 1))
        rc, out, err = self.psql(self.dump["setup"] + ";\nSHOW synchronous_commit", check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("version %d" % (self.dump["version"] + 1), err)
        self.assertIn("version %d" % self.dump["version"], err)
        self.assertNotIn("off", out)
        self.assertEqual(self.v("SELECT max(version) FROM schema_version"),
                         str(self.dump["version"] + 1))


class StatementTest(PgCase):
    """The records, the reads and their JSON."""

    def test_every_statement_and_its_parameter_types(self):
        """Every PGQ_* of pgschema.h is in the dump (but booking's); prepared without types,
        each parameter gets the type of its cast, and each statement uses $1..$n."""
        with open(os.path.join(REPO, "agents", "store", "pgschema.h")) as f:
            declared = re.findall(r"extern const char (PGQ_\w+)\[\];", f.read())
        self.assertEqual(sorted(declared), sorted(PARAM_TYPES))
        for name, types in PARAM_TYPES.items():
            n = len(types.split(","))
            self.assertEqual(sorted(set(int(x) for x in re.findall(r"\$(\d+)",
                                                                  self.dump[name]))),
                             list(range(1, n + 1)), name)
            got = self.v("PREPARE x AS %s; SELECT array_to_string(parameter_types, ',') FROM "
                         "pg_prepared_statements WHERE name = 'x'" % self.dump[name])
            self.assertEqual(got, types, name)

    def test_call_record(self):
        """A phone call with two transcript lines (one sent twice), a tool call whose arguments
        are JSON and whose output is not (sent twice: stored and counted once) and a nested
        one the other way round, its first audio, its end."""
        args = '{"service": "Oil Change", "date": "2026-12-02", "start": "10:00"}'
        self.batch([
            ("call_start", "c1", "sess-1", None, 1000),
            ("call_start", "c1", "sess-other", "acme", 999),  # ignored
            ("call_phone", "c1", "+14155550100", "+14155550199", "CA123", None),
            ("transcript", "c1", "user", "I'd like an oil change", 1100),
            ("transcript", "c1", "user", "I'd like an oil change", 1100),
            ("transcript", "c1", "assistant", "Sure, when?", 1200),
            ("first_audio", "c1", 350),
            ("first_audio", "c1", 999),  # the first is kept
            ("tool_record", "c1", "call_A", "", "bookAppointment", args, "booked: ABC123",
             "completed", 42, "supervisor", 1300),
            ("tool_record", "c1", "call_A", "", "bookAppointment", args, "booked: ABC123",
             "completed", 42, "supervisor", 1300),
            ("tool_record", "c1", "call_B", "call_A", "crm__find", "not json {",
             '{"found": [1, 2], "z": null}', "failed", -1, "mcp:crm", 1250),
            ("call_phone", "c1", "+14155550100", "+14155550199", "CA123", "+15550000000"),
            ("call_phone", "c1", "+14155550100", "+14155550199", "CA123", None),  # kept
        ])
        rows = self.q("call_end", "c1", 61000, "caller_hung_up", "sess_oai", None, 100, 200)
        self.assertEqual(rows, [["default", "1"]])  # the caller's turns
        want = self.call(
            "c1", 1000, session="sess-1", endedAt=61000, endReason="caller_hung_up",
            durationMs=60000, channel="phone", openaiSessionId="sess_oai",
            usage={"inputTokens": 100, "outputTokens": 200}, firstAudioMs=350,
            transcript=[{"role": "user", "text": "I'd like an oil change", "at": 1100},
                        {"role": "assistant", "text": "Sure, when?", "at": 1200}],
            toolCalls=[{"callId": "call_B", "name": "crm__find", "arguments": "not json {",
                        "output": {"found": [1, 2], "z": None}, "status": "failed",
                        "durationMs": -1, "via": "mcp:crm", "at": 1250,
                        "parentCallId": "call_A"},
                       {"callId": "call_A", "name": "bookAppointment",
                        "arguments": json.loads(args), "output": "booked: ABC123",
                        "status": "completed", "durationMs": 42, "via": "supervisor",
                        "at": 1300, "parentCallId": None}])
        want.update({"from": "+14155550100", "to": "+14155550199", "callSid": "CA123",
                     "transferredTo": "+15550000000"})
        got = self.j("call_json", "c1", None)
        self.assertEqual(list(got), CALL_KEYS)
        self.assertEqual(list(got["toolCalls"][0]), TOOL_KEYS)
        ordered(self, got, want)
        ordered(self, self.j("call_json", "c1", "default"), want)
        self.assertIsNone(self.j("call_json", "c1", "acme"))  # another tenant's: unknown
        self.assertIsNone(self.j("call_json", "nope", None))
        # The counters the analytics read: 2 tool calls, 1 completed, a booking.
        # Day 0 of [0, 10^13): one call of 60 s, booked; no outcome yet.
        self.assertEqual(self.q("analytics", None, "{0,%d}" % 10 ** 13),
                         [["d", "0", "1", "60000", "1", "1"],
                          ["t", None, "2", "1", "350", "350"]])
        self.assertEqual(self.q("analytics", "acme", "{0,%d}" % 10 ** 13),
                         [["t", None, "0", "0", None, None]])
        self.assertEqual(self.q("analytics", "default", "{1001,%d}" % 10 ** 13),
                         [["t", None, "0", "0", None, None]])
        self.assertEqual(self.q("call_info", "c1", None), [["default", "1"]])
        self.assertEqual(self.q("call_info", "c1", "acme"), [])
        self.assertEqual(self.q("call_end", "nope", 5, None, None, None, 0, 0), [])
        # A line and a tool call of a call whose start was lost are kept.
        self.batch([("transcript", "lost", "user", "hi", 5),
                    ("tool_record", "lost", None, None, None, None, None, None, 0, None, 6)])
        self.assertEqual(self.psql("SELECT role, text, at FROM transcript_items "
                                   "WHERE call_id = 'lost'"), [["user", "hi", "5"]])
        self.assertEqual(self.psql("SELECT name, status, parent_call_id FROM tool_calls "
                                   "WHERE call_id = 'lost'"), [["", "", None]])

    def test_summary_member_and_tool_outputs_as_add_json_col(self):
        """A text that is valid JSON becomes that JSON (scalars, arrays, whitespace around),
        anything else the string; NULL is null."""
        self.start("c1", 1000)
        cases = [('{"a":1}', {"a": 1}), ("[1, \"x\"]", [1, "x"]), ("42", 42), ("true", True),
                 ("null", None), ('"quoted"', "quoted"), ("  {\"b\": [] }\n", {"b": []}),
                 ("", ""), ("plain text", "plain text"), ("{broken", "{broken"),
                 # A text is JSON only as a whole (SQLite's cJSON_Parse() stops after a
                 # leading value and shows this one as {"a": 1}).
                 ('{"a":1} trailing', '{"a":1} trailing'), (None, None)]
        self.batch([("tool_record", "c1", "t%d" % i, None, "x", text, text, "completed", 1,
                     None, 2000 + i) for i, (text, _) in enumerate(cases)])
        got = self.j("call_json", "c1", None)["toolCalls"]
        self.assertEqual([(t["arguments"], t["output"]) for t in got],
                         [(want, want) for _, want in cases])
        self.batch([("job_queue", "c1", "default", False, 3000),
                    ("jobs_claim", 3000, 1, 40, "n1")])
        summary = {"summary": "Oil change booked", "caller": {"name": "Ann", "phone": None,
                                                              "email": None},
                   "outcome": "booked"}
        self.j("job_summary", "c1", json.dumps(summary), "booked", None, 3100, False)
        got = self.j("call_json", "c1", None)
        ordered(self, got["summary"], summary)
        self.assertEqual(got["outcome"], "booked")

    def test_idempotent_writes(self):
        """Every write the connection may send again after a reconnect, sent twice, is stored
        once and counted once."""
        ops = [("call_start", "c1", "s1", "acme", 1000),
               ("transcript", "c1", "user", "one", 1100),
               ("transcript", "c1", "user", "one", 1101),  # another line: another time
               ("transcript", "c1", "assistant", "one", 1100),  # another role
               ("tool_record", "c1", "t1", None, "bookAppointment", "{}", "{}", "completed", 5,
                "supervisor", 1200),
               ("tool_record", "c1", "t2", None, "bookAppointment", "{}", "{}", "failed", 5,
                "supervisor", 1200),
               ("tool_record", "c1", None, None, "x", None, None, "completed", 5, None, 1201),
               ("chat_message", "th1", "m1", "cm1", "user", "hi", 1300),
               ("agent_run", 77, "run-1", "u1", "acme", "task", "running", None, None, 1400, 0)]
        self.batch(ops + ops)
        self.assertEqual(self.v("SELECT count(*) FROM calls"), "1")
        self.assertEqual(self.v("SELECT count(*) FROM transcript_items"), "3")
        self.assertEqual(self.v("SELECT count(*) FROM tool_calls"), "3")
        self.assertEqual(self.psql("SELECT tools_total, tools_ok, booked FROM calls"),
                         [["3", "2", "t"]])
        self.assertEqual(self.v("SELECT count(*) FROM chat_messages"), "1")
        self.assertEqual(self.psql("SELECT count(*), min(status), min(ended_at) IS NULL "
                                   "FROM agent_runs"), [["1", "running", "t"]])
        self.q("agent_run", 77, "run-1", "u1", "acme", "task", "failed", "partial", "limit",
               1400, 9000)
        self.assertEqual(self.psql("SELECT run_id, user_id, tenant, task, status, result, error, "
                                   "started_at, ended_at FROM agent_runs"),
                         [["run-1", "u1", "acme", "task", "failed", "partial", "limit", "1400",
                           "9000"]])
        # A second start never moves a call; a second end ends it the same way.
        self.q("call_start", "c1", "s2", "default", 5)
        end = ("call_end", "c1", 2000, "done", None, None, 1, 2)
        self.assertEqual(self.batch([end, end]), [[["acme", "2"]], [["acme", "2"]]])
        self.assertEqual(self.psql("SELECT session_id, tenant, started_at, duration_ms FROM "
                                   "calls"), [["s1", "acme", "1000", "1000"]])

    def test_chat_open_and_history(self):
        first = self.j("chat_open", "th1", "u1", None, 100, 50)
        ordered(self, first, {"owner": "u1", "tenant": "default", "messages": []})
        self.batch([("chat_message", "th1", "m1", "cm1", "user", "one", 101),
                    ("chat_message", "th1", "m2", None, "assistant", "two", 102),
                    ("chat_message", "th1", "m3", "", "user", "three", 103),
                    ("chat_message", "th1", "m4", None, "assistant", "four", 103),  # same ms
                    ("chat_message", "th1", "m1", "cm1", "user", "one again", 500),
                    ("chat_message", "th2", "x1", None, "user", "elsewhere", 104)])
        # Opened by another user later: the first opener owns it. The newest 3, oldest first;
        # clientMessageId only where one was given ("" is one).
        got = self.j("chat_open", "th1", "u2", "acme", 200, 3)
        ordered(self, got, {"owner": "u1", "tenant": "default", "messages": [
            {"role": "assistant", "text": "two", "messageId": "m2", "at": 102},
            {"role": "user", "text": "three", "messageId": "m3", "at": 103,
             "clientMessageId": ""},
            {"role": "assistant", "text": "four", "messageId": "m4", "at": 103}]})
        self.assertEqual(len(self.j("chat_open", "th1", "u1", None, 200, 50)["messages"]), 4)
        self.assertEqual(self.j("chat_open", "th1", "u1", None, 200, 0)["messages"], [])
        self.assertEqual(self.j("chat_open", "th3", "u9", "acme", 300, 50),
                         {"owner": "u9", "tenant": "acme", "messages": []})

    def test_server_key(self):
        k1, k2 = "ab" * 32, "cd" * 32
        self.assertEqual(self.q("server_key", "chat_user", k1), [[k1]])
        self.assertEqual(self.q("server_key", "chat_user", k2), [[k1]])
        self.assertEqual(self.q("server_key", "other", k2), [[k2]])

    def test_list_paging_walks_every_call_once(self):
        """30 calls, started three to a millisecond (and one started twice: a gap in seq),
        newest first by (started_at, insertion); pages of 7 walk them all once, and the last
        page has no nextCursor."""
        ops = []
        for i in range(30):
            ops.append(("call_start", "c%02d" % i, "s", "acme" if i % 4 == 0 else None,
                        1000 + (i // 3) * 10))
            if i == 10:
                ops.append(("call_start", "c05", "s", None, 1))
        self.batch(ops)
        want = ["c%02d" % i for i in sorted(range(30), key=lambda i: (-(i // 3), -i))]
        got, cursor, pages = [], (0, 0), 0
        while True:
            page = self.j("calls", None, 0, 0, None, None, None, cursor[0], cursor[1], 7)
            pages += 1
            self.assertLessEqual(len(page["calls"]), 7)
            got += [c["id"] for c in page["calls"]]
            if "nextCursor" not in page:
                self.assertEqual(list(page), ["calls"])
                break
            self.assertEqual(list(page), ["calls", "nextCursor"])
            at, seq = page["nextCursor"].split(".")
            self.assertEqual(int(at), page["calls"][-1]["startedAt"])
            self.assertEqual(seq, self.v("SELECT seq FROM calls WHERE id = '%s'"
                                         % page["calls"][-1]["id"]))
            cursor = (int(at), int(seq))
        self.assertEqual(got, want)
        self.assertEqual(pages, 5)
        # Exactly a page: no nextCursor.
        page = self.j("calls", "acme", 0, 0, None, None, None, 0, 0, 8)
        self.assertEqual([c["id"] for c in page["calls"]], [w for w in want if int(w[1:]) % 4 == 0])
        self.assertNotIn("nextCursor", page)
        page = self.j("calls", "acme", 0, 0, None, None, None, 0, 0, 7)
        self.assertIn("nextCursor", page)
        # Tenant scope and the time window [from, to).
        self.assertEqual([c["id"] for c in self.j("calls", "default", 1010, 1030, None, None,
                                                  None, 0, 0, 100)["calls"]],
                         ["c07", "c06", "c05", "c03"])
        self.assertEqual(self.j("calls", "nobody", 0, 0, None, None, None, 0, 0, 100),
                         {"calls": []})

    def test_list_entries_and_filters(self):
        self.start("web", 1000, lines=[("user", "hello", 1001)], end=2000)
        self.start("phone", 3000, tenant="acme", lines=[("user", "hi", 3001)], end=4000)
        self.batch([("call_phone", "phone", "+1", "+2", "CA1", None),
                    ("job_queue", "phone", "acme", True, 5000),
                    ("jobs_claim", 5000, 10, 40, "n1")])
        self.j("job_summary", "phone", '{"outcome":"callback"}', "callback", None, 5100, False)
        calls = self.j("calls", None, 0, 0, None, None, None, 0, 0, 20)["calls"]
        for c in calls:
            self.assertEqual(list(c), LIST_KEYS)
        want_phone = self.entry(self.call(
            "phone", 3000, tenant="acme", endedAt=4000, endReason="client_closed",
            durationMs=1000, channel="phone", outcome="callback",
            postcall=self.job("running", 1, ("done", "pending"), 5100)))
        want_phone.update({"from": "+1", "to": "+2", "callSid": "CA1"})
        want_web = self.entry(self.call("web", 1000, endedAt=2000, endReason="client_closed",
                                        durationMs=1000))
        ordered(self, calls, [want_phone, want_web])
        ids = lambda **f: [c["id"] for c in self.j(  # noqa: E731
            "calls", f.get("tenant"), f.get("frm", 0), f.get("to", 0), f.get("channel"),
            f.get("outcome"), f.get("q"), 0, 0, 20)["calls"]]
        self.assertEqual(ids(channel="phone"), ["phone"])
        self.assertEqual(ids(channel="web"), ["web"])
        self.assertEqual(ids(outcome="callback"), ["phone"])
        self.assertEqual(ids(outcome="booked"), [])
        self.assertEqual(ids(tenant="acme", channel="web"), [])
        self.assertEqual(ids(frm=1001), ["phone"])
        self.assertEqual(ids(to=3000), ["web"])

    def test_search_requires_every_word(self):
        self.start("a", 1000, lines=[("user", "I want an oil change on Tuesday", 1001),
                                     ("assistant", "Sure, which time?", 1002)], end=1100)
        self.start("b", 2000, lines=[("user", "Tire rotation please, my name's O'Brien", 2001),
                                     ("user", "call 415-555-0100 or bob@example.com", 2002)],
                   end=2100)
        self.start("c", 3000, tenant="acme", lines=[("user", "Just an OIL filter; café au lait",
                                                     3001)], end=3100)
        self.start("d", 4000, end=4100)  # no transcript: no document
        self.start("e", 5000, lines=[("user", "oil change too", 5001)])  # not ended yet
        found = lambda q, tenant=None: [c["id"] for c in self.j(  # noqa: E731
            "calls", tenant, 0, 0, None, None, q, 0, 0, 20)["calls"]]
        self.assertEqual(found("oil"), ["c", "a"])
        self.assertEqual(found("oil change"), ["a"])
        self.assertEqual(found("CHANGE Oil"), ["a"])  # every word, anywhere, any case
        self.assertEqual(found("oil tire"), [])
        self.assertEqual(found("chang"), [])  # whole words, no stemming
        self.assertEqual(found("changes"), [])
        self.assertEqual(found("time"), ["a"])
        self.assertEqual(found("o'brien"), ["b"])  # a phrase: o, then brien
        self.assertEqual(found("brien"), ["b"])
        self.assertEqual(found("brien'o"), [])
        self.assertEqual(found('"O\'Brien" "tire"'), ["b"])
        self.assertEqual(found("555-0100"), ["b"])
        self.assertEqual(found("0100"), ["b"])
        self.assertEqual(found("example.com"), ["b"])
        self.assertEqual(found("café"), ["c"])
        self.assertEqual(found("oil", tenant="acme"), ["c"])
        # Operators and punctuation of tsquery are plain text here, never a syntax error.
        for q, want in [("oil & | ! ( ) :* <-> \\ ' ''", ["c", "a"]), ("oil:*", ["c", "a"]),
                        ("!oil", ["c", "a"]), ("(oil", ["c", "a"]), ("'oil'", ["c", "a"]),
                        ("oil <-> change", ["a"]), ("oil|tire", [])]:  # "oil|tire": a phrase
            self.assertEqual(found(q), want, q)
        # Words with nothing searchable are ignored; a search of only those finds nothing.
        self.assertEqual(found("!!! oil ???"), ["c", "a"])
        self.assertEqual(found("!!!"), [])
        self.assertEqual(found("\"\" \t"), ["e", "d", "c", "b", "a"])  # no words: no search
        # Paging through search results.
        page = self.j("calls", None, 0, 0, None, None, "oil", 0, 0, 1)
        self.assertEqual([c["id"] for c in page["calls"]], ["c"])
        at, seq = page["nextCursor"].split(".")
        page = self.j("calls", None, 0, 0, None, None, "oil", at, seq, 1)
        self.assertEqual([c["id"] for c in page["calls"]], ["a"])
        self.assertNotIn("nextCursor", page)
        # The document is set once, at the first end that finds a transcript.
        self.batch([("transcript", "a", "user", "zebra", 1200),
                    ("call_end", "a", 1300, "x", None, None, 0, 0),
                    ("transcript", "d", "user", "zebra", 4200),
                    ("call_end", "d", 4300, "x", None, None, 0, 0)])
        self.assertEqual(found("zebra"), ["d"])

    def test_expire(self):
        self.start("old", 1000, lines=[("user", "old line", 5000)], end=6000)
        self.start("new", 3000, lines=[("user", "early line", 1500), ("user", "new line", 3100)],
                   end=4000)
        self.batch([("tool_record", "old", "t1", None, "x", None, None, "completed", 1, None,
                     5000),
                    ("tool_record", "new", "t2", None, "x", None, None, "completed", 1, None,
                     1500),
                    ("tool_record", "new", "t3", None, "x", None, None, "completed", 1, None,
                     3200),
                    ("transcript", "orphan", "user", "lost", 1900),
                    ("transcript", "orphan2", "user", "kept", 2100),
                    ("job_queue", "old", "default", False, 6000),
                    ("job_queue", "new", "default", False, 6000),
                    ("chat_message", "th", "m1", None, "user", "old", 1999),
                    ("chat_message", "th", "m2", None, "user", "new", 2000)])
        self.assertEqual(self.q("expire", 2000), [["1"]])
        self.assertEqual(self.psql("SELECT id FROM calls"), [["new"]])
        self.assertEqual(self.psql("SELECT call_id, text FROM transcript_items ORDER BY id"),
                         [["new", "new line"], ["orphan2", "kept"]])
        self.assertEqual(self.psql("SELECT tool_call_id FROM tool_calls"), [["t3"]])
        self.assertEqual(self.psql("SELECT call_id FROM postcall_jobs"), [["new"]])
        self.assertEqual(self.psql("SELECT message_id FROM chat_messages"), [["m2"]])
        self.assertEqual(self.q("expire", 2000), [["0"]])

    def test_call_delete(self):
        self.start("c1", 1000, tenant="acme", lines=[("user", "hi", 1001)], end=2000)
        self.batch([("tool_record", "c1", "t1", None, "x", None, None, "completed", 1, None,
                     1500),
                    ("job_queue", "c1", "acme", False, 3000),
                    ("transcript", "c2", "user", "no call", 1)])
        self.assertEqual(self.q("call_delete", "c1", "other"), [["f"]])
        self.assertEqual(self.v("SELECT count(*) FROM transcript_items"), "2")
        self.assertEqual(self.q("call_delete", "c1", "acme"), [["t"]])
        self.assertEqual(self.q("call_delete", "c1", None), [["f"]])
        for t in ("calls", "tool_calls", "postcall_jobs"):
            self.assertEqual(self.v("SELECT count(*) FROM %s" % t), "0", t)
        # As on SQLite: with no tenant, the rows of a call that never started go too.
        self.assertEqual(self.q("call_delete", "c2", None), [["f"]])
        self.assertEqual(self.v("SELECT count(*) FROM transcript_items"), "0")


class JobTest(PgCase):
    """Post-call jobs: queue, claim (SKIP LOCKED, stale claims, recovery), summary, end."""

    def test_job_retries_until_final_then_webhook_once(self):
        """Every attempt fails: retries after 30 s, 60 s, 120 s, 240 s (jobsdb_retry_delay_ms()),
        the 5th attempt is final and hands over the webhook, once."""
        self.start("c1", 1000, lines=[("user", "hi", 1001)], end=2000)
        self.q("job_queue", "c1", "default", True, 3000)
        ordered(self, self.j("call_json", "c1", None)["postcall"],
                self.job("pending", 0, ("pending", "pending"), 3000, next_at=3000))
        claim = self.j("jobs_claim", 2999, 10, 40, "n1")
        self.assertEqual(claim, {"jobs": [], "nextDue": 3000})
        now = 3000
        for attempt in range(1, 6):
            claim = self.j("jobs_claim", now, 10, 40, "n1")
            self.assertEqual([(j["callId"], j["attempts"], j["summary"], j["crm"])
                              for j in claim["jobs"]],
                             [("c1", attempt, "failed" if attempt > 1 else "pending",
                               "failed" if attempt > 1 else "pending")])
            self.assertEqual(list(claim["jobs"][0]),
                             ["callId", "tenant", "attempts", "summary", "crm", "call"])
            self.assertEqual(claim["nextDue"], now + STALE_MS)  # the running one, if it stops
            ordered(self, claim["jobs"][0]["call"]["postcall"],
                    self.job("running", attempt, (claim["jobs"][0]["summary"],
                                                  claim["jobs"][0]["crm"]), now,
                             last_error="crm: down" if attempt > 1 else None))
            self.assertIsNone(self.j("job_summary", "c1", None, None, "summary: timeout",
                                     now + 1, True))
            end = self.j("job_end", "c1", "failed", "crm: down", now + 2, RETRY_MS, True)
            delay = RETRY_MS << (attempt - 1) if attempt < 5 else -1
            self.assertEqual(list(end), ["done", "final", "retryInMs", "webhook"])
            if attempt < 5:
                ordered(self, end, {"done": False, "final": False, "retryInMs": delay,
                                    "webhook": None})
                ordered(self, self.j("call_json", "c1", None)["postcall"],
                        self.job("failed", attempt, ("failed", "failed"), now + 2,
                                 last_error="crm: down", next_at=now + 2 + delay))
                self.assertEqual(self.j("jobs_claim", now + 1 + delay, 10, 40, "n1"),
                                 {"jobs": [], "nextDue": now + 2 + delay})
                now = now + 2 + delay
            else:
                self.assertEqual([end["done"], end["final"], end["retryInMs"]], [False, True, -1])
                hook = end["webhook"]
                self.assertEqual(list(hook), CALL_KEYS)
                ordered(self, hook["postcall"],
                        self.job("failed", 5, ("failed", "failed"), now + 2,
                                 last_error="crm: down"))
        # Not running any more: nothing to end; the webhook was taken.
        self.assertIsNone(self.j("job_end", "c1", "failed", "x", now + 5, RETRY_MS, True))
        self.assertEqual(self.j("jobs_claim", now + 10 ** 9, 10, 40, "n1"),
                         {"jobs": [], "nextDue": -1})
        self.assertEqual(self.v("SELECT webhook_sent FROM postcall_jobs"), "t")

    def test_job_done_and_requeue(self):
        self.start("c1", 1000, lines=[("user", "hi", 1001), ("user", "book it", 1002)],
                   end=2000)
        self.q("job_queue", "c1", "default", True, 3000)
        self.j("jobs_claim", 3000, 10, 40, "n1")
        # The summary: the call's JSON with it, once (the webhook is taken now).
        summary = '{"summary": "Booked", "outcome": "booked"}'
        hook = self.j("job_summary", "c1", summary, "booked", None, 3100, True)
        self.assertEqual(hook["summary"], json.loads(summary))
        self.assertEqual(hook["outcome"], "booked")
        ordered(self, hook["postcall"], self.job("running", 1, ("done", "pending"), 3100))
        self.assertIsNone(self.j("job_summary", "c1", summary, "booked", None, 3150, True))
        # CRM failed: a retry; its summary step stays done.
        end = self.j("job_end", "c1", "failed", "crm: 500", 3200, RETRY_MS, True)
        ordered(self, end, {"done": False, "final": False, "retryInMs": RETRY_MS,
                            "webhook": None})
        claim = self.j("jobs_claim", 3200 + RETRY_MS, 10, 40, "n1")
        self.assertEqual([(j["attempts"], j["summary"], j["crm"]) for j in claim["jobs"]],
                         [(2, "done", "failed")])
        end = self.j("job_end", "c1", "done", None, 40000, RETRY_MS, True)
        ordered(self, end, {"done": True, "final": False, "retryInMs": -1, "webhook": None})
        ordered(self, self.j("call_json", "c1", None)["postcall"],
                self.job("done", 2, ("done", "done"), 40000))
        # Queued again (POST /api/calls/{id}/postcall): from attempt 1, the done steps stay.
        self.q("job_queue", "c1", "default", False, 50000)
        ordered(self, self.j("call_json", "c1", None)["postcall"],
                self.job("pending", 0, ("done", "done"), 50000, next_at=50000))
        self.psql("UPDATE postcall_jobs SET step_crm = 'failed', last_error = 'x'")
        self.q("job_queue", "c1", "default", False, 50001)
        ordered(self, self.j("call_json", "c1", None)["postcall"],
                self.job("pending", 0, ("done", "skipped"), 50001, next_at=50001))
        claim = self.j("jobs_claim", 50001, 10, 40, "n1")
        self.assertEqual([(j["attempts"], j["summary"], j["crm"]) for j in claim["jobs"]],
                         [(1, "done", "skipped")])
        # Without a CRM: done after the summary alone (crm NULL leaves the step as it is).
        end = self.j("job_end", "c1", None, "ignored", 50002, RETRY_MS, True)
        ordered(self, end, {"done": True, "final": False, "retryInMs": -1, "webhook": None})
        self.assertEqual(self.j("call_json", "c1", None)["postcall"]["lastError"], None)
        self.assertEqual(self.q("job_end", "nope", None, None, 1, RETRY_MS, True), [[None]])

    def test_claim_order_limits_and_call_tail(self):
        self.start("many", 1000, lines=[("user", "hi", 1001)], end=2000)
        self.batch([("tool_record", "many", "t%02d" % i, None, "tool%d" % i, "{}", "ok",
                     "completed", i, "supervisor", 1100 + i % 7) for i in range(45)])
        for i, (id_, due) in enumerate([("b", 5000), ("a", 5000), ("c", 4000), ("z", 9000)]):
            self.start(id_, 100 + i, end=200)
            self.q("job_queue", id_, "default", False, due)
        self.q("job_queue", "many", "default", False, 4500)
        claim = self.j("jobs_claim", 5000, 3, 40, "n1")
        self.assertEqual([j["callId"] for j in claim["jobs"]], ["c", "many", "a"])
        self.assertEqual(claim["nextDue"], 5000)  # b is due too, past max
        tail = claim["jobs"][1]["call"]
        self.assertEqual(list(tail), CALL_KEYS[:-1] + ["toolCallsTotal", "toolCalls"])
        self.assertEqual(tail["toolCallsTotal"], 45)
        # The newest 40 by (at, insertion), oldest first.
        rows = sorted(range(45), key=lambda i: (1100 + i % 7, i))
        self.assertEqual([t["callId"] for t in tail["toolCalls"]],
                         ["t%02d" % i for i in rows[5:]])
        claim = self.j("jobs_claim", 5000, 10, 2, "n1")
        self.assertEqual([j["callId"] for j in claim["jobs"]], ["b"])
        self.assertEqual(claim["nextDue"], 9000)
        self.assertEqual(claim["jobs"][0]["call"]["toolCallsTotal"], 0)
        self.assertEqual(self.j("jobs_claim", 5000, 0, 2, "n1"), {"jobs": [], "nextDue": 9000})

    def test_recover_and_stale_claims(self):
        for id_ in ("a", "b"):
            self.start(id_, 1000, end=2000)
            self.q("job_queue", id_, "default", False, 3000)
        self.assertEqual([j["callId"] for j in self.j("jobs_claim", 3000, 1, 40,
                                                      "n1")["jobs"]], ["a"])
        self.assertEqual([j["callId"] for j in self.j("jobs_claim", 3500, 1, 40,
                                                      "n2")["jobs"]], ["b"])
        # n1 restarts: its job is pending again, due now; n2's stays running.
        self.assertEqual(self.q("jobs_recover", "n1", 4000), [["1"]])
        self.assertEqual(self.j("call_json", "a", None)["postcall"],
                         self.job("pending", 1, ("pending", "skipped"), 3000, next_at=4000))
        self.assertEqual(self.j("call_json", "b", None)["postcall"]["state"], "running")
        claim = self.j("jobs_claim", 4000, 10, 40, "n1")
        self.assertEqual([(j["callId"], j["attempts"]) for j in claim["jobs"]], [("a", 2)])
        self.assertEqual(claim["nextDue"], 3500 + STALE_MS)
        # n2 stopped for good: 10 minutes after its claim another node takes its job.
        self.assertEqual(self.j("jobs_claim", 3500 + STALE_MS, 10, 40, "n3")["jobs"], [])
        claim = self.j("jobs_claim", 3501 + STALE_MS, 10, 40, "n3")
        self.assertEqual([(j["callId"], j["attempts"]) for j in claim["jobs"]], [("b", 2)])
        self.assertEqual(self.psql("SELECT call_id, claimed_by, claimed_at FROM postcall_jobs "
                                   "ORDER BY call_id"),
                         [["a", "n1", "4000"], ["b", "n3", str(3501 + STALE_MS)]])
        self.assertEqual(self.q("jobs_recover", "n2", 9), [["0"]])
        self.j("job_end", "b", None, None, 10 ** 7, RETRY_MS, False)
        self.assertEqual(self.psql("SELECT claimed_by, claimed_at FROM postcall_jobs WHERE "
                                   "call_id = 'b'"), [[None, None]])

    def test_concurrent_claims_never_share_a_job(self):
        n_jobs = 40
        ops = []
        for i in range(n_jobs):
            ops += [("call_start", "c%02d" % i, "s", None, 1000 + i),
                    ("job_queue", "c%02d" % i, "default", False, 2000 + i)]
        self.batch(ops)
        # A claimer holds its rows in an open transaction: another one skips them at once
        # (SKIP LOCKED) instead of waiting (lock_timeout would fail it).
        holder = self.psql_proc(self.db, ["-f", "-"], stdin=subprocess.PIPE)
        holder.stdin.write("BEGIN;\n%sEXECUTE pgq_jobs_claim('5000', '5', '0', 'h');\n"
                           "\\echo %s\nSELECT pg_sleep(3);\nCOMMIT;\n"
                           % (self.prepare("PGQ_JOBS_CLAIM"), MARK))
        holder.stdin.close()
        held = []
        for line in iter(holder.stdout.readline, ""):
            if line.startswith(MARK):
                break
            held.append(line)
        held = [j["callId"] for j in json.loads("".join(held))["jobs"]]
        self.assertEqual(held, ["c%02d" % i for i in range(5)])
        rows = self.psql("SET lock_timeout = '500ms'; " + self.prepare("PGQ_JOBS_CLAIM")
                         + "EXECUTE pgq_jobs_claim('5000', '3', '0', 'x')")
        self.assertEqual([j["callId"] for j in json.loads(rows[0][0])["jobs"]],
                         ["c05", "c06", "c07"])
        holder.wait(timeout=10)
        # Four claimers at once, until none is left: each job claimed exactly once.
        claimed, lock = [], threading.Lock()

        def claimer(node):
            while True:
                rows = self.psql(self.prepare("PGQ_JOBS_CLAIM")
                                 + "EXECUTE pgq_jobs_claim('5000', '2', '0', '%s')" % node)
                got = [j["callId"] for j in json.loads(rows[0][0])["jobs"]]
                if not got:
                    return
                with lock:
                    claimed.extend(got)

        threads = [threading.Thread(target=claimer, args=("n%d" % k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(claimed), ["c%02d" % i for i in range(8, n_jobs)])
        self.assertEqual(self.v("SELECT count(*) FROM postcall_jobs WHERE state = 'running' "
                                "AND attempts = 1"), str(n_jobs))
