#!/usr/bin/python3
"""Phone calls against the browser path: switchboard-bench --twilio through switchboard and
--twilio --direct (μ-law as audio/pcmu straight to the simulator, the floor), next to today's
browser sessions (PCM16 24 kHz, through switchboard and --direct), per call count, in one run.

For each count and path it starts a fresh switchboard-sim (echo mode) and, for the service runs,
a fresh switchboard with phone calls on (SWITCHBOARD_TWILIO_AUTH_TOKEN), as relay_matrix.py does.
It prints a markdown table of round-trip p50/p99, the added p50/p99 over the floor, lost frames,
the service's CPU-s per session-minute and RSS per session, the bench's send lag p99 (the bench
must not be what falls behind) and every process's CPU; then the phone path's targets (issue 12):
added p99 <= 1 ms at 200 calls, no frame lost up to 500, and phone CPU per session-minute <= 0.6x
the browser path's.

    bench/phone_matrix.py [--sessions 50,200,500] [--duration 10] [--threads 1]
                          [--net-threads N] [--json FILE]

--net-threads runs the service with SWITCHBOARD_NET_THREADS=N (default: the service's default).

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR).
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relay_matrix  # noqa: E402

TOKEN = "phone-matrix-auth-token-0123456789"
ADDED_P99_MAX_MS = 1.0   # at TARGET_CALLS
TARGET_CALLS = 200
CPU_RATIO_MAX = 0.6      # phone CPU per session-minute over the browser path's


def one(n, duration, threads, phone, direct, net_threads=None):
    """One bench run of n sessions on a fresh simulator (and service); returns its JSON."""
    env = {"SWITCHBOARD_TWILIO_AUTH_TOKEN": TOKEN}
    if net_threads:
        env["SWITCHBOARD_NET_THREADS"] = str(net_threads)
    return relay_matrix.one(n, duration, direct,
                            bench_args=["--threads", str(threads)] + (["--twilio"] if phone else []),
                            service_args=["--twilio-token", TOKEN] if phone else [],
                            service_env=env)


def cmd(n, duration, threads, phone, direct):
    """The bench command line of a run, as the report shows it (ports vary per run)."""
    c = f"switchboard-bench --sessions {n} --duration {duration} --threads {threads}"
    if phone:
        c += " --twilio"
    if direct:
        return c + " --direct ws://SIM/v1/realtime --pid SIM_PID"
    return c + (" --twilio-token T" if phone else "") + " --url http://SVC --pid SVC_PID"


def pct(res, key):
    return 100 * res[key] / res["bench"]["wall_s"]


def row(label, n, s, d):
    sv = s["service"]
    w = s["bench"]["wall_s"]
    l, ld = s["latency_ms"], d["latency_ms"]
    return (f'| {label} | {n} ({s["sessions_connected"]}) '
            f'| {l["p50"]:.2f} / {l["p99"]:.2f} | {ld["p50"]:.2f} / {ld["p99"]:.2f} '
            f'| {l["p50"] - ld["p50"]:+.2f} / {l["p99"] - ld["p99"]:+.2f} '
            f'| {s["frames"]["lost"]} of {s["frames"]["sent"]} (direct {d["frames"]["lost"]}) '
            f'| {sv["cpu_s_per_session_minute"]:.4f} '
            f'| {sv["rss_per_session_kb"]:.1f} KB '
            f'| {s["send_lag_ms"]["p99"]:.2f} ({d["send_lag_ms"]["p99"]:.2f}) '
            f'| {100 * sv["cpu_s"] / w:.0f} / {100 * s["sim_cpu_s"] / w:.0f} / '
            f'{s["bench"]["cpu_pct_of_one_core"]:.0f} '
            f'({100 * d["sim_cpu_s"] / d["bench"]["wall_s"]:.0f} / '
            f'{d["bench"]["cpu_pct_of_one_core"]:.0f}) '
            f'| {s["steal_pct"]:.0f} % |')


def targets(rows):
    """The issue's targets, each with its figure and a verdict."""
    out = []
    for n, r in rows:
        p, b = r["phone"], r["browser"]
        added = p["latency_ms"]["p99"] - r["phone_direct"]["latency_ms"]["p99"]
        if n == TARGET_CALLS:
            out.append(f"- added p99 at {n} calls: {added:+.2f} ms (target <= "
                       f"{ADDED_P99_MAX_MS:.0f} ms): {'met' if added <= ADDED_P99_MAX_MS else 'MISSED'}")
        lost = p["frames"]["lost"]
        out.append(f"- frames lost at {n} calls: {lost} of {p['frames']['sent']} (target 0): "
                   f"{'met' if lost == 0 else 'MISSED'}")
        ratio = (p["service"]["cpu_s_per_session_minute"] /
                 max(1e-9, b["service"]["cpu_s_per_session_minute"]))
        out.append(f"- phone / browser CPU per session-minute at {n}: {ratio:.2f} (target <= "
                   f"{CPU_RATIO_MAX}): {'met' if ratio <= CPU_RATIO_MAX else 'MISSED'}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", default="50,200,500")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="bench client threads")
    ap.add_argument("--net-threads", type=int, help="the service's SWITCHBOARD_NET_THREADS")
    ap.add_argument("--json", help="write every result to this file")
    a = ap.parse_args()
    rows = []
    for n in [int(x) for x in a.sessions.split(",")]:
        r = {}
        for key, phone, direct in (("phone", True, False), ("phone_direct", True, True),
                                   ("browser", False, False), ("browser_direct", False, True)):
            r[key] = one(n, a.duration, a.threads, phone, direct, a.net_threads)
            r[key]["command"] = cmd(n, a.duration, a.threads, phone, direct)
        rows.append((n, r))
        print(f"# {n} calls done", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"sessions": n, **r} for n, r in rows], f, indent=1)

    print("| path | sessions (connected) | through switchboard p50 / p99 (ms) | --direct (floor) "
          "| added p50 / p99 (ms) | lost frames | service CPU-s per session-min "
          "| service RSS per session | bench send lag p99 (direct) (ms) "
          "| CPU, % of one core: service / sim / bench (direct: sim / bench) | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, r in rows:
        print(row("phone (μ-law 8 kHz, Twilio Media Streams)", n, r["phone"], r["phone_direct"]))
        print(row("browser (PCM16 24 kHz, /ws)", n, r["browser"], r["browser_direct"]))
    print()
    print(f"{a.duration} s of audio per session, 20 ms frames, ramp min(duration/4, 5 s), "
          f"switchboard-sim in echo mode"
          + (f", the service with SWITCHBOARD_NET_THREADS={a.net_threads}" if a.net_threads else "")
          + "; commands (SVC, SIM: the run's fresh processes):")
    print()
    seen = set()
    for _, r in rows[:1]:
        for key in ("phone", "phone_direct", "browser", "browser_direct"):
            c = r[key]["command"]
            if c not in seen:
                seen.add(c)
                print(f"    {c}")
    print()
    print("Targets (issue 12):")
    print()
    print("\n".join(targets(rows)))


if __name__ == "__main__":
    main()
