#!/usr/bin/python3
"""Shutdown under load (SPEC 3 "Shutdown", 9, 14 "Drain" and "Records"), repeated.

    SWITCHBOARD_BIN=build/bin/switchboard /usr/bin/python3 tests/integration/stress_shutdown.py \
        [--iterations N] [--seed S] [--keep-going] [--max-delay SECONDS]

Each iteration starts switchboard (switchboard-sim in agent mode as its upstream, with slow Chat
Completions so that supervisor runs stay in flight; a fresh SQLite file; a JWT secret) and puts
a mixed load on it:
  - voice sessions on /ws (minted tokens) streaming 20 ms PCM16 frames in real time, taking turns
    ("Is <date> available for an oil change?") that make the voice model call the supervisor,
    whose run calls the booking tools; one session also speaks (loud frames: the sim's VAD);
  - two chat threads on /ws/chat (JWTs) whose messages start supervisor runs with tool calls
    (availability, bookings, customer look-ups);
  - an agent run on /ws/agent (start_agent -> step_update ... -> completion, run after run, some
    looping on tools up to the iteration cap).
At a random moment (seeded RNG) after the load is up it sends SIGTERM and checks:
  1. the service exits with status 0 (not a signal, not a sanitizer's status) within 10 s, and its
     log holds no sanitizer report;
  2. restarted on the same database, GET /api/calls has a record with an endReason for every voice
     session the service admitted (its `session.start` log lines; every session that saw
     session.ready among them).
One line per iteration, then a summary. The first failure stops the run (exit 1) and keeps the
iteration's directory (database, the service's stderr, a core file with its backtrace when the
service died of a signal) under --artifacts; --keep-going runs every iteration and counts them.

Iterations: --iterations or $SHUTDOWN_ITERATIONS (default 20). Seed: --seed or $SHUTDOWN_SEED
(default: random, printed). Iteration i uses seed S+i, so `--seed S+i --iterations 1` replays its
load and its SIGTERM moment (whether a race then bites still depends on the threads' timing).
A sanitizer build fails an iteration by its exit status (ASan/UBSan abort or exit 1, TSan's
halt_on_error exits 66, LeakSanitizer 23) and, should the options let it exit 0, by the report
in its log.
"""
import argparse
import asyncio
import datetime
import glob
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import websockets  # noqa: E402
import websockets.exceptions  # noqa: E402

import harness  # noqa: E402
from harness import RELAXED_ENV, Server, ServerError, Sim, good_jwt  # noqa: E402

EXIT_DEADLINE_S = 10.0  # SPEC 14 "Drain": exit 0 within 10 s
CHAT_DELAY_MS = 250      # each Chat Completions answer of the sim: runs stay in flight
SIM_ARGS = ["--mode", "agent", "--pace", "20", "--chat-delay-ms", str(CHAT_DELAY_MS)]
VOICE_SESSIONS = 3
CHAT_THREADS = 2
FRAME_MS = 20
FRAME_BYTES = 24000 * 2 * FRAME_MS // 1000  # 20 ms of 24 kHz PCM16
MAX_CORES_KEPT = 3  # per run (--keep-going); later crashes keep their backtraces only
END_REASONS = {"client_closed", "idle_timeout", "max_duration", "shutdown", "upstream_unavailable",
               "upstream_rejected_config", "too_slow", "error"}
SANITIZER_RE = re.compile(r"\w+Sanitizer:DEADLYSIGNAL|ERROR: \w+Sanitizer|WARNING: ThreadSanitizer|"
                          r"SUMMARY: \w+Sanitizer|runtime error: ")
SESSION_START_RE = re.compile(r"session\.start\b.*?\bsid\"?[=:]\"?([A-Za-z0-9_-]+)")


def log(*a):
    print(*a, flush=True)


def next_weekday(rng, min_days=3):
    d = datetime.date.today() + datetime.timedelta(days=min_days + rng.randrange(20))
    while d.weekday() >= 5:
        d += datetime.timedelta(days=1)
    return d.isoformat()


