"""Clients that do not read (SPEC 3 "Backpressure", 14 1008 `too slow`): what waits to be sent to
one client is bounded by bytes (1 MiB) as well as frames, so a few clients that never read cannot
make the service hold hundreds of megabytes; they are closed within seconds."""
import json
import os
import socket
import threading
import time

from harness import SBTestCase, parse_metrics
from rawws import OP_BINARY, RawWS, frame

CLIENTS = 5
FRAME_BYTES = 100 * 1024      # SWITCHBOARD_MAX_AUDIO_BYTES (the default): each is echoed back
FRAMES_PER_S = 20             # 2 MB/s of audio each way per client, 10 MB/s in all
CLOSED_WITHIN_S = 5.0
RSS_HEADROOM_KB = 16 * 1024
SAMPLE_S = 0.05


SANITIZER_SLOWDOWN = 3         # ASan and TSan builds run this much slower (closes take longer)


def sanitizer(pid):
    """"asan" or "tsan" when the process runs a sanitizer's runtime, else None. Their memory
    is not the program's (ASan keeps freed blocks in quarantine, both map shadow memory), so
    the RSS bound only holds for plain builds."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    for name in ("asan", "tsan"):
        if "lib%s" % name in maps:
            return name
    return None


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


class SlowReaderTest(SBTestCase):
    SERIAL = True  # measures the service's RSS
    SERVER_ENV = {"SWITCHBOARD_MAX_AUDIO_BYTES": str(FRAME_BYTES)}
    TEST_TIMEOUT = 40.0

    def voice_client(self, server):
        """A live /ws session whose client offers a tiny TCP window and, after session.ready,
        reads only what the test says."""
        tok = server.mint()
        ws = RawWS.connect(server, "/ws", rcvbuf=4096, sessionId=tok["sessionId"],
                           token=tok["token"])
        self.addCleanup(ws.close)
        while True:
            msg = ws.recv_data(timeout=5.0)
            if isinstance(msg, str) and json.loads(msg).get("type") == "session.ready":
                return ws

    async def test_clients_that_never_read_are_closed_and_do_not_hold_memory(self):
        server = self.own_server(self.SERVER_ENV)  # its own process: a clean RSS base
        pid = server.proc.pid
        san = sanitizer(pid)
        closed_within_s = CLOSED_WITHIN_S * (SANITIZER_SLOWDOWN if san else 1)

        def sessions():
            return server.get("/healthz").json()["sessions"]

        clients = [self.voice_client(server) for _ in range(CLIENTS)]
        self.assertEqual(sessions(), CLIENTS)
        base_kb = status_kb(pid, "VmRSS")
        peak = [base_kb]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], status_kb(pid, "VmRSS"))
                except (OSError, AssertionError):
                    return
                time.sleep(SAMPLE_S)

        ended_at = [None] * CLIENTS

        def send_audio(i, ws):
            """Sends 100 KB frames at FRAMES_PER_S until the server ends the connection."""
            data = frame(OP_BINARY, b"\x01\x02" * (FRAME_BYTES // 2))
            t0 = time.monotonic()
            n = 0
            ws.sock.settimeout(1.0)
            while time.monotonic() - t0 < closed_within_s + 3:
                try:
                    ws.sock.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    break
                except socket.timeout:
                    pass  # the server stopped reading: it is closing us
                n += 1
                time.sleep(max(0.0, t0 + n / FRAMES_PER_S - time.monotonic()))
            ended_at[i] = time.monotonic()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        senders = [threading.Thread(target=send_audio, args=(i, ws), daemon=True)
                   for i, ws in enumerate(clients)]
        for t in senders:
            t.start()
        # Every session ends (its client closed 1008 "too slow") within closed_within_s.
        closed_s = None
        while time.monotonic() - t0 < closed_within_s:
            if sessions() == 0:
                closed_s = time.monotonic() - t0
                break
            time.sleep(0.1)
        for t in senders:
            t.join(15)
        stop.set()
        sampler.join(5)
        hwm_kb = status_kb(pid, "VmHWM")
        print("\n  slow readers%s: RSS base %.1f MB, peak %.1f MB (+%.1f MB), all closed after %s"
              % (" (%s)" % san if san else "", base_kb / 1024, peak[0] / 1024,
                 (peak[0] - base_kb) / 1024, "%.1f s" % closed_s if closed_s is not None
                 else "more than %.0f s" % closed_within_s), flush=True)
        self.assertIsNotNone(closed_s, "%d of %d sessions still open after %.0f s"
                             % (sessions(), CLIENTS, closed_within_s))
        m = parse_metrics(server.get("/metrics").text)
        self.assertEqual(m.get('switchboard_sessions_total{result="error"}'), CLIENTS,
                         "sessions ended as errors (too_slow)")
        if san:
            return
        self.assertLess(peak[0] - base_kb, RSS_HEADROOM_KB,
                        "RSS grew from %d kB to %d kB" % (base_kb, peak[0]))
        self.assertLess(hwm_kb - base_kb, RSS_HEADROOM_KB,
                        "peak RSS (VmHWM) %d kB, base %d kB" % (hwm_kb, base_kb))

    async def test_a_client_that_reads_is_not_closed(self):
        # The same audio, read as it comes: nothing piles up, nothing is closed.
        ws = self.voice_client(self.server)
        data = frame(OP_BINARY, b"\x01\x02" * (FRAME_BYTES // 2))
        got = 0
        t0 = time.monotonic()
        for n in range(40):
            ws.sock.sendall(data)
            while time.monotonic() < t0 + (n + 1) / FRAMES_PER_S:
                try:
                    msg = ws.recv_data(timeout=max(0.01, t0 + (n + 1) / FRAMES_PER_S
                                                   - time.monotonic()))
                except TimeoutError:
                    break
                if isinstance(msg, bytes):
                    got += len(msg)
        deadline = time.monotonic() + 5
        while got < 40 * FRAME_BYTES and time.monotonic() < deadline:
            msg = ws.recv_data(timeout=5)
            if isinstance(msg, bytes):
                got += len(msg)
        self.assertEqual(got, 40 * FRAME_BYTES)
        self.assertEqual(self.server.get("/healthz").json()["sessions"], 1)
