#!/usr/bin/python3
"""Idle connection cost: RSS per /ws voice session and CPU while 1,000 sessions sit idle.

Starts switchboard-sim (echo mode) and build/bin/switchboard (or $SWITCHBOARD_BIN) with limits
raised and the simulator as its upstream, reads the service's RSS, opens N voice sessions (token
+ /ws each, waiting for session.ready, so every session holds its upstream connection too), waits,
reads RSS again, then samples its CPU time over an idle window. Prints a summary, or markdown rows
with --markdown.

    bench/idle_conns.py [--conns 1000] [--idle-s 10] [--markdown]
"""
import argparse, asyncio, json, os, re, resource, signal, socket, subprocess, sys, threading, time
import urllib.request
import websockets

def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

async def open_sessions(base, n):
    socks = []
    for i in range(n):
        sid = f"idle_{i:06d}"
        req = urllib.request.Request(base + "/api/sessions", method="POST",
                                     data=json.dumps({"sessionId": sid}).encode())
        tok = json.loads(urllib.request.urlopen(req).read())["token"]
        ws = await websockets.connect(base.replace("http", "ws") + f"/ws?sessionId={sid}&token={tok}",
                                      ping_interval=None)
        while True:  # session.ready: the upstream is connected and configured
            m = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(m, str) and json.loads(m).get("type") == "session.ready":
                break
        socks.append(ws)
    return socks

async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--idle-s", type=float, default=10)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, a.conns * 2 + 100)), hard))
    env = dict(os.environ, SWITCHBOARD_PORT="0", SWITCHBOARD_MAX_SESSIONS=str(a.conns + 10),
               SWITCHBOARD_SESSIONS_PER_IP=str(a.conns + 10),
               SWITCHBOARD_CONNECTIONS_PER_IP=str(a.conns * 2 + 100),
               SWITCHBOARD_SESSIONS_PER_MIN=str(a.conns * 10), SWITCHBOARD_SESSION_IDLE_S="3600",
               SWITCHBOARD_LOG_LEVEL="warn")
    binary = os.environ.get("SWITCHBOARD_BIN", "build/bin/switchboard")
    sim_bin = os.path.join(os.path.dirname(binary), "switchboard-sim")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sim_port = s.getsockname()[1]
    sim = subprocess.Popen([sim_bin, "--port", str(sim_port), "--mode", "echo", "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.update(OPENAI_API_KEY="sk-idle",
               SWITCHBOARD_REALTIME_URL=f"ws://127.0.0.1:{sim_port}/v1/realtime",
               SWITCHBOARD_MAX_CONNECTIONS=str(max(4096, a.conns * 2 + 100)))
    p = subprocess.Popen([binary], env=env, stderr=subprocess.PIPE, text=True)
    port = None
    for line in p.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)/", line)
        if m:
            port = int(m.group(1))
            break
    # Keep reading its log: a full pipe would block the service's logging.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    time.sleep(0.5)
    rss0 = proc_rss_kb(p.pid)
    socks = await open_sessions(base, a.conns)
    await asyncio.sleep(2)
    rss1 = proc_rss_kb(p.pid)
    cpu0, t0 = proc_cpu_s(p.pid), time.time()
    await asyncio.sleep(a.idle_s)
    cpu1, t1 = proc_cpu_s(p.pid), time.time()
    health = json.loads(urllib.request.urlopen(base + "/healthz").read())
    for ws in socks:
        await ws.close()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=15)
    sim.terminate()
    sim.wait(timeout=5)
    per_conn = (rss1 - rss0) / a.conns
    cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
    if a.markdown:
        print(f"| idle /ws sessions open (each with its upstream) | {health['sessions']} |")
        print(f"| service RSS before / after | {rss0/1024:.1f} MB / {rss1/1024:.1f} MB |")
        print(f"| RSS per idle session | {per_conn:.1f} KB |")
        print(f"| service CPU while {a.conns} sessions idle ({a.idle_s:.0f} s) | {cpu_pct:.2f} % of one core |")
    else:
        print(f"sessions live: {health['sessions']}")
        print(f"RSS before: {rss0} KB, after {a.conns} sessions: {rss1} KB, per session: {per_conn:.1f} KB")
        print(f"CPU while idle for {t1-t0:.1f} s: {cpu1-cpu0:.3f} s ({cpu_pct:.2f} % of one core)")

asyncio.run(main())
