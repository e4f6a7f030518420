"""Authenticated agent runs on /ws/agent (SPEC 5.4, 14 "Agent runs"; seeds 003 and 004; issue 6)
against switchboard-sim's chat model: JWT authentication (HS256 with exp, 10 s to send it),
start_agent -> step_update per tool call -> completion, ask_user -> question / answer (both
forms), cancel_agent, duplicate and unknown runIds, the iteration limit, and run records.

The simulator's chat model calls checkAvailability when the task says "available", ask_user
{question} for "ask me <question>", the first offered tool again and again for "keep calling
tools", and answers "Here is what I found: <tool output>" after a tool result.

A step_update with `screenshot` needs a tool that returns an image (MCP `get-tiny-image`,
issue 5); the builder is covered by the unit test agentev_step_update_screenshot.
"""
import asyncio
import json
import os
import time

from harness import (SBTestCase, assert_open, db_rows, error_event, eventually, expect_close, good_jwt,
                     make_jwt, recv_json, recv_until, timeout)

SECRET = "agent-test-secret"
MAX_ITERATIONS = 3


def is_type(t, run_id=None):
    return lambda m: (isinstance(m, dict) and m.get("type") == t
                      and (run_id is None or m.get("runId") == run_id))


class AgentCase(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_JWT_SECRET": SECRET,
                  "SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS": str(MAX_ITERATIONS)}

    async def open(self, server=None):
        return self.track(await (server or self.server).ws("/ws/agent"))

    async def authed(self, sub="agent_user"):
        ws = await self.open()
        await ws.send(json.dumps({"type": "authenticate", "token": good_jwt(SECRET, sub=sub)}))
        self.assertEqual(await recv_json(ws), {"type": "authentication", "status": "success"})
        return ws

    async def start(self, ws, run_id, task):
        await ws.send(json.dumps({"type": "start_agent", "runId": run_id, "task": task}))

    async def until_completion(self, ws, run_id, timeout_s=8.0):
        """Every event of run_id up to and including its completion."""
        got, skipped = await recv_until(ws, is_type("completion", run_id), timeout=timeout_s)
        return [m for m in skipped if isinstance(m, dict) and m.get("runId") == run_id] + [got]

    def records(self):
        db = os.path.join(self.server.tmpdir, "var", "switchboard.db")
        return {r["run_id"]: r for r in db_rows(db, "SELECT * FROM agent_runs")}

    async def record(self, run_id, status):
        return await eventually(lambda: (self.records().get(run_id) or {}).get("status") == status
                                and self.records()[run_id], what="record of %s" % run_id)


class AgentAuthTest(AgentCase):

    async def test_good_token(self):
        ws = await self.authed()
        await assert_open(ws)

    async def test_refused_tokens(self):
        now = int(time.time())
        cases = {
            "expired": (make_jwt(SECRET, {"sub": "u", "exp": now - 1}), "the token has expired"),
            "wrong secret": (good_jwt("another-secret"), "invalid token"),
            "no exp": (make_jwt(SECRET, {"sub": "u"}), "the token has no exp claim"),
            "alg none": (make_jwt("", {"sub": "u", "exp": now + 60},
                                  header={"alg": "none"}).rsplit(".", 1)[0] + ".", None),
            "not a jwt": ("ek_" + "0" * 64, "invalid token"),
        }
        for name, (tok, why) in cases.items():
            with self.subTest(name):
                ws = await self.open()
                await ws.send(json.dumps({"type": "authenticate", "token": tok}))
                got = await expect_close(ws, 1008, "unauthorized")
                self.assertEqual(len(got), 1, got)
                self.assertEqual(got[0]["type"], "authentication")
                self.assertEqual(got[0]["status"], "failed")
                if why:
                    self.assertEqual(got[0]["error"], why)

    async def test_anything_but_ping_before_authenticate_fails(self):
        for first in ['{"type":"start_agent","runId":"r","task":"t"}', "not json",
                      '{"type":"frobnicate"}', "[1,2]", '{"answer":"x"}']:
            with self.subTest(first):
                ws = await self.open()
                await ws.send(first)
                got = await expect_close(ws, 1008, "unauthorized")
                auth = [m for m in got if isinstance(m, dict) and m.get("type") ==
                        "authentication"]
                self.assertEqual(len(auth), 1, got)
                self.assertEqual(auth[0]["status"], "failed")

    async def test_ping_before_authenticate_is_answered(self):
        ws = await self.open()
        await ws.send("ping")
        self.assertEqual(await asyncio.wait_for(ws.recv(), 3), "pong")
        await ws.send('{"type":"ping"}')
        self.assertEqual(await recv_json(ws), {"type": "pong"})
        await ws.send(json.dumps({"type": "authenticate", "token": good_jwt(SECRET)}))
        self.assertEqual((await recv_json(ws))["status"], "success")

    @timeout(20)
    async def test_no_authenticate_within_10_s(self):
        ws = await self.open()
        t0 = time.monotonic()
        got = await expect_close(ws, 1008, "unauthorized", timeout=14)
        waited = time.monotonic() - t0
        self.assertEqual(got, [{"type": "authentication", "status": "failed", "error": "timeout"}])
        self.assertGreater(waited, 9.5)


