"""switchboard-sim itself (SPEC 11, 14 "Bench"): the Realtime GA protocol, echo and agent modes,
the fault flags, the /sim recording and Chat Completions rules and faults.

The simulator binary is harness.sim_path(): $SWITCHBOARD_SIM_BIN, else switchboard-sim next to
the service binary; the tests are skipped when it has not been built.
"""
import asyncio
import base64
import datetime
import json
import math
import os
import re
import struct
import subprocess
import tempfile
import time
import unittest

import websockets
import websockets.exceptions

import harness
from harness import SBTestCase, expect_close, recv_json, recv_until

PCM_RATE = 24000
FRAME_MS = 20
FRAME_BYTES = PCM_RATE * 2 * FRAME_MS // 1000  # 960: 20 ms of 24 kHz PCM16
SUPERVISOR = "getNextResponseFromSupervisor"
SECTIONS = ["hero", "services", "case-studies", "pricing", "contact"]


sim_path = harness.sim_path  # $SWITCHBOARD_SIM_BIN, else next to the service binary


class SimProcess(harness.Server):
    """One switchboard-sim process on a free port; HTTP helpers come from harness.Server."""

    def __init__(self, *args):
        super().__init__(name="switchboard-sim " + " ".join(args))
        self.args = list(args)

    def start(self):
        self.tmpdir = tempfile.mkdtemp(prefix="sbsim-")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self._stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([sim_path(), "--port", "0"] + self.args, cwd=self.tmpdir,
                                     stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                     stderr=self._stderr_file)
        harness._live_processes.add(self.proc)
        pat = re.compile(r"switchboard-sim listening on http://([^/\s]+):(\d+)/ mode=(\w+)")
        deadline = time.monotonic() + harness.START_TIMEOUT
        while time.monotonic() < deadline:
            m = pat.search(self.stderr())
            if m:
                self.host, self.port, self.mode = m.group(1), int(m.group(2)), m.group(3)
                if self.port == 0:
                    raise harness.ServerError("the simulator printed port 0")
                return self
            if self.proc.poll() is not None:
                raise harness.ServerError("switchboard-sim exited with %s; stderr:\n%s"
                                          % (self.proc.returncode, self.stderr()[-3000:]))
            time.sleep(0.01)
        self.kill()
        raise harness.ServerError("switchboard-sim did not print its listening line")

    @property
    def realtime_url(self):
        return "ws://%s:%d/v1/realtime?model=gpt-realtime" % (self.host, self.port)

    async def connect(self, auth="Bearer sk-test", **kw):
        headers = {"Authorization": auth} if auth is not None else {}
        return await websockets.connect(self.realtime_url, extra_headers=headers, max_size=None,
                                        compression=None, ping_interval=None, open_timeout=5,
                                        close_timeout=2, **kw)

    def events(self):
        r = self.get("/sim/events")
        assert r.status == 200, r
        return r.json()["sessions"]

    def session_events(self, session_id):
        for s in self.events():
            if s["id"] == session_id:
                return s
        raise AssertionError("no recording for %s" % session_id)

    def chat(self, body, auth="Bearer sk-test"):
        headers = {"Authorization": auth} if auth else {}
        return self.post("/v1/chat/completions", json_body=body, headers=headers)


def skip_without_sim():
    if not os.access(sim_path(), os.X_OK):
        raise unittest.SkipTest("%s is not built" % sim_path())


def tone(ms, amp=8000, freq=220.0):
    """PCM16 24 kHz sine (well above the simulator's -45 dBFS VAD threshold)."""
    n = PCM_RATE * ms // 1000
    return b"".join(struct.pack("<h", int(amp * math.sin(2 * math.pi * freq * i / PCM_RATE)))
                    for i in range(n))


def append(audio):
    return json.dumps({"type": "input_audio_buffer.append",
                       "audio": base64.b64encode(audio).decode()})


async def opened(sim):
    """Connects and reads session.created and conversation.created; returns (ws, session)."""
    ws = await sim.connect()
    created = await recv_json(ws)
    conv = await recv_json(ws)
    assert created["type"] == "session.created", created
    assert conv["type"] == "conversation.created", conv
    return ws, created["session"]


async def collect_response(ws, timeout=8.0):
    """Reads events up to response.done; returns (events, audio bytes)."""
    got, audio = [], b""
    end = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.1, end - time.monotonic()))
        if m["type"] == "response.output_audio.delta":
            audio += base64.b64decode(m["delta"])
        got.append(m)
        if m["type"] == "response.done":
            return got, audio


def types(events):
    return [e["type"] for e in events if e["type"] != "response.output_audio.delta"]


