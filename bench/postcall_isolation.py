#!/usr/bin/python3
"""Audio isolation while post-call jobs run (SPEC 3 "Latency isolation", 15): the audio round
trip of N echo sessions (switchboard-bench), quiet and then with J post-call jobs running
(summary + CRM run against tests/crm/crm_server.mjs over stdio MCP). The jobs are J ended calls
with transcripts written into the database with their jobs "running", as a stopped process leaves
them, so the service runs them all after start-up (its 3 s grace) while the bench streams audio;
the simulator's chat answers after --chat-delay-ms, so they last. Prints the p99 ratio.

    bench/postcall_isolation.py [--sessions 100] [--jobs 50] [--duration 10] [--chat-delay-ms 300]

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR)."""
import argparse, json, os, sqlite3, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_config import write_crm_config  # noqa: E402
from relay_matrix import run_bench, start_service, start_sim, stop  # noqa: E402



def seed(db, jobs):
    con = sqlite3.connect(db)
    now = int(time.time() * 1000)
    with con:
        for i in range(jobs):
            cid = "call_iso%04d" % i
            con.execute("INSERT INTO calls (id, session_id, started_at, ended_at, end_reason, "
                        "duration_ms) VALUES (?, ?, ?, ?, 'client_closed', 5000)",
                        (cid, "sess_iso%04d" % i, now - 6000, now - 1000))
            con.execute("INSERT INTO transcript_items (call_id, role, text, at) VALUES (?, 'user', "
                        "?, ?)", (cid, "My name is Iso %d, my phone is 415-555-%04d." % (i, i),
                                  now - 5000))
            con.execute("INSERT INTO postcall_jobs (call_id, tenant, state, attempts, step_summary, "
                        "step_crm, created_at, updated_at) VALUES (?, 'default', 'running', 0, "
                        "'pending', 'pending', ?, ?)", (cid, now, now))
    con.close()


def jobs_done(port, jobs):
    done = 0
    for i in range(jobs):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/calls/call_iso%04d" % i) as r:
            pc = json.loads(r.read())["postcall"]
        done += pc["state"] == "done"
    return done


def one(a, jobs):
    tmp = tempfile.mkdtemp(prefix="sb-pc-iso-")
    cfg = write_crm_config(tmp)
    sim, sim_port = start_sim("--chat-delay-ms", str(a.chat_delay_ms))
    env = {"SWITCHBOARD_CONFIG": cfg, "SWITCHBOARD_DB": os.path.join(tmp, "sb.db"),
           "SWITCHBOARD_OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1"}
    try:
        svc, port = start_service(sim_port, a.sessions, env)  # the schema
        stop(svc)
        seed(env["SWITCHBOARD_DB"], jobs)
        svc, port = start_service(sim_port, a.sessions, env)
        res = run_bench(["--url", f"http://127.0.0.1:{port}", "--pid", str(svc.pid)],
                        a.sessions, a.duration)
        res["jobs_done"] = jobs_done(port, jobs)
        stop(svc)
        return res
    finally:
        stop(sim)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--chat-delay-ms", type=int, default=300)
    a = ap.parse_args()
    quiet = one(a, 0)
    busy = one(a, a.jobs)
    print("| run | sessions | audio p50 / p99 / max ms | p99 ratio | post-call jobs done |")
    print("|---|---|---|---|---|")
    for name, r in (("quiet", quiet), (f"{a.jobs} post-call jobs", busy)):
        lat = r["latency_ms"]
        print(f'| {name} | {r["sessions_connected"]} of {r["sessions"]} | {lat["p50"]:.2f} / '
              f'{lat["p99"]:.2f} / {lat["max"]:.1f} | {lat["p99"] / quiet["latency_ms"]["p99"]:.2f}x '
              f'| {r["jobs_done"]} |')


if __name__ == "__main__":
    main()
