"""The clients of the soak (bench/soak.py): voice calls and the tool storm through
switchboard-bench processes, chat threads on /ws/chat and agent runs on /ws/agent over
WebSockets (Debian's python3-websockets), and the MCP server's killer. Their figures are kept in
counters that the report reads: v (voice and storm, from each bench's JSON), reasons (voice
failures and drops), c (chat answers, agent runs, connections, MCP kills), client_errors.
"""
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time

import websockets
import websockets.exceptions

ANSWER_TIMEOUT_S = 60.0  # a chat answer or an agent run: tool loop, retries, MCP restart
BENCH_RAMP_S = 2.0
BENCH_TAIL_S = 4.0       # a bench process's grace for echoes and its closes
BENCH_EXTRA_S = 60.0     # how long after the load a bench process may still run


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(secret, sub, ttl_s=7200):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + ttl_s}).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64url(sig))


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


def weekday_text(rng):
    return rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])


async def close_quietly(ws):
    try:
        await asyncio.wait_for(ws.close(), 3)
    except Exception:
        pass


class Load:
    """One soak's clients. plan and stack as in soak.py; now() gives the run's clock."""

    def __init__(self, plan, stack, rng, out, bin_dir, now):
        self.p = plan
        self.s = stack
        self.rng = rng
        self.out = out
        self.bin = bin_dir
        self.now = now
        self.active_end = 0.0
        self.v = collections.Counter()
        self.reasons = collections.Counter()
        self.c = collections.Counter()
        self.client_errors = collections.Counter()
        self.bench_seq = 0
        self.bench_failures_path = os.path.join(out, "bench-failures.log")
        open(self.bench_failures_path, "w").close()

    async def run(self, active_end):
        """One wave's load, until active_end (monotonic seconds) and the bench processes' end."""
        self.active_end = active_end
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
                                                                  - time.monotonic())
                                           + BENCH_EXTRA_S)
        for t in clients + list(pending):
            t.cancel()
        await asyncio.gather(*clients, *pending, return_exceptions=True)
        for t in done:
            if t.exception() is not None:
                self.client_errors["driver: %r" % (t.exception(),)] += 1
        if pending:
            self.client_errors["driver: %d bench runs still going %.0f s after the load"
                               % (len(pending), BENCH_EXTRA_S)] += 1

    # ---- voice and storm: switchboard-bench ----------------------------------------------------

    async def bench(self, args, what):
        self.bench_seq += 1
        jpath = os.path.join(self.out, "bench-%d.json" % self.bench_seq)
        cmd = [os.path.join(self.bin, "switchboard-bench"), "--url", self.s.base, "--json", jpath,
               "--ramp", str(BENCH_RAMP_S)] + args
        p = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT)
        try:
            text = (await p.communicate())[0].decode("utf-8", "replace")
        except asyncio.CancelledError:
            p.kill()  # the run was interrupted or the wave gave up on it
            raise
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