def _quiet_frames(n=16):
    """Low noise (the sim's VAD hears silence), a few distinct frames to cycle through."""
    rng = random.Random(1)
    return [bytes(b & 0x07 for b in rng.randbytes(FRAME_BYTES)) for _ in range(n)]


def _loud_frames(n=15):
    """A loud 300 Hz tone: the sim's VAD hears speech."""
    per = FRAME_BYTES // 2
    return [struct.pack("<%dh" % per, *(int(12000 * math.sin(2 * math.pi * 300 * (i * per + k)
                                                             / 24000)) for k in range(per)))
            for i in range(n)]


QUIET = _quiet_frames()
LOUD = _loud_frames()


def user_text(text):
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "user",
                     "content": [{"type": "input_text", "text": text}]}}


def parse(msg):
    if isinstance(msg, str):
        try:
            return json.loads(msg)
        except ValueError:
            return msg
    return msg


class Load:
    """What the clients of one iteration saw."""

    def __init__(self, server, secret, rng, tag):
        self.s = server
        self.secret = secret
        self.rng = rng
        self.tag = tag
        self.ready_sids = []       # voice sessions that saw session.ready
        self.opened_sids = []      # voice sockets that opened (admitted or not)
        self.closes = []           # (what, code, reason) of every socket the server closed
        self.sup_open = {}         # in-flight supervisor work by surface: set of ids
        self.counts = {"voice_turns": 0, "voice_tools": 0, "chat_answers": 0, "chat_tools": 0,
                       "agent_steps": 0, "agent_runs": 0}
        self.up = asyncio.Event()  # every connection of the load is up
        self._up_left = VOICE_SESSIONS + CHAT_THREADS + 1
        self.errors = []

    def _one_up(self):
        self._up_left -= 1
        if self._up_left <= 0:
            self.up.set()

    def in_flight(self):
        return sum(len(v) for v in self.sup_open.values())

    def _closed(self, what, e):
        self.closes.append((what, e.code, e.reason))

    # ---- /ws ------------------------------------------------------------------------------------

    async def voice(self, i):
        key = "voice%d" % i
        self.sup_open[key] = set()
        try:
            tok = await asyncio.to_thread(self.s.mint)
        except (AssertionError, OSError) as e:  # draining already: 503
            self.errors.append("%s mint: %s" % (key, e))
            self._one_up()
            return
        sid = tok["sessionId"]
        try:
            ws = await self.s.voice(sid, tok["token"])
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
            self.errors.append("%s connect: %s" % (key, e))
            self._one_up()
            return
        self.opened_sids.append(sid)
        ready = asyncio.Event()
        done = asyncio.Event()
        counted_up = False

        async def read():
            try:
                async for raw in ws:
                    m = parse(raw)
                    if not isinstance(m, dict):
                        continue
                    t = m.get("type")
                    if t == "session.ready":
                        self.ready_sids.append(sid)
                        ready.set()
                    elif t == "tool.call":
                        self.counts["voice_tools"] += 1
                        if m.get("name") == "getNextResponseFromSupervisor":
                            if m.get("status") == "started":
                                self.sup_open[key].add(m.get("call_id"))
                            else:
                                self.sup_open[key].discard(m.get("call_id"))
                    elif t == "response.done":
                        self.counts["voice_turns"] += 1
                        done.set()
                # 1000 and 1001 end the iteration quietly.
                self.closes.append((key, ws.close_code, ws.close_reason))
            except websockets.exceptions.ConnectionClosed as e:
                self._closed(key, e)
            finally:
                self.sup_open[key].clear()
                ready.set()
                done.set()

        reader = asyncio.ensure_future(read())
        try:
            try:
                await asyncio.wait_for(ready.wait(), 8)
            except asyncio.TimeoutError:
                self.errors.append("%s: no session.ready within 8 s" % key)
            self._one_up()
            counted_up = True
            speaker = i == 0
            frame_i = 0
            turn_at = time.monotonic() + self.rng.uniform(0.0, 0.3)
            waiting = False
            t_next = time.monotonic()
            while not reader.done():
                if not waiting and time.monotonic() >= turn_at:
                    text = "Is %s available for %s?" % (
                        next_weekday(self.rng),
                        self.rng.choice(["an oil change", "brake repair", "a tire rotation"]))
                    done.clear()
                    await ws.send(json.dumps(user_text(text)))
                    await ws.send('{"type":"response.create"}')
                    waiting = True
                if waiting and done.is_set():
                    waiting = False
                    turn_at = time.monotonic() + self.rng.uniform(0.0, 0.4)
                # Real-time audio; the speaker says something for 300 ms every 2 s.
                k = frame_i % 100
                await ws.send(LOUD[k] if speaker and k < len(LOUD) else QUIET[k % len(QUIET)])
                frame_i += 1
                t_next += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, t_next - time.monotonic()))
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            if not counted_up:
                self._one_up()
            try:
                await asyncio.wait_for(reader, 12)
            except asyncio.TimeoutError:
                self.errors.append("%s: socket still open 12 s after the test stopped sending"
                                   % key)
                reader.cancel()
            await harness.close_quietly(ws)

    # ---- /ws/chat -------------------------------------------------------------------------------

    async def chat(self, i):
        key = "chat%d" % i
        self.sup_open[key] = set()
        user = "stress_user_%d" % i
        thread = "stress_%s_t%d" % (self.tag, i)
        try:
            ws = await self.s.ws("/ws/chat", threadId=thread, userId=user,
                                 token=good_jwt(self.secret, sub=user))
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
            self.errors.append("%s connect: %s" % (key, e))
            self._one_up()
            return
        up = False
        try:
            first = parse(await asyncio.wait_for(ws.recv(), 8))
            if not (isinstance(first, dict) and first.get("type") == "history"):
                self.errors.append("%s: first event %r" % (key, first))
            self._one_up()
            up = True
            n = 0
            while True:
                n += 1
                date = next_weekday(self.rng)
                text = self.rng.choice([
                    "Is %s available for an oil change?" % date,
                    "Please book a brake repair on %s at %02d:%s" % (
                        date, self.rng.randrange(9, 16), self.rng.choice(["00", "30"])),
                    "Can you look up the customer 555-01%02d?" % self.rng.randrange(100),
                    "What are your hours?"])
                await ws.send(json.dumps({"type": "message", "text": text,
                                          "clientMessageId": "c%d" % n}))
                self.sup_open[key].add(n)
                while True:
                    m = parse(await ws.recv())
                    if not isinstance(m, dict):
                        continue
                    if m.get("type") == "tool.call":
                        self.counts["chat_tools"] += 1
                    if m.get("type") == "message" and m.get("role") == "assistant":
                        self.counts["chat_answers"] += 1
                        self.sup_open[key].discard(n)
                        break
        except websockets.exceptions.ConnectionClosed as e:
            self._closed(key, e)
        except asyncio.TimeoutError:
            self.errors.append("%s: no history within 8 s" % key)
        finally:
            self.sup_open[key].clear()
            if not up:
                self._one_up()
            await harness.close_quietly(ws)

    # ---- /ws/agent ------------------------------------------------------------------------------

    async def agent(self):
        key = "agent"
        self.sup_open[key] = set()
        try:
            ws = await self.s.ws("/ws/agent")
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
            self.errors.append("agent connect: %s" % e)
            self._one_up()
            return
        up = False
        try:
            await ws.send(json.dumps({"type": "authenticate",
                                      "token": good_jwt(self.secret, sub="stress_agent")}))
            m = parse(await asyncio.wait_for(ws.recv(), 8))
            if m != {"type": "authentication", "status": "success"}:
                self.errors.append("agent: authentication answered %r" % (m,))
            self._one_up()
            up = True
            n = 0
            while True:
                n += 1
                run = "run%d" % n
                task = self.rng.choice([
                    "Check whether %s is available for an oil change" % next_weekday(self.rng),
                    "keep calling tools: is %s available?" % next_weekday(self.rng),
                    "Look up the customer 555-0100"])
                await ws.send(json.dumps({"type": "start_agent", "runId": run, "task": task}))
                self.sup_open[key].add(run)
                while True:
                    m = parse(await ws.recv())
                    if not isinstance(m, dict):
                        continue
                    if m.get("type") == "step_update":
                        self.counts["agent_steps"] += 1
                    elif m.get("type") == "question" and m.get("runId") == run:
                        await ws.send(json.dumps({"type": "answer", "runId": run,
                                                  "answer": "yes, go on"}))
                    elif m.get("type") == "completion" and m.get("runId") == run:
                        self.counts["agent_runs"] += 1
                        self.sup_open[key].discard(run)
                        break
        except websockets.exceptions.ConnectionClosed as e:
            self._closed(key, e)
        except asyncio.TimeoutError:
            self.errors.append("agent: no authentication answer within 8 s")
        finally:
            self.sup_open[key].clear()
            if not up:
                self._one_up()
            await harness.close_quietly(ws)


