"""/ws voice sessions: admission, origins, rates, capacity, timeouts (SPEC 5, 5.1, 14)."""
import asyncio
import time

import websockets.exceptions

from harness import (recv_until, SBTestCase, assert_no_message, assert_open, expect_close,
                     recv_json, timeout)

ALLOWED = "http://allowed.example"
PCM_20MS_24K = b"\x00\x01" * 480  # 20 ms of 24 kHz PCM16 mono


class VoiceAdmissionTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_ALLOWED_ORIGINS": ALLOWED}

    async def test_happy_path_stays_open_and_answers_pings(self):
        tok = self.server.mint()
        ws = self.track(await self.server.voice(tok["sessionId"], tok["token"]))
        # SPEC 5.1: session.ready (with the audio formats) once the upstream is configured.
        ready = await recv_json(ws, timeout=5)
        self.assertEqual(ready, {"type": "session.ready", "sessionId": tok["sessionId"],
                                 "audio": {"input_rate": 24000, "output_rate": 24000,
                                           "format": "pcm16"}})
        await ws.send("ping")
        self.assertEqual(await asyncio.wait_for(ws.recv(), 3), "pong")
        await ws.send('{"type":"ping"}')
        self.assertEqual(await recv_json(ws), {"type": "pong"})
        await self.server.wait_live(tok["sessionId"])
        await assert_no_message(ws, 0.3)
        await assert_open(ws)
        # /healthz counts it.
        self.assertGreaterEqual(self.server.get("/healthz").json()["sessions"], 1)

    async def test_accepted_rates(self):
        for rate in (16000, 24000, 48000):
            tok = self.server.mint()
            ws = self.track(await self.server.voice(tok["sessionId"], tok["token"], rate=rate))
            await self.server.wait_live(tok["sessionId"])
            await assert_open(ws)

    async def test_unsupported_rate_1003(self):
        # 16 characters and more too: a value too long to read is refused, not taken for none.
        for rate in ("8000", "44100", "abc", "", "24000x", "-16000", "1600000000000000",
                     "0000000000024000", "4" * 300):
            tok = self.server.mint()
            ws = await self.server.voice(tok["sessionId"], tok["token"], rate=rate)
            await expect_close(ws, 1003, "unsupported rate")

    async def test_replayed_token_1008(self):
        tok = self.server.mint()
        sid = tok["sessionId"]
        ws = await self.server.voice(sid, tok["token"])
        await self.server.wait_live(sid)
        # While the first socket is live: the spent token is checked before "session exists".
        ws2 = await self.server.voice(sid, tok["token"])
        await expect_close(ws2, 1008, "unauthorized")
        await ws.close()
        await self.server.wait_not_live(sid)
        ws3 = await self.server.voice(sid, tok["token"])
        await expect_close(ws3, 1008, "unauthorized")

    async def test_token_for_another_session_1008(self):
        tok = self.server.mint("session_for_a_1")
        ws = await self.server.voice("session_for_b_1", tok["token"])
        await expect_close(ws, 1008, "unauthorized")

    async def test_missing_or_unknown_token_1008(self):
        tok = self.server.mint()
        sid = tok["sessionId"]
        for kwargs in ({"sessionId": sid},
                       {"sessionId": sid, "token": ""},
                       {"sessionId": sid, "token": "ek_" + "0" * 64},
                       {"sessionId": sid, "token": tok["token"][:-1]},
                       {"sessionId": sid, "token": tok["token"].upper()},
                       {"token": tok["token"]}):
            ws = await self.server.ws("/ws", **kwargs)
            await expect_close(ws, 1008, "unauthorized")

    async def test_forbidden_origin_1008_before_any_check(self):
        tok = self.server.mint()
        sid = tok["sessionId"]
        ws = await self.server.voice(sid, tok["token"], origin="http://evil.example")
        await expect_close(ws, 1008, "forbidden origin")
        # Origin is checked first: even a bad rate or no token gives "forbidden origin".
        ws = await self.server.voice(sid, "nope", rate=8000, origin="http://evil.example")
        await expect_close(ws, 1008, "forbidden origin")
        # It happened before any actor existed: the token was not spent.
        ws = self.track(await self.server.voice(sid, tok["token"]))
        await self.server.wait_live(sid)
        await assert_open(ws)

    async def test_allowed_same_and_no_origin(self):
        for origin in (ALLOWED, self.server.origin, None):
            tok = self.server.mint()
            ws = self.track(await self.server.voice(tok["sessionId"], tok["token"],
                                                    origin=origin))
            await self.server.wait_live(tok["sessionId"])
            await assert_open(ws)

    async def test_rate_is_checked_before_token(self):
        ws = await self.server.ws("/ws", sessionId="no_token_here", rate="8000")
        await expect_close(ws, 1003, "unsupported rate")

    async def test_second_ws_for_live_session_1008_session_exists(self):
        sid = "dup_session_%d" % int(time.time() * 1000)
        t1 = self.server.mint(sid)["token"]
        t2 = self.server.mint(sid)["token"]
        ws1 = self.track(await self.server.voice(sid, t1))
        await self.server.wait_live(sid)
        ws2 = await self.server.voice(sid, t2)
        await expect_close(ws2, 1008, "session exists")
        # The first one is untouched.
        await assert_open(ws1)

    async def test_token_is_not_logged(self):
        tok = self.server.mint()
        ws = self.track(await self.server.voice(tok["sessionId"], tok["token"]))
        await self.server.wait_live(tok["sessionId"])
        await ws.close()
        await self.server.wait_not_live(tok["sessionId"])
        self.assertNotIn(tok["token"], self.server.stderr())
        self.assertNotIn(tok["token"][3:], self.server.stderr())


