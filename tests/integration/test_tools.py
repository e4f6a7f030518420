"""The voice agent's tools end to end against switchboard-sim in agent mode (SPEC 5.1, 6, 7, 9,
14; issue 4): the supervisor's Chat Completions tool loop with the built-in booking tools on
SQLite, the navigate tool, tool.call events, spoken fallbacks for every failure, call records
and the post-call webhook.

The simulator's voice model calls getNextResponseFromSupervisor when the caller's text asks for
availability, a booking or a customer, and navigate for "show me <section>"; its chat model
calls checkAvailability / bookAppointment / lookupCustomer by the same words, and speaks every
function output it receives verbatim.
"""
import asyncio
import datetime
import hashlib
import hmac
import http.server
import json
import os
import tempfile
import threading
import time
import urllib.request

import websockets

from harness import PageReader, SBTestCase, Server, close_quietly, eventually, timeout
from test_relay import RelayCase, non_appends, sim_sessions_eventually, sim_stats, user_text

SUP = "getNextResponseFromSupervisor"
SAY_HIGH_DEMAND = "Our system is experiencing high demand. Please try again in a moment."
SAY_TECHNICAL = "I apologize, we're experiencing technical difficulties."
SAY_TIMEOUT = ("I apologize, that is taking longer than expected. Could we try that again in a "
               "moment?")
SAY_TROUBLE = "I apologize, I'm having trouble processing that request. Could you rephrase?"
SAY_ROUNDS = ("I apologize, but I encountered an issue processing your request. Please try again "
              "or rephrase your question.")


def next_weekday(n_days=7):
    """A YYYY-MM-DD Monday..Friday at least n_days ahead (open 08:00-18:00 in the demo)."""
    d = datetime.date.today() + datetime.timedelta(days=n_days)
    while d.weekday() >= 5:
        d += datetime.timedelta(days=1)
    return d.isoformat()


def tool_events(r, start=0, name=None):
    return [m for m in r.events("tool.call", start) if name is None or m["name"] == name]


def outputs_received(rec):
    """The function_call_output items the simulator received, in order."""
    return [e["item"] for e in non_appends(rec)
            if e["type"] == "conversation.item.create"
            and e.get("item", {}).get("type") == "function_call_output"]


class ToolCase(RelayCase):
    async def turn(self, ws, r, text, tool=SUP, timeout_s=10.0):
        """Sends a user text and response.create; waits for the terminal tool.call of `tool`
        and then for the response that speaks its output. Returns (events of this turn as
        (type, message) from the turn's start, the terminal event, the spoken transcript)."""
        start = len(r.items)
        await ws.send(json.dumps(user_text(text)))
        await ws.send('{"type":"response.create"}')

        def terminal(m):
            return (isinstance(m, dict) and m.get("type") == "tool.call" and m["name"] == tool
                    and m["status"] != "started")
        i_end = await r.wait(terminal, timeout=timeout_s, start=start, what="terminal " + tool)
        i_tr = await r.wait_type("response.output_audio_transcript.done", timeout=timeout_s,
                                 start=i_end)
        await r.wait_type("response.done", timeout=timeout_s, start=i_tr)
        return start, r.items[i_end][1], r.items[i_tr][1]["transcript"]

    def assert_tool_order(self, evs):
        """Per call_id: one started, then exactly one terminal event; nested calls inside."""
        state = {}
        for e in evs:
            cid = e["call_id"]
            if e["status"] == "started":
                self.assertNotIn(cid, state, "two started events for %s" % cid)
                state[cid] = "open"
            else:
                self.assertEqual(state.get(cid), "open", "terminal without start: %r" % e)
                self.assertIn(e["status"], ("completed", "failed", "timeout"))
                self.assertIsInstance(e["duration_ms"], (int, float))
                state[cid] = "done"
                if "parent_call_id" in e:
                    self.assertEqual(state.get(e["parent_call_id"]), "open",
                                     "a nested call ended after its parent: %r" % e)
        self.assertTrue(all(v == "done" for v in state.values()), state)


