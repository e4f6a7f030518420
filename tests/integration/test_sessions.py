"""POST /api/sessions (SPEC 4, 14 "Order of checks", "Voice sessions")."""
import time

from harness import (ANON_USER_RE, SBTestCase, SESSION_ID_RE, TOKEN_RE, USER_KEY_RE, assert_open,
                     expect_close)

SECRET = "mint-secret-Zq81"


class MintTest(SBTestCase):
    SERVER_ENV = {}

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"]["code"], code, body)
        self.assertIsInstance(body["error"]["message"], str)
        return body

    async def test_happy_path_shape(self):
        before = int(time.time() * 1000)
        r = self.server.mint_raw({})
        after = int(time.time() * 1000)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        body = r.json()
        self.assertEqual(set(body), {"sessionId", "token", "expiresAt"}, body)
        self.assertRegex(body["token"], TOKEN_RE)
        self.assertRegex(body["sessionId"], SESSION_ID_RE)
        self.assertIsInstance(body["expiresAt"], int)
        # Unix milliseconds, now + SWITCHBOARD_TOKEN_TTL_S (60 s by default).
        self.assertGreaterEqual(body["expiresAt"], before + 60000 - 1000)
        self.assertLessEqual(body["expiresAt"], after + 60000 + 1000)

    async def test_no_body_at_all(self):
        r = self.server.mint_raw(None)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["token"], TOKEN_RE)

    async def test_generated_ids_and_tokens_are_unique(self):
        seen_ids, seen_tokens = set(), set()
        for _ in range(20):
            b = self.server.mint()
            seen_ids.add(b["sessionId"])
            seen_tokens.add(b["token"])
        self.assertEqual(len(seen_ids), 20)
        self.assertEqual(len(seen_tokens), 20)

    async def test_given_session_id_is_echoed(self):
        for sid in ("session_1641234567890_k3m5n8p2q", "abcdefgh", "A" * 64, "a-b_C-9_x"):
            b = self.server.mint(sid)
            self.assertEqual(b["sessionId"], sid)
            self.assertRegex(b["token"], TOKEN_RE)
        # Two tokens for one id (not live) are both issued, and differ.
        t1 = self.server.mint("same_id_twice")["token"]
        t2 = self.server.mint("same_id_twice")["token"]
        self.assertNotEqual(t1, t2)

    async def test_malformed_session_id_400(self):
        for bad in ("short7c", "A" * 65, "has space", "dots.are.bad", "semi;colon_1",
                    "ünïcode_id", "", 12345678, ["abcdefgh"], {"a": 1}):
            r = self.server.mint_raw({"sessionId": bad})
            self.assert_error(r, 400, "invalid_session_id")

    async def test_body_not_an_object_or_not_json(self):
        r = self.server.request("POST", "/api/sessions", body=b"{oops",
                                headers={"Content-Type": "application/json"})
        self.assert_error(r, 400, "invalid_json")

    async def test_purpose_chat(self):
        b = self.server.mint(purpose="chat")
        self.assertRegex(b["token"], TOKEN_RE)
        self.assertEqual(set(b), {"sessionId", "token", "expiresAt", "userId", "userKey"})
        self.assertRegex(b["userId"], ANON_USER_RE)
        self.assertRegex(b["userKey"], USER_KEY_RE)
        self.assertTrue(b["userKey"].startswith(b["userId"] + "."))
        b = self.server.mint("chat_with_id_1", purpose="chat")
        self.assertEqual(b["sessionId"], "chat_with_id_1")

    async def test_chat_purpose_skips_the_live_session_check(self):
        ws, sid = await self.server.live_voice()
        self.track(ws)
        self.assert_error(self.server.mint_raw({"sessionId": sid}), 409, "session_exists")
        r = self.server.mint_raw({"sessionId": sid, "purpose": "chat"})
        self.assertEqual(r.status, 200, r)

    async def test_409_while_live_then_reconnect(self):
        ws, sid = await self.server.live_voice()
        body = self.assert_error(self.server.mint_raw({"sessionId": sid}), 409, "session_exists")
        self.assertIn("message", body["error"])
        await assert_open(ws)
        await ws.close()
        # Once the socket has closed, a new token for the same id can be minted and used.
        r = await self.server.wait_not_live(sid)
        self.assertEqual(r.status, 200, r)
        tok = r.json()
        self.assertEqual(tok["sessionId"], sid)
        ws2 = self.track(await self.server.voice(sid, tok["token"]))
        await self.server.wait_live(sid)
        await assert_open(ws2)

    async def test_token_is_single_use_and_bound_to_its_id(self):
        tok = self.server.mint("bound_session_1")
        ws = await self.server.voice("other_session_1", tok["token"])
        await expect_close(ws, 1008, "unauthorized")

    async def test_token_shown_for_another_session_is_spent(self):
        """SPEC 14 "Order of checks": a presented valid token is spent even if a later check
        fails, so a token seen once (in a log, a referrer) cannot be tried again."""
        tok = self.server.mint("spent_session_1")["token"]
        ws = await self.server.voice("other_session_2", tok)
        await expect_close(ws, 1008, "unauthorized")
        ws = self.track(await self.server.voice("spent_session_1", tok))
        await expect_close(ws, 1008, "unauthorized")
        # A chat token shown on /ws is spent too.
        chat = self.server.mint("spent_session_3", purpose="chat")
        ws = await self.server.voice("spent_session_3", chat["token"])
        await expect_close(ws, 1008, "unauthorized")
        ws = self.track(await self.server.ws("/ws/chat", threadId="t_spent", userId=chat["userId"],
                                             token=chat["token"]))
        await expect_close(ws, 1008, "unauthorized")


class RateLimitTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_SESSIONS_PER_MIN": "3"}

    async def test_429_with_retry_after(self):
        ip = "127.0.0.2"
        for i in range(3):
            r = self.server.mint_raw({}, source_ip=ip)
            self.assertEqual(r.status, 200, (i, r))
        r = self.server.mint_raw({}, source_ip=ip)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error"]["code"], "rate_limited", r)
        ra = r.headers.get("Retry-After")
        self.assertIsNotNone(ra, r.headers)
        self.assertRegex(ra, r"^[0-9]+$")
        self.assertGreaterEqual(int(ra), 1)
        self.assertLessEqual(int(ra), 60)
        # Still limited, and 429 comes before 400 (invalid body) and 409/503.
        r = self.server.mint_raw({"sessionId": "bad id"}, source_ip=ip)
        self.assertEqual(r.status, 429, r)
        r = self.server.request("POST", "/api/sessions", body=b"{", source_ip=ip)
        self.assertEqual(r.status, 429, r)

    async def test_limit_is_per_client_ip(self):
        for i in range(4):
            self.server.mint_raw({}, source_ip="127.0.0.3")
        self.assertEqual(self.server.mint_raw({}, source_ip="127.0.0.3").status, 429)
        r = self.server.mint_raw({}, source_ip="127.0.0.4")
        self.assertEqual(r.status, 200, r)

    async def test_forbidden_origin_403_does_not_count(self):
        ip = "127.0.0.9"
        for i in range(5):
            r = self.server.mint_raw({}, headers={"Origin": "http://evil.example"}, source_ip=ip)
            self.assertEqual(r.status, 403, (i, r))
            self.assertEqual(r.json()["error"]["code"], "forbidden_origin")
            self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"))
            # 403 comes before 400 as well.
            r = self.server.mint_raw({"sessionId": "bad id"},
                                     headers={"Origin": "http://evil.example"}, source_ip=ip)
            self.assertEqual(r.status, 403, (i, r))
        # The quota is untouched: allowed origins (the server's own) and no Origin get all 3.
        r = self.server.mint_raw({}, headers={"Origin": self.server.origin}, source_ip=ip)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), self.server.origin)
        for i in range(2):
            self.assertEqual(self.server.mint_raw({}, source_ip=ip).status, 200, i)
        self.assertEqual(self.server.mint_raw({}, source_ip=ip).status, 429)
        # Over the limit, a forbidden origin is still 403 (the first check).
        r = self.server.mint_raw({}, headers={"Origin": "http://evil.example"}, source_ip=ip)
        self.assertEqual(r.status, 403, r)
        # 403 comes before 413 too: an oversized body from a foreign page is refused for its origin.
        r = self.server.request("POST", "/api/sessions", body=b"x" * (70 * 1024),
                                headers={"Origin": "http://evil.example"}, source_ip=ip)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"]["code"], "forbidden_origin")

    async def test_every_request_counts(self):
        ip = "127.0.0.5"
        for i in range(3):
            r = self.server.mint_raw({"sessionId": "x"}, source_ip=ip)
            self.assertEqual(r.status, 400, r)
        r = self.server.mint_raw({}, source_ip=ip)
        self.assertEqual(r.status, 429, r)


class CapacityMintTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_MAX_SESSIONS": "1"}

    async def test_503_at_capacity(self):
        ws, sid = await self.server.live_voice()
        self.track(ws)
        r = self.server.mint_raw({"sessionId": "another_session"})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["code"], "at_capacity")
        r = self.server.mint_raw({})
        self.assertEqual(r.status, 503, r)
        # 409 comes before 503.
        r = self.server.mint_raw({"sessionId": sid})
        self.assertEqual(r.status, 409, r)
        # Chat tokens skip the voice capacity check.
        r = self.server.mint_raw({"purpose": "chat"})
        self.assertEqual(r.status, 200, r)
        # 400 comes before 503.
        r = self.server.mint_raw({"sessionId": "bad"})
        self.assertEqual(r.status, 400, r)
        await ws.close()
        r = await self.server.wait_not_live(sid)
        self.assertEqual(r.status, 200, r)


class MintAuthSecretTest(SBTestCase):
    SERVER_ENV = {"SWITCHBOARD_MINT_AUTH": "secret", "SWITCHBOARD_API_SECRET": SECRET,
                  "SWITCHBOARD_SESSIONS_PER_MIN": "2"}

    def auth(self, secret=SECRET):
        return {"Authorization": "Bearer " + secret}

    async def test_401_without_or_with_wrong_bearer(self):
        ip = "127.0.0.6"
        cases = [None, self.auth("wrong"), self.auth(SECRET + "x"), self.auth(SECRET[:-1]),
                 {"Authorization": SECRET}, {"Authorization": "Basic " + SECRET},
                 {"Authorization": "Bearer"}]
        for h in cases:
            r = self.server.mint_raw({}, headers=h, source_ip=ip)
            self.assertEqual(r.status, 401, (h, r))
            self.assertEqual(r.json()["error"]["code"], "unauthorized")
        r = self.server.mint_raw({}, headers=self.auth(), source_ip=ip)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["token"], TOKEN_RE)

    async def test_401_comes_before_429(self):
        ip = "127.0.0.7"
        for i in range(2):
            self.assertEqual(self.server.mint_raw({}, headers=self.auth(), source_ip=ip).status,
                             200)
        r = self.server.mint_raw({}, headers=self.auth(), source_ip=ip)
        self.assertEqual(r.status, 429, r)
        r = self.server.mint_raw({}, source_ip=ip)
        self.assertEqual(r.status, 401, r)
        r = self.server.mint_raw({}, headers=self.auth("nope"), source_ip=ip)
        self.assertEqual(r.status, 401, r)

    async def test_413_comes_before_401(self):
        head = ("POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                % (64 * 1024 + 10))
        r = self.server.raw(head.encode() + b"{}")
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json()["error"]["code"], "body_too_large")

    async def test_401_comes_before_400(self):
        r = self.server.mint_raw({"sessionId": "bad"}, source_ip="127.0.0.8")
        self.assertEqual(r.status, 401, r)
        r = self.server.request("POST", "/api/sessions", body=b"{",
                                source_ip="127.0.0.8")
        self.assertEqual(r.status, 401, r)


class TrustedProxyRateTest(SBTestCase):
    """The client IP of the rate limit comes from X-Forwarded-For only when the socket peer is
    a trusted proxy, and then it is the right-most entry that is not a trusted proxy."""
    SERVER_ENV = {"SWITCHBOARD_SESSIONS_PER_MIN": "2",
                  "SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}

    def mint_via(self, xff, source_ip=None):
        return self.server.mint_raw({}, headers={"X-Forwarded-For": xff}, source_ip=source_ip)

    async def test_forwarded_client_is_limited_per_forwarded_ip(self):
        self.assertEqual(self.mint_via("198.51.100.1").status, 200)
        self.assertEqual(self.mint_via("198.51.100.1").status, 200)
        self.assertEqual(self.mint_via("198.51.100.1").status, 429)
        self.assertEqual(self.mint_via("198.51.100.2").status, 200)
        # The proxy's own address (appended by a second hop) is skipped.
        self.assertEqual(self.mint_via("198.51.100.2, 127.0.0.1").status, 200)
        self.assertEqual(self.mint_via("198.51.100.2").status, 429)

    async def test_prepended_entries_do_not_spoof(self):
        self.assertEqual(self.mint_via("9.9.9.1, 198.51.100.20").status, 200)
        self.assertEqual(self.mint_via("9.9.9.2, 198.51.100.20").status, 200)
        self.assertEqual(self.mint_via("9.9.9.3, 198.51.100.20").status, 429)

    async def test_untrusted_peer_header_is_ignored(self):
        ip = "127.0.0.10"
        self.assertEqual(self.mint_via("198.51.100.30", ip).status, 200)
        self.assertEqual(self.mint_via("198.51.100.31", ip).status, 200)
        self.assertEqual(self.mint_via("198.51.100.32", ip).status, 429)
