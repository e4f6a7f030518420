"""switchboard-bench against the real service and switchboard-sim (SPEC 3 "Latency isolation",
11): audio sessions alongside --tool-storm sessions that keep supervisor runs busy, read back
from --json; and the usage errors of the storm options.

The simulator runs in echo mode: appended audio comes straight back, while the storm's text
turns are answered as in agent mode (a getNextResponseFromSupervisor call, then speech), and
its chat model, told to "keep calling tools", calls checkAvailability every round.
"""
import asyncio
import json
import os
import subprocess
import tempfile

from harness import SBTestCase, bench_path, timeout
from test_relay import RelayCase

BENCH_RUN_TIMEOUT_S = 40


def run_bench(*args, timeout_s=BENCH_RUN_TIMEOUT_S):
    """Runs switchboard-bench with args; returns (exit status, stdout + stderr)."""
    r = subprocess.run([bench_path(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
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
