"""Configuration from the environment and the agent config file (SPEC 1 exit codes, 2.1, 2.2)."""
import json
import socket
import os
import tempfile

from harness import (PageReader, SBTestCase, Server, expect_exit, port_in_use_socket, recv_until,
                     run_expect_exit)

OPENAI_KEY = "sk-test-OPENAI-VISIBLE-31337"
API_SECRET = "apisecret-VISIBLE-424242"
JWT_SECRET = "jwt-secret-VISIBLE-777"

# (variable, bad value): each must stop start-up with exit 2 and a message naming both.
BAD_VALUES = [
    ("SWITCHBOARD_PORT", "abc"),
    ("SWITCHBOARD_PORT", "65536"),
    ("SWITCHBOARD_PORT", "-1"),
    ("SWITCHBOARD_PORT", ""),
    ("SWITCHBOARD_WORKERS", "0"),
    ("SWITCHBOARD_WORKERS", "257"),
    ("SWITCHBOARD_NET_THREADS", "65"),
    ("SWITCHBOARD_NET_THREADS", "0"),
    ("SWITCHBOARD_LOG_LEVEL", "loud"),
    ("SWITCHBOARD_LOG_FORMAT", "xml"),
    ("SWITCHBOARD_MINT_AUTH", "maybe"),
    ("SWITCHBOARD_MAX_SESSIONS", "0"),
    ("SWITCHBOARD_MAX_SESSIONS", "1000001"),
    ("SWITCHBOARD_MAX_SESSIONS", "1e3"),
    ("SWITCHBOARD_TOKEN_TTL_S", "86401"),
    ("SWITCHBOARD_SESSION_IDLE_S", "1.5"),
    ("SWITCHBOARD_SESSION_MAX_S", "0"),
    ("SWITCHBOARD_TOOL_TIMEOUT_MS", "99"),
    ("SWITCHBOARD_MCP_CALL_TIMEOUT_MS", "600001"),
    ("SWITCHBOARD_MAX_CONTROL_BYTES", "ten"),
    ("SWITCHBOARD_SESSIONS_PER_MIN", "+5"),
    ("SWITCHBOARD_CONFIG", "/nonexistent/agent.json"),
    ("SWITCHBOARD_REDIS_URL", "http://127.0.0.1:6379"),
    ("SWITCHBOARD_REDIS_URL", "redis://"),
    ("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:99999"),
    ("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:6379/x"),
    ("SWITCHBOARD_REDIS_URL", "unix://relative.sock"),
    ("SWITCHBOARD_DATABASE_URL", "mysql://127.0.0.1/switchboard"),
    ("SWITCHBOARD_DATABASE_URL", "http://127.0.0.1:5432"),
    ("SWITCHBOARD_NODE_ID", "has space"),
]


