"""Tenants: many businesses on one gateway (SPEC 16)."""
import json
import os
import shutil
import signal
import tempfile
import time

from harness import SBTestCase, expect_exit

KEY_A = "pk_acme_0123456789abcdefghijkl"
KEY_B = "pk_beta_0123456789abcdefghijkl"
SECRET_A = "sk-acme-secret-0123456789"
SECRET_B = "sk-beta-secret-0123456789"
ORIGIN_A = "https://www.acme.example"
ORIGIN_B = "https://www.beta.example"


def tenant_a(**extra):
    t = {
        "company": {"name": "Acme Dental", "timezone": "America/New_York"},
        "brief": "Acme Dental cleans teeth in Springfield. ACME-BRIEF-MARKER.",
        "voice": "cedar",
        "services": [{"name": "Cleaning", "duration_min": 30, "price": "$90"}],
        "pages": {"smile": ["top", "prices"]},
        "publicKey": KEY_A,
        "apiSecret": SECRET_A,
        "allowedOrigins": [ORIGIN_A],
        "phoneNumbers": ["+14155550100"],
    }
    t.update(extra)
    return t


def tenant_b(**extra):
    t = {
        "company": {"name": "Beta Bikes", "timezone": "Europe/Berlin"},
        "brief": "Beta Bikes repairs bicycles in Berlin. BETA-BRIEF-MARKER.",
        "voice": "marin",
        "services": [{"name": "Tune-up", "duration_min": 60, "price": "EUR 40"}],
        "pages": {"shop": ["hero", "repairs", "contact"]},
        "publicKey": KEY_B,
        "apiSecret": SECRET_B,
        "allowedOrigins": [ORIGIN_B],
        "phoneNumbers": ["+14155550200"],
    }
    t.update(extra)
    return t


class TenantDir:
    """A temporary tenant directory."""

    def __init__(self, **tenants):
        self.path = tempfile.mkdtemp(prefix="sbtenants-")
        for tid, cfg in tenants.items():
            self.write(tid, cfg)

    def file(self, tid):
        return os.path.join(self.path, "%s.json" % tid)

    def write(self, tid, cfg):
        text = cfg if isinstance(cfg, str) else json.dumps(cfg)
        tmp = self.file(tid) + ".tmp"  # not *.json: never read half-written
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.file(tid))

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def generation(server, tid):
    return server.metrics().get(
        'switchboard_tenant_config_generation{tenant="%s"}' % tid)


class TenantConfigTest(SBTestCase):
    """Loading and reloading tenant files."""

    TEST_TIMEOUT = 30

    def tdir(self, **tenants):
        d = TenantDir(**tenants)
        self.addCleanup(d.remove)
        return d

    async def test_duplicate_key_across_files_exits_2_naming_both(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b(publicKey=KEY_A))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("acme"), d.file("beta"),
                                                        "publicKey"])

    async def test_duplicate_secret_and_number_exit_2(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b(apiSecret=SECRET_A))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("acme"), d.file("beta"),
                                                        "apiSecret"])
        d.write("beta", tenant_b(phoneNumbers=["+14155550100"]))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("acme"), d.file("beta"),
                                                        "+14155550100"])

    async def test_invalid_file_name_exits_2_naming_it(self):
        d = self.tdir(acme=tenant_a())
        with open(os.path.join(d.path, "Big_Co.json"), "w") as f:
            json.dump(tenant_b(), f)
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, ["Big_Co.json"])

    async def test_invalid_tenant_exits_2_naming_file_and_key(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b(maxSessions="lots"))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("beta"), "maxSessions"])
        d.write("beta", tenant_b(publicKey="pk_short"))
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("beta"), "publicKey"])
        cfg = tenant_b()
        del cfg["apiSecret"]
        d.write("beta", cfg)
        expect_exit({"SWITCHBOARD_CONFIG": d.path}, 2, [d.file("beta"), "apiSecret"])

    async def test_sighup_reloads_and_a_broken_file_keeps_its_version(self):
        d = self.tdir(acme=tenant_a(), beta=tenant_b())
        s = self.own_server({"SWITCHBOARD_CONFIG": d.path})
        self.assertEqual(generation(s, "acme"), 1)
        self.assertEqual(generation(s, "beta"), 1)

        d.write("acme", tenant_a(brief="A new brief."))
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: generation(s, "acme") == 2, "acme's generation 2")
        self.assertEqual(generation(s, "beta"), 1)

        d.write("beta", '{"company": {"name": "Beta"}, "brief": "x", "vioce": 1}')
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: "tenant.config_invalid" in s.stderr(), "the error logged")
        log = s.stderr()
        self.assertIn(d.file("beta"), log)
        self.assertIn("vioce", log)
        m = s.metrics()
        self.assertEqual(m['switchboard_tenant_config_errors_total{tenant="beta"}'], 1)
        self.assertEqual(m['switchboard_tenant_config_generation{tenant="beta"}'], 1)
        self.assertEqual(s.get("/healthz").status, 200)
        s.stop()

    async def test_a_change_in_the_directory_reloads(self):
        d = self.tdir(acme=tenant_a())
        s = self.own_server({"SWITCHBOARD_CONFIG": d.path})
        d.write("acme", tenant_a(brief="Changed on disk."))
        self.wait_for(lambda: generation(s, "acme") == 2, "acme reloaded by the watch")
        d.write("beta", tenant_b())
        self.wait_for(lambda: generation(s, "beta") == 1, "beta added by the watch")
        s.stop()

    async def test_one_file_is_the_default_tenant(self):
        d = self.tdir()
        path = os.path.join(d.path, "agent.json")
        with open(path, "w") as f:
            json.dump({"company": {"name": "Solo"}, "brief": "One business."}, f)
        s = self.own_server({"SWITCHBOARD_CONFIG": path})
        self.assertEqual(generation(s, "default"), 1)
        with open(path, "w") as f:
            json.dump({"company": {"name": "Solo"}, "brief": "One business, changed."}, f)
        s.signal(signal.SIGHUP)
        self.wait_for(lambda: generation(s, "default") == 2, "default reloaded")
        s.stop()

    def wait_for(self, pred, what, deadline_s=5.0):
        end = time.monotonic() + deadline_s
        while not pred():
            if time.monotonic() > end:
                raise AssertionError("%s: not within %.1fs" % (what, deadline_s))
            time.sleep(0.05)


