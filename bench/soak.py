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
(SWITCHBOARD_BIN_DIR to change). The clients are in soak_load.py, the checks and the report in
soak_report.py.
"""
import argparse
import asyncio
import collections
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

from soak_load import BENCH_RAMP_S, BENCH_TAIL_S, Load
from soak_report import EXIT_DEADLINE_S, verdicts, write_report

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BIN = os.environ.get("SWITCHBOARD_BIN_DIR", os.path.join(REPO, "build", "bin"))
FAKE_MCP = os.path.join(REPO, "tests", "integration", "fake_mcp.py")
MCP_ALIAS = "soak"
MCP_UP = 'switchboard_mcp_server_up{tenant="default",alias="%s"}' % MCP_ALIAS

CHAT_DELAY_MS = 50               # the simulator's chat model: slow tools
START_TIMEOUT_S = 15.0
STARTUP_S = 5.0                  # of the run's minutes: starting and stopping the processes
SETTLE_POLL_S = 0.5
SETTLE_STABLE_POLLS = 3
END_REASONS = {"client_closed", "idle_timeout", "max_duration", "shutdown", "upstream_unavailable",
               "upstream_rejected_config", "too_slow", "error"}
SESSION_START_RE = re.compile(r"event=session\.start sid=([A-Za-z0-9_-]+)")
SESSION_END_RE = re.compile(r"event=session\.end sid=([A-Za-z0-9_-]+) reason=(\S+).* call=(\S+)")
LEVEL_RE = re.compile(r"level=(warn|error) event=(\S+)")
LISTEN_RE = re.compile(r"listening on http://[^:]+:(\d+)/")


class ServiceDied(Exception):
    pass


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
    return mem_kb(pid)["rss"]


def mem_kb(pid):
    """{"rss", "anon", "file"}: the resident KB of the process, of its anonymous memory (heap,
    arenas, stacks) and of its file mappings (the shared libraries' pages it has touched)."""
    out = {"rss": 0, "anon": 0, "file": 0}
    keys = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = keys.get(line.split(":", 1)[0] + ":")
            if k:
                out[k] = int(line.split()[1])
    return out


def anon_census(pid):
    """{mapping: resident anonymous KB} from /proc/<pid>/smaps: "[heap]" (the main arena),
    "[stack]", the file mappings by path, and anonymous mappings by start address (a thread
    arena or stack keeps its address)."""
    out = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                lo = int(head[0].split("-")[0], 16)
                name = head[5] if len(head) >= 6 else "anon at %x" % lo
            elif head[0] == "Anonymous:" and name is not None:
                kb = int(head[1])
                if kb:
                    out[name] = out.get(name, 0) + kb
    return out


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
            # Every chat client comes from 127.0.0.1: the per-IP limit on chat runs (20 a
            # minute) would answer most messages with rate_limited instead of a run.
            "SWITCHBOARD_CHAT_RUNS_PER_MIN": "1000000",
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
        # A void call prints nothing: malloc_trim's answer is gdb's first value, "$1 = 0|1".
        return re.search(r"^\$\d+ = [01]$", r.stdout, re.M) is not None

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
        self.rows = []            # report rows (dicts)
        self.quiet = []           # quiet-point samples (dicts)
        self.last_metrics = None  # for the interval quantiles
        self.load = Load(plan, stack, self.rng, out, BIN, self.now)
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
        self.census = []          # (t, anon_census()) at the start and the quiet points

    def now(self):
        return time.monotonic() - self.t0

    # ---- samples --------------------------------------------------------------------------------

    def check_alive(self):
        st = self.s.svc.poll()
        if st is not None:
            raise ServiceDied("switchboard exited with status %s at +%.0f s (wave %d, %s)"
                              % (st, self.now(), self.wave + 1, self.phase))

    async def metrics(self):
        self.check_alive()
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
        unchecked = [(sid, r, call) for sid, (r, call) in self.ended.items()
                     if sid not in self.verified]
        for sid, r, call in unchecked:
            problem = await asyncio.to_thread(self.check_record, sid, r, call)
            self.verified.add(sid)  # checked once; a problem is reported once
            if problem is not None and len(self.record_problems) < 1000:
                self.record_problems.append(problem)

    async def sample(self, phase):
        async with self.sampling:  # the sampler's and the quiet phase's samples take turns
            return await self._sample(phase)

    async def _sample(self, phase):
        self.check_alive()
        pid = self.s.svc.pid
        rss_raw = None
        trimmed = None
        if phase in ("start", "quiet") and not self.raw_rss:
            rss_raw = rss_kb(pid)
            self.heap_in_use = None
            trimmed = await asyncio.to_thread(self.s.trim)
            if not trimmed:
                self.trimmed = False
        # Read right after the trim, before the requests below allocate again.
        mem = mem_kb(pid)
        if phase in ("start", "quiet"):
            self.census.append((self.now(), anon_census(pid)))
        m = await self.metrics()
        ss = await self.sim_stats()
        self.follow_log()
        await self.check_records()
        self.check_alive()
        fds, to_sim = fd_census(pid, self.s.sim_port)
        faults = ss.get("faults", {})
        row = {
            "t": self.now(), "wave": self.wave + 1, "phase": phase,
            "rss_kb": mem["rss"], "anon_kb": mem["anon"], "file_kb": mem["file"],
            "rss_raw_kb": rss_raw, "trimmed": trimmed, "fds": fds, "fds_sim": to_sim,
            "heap_kb": self.heap_in_use // 1024 if rss_raw and self.heap_in_use else None,
            "actors": int(m.get("switchboard_actors_live", -1)),
            "sessions": int(m.get("switchboard_sessions_active", -1)),
            "conns": int(m.get("switchboard_connections_open", -1)),
            "mailbox": int(m.get("switchboard_mailbox_depth", -1)),
            "q_rt": interval_p99_ms(m, self.last_metrics, "realtime"),
            "q_tools": interval_p99_ms(m, self.last_metrics, "tools"),
            "calls_ended": len(self.ended), "calls_verified": len(self.verified),
            "lost_elsewhere": self.load.v["lost_elsewhere"],
            "lost_reconnected": self.load.v["lost_reconnected"],
            "audio_dropped": int(m.get("switchboard_audio_dropped_total", 0)),
            "faults": "%d/%d/%d/%d/%d" % (faults.get("drop", 0), faults.get("expire", 0),
                                          faults.get("chat_429", 0), faults.get("chat_500", 0),
                                          self.load.c["mcp_kills"]),
            "errors": "%d/%d" % (sum(v for k, v in self.warn_events.items()
                                     if k.startswith("error")),
                                 sum(self.load.client_errors.values()) + self.load.v["failed"]
                                 + self.load.v["bench_errors"]),
            "sim_open": ss.get("sessions_open", -1),
            "mcp_up": m.get(MCP_UP, 0),
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
                    and m.get(MCP_UP) == 1
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
        log("wave %d of %d at +%.0f s" % (w + 1, self.p.waves, self.now()))
        await self.load.run(start + self.p.active_s)
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
        while (await self.metrics()).get(MCP_UP) != 1:
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
    died = None
    try:
        stack.start()
        soak = Soak(plan, stack, seed, out, raw_rss=a.raw_rss)
        try:
            asyncio.run(soak.run())
        except ServiceDied as e:
            died = str(e)
        if died is None:
            st, exit_s = stack.stop_service()
        else:
            st, exit_s = stack.svc.returncode, 0.0
        soak.follow_log()
    except (RuntimeError, OSError) as e:
        log("could not run: %s" % e)
        return 2
    finally:
        stack.kill_all()
    verdict_lines = verdicts(soak, st, exit_s)
    if died:
        verdict_lines.append((False, "%s; its log: %s" % (died, stack.svc_log_path)))
    report = os.path.join(out, "report.md")
    ok = write_report(report, plan, soak, seed, verdict_lines, time.monotonic() - t0)
    with open(report) as f:
        sys.stdout.write(f.read())
    log("%s in %.0f s; report in %s, service log in %s" % (
        "PASS" if ok else "FAIL", time.monotonic() - t0, report, stack.svc_log_path))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
