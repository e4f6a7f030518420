#!/usr/bin/python3
"""Soak: the service under hours' worth of mixed load and injected faults, compressed into
minutes, with a leak check between waves (make soak; SOAK_MINUTES, default 30).

    bench/soak.py [--minutes 30] [--seed S] [--out build/soak] [--voice N] [--groups G]
                  [--storm M] [--chat C] [--agent A] [--faults PER_MIN] [--sample-s S]
                  [--waves W]

It starts switchboard-sim (echo mode, slow chat model, `--faults`: upstream drops,
`session_expired`, chat completions 429 and 500 at random) and switchboard on free ports, with
a fresh database, a JWT secret and an agent config (the demo company's services and hours) that
adds tests/integration/fake_mcp.py as the stdio MCP server `soak`. The run is cut into waves;
in each wave:
  - voice calls: N sessions in G groups, each group a switchboard-bench process after another
    (`--sessions N/G --duration D`, D uniform in the call range: 1-3 min in the full soak), so
    every slot cycles through calls and thousands of calls end over 30 minutes;
  - M `--tool-storm` sessions (one switchboard-bench for the wave) keeping supervisor runs busy;
  - C chat threads on /ws/chat and A agent runs on /ws/agent (JWTs), each a client that sends
    messages or tasks (booking tools, MCP echo, questions, the iteration cap), waits for every
    answer and reconnects now and then;
  - the MCP server's process is killed (SIGKILL, found among the service's children by its
    command line) at random moments; the service restarts it with backoff (SPEC 8).
Between waves nothing runs: the quiet phase waits until the service is idle (no session, no
client connection, MCP server up, actors and descriptors settled) and samples it. The first
quiet point is the baseline (the first wave is the warm-up: caches, pools and the database
grow to their working size); every later quiet point must come back to it.

Every --sample-s seconds (30; 10 in the short run) and at each quiet point a row goes into
<out>/report.md: RSS, open descriptors, live actors, sessions, client connections, mailbox depth,
the actor queue delay p99 per lane over the interval (from switchboard_actor_queue_seconds),
calls ended and verified, lost frames (in sessions whose upstream reconnected / elsewhere),
faults injected, errors. Then the pass/fail lines with their figures:
  1. RSS at the later quiet points exceeds the baseline by less than 2 MB. It is read after
     malloc_trim(0), called in the idle service through gdb (--raw-rss: not): glibc keeps the
     freed memory of its thread arenas, so the raw RSS of an idle service follows the highest
     load peak so far (a client's send backlog when the machine is busy: up to 1024 frames per
     client), not what is still allocated. A leak stays allocated and is not trimmed. Measured
     on this VM, three waves: raw 23.9 / 32.8 / 26.4 MB, trimmed 20.5 / 21.1 / 20.9 MB;
  2. at every later quiet point, live actors and the descriptors other than the connections to
     the simulator equal the baseline; the simulator has no Realtime session open (no upstream
     left behind) and the connections to it are within the service's fetch pool (32 per host);
  3. no frame lost outside the injected faults (switchboard-bench counts upstream.reconnecting
     per session and reports the frames lost in those sessions apart);
  4. every call the service started (session.start in its log) ended (session.end), and
     GET /api/calls/{id} on loopback returns its record with endedAt and endReason;
  5. the service exits 0 within 10 s of SIGTERM at the end.
Exit status: 0 pass, 1 fail, 2 could not start.

Counts scale with --minutes: under 5 minutes the short profile (40 voice sessions in 4 groups,
10-30 s calls, 4 storm sessions, 4 chat threads, 2 agent runs, 12 faults a minute, two waves,
a sample every 10 s) fits 2 minutes on 2 cores; from 5 minutes the full one (200 voice sessions
in 10 groups, 1-3 min calls, 20 storm sessions, 20 chat threads, 10 agent runs, 6 faults a
minute, waves of 5 minutes from 15 minutes on, else three). Binaries come from build/bin
(SWITCHBOARD_BIN_DIR to change).
"""
import argparse
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BIN = os.environ.get("SWITCHBOARD_BIN_DIR", os.path.join(REPO, "build", "bin"))
FAKE_MCP = os.path.join(REPO, "tests", "integration", "fake_mcp.py")
MCP_ALIAS = "soak"

RSS_GROWTH_MAX_KB = 2048
FETCH_MAX_HOST_CONNECTIONS = 32  # net/fetch.c: the service's connections per host
EXIT_DEADLINE_S = 10.0           # SPEC 3 "Shutdown"
CHAT_DELAY_MS = 50               # the simulator's chat model: slow tools
START_TIMEOUT_S = 15.0
STARTUP_S = 5.0                  # of the run's minutes: starting and stopping the processes
ANSWER_TIMEOUT_S = 60.0          # a chat answer or an agent run: tool loop, retries, MCP restart
BENCH_RAMP_S = 2.0
BENCH_TAIL_S = 4.0               # a bench process's grace for echoes and its closes
SETTLE_POLL_S = 0.5
SETTLE_STABLE_POLLS = 3
END_REASONS = {"client_closed", "idle_timeout", "max_duration", "shutdown", "upstream_unavailable",
               "upstream_rejected_config", "too_slow", "error"}
SESSION_START_RE = re.compile(r"event=session\.start sid=([A-Za-z0-9_-]+)")
SESSION_END_RE = re.compile(r"event=session\.end sid=([A-Za-z0-9_-]+) reason=(\S+).* call=(\S+)")
LEVEL_RE = re.compile(r"level=(warn|error) event=(\S+)")
LISTEN_RE = re.compile(r"listening on http://[^:]+:(\d+)/")


