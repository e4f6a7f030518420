"""Each tenant's MCP servers are its own (SPEC 8, 16; issue 17), and follow reloads.

Two tenants, acme and beta, each with its own CRM: tests/integration/fake_mcp.py writing to a log
of its own (acme.log, beta.log), so every start of a server (its `initialize`), every call it
gets and its end ("S bye", when the client closes its stdin) are seen per tenant. A voice call
minted with acme's key offers the supervisor acme's tools only and reaches acme's server only;
beta's server is never started or called for it. Reloads (the directory watch) start a new
tenant's server, keep an unchanged server's process, run a changed server beside the old one
while a call that started with the old definition lives (that call keeps using it), and stop
what no current or live configuration names.
"""
import json
import os
import shutil
import signal
import tempfile

from harness import eventually
from test_mcp import FAKE, McpTurns, fake_log, tool_call_ids
from test_relay import Reader
from test_tenants import KEY_A, KEY_B, TenantDir, tenant_a, tenant_b
from test_tools import ToolCase

KEY_Z = "pk_zeta_0123456789abcdefghijkl"
UP = 'switchboard_mcp_server_up{tenant="%s",alias="%s"}'
START_S = 15  # a server's first start (python) under sanitizers and load
STOP_S = 10


def crm(log, *extra):
    return {"command": "/usr/bin/python3", "args": [FAKE, log] + list(extra)}


def starts(log):
    """How many times the server writing log was started (its initialize requests)."""
    return sum(1 for m in fake_log(log)[0] if m.get("method") == "initialize")


def ended(log):
    return "bye" in fake_log(log)[1]


class TenantMcpCase(McpTurns, ToolCase):
    TEST_TIMEOUT = 90

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.logs = tempfile.mkdtemp(prefix="sbtmcp-")
        self.addCleanup(shutil.rmtree, self.logs, True)

    async def asyncTearDown(self):
        try:
            if getattr(self, "s", None):
                self.s.stop()  # exit 0: a clean drain, and under ASan no leak report
        finally:
            await super().asyncTearDown()

    def log(self, name):
        return os.path.join(self.logs, name + ".log")

    async def start(self, **tenants):
        self.tdir = TenantDir(**tenants)
        self.addCleanup(self.tdir.remove)
        sim, self.s = self.stack("--mode", "agent", "--pace", "20",
                                 env={"SWITCHBOARD_CONFIG": self.tdir.path})
        for tid, cfg in tenants.items():
            for alias in cfg.get("mcpServers", {}):
                await self.up(tid, alias)

    async def up(self, tid, alias, want=1):
        await eventually(lambda: self.s.metrics().get(UP % (tid, alias)) == want,
                         deadline_s=START_S, what="%s's %s up=%d" % (tid, alias, want))

    async def call(self, key):
        """A voice call minted with key, up to session.ready: (ws, reader)."""
        tok = self.s.mint(headers={"X-Switchboard-Key": key})
        ws = self.track(await self.s.voice(tok["sessionId"], tok["token"]))
        r = Reader(ws)
        self._readers.append(r)
        await r.wait_type("session.ready", timeout=5)
        return ws, r



class TenantMcpIsolationTest(TenantMcpCase):

    async def test_a_tenants_calls_see_and_reach_only_its_own_crm(self):
        await self.start(acme=tenant_a(mcpServers={"acmecrm": crm(self.log("acme"))}),
                         beta=tenant_b(mcpServers={"betacrm": crm(self.log("beta"))}))
        self.assertEqual((starts(self.log("acme")), starts(self.log("beta"))), (1, 1))

        ws, r = await self.call(KEY_A)
        names = await self.offered(ws, r)
        self.assertIn("acmecrm__echo", names)
        self.assertEqual([n for n in names if "betacrm" in n], [], names)
        nested, _ = await self.mcp_turn(ws, r, "echo", '{"message":"from-acme"}')
        self.assertEqual((nested[-1]["status"], nested[-1]["via"], nested[-1]["output"]),
                         ("completed", "mcp:acmecrm", "Echo: from-acme"), nested)
        # Named outright, beta's tool is not acme's to call: refused, never run.
        nested, _ = await self.mcp_turn(ws, r, "betacrm__echo", '{"message":"sneaky"}')
        self.assertEqual(nested[-1]["status"], "failed", nested)
        self.assertEqual(json.loads(nested[-1]["output"])["error"]["code"], "unknown_tool")

        ws_b, r_b = await self.call(KEY_B)
        names_b = await self.offered(ws_b, r_b)
        self.assertIn("betacrm__echo", names_b)
        self.assertEqual([n for n in names_b if "acmecrm" in n], [], names_b)
        nested, _ = await self.mcp_turn(ws_b, r_b, "echo", '{"message":"from-beta"}')
        self.assertEqual((nested[-1]["via"], nested[-1]["output"]),
                         ("mcp:betacrm", "Echo: from-beta"))

        # Each server was started once, at start-up, and got only its own tenant's calls.
        self.assertEqual((starts(self.log("acme")), starts(self.log("beta"))), (1, 1))
        acme_sent, _ = fake_log(self.log("acme"))
        beta_sent, _ = fake_log(self.log("beta"))
        self.assertEqual(len(tool_call_ids(acme_sent, "echo")), 1)
        self.assertEqual(len(tool_call_ids(beta_sent, "echo")), 1)
        self.assertEqual([m["params"]["arguments"] for m in beta_sent
                          if m.get("method") == "tools/call"], [{"message": "from-beta"}])

    async def test_same_alias_in_two_tenants_is_two_servers(self):
        await self.start(acme=tenant_a(mcpServers={"crm": crm(self.log("acme"))}),
                         beta=tenant_b(mcpServers={"crm": crm(self.log("beta"))}))
        m = self.s.metrics()
        self.assertEqual((m.get(UP % ("acme", "crm")), m.get(UP % ("beta", "crm"))), (1, 1))
        ws, r = await self.call(KEY_B)
        nested, _ = await self.mcp_turn(ws, r, "crm__echo", '{"message":"b-only"}')
        self.assertEqual(nested[-1]["output"], "Echo: b-only")
        self.assertEqual(tool_call_ids(fake_log(self.log("acme"))[0], "echo"), [])
        self.assertEqual(len(tool_call_ids(fake_log(self.log("beta"))[0], "echo")), 1)


