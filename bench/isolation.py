#!/usr/bin/python3
"""Audio isolation under tool load (SPEC 3 "Latency isolation", 11): the audio round trip of N
voice sessions, quiet and then with `switchboard-bench --tool-storm M` keeping supervisor runs
busy.

Each run starts fresh processes on free ports: switchboard-sim in echo mode, whose chat model
answers after --chat-delay-ms (slow tools) and, for the storm's "keep calling tools", calls a
booking tool every round; and switchboard with its limits raised to fit N + M sessions and
SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS rounds per supervisor run. The storm sessions stream no
audio, but they receive the spoken answers (at the simulator's --pace), which the service
relays on its audio path too: the table shows how much. The default pace is real time, as
real callers hear them (a faster pace turns the storm into extra audio load). Prints a markdown
table.

    bench/isolation.py [--sessions 200] [--storm 50] [--duration 10] [--chat-delay-ms 50]
                       [--max-iterations 10] [--pace 1] [--text-answers] [--json FILE]

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR).
"""
import argparse, json, sys, tempfile

from relay_matrix import cpu_s, run_bench, start_service, start_sim, stop


def one(a, storm):
    """One run with fresh processes; storm = 0 is the quiet baseline."""
    sim_args = ["--chat-delay-ms", str(a.chat_delay_ms), "--pace", str(a.pace)]
    if a.text_answers:
        sim_args.append("--text-answers")
    sim, sim_port = start_sim(*sim_args)
    svc = None
    try:
        with tempfile.TemporaryDirectory(prefix="sb-isolation-") as tmp:
            n = a.sessions + storm
            svc, port = start_service(sim_port, n, {
                "SWITCHBOARD_OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
                "SWITCHBOARD_DB": f"{tmp}/switchboard.db",
                "SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS": str(a.max_iterations),
                "SWITCHBOARD_MAX_SUPERVISOR_RUNS": str(max(64, storm)),
            })
            sim_cpu0 = cpu_s(sim.pid)
            args = ["--url", f"http://127.0.0.1:{port}", "--pid", str(svc.pid)]
            if storm:
                args += ["--tool-storm", str(storm)]
            res = run_bench(args, a.sessions, a.duration)
            res["sim_cpu_s"] = cpu_s(sim.pid) - sim_cpu0
            stop(svc)
            svc = None
        return res
    finally:
        if svc:
            stop(svc)
        stop(sim)


def row(name, r, quiet):
    lat = r["latency_ms"]
    w = r["bench"]["wall_s"]
    st = r.get("storm")
    ratio = lat["p99"] / quiet["latency_ms"]["p99"] if quiet["latency_ms"]["p99"] else 0
    if st:
        storm = (f'{st["turns_completed"]} turns, {st["tool_calls"]["completed"]} completed '
                 f'/ {st["tool_calls"]["failed"]} failed / {st["tool_calls"]["timeout"]} timeout '
                 f'({st["sessions_connected"]} of {st["sessions"]} sessions)')
        sup = st["supervisor_turn_ms"]
        turn = f'{sup["p50"]:.0f} / {sup["p99"]:.0f}'
        speech = f'{st["audio_bytes_received"] / w / 1e6:.2f}'
    else:
        storm, turn, speech = "—", "—", "—"
    return (f'| {name} | {r["sessions_connected"]} of {r["sessions"]} '
            f'| {lat["p50"]:.2f} / {lat["p99"]:.2f} / {lat["p99_9"]:.2f} / {lat["max"]:.1f} '
            f'| {ratio:.2f}x | {r["frames"]["lost"]} of {r["frames"]["sent"]} | {storm} | {turn} '
            f'| {speech} | {100 * r["service"]["cpu_s"] / w:.0f} / {100 * r["sim_cpu_s"] / w:.0f} '
            f'/ {100 * r["bench"]["cpu_s"] / w:.0f} | {r["steal_pct"]:.0f} % |')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=200, help="audio sessions")
    ap.add_argument("--storm", type=int, default=50, help="--tool-storm sessions")
    ap.add_argument("--duration", type=int, default=10, help="seconds of audio per session")
    ap.add_argument("--chat-delay-ms", type=int, default=50,
                    help="the simulator's Chat Completions answer delay (slow tools)")
    ap.add_argument("--max-iterations", type=int, default=10,
                    help="SWITCHBOARD_SUPERVISOR_MAX_ITERATIONS (rounds per supervisor run)")
    ap.add_argument("--pace", type=int, default=1,
                    help="the simulator sends spoken answers at this multiple of real time")
    ap.add_argument("--text-answers", action="store_true",
                    help="the storm's answers come as text, not speech: tool work without the "
                         "extra audio")
    ap.add_argument("--json", help="write both results to this file")
    a = ap.parse_args()
    quiet = one(a, 0)
    print("# quiet run done", file=sys.stderr)
    storm = one(a, a.storm)
    print("# storm run done", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"quiet": quiet, "storm": storm}, f, indent=1)

    print("| run | audio sessions connected | round trip p50 / p99 / p99.9 / max (ms) "
          "| p99 vs quiet | lost frames | storm turns, tool calls (sessions) "
          "| supervisor turn p50 / p99 (ms) | storm speech relayed (MB/s) "
          "| CPU, % of one core: service / sim / bench | steal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(row("quiet", quiet, quiet))
    print(row(f"tool storm ({a.storm} sessions)", storm, quiet))


if __name__ == "__main__":
    main()
