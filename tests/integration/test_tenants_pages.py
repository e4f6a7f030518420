"""Tenants beyond the call itself (SPEC 16): page commands and navigate, demo sites and the
console, chat threads and agent runs, and the voice socket's Origin against the token's tenant.

Two tenants (test_tenants.py's acme and beta) on one gateway with an operator secret; acme signs
its own JWTs (jwtSecret), beta's are signed with SWITCHBOARD_JWT_SECRET.
"""
import asyncio
import json
import os
import re
import signal

from harness import (PageReader, SBTestCase, Sim, assert_no_message, assert_open, db_rows,
                     eventually, expect_close, good_jwt, recv_json, recv_until)
from test_onboard import FakeChat
from test_relay import sim_sessions_eventually, user_text
from test_tenants import (KEY_A, KEY_B, ORIGIN_A, ORIGIN_B, SECRET_A, SECRET_B, TenantDir,
                          tenant_a, tenant_b)

OPERATOR = "operator-secret-0123456789"
JWT_GLOBAL = "global-jwt-secret-0123456789"
JWT_A = "acme-jwt-secret-0123456789"
SITE_RE = re.compile(r'<script id="site" type="application/json">(.*?)</script>', re.S)
TENANTS_RE = re.compile(r'<script id="tenants" type="application/json">(.*?)</script>', re.S)
CHAT_ANSWER = "Answered by the fake model."


def bearer(secret):
    return {"Authorization": "Bearer " + secret}


class TwoTenants(SBTestCase):
    """acme and beta on one gateway; the upstream is the simulator in agent mode."""

    TEST_TIMEOUT = 40
    SIM_ARGS = ("--mode", "agent", "--pace", "20")

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.dir = TenantDir(acme=tenant_a(jwtSecret=JWT_A), beta=tenant_b())
        self.addCleanup(self.dir.remove)
        self.sim = Sim(*self.SIM_ARGS).start()
        self.addCleanup(self.sim.stop)
        env = dict(self.sim.env())
        env.update({"SWITCHBOARD_CONFIG": self.dir.path, "SWITCHBOARD_API_SECRET": OPERATOR,
                    "SWITCHBOARD_JWT_SECRET": JWT_GLOBAL})
        env.update(self.extra_env())
        self.s = self.own_server(env)

    def extra_env(self):
        return {}

    def mint(self, headers, **body):
        r = self.s.mint_raw(body, headers=headers)
        self.assertEqual(r.status, 200, r.text)
        return r.json()

    async def call(self, key, sid=None):
        """A voice call minted with key, up to session.ready; returns (ws, sessionId)."""
        tok = self.mint({"X-Switchboard-Key": key}, **({"sessionId": sid} if sid else {}))
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"]))
        await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "session.ready",
                         timeout=5.0)
        return ws, tok["sessionId"]

    async def tab(self, sid, page, key=None, origin=None):
        """A /ws/page socket (naming a tenant by key when given), acking every command."""
        q = {"sessionId": sid, "page": page}
        if key:
            q["key"] = key
        ws = self.track(await self.s.ws("/ws/page", origin=origin, **q))
        r = PageReader(ws, auto_ack=True)
        self.addAsyncCleanup(r.stop)
        return r


