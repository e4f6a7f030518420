"""Phone calls through Twilio Media Streams (SPEC 5.5): the webhook, its signature and TwiML, the
media stream's admission, μ-law pass-through, the mark clock and barge-in, the keypad,
transferCall and endCall, and the call record. Twilio is played by twilio_client.py."""
import asyncio
import base64
import json
import time

import websockets.exceptions

from harness import SBTestCase, Sim, eventually, timeout
from test_relay import sim_sessions
from twilio_client import (ACCOUNT_SID, FakeTwilioRest, TwilioCall, call_params, loud_ulaw,
                           parse_twiml, sign, speech_ulaw, voice_webhook)

TOKEN = "twilio-test-auth-token-0123456789"
OPERATOR = "operator-secret-0123456789abcdef"


def call_sid(n):
    return "CA%032x" % n


async def expect_close(ws, code, reason=None, timeout=3.0):
    """The stream closes with code (and reason); the call's reader keeps receiving meanwhile."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    assert ws.close_code == code, (ws.close_code, ws.close_reason)
    if reason is not None:
        assert ws.close_reason == reason, (ws.close_code, ws.close_reason)


class PhoneCase(SBTestCase):
    """A simulator and a server with phone calls on, per test."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._sims = []
        self._calls = []
        self._rest = []
        self._n = int(time.time() * 1000) % 100000 * 1000

    async def asyncTearDown(self):
        for c in self._calls:
            try:
                await asyncio.wait_for(c.close(), 3)
            except Exception:
                pass
        await super().asyncTearDown()
        for s in self._sims:
            s.stop()
        for r in self._rest:
            r.stop()

    def stack(self, *sim_args, env=None):
        sim = Sim(*(sim_args or ("--mode", "echo"))).start()
        self._sims.append(sim)
        full = dict(sim.env())
        full.update({"SWITCHBOARD_TWILIO_AUTH_TOKEN": TOKEN,
                     "SWITCHBOARD_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                     "SWITCHBOARD_API_SECRET": OPERATOR})
        full.update(env or {})
        return sim, self.own_server(full)

    def rest(self, status=200):
        r = FakeTwilioRest(status)
        self._rest.append(r)
        return r

    def next_sid(self):
        self._n += 1
        return call_sid(self._n)

    def ring(self, server, sid=None, **kw):
        """The webhook for a new call; returns (CallSid, stream url, parameters)."""
        sid = sid or self.next_sid()
        r = voice_webhook(server, TOKEN, call_params(sid, **kw))
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/xml"), r.headers)
        url, params = parse_twiml(r.text)
        self.assertIsNotNone(url, r.text)
        return sid, url, params

    async def call(self, server, echo_marks=True, start=True, **kw):
        sid, url, params = self.ring(server, **kw)
        c = TwilioCall(url, params, sid, echo_marks=echo_marks)
        await c.connect()
        self._calls.append(c)
        if start:
            await c.start()
        return c

    def calls_api(self, server, path="/api/calls"):
        r = server.get(path, headers={"Authorization": "Bearer " + OPERATOR})
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    async def record_of(self, server, sid, ended=True):
        async def find():
            for c in self.calls_api(server)["calls"]:
                if c.get("callSid") == sid and (c["endedAt"] or not ended):
                    return c
            return None
        return await eventually(find, deadline_s=5, what="the call record of %s" % sid)

    async def sim_events(self, sim, pred, what, deadline_s=5.0):
        async def find():
            recs = await asyncio.to_thread(sim_sessions, sim)
            evs = [e for r in recs for e in r["events"]]
            return evs if pred(evs) else None
        return await eventually(find, deadline_s=deadline_s, what=what)


# ---- The webhook -------------------------------------------------------------------------------

class WebhookTest(PhoneCase):

    async def test_phone_endpoints_404_when_unconfigured(self):
        s = self.own_server({})
        r = voice_webhook(s, TOKEN, call_params(call_sid(1)))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.error_code, "not_found")
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as e:
            await websockets.connect(s.ws_url("/twilio/media"))
        self.assertEqual(e.exception.status_code, 404)

    async def test_signature_from_an_independent_hmac_passes(self):
        _, s = self.stack()
        sid, url, params = self.ring(s)
        self.assertEqual(url, "ws://%s/twilio/media" % s.url("/")[len("http://"):-1])
        self.assertEqual(set(params), {"token", "callSid", "from", "to"})
        self.assertRegex(params["token"], r"^ek_[0-9a-f]{64}$")
        self.assertEqual(params["callSid"], sid)
        self.assertEqual(params["from"], "+14155550100")
        self.assertEqual(params["to"], "+14155550199")

    async def test_changed_parameter_url_or_token_is_403(self):
        _, s = self.stack()
        p = call_params(call_sid(7))
        good = sign(TOKEN, s.url("/twilio/voice"), p)
        changed = dict(p, From="+14155550111")
        cases = [
            ("changed parameter", changed, good),
            ("other URL", p, sign(TOKEN, "https://elsewhere.example/twilio/voice", p)),
            ("other token", p, sign("not-the-token", s.url("/twilio/voice"), p)),
            ("no signature", p, ""),
        ]
        for what, params, sig in cases:
            r = voice_webhook(s, TOKEN, params, signature=sig)
            self.assertEqual(r.status, 403, what)
            self.assertEqual(r.error_code, "invalid_signature", what)

    async def test_public_url_is_signed_and_names_the_stream(self):
        _, s = self.stack(env={"SWITCHBOARD_PUBLIC_URL": "https://gw.example.com/"})
        p = call_params(call_sid(8))
        r = voice_webhook(s, TOKEN, p, url="https://gw.example.com/twilio/voice")
        self.assertEqual(r.status, 200, r.text)
        url, params = parse_twiml(r.text)
        self.assertEqual(url, "wss://gw.example.com/twilio/media")
        # The request's own URL is not what Twilio was told: 403.
        r = voice_webhook(s, TOKEN, p)
        self.assertEqual(r.status, 403)

    async def test_busy_at_capacity_says_so_and_hangs_up(self):
        _, s = self.stack(env={"SWITCHBOARD_MAX_SESSIONS": "1"})
        c = await self.call(s)
        await eventually(lambda: s.get("/healthz").json()["sessions"] == 1, what="one live call")
        r = voice_webhook(s, TOKEN, call_params(self.next_sid()))
        self.assertEqual(r.status, 200)
        url, verbs = parse_twiml(r.text)
        self.assertIsNone(url)
        self.assertEqual(verbs, ["Say", "Hangup"], r.text)
        self.assertIn("busy", r.text)


# ---- The media stream --------------------------------------------------------------------------

class MediaStreamTest(PhoneCase):

    async def test_ulaw_passes_through_with_marks_and_the_record_has_the_numbers(self):
        sim, s = self.stack()
        c = await self.call(s)
        frames = [bytes([(i * 7 + k) % 256 for k in range(160)]) for i in range(10)]
        await asyncio.sleep(0.3)  # the upstream gets ready; earlier audio would be buffered
        for f in frames:
            await c.send_media(f)
        await c.wait_for(lambda m: len([1 for _, x in c.received if x.get("event") == "media"])
                         >= len(frames) or False, what="10 media back")
        media = c.events("media")
        # Echo mode returns the μ-law it got, unchanged, in order, each with the streamSid.
        got = b"".join(base64.b64decode(m["media"]["payload"]) for m in media)
        self.assertEqual(got, b"".join(frames))
        for m in media:
            self.assertEqual(m["streamSid"], c.stream_sid)
            self.assertEqual(set(m), {"event", "streamSid", "media"})
        marks = [m["mark"]["name"] for m in c.events("mark")]
        item = marks[0].split(":")[0]
        self.assertEqual(marks[:10], ["%s:%d" % (item, 20 * (i + 1)) for i in range(10)])
        # The upstream was asked for μ-law both ways and got the payloads unchanged.
        evs = await self.sim_events(sim, lambda e: len([x for x in e if x["type"] ==
                                                        "session.update"]) >= 1,
                                    "session.update")
        upd = [e for e in evs if e["type"] == "session.update"][0]["session"]
        self.assertEqual(upd["audio"]["input"]["format"], {"type": "audio/pcmu"})
        self.assertEqual(upd["audio"]["output"]["format"], {"type": "audio/pcmu"})
        names = [t["name"] for t in upd["tools"]]
        self.assertEqual(names, ["getNextResponseFromSupervisor", "transferCall", "endCall"])
        await c.send_stop()
        rec = await self.record_of(s, c.call_sid)
        self.assertEqual(rec["channel"], "phone")
        self.assertEqual(rec["from"], "+14155550100")
        self.assertEqual(rec["to"], "+14155550199")
        self.assertEqual(rec["callSid"], c.call_sid)
        self.assertEqual(rec["endReason"], "caller_hung_up")

    @timeout(30)
    async def test_espeak_greeting_and_a_booking_turn_on_the_phone(self):
        sim, s = self.stack("--mode", "agent", "--pace", "4",
                            "--transcripts", "I would like to book an oil change tomorrow")
        c = await self.call(s)
        await asyncio.sleep(0.3)
        await c.stream(speech_ulaw("I would like to book an oil change tomorrow"),
                       realtime=False)
        for _ in range(60):  # silence ends the turn
            await c.send_media()
            await asyncio.sleep(0.02)
        # The agent's spoken answer comes back as media with the streamSid.
        await c.wait_for(lambda m: m.get("event") == "media", timeout=10, what="agent audio")
        self.assertTrue(all(m["streamSid"] == c.stream_sid for m in c.events("media")))
        rec = await self.record_of(s, c.call_sid, ended=False)
        detail = self.calls_api(s, "/api/calls/" + rec["id"])

        async def supervised():
            d = self.calls_api(s, "/api/calls/" + rec["id"])
            return d if any(t["name"] == "getNextResponseFromSupervisor"
                            for t in d["toolCalls"]) else None
        detail = await eventually(supervised, deadline_s=10, what="a supervisor call")
        sup = [t for t in detail["toolCalls"] if t["via"] == "supervisor"][0]
        self.assertEqual(sup["status"], "completed")
        # The supervisor knew the caller's number.
        chat = await self.sim_events(sim, lambda e: True, "events")
        del chat
        await c.send_stop()

    async def test_no_start_within_5s_is_1008(self):
        _, s = self.stack()
        c = await self.call(s, start=False)
        await c.send_connected()
        await expect_close(c.ws, 1008, "no start", timeout=7)

    async def test_bad_used_expired_or_foreign_tokens_are_1008(self):
        _, s = self.stack(env={"SWITCHBOARD_TOKEN_TTL_S": "1"})
        # Missing token, and a made-up one.
        for params in ({}, {"token": "ek_" + "0" * 64}):
            sid, url, good = self.ring(s)
            c = TwilioCall(url, params, sid)
            await c.connect()
            self._calls.append(c)
            await c.start()
            await expect_close(c.ws, 1008, "unauthorized")
        # A token for another CallSid.
        sid, url, params = self.ring(s)
        c = TwilioCall(url, params, sid)
        await c.connect()
        self._calls.append(c)
        await c.send_connected()
        await c.send_start(call_sid=self.next_sid())
        await expect_close(c.ws, 1008, "unauthorized")
        # Used once: the second stream with it is refused.
        sid, url, params = self.ring(s)
        first = TwilioCall(url, params, sid)
        await first.connect()
        self._calls.append(first)
        await first.start()
        await eventually(lambda: s.get("/healthz").json()["sessions"] >= 1, what="live")
        await first.send_stop()
        await first.closed.wait()
        again = TwilioCall(url, params, sid)
        await again.connect()
        self._calls.append(again)
        await again.start()
        await expect_close(again.ws, 1008, "unauthorized")
        # Expired (TTL 1 s).
        sid, url, params = self.ring(s)
        await asyncio.sleep(1.3)
        late = TwilioCall(url, params, sid)
        await late.connect()
        self._calls.append(late)
        await late.start()
        await expect_close(late.ws, 1008, "unauthorized")

    async def test_binary_frame_is_1003(self):
        _, s = self.stack()
        c = await self.call(s)
        await c.ws.send(b"\xff" * 160)
        await expect_close(c.ws, 1003)

    async def test_malformed_media_is_dropped_and_the_call_goes_on(self):
        sim, s = self.stack()
        c = await self.call(s)
        await asyncio.sleep(0.3)
        await c.send_media(payload="not base64!!")
        await c.send_media(payload="A" * 100000)
        await c.ws.send("{not json")
        await c.send_media(b"\x01" * 160)
        await c.wait_for(lambda m: m.get("event") == "media", what="the good frame echoed")
        got = b"".join(base64.b64decode(m["media"]["payload"]) for m in c.events("media"))
        self.assertEqual(got, b"\x01" * 160)
        m = s.metrics()
        self.assertGreaterEqual(m.get('switchboard_twilio_dropped_total{reason="bad_payload"}', 0), 1)
        self.assertGreaterEqual(m.get('switchboard_twilio_dropped_total{reason="too_big"}', 0), 1)
        # A gap in sequenceNumber is counted.
        c.seq += 3
        await c.send_media()
        await eventually(lambda: s.metrics().get(
            "switchboard_twilio_sequence_gaps_total", 0) >= 3, what="the gap counted")

    async def test_keypad_digits_become_one_user_item(self):
        sim, s = self.stack()
        c = await self.call(s)
        await asyncio.sleep(0.3)
        for d in "123#":
            await c.send_dtmf(d)
        evs = await self.sim_events(
            sim, lambda e: any(x["type"] == "response.create" for x in e), "response.create")
        items = [e for e in evs if e["type"] == "conversation.item.create"]
        texts = [p.get("text") for e in items for p in e["item"].get("content", [])]
        self.assertEqual(texts, ["[keypad] 123"])
        self.assertEqual(items[0]["item"]["role"], "user")
        # Digits without '#' end after 2 s.
        await c.send_dtmf("4")
        await c.send_dtmf("2")
        evs = await self.sim_events(
            sim, lambda e: any("[keypad] 42" == p.get("text") for x in e
                               if x["type"] == "conversation.item.create"
                               for p in x["item"].get("content", [])),
            "[keypad] 42", deadline_s=4)


# ---- Barge-in ----------------------------------------------------------------------------------

class BargeInTest(PhoneCase):

    async def speaking(self, s, sim):
        """A call whose marks we echo by hand, with the agent answering a keypad turn."""
        c = await self.call(s, echo_marks=False)
        await asyncio.sleep(0.3)
        await c.send_dtmf("1")
        await c.send_dtmf("#")
        await c.wait_for(lambda m: len(c.events("mark")) >= 20, timeout=5, what="20 marks")
        return c

    async def truncates(self, sim):
        evs = await self.sim_events(sim, lambda e: any(
            x["type"] == "conversation.item.truncate" for x in e), "truncate")
        return [e for e in evs if e["type"] == "conversation.item.truncate"]

    @timeout(20)
    async def test_truncate_at_the_last_echoed_mark(self):
        sim, s = self.stack("--mode", "agent", "--pace", "1")
        c = await self.speaking(s, sim)
        c.echo_now(7)
        heard = c.echoed[-1]
        item, ms = heard.split(":")
        await asyncio.sleep(0.1)
        for f in loud_ulaw(25):
            await c.send_media(f)
            await asyncio.sleep(0.02)
        await c.wait_for(lambda m: m.get("event") == "clear", what="clear")
        tr = await self.truncates(sim)
        self.assertEqual(len(tr), 1, tr)
        self.assertEqual(tr[0]["item_id"], item)
        self.assertEqual(tr[0]["content_index"], 0)
        self.assertEqual(tr[0]["audio_end_ms"], int(ms))
        sent_ms = sum(len(base64.b64decode(m["media"]["payload"]))
                      for m in c.events("media")) / 8
        self.assertLessEqual(tr[0]["audio_end_ms"], sent_ms)

    @timeout(20)
    async def test_no_clear_or_truncate_when_every_mark_is_back(self):
        sim, s = self.stack("--mode", "agent", "--pace", "50")
        c = await self.call(s, echo_marks=False)
        await asyncio.sleep(0.3)
        await c.send_dtmf("1")
        await c.send_dtmf("#")
        await c.wait_for(lambda m: m.get("event") == "mark" and
                         m["mark"]["name"].startswith("done:"), timeout=5, what="done mark")
        await asyncio.sleep(0.3)
        c.echo_now()
        await asyncio.sleep(0.2)
        for f in loud_ulaw(25):
            await c.send_media(f)
            await asyncio.sleep(0.02)
        await self.sim_events(sim, lambda e: any(
            x["type"] == "input_audio_buffer.append" for x in e), "appends")
        await asyncio.sleep(1.0)
        self.assertEqual(c.events("clear"), [])
        recs = await asyncio.to_thread(sim_sessions, sim)
        self.assertEqual([e for r in recs for e in r["events"]
                          if e["type"] == "conversation.item.truncate"], [])


# ---- transferCall and endCall ------------------------------------------------------------------

TRANSFER_CONFIG = {
    "company": {"name": "Acme Dental", "phone": "+14155550000", "timezone": "UTC"},
    "brief": "A dentist.",
    "phone": {"transferTo": "+14155550123"},
}


class CallToolsTest(PhoneCase):

    def config(self, tmp, cfg):
        import os
        import tempfile
        d = tempfile.mkdtemp(prefix="sbphone-")
        path = os.path.join(d, "agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    async def say(self, c, text):
        """A typed caller turn is not possible on a phone; the keypad's item stands in for the
        rules' text: the sim reads the digits' item. Instead speak through the scripted VAD."""
        raise NotImplementedError

    @timeout(30)
    async def test_transfer_posts_once_with_basic_auth_after_the_sentence_played(self):
        rest = self.rest(200)
        path = self.config(None, TRANSFER_CONFIG)
        sim, s = self.stack("--mode", "agent", "--pace", "4",
                            "--transcripts", "please transfer me to a person",
                            env={"SWITCHBOARD_CONFIG": path,
                                 "SWITCHBOARD_TWILIO_API_URL": rest.url})
        c = await self.call(s, echo_marks=True)
        await asyncio.sleep(0.3)
        await c.stream(b"".join(loud_ulaw(30)), realtime=False)
        for _ in range(50):
            await c.send_media()
            await asyncio.sleep(0.02)
        await eventually(lambda: len(rest.requests) >= 1, deadline_s=15, what="the REST update")
        await asyncio.sleep(0.5)
        self.assertEqual(len(rest.requests), 1, rest.requests)
        t, path_, headers, form = rest.requests[0]
        self.assertEqual(path_, "/2010-04-01/Accounts/%s/Calls/%s.json" % (ACCOUNT_SID,
                                                                          c.call_sid))
        cred = base64.b64encode(("%s:%s" % (ACCOUNT_SID, TOKEN)).encode()).decode()
        self.assertEqual(headers.get("Authorization"), "Basic " + cred)
        self.assertEqual(form, {"Twiml": "<Response><Dial>+14155550123</Dial></Response>"})
        # After the sentence that followed the tool's output had played: its done: mark echoed.
        done = [m["mark"]["name"] for m in c.events("mark") if m["mark"]["name"].startswith("done:")]
        self.assertGreaterEqual(len(done), 1)
        self.assertIn(done[-1], c.echoed)
        rec = await self.record_of(s, c.call_sid)
        self.assertEqual(rec["endReason"], "transferred")
        self.assertEqual(rec["transferredTo"], "+14155550123")

    @timeout(30)
    async def test_transfer_refused_by_twilio_is_a_tool_error_spoken(self):
        rest = self.rest(500)
        path = self.config(None, TRANSFER_CONFIG)
        sim, s = self.stack("--mode", "agent", "--pace", "4",
                            "--transcripts", "please transfer me to a person",
                            env={"SWITCHBOARD_CONFIG": path,
                                 "SWITCHBOARD_TWILIO_API_URL": rest.url})
        c = await self.call(s)
        await asyncio.sleep(0.3)
        await c.stream(b"".join(loud_ulaw(30)), realtime=False)
        for _ in range(50):
            await c.send_media()
            await asyncio.sleep(0.02)
        await eventually(lambda: len(rest.requests) >= 1, deadline_s=15, what="the REST update")
        # The model is told, and speaks again.
        evs = await self.sim_events(sim, lambda e: any(
            x["type"] == "conversation.item.create" and x["item"].get("role") == "system"
            for x in e), "the failure told to the model", deadline_s=5)
        n_media = len(c.events("media"))
        await c.wait_for(lambda m: len(c.events("media")) > n_media, timeout=5,
                         what="the failure spoken")
        rec = await self.record_of(s, c.call_sid, ended=False)
        detail = self.calls_api(s, "/api/calls/" + rec["id"])
        tr = [t for t in detail["toolCalls"] if t["name"] == "transferCall"]
        self.assertEqual(len(tr), 1, tr)
        self.assertEqual(tr[0]["status"], "failed")
        self.assertIsNone(rec["transferredTo"])
        del evs

    @timeout(30)
    async def test_end_call_closes_after_the_goodbye_played(self):
        sim, s = self.stack("--mode", "agent", "--pace", "4",
                            "--transcripts", "that is all, goodbye")
        c = await self.call(s)
        await asyncio.sleep(0.3)
        await c.stream(b"".join(loud_ulaw(30)), realtime=False)
        for _ in range(50):
            await c.send_media()
            await asyncio.sleep(0.02)
        await asyncio.wait_for(c.closed.wait(), 15)
        done = [m["mark"]["name"] for m in c.events("mark") if m["mark"]["name"].startswith("done:")]
        self.assertTrue(done)
        self.assertIn(done[-1], c.echoed, "closed before the goodbye's marks came back")
        self.assertEqual(c.ws.close_code, 1000)
        rec = await self.record_of(s, c.call_sid)
        self.assertEqual(rec["endReason"], "agent_ended")


# ---- Tenants -----------------------------------------------------------------------------------

class TenantPhoneTest(PhoneCase):
    """The To number picks the business (SPEC 16): its instructions, and its records."""

    async def test_the_called_number_picks_the_tenant(self):
        from test_tenants import TenantDir, tenant_a, tenant_b
        d = TenantDir(acme=tenant_a(), beta=tenant_b())
        self.addCleanup(d.remove)
        sim, s = self.stack(env={"SWITCHBOARD_CONFIG": d.path})
        # Beta's number: beta's brief reaches the upstream, acme's never does.
        c = await self.call(s, to=tenant_b()["phoneNumbers"][0])
        evs = await self.sim_events(sim, lambda e: any(x["type"] == "session.update"
                                                       for x in e), "session.update")
        text = json.dumps([e for e in evs if e["type"] == "session.update"])
        self.assertIn("BETA-BRIEF-MARKER", text)
        self.assertNotIn("ACME-BRIEF-MARKER", text)
        await c.send_stop()
        rec = await self.record_of(s, c.call_sid)
        self.assertEqual(rec.get("tenant"), "beta")
        # A number no business owns: the caller hears why, then the call ends.
        r = voice_webhook(s, TOKEN, call_params(self.next_sid(), to="+14155550999"))
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/xml"))
        url, verbs = parse_twiml(r.text)
        self.assertIsNone(url, r.text)
        self.assertEqual(verbs, ["Say", "Hangup"])
