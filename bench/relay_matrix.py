#!/usr/bin/python3
"""Voice relay load matrix: switchboard-bench through switchboard, --direct, and the peers.

For each session count it starts switchboard-sim (echo mode) and switchboard on free ports, runs
switchboard-bench through the service with --pid, then runs it again with --direct against a fresh
sim (the floor), then through each peer relay of ../shared/peers (PEERS_DIR) that can be built
here: the Go relay when Go and gorilla/websocket are installed, the Node relay when its packages
install (npm ci). Every process's CPU is read from /proc, so the table shows what each of them
did with the machine's cores during the run, and the share of the machine's time its VM host
took away (steal, from /proc/stat). When perf is usable, `perf stat -e
raw_syscalls:sys_enter,context-switches -p PID` counts the relay's system calls and context
switches over the bench run, divided by the round trips (frames echoed back to the bench).
Prints markdown tables.

    bench/relay_matrix.py [--sessions 50,200,500,1000] [--duration 10] [--json FILE]
                          [--peers go,node | --peers none]

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR).
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request

BIN = os.environ.get("SWITCHBOARD_BIN_DIR", "build/bin")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_DIR = os.environ.get("PEERS_DIR", os.path.join(os.path.dirname(REPO), "shared", "peers"))
PEER_OUT = os.path.join(REPO, "build", "peers")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_ticks():
    """(steal, total) jiffies of all CPUs: a VM's host can take CPU time away (steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[7], sum(v[:8])