class VoiceMetricsTest(SBTestCase):
    """Own server per test: the counters are exact."""

    async def test_session_counters_and_frames(self):
        s = self.own_server({})
        m0 = s.metrics()
        self.assertEqual(m0['switchboard_sessions_total{result="completed"}'], 0)
        tok = s.mint()
        ws = await s.voice(tok["sessionId"], tok["token"])
        await s.wait_live(tok["sessionId"])
        await eventually_metric(s, "switchboard_sessions_active", 1)
        self.assertEqual(s.get("/healthz").json()["sessions"], 1)
        await ws.send(PCM_20MS_24K)
        await ws.send(PCM_20MS_24K)
        await ws.send('{"type":"ping"}')
        # The echo upstream answers the audio too: skip ahead to the pong.
        await recv_until(ws, lambda m: m == {"type": "pong"}, timeout=5)
        await ws.close()
        await eventually_metric(s, 'switchboard_sessions_total{result="completed"}', 1)
        m = s.metrics()
        self.assertEqual(m["switchboard_sessions_active"], 0)
        self.assertEqual(s.get("/healthz").json()["sessions"], 0)
        self.assertGreaterEqual(m['switchboard_ws_frames_total{direction="in",kind="binary"}'], 2)
        self.assertGreaterEqual(m['switchboard_ws_frames_total{direction="in",kind="text"}'], 1)
        self.assertGreaterEqual(m['switchboard_ws_frames_total{direction="out",kind="text"}'], 1)
        self.assertEqual(m['switchboard_sessions_total{result="error"}'], 0)
        # A refused connection counts as rejected, not completed.
        ws = await s.voice(tok["sessionId"], tok["token"])  # replay
        await expect_close(ws, 1008, "unauthorized")
        await eventually_metric(s, 'switchboard_sessions_total{result="rejected"}', 1)
        self.assertEqual(s.metrics()['switchboard_sessions_total{result="completed"}'], 1)
        s.stop()


async def eventually_metric(server, key, value, deadline_s=3.0):
    end = time.monotonic() + deadline_s
    while True:
        got = (await asyncio.to_thread(server.metrics)).get(key)
        if got == value:
            return
        if time.monotonic() > end:
            raise AssertionError("metric %s is %r, expected %r" % (key, got, value))
        await asyncio.sleep(0.02)


class CapacityTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_MAX_SESSIONS": "2"}

    async def test_third_session_1013_and_token_spent(self):
        toks = [self.server.mint() for _ in range(3)]
        ws1 = await self.server.voice(toks[0]["sessionId"], toks[0]["token"])
        ws2 = self.track(await self.server.voice(toks[1]["sessionId"], toks[1]["token"]))
        await self.server.wait_live(toks[0]["sessionId"])
        await self.server.wait_live(toks[1]["sessionId"])
        ws3 = await self.server.voice(toks[2]["sessionId"], toks[2]["token"])
        await expect_close(ws3, 1013, "at capacity")
        r = self.server.mint_raw({})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["code"], "at_capacity")
        await assert_open(ws1)
        await assert_open(ws2)
        # Free a slot: the refused token was spent anyway, a new one gets in.
        await ws1.close()
        await self.server.wait_not_live(toks[0]["sessionId"])
        ws3 = await self.server.voice(toks[2]["sessionId"], toks[2]["token"])
        await expect_close(ws3, 1008, "unauthorized")
        tok = self.server.mint(toks[2]["sessionId"])
        ws3 = self.track(await self.server.voice(tok["sessionId"], tok["token"]))
        await self.server.wait_live(tok["sessionId"])
        await assert_open(ws3)


class PerIpCapacityTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_SESSIONS_PER_IP": "1"}

    async def test_second_session_from_same_ip_1013(self):
        a = self.server.mint()
        b = self.server.mint()
        ws1 = self.track(await self.server.voice(a["sessionId"], a["token"]))
        await self.server.wait_live(a["sessionId"])
        ws2 = await self.server.voice(b["sessionId"], b["token"])
        await expect_close(ws2, 1013, "at capacity")
        # Another client IP is not affected.
        c = self.server.mint(source_ip="127.0.0.9")
        ws3 = self.track(await self.server.voice(c["sessionId"], c["token"],
                                                 local_ip="127.0.0.9"))
        await self.server.wait_live(c["sessionId"])
        await assert_open(ws3)
        await assert_open(ws1)


class TokenTtlTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_TOKEN_TTL_S": "1"}

    async def test_expired_token_1008(self):
        before = int(time.time() * 1000)
        tok = self.server.mint()
        self.assertGreaterEqual(tok["expiresAt"], before + 1000 - 200)
        self.assertLessEqual(tok["expiresAt"], int(time.time() * 1000) + 1000 + 200)
        # A token used in time works.
        fresh = self.server.mint()
        ws = self.track(await self.server.voice(fresh["sessionId"], fresh["token"]))
        await self.server.wait_live(fresh["sessionId"])
        await asyncio.sleep(1.5)
        await assert_open(ws)  # the token's TTL does not limit the session
        ws2 = await self.server.voice(tok["sessionId"], tok["token"])
        await expect_close(ws2, 1008, "unauthorized")


async def send_every(ws, payload, period_s, duration_s):
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        await ws.send(payload)
        await asyncio.sleep(period_s)


class IdleTimeoutTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_SESSION_IDLE_S": "1"}

    async def open_live(self):
        tok = self.server.mint()
        ws = self.track(await self.server.voice(tok["sessionId"], tok["token"]))
        t0 = time.monotonic()
        await self.server.wait_live(tok["sessionId"])
        return ws, t0

    @timeout(15)
    async def test_idle_4408_while_binary_sender_stays_open(self):
        idle, t_idle = await self.open_live()
        busy, _ = await self.open_live()

        async def idle_side():
            await expect_close(idle, 4408, "idle timeout", timeout=4)
            return time.monotonic() - t_idle

        async def busy_side():
            await send_every(busy, PCM_20MS_24K, 0.2, 2.4)
            await assert_open(busy)  # well past the 1 s idle limit
            t_stop = time.monotonic()
            await expect_close(busy, 4408, "idle timeout", timeout=4)
            return time.monotonic() - t_stop

        idle_after, busy_after = await asyncio.gather(idle_side(), busy_side())
        self.assertGreaterEqual(idle_after, 0.8)
        self.assertLessEqual(idle_after, 2.8)
        self.assertGreaterEqual(busy_after, 0.5)
        self.assertLessEqual(busy_after, 2.8)

    @timeout(15)
    async def test_client_events_keep_the_session_alive(self):
        ws, _ = await self.open_live()
        await send_every(ws, '{"type":"input_audio_buffer.commit"}', 0.2, 2.2)
        await assert_open(ws)

    @timeout(15)
    async def test_text_ping_frames_keep_the_session_alive(self):
        # SPEC 14: SWITCHBOARD_SESSION_IDLE_S counts client text and binary frames; a text
        # `ping` is a client text frame.
        ws, _ = await self.open_live()

        async def pinger():
            end = time.monotonic() + 2.2
            while time.monotonic() < end:
                await ws.send("ping")
                await recv_until(ws, lambda m: m == "pong", timeout=2)
                await asyncio.sleep(0.2)
        try:
            await pinger()
        except websockets.exceptions.ConnectionClosed as e:
            code = e.code
            raise self.failureException("a session sending text `ping` every 200 ms was closed (%s %r) "
                      "within 2.2 s with SWITCHBOARD_SESSION_IDLE_S=1"
                      % (code, e.reason)) from None

    @timeout(15)
    async def test_websocket_protocol_pings_do_not_count(self):
        # Only client text and binary frames count: control-frame pings do not keep it alive.
        ws, t0 = await self.open_live()

        async def pinger():
            while True:
                try:
                    await ws.ping()
                except websockets.exceptions.ConnectionClosed:
                    return
                await asyncio.sleep(0.2)
        task = asyncio.ensure_future(pinger())
        try:
            await expect_close(ws, 4408, "idle timeout", timeout=4)
        finally:
            task.cancel()
        self.assertLessEqual(time.monotonic() - t0, 2.8)

    @timeout(15)
    async def test_idle_counts_as_completed(self):
        s = self.server
        before = s.metrics()['switchboard_sessions_total{result="completed"}']
        ws, _ = await self.open_live()
        await expect_close(ws, 4408, "idle timeout", timeout=4)
        await eventually_metric(s, 'switchboard_sessions_total{result="completed"}', before + 1)


class MaxDurationTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_SESSION_MAX_S": "2"}

    @timeout(15)
    async def test_max_duration_4409(self):
        tok = self.server.mint()
        t0 = time.monotonic()
        ws = self.track(await self.server.voice(tok["sessionId"], tok["token"]))
        await self.server.wait_live(tok["sessionId"])
        sender = asyncio.ensure_future(send_every(ws, PCM_20MS_24K, 0.2, 5))
        try:
            await expect_close(ws, 4409, "max duration", timeout=5)
        finally:
            sender.cancel()
            try:
                await sender
            except BaseException:
                pass
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 1.8)
        self.assertLessEqual(dt, 3.5)
        await self.server.wait_not_live(tok["sessionId"])
        # A session that reached its maximum duration ended normally: result "completed".
        await eventually_metric(self.server, 'switchboard_sessions_total{result="completed"}', 1)
        self.assertEqual(self.server.metrics()['switchboard_sessions_total{result="error"}'], 0)