class PageTenantTest(TwoTenants):
    """POST /api/interact and /ws/page: a tenant reaches its own sessions and pages only."""

    async def nav(self, page, sid, section, secret):
        """Off the loop, so the tabs' readers ack meanwhile."""
        return await self.s.anavigate(page, {"sessionId": sid, "section": section},
                                      headers=bearer(secret))

    async def test_a_tenants_secret_reaches_its_own_tabs_only(self):
        a = await self.tab("sess_pages_a1", "smile", key=KEY_A)
        b = await self.tab("sess_pages_b1", "shop", key=KEY_B)
        r = await self.s.navigate_when_connected(
            "smile", {"sessionId": "sess_pages_a1", "section": "prices"},
            headers=bearer(SECRET_A))
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True}, r.text)
        cmd = await a.command()
        self.assertEqual((cmd["page"], cmd["section"]), ("smile", "prices"))
        await self.s.navigate_when_connected(
            "shop", {"sessionId": "sess_pages_b1", "section": "repairs"}, headers=bearer(SECRET_B))
        await b.command()
        # Another tenant's session is as if absent; another tenant's page is unknown.
        r = await self.nav("smile", "sess_pages_b1", "prices", SECRET_A)
        self.assertEqual((r.status, r.error_code), (404, "session_not_connected"))
        r = await self.nav("shop", "sess_pages_b1", "repairs", SECRET_A)
        self.assertEqual((r.status, r.error_code), (404, "unknown_page"))
        r = await self.nav("smile", "sess_pages_a1", "hero", SECRET_A)
        self.assertEqual((r.status, r.error_code), (400, "invalid_section"))
        self.assertEqual(r.json()["error"]["valid"], ["top", "prices"])
        # The operator reaches both, each with its own pages.
        r = await self.nav("shop", "sess_pages_b1", "contact", OPERATOR)
        self.assertEqual(r.status, 200)
        self.assertEqual((await b.command())["section"], "contact")
        r = await self.nav("smile", "sess_pages_b1", "top", OPERATOR)
        self.assertEqual((r.status, r.error_code), (404, "unknown_page"))
        r = await self.nav("smile", "sess_pages_a1", "top", OPERATOR)
        self.assertEqual(r.status, 200)
        self.assertEqual((await a.command())["section"], "top")
        # A wrong secret is still 401 first.
        self.assertEqual((await self.nav("smile", "sess_pages_a1", "top", "nope")).status, 401)

    async def test_a_tab_of_another_tenant_on_the_same_session_gets_nothing(self):
        ws, sid = await self.call(KEY_A)
        mine = await self.tab(sid, "smile")        # names no tenant: the session's (acme)
        other = await self.tab(sid, "shop", key=KEY_B)
        r = await self.s.navigate_when_connected("smile", {"sessionId": sid, "section": "prices"},
                                                 headers=bearer(SECRET_A))
        self.assertEqual(r.status, 200, r.text)
        # The voice socket and the unnamed tab: acme's; beta's tab is not.
        self.assertEqual(r.json()["delivered"], 2)
        await mine.command()
        r = await self.nav("shop", sid, "repairs", SECRET_B)
        self.assertEqual(r.json()["delivered"], 1)  # beta's own tab on that sessionId, only
        self.assertEqual((await other.command())["section"], "repairs")
        with self.assertRaises(AssertionError):
            await other.command(timeout=0.3, where=lambda c: c["page"] == "smile")

    async def test_voice_navigate_checks_the_calls_own_pages(self):
        ws, sid = await self.call(KEY_A)
        tab = await self.tab(sid, "smile", key=KEY_A)
        await asyncio.sleep(0.1)
        await ws.send(json.dumps(user_text("Show me prices")))
        await ws.send('{"type":"response.create"}')
        end, _ = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") ==
                                  "tool.call" and m["name"] == "navigate" and
                                  m["status"] != "started", timeout=10.0)
        self.assertEqual(end["status"], "completed", end)
        self.assertEqual(json.loads(end["output"]), {"ok": True, "delivered": 2, "acked": True})
        cmd = await tab.command()
        self.assertEqual((cmd["page"], cmd["section"]), ("smile", "prices"))

    async def test_page_key_is_checked_like_a_mint(self):
        ws = self.track(await self.s.ws("/ws/page", sessionId="sess_pages_k1", page="smile",
                                        key="pk_unknown_0123456789abcdefghij"))
        await expect_close(ws, 1008, "unauthorized")
        ws = self.track(await self.s.ws("/ws/page", origin=ORIGIN_B, sessionId="sess_pages_k2",
                                        page="smile", key=KEY_A))
        await expect_close(ws, 1008, "forbidden origin")
        ws = self.track(await self.s.ws("/ws/page", origin=ORIGIN_A, sessionId="sess_pages_k3",
                                        page="smile", key=KEY_A))
        await assert_open(ws)


