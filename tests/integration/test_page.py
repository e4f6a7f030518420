"""Page command channel: /ws/page and POST /api/interact/{page}/navigate (SPEC 4, 5.2, 14)."""
import asyncio
import json
import time

from harness import HOMEPAGE_SECTIONS, PageReader, SBTestCase, assert_open, expect_close

SECRET = "page-secret-Kx7"
NO_ACK_WAIT_S = 1.5  # SPEC 4: navigate answers once a client acks, or after 1.5 s


def nav_body(sid, section="pricing"):
    return {"sessionId": sid, "section": section}


class PageTestBase(SBTestCase):
    def sid(self, tag=""):
        self._k = getattr(self, "_k", 0) + 1
        return "pg_%s_%s%d" % (self.id().rsplit(".", 1)[-1][5:35], tag, self._k)

    async def reader(self, sid, page="homepage", auto_ack=False):
        ws = self.track(await self.server.page(sid, page=page))
        r = PageReader(ws, auto_ack=auto_ack)
        self.addAsyncCleanup(r.stop)
        return r

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"]["code"], code, body)
        self.assertIsInstance(body["error"]["message"], str)
        return body


class NavigateTest(PageTestBase):
    SERVER_ENV = {}

    async def test_command_and_ack(self):
        sid = self.sid()
        page = await self.reader(sid)
        t_req = time.monotonic()
        req = asyncio.ensure_future(self.server.navigate_when_connected("homepage",
                                                                        nav_body(sid)))
        cmd = await page.command()
        self.assertEqual(set(cmd), {"type", "id", "command", "page", "section"}, cmd)
        self.assertEqual(cmd["type"], "command")
        self.assertEqual(cmd["command"], "navigate")
        self.assertEqual(cmd["page"], "homepage")
        self.assertEqual(cmd["section"], "pricing")
        self.assertIsInstance(cmd["id"], str)
        self.assertTrue(cmd["id"])
        await page.ws.send(json.dumps({"type": "command.ack", "id": cmd["id"]}))
        r = await req
        # Answered by the ack, not by the no-ack wait: that one starts after our request was
        # sent, so its answer cannot arrive before t_req + 1.5 s however slow the build is.
        self.assertLess(time.monotonic() - t_req, NO_ACK_WAIT_S,
                        "the answer waited for the no-ack deadline instead of the ack")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True})

    async def test_every_section_and_distinct_ids(self):
        sid = self.sid()
        page = await self.reader(sid, auto_ack=True)
        ids = set()
        for section in HOMEPAGE_SECTIONS:
            r = await self.server.navigate_when_connected("homepage", nav_body(sid, section))
            self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True}, section)
            cmd = await page.command()
            self.assertEqual(cmd["section"], section)
            ids.add(cmd["id"])
        self.assertEqual(len(ids), len(HOMEPAGE_SECTIONS))

    async def test_no_ack_answers_acked_false_after_1_5_s(self):
        sid = self.sid()
        page = await self.reader(sid)
        # Make sure the page is registered first (acked quickly), then time the unacked one.
        page.auto_ack = True
        r = await self.server.navigate_when_connected("homepage", nav_body(sid, "hero"))
        self.assertEqual(r.json()["acked"], True)
        await page.command()
        page.auto_ack = False
        t0 = time.monotonic()
        r = await self.server.anavigate("homepage", nav_body(sid))
        dt = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": False})
        self.assertGreaterEqual(dt, 1.3)
        self.assertLessEqual(dt, 3.0)
        cmd = await page.command()
        self.assertEqual(cmd["section"], "pricing")

    async def test_ack_of_unknown_or_foreign_id_does_not_ack(self):
        sid, other = self.sid(), self.sid("o")
        page = await self.reader(sid)
        other_page = await self.reader(other)
        page.auto_ack = True
        await self.server.navigate_when_connected("homepage", nav_body(sid, "hero"))
        await page.command()
        page.auto_ack = False
        other_page.auto_ack = True
        await self.server.navigate_when_connected("homepage", nav_body(other, "hero"))
        await other_page.command()
        other_page.auto_ack = False
        req = asyncio.ensure_future(self.server.anavigate("homepage", nav_body(sid)))
        cmd = await page.command()
        # Acks from another sessionId's page, and for ids never sent, are ignored.
        await other_page.ws.send(json.dumps({"type": "command.ack", "id": cmd["id"]}))
        await page.ws.send(json.dumps({"type": "command.ack", "id": "cmd_nope"}))
        r = await req
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": False})

    async def test_parameters_wrapper(self):
        sid = self.sid()
        await self.reader(sid, auto_ack=True)
        r = await self.server.navigate_when_connected(
            "homepage", {"parameters": {"sessionId": sid, "section": "contact"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True})

    async def test_unknown_page_404(self):
        self.assert_error(self.server.navigate("nopage", nav_body("whatever_1")), 404,
                          "unknown_page")

    async def test_invalid_section_400_lists_valid(self):
        body = self.assert_error(self.server.navigate("homepage", nav_body("whatever_1", "faq")),
                                 400, "invalid_section")
        self.assertEqual(body["error"]["valid"], HOMEPAGE_SECTIONS)
        body = self.assert_error(
            self.server.navigate("homepage", {"parameters": nav_body("whatever_1", "Pricing")}),
            400, "invalid_section")
        self.assertEqual(body["error"]["valid"], HOMEPAGE_SECTIONS)

    async def test_missing_field_400_invalid_request(self):
        for body in ({"sessionId": "whatever_1"}, {"section": "pricing"}, {},
                     {"sessionId": 5, "section": "pricing"},
                     {"sessionId": "whatever_1", "section": ["pricing"]},
                     {"parameters": {"sessionId": "whatever_1"}}):
            with self.subTest(body=body):
                self.assert_error(self.server.navigate("homepage", body), 400, "invalid_request")

    async def test_session_not_connected_404(self):
        self.assert_error(self.server.navigate("homepage", nav_body("nobody_is_here_1")), 404,
                          "session_not_connected")

    async def test_invalid_json_400(self):
        self.assert_error(self.server.navigate("homepage", None, raw=b'{"sessionId":'), 400,
                          "invalid_json")

    async def test_order_of_checks(self):
        # invalid_json before unknown_page
        self.assert_error(self.server.navigate("nopage", None, raw=b"{"), 400, "invalid_json")
        # unknown_page before invalid_request
        self.assert_error(self.server.navigate("nopage", {}), 404, "unknown_page")
        # invalid_request before invalid_section
        self.assert_error(self.server.navigate("homepage", {"section": "nope"}), 400,
                          "invalid_request")
        # invalid_section before session_not_connected
        self.assert_error(self.server.navigate("homepage", nav_body("nobody_here_2", "nope")),
                          400, "invalid_section")

    async def test_wrong_method_and_path(self):
        r = self.server.get("/api/interact/homepage/navigate")
        self.assert_error(r, 405, "method_not_allowed")

    async def test_delivery_to_pages_and_voice(self):
        tok = self.server.mint()
        sid = tok["sessionId"]
        p1 = await self.reader(sid)
        p2 = await self.reader(sid)
        voice_ws = self.track(await self.server.voice(sid, tok["token"]))
        voice = PageReader(voice_ws)
        self.addAsyncCleanup(voice.stop)
        await self.server.wait_live(sid)
        # The voice socket registers when it is admitted: wait until all three are counted.
        end = time.monotonic() + 3
        p1.auto_ack = True
        while True:
            r = await self.server.navigate_when_connected("homepage", nav_body(sid, "hero"))
            self.assertEqual(r.status, 200, r)
            if r.json()["delivered"] == 3 or time.monotonic() > end:
                break
            await asyncio.sleep(0.05)
        self.assertEqual(r.json(), {"ok": True, "delivered": 3, "acked": True})
        p1.auto_ack = False
        # The voice socket gets the same command, and its command.ack acks.
        req = asyncio.ensure_future(self.server.anavigate("homepage", nav_body(sid, "services")))
        services = lambda c: c["section"] == "services"  # noqa: E731
        c1 = await p1.command(where=services)
        c2 = await p2.command(where=services)
        cv = await voice.command(where=services)
        self.assertEqual(c1, c2)
        self.assertEqual(c1, cv)
        self.assertEqual(cv["section"], "services")
        t0 = time.monotonic()
        await voice_ws.send(json.dumps({"type": "command.ack", "id": cv["id"]}))
        r = await req
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(r.json(), {"ok": True, "delivered": 3, "acked": True})

    async def test_voice_socket_alone_is_connected(self):
        ws, sid = await self.server.live_voice()
        self.track(ws)
        voice = PageReader(ws, auto_ack=True)
        self.addAsyncCleanup(voice.stop)
        r = await self.server.navigate_when_connected("homepage", nav_body(sid))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True})
        cmd = await voice.command()
        self.assertEqual((cmd["command"], cmd["page"], cmd["section"]),
                         ("navigate", "homepage", "pricing"))

    async def test_four_pages_then_fifth_replaces_oldest(self):
        sid = self.sid()
        socks = []
        for i in range(4):
            socks.append(self.track(await self.server.page(sid)))
        for ws in socks:
            await assert_open(ws)
        fifth = self.track(await self.server.page(sid))
        await expect_close(socks[0], 4000, "replaced")
        for ws in socks[1:] + [fifth]:
            await assert_open(ws)
        readers = [PageReader(ws) for ws in socks[1:] + [fifth]]
        for rd in readers:
            self.addAsyncCleanup(rd.stop)
        readers[-1].auto_ack = True
        r = await self.server.navigate_when_connected("homepage", nav_body(sid))
        self.assertEqual(r.json(), {"ok": True, "delivered": 4, "acked": True})
        for rd in readers:
            self.assertEqual((await rd.command())["section"], "pricing")

    async def test_closed_page_is_no_longer_a_target(self):
        sid = self.sid()
        ws = await self.server.page(sid)
        rd = PageReader(ws, auto_ack=True)
        r = await self.server.navigate_when_connected("homepage", nav_body(sid))
        self.assertEqual(r.json()["delivered"], 1)
        await rd.stop()
        await ws.close()
        end = time.monotonic() + 3
        while True:
            r = await self.server.anavigate("homepage", nav_body(sid))
            if r.status == 404 or time.monotonic() > end:
                break
            await asyncio.sleep(0.05)
        self.assert_error(r, 404, "session_not_connected")

    async def test_malformed_session_id_closes_1008(self):
        # A sessionId is [A-Za-z0-9_-]{8,64} (SPEC 4), on /ws/page as on /ws. ("ab\r\n" arrives
        # as "ab": the CRLF ends the decoded query argument before the router sees it.)
        for sid in ("a", "abcdefg", "x" * 65, "abcd efgh", "abcd+efgh", "ab\r\n", "abcd.efgh",
                    ""):
            ws = await self.server.page(sid)
            try:
                await expect_close(ws, 1008, "unauthorized")
            except AssertionError as e:
                raise AssertionError("sessionId %r: %s" % (sid, e)) from None
        ws = await self.server.ws("/ws/page", page="homepage")  # none at all
        await expect_close(ws, 1008, "unauthorized")
        for sid in ("abcdefgh", "A-Z_0-9x", "y" * 64):
            ws = self.track(await self.server.page(sid))
            await assert_open(ws)

    async def test_page_forbidden_origin(self):
        ws = await self.server.page(self.sid(), origin="http://evil.example")
        await expect_close(ws, 1008, "forbidden origin")
        ws = self.track(await self.server.page(self.sid(), origin=self.server.origin))
        await assert_open(ws)