class ConfigEnvTest(SBTestCase):
    TEST_TIMEOUT = 30

    def assert_exit(self, env, status, *must_name, timeout=5.0):
        return expect_exit(env, status, must_name, timeout=timeout)

    async def test_bad_values_exit_2_naming_the_variable(self):
        for var, value in BAD_VALUES:
            with self.subTest(var=var, value=value):
                out = self.assert_exit({var: value}, 2, var)
                if value:
                    self.assertIn(value, out, "the message does not show the bad value")
                self.assertNotIn("listening on", out)

    async def test_config_path_that_is_a_directory(self):
        with tempfile.TemporaryDirectory() as d:
            self.assert_exit({"SWITCHBOARD_CONFIG": d}, 2, "SWITCHBOARD_CONFIG")

    async def test_webhook_without_api_secret_exits_2(self):
        out = self.assert_exit({"SWITCHBOARD_POSTCALL_WEBHOOK_URL": "http://127.0.0.1:9/hook"}, 2)
        self.assertTrue("SWITCHBOARD_POSTCALL_WEBHOOK_URL" in out
                        or "SWITCHBOARD_API_SECRET" in out, out)
        # With the secret it starts.
        s = Server({"SWITCHBOARD_POSTCALL_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                    "SWITCHBOARD_API_SECRET": API_SECRET}).start()
        try:
            s.stop()
        finally:
            s.cleanup()

    async def test_bad_secret_value_is_not_echoed(self):
        bad = "sk-bad\x01VISIBLE-echo-check"
        out = self.assert_exit({"OPENAI_API_KEY": bad}, 2, "OPENAI_API_KEY")
        self.assertNotIn("VISIBLE-echo-check", out)

    async def test_edge_values_start(self):
        env = {"SWITCHBOARD_WORKERS": "256", "SWITCHBOARD_NET_THREADS": "2",
               "SWITCHBOARD_TOKEN_TTL_S": "86400", "SWITCHBOARD_TOOL_TIMEOUT_MS": "100",
               "SWITCHBOARD_LOG_LEVEL": "debug", "SWITCHBOARD_LOG_FORMAT": "json",
               "SWITCHBOARD_MINT_AUTH": "open", "OPENAI_API_KEY": None}
        s = Server(env).start()
        try:
            self.assertEqual(s.get("/healthz").status, 200)
            s.stop()
        finally:
            s.cleanup()

    async def test_port_in_use_exits_1(self):
        sock = port_in_use_socket()
        try:
            port = sock.getsockname()[1]
            self.assert_exit({"SWITCHBOARD_PORT": str(port)}, 1)
        finally:
            sock.close()

    async def test_port_held_by_another_switchboard_exits_1(self):
        # The first instance owns the port; a second one on the same port is a start-up
        # failure (SPEC 1: "1 for any other start-up failure (port in use, DB)").
        first = Server({}).start()
        try:
            rc, out = run_expect_exit({"SWITCHBOARD_PORT": str(first.port)}, timeout=2)
            self.assertEqual(rc, 1, "a second switchboard on port %d exited %s:\n%s"
                             % (first.port, rc, out[-1500:]))
        except AssertionError as e:
            if "did not exit" in str(e):
                raise self.failureException(
                    "a second switchboard started on port %d, already used by a running "
                    "switchboard, instead of exiting 1 (both processes listen on the port)"
                    % first.port) from None
            raise
        finally:
            first.stop()
            first.cleanup()

    async def test_secrets_never_printed(self):
        env = {"OPENAI_API_KEY": OPENAI_KEY, "SWITCHBOARD_API_SECRET": API_SECRET,
               "SWITCHBOARD_JWT_SECRET": JWT_SECRET, "SWITCHBOARD_LOG_LEVEL": "debug"}
        s = Server(env).start()
        try:
            auth = {"Authorization": "Bearer " + API_SECRET}
            s.mint_raw({}, headers=auth)
            s.navigate("homepage", {"sessionId": "abc_secret_1", "section": "pricing"},
                       headers=auth)
            s.navigate("homepage", {"sessionId": "abc_secret_1", "section": "pricing"},
                       headers={"Authorization": "Bearer " + API_SECRET + "x"})
            s.stop()
            out = s.stderr()
        finally:
            s.cleanup()
        # The configuration is printed at start-up ...
        self.assertIn("SWITCHBOARD_PORT", out)
        self.assertIn("OPENAI_API_KEY", out)
        self.assertIn("SWITCHBOARD_API_SECRET", out)
        # ... without the secrets' values.
        for secret in (OPENAI_KEY, API_SECRET, JWT_SECRET, "VISIBLE"):
            self.assertNotIn(secret, out)


class JsonLogFormatTest(SBTestCase):
    """SWITCHBOARD_LOG_FORMAT=json: every line on stdout and stderr, the start-up configuration
    included, is one JSON object (SPEC 2.1)."""
    TEST_TIMEOUT = 30
    JSON = {"SWITCHBOARD_LOG_FORMAT": "json"}

    def json_lines(self, out):
        """The output's lines as objects; fails naming every line that is not one."""
        lines = out.splitlines()
        self.assertTrue(lines, "no output at all")
        objs, bad = [], []
        for line in lines:
            try:
                o = json.loads(line)
            except ValueError:
                o = None
            (objs if isinstance(o, dict) else bad).append(o if isinstance(o, dict) else line)
        self.assertEqual(bad, [], "%d of %d lines are not JSON objects" % (len(bad), len(lines)))
        return objs

    async def test_a_short_run_prints_only_json_objects(self):
        s = self.own_server(dict(self.JSON, SWITCHBOARD_LOG_LEVEL="debug",
                                 SWITCHBOARD_API_SECRET=API_SECRET))
        ws, sid = await s.live_voice()
        page = self.track(await s.page(sid))
        await ws.send(json.dumps({"type": "conversation.item.create",
                                  "item": {"type": "message", "role": "user",
                                           "content": [{"type": "input_text", "text": "Hi"}]}}))
        await ws.send(json.dumps({"type": "response.create"}))
        await recv_until(ws, lambda m: isinstance(m, dict) and m.get("type") == "response.done",
                         timeout=5.0)
        await ws.send("not json")  # an error answer, and a log line about it
        # A head over 8 KiB: refused 431 with the JSON body, and its log line is JSON too.
        with socket.create_connection((s.host, s.port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
            got = b""
            try:
                while True:
                    chunk = raw.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
            self.assertTrue(got.startswith(b"HTTP/1.1 431 "), got[:100])
            self.assertIn(b'"headers_too_large"', got)
        await s.anavigate("homepage", {"sessionId": sid, "section": "pricing"},
                          headers={"Authorization": "Bearer " + API_SECRET})
        await ws.close()
        await page.close()
        await s.wait_not_live(sid)
        s.stop()
        objs = self.json_lines(s.stderr())
        config = [o for o in objs if o.get("event") == "config"]
        self.assertEqual(config[0]["name"], "SWITCHBOARD_HOST")
        named = {o["name"]: o["value"] for o in config}
        self.assertEqual(named["SWITCHBOARD_PORT"], 0)
        self.assertEqual(named["SWITCHBOARD_API_SECRET"], "[set]")
        self.assertEqual(named["SWITCHBOARD_LOG_FORMAT"], "json")
        self.assertNotIn(API_SECRET, s.stderr())
        listening = [o for o in objs if o.get("event") == "listening"]
        self.assertEqual([o["url"] for o in listening], ["http://%s:%d/" % (s.host, s.port)])
        events = {o.get("event") for o in objs}
        for e in ("session.start", "command.sent", "session.end", "drain.done", "http.refused"):
            self.assertIn(e, events)

    async def test_start_up_failures_print_json_objects(self):
        with tempfile.TemporaryDirectory() as d:
            bad_agent = write_config(d, {"company": {"name": "x"}, "nonsense": 1})
            sock = port_in_use_socket()
            try:
                cases = [({"SWITCHBOARD_PORT": "abc"}, 2, "SWITCHBOARD_PORT"),
                         ({"SWITCHBOARD_CONFIG": "/nonexistent/agent.json"}, 2,
                          "SWITCHBOARD_CONFIG"),
                         ({"SWITCHBOARD_CONFIG": bad_agent}, 2, "nonsense"),
                         ({"SWITCHBOARD_PORT": str(sock.getsockname()[1])}, 1, "listen")]
                for env, status, named in cases:
                    with self.subTest(env=env):
                        rc, out = run_expect_exit(dict(self.JSON, **env), timeout=5.0)
                        self.assertEqual(rc, status, out)
                        errors = [o for o in self.json_lines(out) if o.get("level") == "error"]
                        self.assertTrue(any(named in o.get("error", "") for o in errors), out)
            finally:
                sock.close()


AGENT_CONFIG = {
    "company": {"name": "Shop Co", "phone": "+1 555 0100", "email": "hi@shop.example",
                "timezone": "UTC"},
    "brief": "We sell things.",
    "pages": {"shop": ["top", "cart"]},
}


def write_config(d, obj, name="agent.json"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f)
    return path


class AgentConfigFileTest(SBTestCase):
    TEST_TIMEOUT = 30

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.dir = tempfile.mkdtemp(prefix="sbcfg-")

    async def asyncTearDown(self):
        await super().asyncTearDown()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    async def test_pages_from_the_file(self):
        path = write_config(self.dir, AGENT_CONFIG)
        s = self.own_server({"SWITCHBOARD_CONFIG": path})
        ws = self.track(await s.page("shop_session_1", page="shop"))
        rd = PageReader(ws, auto_ack=True)
        self.addAsyncCleanup(rd.stop)
        r = await s.navigate_when_connected("shop", {"sessionId": "shop_session_1",
                                                     "section": "cart"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True, "delivered": 1, "acked": True})
        cmd = await rd.command()
        self.assertEqual((cmd["page"], cmd["section"]), ("shop", "cart"))
        r = s.navigate("shop", {"sessionId": "shop_session_1", "section": "pricing"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "invalid_section")
        self.assertEqual(r.json()["error"]["valid"], ["top", "cart"])
        # The demo's pages are not there: the file describes the whole business.
        r = s.navigate("homepage", {"sessionId": "shop_session_1", "section": "pricing"})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"]["code"], "unknown_page")
        s.stop()

    def assert_bad(self, obj, *must_name):
        path = write_config(self.dir, obj, "bad%d.json" % len(os.listdir(self.dir)))
        rc, out = run_expect_exit({"SWITCHBOARD_CONFIG": path}, timeout=5)
        self.assertEqual(rc, 2, "config %r: exit %s\n%s" % (obj, rc, out[-1500:]))
        for s in must_name:
            self.assertIn(s, out, "config %r: message does not name %r:\n%s"
                          % (obj, s, out[-1500:]))

    async def test_unknown_key_exits_2_naming_it(self):
        self.assert_bad(dict(AGENT_CONFIG, bogusKey=1), "bogusKey")

    async def test_nested_unknown_key_names_the_path(self):
        cfg = dict(AGENT_CONFIG, company=dict(AGENT_CONFIG["company"], fax="1"))
        self.assert_bad(cfg, "company.fax")

    async def test_wrong_type_names_the_key(self):
        self.assert_bad(dict(AGENT_CONFIG, pages={"shop": "top"}), "pages.shop")
        self.assert_bad(dict(AGENT_CONFIG, brief=5), "brief")

    async def test_not_json_exits_2(self):
        self.assert_bad('{"company": ')
