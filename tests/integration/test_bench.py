"""switchboard-bench against the real service and switchboard-sim (SPEC 3 "Latency isolation",
11): audio sessions alongside --tool-storm sessions that keep supervisor runs busy, read back
from --json; phone calls with --twilio (SPEC 5.5: the signed webhook, the TwiML's stream, Media
Streams with marks echoed as played) and their --direct floor in audio/pcmu; the service's
refusals read by their close code (1013 at capacity); https:// and wss:// with the certificate
checked against SSL_CERT_FILE (the service serving TLS itself, and the simulator behind a TLS
proxy); and the usage errors of the storm and Twilio options.

The simulator runs in echo mode: appended audio comes straight back, while the storm's text
turns are answered as in agent mode (a getNextResponseFromSupervisor call, then speech), and
its chat model, told to "keep calling tools", calls checkAvailability every round.
"""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile

from harness import SBTestCase, bench_path, timeout
from test_phone import TOKEN as TWILIO_TOKEN, PhoneCase
from test_relay import RelayCase
from test_wss_upstream import TlsProxy, make_ca_and_cert, quiet_tls_handshake_errors

BENCH_RUN_TIMEOUT_S = 40


def run_bench(*args, timeout_s=BENCH_RUN_TIMEOUT_S, env=None):
    """Runs switchboard-bench with args (and env on top of ours); returns (exit status,
    stdout + stderr)."""
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run([bench_path(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout_s, env=full)
    return r.returncode, r.stdout


class StormUsage(SBTestCase):
    async def test_storm_rejects_direct_and_no_ready(self):
        for extra in (["--direct", "ws://127.0.0.1:9/v1/realtime"], ["--no-ready"]):
            status, out = run_bench("--sessions", "1", "--duration", "1", "--tool-storm", "2",
                                    *extra)
            self.assertEqual(status, 2, out)
            self.assertIn("--tool-storm", out)

    async def test_storm_text_needs_storm(self):
        status, out = run_bench("--sessions", "1", "--duration", "1", "--storm-text", "hello")
        self.assertEqual(status, 2, out)
        self.assertIn("--storm-text applies to --tool-storm", out)
        status, out = run_bench("--sessions", "1", "--duration", "1", "--tool-storm", "1",
                                "--storm-text", "x" * 4097)
        self.assertEqual(status, 2, out)


class ToolStorm(RelayCase):
    @timeout(60)
    async def test_storm_alongside_audio(self):
        sim, s = self.stack("--mode", "echo", "--chat-delay-ms", "50",
                            env={"SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS": "10"})
        with tempfile.TemporaryDirectory(prefix="sbbench-") as tmp:
            path = os.path.join(tmp, "bench.json")
            status, out = await asyncio.to_thread(
                run_bench, "--url", "http://127.0.0.1:%d" % s.port, "--sessions", "5",
                "--tool-storm", "3", "--duration", "3", "--json", path)
            self.assertEqual(status, 0, out)
            with open(path) as f:
                res = json.load(f)
        self.assertEqual(res["sessions_connected"], 5, out)
        self.assertGreater(res["frames"]["sent"], 0, out)
        self.assertEqual(res["frames"]["lost"], 0, out)
        self.assertEqual(res["frames"]["unreadable"], 0, out)  # no speech counted as audio
        st = res["storm"]
        self.assertEqual(st["sessions"], 3, out)
        self.assertEqual(st["sessions_connected"], 3, out)
        self.assertGreater(st["turns_completed"], 0, out)
        self.assertGreater(st["tool_calls"]["completed"], 0, out)
        self.assertEqual(st["turns_without_tool"], 0, out)
        # Every supervisor run hits the iteration cap, after 10 rounds of checkAvailability.
        self.assertGreater(st["supervisor_calls"]["failed"], 0, out)
        self.assertGreaterEqual(st["tool_calls"]["completed"],
                                10 * st["supervisor_calls"]["failed"], out)
        self.assertGreaterEqual(st["supervisor_turn_ms"]["samples"], st["turns_completed"], out)
        self.assertGreater(st["supervisor_turn_ms"]["p50"], 10 * 50, out)  # 11 chat requests
        self.assertGreater(st["audio_bytes_received"], 0, out)  # the spoken answers
        self.assertEqual(st["server_error_events"], 0, out)


class TwilioUsage(SBTestCase):
    async def test_twilio_needs_its_token_and_no_rate(self):
        env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_TWILIO_AUTH_TOKEN"}
        r = subprocess.run([bench_path(), "--twilio", "--sessions", "1", "--duration", "1"],
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("SWITCHBOARD_TWILIO_AUTH_TOKEN", r.stdout)
        for extra in (["--rate", "16000"], ["--no-ready"], ["--tool-storm", "1"]):
            status, out = run_bench("--twilio", "--twilio-token", "t", "--sessions", "1",
                                    "--duration", "1", *extra)
            self.assertEqual(status, 2, out)
        status, out = run_bench("--sessions", "1", "--duration", "1", "--twilio-token", "t")
        self.assertEqual(status, 2, out)
        self.assertIn("apply to --twilio only", out)


def bench_json(*args, env=None):
    """Runs switchboard-bench with args and --json; returns (exit status, output, result)."""
    with tempfile.TemporaryDirectory(prefix="sbbench-") as tmp:
        path = os.path.join(tmp, "bench.json")
        status, out = run_bench(*args, "--json", path, env=env)
        res = None
        if os.path.exists(path):
            with open(path) as f:
                res = json.load(f)
        return status, out, res


class TwilioBench(PhoneCase):
    """--twilio plays Twilio for N calls through the service's phone path: every frame comes
    back, every mark the service sends is echoed, and the calls are recorded as phone calls."""

    @timeout(60)
    async def test_phone_calls_lose_no_frame(self):
        sim, s = self.stack("--mode", "echo", env={"SWITCHBOARD_PUBLIC_URL": "https://gw.example.com"})
        status, out, res = await asyncio.to_thread(
            bench_json, "--twilio", "--twilio-token", TWILIO_TOKEN, "--public-url",
            "https://gw.example.com", "--url", "http://127.0.0.1:%d" % s.port, "--sessions", "4",
            "--duration", "3")
        self.assertEqual(status, 0, out)
        self.assertEqual(res["mode"], "twilio", out)
        self.assertEqual(res["rate"], 8000, out)
        self.assertEqual(res["sessions_connected"], 4, out)
        self.assertEqual(res["sessions_dropped"], 0, out)
        self.assertEqual(res["frames"]["sent"], 4 * 150, out)
        self.assertEqual(res["frames"]["lost"], 0, out)
        self.assertEqual(res["frames"]["unreadable"], 0, out)
        self.assertGreater(res["latency_ms"]["samples"], 0, out)
        tw = res["twilio"]
        self.assertGreater(tw["media_received"], 0, out)
        self.assertEqual(tw["calls_without_audio"], 0, out)
        # A mark follows every chunk the service sends; each is echoed once its audio played.
        self.assertGreaterEqual(tw["marks_echoed"], tw["media_received"] - 4, out)
        self.assertEqual(tw["clears"], 0, out)  # the echo simulator never barges in
        # SPEC 10: the relay's histograms see a phone call's frames both ways, as a browser's.
        m = s.metrics()
        for d in ("up", "down"):
            self.assertGreaterEqual(
                m['switchboard_relay_latency_seconds_count{direction="%s"}' % d],
                res["frames"]["received"], d)
        calls = [c for c in self.calls_api(s)["calls"] if c.get("channel") == "phone"]
        self.assertEqual(len(calls), 4, calls)
        self.assertTrue(all(c["callSid"].startswith("CA") and c["from"] for c in calls), calls)

    @timeout(60)
    async def test_a_wrong_token_is_refused_at_the_webhook(self):
        _, s = self.stack("--mode", "echo")
        status, out, res = await asyncio.to_thread(
            bench_json, "--twilio", "--twilio-token", "not-" + TWILIO_TOKEN, "--url",
            "http://127.0.0.1:%d" % s.port, "--sessions", "2", "--duration", "1")
        self.assertEqual(status, 1, out)  # nothing connected
        self.assertEqual(res["sessions_failed"], 2, out)
        self.assertIn("HTTP 403", res["failure_reasons"][0]["reason"], out)

    @timeout(60)
    async def test_direct_pcmu_floor(self):
        sim, _ = self.stack("--mode", "echo")
        status, out, res = await asyncio.to_thread(
            bench_json, "--twilio", "--direct", "ws://127.0.0.1:%d/v1/realtime" % sim.port,
            "--sessions", "3", "--duration", "2")
        self.assertEqual(status, 0, out)
        self.assertEqual(res["mode"], "direct pcmu", out)
        self.assertEqual(res["sessions_connected"], 3, out)
        self.assertEqual(res["frames"]["sent"], 3 * 100, out)
        self.assertEqual(res["frames"]["lost"], 0, out)
        self.assertEqual(res["frames"]["unreadable"], 0, out)


class Refusals(RelayCase):
    @timeout(60)
    async def test_at_capacity_is_read_by_its_code(self):
        """1013 "at capacity" fails the sessions over SWITCHBOARD_SESSIONS_PER_IP (checked at the
        upgrade, not at the POST); with --no-ready the upgrade counted as ready until the close
        came."""
        _, s = self.stack("--mode", "echo", env={"SWITCHBOARD_SESSIONS_PER_IP": "2"})
        for extra in ([], ["--no-ready"]):
            with self.subTest(extra=extra):
                status, out, res = await asyncio.to_thread(
                    bench_json, "--url", "http://127.0.0.1:%d" % s.port, "--sessions", "4",
                    "--duration", "2", "--ramp", "0.5", *extra)
                self.assertEqual(status, 0, out)
                self.assertEqual(res["sessions_connected"], 2, out)
                self.assertEqual(res["sessions_failed"], 2, out)
                self.assertEqual([(r["reason"], r["count"]) for r in res["failure_reasons"]],
                                 [("closed 1013 at capacity", 2)], out)
                self.assertTrue(res["saw_close_1013"], out)
                self.assertIn("close 1013", out)  # the hint
                self.assertEqual(res["frames"]["lost"], 0, out)


class BenchTls(RelayCase):
    """https:// and wss://: OpenSSL on the bench's own sockets, the peer's certificate checked
    against SSL_CERT_FILE and the URL's host name."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.dir = tempfile.mkdtemp(prefix="sbbenchtls-")
        self.ca, self.cert, self.key = make_ca_and_cert(self.dir)
        quiet_tls_handshake_errors(asyncio.get_running_loop())
        self.proxies = []

    async def asyncTearDown(self):
        for p in self.proxies:
            await p.stop()
        await super().asyncTearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    @timeout(60)
    async def test_service_over_https_and_wss(self):
        _, s = self.stack("--mode", "echo", env={"SWITCHBOARD_TLS_CERT": self.cert,
                                                 "SWITCHBOARD_TLS_KEY": self.key})
        status, out, res = await asyncio.to_thread(
            bench_json, "--url", "https://localhost:%d" % s.port, "--sessions", "3",
            "--duration", "2", env={"SSL_CERT_FILE": self.ca})
        self.assertEqual(status, 0, out)
        self.assertEqual(res["sessions_connected"], 3, out)
        self.assertEqual(res["frames"]["sent"], 3 * 100, out)
        self.assertEqual(res["frames"]["lost"], 0, out)

    @timeout(60)
    async def test_direct_wss_checks_the_certificate(self):
        sim = self.sim("--mode", "echo")
        proxy = await TlsProxy(self.cert, self.key, sim.port).start()
        self.proxies.append(proxy)
        url = "wss://%s:%d/v1/realtime"
        status, out, res = await asyncio.to_thread(
            bench_json, "--direct", url % ("localhost", proxy.port), "--sessions", "3",
            "--duration", "2", env={"SSL_CERT_FILE": self.ca})
        self.assertEqual(status, 0, out)
        self.assertEqual(res["sessions_connected"], 3, out)
        self.assertEqual(res["frames"]["lost"], 0, out)
        self.assertEqual(res["frames"]["received"], 3 * 100, out)
        # An unknown CA (the system store only), and a name the certificate does not carry.
        empty = os.path.join(self.dir, "none.pem")
        open(empty, "w").close()
        for host, ca in (("localhost", empty), ("127.0.0.1", self.ca)):
            with self.subTest(host=host):
                status, out, res = await asyncio.to_thread(
                    bench_json, "--direct", url % (host, proxy.port), "--sessions", "2",
                    "--duration", "1", env={"SSL_CERT_FILE": ca})
                self.assertEqual(status, 1, out)  # nothing connected
                self.assertEqual(res["sessions_failed"], 2, out)
                self.assertIn("tls handshake failed", res["failure_reasons"][0]["reason"], out)
