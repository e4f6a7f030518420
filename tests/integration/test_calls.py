"""Call records over HTTP (SPEC 4 `GET /api/calls`, 9, 14 "Records"): auth, limit validation,
the empty list, 404, DELETE, the database path failing at start-up, and records that survive a
restart.

Sessions do not write call records yet (the session actor does not call store_call_start/end),
so the records read back here are written into the database file with Python's sqlite3 while
the server is stopped, in the schema the server created, which also checks that schema."""
import os
import shutil
import sqlite3
import tempfile
import time

from harness import SBTestCase, Server, expect_exit, sqlite_only

SECRET = "calls-test-secret"
DAY_MS = 86400 * 1000


class CallsTestBase(SBTestCase):
    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"]["code"], code, body)
        self.assertTrue(body["error"]["message"], body)
        return body


class CallsLoopbackTest(CallsTestBase):
    """API secret unset: loopback callers only."""
    SERVER_ENV = {"SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}

    async def test_empty_list(self):
        r = self.server.get("/api/calls")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(r.json(), {"calls": []})

    async def test_limit_validation(self):
        for bad in ("0", "101", "-1", "abc", "", "1.5", "1e2", "99999999999"):
            with self.subTest(limit=bad):
                self.assert_error(self.server.get("/api/calls?limit=" + bad), 400,
                                  "invalid_limit")
        for good in ("1", "20", "100"):
            with self.subTest(limit=good):
                r = self.server.get("/api/calls?limit=" + good)
                self.assertEqual(r.status, 200, r)

    async def test_unknown_id_404(self):
        self.assert_error(self.server.get("/api/calls/call_nope"), 404, "not_found")
        self.assert_error(self.server.request("DELETE", "/api/calls/call_nope"), 404,
                          "not_found")
        self.assert_error(self.server.get("/api/callsfoo"), 404, "not_found")

    async def test_wrong_method_405(self):
        self.assert_error(self.server.post("/api/calls", {}), 405, "method_not_allowed")
        self.assert_error(self.server.request("PUT", "/api/calls/x"), 405, "method_not_allowed")

    async def test_non_loopback_caller_401(self):
        r = self.server.get("/api/calls", headers={"X-Forwarded-For": "203.0.113.7"})
        self.assert_error(r, 401, "unauthorized")
        r = self.server.get("/api/calls/x", headers={"X-Forwarded-For": "203.0.113.7"})
        self.assert_error(r, 401, "unauthorized")


class CallsSecretTest(CallsTestBase):
    SERVER_ENV = {"SWITCHBOARD_API_SECRET": SECRET}

    async def test_401_without_or_with_wrong_bearer(self):
        for h in (None, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET}):
            with self.subTest(headers=h):
                self.assert_error(self.server.get("/api/calls", headers=h), 401, "unauthorized")
        # 401 comes before the limit check and before 404.
        self.assert_error(self.server.get("/api/calls?limit=0"), 401, "unauthorized")
        self.assert_error(self.server.get("/api/calls/call_nope"), 401, "unauthorized")

    async def test_200_with_bearer(self):
        auth = {"Authorization": "Bearer " + SECRET}
        r = self.server.get("/api/calls?limit=5", headers=auth)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"calls": []})
        self.assert_error(self.server.get("/api/calls?limit=0", headers=auth), 400,
                          "invalid_limit")