# ---- Diagnosis ----------------------------------------------------------------------------------

def signal_name(status):
    if status is not None and status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            return "signal %d" % -status
    return None


def backtrace(binary, core, out_path):
    """gdb's backtrace of the crashing thread (then every thread) from a core file, written to
    out_path; returns the crashing thread's first frames."""
    if not shutil.which("gdb"):
        return ["(gdb not installed: no backtrace)"]
    try:
        r = subprocess.run(["gdb", "-batch", "-nx", "-ex", "echo @@bt\\n", "-ex", "bt 25",
                            "-ex", "echo @@end\\n",
                            # The actor a worker was running, when the crash is in one.
                            "-ex", "frame function actor_run", "-ex", "echo @@actor ",
                            "-ex", "output a->type->name", "-ex", "echo \\n",
                            "-ex", "info threads",
                            "-ex", "thread apply all bt 25", binary, core],
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return ["(gdb timed out)"]
    with open(out_path, "w") as f:
        f.write(r.stdout + r.stderr)
    crashing = r.stdout.partition("@@bt\n")[2].partition("@@end\n")[0]
    frames = [ln for ln in crashing.splitlines() if re.match(r"#\d+ ", ln)]
    m = re.search(r'^@@actor ?(0x[0-9a-f]+ )?"([^"]+)"', r.stdout, re.M)
    if m:
        frames.append("(running actor of type \"%s\")" % m.group(2))
    return frames


def signature(frames):
    """'f0 <- f1 <- f2': the innermost functions of a backtrace (ck/libc inlines skipped)."""
    names = []
    actor = ""
    for ln in frames:
        if ln.startswith("(running actor"):
            actor = " " + ln
        m = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?([A-Za-z_][\w.]*)", ln)
        if m and not m.group(1).startswith(("ck_pr_", "__GI_", "??")) \
                and (not names or names[-1] != m.group(1)):  # an inlined frame repeats
            names.append(m.group(1))
    return " <- ".join(names[:3]) + actor


def attach_backtrace(pid, out_path):
    """Threads of a live (hung) process, by attaching gdb; best effort."""
    if not shutil.which("gdb"):
        return
    try:
        r = subprocess.run(["gdb", "-batch", "-nx", "-p", str(pid), "-ex",
                            "thread apply all bt 25"], capture_output=True, text=True,
                           timeout=60)
        with open(out_path, "w") as f:
            f.write(r.stdout + r.stderr)
    except (subprocess.TimeoutExpired, OSError):
        pass


def report_signature(rep):
    """What a sanitizer report says, and where: its headline and the innermost functions."""
    head = ""
    for ln in rep.splitlines():
        m = re.search(r"(runtime error: .*|(?:ERROR|WARNING): \w+Sanitizer: [^(]*)", ln)
        if m:
            head = re.sub(r"\s+on address.*|\s*\(pid=\d+\)", "", m.group(1)).strip()
            break
    frames = [ln.strip() for ln in rep.splitlines()
              if re.match(r"\s*#\d+ ", ln) and "libsanitizer" not in ln]
    return "%s in %s" % (head, signature(frames))


def sanitizer_report(text):
    m = SANITIZER_RE.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 3000]