def log(*a):
    print("soak:", *a, file=sys.stderr, flush=True)


# ---- The plan -----------------------------------------------------------------------------------

class Plan:
    """How many of what, for how long: the short profile under 5 minutes, else the full one."""

    def __init__(self, a):
        self.total_s = a.minutes * 60.0
        short = a.minutes < 5
        self.short = short
        self.voice = a.voice or (40 if short else 200)
        self.groups = a.groups or (4 if short else 10)
        self.storm = a.storm if a.storm is not None else (4 if short else 20)
        self.chat = a.chat if a.chat is not None else (4 if short else 20)
        self.agent = a.agent if a.agent is not None else (2 if short else 10)
        self.faults = a.faults or (12.0 if short else 6.0)
        self.sample_s = a.sample_s or (10.0 if short else 30.0)
        if a.waves:
            self.waves = a.waves
        elif short:
            self.waves = 2
        elif a.minutes >= 15:
            self.waves = int(round(a.minutes / 5))
        else:
            self.waves = 3
        self.wave_s = (self.total_s - STARTUP_S) / self.waves
        self.quiet_s = 12.0 if short else 25.0  # the budget of each quiet phase
        self.active_s = self.wave_s - self.quiet_s
        if short:
            self.call_s = (10.0, 30.0)
        else:
            self.call_s = (min(60.0, self.active_s / 4), min(180.0, self.active_s * 0.66))
        self.mcp_kills = max(1, int(round(self.active_s / 120)))  # per wave
        if self.active_s < self.call_s[0] + BENCH_RAMP_S + BENCH_TAIL_S:
            raise SystemExit("soak: %.1f minutes is too short for %d waves" % (a.minutes,
                                                                                 self.waves))

    def describe(self):
        return ("%d waves of %.0f s (%.0f s of load); voice %d sessions in %d groups, calls "
                "%.0f-%.0f s; %d tool-storm sessions; %d chat threads; %d agent runs; "
                "%.1f simulator faults a minute; %d MCP kill(s) a wave; a sample every %.0f s"
                % (self.waves, self.wave_s, self.active_s, self.voice, self.groups,
                   self.call_s[0], self.call_s[1], self.storm, self.chat, self.agent,
                   self.faults, self.mcp_kills, self.sample_s))


# ---- Small helpers ------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, timeout=10.0):
    """(status, body text) of one request; status 0 when nothing answered."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def hist_buckets(m, name, lane):
    """[(le, cumulative count)] of one histogram series, +Inf last."""
    pre = '%s_bucket{lane="%s",le="' % (name, lane)
    out = []
    for k, v in m.items():
        if k.startswith(pre):
            le = k[len(pre):-2]
            out.append((float("inf") if le == "+Inf" else float(le), v))
    return sorted(out)


def interval_p99_ms(now_m, then_m, lane):
    """The p99 of the observations between two snapshots, as the bucket bound it falls under
    (ms); None without observations."""
    name = "switchboard_actor_queue_seconds"
    a = dict(hist_buckets(then_m, name, lane)) if then_m else {}
    b = hist_buckets(now_m, name, lane)
    if not b:
        return None
    total = b[-1][1] - a.get(b[-1][0], 0)
    if total <= 0:
        return None
    for le, c in b:
        if c - a.get(le, 0) >= 0.99 * total:
            return le * 1000.0
    return float("inf")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tcp_peers():
    """{socket inode: (remote port, state)} of every TCP socket on the machine."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    out[p[9]] = (int(p[2].rsplit(":", 1)[1], 16), p[3])
        except OSError:
            pass
    return out


def fd_census(pid, sim_port):
    """(all descriptors, TCP connections to the simulator) of the process."""
    peers = tcp_peers()
    total = to_sim = 0
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        total += 1
        try:
            target = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            peer = peers.get(target[8:-1])
            if peer and peer[0] == sim_port:
                to_sim += 1
    return total, to_sim


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(secret, sub, ttl_s=7200):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + ttl_s}).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64url(sig))


def agent_config(path):
    """The demo company's services and hours (so the booking tools answer) and the MCP server."""
    hours = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    hours.update({"sat": ["09:00", "16:00"], "sun": None})
    cfg = {
        "company": {"name": "Prime Auto Lab", "phone": "(555) 123-4567",
                    "email": "info@primeautolab.com", "timezone": "America/Los_Angeles"},
        "brief": "Prime Auto Lab is an automotive repair shop (soak test configuration).",
        "services": [{"name": "Oil change", "duration_min": 30, "price": "$50-80"},
                     {"name": "Brake repair", "duration_min": 120, "price": "$150-400"},
                     {"name": "Tire services", "duration_min": 60, "price": "$100-600"}],
        "hours": hours,
        "mcpServers": {MCP_ALIAS: {"command": "/usr/bin/python3", "args": [FAKE_MCP, "/dev/null"]}},
    }
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


def weekday_text(rng):
    return rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])


# ---- The processes ------------------------------------------------------------------------------