class CallsDatabaseTest(CallsTestBase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sbtest-calls-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_db_path_is_a_file_exit_1(self):
        blocker = os.path.join(self.tmp, "blocker")
        open(blocker, "w").close()
        expect_exit({"SWITCHBOARD_DB": os.path.join(blocker, "sub", "switchboard.db")}, 1,
                    must_contain=("SWITCHBOARD_DB=", "blocker"))

    def test_db_path_is_a_folder_exit_1(self):
        expect_exit({"SWITCHBOARD_DB": self.tmp}, 1, must_contain=("SWITCHBOARD_DB=",))

    @sqlite_only("it writes rows with Python's sqlite3 before the restart")
    async def test_records_survive_restart(self):
        db = os.path.join(self.tmp, "var", "sub", "switchboard.db")
        env = {"SWITCHBOARD_DB": db}
        with Server(env):
            pass  # creates the folder, the file and the schema
        self.assertTrue(os.path.isfile(db))
        now = int(time.time() * 1000)
        con = sqlite3.connect(db)
        with con:
            con.execute("INSERT INTO calls (id, session_id, started_at, ended_at, end_reason, "
                        "duration_ms, openai_session_id, request_id, input_tokens, "
                        "output_tokens) VALUES ('call_a', 'sess_aaaaaaaa', ?, ?, "
                        "'client_closed', 4000, 'sess_up', 'req_1', 10, 20)",
                        (now - 10000, now - 6000))
            con.execute("INSERT INTO calls (id, session_id, started_at) VALUES "
                        "('call_live', 'sess_bbbbbbbb', ?)", (now - 1000,))
            con.execute("INSERT INTO calls (id, session_id, started_at) VALUES "
                        "('call_ancient', 'sess_cccccccc', ?)", (now - 40 * DAY_MS,))
            con.execute("INSERT INTO transcript_items (call_id, role, text, at) VALUES "
                        "('call_a', 'user', 'hello', ?), ('call_a', 'assistant', 'hi!', ?)",
                        (now - 9000, now - 8000))
            con.execute("INSERT INTO tool_calls (call_id, tool_call_id, name, arguments, output, "
                        "status, duration_ms, via, at) VALUES ('call_a', 'call_t', "
                        "'checkAvailability', '{\"date\":\"2026-12-03\"}', 'plain text', "
                        "'completed', 12, 'builtin', ?)", (now - 8500,))
        con.close()
        with Server(env) as s:
            r = s.get("/api/calls")
            self.assertEqual(r.status, 200, r)
            calls = r.json()["calls"]
            # Newest first; the call past SWITCHBOARD_RETENTION_DAYS was deleted at start-up.
            self.assertEqual([c["id"] for c in calls], ["call_live", "call_a"])
            self.assertEqual(set(calls[0]), {"id", "sessionId", "startedAt", "endedAt",
                                             "endReason", "durationMs", "tenant", "channel",
                                             "from", "to", "callSid", "transferredTo",
                                             "outcome", "postcall"})
            self.assertEqual(calls[0]["tenant"], "default")  # SPEC 16: records carry it
            self.assertEqual(calls[0]["channel"], "web")  # SPEC 15: /ws calls are web calls
            self.assertIsNone(calls[0]["endedAt"])
            self.assertIsNone(calls[0]["endReason"])
            self.assertIsNone(calls[0]["durationMs"])
            self.assertEqual(len(s.get("/api/calls?limit=1").json()["calls"]), 1)
            c = s.get("/api/calls/call_a").json()
            self.assertEqual(c["sessionId"], "sess_aaaaaaaa")
            self.assertEqual(c["startedAt"], now - 10000)
            self.assertEqual(c["endReason"], "client_closed")
            self.assertEqual(c["durationMs"], 4000)
            self.assertEqual(c["openaiSessionId"], "sess_up")
            self.assertEqual(c["requestId"], "req_1")
            self.assertEqual(c["usage"], {"inputTokens": 10, "outputTokens": 20})
            self.assertEqual([(t["role"], t["text"]) for t in c["transcript"]],
                             [("user", "hello"), ("assistant", "hi!")])
            self.assertEqual(len(c["toolCalls"]), 1)
            t = c["toolCalls"][0]
            self.assertEqual(t["name"], "checkAvailability")
            self.assertEqual(t["arguments"], {"date": "2026-12-03"})  # parsed JSON
            self.assertEqual(t["output"], "plain text")  # not JSON: the string
            self.assertEqual((t["status"], t["durationMs"], t["via"]),
                             ("completed", 12, "builtin"))
            self.assert_error(s.get("/api/calls/call_ancient"), 404, "not_found")
            # DELETE removes the call and its transcript.
            r = s.request("DELETE", "/api/calls/call_a")
            self.assertEqual(r.status, 200, r)
            self.assert_error(s.get("/api/calls/call_a"), 404, "not_found")
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("SELECT count(*) FROM transcript_items").fetchone()[0], 0)
        con.close()