# ---- One iteration ------------------------------------------------------------------------------

class IterationFailed(Exception):
    pass


class Iteration:
    cores_kept = 0

    def __init__(self, n, seed, sim, args, run_dir):
        self.n = n
        self.seed = seed
        self.rng = random.Random(seed)
        self.sim = sim
        self.args = args
        self.dir = os.path.join(run_dir, "iter-%04d-seed-%d" % (n, seed))
        os.makedirs(self.dir, exist_ok=True)
        self.db = os.path.join(self.dir, "var", "switchboard.db")
        self.secret = "stress-%016x" % self.rng.getrandbits(64)
        self.servers = []
        self.kept = set()
        self.notes = []
        self.signature = None  # innermost functions of a crash, from its core

    def env(self):
        env = dict(RELAXED_ENV)
        env.update(self.sim.env())
        env.update({"SWITCHBOARD_DB": self.db, "SWITCHBOARD_JWT_SECRET": self.secret,
                    "SWITCHBOARD_API_SECRET": None})
        return env

    def start_server(self, name):
        s = Server(self.env(), name=name)
        self.servers.append(s)
        return s.start()

    def keep(self, s, label):
        """Copies what a dead or failed server left (stderr, core, backtrace) into self.dir."""
        if s.tmpdir is None or id(s) in self.kept:
            return
        self.kept.add(id(s))
        shutil.copy(s.stderr_path, os.path.join(self.dir, "%s.stderr.log" % label))
        for core in glob.glob(os.path.join(s.tmpdir, "core*")):
            dst = os.path.join(self.dir, "%s.%s" % (label, os.path.basename(core)))
            shutil.move(core, dst)
            self.notes.append("core file %s" % dst)
            frames = backtrace(harness.binary_path(), dst, dst + ".gdb.txt")
            if self.signature is None:
                self.signature = signature(frames)
            self.notes.append("backtrace of the crashing thread (all threads in %s.gdb.txt):\n%s"
                              % (dst, "\n".join(frames)))
            Iteration.cores_kept += 1
            if Iteration.cores_kept > MAX_CORES_KEPT:  # tens of MB each: the backtrace will do
                os.unlink(dst)
                self.notes.append("(core file deleted: %d kept already)" % MAX_CORES_KEPT)

    def cleanup(self, ok):
        for i, s in enumerate(self.servers):
            if s.running():
                s.kill()
            s._close_files()
            if not ok:
                self.keep(s, "first" if i == 0 else "restarted")
            if ok or s.tmpdir is None:
                s.cleanup()
            else:
                shutil.rmtree(s.tmpdir, ignore_errors=True)
        if ok:
            shutil.rmtree(self.dir, ignore_errors=True)

    async def run(self):
        s = self.start_server("switchboard")
        load = Load(s, self.secret, self.rng, "i%d_%d" % (self.n, self.seed))
        tasks = [asyncio.ensure_future(load.voice(i)) for i in range(VOICE_SESSIONS)]
        tasks += [asyncio.ensure_future(load.chat(i)) for i in range(CHAT_THREADS)]
        tasks.append(asyncio.ensure_future(load.agent()))
        try:
            await asyncio.wait_for(load.up.wait(), 15)
        except asyncio.TimeoutError:
            raise IterationFailed("the load did not come up within 15 s: %s" % load.errors)
        delay = self.rng.uniform(0.0, self.args.max_delay)
        await asyncio.sleep(delay)
        in_flight = load.in_flight()
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        try:
            status = await asyncio.to_thread(s.proc.wait, self.args.exit_timeout)
        except subprocess.TimeoutExpired:
            attach_backtrace(s.proc.pid, os.path.join(self.dir, "hung.gdb.txt"))
            s.proc.kill()
            s.proc.wait(5)
            self.keep(s, "first")
            raise IterationFailed("still running %.0f s after SIGTERM (threads in %s)"
                                  % (self.args.exit_timeout,
                                     os.path.join(self.dir, "hung.gdb.txt")))
        exit_s = time.monotonic() - t0
        harness._live_processes.discard(s.proc)
        s._close_files()
        # The clients end once the server has closed their sockets (or died).
        done, pending = await asyncio.wait(tasks, timeout=15)
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                load.errors.append("client task: %r" % (t.exception(),))
        text = s.stderr()
        summary = ("voice %d/%d ready, sup in flight %d, tools v%d c%d a%d, SIGTERM at +%.2fs"
                   % (len(load.ready_sids), VOICE_SESSIONS, in_flight, load.counts["voice_tools"],
                      load.counts["chat_tools"], load.counts["agent_steps"], delay))
        rep = sanitizer_report(text)
        if rep:
            self.signature = report_signature(rep)
        if status != 0:
            self.keep(s, "first")
            what = signal_name(status) or "status %d" % status
            raise IterationFailed("exit %s %.2fs after SIGTERM (%s)\n%s"
                                  % (what, exit_s, summary,
                                     "--- sanitizer report ---\n" + rep if rep else
                                     "--- stderr tail ---\n" + text[-2500:]))
        if rep:
            self.keep(s, "first")
            raise IterationFailed("exit 0 but the log holds a sanitizer report:\n%s" % rep)
        if exit_s > EXIT_DEADLINE_S:
            self.keep(s, "first")
            raise IterationFailed("exit 0 after %.1f s, over the %.0f s of SPEC 14"
                                  % (exit_s, EXIT_DEADLINE_S))
        admitted = set(SESSION_START_RE.findall(text))
        unlogged = set(load.ready_sids) - admitted
        if unlogged:
            self.keep(s, "first")
            raise IterationFailed("sessions saw session.ready without a session.start log line "
                                  "(log format changed?): %s" % sorted(unlogged))
        # Restart on the same database: every admitted session has a finished record.
        s2 = self.start_server("switchboard-restarted")
        r = await s2.arequest("GET", "/api/calls?limit=100")
        if r.status != 200:
            self.keep(s, "first")
            self.keep(s2, "restarted")
            raise IterationFailed("GET /api/calls after the restart: %r" % (r,))
        calls = {c["sessionId"]: c for c in r.json()["calls"]}
        bad = []
        for sid in sorted(admitted):
            c = calls.get(sid)
            if c is None:
                bad.append("%s: no record" % sid)
            elif c.get("endReason") not in END_REASONS or not c.get("endedAt"):
                bad.append("%s: endReason %r endedAt %r" % (sid, c.get("endReason"),
                                                             c.get("endedAt")))
        if bad:
            self.keep(s, "first")
            self.keep(s2, "restarted")
            raise IterationFailed("call records after the restart (admitted %d): %s"
                                  % (len(admitted), "; ".join(bad)))
        s2.signal(signal.SIGTERM)
        try:
            st2 = await asyncio.to_thread(s2.proc.wait, self.args.exit_timeout)
        except subprocess.TimeoutExpired:
            self.keep(s2, "restarted")
            raise IterationFailed("the restarted (idle) service did not exit on SIGTERM")
        harness._live_processes.discard(s2.proc)
        s2._close_files()
        if st2 != 0 or sanitizer_report(s2.stderr()):
            self.keep(s2, "restarted")
            raise IterationFailed("the restarted (idle) service exited with %s%s"
                                  % (signal_name(st2) or st2,
                                     "\n" + (sanitizer_report(s2.stderr()) or "")))
        reasons = sorted({calls[sid]["endReason"] for sid in admitted})
        closes = {}
        for _, code, _ in load.closes:
            closes[code] = closes.get(code, 0) + 1
        return ("exit 0 in %.2fs, %s, records %d/%d (%s), closes %s%s"
                % (exit_s, summary, len(admitted), len(admitted), ",".join(reasons) or "-",
                   " ".join("%sx%d" % kv for kv in sorted(closes.items())) or "-",
                   ("; client notes: %s" % "; ".join(load.errors[:3])) if load.errors else ""))