class AgentNoSecretTest(AgentCase):
    SERVER_ENV = {"SWITCHBOARD_JWT_SECRET": None}

    async def test_every_jwt_fails_without_a_secret(self):
        ws = await self.open()
        await ws.send(json.dumps({"type": "authenticate", "token": good_jwt(SECRET)}))
        got = await expect_close(ws, 1008, "unauthorized")
        self.assertEqual(got[0]["status"], "failed")


class AgentRunTest(AgentCase):

    async def test_run_with_a_tool_then_completion_and_record(self):
        ws = await self.authed(sub="rec_user")
        await self.start(ws, "run-1", "Is next Monday available for an oil change?")
        evs = await self.until_completion(ws, "run-1")
        self.assertEqual([e["type"] for e in evs], ["step_update", "completion"], evs)
        step, done = evs
        self.assertEqual(step["stepNumber"], 1)
        self.assertEqual(step["action"]["type"], "tool_call")
        self.assertEqual(step["action"]["name"], "checkAvailability")
        self.assertEqual(step["action"]["arguments"]["serviceType"].lower(), "oil change")
        self.assertIn("slots", step["explanation"])
        self.assertNotIn("screenshot", step)
        self.assertEqual(done["status"], "success")
        self.assertEqual(done["commands"], [])
        self.assertIn("Here is what I found", done["result"])
        rec = await self.record("run-1", "success")
        self.assertEqual(rec["user_id"], "rec_user")
        self.assertEqual(rec["task"], "Is next Monday available for an oil change?")
        self.assertEqual(rec["result"], done["result"])
        self.assertIsNone(rec["error"])
        self.assertGreaterEqual(rec["ended_at"], rec["started_at"])

    async def test_question_answer_round_trip_both_forms(self):
        ws = await self.authed()
        for run_id, bare in (("q-typed", False), ("q-bare", True)):
            with self.subTest(run_id):
                await self.start(ws, run_id, "ask me what colour is your car?")
                q, _ = await recv_until(ws, is_type("question", run_id), timeout=5)
                self.assertEqual(q, {"type": "question", "runId": run_id,
                                     "question": "what colour is your car?"})
                answer = {"answer": "midnight blue"}
                if not bare:
                    answer.update(type="answer", runId=run_id)
                await ws.send(json.dumps(answer))
                evs = await self.until_completion(ws, run_id)
                step, done = evs[-2], evs[-1]
                self.assertEqual(step["type"], "step_update")
                self.assertEqual(step["action"]["name"], "ask_user")
                self.assertEqual(step["action"]["arguments"],
                                 {"question": "what colour is your car?"})
                self.assertEqual(step["explanation"], "midnight blue")
                self.assertEqual(done["status"], "success", done)
                self.assertIn("midnight blue", done["result"])

    async def test_bare_answer_goes_to_the_oldest_question(self):
        ws = await self.authed()
        await self.start(ws, "old", "ask me first?")
        await recv_until(ws, is_type("question", "old"), timeout=5)
        await self.start(ws, "new", "ask me second?")
        await recv_until(ws, is_type("question", "new"), timeout=5)
        await ws.send(json.dumps({"answer": "to the first"}))
        done = (await self.until_completion(ws, "old"))[-1]
        self.assertIn("to the first", done["result"])
        await ws.send(json.dumps({"answer": "to the second"}))
        done = (await self.until_completion(ws, "new"))[-1]
        self.assertIn("to the second", done["result"])
        await ws.send(json.dumps({"answer": "nobody asked"}))
        self.assertEqual(error_event(await recv_json(ws)), "invalid_event")

    async def test_cancel(self):
        ws = await self.authed()
        await self.start(ws, "to-cancel", "ask me anything?")
        await recv_until(ws, is_type("question", "to-cancel"), timeout=5)
        await ws.send(json.dumps({"type": "cancel_agent", "runId": "to-cancel"}))
        done = await recv_json(ws)
        self.assertEqual(done, {"type": "completion", "runId": "to-cancel", "status": "failed",
                                "error": "cancelled"})
        # Gone: answering or cancelling it again names it unknown; nothing else arrives.
        await ws.send(json.dumps({"type": "answer", "runId": "to-cancel", "answer": "late"}))
        self.assertEqual(error_event(await recv_json(ws)), "unknown_run")
        await ws.send(json.dumps({"type": "cancel_agent", "runId": "to-cancel"}))
        self.assertEqual(error_event(await recv_json(ws)), "unknown_run")
        await assert_open(ws)
        rec = await self.record("to-cancel", "failed")
        self.assertEqual(rec["error"], "cancelled")

    async def test_duplicate_and_unknown_run_ids(self):
        ws = await self.authed()
        await self.start(ws, "dup", "ask me hold on?")
        await recv_until(ws, is_type("question", "dup"), timeout=5)
        await self.start(ws, "dup", "again")
        self.assertEqual(error_event(await recv_json(ws)), "duplicate_run_id")
        await ws.send(json.dumps({"type": "answer", "runId": "dup", "answer": "ok"}))
        await self.until_completion(ws, "dup")
        # A finished runId stays taken on this connection.
        await self.start(ws, "dup", "once more")
        self.assertEqual(error_event(await recv_json(ws)), "duplicate_run_id")
        await ws.send(json.dumps({"type": "cancel_agent", "runId": "never-started"}))
        self.assertEqual(error_event(await recv_json(ws)), "unknown_run")
        # Another connection may use it.
        other = await self.authed()
        await self.start(other, "dup", "What are your hours?")
        done = (await self.until_completion(other, "dup"))[-1]
        self.assertEqual(done["status"], "success")

    async def test_iteration_limit(self):
        ws = await self.authed()
        await self.start(ws, "loop", "keep calling tools")
        evs = await self.until_completion(ws, "loop", timeout_s=10)
        steps = [e for e in evs if e["type"] == "step_update"]
        self.assertEqual([s["stepNumber"] for s in steps], list(range(1, MAX_ITERATIONS + 1)))
        self.assertEqual(evs[-1], {"type": "completion", "runId": "loop", "status": "failed",
                                   "error": "iteration_limit"})
        rec = await self.record("loop", "failed")
        self.assertEqual(rec["error"], "iteration_limit")

    async def test_bad_events_after_authentication(self):
        ws = await self.authed()
        await self.start(ws, "", "x")
        self.assertEqual(error_event(await recv_json(ws)), "invalid_event")
        await ws.send(json.dumps({"type": "start_agent", "runId": "no-task"}))
        self.assertEqual(error_event(await recv_json(ws)), "invalid_event")
        await self.start(ws, "long", "x" * 8001)
        self.assertEqual(error_event(await recv_json(ws)), "text_too_long")
        await ws.send(json.dumps({"type": "authenticate", "token": good_jwt(SECRET)}))
        self.assertEqual(error_event(await recv_json(ws)), "invalid_event")
        await ws.send('{"type":"frobnicate"}')
        self.assertEqual(error_event(await recv_json(ws)), "unsupported_event")
        await assert_open(ws)

    async def test_closing_cancels_runs(self):
        ws = await self.authed()
        await self.start(ws, "orphan", "ask me are you there?")
        await recv_until(ws, is_type("question", "orphan"), timeout=5)
        await ws.close()
        rec = await self.record("orphan", "failed")
        self.assertEqual(rec["error"], "cancelled")