class VoiceOriginTest(TwoTenants):
    """/ws: an Origin the token's tenant does not allow is refused after the token is spent."""

    async def test_another_tenants_origin_is_forbidden_and_spends_the_token(self):
        tok = self.mint({"X-Switchboard-Key": KEY_A})  # a server mints; a browser connects
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"], origin=ORIGIN_B))
        await expect_close(ws, 1008, "forbidden origin")
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"], origin=ORIGIN_A))
        await expect_close(ws, 1008, "unauthorized")  # it was spent
        tok = self.mint({"X-Switchboard-Key": KEY_A})
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"], origin=ORIGIN_A))
        await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "session.ready",
                         timeout=5.0)
        # An origin no tenant allows never gets past net.
        tok = self.mint({"X-Switchboard-Key": KEY_B})
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"],
                                           origin="https://evil.example"))
        await expect_close(ws, 1008, "forbidden origin")


class DemoTenantTest(TwoTenants):
    """/demo/{tenant}/{page} from each tenant's config; the console lists public data only."""

    def site(self, path):
        r = self.s.get(path)
        self.assertEqual(r.status, 200, (path, r.status))
        return json.loads(SITE_RE.search(r.text).group(1)), r

    async def test_each_tenant_has_its_demo_site(self):
        site, r = self.site("/demo/acme/smile")
        self.assertIn("<title>Acme Dental</title>", r.text)
        self.assertEqual((site["tenant"], site["publicKey"], site["base"]),
                         ("acme", KEY_A, "/demo/acme/"))
        self.assertEqual(site["sections"], ["top", "prices"])
        self.assertEqual(list(site["pages"]), ["smile"])
        self.assertEqual(site["services"][0]["name"], "Cleaning")
        self.assertRegex(r.headers.get("ETag", ""), r'^"[0-9a-f]{16}"$')
        self.assertEqual(self.s.get("/demo/acme/smile",
                                    headers={"If-None-Match": r.headers["ETag"]}).status, 304)
        site, r = self.site("/demo/beta/shop")
        self.assertEqual((site["tenant"], site["publicKey"]), ("beta", KEY_B))
        self.assertNotIn("Acme", r.text)
        for path in ("/demo/acme", "/demo/acme/"):
            r = self.s.get(path)
            self.assertEqual((r.status, r.headers.get("Location")), (302, "/demo/acme/smile"))
        for path in ("/demo/acme/shop", "/demo/gamma/smile", "/demo/smile", "/demo/",
                     "/demo/" + "a" * 60 + "/smile", "/demo/" + "a" * 300):
            self.assertEqual(self.s.get(path).status, 404, path)  # two tenants, none default

    async def test_a_reload_shows_at_once(self):
        self.dir.write("acme", tenant_a(jwtSecret=JWT_A, pages={"smile": ["top", "team"]}))
        self.s.signal(signal.SIGHUP)
        await eventually(lambda: self.s.get("/demo/acme/smile").status == 200 and
                         "team" in self.site("/demo/acme/smile")[0]["sections"],
                         what="the new sections")

    async def test_console_lists_tenants_and_their_public_keys_only(self):
        r = self.s.get("/")
        self.assertEqual(r.status, 200)
        data = json.loads(TENANTS_RE.search(r.text).group(1))
        self.assertEqual(data["default"], None)
        self.assertEqual(data["tenants"], [
            {"id": "acme", "name": "Acme Dental", "publicKey": KEY_A},
            {"id": "beta", "name": "Beta Bikes", "publicKey": KEY_B}])
        for secret in (SECRET_A, SECRET_B, JWT_A, "BRIEF-MARKER"):
            self.assertNotIn(secret, r.text)