class SupervisorTest(ToolCase):

    async def test_availability_runs_supervisor_then_check_availability(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20")
        ws, r, sid = await self.open_ready(s)
        date = next_weekday()
        start, end, said = await self.turn(ws, r, "Is %s available for an oil change?" % date)
        evs = tool_events(r, start)
        self.assert_tool_order(evs)
        names = [(e["name"], e["status"]) for e in evs]
        self.assertEqual(names, [(SUP, "started"), ("checkAvailability", "started"),
                                 ("checkAvailability", "completed"), (SUP, "completed")])
        self.assertEqual(evs[0]["via"], "supervisor")
        self.assertIn(date, evs[0]["arguments"]["relevantContextFromLastUserMessage"])
        nested = evs[2]
        self.assertEqual(nested["via"], "builtin")
        self.assertEqual(nested["parent_call_id"], evs[0]["call_id"])
        self.assertEqual(nested["arguments"]["date"], date)
        slots = json.loads(nested["output"])
        self.assertEqual(slots["slots"][0], "08:00")
        self.assertIn("Here is what I found", end["output"])
        # The upstream got the function output for the voice model's call, then one create.
        rec = (await sim_sessions_eventually(
            sim, lambda rs: outputs_received(rs[0])))[0]
        outs = outputs_received(rec)
        self.assertEqual(outs, [{"type": "function_call_output", "call_id": end["call_id"],
                                 "output": end["output"]}])
        evs_up = [e["type"] for e in non_appends(rec)]
        i_out = max(i for i, e in enumerate(non_appends(rec))
                    if e.get("item", {}).get("type") == "function_call_output")
        self.assertEqual(evs_up[i_out + 1:].count("response.create"), 1)
        self.assertIn("Here is what I found", said)
        self.assertIn("08:00", said)
        # Tool metrics by tool and status.
        m = s.metrics()
        self.assertEqual(m.get('switchboard_tool_call_seconds_count{tool="checkAvailability",'
                               'status="completed"}'), 1, m)

    async def test_book_then_lookup_round_trips_through_sqlite(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20")
        ws, r, _ = await self.open_ready(s)
        date = next_weekday(9)
        start, end, said = await self.turn(ws, r, "Please book a brake repair on %s at 14:30"
                                           % date)
        book = [e for e in tool_events(r, start, "bookAppointment") if e["status"] != "started"]
        self.assertEqual(book[0]["status"], "completed", book)
        out = json.loads(book[0]["output"])
        self.assertRegex(out["confirmationNumber"], r"^[A-Z0-9-]{6,}$")
        self.assertEqual(out["appointment"]["date"], date)
        self.assertEqual(out["appointment"]["time"], "14:30")
        self.assertIn(out["confirmationNumber"], said)
        start, end, said = await self.turn(ws, r, "Can you look up my appointment? Customer 555-0100.")
        look = [e for e in tool_events(r, start, "lookupCustomer") if e["status"] != "started"]
        found = json.loads(look[0]["output"])
        self.assertTrue(found["found"], found)
        self.assertEqual(found["customer"]["name"], "Test Caller")
        self.assertTrue(any(a.get("confirmationNumber") == out["confirmationNumber"]
                            for a in found["customer"]["appointments"]), found)
        # The slot is gone from availability now.
        start, end, said = await self.turn(ws, r, "Is %s available for brakes?" % date)
        avail = [e for e in tool_events(r, start, "checkAvailability")
                 if e["status"] != "started"]
        self.assertNotIn("14:30", json.loads(avail[0]["output"])["slots"])

    async def test_navigate_reaches_the_page_and_the_output_says_acked(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20")
        ws, r, sid = await self.open_ready(s)
        page_ws = self.track(await websockets.connect(
            s.ws_url("/ws/page", sessionId=sid, page="homepage")))
        page = PageReader(page_ws, auto_ack=True)
        try:
            await asyncio.sleep(0.1)
            start, end, said = await self.turn(ws, r, "Show me pricing", tool="navigate")
            cmd = await page.command()
            self.assertEqual((cmd["command"], cmd["page"], cmd["section"]),
                             ("navigate", "homepage", "pricing"))
            self.assertEqual(end["status"], "completed")
            self.assertEqual(end["via"], "client")
            self.assertEqual(json.loads(end["output"]),
                             {"ok": True, "delivered": 2, "acked": True})
            # The voice socket got the command too (delivered counts it).
            self.assertEqual([m["section"] for m in r.events("command", start)], ["pricing"])
        finally:
            await page.stop()

    async def test_navigate_without_a_page_and_no_tab_fails_listing_the_pages(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20")
        ws, r, sid = await self.open_ready(s)
        # No tab said which page it shows and the demo has two pages: the tool must fail and
        # name them (SPEC 6), at once.
        start, end, said = await self.turn(ws, r, "Take me to contact", tool="navigate")
        self.assertEqual(end["status"], "failed")
        out = json.loads(end["output"])
        self.assertEqual(out["error"]["code"], "page_required")
        self.assertEqual(sorted(out["error"]["valid"]), ["homepage", "services"])
        self.assertLess(end["duration_ms"], 1000)
        self.assertEqual(r.events("command", start), [])

    async def test_navigate_with_a_page_but_no_ack_reports_not_acked(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20")
        ws, r, sid = await self.open_ready(s)
        page_ws = self.track(await websockets.connect(
            s.ws_url("/ws/page", sessionId=sid, page="homepage")))
        page = PageReader(page_ws, auto_ack=False)
        try:
            await asyncio.sleep(0.1)
            start, end, said = await self.turn(ws, r, "Take me to contact", tool="navigate")
            self.assertEqual(end["status"], "completed")
            self.assertEqual(json.loads(end["output"]),
                             {"ok": True, "delivered": 2, "acked": False})
            self.assertGreaterEqual(end["duration_ms"], 1400)
        finally:
            await page.stop()


class SupervisorFaultTest(ToolCase):

    async def fault(self, sim_args, text="Is Monday available?", env=None, timeout_s=12.0):
        sim, s = self.stack("--mode", "agent", "--pace", "20", *sim_args, env=env)
        ws, r, _ = await self.open_ready(s)
        start, end, said = await self.turn(ws, r, text, timeout_s=timeout_s)
        return sim, s, r, start, end, said

    async def test_429_rate_limited_is_retried(self):
        sim, s, r, start, end, said = await self.fault(["--chat-fail", "429",
                                                        "--chat-fail-count", "1"])
        self.assertEqual(end["status"], "completed")
        self.assertIn("Here is what I found", end["output"])
        self.assertEqual(sim_stats(sim)["chat_requests"], 3)  # 429, then tool round, then text
        self.assertGreaterEqual(end["duration_ms"], 195, "retry-after-ms: 200 not honoured")

    async def test_429_always_says_high_demand_after_two_retries(self):
        sim, s, r, start, end, said = await self.fault(["--chat-fail", "429"])
        self.assertEqual((end["status"], end["output"]), ("failed", SAY_HIGH_DEMAND))
        self.assertEqual(said, SAY_HIGH_DEMAND)
        self.assertEqual(sim_stats(sim)["chat_requests"], 3)

    async def test_insufficient_quota_is_not_retried_and_logged_critical(self):
        sim, s, r, start, end, said = await self.fault(["--chat-fail", "429-quota"])
        self.assertEqual((end["status"], end["output"]), ("failed", SAY_TECHNICAL))
        self.assertEqual(said, SAY_TECHNICAL)
        self.assertEqual(sim_stats(sim)["chat_requests"], 1)
        self.assertIn("critical", s.stderr())
        self.assertNotIn("sk-sim-test", s.stderr())

    async def test_401_is_not_retried(self):
        sim, s, r, start, end, said = await self.fault(["--chat-fail", "401"])
        self.assertEqual((end["status"], end["output"]), ("failed", SAY_TECHNICAL))
        self.assertEqual(sim_stats(sim)["chat_requests"], 1)
        self.assertIn("critical", s.stderr())

    async def test_500_then_success(self):
        sim, s, r, start, end, said = await self.fault(["--chat-fail", "500",
                                                        "--chat-fail-count", "1"])
        self.assertEqual(end["status"], "completed")
        self.assertIn("Here is what I found", said)

    async def test_500_always_says_trouble(self):
        sim, s, r, start, end, said = await self.fault(["--chat-fail", "500"])
        self.assertEqual((end["status"], end["output"]), ("failed", SAY_TROUBLE))
        self.assertEqual(sim_stats(sim)["chat_requests"], 3)

    async def test_malformed_tool_arguments(self):
        sim, s, r, start, end, said = await self.fault(
            [], text="Is Monday available? Use malformed arguments.")
        nested = [e for e in tool_events(r, start) if e["name"] != SUP]
        self.assertEqual([e["status"] for e in nested], ["started", "failed"])
        self.assertIsInstance(nested[1]["arguments"], str)  # the raw text, not JSON
        self.assertEqual(json.loads(nested[1]["output"])["error"]["code"], "invalid_arguments")
        self.assertEqual(end["status"], "completed")  # the model saw the error and answered
        self.assert_tool_order(tool_events(r, start))

    async def test_unknown_tool(self):
        sim, s, r, start, end, said = await self.fault(
            [], text="Is Monday available? Try the unknown tool.")
        nested = [e for e in tool_events(r, start) if e["name"] == "frobnicate"]
        self.assertEqual([e["status"] for e in nested], ["started", "failed"])
        self.assertEqual(json.loads(nested[1]["output"])["error"]["code"], "unknown_tool")

    async def test_iteration_cap(self):
        sim, s, r, start, end, said = await self.fault(
            [], text="Is Monday available? keep calling tools",
            env={"SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS": "3"})
        self.assertEqual((end["status"], end["output"]), ("failed", SAY_ROUNDS))
        nested = [e for e in tool_events(r, start) if e["name"] != SUP
                  and e["status"] != "started"]
        self.assertEqual(len(nested), 3)
        self.assertEqual(said, SAY_ROUNDS)
        self.assertEqual(sim_stats(sim)["chat_requests"], 4)

    async def test_tool_timeout_speaks_the_apology(self):
        sim, s, r, start, end, said = await self.fault(
            ["--chat-delay-ms", "3000"], env={"SWITCHBOARD_TOOL_TIMEOUT_MS": "800"})
        self.assertEqual((end["status"], end["output"]), ("timeout", SAY_TIMEOUT))
        self.assertGreaterEqual(end["duration_ms"], 790)
        self.assertLess(end["duration_ms"], 2500)
        self.assertEqual(said, SAY_TIMEOUT)
        self.assert_tool_order(tool_events(r, start))
        m = s.metrics()
        self.assertEqual(
            m.get('switchboard_tool_call_seconds_count{tool="%s",status="timeout"}' % SUP), 1)

    @timeout(40)
    async def test_queue_full_answers_high_demand_at_once(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20", "--chat-delay-ms", "1500",
                            env={"SWITCHBOARD_MAX_SUPERVISOR_RUNS": "1"})
        socks = [await self.open_ready(s) for _ in range(3)]
        t0 = time.monotonic()
        for k, (ws, r, _) in enumerate(socks):
            await ws.send(json.dumps(user_text("Is Monday available?")))
            await ws.send('{"type":"response.create"}')
            # In this order: runs, waits, refused. The session asks the pool for a run right
            # after reporting `started`; the next socket's call needs a round trip through the
            # voice model first, so it reaches the pool after this one.
            await r.wait(lambda m: isinstance(m, dict) and m.get("type") == "tool.call"
                         and m["name"] == SUP and m["status"] == "started", timeout=5,
                         what="the supervisor call of socket %d" % k)
            if k == 0:  # the first run holds the only slot: its first round is at the model
                await eventually(lambda: sim_stats(sim)["chat_requests"] >= 1,
                                 what="the first run's chat request")
        ends = []
        for ws, r, _ in socks:
            i = await r.wait(lambda m: isinstance(m, dict) and m.get("type") == "tool.call"
                             and m["name"] == SUP and m["status"] != "started", timeout=15)
            ends.append((r.items[i][0] - t0, r.items[i][1]))
        await asyncio.gather(*[ws.close() for ws, _, _ in socks])
        self.assertEqual(ends[2][1]["output"], SAY_HIGH_DEMAND)
        # At once: before the run that holds the slot has finished (two rounds of 1.5 s).
        self.assertLess(ends[2][0], ends[0][0], "the third was not answered at once")
        self.assertIn("Here is what I found", ends[0][1]["output"])
        self.assertIn("Here is what I found", ends[1][1]["output"])
        self.assertGreater(ends[1][0], ends[0][0] + 1.0, "the second did not wait its turn")


class BookingConcurrencyTest(ToolCase):

    @timeout(60)
    async def test_20_concurrent_bookings_of_one_slot_exactly_one_wins(self):
        sim, s = self.stack("--mode", "agent", "--pace", "20")
        date = next_weekday(12)
        socks = await asyncio.gather(*[self.open_ready(s) for _ in range(20)])
        text = "Please book an oil change on %s at 09:00" % date
        for ws, r, _ in socks:
            await ws.send(json.dumps(user_text(text)))
        await asyncio.gather(*[ws.send('{"type":"response.create"}') for ws, _, _ in socks])
        results = []
        for ws, r, _ in socks:
            i = await r.wait(lambda m: isinstance(m, dict) and m.get("type") == "tool.call"
                             and m["name"] == "bookAppointment" and m["status"] != "started",
                             timeout=30)
            results.append(r.items[i][1])
        # Close while the readers still drain the sockets (a close behind unread audio waits).
        await asyncio.gather(*[ws.close() for ws, _, _ in socks])
        ok = [e for e in results if e["status"] == "completed"]
        self.assertEqual(len(ok), 1, [e["output"] for e in results])
        for e in results:
            if e["status"] != "completed":
                self.assertEqual(json.loads(e["output"])["error"]["code"], "slot_unavailable")


class CallRecordTest(ToolCase):

    async def test_call_record_with_transcript_and_tools_survives_restart(self):
        sim = self.sim("--mode", "agent", "--pace", "20")
        db = os.path.join(tempfile.mkdtemp(prefix="sbdb-"), "calls", "sb.db")
        env = dict(sim.env(), SWITCHBOARD_DB=db)
        s = self.own_server(env)
        ws, r, sid = await self.open_ready(s)
        start, end, said = await self.turn(ws, r, "Is %s available?" % next_weekday())
        await ws.close()
        await asyncio.sleep(0.3)

        def record():
            calls = s.get("/api/calls").json()["calls"]
            return calls and calls[0]["endReason"] and calls
        calls = await eventually(record, what="an ended call record")
        self.assertEqual(calls[0]["sessionId"], sid)
        self.assertEqual(calls[0]["endReason"], "client_closed")
        s.stop()
        s2 = self.own_server(env)
        calls = s2.get("/api/calls").json()["calls"]
        self.assertEqual(calls[0]["sessionId"], sid)
        one = s2.get("/api/calls/" + calls[0]["id"]).json()
        roles = [t["role"] for t in one["transcript"]]
        self.assertIn("user", roles)
        self.assertIn("assistant", roles)
        self.assertTrue(any("Here is what I found" in t["text"] for t in one["transcript"]))
        names = [t["name"] for t in one["toolCalls"]]
        self.assertEqual(sorted(names), sorted([SUP, "checkAvailability"]))
        sup = [t for t in one["toolCalls"] if t["name"] == SUP][0]
        self.assertEqual((sup["status"], sup["via"]), ("completed", "supervisor"))
        self.assertGreaterEqual(one["durationMs"], 0)
        self.assertTrue(one["openaiSessionId"].startswith("sess_"), one)


class _Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: answers the statuses in server.plan, then 200; keeps every request."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.got.append((dict(self.headers), body))
        status = self.server.plan.pop(0) if self.server.plan else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class WebhookTest(ToolCase):

    @timeout(30)
    async def test_webhook_is_signed_and_retried_on_500(self):
        hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        hook.got, hook.plan = [], [500]
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        try:
            secret = "whsec-test-1"
            sim, s = self.stack("--mode", "agent", env={
                "SWITCHBOARD_POSTCALL_WEBHOOK_URL": "http://127.0.0.1:%d/hook"
                                                    % hook.server_address[1],
                "SWITCHBOARD_API_SECRET": secret})
            ws, r, sid = await self.open_ready(s)
            await ws.close()
            await eventually(lambda: len(hook.got) >= 2, deadline_s=10, what="two attempts")
            for headers, body in hook.got:
                sig = headers["Switchboard-Signature"]
                parts = dict(p.split("=", 1) for p in sig.split(","))
                mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body,
                               hashlib.sha256).hexdigest()
                self.assertEqual(parts["v1"], mac)
                self.assertLess(abs(int(parts["t"]) - time.time()), 60)
                rec = json.loads(body)
                self.assertEqual(rec["sessionId"], sid)
                self.assertEqual(rec["endReason"], "client_closed")
            await asyncio.sleep(1.5)
            self.assertEqual(len(hook.got), 2, "retried after the 200")
        finally:
            hook.shutdown()
