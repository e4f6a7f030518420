"""Several network threads (SPEC 3) and the SIGTERM drain (SPEC 3 "Shutdown", 14 "Drain")."""
import asyncio
import concurrent.futures
import http.client
import signal
import threading
import time

from harness import PageReader, SBTestCase, assert_open, error_event, expect_close, timeout


class MultiThreadTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_NET_THREADS": "4"}

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.pool = concurrent.futures.ThreadPoolExecutor(48)
        asyncio.get_running_loop().set_default_executor(self.pool)

    @timeout(30)
    async def test_40_pages_on_distinct_sessions_get_their_commands(self):
        n = 40
        sids = ["mt_page_%02d_%d" % (i, int(time.time())) for i in range(n)]
        socks = await asyncio.gather(*(self.server.page(sid) for sid in sids))
        readers = []
        for ws in socks:
            self.track(ws)
            rd = PageReader(ws, auto_ack=True)
            self.addAsyncCleanup(rd.stop)
            readers.append(rd)
        sections = ["hero", "services", "case-studies", "pricing", "contact"]
        results = await asyncio.gather(*(
            self.server.navigate_when_connected(
                "homepage", {"sessionId": sid, "section": sections[i % 5]})
            for i, sid in enumerate(sids)))
        for i, r in enumerate(results):
            self.assertEqual(r.status, 200, (sids[i], r))
            self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True}, sids[i])
        for i, rd in enumerate(readers):
            cmd = await rd.command()
            self.assertEqual(cmd["section"], sections[i % 5], sids[i])
            self.assertEqual(cmd["page"], "homepage")
            self.assertTrue(rd.queue.empty(), "page %s got more than its command" % sids[i])

    @timeout(30)
    async def test_voice_and_page_of_one_session_on_any_threads(self):
        # With 4 threads the two sockets of a sessionId may live on different threads.
        pairs = []
        for i in range(8):
            tok = self.server.mint()
            voice = self.track(await self.server.voice(tok["sessionId"], tok["token"]))
            page = self.track(await self.server.page(tok["sessionId"]))
            vr, pr = PageReader(voice), PageReader(page, auto_ack=True)
            self.addAsyncCleanup(vr.stop)
            self.addAsyncCleanup(pr.stop)
            pairs.append((tok["sessionId"], vr, pr))
        for sid, vr, pr in pairs:
            await self.server.wait_live(sid)
            end = time.monotonic() + 3
            while True:
                r = await self.server.navigate_when_connected(
                    "homepage", {"sessionId": sid, "section": "pricing"})
                if r.json().get("delivered") == 2 or time.monotonic() > end:
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(r.json(), {"ok": True, "delivered": 2, "acked": True}, sid)
            self.assertEqual((await vr.command())["section"], "pricing")

    async def test_http_on_every_thread(self):
        # Many short connections land on all threads (SO_REUSEPORT hashing): all answer.
        results = await asyncio.gather(*(self.server.arequest("GET", "/healthz")
                                         for _ in range(60)))
        self.assertEqual({r.status for r in results}, {200})


class DrainTest(SBTestCase):
    TEST_TIMEOUT = 25

    async def drain_check(self, env, n_voice, n_pages):
        s = self.own_server(env)
        socks = []
        for i in range(n_voice):
            ws, sid = await s.live_voice()
            socks.append(ws)
        for i in range(n_pages):
            ws = await s.page("drain_page_%d" % i)
            await assert_open(ws)
            socks.append(ws)
        for ws in socks:
            await assert_open(ws)

        statuses = []
        stop_polling = threading.Event()

        def poll_readyz():
            while not stop_polling.is_set():
                try:
                    c = http.client.HTTPConnection(s.host, s.port, timeout=1)
                    c.request("GET", "/readyz")
                    r = c.getresponse()
                    statuses.append((r.status, r.read()))
                    c.close()
                except OSError:
                    return

        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        poller = threading.Thread(target=poll_readyz, daemon=True)
        poller.start()
        try:
            results = await asyncio.gather(*(expect_close(ws, 1001, "server shutting down",
                                                          timeout=10) for ws in socks))
            for before in results:
                codes = [error_event(m) for m in before]
                self.assertIn("server_shutting_down", codes, before)
                self.assertEqual(codes[-1], "server_shutting_down",
                                 "server_shutting_down must come right before the close: %r"
                                 % (before,))
            status, waited = await asyncio.to_thread(s.wait_exit, 10)
            self.assertEqual(status, 0, s.stderr()[-2000:])
            self.assertLessEqual(time.monotonic() - t0, 10.0)
        finally:
            stop_polling.set()
            poller.join(5)
        # /readyz during the drain (optional: the drain may be too quick to catch): once 503,
        # never 200 again.
        seen_503 = False
        for st, body in statuses:
            if st == 503:
                seen_503 = True
            elif seen_503:
                self.fail("/readyz answered %s after 503 during the drain" % st)
        return statuses

    async def test_drain_closes_voice_and_pages(self):
        await self.drain_check({}, 1, 2)

    async def test_drain_with_four_threads(self):
        await self.drain_check({"SWITCHBOARD_NET_THREADS": "4"}, 4, 8)

    async def test_idle_server_drains_fast(self):
        s = self.own_server({})
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        status, _ = await asyncio.to_thread(s.wait_exit, 10)
        self.assertEqual(status, 0)
        self.assertLess(time.monotonic() - t0, 3.0)

    async def test_sigint_drains_too(self):
        s = self.own_server({})
        ws, sid = await s.live_voice()
        s.signal(signal.SIGINT)
        before = await expect_close(ws, 1001, "server shutting down", timeout=10)
        self.assertEqual(error_event(before[-1]), "server_shutting_down")
        status, _ = await asyncio.to_thread(s.wait_exit, 10)
        self.assertEqual(status, 0)