class NavigateSecretTest(PageTestBase):
    SERVER_ENV = {"SWITCHBOARD_API_SECRET": SECRET}

    def auth(self, secret=SECRET):
        return {"Authorization": "Bearer " + secret}

    async def test_401_without_or_with_wrong_bearer(self):
        sid = self.sid()
        for h in (None, self.auth("wrong"), self.auth(SECRET + "!"), {"Authorization": SECRET}):
            with self.subTest(headers=h):
                self.assert_error(self.server.navigate("homepage", nav_body(sid), headers=h), 401,
                                  "unauthorized")

    async def test_200_with_right_bearer(self):
        sid = self.sid()
        await self.reader(sid, auto_ack=True)
        r = await self.server.navigate_when_connected("homepage", nav_body(sid),
                                                      headers=self.auth())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True})

    async def test_401_comes_first(self):
        self.assert_error(self.server.navigate("homepage", None, raw=b"{"), 401, "unauthorized")
        self.assert_error(self.server.navigate("nopage", {}), 401, "unauthorized")
        self.assert_error(self.server.navigate("homepage", nav_body("x_unknown_1", "nope")), 401,
                          "unauthorized")
        # With the secret, the next check answers.
        self.assert_error(self.server.navigate("homepage", None, raw=b"{", headers=self.auth()),
                          400, "invalid_json")


class NavigateNonLoopbackTest(PageTestBase):
    """API secret unset and a non-loopback caller -> 401 (SPEC 14). The client address comes
    from X-Forwarded-For because the socket peer is a trusted proxy."""
    SERVER_ENV = {"SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}

    async def test_non_loopback_caller_401(self):
        r = self.server.navigate("homepage", nav_body("whatever_1"),
                                 headers={"X-Forwarded-For": "203.0.113.7"})
        self.assert_error(r, 401, "unauthorized")
        # A loopback caller (no forwarding) passes the auth check.
        r = self.server.navigate("homepage", nav_body("whatever_1"))
        self.assert_error(r, 404, "session_not_connected")