def wait_http(url, deadline_s=10):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def wait_port(port, deadline_s=10):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def start_sim(*extra):
    """switchboard-sim in echo mode on a free port, with extra flags; returns (process, port)."""
    port = free_port()
    p = subprocess.Popen([f"{BIN}/switchboard-sim", "--port", str(port), "--mode", "echo",
                          "--quiet", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def start_service(sim_port, sessions, extra_env=None):
    """switchboard on a free port with the sim as its upstream and limits that fit `sessions`;
    returns (process, port)."""
    port = free_port()
    env = dict(os.environ)
    env.update({
        "OPENAI_API_KEY": "sk-bench",
        "SWITCHBOARD_REALTIME_URL": f"ws://127.0.0.1:{sim_port}/v1/realtime",
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_HOST": "127.0.0.1",
        "SWITCHBOARD_LOG_LEVEL": "warn",
        "SWITCHBOARD_MAX_SESSIONS": str(sessions + 10),
        "SWITCHBOARD_SESSIONS_PER_IP": str(sessions + 10),
        "SWITCHBOARD_CONNECTIONS_PER_IP": str(sessions * 2 + 100),
        "SWITCHBOARD_SESSIONS_PER_MIN": str(sessions * 2 + 100),
        "SWITCHBOARD_MAX_CONNECTIONS": str(max(4096, sessions * 2 + 100)),
    })
    env.update(extra_env or {})
    p = subprocess.Popen([f"{BIN}/switchboard"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/readyz")
    return p, port


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_bench(args, sessions, duration):
    st0, tot0 = machine_ticks()
    with tempfile.NamedTemporaryFile(suffix=".json") as jf:
        cmd = [f"{BIN}/switchboard-bench", "--sessions", str(sessions), "--duration",
               str(duration), "--json", jf.name] + args
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=duration + 120)
        if r.returncode != 0:
            raise RuntimeError(f"bench exit {r.returncode}: {r.stdout[-400:]}")
        res = json.load(open(jf.name))
    st1, tot1 = machine_ticks()
    res["steal_pct"] = 100.0 * (st1 - st0) / max(1, tot1 - tot0)
    return res


# ---- perf stat ----------------------------------------------------------------------------------

PERF_EVENTS = "raw_syscalls:sys_enter,context-switches"


def perf_usable():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", PERF_EVENTS, "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return r.returncode == 0 and "raw_syscalls" in r.stderr and "<not" not in r.stderr


class PerfStat:
    """perf stat attached to one process for the life of a `with` block."""

    def __init__(self, pid):
        self.pid = pid
        self.counts = {}

    def __enter__(self):
        self.out = tempfile.NamedTemporaryFile(suffix=".perf", delete=False)
        self.p = subprocess.Popen(["perf", "stat", "-x,", "-e", PERF_EVENTS, "-p", str(self.pid),
                                   "-o", self.out.name], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(0.2)  # attached before the load starts
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        with open(self.out.name) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[0].isdigit():
                    self.counts[parts[2]] = int(parts[0])
        os.unlink(self.out.name)
        return False


def add_perf(res, counts):
    rt = max(1, res["frames"]["received"])
    res["perf"] = {"syscalls": counts.get("raw_syscalls:sys_enter"),
                   "context_switches": counts.get("context-switches"),
                   "round_trips": res["frames"]["received"]}
    if counts.get("raw_syscalls:sys_enter") is not None:
        res["perf"]["syscalls_per_round_trip"] = counts["raw_syscalls:sys_enter"] / rt
    if counts.get("context-switches") is not None:
        res["perf"]["context_switches_per_round_trip"] = counts["context-switches"] / rt


# ---- Peers (../shared/peers) --------------------------------------------------------------------

def _missing(src, tool, hint):
    """Why a peer cannot be built here, or None."""
    if not os.path.isdir(src):
        return f"{src} not present"
    if not shutil.which(tool):
        return hint
    return None


def _build_go():
    src, out = os.path.join(PEERS_DIR, "go-relay"), os.path.join(PEER_OUT, "go-relay")
    why = _missing(src, "go", "Go not installed (apt-get install golang-go "
                              "golang-github-gorilla-websocket-dev)")
    if why:
        return None, why
    os.makedirs(PEER_OUT, exist_ok=True)
    r = subprocess.run(["bash", os.path.join(src, "build.sh"), out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return ([out], None) if r.returncode == 0 else (None, "build failed: " + r.stdout[-200:])


def _build_node():
    src, dst = os.path.join(PEERS_DIR, "node-relay"), os.path.join(PEER_OUT, "node-relay")
    why = _missing(src, "node", "Node.js not installed")
    if why:
        return None, why
    if not os.path.isdir(os.path.join(dst, "node_modules")):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=dst,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            shutil.rmtree(dst, ignore_errors=True)
            return None, "npm ci failed: " + r.stdout.strip()[-200:]
    return ["node", os.path.join(dst, "server.mjs")], None


PEER_BUILDERS = {"go": _build_go, "node": _build_node}


def build_peers(wanted):
    """{name: (argv, why-not)} for the peers asked for: argv when it could be built here."""
    return {name: PEER_BUILDERS[name]() for name in wanted if name in PEER_BUILDERS}


def start_peer(argv, sim_port, sessions):
    port = free_port()
    env = dict(os.environ)
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "OPENAI_API_KEY": "sk-bench",
                "SWITCHBOARD_REALTIME_URL": f"ws://127.0.0.1:{sim_port}/v1/realtime",
                "PEER_MAX_SESSIONS": str(sessions + 10)})
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def one(sessions, duration, direct, bench_args=(), service_args=(), service_env=None,
        peer=None, perf=False):
    """One bench run on a fresh simulator (and service, or peer relay argv): bench_args go to
    every kind of run, service_args to the bench of a service run, service_env to the service.
    perf: count the relay's system calls and context switches."""
    sim, sim_port = start_sim()
    svc = None
    try:
        if direct:
            sim_cpu0 = cpu_s(sim.pid)
            res = run_bench([*bench_args, "--direct", f"ws://127.0.0.1:{sim_port}/v1/realtime",
                             "--pid", str(sim.pid)], sessions, duration)
            res["sim_cpu_s"] = cpu_s(sim.pid) - sim_cpu0
            return res
        if peer:
            svc, port = start_peer(peer, sim_port, sessions)
            args = [*bench_args, "--url", f"http://127.0.0.1:{port}", "--pid", str(svc.pid)]
        else:
            svc, port = start_service(sim_port, sessions, service_env)
            args = [*bench_args, *service_args, "--url", f"http://127.0.0.1:{port}",
                    "--pid", str(svc.pid)]
        sim_cpu0 = cpu_s(sim.pid)
        if perf:
            with PerfStat(svc.pid) as ps:
                res = run_bench(args, sessions, duration)
            add_perf(res, ps.counts)
        else:
            res = run_bench(args, sessions, duration)
        res["sim_cpu_s"] = cpu_s(sim.pid) - sim_cpu0
        return res
    finally:
        if svc:
            stop(svc)
        stop(sim)


def wall_s(res):
    return res["bench"]["wall_s"]


def bench_threads(sessions):
    """Client threads for the bench: one per 250 sessions, at most the machine's cores, so
    that the measurement is not the bottleneck at large N."""
    return max(1, min(os.cpu_count() or 1, (sessions + 249) // 250))


def fmt_perf(r):
    p = r.get("perf") or {}
    if "syscalls_per_round_trip" not in p:
        return "n/a"
    return f'{p["syscalls_per_round_trip"]:.2f} / {p["context_switches_per_round_trip"]:.2f}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", default="50,200,500,1000")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--json", help="write every result to this file")
    ap.add_argument("--peers", default="go,node",
                    help="peer relays to run side by side (go, node; none for neither)")
    a = ap.parse_args()
    counts = [int(x) for x in a.sessions.split(",")]
    perf = perf_usable()
    wanted = [] if a.peers == "none" else [x for x in a.peers.split(",") if x]
    peers = build_peers(wanted)
    rows = []
    for n in counts:
        ba = ["--threads", str(bench_threads(n))]
        svc = one(n, a.duration, direct=False, bench_args=ba, perf=perf)
        direct = one(n, a.duration, direct=True, bench_args=ba)
        peer_res = {}
        for name, (argv, _) in peers.items():
            if argv:
                try:
                    peer_res[name] = one(n, a.duration, direct=False, bench_args=ba, peer=argv,
                                         perf=perf)
                except Exception as e:  # a peer that cannot take n sessions is a result
                    peer_res[name] = {"error": str(e)[-300:]}
        rows.append((n, svc, direct, peer_res))
        print(f"# {n} sessions done", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"sessions": n, "service": s, "direct": d, "peers": pr}
                       for n, s, d, pr in rows], f, indent=1)

    def lat(r):
        l = r["latency_ms"]
        return f'{l["p50"]:.2f} / {l["p99"]:.2f} / {l["p99_9"]:.2f} / {l["max"]:.1f}'

    print("| sessions | through switchboard p50 / p99 / p99.9 / max (ms) | --direct (floor) "
          "| added p50 / p99 (ms) | lost frames | service CPU-s per session-min | service RSS "
          "base / per session | syscalls / context switches per round trip "
          "| CPU, % of one core: service / sim / bench (direct: sim / bench) "
          "| bench send lag p99 (ms) | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, s, d, _ in rows:
        sv = s["service"]
        w, wd = wall_s(s), wall_s(d)
        svc_pct = 100 * sv["cpu_s"] / w
        sim_pct = 100 * s["sim_cpu_s"] / w
        bench_pct = 100 * s["bench"]["cpu_s"] / w
        dsim_pct = 100 * d["sim_cpu_s"] / wd
        dbench_pct = 100 * d["bench"]["cpu_s"] / wd
        added50 = s["latency_ms"]["p50"] - d["latency_ms"]["p50"]
        added99 = s["latency_ms"]["p99"] - d["latency_ms"]["p99"]
        print(f'| {n} ({s["sessions_connected"]} connected) | {lat(s)} | {lat(d)} '
              f'| {added50:+.2f} / {added99:+.2f} | {s["frames"]["lost"]} of {s["frames"]["sent"]} '
              f'(direct {d["frames"]["lost"]}) | {sv["cpu_s_per_session_minute"]:.3f} '
              f'| {sv["rss_before_kb"] / 1024:.1f} MB / {sv["rss_per_session_kb"]:.1f} KB '
              f'| {fmt_perf(s)} '
              f'| {svc_pct:.0f} / {sim_pct:.0f} / {bench_pct:.0f} ({dsim_pct:.0f} / {dbench_pct:.0f}) '
              f'| {s["send_lag_ms"]["p99"]:.2f} ({d["send_lag_ms"]["p99"]:.2f}) '
              f'| {s["steal_pct"]:.0f} % ({d["steal_pct"]:.0f} %) |')
    if not perf:
        print("\nperf stat is not usable here (perf missing, or tracepoints not readable): no "
              "system call counts.")

    print()
    skipped = [f"{name}: {why}" for name, (argv, why) in peers.items() if not argv]
    if not wanted:
        print("Peers not run (--peers none).")
        return
    if skipped:
        print("Peers skipped: " + "; ".join(skipped) + ".")
        print()
    if not any(argv for argv, _ in peers.values()):
        return
    names = [name for name, (argv, _) in peers.items() if argv]
    print("Side by side, same run (each relay on a fresh simulator; CPU-s per session-minute, "
          "p99 latency, lost frames, syscalls / context switches per round trip; the ratio is "
          "switchboard's CPU over the peer's):")
    print()
    print("| sessions | switchboard | " + " | ".join(f"{x} relay" for x in names) + " |")
    print("|---|---|" + "---|" * len(names))

    def cell(r):
        if "error" in r:
            return "failed: " + r["error"][-80:].replace("|", "/")
        sv = r["service"]
        failed = r["sessions_failed"] + r["sessions_not_started"]
        f = f" ({failed} of {r['sessions']} failed)" if failed else ""
        return (f'{sv["cpu_s_per_session_minute"]:.3f} CPU-s, p99 {r["latency_ms"]["p99"]:.2f} ms, '
                f'lost {r["frames"]["lost"]}, {fmt_perf(r)}{f}')

    for n, s, _, pr in rows:
        cells = []
        for name in names:
            r = pr.get(name, {"error": "not run"})
            c = cell(r)
            if "error" not in r and r["service"]["cpu_s_per_session_minute"] > 0:
                c += " (ratio %.2f×)" % (s["service"]["cpu_s_per_session_minute"]
                                         / r["service"]["cpu_s_per_session_minute"])
            cells.append(c)
        print(f"| {n} | {cell(s)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