class Stack:
    """switchboard-sim and switchboard, their ports, logs and the run directory."""

    def __init__(self, plan, out, seed):
        self.plan = plan
        self.out = out
        self.seed = seed
        self.secret = "soak-%016x" % random.Random(seed).getrandbits(64)
        self.sim = self.svc = None
        self.sim_port = self.port = None

    def start(self):
        var = os.path.join(self.out, "var")
        shutil.rmtree(var, ignore_errors=True)
        os.makedirs(var)
        self.sim_log_path = os.path.join(self.out, "sim.log")
        self.svc_log_path = os.path.join(self.out, "switchboard.log")
        self.sim_port = free_port()
        self.sim_log = open(self.sim_log_path, "w")
        self.sim = subprocess.Popen(
            [os.path.join(BIN, "switchboard-sim"), "--port", str(self.sim_port), "--mode", "echo",
             "--quiet", "--chat-delay-ms", str(CHAT_DELAY_MS), "--faults", str(self.plan.faults),
             "--fault-seed", str(self.seed)],
            stdin=subprocess.DEVNULL, stdout=self.sim_log, stderr=self.sim_log)
        self._wait_log(self.sim, self.sim_log_path, "switchboard-sim")
        cfg = os.path.join(self.out, "agent.json")
        agent_config(cfg)
        n = self.plan.voice + self.plan.storm + 1
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SWITCHBOARD_") and k != "OPENAI_API_KEY"}
        env.update({
            "OPENAI_API_KEY": "sk-soak",
            "SWITCHBOARD_HOST": "127.0.0.1",
            "SWITCHBOARD_PORT": "0",
            "SWITCHBOARD_REALTIME_URL": "ws://127.0.0.1:%d/v1/realtime" % self.sim_port,
            "SWITCHBOARD_OPENAI_BASE_URL": "http://127.0.0.1:%d/v1" % self.sim_port,
            "SWITCHBOARD_DB": os.path.join(var, "switchboard.db"),
            "SWITCHBOARD_CONFIG": cfg,
            "SWITCHBOARD_JWT_SECRET": self.secret,
            "SWITCHBOARD_LOG_LEVEL": "info",
            "SWITCHBOARD_MAX_SESSIONS": str(n + 20),
            "SWITCHBOARD_SESSIONS_PER_IP": str(n + 20),
            "SWITCHBOARD_SESSIONS_PER_MIN": "1000000",
            "SWITCHBOARD_MAX_CONNECTIONS": "4096",
            "SWITCHBOARD_CONNECTIONS_PER_IP": "4096",
        })
        self.svc_log = open(self.svc_log_path, "w")
        self.svc = subprocess.Popen([os.path.join(BIN, "switchboard")], env=env, cwd=self.out,
                                    stdin=subprocess.DEVNULL, stdout=self.svc_log,
                                    stderr=self.svc_log)
        self.port = self._wait_log(self.svc, self.svc_log_path, "switchboard")
        self.base = "http://127.0.0.1:%d" % self.port

    def _wait_log(self, p, path, name):
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            with open(path, errors="replace") as f:
                m = LISTEN_RE.search(f.read())
            if m:
                return int(m.group(1))
            if p.poll() is not None:
                break
            time.sleep(0.05)
        with open(path, errors="replace") as f:
            raise RuntimeError("%s did not start: %s" % (name, f.read()[-2000:]))

    def stop_service(self):
        """SIGTERM; returns (exit status or None when killed, seconds)."""
        t0 = time.monotonic()
        self.svc.send_signal(signal.SIGTERM)
        try:
            st = self.svc.wait(EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.svc.kill()
            self.svc.wait()
            st = None
        return st, time.monotonic() - t0

    def trim(self):
        """Prints glibc's malloc_stats() to the service's log (its heap in use) and returns the
        free memory of every arena to the system with malloc_trim(0), through gdb; False when
        gdb could not do it. Only called while the service is idle (it stops for ~0.3 s)."""
        if not shutil.which("gdb"):
            return False
        try:
            r = subprocess.run(["gdb", "-batch", "-nx", "--readnever", "-p", str(self.svc.pid),
                                "-ex", "call (void)malloc_stats()",
                                "-ex", "call (int)malloc_trim(0)"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return re.search(r"^\$2 = [01]$", r.stdout, re.M) is not None

    def kill_all(self):
        for p in (self.svc, self.sim):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


# ---- The run ------------------------------------------------------------------------------------

class Soak:
    def __init__(self, plan, stack, seed, out, raw_rss=False):
        self.p = plan
        self.s = stack
        self.rng = random.Random(seed)
        self.out = out
        self.t0 = None
        self.wave = 0
        self.phase = "start"
        self.active_end = 0.0
        self.rows = []            # report rows (dicts)
        self.quiet = []           # quiet-point samples (dicts)
        self.last_metrics = None  # for the interval quantiles
        self.v = collections.Counter()      # voice and storm figures (switchboard-bench)
        self.reasons = collections.Counter()
        self.c = collections.Counter()      # chat and agent figures, MCP kills
        self.client_errors = collections.Counter()
        self.warn_events = collections.Counter()
        self.error_lines = []
        self.started = set()      # sids with session.start
        self.ended = {}           # sid -> (reason, call id)
        self.verified = set()     # sids whose record checked out
        self.record_problems = []
        self.log_pos = 0
        self.heap_in_use = None   # bytes, from the last malloc_stats() in the service's log
        self.trimmed = True       # every quiet point's RSS was read after malloc_trim(0)
        self.raw_rss = raw_rss
        self.bench_seq = 0
        self.bench_failures_path = os.path.join(out, "bench-failures.log")
        open(self.bench_failures_path, "w").close()

    def now(self):
        return time.monotonic() - self.t0

    # ---- voice and storm: switchboard-bench ----------------------------------------------------

    async def bench(self, args, what):
        self.bench_seq += 1
        jpath = os.path.join(self.out, "bench-%d.json" % self.bench_seq)
        cmd = [os.path.join(BIN, "switchboard-bench"), "--url", self.s.base, "--json", jpath,
               "--ramp", str(BENCH_RAMP_S)] + args
        p = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT)
        text = (await p.communicate())[0].decode("utf-8", "replace")
        try:
            with open(jpath) as f:
                r = json.load(f)
            os.unlink(jpath)
        except (OSError, ValueError):
            r = None
        if p.returncode != 0 or r is None:
            self.v["bench_errors"] += 1
            self._keep_bench(what, cmd, text)
            return
        f = r["frames"]
        self.v["calls"] += r["sessions"]
        self.v["connected"] += r["sessions_connected"]
        self.v["failed"] += r["sessions_failed"]
        self.v["dropped"] += r["sessions_dropped"]
        self.v["sent"] += f["sent"]
        self.v["lost"] += f["lost"]
        self.v["lost_reconnected"] += f["lost_in_reconnected_sessions"]
        self.v["lost_elsewhere"] += f["lost_elsewhere"]
        self.v["reconnected_sessions"] += r["sessions_reconnected"]
        self.v["reconnects"] += r["upstream_reconnects"]
        self.v["server_errors"] += r["server_error_events"]
        for fr in r["failure_reasons"]:
            self.reasons[fr["reason"]] += fr["count"]
        st = r.get("storm")
        if st:
            self.v["storm_connected"] += st["sessions_connected"]
            self.v["storm_failed"] += st["sessions_failed"]
            self.v["storm_turns"] += st["turns_completed"]
            self.v["storm_timed_out"] += st["turns_timed_out"]
            self.v["storm_tools_completed"] += st["tool_calls"]["completed"]
            self.v["storm_tools_failed"] += st["tool_calls"]["failed"]
        if r["sessions_failed"] or f["lost_elsewhere"] or (st and st["sessions_failed"]):
            self._keep_bench(what, cmd, text)

    def _keep_bench(self, what, cmd, text):
        with open(self.bench_failures_path, "a") as f:
            f.write("## %s at +%.0f s: %s\n%s\n" % (what, self.now(), " ".join(cmd), text))

    async def voice_group(self, g):
        per = self.p.voice // self.p.groups + (1 if g < self.p.voice % self.p.groups else 0)
        await asyncio.sleep(self.rng.uniform(0, min(10.0, self.p.call_s[0] / 2)))
        lo, hi = self.p.call_s
        while True:
            left = self.active_end - time.monotonic() - BENCH_RAMP_S - BENCH_TAIL_S
            if left < lo / 2:
                return
            d = min(self.rng.uniform(lo, hi), left)
            await self.bench(["--sessions", str(per), "--duration", "%.1f" % d], "voice group %d" % g)

    async def storm(self):
        d = self.active_end - time.monotonic() - BENCH_RAMP_S - BENCH_TAIL_S
        if self.p.storm and d > 1:
            await self.bench(["--sessions", "1", "--duration", "%.1f" % d, "--tool-storm",
                              str(self.p.storm)], "tool storm")

    # ---- chat threads and agent runs: WebSocket clients -----------------------------------------

    async def ws(self, path):
        return await websockets.connect(self.s.base.replace("http://", "ws://") + path,
                                        max_size=None, compression=None, ping_interval=None,
                                        open_timeout=10, close_timeout=2)

    async def recv(self, ws, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError()
        m = await asyncio.wait_for(ws.recv(), left)
        try:
            return json.loads(m) if isinstance(m, str) else {}
        except ValueError:
            return {}

    def chat_text(self):
        day = weekday_text(self.rng)
        return self.rng.choice([
            "Is %s available for an oil change?" % day,
            "Please book a brake repair on %s at %02d:%s" % (day, self.rng.randrange(9, 16),
                                                            self.rng.choice(["00", "30"])),
            "Can you look up the customer 555-01%02d?" % self.rng.randrange(100),
            "What are your hours?",
            "echo soak %d" % self.rng.randrange(1000),
        ])

    async def chat_client(self, i):
        user = "soak_user_%d" % i
        url = "/ws/chat?threadId=soak_thread_%d&userId=%s&token=%s" % (i, user,
                                                                         jwt(self.s.secret, user))
        n = 0
        while time.monotonic() < self.active_end - 5:
            ws = None
            try:
                ws = await self.ws(url)
                first = await self.recv(ws, time.monotonic() + 10)
                if first.get("type") != "history":
                    self.client_errors["chat: first event not history"] += 1
                for _ in range(self.rng.randint(3, 8)):
                    if time.monotonic() >= self.active_end - 5:
                        break
                    n += 1
                    await ws.send(json.dumps({"type": "message", "text": self.chat_text(),
                                              "clientMessageId": "c%d" % n}))
                    deadline = time.monotonic() + ANSWER_TIMEOUT_S
                    while True:
                        m = await self.recv(ws, deadline)
                        if m.get("type") == "message" and m.get("role") == "assistant":
                            self.c["chat_answers"] += 1
                            break
                    await asyncio.sleep(self.rng.uniform(0.2, 2.0))
            except asyncio.TimeoutError:
                self.client_errors["chat: no answer within %.0f s" % ANSWER_TIMEOUT_S] += 1
            except (OSError, websockets.exceptions.WebSocketException) as e:
                self.client_errors["chat: %s" % type(e).__name__] += 1
            finally:
                if ws is not None:
                    await close_quietly(ws)
                    self.c["chat_connections"] += 1

    def agent_task(self):
        day = weekday_text(self.rng)
        return self.rng.choice([
            "Check whether %s is available for an oil change" % day,
            "keep calling tools: is %s available?" % day,
            "Look up the customer 555-0100",
            "echo agent soak",
            "ask me whether to book %s" % day,
        ])

    async def agent_client(self, i):
        n = 0
        while time.monotonic() < self.active_end - 5:
            ws = None
            try:
                ws = await self.ws("/ws/agent")
                await ws.send(json.dumps({"type": "authenticate",
                                          "token": jwt(self.s.secret, "soak_agent_%d" % i)}))
                m = await self.recv(ws, time.monotonic() + 10)
                if m != {"type": "authentication", "status": "success"}:
                    self.client_errors["agent: authentication answered %r" % (m,)] += 1
                    await asyncio.sleep(1)
                    continue
                for _ in range(self.rng.randint(2, 5)):
                    if time.monotonic() >= self.active_end - 5:
                        break
                    n += 1
                    run = "soak_a%d_r%d" % (i, n)
                    await ws.send(json.dumps({"type": "start_agent", "runId": run,
                                              "task": self.agent_task()}))
                    deadline = time.monotonic() + ANSWER_TIMEOUT_S
                    while True:
                        m = await self.recv(ws, deadline)
                        t = m.get("type")
                        if t == "step_update":
                            self.c["agent_steps"] += 1
                        elif t == "question" and m.get("runId") == run:
                            await ws.send(json.dumps({"type": "answer", "runId": run,
                                                      "answer": "yes, go on"}))
                        elif t == "completion" and m.get("runId") == run:
                            self.c["agent_runs"] += 1
                            break
                    await asyncio.sleep(self.rng.uniform(0.2, 2.0))
            except asyncio.TimeoutError:
                self.client_errors["agent: no completion within %.0f s" % ANSWER_TIMEOUT_S] += 1
            except (OSError, websockets.exceptions.WebSocketException) as e:
                self.client_errors["agent: %s" % type(e).__name__] += 1
            finally:
                if ws is not None:
                    await close_quietly(ws)
                    self.c["agent_connections"] += 1

    # ---- the MCP server -------------------------------------------------------------------------

    def mcp_pids(self):
        return [c for c in children(self.s.svc.pid) if "fake_mcp.py" in cmdline(c)]

    async def mcp_killer(self):
        start = time.monotonic()
        span = self.active_end - start
        for at in sorted(self.rng.uniform(0.15, 0.8) * span for _ in range(self.p.mcp_kills)):
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            pids = self.mcp_pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.c["mcp_kills"] += 1
                except ProcessLookupError:
                    pass
            if not pids:
                self.c["mcp_kill_missed"] += 1  # in its restart backoff still

    # ---- samples --------------------------------------------------------------------------------

    async def metrics(self):
        st, text = await asyncio.to_thread(http, "GET", self.s.base + "/metrics")
        return parse_metrics(text) if st == 200 else {}

    async def sim_stats(self):
        st, text = await asyncio.to_thread(http, "GET",
                                           "http://127.0.0.1:%d/sim/stats" % self.s.sim_port)
        try:
            return json.loads(text) if st == 200 else {}
        except ValueError:
            return {}

    def follow_log(self):
        """Reads what the service logged since the last call: calls started and ended, warnings
        and errors."""
        with open(self.s.svc_log_path, "rb") as f:
            f.seek(self.log_pos)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.log_pos += cut
        in_total = False
        for line in data[:cut].decode("utf-8", "replace").splitlines():
            if line.startswith("Total (incl. mmap):"):
                in_total = True  # malloc_stats(): its last block sums every arena
                continue
            if in_total and line.startswith("in use bytes"):
                self.heap_in_use = int(line.split("=")[1])
                in_total = False
                continue
            m = SESSION_START_RE.search(line)
            if m:
                self.started.add(m.group(1))
                continue
            m = SESSION_END_RE.search(line)
            if m:
                self.ended[m.group(1)] = (m.group(2), m.group(3).strip('"'))
                continue
            m = LEVEL_RE.search(line)
            if m:
                self.warn_events["%s %s" % (m.group(1), m.group(2))] += 1
                if m.group(1) == "error" and len(self.error_lines) < 20:
                    self.error_lines.append(line[:300])

    def check_record(self, sid, reason, call):
        st, text = http("GET", "%s/api/calls/%s" % (self.s.base, call))
        if st != 200:
            return "%s (call %s): GET /api/calls/%s answered %s" % (sid, call, call, st)
        try:
            c = json.loads(text)
        except ValueError:
            return "%s: the record is not JSON" % sid
        c = c.get("call", c)
        if c.get("sessionId") != sid:
            return "%s: the record of call %s names session %r" % (sid, call, c.get("sessionId"))
        if c.get("endReason") not in END_REASONS or not c.get("endedAt"):
            return "%s: endReason %r endedAt %r (log: %s)" % (sid, c.get("endReason"),
                                                             c.get("endedAt"), reason)
        return None

    async def check_records(self):
        todo = [(sid, r, call) for sid, (r, call) in self.ended.items()
                if sid not in self.verified]
        for sid, r, call in todo:
            problem = await asyncio.to_thread(self.check_record, sid, r, call)
            if problem is None:
                self.verified.add(sid)
            elif len(self.record_problems) < 1000:
                self.record_problems.append(problem)
                self.verified.add(sid)  # reported once

    async def sample(self, phase):
        async with self.sampling:  # the sampler's and the quiet phase's samples take turns
            return await self._sample(phase)

    async def _sample(self, phase):
        pid = self.s.svc.pid
        rss_raw = None
        if phase in ("start", "quiet") and not self.raw_rss:
            rss_raw = rss_kb(pid)
            self.heap_in_use = None
            if not await asyncio.to_thread(self.s.trim):
                self.trimmed = False
        m = await self.metrics()
        ss = await self.sim_stats()
        self.follow_log()
        await self.check_records()
        fds, to_sim = fd_census(pid, self.s.sim_port)
        faults = ss.get("faults", {})
        row = {
            "t": self.now(), "wave": self.wave + 1, "phase": phase,
            "rss_kb": rss_kb(pid), "rss_raw_kb": rss_raw, "fds": fds, "fds_sim": to_sim,
            "heap_kb": self.heap_in_use // 1024 if rss_raw and self.heap_in_use else None,
            "actors": int(m.get("switchboard_actors_live", -1)),
            "sessions": int(m.get("switchboard_sessions_active", -1)),
            "conns": int(m.get("switchboard_connections_open", -1)),
            "mailbox": int(m.get("switchboard_mailbox_depth", -1)),
            "q_rt": interval_p99_ms(m, self.last_metrics, "realtime"),
            "q_tools": interval_p99_ms(m, self.last_metrics, "tools"),
            "calls_ended": len(self.ended), "calls_verified": len(self.verified),
            "lost_elsewhere": self.v["lost_elsewhere"], "lost_reconnected": self.v["lost_reconnected"],
            "audio_dropped": int(m.get("switchboard_audio_dropped_total", 0)),
            "faults": "%d/%d/%d/%d/%d" % (faults.get("drop", 0), faults.get("expire", 0),
                                          faults.get("chat_429", 0), faults.get("chat_500", 0),
                                          self.c["mcp_kills"]),
            "errors": "%d/%d" % (sum(v for k, v in self.warn_events.items()
                                     if k.startswith("error")),
                                 sum(self.client_errors.values()) + self.v["failed"]
                                 + self.v["bench_errors"]),
            "sim_open": ss.get("sessions_open", -1),
            "mcp_up": m.get('switchboard_mcp_server_up{alias="%s"}' % MCP_ALIAS, 0),
        }
        self.last_metrics = m
        self.rows.append(row)
        return row

    async def sampler(self):
        while True:
            await asyncio.sleep(self.p.sample_s)
            await self.sample(self.phase)

    # ---- waves ------------------------------------------------------------------------------------

    async def settle(self):
        """The quiet phase: waits until the service is idle and, after the first wave, back at
        the baseline; returns the quiet sample (with the seconds it took)."""
        t0 = time.monotonic()
        deadline = t0 + max(self.p.quiet_s, 30.0)
        base = self.quiet[0] if self.quiet else None
        history = []
        while True:
            m = await self.metrics()
            ss = await self.sim_stats()
            fds, to_sim = fd_census(self.s.svc.pid, self.s.sim_port)
            cur = (int(m.get("switchboard_actors_live", -1)), fds - to_sim)
            idle = (m.get("switchboard_sessions_active") == 0
                    and m.get("switchboard_connections_open", 99) <= 1
                    and m.get('switchboard_mcp_server_up{alias="%s"}' % MCP_ALIAS) == 1
                    and m.get("switchboard_mailbox_depth") == 0
                    and ss.get("sessions_open") == 0)
            history = history + [cur] if idle else []
            if base is not None:
                if idle and cur == (base["actors"], base["fds"] - base["fds_sim"]):
                    break
            elif len(history) >= SETTLE_STABLE_POLLS and len(set(history[-SETTLE_STABLE_POLLS:])) == 1:
                break
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(SETTLE_POLL_S)
        row = await self.sample("quiet")
        row["settle_s"] = time.monotonic() - t0
        row["idle"] = bool(history)
        self.quiet.append(row)
        return row

    async def run_wave(self, w):
        self.wave = w
        self.phase = "load"
        start = time.monotonic()
        self.active_end = start + self.p.active_s
        log("wave %d of %d at +%.0f s" % (w + 1, self.p.waves, self.now()))
        benches = [asyncio.ensure_future(self.voice_group(g)) for g in range(self.p.groups)]
        benches.append(asyncio.ensure_future(self.storm()))
        clients = [asyncio.ensure_future(self.chat_client(i)) for i in range(self.p.chat)]
        clients += [asyncio.ensure_future(self.agent_client(i)) for i in range(self.p.agent)]
        clients.append(asyncio.ensure_future(self.mcp_killer()))
        # The chat and agent clients stop at the end of the load, in the middle of whatever they
        # were waiting for (the service must clean up after them too); the bench processes have
        # been sized to end by then, and are waited for.
        await asyncio.wait(clients, timeout=max(0.0, self.active_end - time.monotonic()))
        done, pending = await asyncio.wait(benches, timeout=max(0.0, self.active_end
                                                                  - time.monotonic()) + 60)
        for t in clients + list(pending):
            t.cancel()
        await asyncio.gather(*clients, *pending, return_exceptions=True)
        for t in done:
            if t.exception() is not None:
                self.client_errors["driver: %r" % (t.exception(),)] += 1
        if pending:
            self.client_errors["driver: %d bench runs still going 60 s after the load"
                               % len(pending)] += 1
        self.phase = "pause"
        q = await self.settle()
        log("wave %d quiet after %.1f s: RSS %.1f MB, %d fds (%d to the simulator), %d actors"
            % (w + 1, q["settle_s"], q["rss_kb"] / 1024, q["fds"], q["fds_sim"], q["actors"]))
        if w + 1 < self.p.waves:
            await asyncio.sleep(max(0.0, start + self.p.wave_s - time.monotonic()))

    async def run(self):
        self.t0 = time.monotonic()
        self.sampling = asyncio.Lock()  # made on the loop that uses it
        # The MCP server is up before the first wave.
        end = time.monotonic() + START_TIMEOUT_S
        while (await self.metrics()).get('switchboard_mcp_server_up{alias="%s"}' % MCP_ALIAS) != 1:
            if time.monotonic() > end:
                raise RuntimeError("the MCP server did not come up")
            await asyncio.sleep(0.2)
        await self.sample("start")
        sampler = asyncio.ensure_future(self.sampler())
        try:
            for w in range(self.p.waves):
                await self.run_wave(w)
        finally:
            sampler.cancel()
        self.follow_log()
        await self.check_records()


async def close_quietly(ws):
    try:
        await asyncio.wait_for(ws.close(), 3)
    except Exception:
        pass


# ---- The report -------------------------------------------------------------------------------

def fmt_ms(v):
    if v is None:
        return "-"
    if v == float("inf"):
        return "> 10000"
    return "<= %g" % v


def verdicts(soak, exit_status, exit_s):
    """[(ok, line)] of the pass criteria."""
    out = []
    q = soak.quiet
    base = q[0] if q else None
    later = q[1:]
    if base and later:
        growth = max(r["rss_kb"] for r in later) - base["rss_kb"]
        heap = ""
        if base.get("heap_kb") is not None and all(r.get("heap_kb") is not None for r in later):
            heap = "; heap in use %.1f MB, then %s MB" % (
                base["heap_kb"] / 1024, ", ".join("%.1f" % (r["heap_kb"] / 1024) for r in later))
        raw = ""
        if soak.trimmed and not soak.raw_rss:
            raw = " (after malloc_trim(0); before it %s MB)" % ", ".join(
                "%.1f" % (r["rss_raw_kb"] / 1024) for r in q)
        out.append((growth < RSS_GROWTH_MAX_KB,
                    "RSS after the warm-up (first wave): baseline %.1f MB at +%.0f s, later quiet "
                    "points %s MB%s: grew %+d KB (limit < %d KB)%s"
                    % (base["rss_kb"] / 1024, base["t"],
                       ", ".join("%.1f" % (r["rss_kb"] / 1024) for r in later), raw, growth,
                       RSS_GROWTH_MAX_KB, heap)))
        bad = [r for r in later if r["actors"] != base["actors"]
               or r["fds"] - r["fds_sim"] != base["fds"] - base["fds_sim"]
               or r["sim_open"] != 0 or r["fds_sim"] > FETCH_MAX_HOST_CONNECTIONS or not r["idle"]]
        out.append((not bad,
                    "between waves: actors %s (baseline %d); descriptors other than connections "
                    "to the simulator %s (baseline %d); connections to the simulator %s (at most "
                    "%d, the fetch pool); Realtime sessions left open on the simulator %s; "
                    "settled in %s s"
                    % ("/".join(str(r["actors"]) for r in later), base["actors"],
                       "/".join(str(r["fds"] - r["fds_sim"]) for r in later),
                       base["fds"] - base["fds_sim"],
                       "/".join(str(r["fds_sim"]) for r in later), FETCH_MAX_HOST_CONNECTIONS,
                       "/".join(str(r["sim_open"]) for r in later),
                       "/".join("%.1f" % r["settle_s"] for r in q))))
    else:
        out.append((False, "fewer than two quiet points: no baseline comparison"))
    v = soak.v
    out.append((v["lost_elsewhere"] == 0 and v["calls"] > 0,
                "lost frames outside the injected faults: %d of %d sent (%d more in %d sessions "
                "whose upstream reconnected, %d upstream.reconnecting)"
                % (v["lost_elsewhere"], v["sent"], v["lost_reconnected"],
                   v["reconnected_sessions"], v["reconnects"])))
    unended = sorted(soak.started - set(soak.ended))
    probs = soak.record_problems
    out.append((not unended and not probs and len(soak.verified) == len(soak.ended) > 0,
                "call records: %d calls started, %d ended, %d records checked with GET "
                "/api/calls/{id} (endedAt, endReason)%s%s"
                % (len(soak.started), len(soak.ended), len(soak.verified) - len(probs),
                   "; never ended: %s" % ", ".join(unended[:5]) if unended else "",
                   "; bad: %s" % "; ".join(probs[:5]) if probs else "")))
    out.append((exit_status == 0 and exit_s <= EXIT_DEADLINE_S,
                "SIGTERM at the end: exit %s in %.2f s" % (exit_status, exit_s)))
    return out


def write_report(path, plan, soak, seed, verdict_lines, wall_s):
    v, c = soak.v, soak.c
    lines = ["# switchboard soak", "",
             "%s, %d CPUs, %s; seed %d; %.1f minutes planned, %.1f run" % (
                 time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), os.cpu_count(),
                 os.uname().release, seed, plan.total_s / 60, wall_s / 60), "",
             "Plan: %s." % plan.describe(), "",
             "RSS is the service's resident memory; at the start and at the quiet points "
             "between waves it is read after malloc_trim(0) (%s), with the RSS before it and "
             "the heap in use (malloc_stats) beside it. fds: open descriptors (those that are "
             "connections to the simulator in brackets). queue p99: the bucket of "
             "switchboard_actor_queue_seconds holding the interval's 99th percentile. Faults: "
             "simulator drops, expiries, chat 429 and 500 answers, MCP server kills (cumulative). "
             "Errors: error lines in the service's log / client-side errors and failed calls."
             % ("through gdb" if soak.trimmed and not soak.raw_rss else "NOT done: raw RSS"), "",
             "| t (s) | wave | phase | RSS (MB) | RSS before trim / heap in use (MB) "
             "| fds (to sim) | actors | sessions | conns "
             "| mailbox | queue p99 realtime / tools (ms) | calls ended / verified "
             "| lost frames: elsewhere / reconnected | audio dropped "
             "| faults drop/expire/429/500/mcp | errors svc/client |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in soak.rows:
        before = "-"
        if r.get("rss_raw_kb") is not None:
            before = "%.1f / %s" % (r["rss_raw_kb"] / 1024, "%.1f" % (r["heap_kb"] / 1024)
                                    if r.get("heap_kb") is not None else "-")
        lines.append("| %.0f | %d | %s | %.1f | %s | %d (%d) | %d | %d | %d | %d | %s / %s "
                     "| %d / %d | %d / %d | %d | %s | %s |"
                     % (r["t"], r["wave"], r["phase"], r["rss_kb"] / 1024, before, r["fds"],
                        r["fds_sim"],
                        r["actors"], r["sessions"], r["conns"], r["mailbox"], fmt_ms(r["q_rt"]),
                        fmt_ms(r["q_tools"]), r["calls_ended"], r["calls_verified"],
                        r["lost_elsewhere"], r["lost_reconnected"], r["audio_dropped"],
                        r["faults"], r["errors"]))
    lines += ["", "## Load", "",
              "- voice calls (switchboard-bench): %d calls, %d connected, %d failed, %d dropped; "
              "%d frames sent; %d sessions heard upstream.reconnecting (%d events); %d error "
              "events; %d bench runs failed"
              % (v["calls"], v["connected"], v["failed"], v["dropped"], v["sent"],
                 v["reconnected_sessions"], v["reconnects"], v["server_errors"],
                 v["bench_errors"]),
              "- tool storm: %d sessions connected (%d failed), %d turns, %d timed out; tool calls "
              "%d completed, %d failed"
              % (v["storm_connected"], v["storm_failed"], v["storm_turns"], v["storm_timed_out"],
                 v["storm_tools_completed"], v["storm_tools_failed"]),
              "- chat threads: %d answers over %d connections; agent runs: %d completed, %d "
              "steps, over %d connections"
              % (c["chat_answers"], c["chat_connections"], c["agent_runs"], c["agent_steps"],
                 c["agent_connections"]),
              "- MCP server killed %d times (%d times it was still restarting)"
              % (c["mcp_kills"], c["mcp_kill_missed"])]
    if soak.reasons:
        lines.append("- voice failures and drops: " + "; ".join(
            "%d x %s" % (n, r) for r, n in soak.reasons.most_common(8)))
    if soak.client_errors:
        lines.append("- client errors: " + "; ".join(
            "%d x %s" % (n, r) for r, n in soak.client_errors.most_common(8)))
    if soak.warn_events:
        lines.append("- service warnings and errors (log events): " + ", ".join(
            "%s x%d" % (k, n) for k, n in soak.warn_events.most_common(12)))
    for e in soak.error_lines[:5]:
        lines.append("  - `%s`" % e.replace("`", "'"))
    lines += ["", "## Verdict", ""]
    ok = all(o for o, _ in verdict_lines)
    for o, text in verdict_lines:
        lines.append("- %s %s" % ("PASS" if o else "FAIL", text))
    lines += ["", "**%s**" % ("PASS" if ok else "FAIL"), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return ok


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float,
                    default=float(os.environ.get("SOAK_MINUTES") or 30))
    ap.add_argument("--seed", type=int, default=int(os.environ["SOAK_SEED"])
                    if os.environ.get("SOAK_SEED") else None)
    ap.add_argument("--out", default=os.path.join(REPO, "build", "soak"))
    ap.add_argument("--voice", type=int, help="voice sessions (slots that cycle through calls)")
    ap.add_argument("--groups", type=int, help="switchboard-bench processes the slots share")
    ap.add_argument("--storm", type=int, help="--tool-storm sessions")
    ap.add_argument("--chat", type=int, help="chat threads")
    ap.add_argument("--agent", type=int, help="agent run clients")
    ap.add_argument("--faults", type=float, help="simulator faults a minute")
    ap.add_argument("--sample-s", type=float, help="seconds between samples")
    ap.add_argument("--waves", type=int)
    ap.add_argument("--raw-rss", action="store_true",
                    help="do not call malloc_trim(0) in the service before reading its RSS at "
                         "the quiet points")
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    plan = Plan(a)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    for prog in ("switchboard", "switchboard-sim", "switchboard-bench"):
        if not os.access(os.path.join(BIN, prog), os.X_OK):
            log("%s is missing from %s (build first)" % (prog, BIN))
            return 2
    log("%.1f minutes, seed %d: %s" % (a.minutes, seed, plan.describe()))
    stack = Stack(plan, out, seed)
    t0 = time.monotonic()
    soak = None
    try:
        stack.start()
        soak = Soak(plan, stack, seed, out, raw_rss=a.raw_rss)
        asyncio.run(soak.run())
        st, exit_s = stack.stop_service()
        soak.follow_log()
    except (RuntimeError, OSError) as e:
        log("could not run: %s" % e)
        stack.kill_all()
        return 2
    finally:
        stack.kill_all()
    verdict_lines = verdicts(soak, st, exit_s)
    report = os.path.join(out, "report.md")
    ok = write_report(report, plan, soak, seed, verdict_lines, time.monotonic() - t0)
    with open(report) as f:
        sys.stdout.write(f.read())
    log("%s in %.0f s; report in %s, service log in %s" % (
        "PASS" if ok else "FAIL", time.monotonic() - t0, report, stack.svc_log_path))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