def tools_update(*names):
    tools = []
    for n in names:
        t = {"type": "function", "name": n, "description": n,
             "parameters": {"type": "object", "properties": {}}}
        if n == "navigate":
            t["parameters"]["properties"]["section"] = {"type": "string", "enum": SECTIONS}
        tools.append(t)
    return {"type": "session.update", "session": {"type": "realtime", "tools": tools}}


def user_text(text):
    return json.dumps({"type": "conversation.item.create",
                       "item": {"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": text}]}})


class SimTestCase(SBTestCase):
    """A simulator for the whole class (SIM_ARGS), plus per-test ones from own_sim()."""

    SIM_ARGS = None

    @classmethod
    def setUpClass(cls):
        skip_without_sim()
        super().setUpClass()
        cls.sim = SimProcess(*cls.SIM_ARGS).start() if cls.SIM_ARGS is not None else None

    @classmethod
    def tearDownClass(cls):
        s, cls.sim = cls.sim, None
        if s is not None:
            try:
                s.stop(expect_status=0)  # SIGTERM: exit 0 promptly
            finally:
                s.cleanup()
        super().tearDownClass()

    def own_sim(self, *args):
        s = SimProcess(*args).start()
        self._servers.append(s)
        return s


class SimRealtimeEchoTest(SimTestCase):
    SIM_ARGS = ["--mode", "echo", "--quiet"]

    async def test_upgrade_without_bearer_is_401(self):
        for auth in (None, "Bearer ", "Basic abc"):
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await self.sim.connect(auth=auth)
            self.assertEqual(cm.exception.status_code, 401, auth)
        refused = [s for s in self.sim.events() if s["http_status"] == 401]
        self.assertTrue(refused)
        self.assertFalse(refused[-1]["authorization_ok"])
        self.assertEqual(refused[-1]["events"], [])

    async def test_session_created_and_update(self):
        ws, sess = await opened(self.sim)
        self.track(ws)
        self.assertEqual(sess["type"], "realtime")
        self.assertTrue(sess["id"].startswith("sess_"), sess)
        self.assertEqual(sess["model"], "gpt-realtime")
        self.assertEqual(sess["output_modalities"], ["audio"])
        self.assertEqual(sess["audio"]["input"]["format"], {"type": "audio/pcm", "rate": 24000})
        self.assertIn("voice", sess["audio"]["output"])
        self.assertEqual(sess["instructions"], "")
        self.assertEqual(sess["tools"], [])
        upd = tools_update(SUPERVISOR)
        upd["session"]["instructions"] = "<company_brief>Prime Auto Lab</company_brief>"
        upd["session"]["audio"] = {"output": {"voice": "cedar"}}
        await ws.send(json.dumps(upd))
        m = await recv_json(ws)
        self.assertEqual(m["type"], "session.updated", m)
        s = m["session"]
        self.assertEqual(s["id"], sess["id"])
        self.assertEqual(s["instructions"], upd["session"]["instructions"])
        self.assertEqual([t["name"] for t in s["tools"]], [SUPERVISOR])
        self.assertEqual(s["audio"]["output"]["voice"], "cedar")
        # Only the fields present change: the input format survives the nested update.
        self.assertEqual(s["audio"]["input"]["format"], sess["audio"]["input"]["format"])

    async def test_session_update_shape_errors(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(json.dumps({"type": "session.update", "event_id": "evt_1",
                                  "session": {"instructions": "no type"}}))
        e = (await recv_json(ws))["error"]
        self.assertEqual((e["code"], e["param"], e["event_id"]),
                         ("missing_required_parameter", "session.type", "evt_1"), e)
        beta = {"modalities": ["text", "audio"], "voice": "ash",
                "input_audio_format": "g711_ulaw", "turn_detection": {"type": "server_vad"}}
        await ws.send(json.dumps({"type": "session.update", "session": beta}))
        e = (await recv_json(ws))["error"]
        self.assertEqual(e["code"], "unknown_parameter", e)
        self.assertEqual(e["type"], "invalid_request_error")
        await ws.send(json.dumps({"type": "no.such.event"}))
        e = (await recv_json(ws))["error"]
        self.assertEqual(e["code"], "invalid_value", e)

    async def test_echo_is_bit_exact_after_created_and_item_added(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        frames = [os.urandom(FRAME_BYTES) for _ in range(5)]
        for f in frames:
            await ws.send(append(f))
        seen = []
        while sum(1 for m in seen if m["type"] == "response.output_audio.delta") < len(frames):
            seen.append(await recv_json(ws))
        order = [m["type"] for m in seen]
        first_delta = order.index("response.output_audio.delta")
        self.assertLess(order.index("response.created"), first_delta, order)
        self.assertLess(order.index("response.output_item.added"), first_delta, order)
        resp_id = seen[order.index("response.created")]["response"]["id"]
        item = seen[order.index("response.output_item.added")]["item"]
        self.assertTrue(resp_id.startswith("resp_"))
        self.assertTrue(item["id"].startswith("item_"))
        self.assertEqual((item["type"], item["role"]), ("message", "assistant"))
        deltas = [m for m in seen if m["type"] == "response.output_audio.delta"]
        self.assertEqual([base64.b64decode(d["delta"]) for d in deltas], frames)
        for d in deltas:
            self.assertEqual((d["response_id"], d["item_id"]), (resp_id, item["id"]))
        # A commit ends the response; the next append starts a new one.
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        done, _ = await recv_until(ws, lambda m: m["type"] == "response.done")
        self.assertEqual(done["response"]["id"], resp_id)
        self.assertEqual(done["response"]["status"], "completed")
        await ws.send(append(frames[0]))
        m, _ = await recv_until(ws, lambda m: m["type"] == "response.created")
        self.assertNotEqual(m["response"]["id"], resp_id)
        # ... and 500 ms without appends ends it too.
        t0 = time.monotonic()
        done, _ = await recv_until(ws, lambda m: m["type"] == "response.done", timeout=3)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.assertEqual(done["response"]["status"], "completed")

    async def test_truncate_checks_audio_and_is_recorded(self):
        ws, sess = await opened(self.sim)
        self.track(ws)
        for _ in range(10):  # 200 ms of audio echoed
            await ws.send(append(bytes(FRAME_BYTES)))
        added, _ = await recv_until(ws, lambda m: m["type"] == "response.output_item.added")
        item_id = added["item"]["id"]
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await recv_until(ws, lambda m: m["type"] == "response.done")
        await ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item_id,
                                  "content_index": 0, "audio_end_ms": 150}))
        m, _ = await recv_until(ws, lambda m: m["type"] in ("conversation.item.truncated",
                                                            "error"))
        self.assertEqual(m["type"], "conversation.item.truncated", m)
        self.assertEqual((m["item_id"], m["content_index"], m["audio_end_ms"]), (item_id, 0, 150))
        await ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item_id,
                                  "content_index": 0, "audio_end_ms": 201, "event_id": "t2"}))
        m = await recv_json(ws)
        self.assertEqual(m["type"], "error", m)
        self.assertEqual((m["error"]["param"], m["error"]["event_id"]), ("audio_end_ms", "t2"))
        rec = self.sim.session_events(sess["id"])
        self.assertTrue(rec["authorization_ok"])
        evs = rec["events"]
        self.assertEqual(evs[0], {"type": "input_audio_buffer.append", "bytes": FRAME_BYTES})
        trunc = [e for e in evs if e["type"] == "conversation.item.truncate"]
        self.assertEqual([(t["item_id"], t["audio_end_ms"]) for t in trunc],
                         [(item_id, 150), (item_id, 201)])

    async def test_one_active_response(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(append(bytes(FRAME_BYTES)))
        await recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
        await ws.send(json.dumps({"type": "response.create", "event_id": "rc1"}))
        m = await recv_json(ws)
        self.assertEqual(m["error"]["code"], "conversation_already_has_active_response", m)
        self.assertEqual(m["error"]["event_id"], "rc1")
        await ws.send(json.dumps({"type": "response.cancel"}))
        done, _ = await recv_until(ws, lambda m: m["type"] == "response.done")
        self.assertEqual(done["response"]["status"], "cancelled")
        self.assertEqual(done["response"]["status_details"]["reason"], "client_cancelled")
        await ws.send(json.dumps({"type": "response.cancel"}))
        m = await recv_json(ws)
        self.assertEqual(m["error"]["code"], "response_cancel_not_active", m)

    async def test_stats_and_clear(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(append(bytes(FRAME_BYTES)))
        await recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
        st = self.sim.get("/sim/stats").json()
        for k in ("sessions_open", "sessions_total", "appends", "deltas"):
            self.assertIsInstance(st[k], int, st)
        self.assertGreaterEqual(st["sessions_open"], 1)
        self.assertGreaterEqual(st["deltas"], 1)
        self.assertEqual(self.sim.request("DELETE", "/sim/events").status, 200)
        sessions = self.sim.events()
        self.assertTrue(all(s["open"] and s["events"] == [] for s in sessions), sessions)


class SimEchoTextTurnTest(SimTestCase):
    SIM_ARGS = ["--mode", "echo", "--quiet"]

    async def test_echo_mode_answers_a_text_turn_in_speech_or_with_text_answers_in_text(self):
        for args, spoken in (([], True), (["--text-answers"], False)):
            sim = self.own_sim("--mode", "echo", "--quiet", *args)
            ws, _ = await opened(sim)
            self.track(ws)
            await ws.send(user_text("Tell me about the weather"))
            await ws.send(json.dumps({"type": "response.create"}))
            evs, audio = await collect_response(ws)
            t = types(evs)
            self.assertEqual(bool(audio), spoken, (args, t))
            self.assertEqual("response.output_text.done" in t, not spoken, (args, t))
            done = evs[-1]["response"]
            self.assertEqual(done["status"], "completed")


class SimRealtimeAgentTest(SimTestCase):
    SIM_ARGS = ["--mode", "agent", "--quiet"]

    async def test_available_calls_the_supervisor_then_speaks_its_output(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(json.dumps(tools_update(SUPERVISOR)))
        await recv_until(ws, lambda m: m["type"] == "session.updated")
        text = "Is Tuesday available for an oil change?"
        await ws.send(user_text(text))
        await ws.send(json.dumps({"type": "response.create"}))
        evs, audio = await collect_response(ws)
        t = types(evs)
        self.assertLess(t.index("response.created"), t.index("response.output_item.added"), t)
        item = next(e for e in evs if e["type"] == "response.output_item.added")["item"]
        self.assertEqual((item["type"], item["name"]), ("function_call", SUPERVISOR))
        self.assertTrue(item["call_id"].startswith("call_"))
        done = next(e for e in evs if e["type"] == "response.function_call_arguments.done")
        self.assertEqual((done["call_id"], done["name"]), (item["call_id"], SUPERVISOR))
        self.assertEqual(json.loads(done["arguments"]),
                         {"relevantContextFromLastUserMessage": text})
        deltas = "".join(e["delta"] for e in evs
                         if e["type"] == "response.function_call_arguments.delta")
        self.assertEqual(deltas, done["arguments"])
        self.assertIn("response.output_item.done", t)
        self.assertEqual(evs[-1]["response"]["status"], "completed")
        self.assertEqual(audio, b"")
        # The tool's output, then response.create: the output is spoken.
        out = "Tuesday at 10:00 is open."
        await ws.send(json.dumps({"type": "conversation.item.create",
                                  "item": {"type": "function_call_output",
                                           "call_id": item["call_id"], "output": out}}))
        await ws.send(json.dumps({"type": "response.create"}))
        evs, audio = await collect_response(ws)
        said = next(e for e in evs if e["type"] == "response.output_audio_transcript.done")
        self.assertEqual(said["transcript"], out)
        words = "".join(e["delta"] for e in evs
                        if e["type"] == "response.output_audio_transcript.delta")
        self.assertEqual(words, out)
        self.assertGreater(len(audio), PCM_RATE * 2 // 2, "at least half a second of speech")
        samples = struct.unpack("<%dh" % (len(audio) // 2), audio)
        self.assertGreater(max(abs(s) for s in samples), 1000)
        usage = evs[-1]["response"]["usage"]
        self.assertEqual(usage["total_tokens"], usage["input_tokens"] + usage["output_tokens"])

    async def test_navigate_only_when_declared(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(user_text("Please show me the case studies"))
        await ws.send(json.dumps({"type": "response.create"}))
        evs, _ = await collect_response(ws)
        self.assertNotIn("response.function_call_arguments.done", types(evs))
        await ws.send(json.dumps(tools_update(SUPERVISOR, "navigate")))
        await recv_until(ws, lambda m: m["type"] == "session.updated")
        for text, section in (("Show me the case studies", "case-studies"),
                              ("can you scroll to pricing?", "pricing"),
                              ("go to the booking page", "booking")):
            await ws.send(user_text(text))
            await ws.send(json.dumps({"type": "response.create"}))
            evs, _ = await collect_response(ws)
            calls = [e for e in evs if e["type"] == "response.function_call_arguments.done"]
            self.assertEqual([(c["name"], json.loads(c["arguments"])) for c in calls],
                             [("navigate", {"section": section})], text)

    async def test_two_calls_in_one_response(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(json.dumps(tools_update(SUPERVISOR, "navigate")))
        await recv_until(ws, lambda m: m["type"] == "session.updated")
        text = "Show me pricing, and is Friday available?"
        await ws.send(user_text(text))
        await ws.send(json.dumps({"type": "response.create"}))
        evs, _ = await collect_response(ws)
        calls = [e for e in evs if e["type"] == "response.function_call_arguments.done"]
        self.assertEqual([(c["name"], c["output_index"]) for c in calls],
                         [("navigate", 0), (SUPERVISOR, 1)])
        self.assertEqual(json.loads(calls[1]["arguments"]),
                         {"relevantContextFromLastUserMessage": text})
        out = evs[-1]["response"]["output"]
        self.assertEqual([(o["type"], o["call_id"]) for o in out],
                         [("function_call", c["call_id"]) for c in calls])
        # Both outputs, then one response.create: both are spoken in one answer.
        for c, said in zip(calls, ("Navigated.", "Friday is open.")):
            await ws.send(json.dumps({"type": "conversation.item.create",
                                      "item": {"type": "function_call_output",
                                               "call_id": c["call_id"], "output": said}}))
        await ws.send(json.dumps({"type": "response.create"}))
        evs, _ = await collect_response(ws)
        said = next(e for e in evs if e["type"] == "response.output_audio_transcript.done")
        self.assertEqual(said["transcript"], "Navigated. Friday is open.")

    async def test_vad_turn_then_barge_in_cancels(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        speech = tone(600)
        for i in range(0, len(speech), FRAME_BYTES):
            await ws.send(append(speech[i:i + FRAME_BYTES]))
        for _ in range(30):  # 600 ms of silence ends the turn
            await ws.send(append(bytes(FRAME_BYTES)))
        seen = []
        while not seen or seen[-1]["type"] != "response.created":
            seen.append(await recv_json(ws, 3))
        t = [m["type"] for m in seen]
        want = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed", "conversation.item.added",
                "conversation.item.input_audio_transcription.completed", "response.created"]
        self.assertEqual([x for x in t if x in want], want, t)
        started = seen[0]
        self.assertEqual(started["type"], "input_audio_buffer.speech_started")
        self.assertIsInstance(started["audio_start_ms"], int)
        transcript = next(m for m in seen if m["type"].endswith("transcription.completed"))
        self.assertRegex(transcript["transcript"], r"^\(caller spoke for \d+\.\d seconds\)$")
        user = next(m for m in seen if m["type"] == "conversation.item.added")["item"]
        self.assertEqual((user["role"], user["id"]), ("user", started["item_id"]))
        # Speech while the answer is being generated: barge-in.
        await recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
        for i in range(0, len(speech), FRAME_BYTES):
            await ws.send(append(speech[i:i + FRAME_BYTES]))
        done, skipped = await recv_until(ws, lambda m: m["type"] == "response.done")
        self.assertIn("input_audio_buffer.speech_started", [m["type"] for m in skipped])
        self.assertEqual(done["response"]["status"], "cancelled")
        self.assertEqual(done["response"]["status_details"],
                         {"type": "cancelled", "reason": "turn_detected"})

    async def test_response_create_while_active(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(user_text("hello"))
        await ws.send(json.dumps({"type": "response.create"}))
        await ws.send(json.dumps({"type": "response.create", "event_id": "second"}))
        m, _ = await recv_until(ws, lambda m: m["type"] == "error")
        self.assertEqual(m["error"]["code"], "conversation_already_has_active_response")
        self.assertEqual(m["error"]["event_id"], "second")


class SimTranscriptsTest(SimTestCase):
    """--transcripts: the Nth VAD turn of a session gets the Nth text and the typed-turn rules."""

    TEXTS = ["Is Monday available for an oil change?", "", "show me pricing"]
    SIM_ARGS = ["--quiet", "--transcripts", " | ".join(TEXTS)]

    async def spoken_turn(self, ws):
        """Speaks 600 ms of tone and 600 ms of silence; returns the turn's events up to the end of
        its response, and the response's audio."""
        speech = tone(600) + bytes(FRAME_BYTES * 30)  # 600 ms of silence end the turn
        for i in range(0, len(speech), FRAME_BYTES):
            await ws.send(append(speech[i:i + FRAME_BYTES]))
        _, before = await recv_until(ws, lambda m: m["type"] == "response.created", timeout=5)
        evs, audio = await collect_response(ws)
        return before + evs, audio

    def transcription(self, evs):
        deltas = [e["delta"] for e in evs
                  if e["type"] == "conversation.item.input_audio_transcription.delta"]
        done = next(e for e in evs
                    if e["type"] == "conversation.item.input_audio_transcription.completed")
        self.assertEqual("".join(deltas), done["transcript"])
        return deltas, done["transcript"]

    def calls(self, evs):
        return [(e["name"], json.loads(e["arguments"])) for e in evs
                if e["type"] == "response.function_call_arguments.done"]

    async def test_spoken_turns_get_the_scripted_words_in_order(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(json.dumps(tools_update(SUPERVISOR, "navigate")))
        await recv_until(ws, lambda m: m["type"] == "session.updated")
        # Turn 1: the words, a word per delta, and the supervisor call a typed turn gets.
        evs, audio = await self.spoken_turn(ws)
        deltas, said = self.transcription(evs)
        self.assertEqual(said, self.TEXTS[0])
        self.assertEqual(deltas[:2], ["Is ", "Monday "])
        self.assertEqual(len(deltas), len(said.split()))
        user = next(e for e in evs if e["type"] == "conversation.item.added")["item"]
        self.assertEqual(user["content"], [{"type": "input_audio", "transcript": said}])
        self.assertEqual(self.calls(evs),
                         [(SUPERVISOR, {"relevantContextFromLastUserMessage": said})])
        self.assertEqual(audio, b"")
        # Turn 2: an empty entry keeps the made-up transcript and the greeting.
        evs, audio = await self.spoken_turn(ws)
        deltas, said = self.transcription(evs)
        self.assertRegex(said, r"^\(caller spoke for \d+\.\d seconds\)$")
        self.assertEqual(len(deltas), 1)
        self.assertEqual(self.calls(evs), [])
        done = next(e for e in evs if e["type"] == "response.output_audio_transcript.done")
        self.assertEqual(done["transcript"], "Thanks for calling. How can I help you today?")
        self.assertGreater(len(audio), 0)
        # Turn 3: trimmed; navigate as for the typed "show me pricing".
        evs, _ = await self.spoken_turn(ws)
        _, said = self.transcription(evs)
        self.assertEqual(said, "show me pricing")
        self.assertEqual(self.calls(evs), [("navigate", {"section": "pricing"})])
        # Past the list: made up again.
        evs, _ = await self.spoken_turn(ws)
        _, said = self.transcription(evs)
        self.assertTrue(said.startswith("(caller spoke for "), said)
        # Each session counts its own turns from the first text.
        ws2, _ = await opened(self.sim)
        self.track(ws2)
        evs, _ = await self.spoken_turn(ws2)
        self.assertEqual(self.transcription(evs)[1], self.TEXTS[0])

    async def test_manual_commit_is_not_scripted(self):
        ws, _ = await opened(self.sim)
        self.track(ws)
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
        await recv_until(ws, lambda m: m["type"] == "session.updated")
        await ws.send(append(tone(300)))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        done, _ = await recv_until(
            ws, lambda m: m["type"] == "conversation.item.input_audio_transcription.completed")
        self.assertTrue(done["transcript"].startswith("(caller spoke for "), done)


class SimFaultTest(SimTestCase):
    async def test_refuse_statuses(self):
        for args, status in (((), 503), (("--refuse-status", "401"), 401),
                             (("--refuse-status", "404"), 404)):
            sim = self.own_sim("--refuse", *args)
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await sim.connect()
            self.assertEqual(cm.exception.status_code, status)
            rec = sim.events()
            self.assertEqual([(s["http_status"], s["authorization_ok"]) for s in rec],
                             [(status, True)])
            sim.stop()

    async def test_reject_session_update(self):
        sim = self.own_sim("--reject-session-update")
        ws, _ = await opened(sim)
        self.track(ws)
        await ws.send(json.dumps({"type": "session.update", "event_id": "upd1",
                                  "session": {"type": "realtime"}}))
        e = (await recv_json(ws))["error"]
        self.assertEqual((e["type"], e["code"], e["event_id"]),
                         ("invalid_request_error", "invalid_value", "upd1"), e)
        self.assertTrue(e["message"])
        sim.stop()

    async def test_delay(self):
        sim = self.own_sim("--delay-ms", "300", "--mode", "echo")
        t0 = time.monotonic()
        ws, _ = await opened(sim)
        self.track(ws)
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        t0 = time.monotonic()
        await ws.send(append(bytes(FRAME_BYTES)))
        await recv_until(ws, lambda m: m["type"] == "response.output_audio.delta")
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        sim.stop()

    async def test_drop_after(self):
        sim = self.own_sim("--drop-after-ms", "300")
        t0 = time.monotonic()
        ws, _ = await opened(sim)
        got = await expect_close(ws, 1006)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual(got, [])
        sim.stop()

    async def test_expire(self):
        sim = self.own_sim("--expire-after-ms", "300")
        ws, _ = await opened(sim)
        msg = "Your session hit the maximum duration of 60 minutes."
        got = await expect_close(ws, 1001, msg)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["type"], "error")
        self.assertEqual(got[0]["error"]["code"], "session_expired")
        self.assertEqual(got[0]["error"]["message"], msg)
        sim.stop()

    async def configured(self, sim):
        ws, _ = await opened(sim)
        self.track(ws)
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        await recv_until(ws, lambda m: m["type"] == "session.updated")
        return ws

    async def test_random_expire_hits_configured_sessions_only(self):
        sim = self.own_sim("--faults", "600", "--fault-kinds", "expire", "--fault-seed", "1")
        idle, _ = await opened(sim)  # never configured: never a target
        self.track(idle)
        ws = await self.configured(sim)
        got = await expect_close(ws, 1001, "Your session hit the maximum duration of 60 minutes.",
                                 timeout=5)
        self.assertEqual([m["error"]["code"] for m in got if m["type"] == "error"],
                         ["session_expired"])
        await asyncio.sleep(0.5)  # five more faults, on average, with nothing to hit
        self.assertTrue(idle.open)
        self.assertEqual(sim.get("/sim/stats").json()["faults"],
                         {"drop": 0, "expire": 1, "chat_429": 0, "chat_500": 0})
        self.assertIn("--fault-seed 1", sim.stderr())
        self.assertIn("event=sim.fault kind=expire", sim.stderr())

    async def test_random_drop(self):
        sim = self.own_sim("--faults", "600", "--fault-kinds", "drop", "--quiet")
        ws = await self.configured(sim)
        await expect_close(ws, 1006, timeout=5)
        self.assertEqual(sim.get("/sim/stats").json()["faults"]["drop"], 1)

    async def test_random_chat_failures_take_turns(self):
        sim = self.own_sim("--faults", "6000", "--fault-kinds", "429,500", "--quiet")
        await asyncio.sleep(0.3)  # about 30 faults armed, 16 kept
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        first = [sim.chat(body) for _ in range(2)]
        # One round of the shuffled bag: each kind once, in either order.
        self.assertEqual(sorted(r.status for r in first), [429, 500], first)
        r429 = [r for r in first if r.status == 429][0]
        self.assertEqual(r429.json()["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(r429.headers.get("retry-after-ms"), "200")
        f = sim.get("/sim/stats").json()["faults"]
        self.assertEqual((f["chat_429"], f["chat_500"]), (1, 1))

    async def test_bad_flag_exits_2(self):
        skip_without_sim()
        for args in (["--mode", "loud"], ["--chat-fail", "418"], ["--port", "x"], ["extra"],
                     ["--transcripts", "|" * 1000], ["--faults", "0"], ["--faults", "-1"],
                     ["--fault-kinds", "drop,fire"], ["--fault-kinds", ""],
                     ["--fault-seed", "-3"]):
            p = subprocess.run([sim_path()] + args, capture_output=True, timeout=5)
            self.assertEqual(p.returncode, 2, (args, p.stderr))


def next_monday():
    today = datetime.date.today()
    ahead = (0 - today.weekday()) % 7 or 7
    return (today + datetime.timedelta(days=ahead)).isoformat()


def chat_tools(*names):
    return [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
            for n in names]


class SimChatTest(SimTestCase):
    SIM_ARGS = ["--quiet"]

    def call_of(self, r):
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertTrue(body["id"].startswith("chatcmpl-"), body)
        self.assertEqual(body["object"], "chat.completion")
        choice = body["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls", body)
        msg = choice["message"]
        self.assertIsNone(msg["content"])
        (call,) = msg["tool_calls"]
        self.assertEqual(call["type"], "function")
        self.assertTrue(call["id"].startswith("call_"))
        self.assertIsInstance(call["function"]["arguments"], str)
        return call["function"]["name"], json.loads(call["function"]["arguments"])

    def text_of(self, r):
        self.assertEqual(r.status, 200, r)
        body = r.json()
        choice = body["choices"][0]
        self.assertEqual(choice["finish_reason"], "stop", body)
        self.assertEqual(choice["message"]["role"], "assistant")
        u = body["usage"]
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])
        return choice["message"]["content"]

    def ask(self, text, *tools, **extra):
        body = {"model": "gpt-4.1-mini", "messages": [
            {"role": "system", "content": "You supervise a receptionist."},
            {"role": "user", "content": text}]}
        if tools:
            body["tools"] = chat_tools(*tools)
        body.update(extra)
        return self.sim.chat(body)

    async def test_401_without_bearer(self):
        r = self.sim.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                          auth=None)
        self.assertEqual(r.status, 401, r)
        err = r.json()["error"]
        self.assertEqual((err["type"], err["code"]), ("invalid_request_error", "invalid_api_key"))
        self.assertTrue(err["message"])

    async def test_tool_rules(self):
        all_tools = ("checkAvailability", "bookAppointment", "lookupCustomer", "crm__echo")
        name, args = self.call_of(self.ask("Is anything available for brakes?", *all_tools))
        self.assertEqual((name, args), ("checkAvailability",
                                        {"date": next_monday(), "serviceType": "Brake Repair"}))
        name, args = self.call_of(self.ask("What availability on 2031-05-06?", *all_tools))
        self.assertEqual(args, {"date": "2031-05-06", "serviceType": "Oil Change"})
        name, args = self.call_of(self.ask("Please book me in", *all_tools))
        self.assertEqual((name, args), ("bookAppointment", {
            "date": next_monday(), "time": "10:00", "customerName": "Test Caller",
            "customerPhone": "555-0100", "serviceType": "Oil Change"}))
        name, args = self.call_of(self.ask("look up 555-123-4567 please", *all_tools))
        self.assertEqual((name, args), ("lookupCustomer", {"phone": "555-123-4567"}))
        name, args = self.call_of(self.ask("Find the customer record", *all_tools))
        self.assertEqual(args, {"phone": "555-0100"})
        name, args = self.call_of(self.ask("echo hello world", *all_tools))
        self.assertEqual((name, args), ("crm__echo", {"message": "hello world"}))
        # A tool that is not offered is never called.
        text = self.text_of(self.ask("Is anything available?", "bookAppointment"))
        self.assertTrue(text.startswith("Prime Auto Lab can help with that."), text)
        self.assertIn("Is anything available?", text)

    async def test_tool_result_is_summarised(self):
        long = "x" * 150 + "é" * 100
        body = {"model": "m", "tools": chat_tools("checkAvailability"), "messages": [
            {"role": "user", "content": "Anything available?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "checkAvailability", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": long}]}
        text = self.text_of(self.sim.chat(body))
        self.assertEqual(text, "Here is what I found: " + long[:200])

    async def test_booking_tool_results_are_said_as_sentences(self):
        def answer(tool, content):
            body = {"model": "m", "tools": chat_tools(tool), "messages": [
                {"role": "user", "content": "Anything available?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": tool, "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(content)}]}
            return self.text_of(self.sim.chat(body))
        self.assertEqual(
            answer("checkAvailability", {"date": "2031-05-06", "serviceType": "Oil Change",
                                         "slots": ["08:00", "08:30", "09:00", "09:30"]}),
            "Here is what I found: on 2031-05-06, Oil Change is open at 08:00, 08:30, 09:00 "
            "and 1 more times.")
        self.assertEqual(answer("checkAvailability", {"date": "2031-05-04", "slots": []}),
                         "Here is what I found: there are no open times on 2031-05-04.")
        self.assertEqual(
            answer("bookAppointment", {"confirmationNumber": "PAL-7Q2K9X", "appointment": {
                "date": "2031-05-06", "time": "10:00", "serviceType": "Brake Repair"}}),
            "Here is what I found: you are booked for Brake Repair on 2031-05-06 at 10:00. "
            "Your confirmation number is PAL-7Q2K9X.")
        self.assertEqual(
            answer("lookupCustomer", {"found": True, "customer": {
                "name": "Ann", "phone": "555-0100", "appointments": [{}]}}),
            "Here is what I found: Ann is a customer, with 1 appointment on record.")
        self.assertEqual(
            answer("bookAppointment", {"error": {"code": "slot_unavailable",
                                                 "message": "that time is taken"}}),
            "Here is what I found: that time is taken.")

    async def test_stream(self):
        r = self.ask("Is anything available?", "checkAvailability", stream=True,
                     stream_options={"include_usage": True})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/event-stream"))
        lines = [ln[6:] for ln in r.text.split("\n") if ln.startswith("data: ")]
        self.assertEqual(lines[-1], "[DONE]")
        chunks = [json.loads(x) for x in lines[:-1]]
        args = "".join(tc["function"].get("arguments", "") for c in chunks for ch in c["choices"]
                       for tc in ch["delta"].get("tool_calls", []))
        self.assertEqual(json.loads(args)["date"], next_monday())
        finish = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
        self.assertEqual(finish, ["tool_calls"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertIn("usage", chunks[-1])

    async def test_fail_429_then_succeed(self):
        sim = self.own_sim("--chat-fail", "429", "--chat-fail-count", "2")
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):
            r = sim.chat(body)
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.headers.get("retry-after-ms"), "200")
            self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(sim.chat(body).status, 200)
        sim.stop()

    async def test_fail_modes(self):
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for mode, status, etype, code in (("429-quota", 429, "insufficient_quota",
                                           "insufficient_quota"),
                                          ("500", 500, "server_error", None),
                                          ("401", 401, "invalid_request_error",
                                           "invalid_api_key")):
            sim = self.own_sim("--chat-fail", mode)
            for _ in range(3):  # default count: every request fails
                r = sim.chat(body)
                self.assertEqual(r.status, status, (mode, r))
                err = r.json()["error"]
                self.assertEqual((err["type"], err["code"]), (etype, code), mode)
            sim.stop()

    async def test_chat_delay_does_not_block(self):
        sim = self.own_sim("--chat-delay-ms", "400")
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        t0 = time.monotonic()
        pending = [asyncio.ensure_future(asyncio.to_thread(sim.chat, body)) for _ in range(3)]

        async def all_arrived():  # /sim/stats is answered while the chats wait
            st = await sim.arequest("GET", "/sim/stats")
            return st.status == 200 and st.json()["chat_requests"] == 3

        await harness.eventually(all_arrived, deadline_s=0.3, what="3 chats in flight")
        self.assertFalse(any(p.done() for p in pending), "a delayed answer came early")
        results = await asyncio.gather(*pending)
        elapsed = time.monotonic() - t0
        self.assertTrue(all(r.status == 200 for r in results), results)
        self.assertGreaterEqual(elapsed, 0.38)
        self.assertLess(elapsed, 1.1)  # concurrently, not one after the other
        sim.stop()


if __name__ == "__main__":
    unittest.main()