class TenantMcpReloadTest(TenantMcpCase):

    async def test_added_tenant_starts_its_server_removed_one_stops_it(self):
        await self.start(acme=tenant_a(mcpServers={"acmecrm": crm(self.log("acme"))}))
        zeta = tenant_b(publicKey=KEY_Z, apiSecret="sk-zeta-secret-0123456789",
                        allowedOrigins=["https://zeta.example"], phoneNumbers=["+14155550300"],
                        mcpServers={"zetacrm": crm(self.log("zeta"))})
        self.tdir.write("zeta", zeta)  # the directory watch reloads: no restart, no signal
        await self.up("zeta", "zetacrm")
        self.assertEqual(starts(self.log("zeta")), 1)
        ws, r = await self.call(KEY_Z)
        nested, _ = await self.mcp_turn(ws, r, "echo", '{"message":"new-tenant"}')
        self.assertEqual((nested[-1]["via"], nested[-1]["output"]),
                         ("mcp:zetacrm", "Echo: new-tenant"))
        await ws.close()

        os.unlink(self.tdir.file("zeta"))
        await eventually(lambda: ended(self.log("zeta")), deadline_s=STOP_S,
                         what="zeta's server told to stop")
        await eventually(lambda: UP % ("zeta", "zetacrm") not in self.s.metrics(),
                         deadline_s=STOP_S, what="zeta's series gone")
        # acme's server was never restarted by either reload.
        self.assertEqual(starts(self.log("acme")), 1)
        self.assertFalse(ended(self.log("acme")))
        self.assertEqual(self.s.metrics().get(UP % ("acme", "acmecrm")), 1)

    async def test_unchanged_server_keeps_its_process_when_its_tenant_changes(self):
        # beta, not acme: main pins the first tenant's first snapshot (see below).
        await self.start(acme=tenant_a(), beta=tenant_b(mcpServers={"betacrm": crm(self.log("b"))}))
        self.tdir.write("beta", tenant_b(brief="A new brief. NEW-BETA-MARKER.",
                                         mcpServers={"betacrm": crm(self.log("b"))}))
        self.s.signal(signal.SIGHUP)
        await eventually(lambda: self.s.metrics().get(
            'switchboard_tenant_config_generation{tenant="beta"}') == 2, deadline_s=5,
            what="beta's generation 2")
        ws, r = await self.call(KEY_B)
        nested, _ = await self.mcp_turn(ws, r, "echo", '{"message":"same-server"}')
        self.assertEqual(nested[-1]["output"], "Echo: same-server")
        self.assertEqual(starts(self.log("b")), 1)
        self.assertFalse(ended(self.log("b")))
        self.assertNotIn("mcp.client_retired", self.s.stderr())

    async def test_changed_server_runs_beside_the_old_until_the_live_call_ends(self):
        # beta, not acme: main pins the first tenant's first snapshot for the demo pages, and a
        # pinned snapshot keeps its servers' clients until exit.
        old, new = self.log("beta-v1"), self.log("beta-v2")
        await self.start(acme=tenant_a(), beta=tenant_b(mcpServers={"betacrm": crm(old)}))
        ws_old, r_old = await self.call(KEY_B)  # starts with the old definition

        self.tdir.write("beta", tenant_b(mcpServers={"betacrm": crm(new)}))
        await eventually(lambda: starts(new) == 1, deadline_s=START_S, what="the new server")
        await self.up("beta", "betacrm")  # the newer client is the one shown
        ws_new, r_new = await self.call(KEY_B)
        nested, _ = await self.mcp_turn(ws_new, r_new, "echo", '{"message":"to-new"}')
        self.assertEqual((nested[-1]["status"], nested[-1]["output"]),
                         ("completed", "Echo: to-new"), nested)
        # The live call keeps the configuration it started with, its server included.
        nested, _ = await self.mcp_turn(ws_old, r_old, "echo", '{"message":"to-old"}')
        self.assertEqual((nested[-1]["status"], nested[-1]["output"]),
                         ("completed", "Echo: to-old"), nested)
        self.assertEqual([m["params"]["arguments"]["message"] for m in fake_log(old)[0]
                          if m.get("method") == "tools/call"], ["to-old"])
        self.assertEqual([m["params"]["arguments"]["message"] for m in fake_log(new)[0]
                          if m.get("method") == "tools/call"], ["to-new"])
        self.assertFalse(ended(old))

        # Its end lets the old server go; the new one stays.
        await ws_old.close()
        await eventually(lambda: ended(old), deadline_s=STOP_S, what="the old server stopped")
        self.assertFalse(ended(new))
        self.assertEqual(starts(old), 1)
        self.assertEqual(self.s.metrics().get(UP % ("beta", "betacrm")), 1)
        nested, _ = await self.mcp_turn(ws_new, r_new, "echo", '{"message":"still-new"}')
        self.assertEqual(nested[-1]["output"], "Echo: still-new")
