#!/usr/bin/python3
"""What sharing state through Redis costs (SPEC 13, issue 14), in one run on this machine:

1. Admission: switchboard-bench's connect time (POST /api/sessions to session.ready) for N
   sessions on one node without Redis (embedded token store and registry) and on one node with
   Redis (SET NX / GETDEL / the admission script): p50 and p99.
2. Relay through nginx: scripts/cluster.sh's layout (redis-server, PostgreSQL, two nodes, nginx
   with its two round-robin pools) at 200 and 400 sessions, next to one node reached directly
   at 200: round-trip p50/p99, lost frames, CPU-s per session-minute of each node (and of nginx,
   redis-server and the PostgreSQL postmaster; its backends are other processes, not counted).

Everything shares this machine's cores with the bench and the simulator: the figures show the
overhead of the extra hops, not the capacity of a real cluster.

    bench/cluster_matrix.py [--admit 200] [--sessions 200,400] [--duration 10] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relay_matrix as rm  # noqa: E402

REPO = rm.REPO


def start_redis(tmp):
    port = rm.free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                          "", "--appendonly", "no", "--dir", tmp, "--logfile",
                          os.path.join(tmp, "redis.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rm.wait_port(port)
    return p, port


def admit_run(n, redis_url):
    """Connect times of n sessions on one node (with Redis when redis_url)."""
    sim, sim_port = rm.start_sim()
    env = {"SWITCHBOARD_REDIS_URL": redis_url} if redis_url else {}
    svc, port = rm.start_service(sim_port, n, env)
    try:
        res = rm.run_bench(["--url", f"http://127.0.0.1:{port}", "--ramp", "2"], n, 2)
        return res["connect_ms"], res["sessions_connected"]
    finally:
        rm.stop(svc)
        rm.stop(sim)


def cluster_run(sessions, duration, tmp):
    """sessions through nginx to two nodes (scripts/cluster.sh): the bench's result with each
    node's and nginx's CPU."""
    ports = [rm.free_port() for _ in range(6)]
    node_port = ports[1]
    env = dict(os.environ)
    env.update({"CLUSTER_PORT": str(ports[0]), "CLUSTER_NODE_PORT": str(node_port),
                "CLUSTER_REDIS_PORT": str(ports[3]), "SWITCHBOARD_SIM_PORT": str(ports[4]),
                "CLUSTER_PG_PORT": str(ports[5]), "CLUSTER_DIR": tmp, "CLUSTER_SIM_MODE": "echo", "SWITCHBOARD_BIN_DIR": rm.BIN,
                "SWITCHBOARD_LOG_LEVEL": "warn",
                "SWITCHBOARD_MAX_SESSIONS": str(sessions + 10),
                "SWITCHBOARD_SESSIONS_PER_IP": str(sessions + 10),
                "SWITCHBOARD_CONNECTIONS_PER_IP": str(sessions * 2 + 100),
                "SWITCHBOARD_SESSIONS_PER_MIN": str(sessions * 2 + 100),
                "SWITCHBOARD_MAX_CONNECTIONS": str(max(4096, sessions * 2 + 100))})
    p = subprocess.Popen(["scripts/cluster.sh"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        for line in p.stdout:
            if line.startswith("open http"):
                break
        pids = {}
        for name, port in (("node-1", node_port), ("node-2", node_port + 1)):
            pids[name] = listener_pid(port)
        pids["nginx"] = listener_pid(ports[0])
        pids["redis"] = listener_pid(ports[3])
        pids["postgres"] = listener_pid(ports[5])
        cpu0 = {k: rm.cpu_s(v) for k, v in pids.items() if v}
        res = rm.run_bench(["--url", f"http://127.0.0.1:{ports[0]}",
                            "--threads", str(rm.bench_threads(sessions))], sessions, duration)
        res["cpu_s"] = {k: rm.cpu_s(v) - cpu0[k] for k, v in pids.items() if v}
        return res
    finally:
        os.killpg(p.pid, 2)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()


def listener_pid(port):
    """The pid of the process listening on 127.0.0.1:port (nginx: its worker's parent)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    return None


def session_minutes(res):
    return res["sessions_connected"] * res["duration_s"] / 60.0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admit", type=int, default=200)
    ap.add_argument("--sessions", default="200,400")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    if not shutil.which("redis-server") or not (shutil.which("nginx")
                                                or os.path.exists("/usr/sbin/nginx")):
        print("cluster_matrix: redis-server and nginx are needed (scripts/deps.sh)")
        return 2
    out = {"admit": {}, "relay": {}}
    tmp = tempfile.mkdtemp(prefix="sbclbench-")
    os.chmod(tmp, 0o711)  # PostgreSQL runs as its own user under it (scripts/cluster.sh)
    try:
        out["admit"]["embedded"] = admit_run(a.admit, None)
        redis, rport = start_redis(tmp)
        try:
            out["admit"]["redis"] = admit_run(a.admit, f"redis://127.0.0.1:{rport}")
        finally:
            rm.stop(redis)
        one = rm.one(200, a.duration, False,
                     bench_args=["--threads", str(rm.bench_threads(200))])
        out["relay"]["one node, 200"] = one
        for n in [int(x) for x in a.sessions.split(",")]:
            out["relay"][f"two nodes via nginx, {n}"] = cluster_run(n, a.duration,
                                                                    tempfile.mkdtemp(dir=tmp))
    finally:
        shutil.rmtree(tmp, True)

    print("## Admission (POST /api/sessions to session.ready), %d sessions, one node" % a.admit)
    print()
    print("| store | connected | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for k, (c, n) in out["admit"].items():
        print(f"| {k} | {n} | {c['p50']:.2f} | {c['p99']:.2f} |")
    print()
    print("## Relay, %.0f s of 24 kHz audio per session" % a.duration)
    print()
    print("| run | connected | RTT p50 / p99 ms | lost | CPU-s per session-minute |")
    print("|---|---|---|---|---|")
    for k, r in out["relay"].items():
        l = r["latency_ms"]
        sm = max(1e-9, session_minutes(r))
        if "cpu_s" in r:
            cpu = ", ".join(f"{name} {v / sm:.3f}" for name, v in r["cpu_s"].items())
        else:
            cpu = f"node {r['service']['cpu_s_per_session_minute']:.3f}"
        print(f"| {k} | {r['sessions_connected']} | {l['p50']:.2f} / {l['p99']:.2f} "
              f"| {r['frames']['lost']} of {r['frames']['sent']} | {cpu} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