# ---- Main ---------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int,
                    default=int(os.environ.get("SHUTDOWN_ITERATIONS", "20")))
    ap.add_argument("--seed", type=int, default=int(os.environ["SHUTDOWN_SEED"])
                    if os.environ.get("SHUTDOWN_SEED") else None)
    ap.add_argument("--max-delay", type=float, default=2.0,
                    help="SIGTERM comes 0..this many seconds after the load is up (default 2)")
    ap.add_argument("--exit-timeout", type=float, default=EXIT_DEADLINE_S,
                    help="seconds to wait for the exit after SIGTERM (default 10, SPEC 14)")
    ap.add_argument("--keep-going", action="store_true",
                    help="run every iteration and count the failures instead of stopping")
    ap.add_argument("--artifacts", default=os.path.join(harness.REPO, "build", "test-artifacts",
                                                        "stress-shutdown"))
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)

    binary = harness.binary_path()
    if not os.access(binary, os.X_OK) or not os.access(harness.sim_path(), os.X_OK):
        log("stress_shutdown: %s or %s is not an executable file (build first)"
            % (binary, harness.sim_path()))
        return 2
    run_dir = os.path.join(os.path.abspath(args.artifacts), "seed-%d" % seed)
    os.makedirs(run_dir, exist_ok=True)
    # Core files of a crashing service land in its working directory (core_pattern permitting).
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (ValueError, OSError):
        pass
    try:
        pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    except OSError:
        pattern = "?"
    os.chdir(run_dir)  # anything else that dumps core does it here, not in the tree

    log("stress_shutdown: %d iterations, seed %d, binary %s, max delay %.1fs, core_pattern %r"
        % (args.iterations, seed, binary, args.max_delay, pattern))
    sim = Sim(*SIM_ARGS).start()
    harness._shared_sim = sim  # the harness's servers default to this upstream
    failures = []
    t_start = time.monotonic()
    try:
        for i in range(args.iterations):
            it_seed = seed + i
            it = Iteration(i, it_seed, sim, args, run_dir)
            t0 = time.monotonic()
            ok = False
            try:
                if sim.proc.poll() is not None:
                    raise IterationFailed("switchboard-sim exited (%s); its log: %s"
                                          % (sim.proc.returncode, sim.log.name))
                line = asyncio.run(it.run())
                ok = True
                log("ok   %4d/%d seed %d %.1fs: %s" % (i + 1, args.iterations, it_seed,
                                                      time.monotonic() - t0, line))
            except (IterationFailed, ServerError, AssertionError) as e:
                log("FAIL %4d/%d seed %d %.1fs: %s" % (i + 1, args.iterations, it_seed,
                                                      time.monotonic() - t0, e))
                it.cleanup(False)
                kind = re.sub(r" [\d.]+s after.*| \(.*", "", str(e).splitlines()[0])
                if it.signature:
                    kind += ": " + it.signature
                failures.append((i, it_seed, kind))
                for note in it.notes:
                    log(note)
                log("kept in %s (replay: --seed %d --iterations 1)" % (it.dir, it_seed))
                if not args.keep_going:
                    break
            finally:
                if ok:
                    it.cleanup(True)
    finally:
        sim.stop()
        harness._kill_leftovers()
    n_run = (failures[-1][0] + 1) if failures and not args.keep_going else args.iterations
    log("stress_shutdown: %d of %d iterations failed in %.0fs (seed %d)"
        % (len(failures), n_run, time.monotonic() - t_start, seed))
    kinds = {}
    for _, _, k in failures:
        kinds[k] = kinds.get(k, 0) + 1
    for k, c in sorted(kinds.items(), key=lambda kv: -kv[1]):
        log("  %3d x %s" % (c, k))
    if not failures:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