class ChatAgentTenantTest(TwoTenants):
    """/ws/chat and /ws/agent: the token's or the JWT's tenant; runs use its brief."""

    SIM_ARGS = ("--mode", "echo")

    def extra_env(self):
        self.fake = FakeChat(200, {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": CHAT_ANSWER}}]})
        self.addCleanup(self.fake.close)
        return {"SWITCHBOARD_OPENAI_BASE_URL": self.fake.base_url()}

    def system_prompts(self):
        return [b["messages"][0]["content"] for _, _, b in self.fake.requests]

    def db(self, sql):
        return [tuple(r.values())
                for r in db_rows(os.path.join(self.s.tmpdir, "var", "switchboard.db"), sql)]

    async def chat(self, thread, user, token):
        return self.track(await self.s.ws("/ws/chat", threadId=thread, userId=user, token=token))

    async def test_chat_thread_belongs_to_its_tenant(self):
        # A named user of acme (the operator names the user, the key the tenant).
        tok = self.mint({"X-Switchboard-Key": KEY_A, **bearer(OPERATOR)}, purpose="chat",
                        userId="u1")
        ws = await self.chat("thr_t1", "u1", tok["token"])
        self.assertEqual((await recv_json(ws))["type"], "history")
        await ws.send(json.dumps({"type": "message", "text": "What do you do?"}))
        await recv_until(ws, lambda m: m.get("role") == "assistant", timeout=5.0)
        prompts = self.system_prompts()
        self.assertTrue(prompts and "ACME-BRIEF-MARKER" in prompts[-1], prompts)
        self.assertNotIn("BETA-BRIEF-MARKER", prompts[-1])
        # The same userId of beta (beta's apiSecret names it) is someone else: forbidden.
        tok = self.mint(bearer(SECRET_B), purpose="chat", userId="u1")
        ws2 = await self.chat("thr_t1", "u1", tok["token"])
        await expect_close(ws2, 1008, "forbidden")
        # Its own thread is beta's, and runs on beta's brief.
        tok = self.mint(bearer(SECRET_B), purpose="chat", userId="u1")
        ws3 = await self.chat("thr_t2", "u1", tok["token"])
        await recv_json(ws3)
        await ws3.send(json.dumps({"type": "message", "text": "Hello?"}))
        await recv_until(ws3, lambda m: m.get("role") == "assistant", timeout=5.0)
        self.assertIn("BETA-BRIEF-MARKER", self.system_prompts()[-1])
        self.assertEqual(sorted(self.db("SELECT id, tenant FROM chat_threads")),
                         [("thr_t1", "acme"), ("thr_t2", "beta")])

    async def test_chat_jwt_verifies_with_its_tenants_secret(self):
        ok = good_jwt(JWT_A, sub="u2", tenant="acme")
        ws = await self.chat("thr_j1", "u2", ok)
        self.assertEqual((await recv_json(ws))["type"], "history")
        # acme has a secret of its own: the global one does not sign for it.
        ws = await self.chat("thr_j2", "u2", good_jwt(JWT_GLOBAL, sub="u2", tenant="acme"))
        await expect_close(ws, 1008, "unauthorized")
        ws = await self.chat("thr_j3", "u2", good_jwt(JWT_GLOBAL, sub="u2", tenant="gamma"))
        await expect_close(ws, 1008, "unauthorized")
        # beta's users sign with the global secret; acme's thread is not theirs.
        ws = await self.chat("thr_j1", "u2", good_jwt(JWT_GLOBAL, sub="u2", tenant="beta"))
        await expect_close(ws, 1008, "forbidden")

    async def agent(self, token):
        ws = self.track(await self.s.ws("/ws/agent"))
        await ws.send(json.dumps({"type": "authenticate", "token": token}))
        return ws, await recv_json(ws)

    async def test_agent_runs_are_their_tenants(self):
        ws, auth = await self.agent(good_jwt(JWT_A, sub="ag", tenant="acme"))
        self.assertEqual(auth, {"type": "authentication", "status": "success"})
        await ws.send(json.dumps({"type": "start_agent", "runId": "r1", "task": "Say hi"}))
        done, _ = await recv_until(ws, lambda m: m.get("type") == "completion", timeout=5.0)
        self.assertEqual(done["status"], "success", done)
        self.assertIn("ACME-BRIEF-MARKER", self.system_prompts()[-1])
        await eventually(lambda: self.db("SELECT run_id, tenant, status FROM agent_runs") ==
                         [("r1", "acme", "success")], what="the run's record")
        for token, why in ((good_jwt(JWT_GLOBAL, sub="ag", tenant="acme"), "invalid token"),
                           (good_jwt(JWT_GLOBAL, sub="ag", tenant="gamma"),
                            "the token names no tenant of this service"),
                           (good_jwt(JWT_GLOBAL, sub="ag"),
                            "the token names no tenant of this service")):
            ws, auth = await self.agent(token)
            self.assertEqual(auth, {"type": "authentication", "status": "failed", "error": why})
            await expect_close(ws, 1008, "unauthorized")
        ws, auth = await self.agent(good_jwt(JWT_GLOBAL, sub="ag", tenant="beta"))
        self.assertEqual(auth["status"], "success")


if __name__ == "__main__":
    import unittest
    unittest.main()
