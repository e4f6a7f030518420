#!/usr/bin/python3
"""Voice relay load matrix: switchboard-bench through switchboard and --direct, per session count.

For each session count it starts switchboard-sim (echo mode) and switchboard on free ports, runs
switchboard-bench through the service with --pid, then runs it again with --direct against a fresh
sim (the floor). Every process's CPU is read from /proc, so the table shows what each of them
did with the machine's cores during the run, and the share of the machine's time its VM host
took away (steal, from /proc/stat). Prints a markdown table.

    bench/relay_matrix.py [--sessions 50,200,500,1000] [--duration 10] [--json FILE]

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR).
"""
import argparse, json, os, re, signal, socket, subprocess, sys, tempfile, time
import urllib.request

BIN = os.environ.get("SWITCHBOARD_BIN_DIR", "build/bin")
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


def one(sessions, duration, direct, bench_args=(), service_args=(), service_env=None):
    """One bench run on a fresh simulator (and service): bench_args go to both kinds of run,
    service_args to the bench of a service run, service_env to the service."""
    sim, sim_port = start_sim()
    svc = None
    try:
        if direct:
            sim_cpu0 = cpu_s(sim.pid)
            res = run_bench([*bench_args, "--direct", f"ws://127.0.0.1:{sim_port}/v1/realtime",
                             "--pid", str(sim.pid)], sessions, duration)
            res["sim_cpu_s"] = cpu_s(sim.pid) - sim_cpu0
        else:
            svc, port = start_service(sim_port, sessions, service_env)
            sim_cpu0 = cpu_s(sim.pid)
            res = run_bench([*bench_args, *service_args, "--url", f"http://127.0.0.1:{port}",
                             "--pid", str(svc.pid)], sessions, duration)
            res["sim_cpu_s"] = cpu_s(sim.pid) - sim_cpu0
        return res
    finally:
        if svc:
            stop(svc)
        stop(sim)


def wall_s(res):
    return res["bench"]["wall_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", default="50,200,500,1000")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--json", help="write every result to this file")
    a = ap.parse_args()
    counts = [int(x) for x in a.sessions.split(",")]
    rows = []
    for n in counts:
        svc = one(n, a.duration, direct=False)
        direct = one(n, a.duration, direct=True)
        rows.append((n, svc, direct))
        print(f"# {n} sessions done", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"sessions": n, "service": s, "direct": d} for n, s, d in rows], f, indent=1)

    def lat(r):
        l = r["latency_ms"]
        return f'{l["p50"]:.2f} / {l["p99"]:.2f} / {l["p99_9"]:.2f} / {l["max"]:.1f}'

    print("| sessions | through switchboard p50 / p99 / p99.9 / max (ms) | --direct (floor) "
          "| added p50 / p99 (ms) | lost frames | service CPU-s per session-min | service RSS "
          "base / per session | CPU, % of one core: service / sim / bench (direct: sim / bench) "
          "| steal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, s, d in rows:
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
              f'| {svc_pct:.0f} / {sim_pct:.0f} / {bench_pct:.0f} ({dsim_pct:.0f} / {dbench_pct:.0f}) '
              f'| {s["steal_pct"]:.0f} % ({d["steal_pct"]:.0f} %) |')


if __name__ == "__main__":
    main()