# ---- Calls of two tenants on one gateway --------------------------------------------------------

import asyncio  # noqa: E402

from harness import Sim, recv_until  # noqa: E402
from test_relay import sim_sessions_eventually  # noqa: E402

OPERATOR = "operator-secret-0123456789"


class TenantCallsTest(SBTestCase):
    """Two businesses: keys, origins, instructions, tools, records and calendars stay apart."""

    TEST_TIMEOUT = 40

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.dir = TenantDir(acme=tenant_a(maxSessions=1), beta=tenant_b())
        self.addCleanup(self.dir.remove)
        self.sim = Sim("--mode", "echo").start()
        self.addCleanup(self.sim.stop)
        env = dict(self.sim.env())
        # No SWITCHBOARD_ALLOWED_ORIGINS: each tenant's own list is allowed (SPEC 16).
        env.update({"SWITCHBOARD_CONFIG": self.dir.path, "SWITCHBOARD_API_SECRET": OPERATOR})
        self.s = self.own_server(env)

    def mint(self, key=None, origin=None, bearer=None, body=None):
        headers = {}
        if key:
            headers["X-Switchboard-Key"] = key
        if origin:
            headers["Origin"] = origin
        if bearer:
            headers["Authorization"] = "Bearer " + bearer
        return self.s.mint_raw(body or {}, headers=headers)

    async def call(self, **mint_kw):
        """A voice call minted as told, up to session.ready; returns (ws, sessionId)."""
        r = self.mint(**mint_kw)
        self.assertEqual(r.status, 200, r.text)
        tok = r.json()
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"]))
        await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "session.ready",
                         timeout=5.0)
        return ws, tok["sessionId"]

    async def session_updates(self, n):
        recs = await sim_sessions_eventually(self.sim, lambda rs: len(rs) >= n)
        return [r["events"][0]["session"] for r in recs]

    async def test_each_key_gets_its_own_instructions_voice_and_tools(self):
        ws_a, _ = await self.call(key=KEY_A, origin=ORIGIN_A)
        ws_b, _ = await self.call(bearer=SECRET_B)
        a, b = await self.session_updates(2)
        self.assertIn("ACME-BRIEF-MARKER", a["instructions"])
        self.assertNotIn("BETA-BRIEF-MARKER", a["instructions"])
        self.assertIn("BETA-BRIEF-MARKER", b["instructions"])
        self.assertNotIn("ACME-BRIEF-MARKER", b["instructions"])
        self.assertEqual(a["audio"]["output"]["voice"], "cedar")
        self.assertEqual(b["audio"]["output"]["voice"], "marin")
        nav = {t["name"]: t for t in a["tools"]}["navigate"]
        self.assertIn("smile", json.dumps(nav))
        self.assertNotIn("shop", json.dumps(nav))
        nav_b = {t["name"]: t for t in b["tools"]}["navigate"]
        self.assertIn("shop", json.dumps(nav_b))

    async def test_keys_origins_and_anonymous_mints(self):
        self.assertEqual(self.mint(key=KEY_A, origin=ORIGIN_B).error_code, "forbidden_origin")
        self.assertEqual(self.mint(key=KEY_A, origin=ORIGIN_B).status, 403)
        self.assertEqual(self.mint(key="pk_unknown_0123456789abcdefghij").status, 401)
        self.assertEqual(self.mint().status, 401)  # two tenants and no key
        self.assertEqual(self.mint(body={"key": KEY_B}, origin=ORIGIN_B).status, 200)
        self.assertEqual(self.mint(key=KEY_A).status, 200)  # no Origin: a server

    async def test_tenant_origins_get_cors_without_a_gateway_list(self):
        # Each tenant's allowedOrigins are allowed gateway-wide (CORS, preflights, /ws); others
        # are not, and a browser may send the key header cross-origin.
        for origin in (ORIGIN_A, ORIGIN_B):
            r = self.s.request("OPTIONS", "/api/sessions", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-switchboard-key"})
            self.assertEqual(r.status, 204, origin)
            self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), origin)
            self.assertIn("X-Switchboard-Key", r.headers.get("Access-Control-Allow-Headers"))
        r = self.s.request("OPTIONS", "/api/sessions", headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 403)
        r = self.mint(key=KEY_A, origin=ORIGIN_A)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), ORIGIN_A)

    async def test_max_sessions_per_tenant(self):
        await self.call(key=KEY_A)
        r = self.mint(key=KEY_A)
        self.assertEqual((r.status, r.error_code), (503, "at_capacity"))
        self.assertEqual(self.mint(key=KEY_B).status, 200)  # the other tenant is not full

    async def test_records_are_each_tenants_own(self):
        ws_a, sid_a = await self.call(key=KEY_A)
        ws_b, sid_b = await self.call(key=KEY_B)
        await ws_a.close()
        await ws_b.close()

        def calls(secret, query=""):
            r = self.s.get("/api/calls" + query,
                           headers={"Authorization": "Bearer " + secret})
            self.assertEqual(r.status, 200, r.text)
            return r.json()["calls"]

        for _ in range(100):
            if len(calls(OPERATOR)) == 2:
                break
            await asyncio.sleep(0.05)
        ops = calls(OPERATOR)
        self.assertEqual(sorted(c["tenant"] for c in ops), ["acme", "beta"])
        mine = calls(SECRET_A)
        self.assertEqual([c["sessionId"] for c in mine], [sid_a])
        self.assertEqual([c["tenant"] for c in calls(OPERATOR, "?tenant=beta")], ["beta"])
        self.assertEqual([c["tenant"] for c in calls(SECRET_A, "?tenant=beta")], ["acme"])
        b_id = [c["id"] for c in ops if c["tenant"] == "beta"][0]
        r = self.s.get("/api/calls/" + b_id, headers={"Authorization": "Bearer " + SECRET_A})
        self.assertEqual((r.status, r.error_code), (404, "not_found"))
        r = self.s.get("/api/calls/" + b_id, headers={"Authorization": "Bearer " + SECRET_B})
        self.assertEqual(r.status, 200)

    async def test_sighup_live_call_keeps_its_brief_next_call_gets_the_new(self):
        ws1, _ = await self.call(key=KEY_B)
        self.dir.write("beta", tenant_b(brief="Beta Bikes, now with e-bikes. NEW-BETA-MARKER."))
        self.s.signal(signal.SIGHUP)
        for _ in range(100):
            if self.s.metrics().get('switchboard_tenant_config_generation{tenant="beta"}') == 2:
                break
            await asyncio.sleep(0.05)
        await self.call(key=KEY_B)
        first, second = await self.session_updates(2)
        self.assertIn("BETA-BRIEF-MARKER", first["instructions"])
        self.assertIn("NEW-BETA-MARKER", second["instructions"])
        # The live call is untouched: it still relays.
        await ws1.send('{"type":"ping"}')
        await recv_until(ws1, lambda m: m == {"type": "pong"})
