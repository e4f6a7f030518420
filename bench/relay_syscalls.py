#!/usr/bin/python3
"""System calls and context switches per relayed round trip, per thread, in the steady state.

Starts switchboard-sim (echo mode) and switchboard on free ports, streams N voice sessions through
the service with switchboard-bench, and once every session streams attaches `perf stat
--per-thread` to the service for a window, counting the system calls that matter to the relay
(sendto, recvfrom, epoll_wait, futex, the eventfd's write and read, and all of them) and context
switches. Round trips in the window are sessions x frames per second x seconds (the bench sends
one frame per session every frame period and the echo returns each); the counts are divided by
that. Set-up (minting, handshakes, upstream connects) is outside the window, unlike the whole-run
figure of relay_matrix.py.

    bench/relay_syscalls.py [--sessions 200] [--window 4] [--bin-dir build/bin] [--peers go]
                            [--twilio]

--twilio streams phone calls instead (switchboard-bench --twilio, the service with phone calls
on); the peer relays do not speak Twilio and are left out.

--bin-dir compares builds (the same command before and after a change). The peer relays
(relay_matrix.py builds them) are measured the same way, whole process. Needs perf with
tracepoints readable (root here).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import relay_matrix as rm  # noqa: E402

EVENTS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_sendto", "syscalls:sys_enter_recvfrom",
          "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_futex", "syscalls:sys_enter_write",
          "syscalls:sys_enter_read", "context-switches"]
FRAME_MS = 20
WARMUP_S = 5  # every session is streaming by then (200 sessions connect in well under 2 s)


def thread_kind(name):
    """sb-net-0-1234 -> network, sb-worker-1-1235 -> worker, else other."""
    if name.startswith("sb-net"):
        return "network"
    if name.startswith("sb-worker"):
        return "workers"
    return "other"


TWILIO_TOKEN = "relay-syscalls-twilio-token-0123456789"


def measure(sessions, window_s, bin_dir, peer=None, twilio=False):
    """Counts for the service, or for a peer relay's argv; and the round trips in the window."""
    rm.BIN = bin_dir
    sim, sim_port = rm.start_sim()
    if peer:
        svc, port = rm.start_peer(peer, sim_port, sessions)
    else:
        svc, port = rm.start_service(sim_port, sessions,
                                     {"SWITCHBOARD_TWILIO_AUTH_TOKEN": TWILIO_TOKEN} if twilio
                                     else None)
    out = tempfile.NamedTemporaryFile(suffix=".perf", delete=False)
    phone = ["--twilio", "--twilio-token", TWILIO_TOKEN] if twilio else []
    try:
        bench = subprocess.Popen([f"{bin_dir}/switchboard-bench", "--sessions", str(sessions),
                                  "--duration", str(WARMUP_S + window_s + 3), *phone, "--url",
                                  f"http://127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(WARMUP_S)
        # perf counts for exactly as long as its `sleep` runs; a window timed around a perf
        # started in the background and stopped with SIGINT also counted perf's own start-up
        # (0.1-0.3 s of a 4 s window), dividing too few events by too many round trips.
        subprocess.run(["perf", "stat", "--per-thread", "-x,", "-e", ",".join(EVENTS),
                        "-p", str(svc.pid), "-o", out.name, "--", "sleep", str(window_s)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=window_s + 30)
        elapsed = window_s
        bench.wait(60)
    finally:
        rm.stop(svc)
        rm.stop(sim)
    counts = {}  # (event, kind) -> count
    with open(out.name) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 4 or not parts[1].isdigit():
                continue
            kind = thread_kind(parts[0])
            key = (parts[3], kind)
            counts[key] = counts.get(key, 0) + int(parts[1])
    os.unlink(out.name)
    round_trips = sessions * (1000 / FRAME_MS) * elapsed
    return counts, round_trips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--window", type=float, default=4)
    ap.add_argument("--bin-dir", default=os.environ.get("SWITCHBOARD_BIN_DIR", "build/bin"))
    ap.add_argument("--peers", default="go",
                    help="peer relays measured the same way (go, node; none for neither)")
    ap.add_argument("--twilio", action="store_true", help="phone calls (no peer relays)")
    a = ap.parse_args()
    if not rm.perf_usable():
        print("perf stat is not usable here (perf missing, or tracepoints not readable): skipped.")
        return 0
    counts, rt = measure(a.sessions, a.window, a.bin_dir, twilio=a.twilio)
    wanted = [] if a.peers == "none" or a.twilio else [x for x in a.peers.split(",") if x]
    peers = {}
    for name, (argv, why) in rm.build_peers(wanted).items():
        peers[name] = measure(a.sessions, a.window, a.bin_dir, peer=argv) if argv else why

    def per(ev, kind=None, c=None, n_rt=None):
        c = counts if c is None else c
        n = sum(v for (e, k), v in c.items() if e == ev and (kind is None or k == kind))
        return n / (rt if n_rt is None else n_rt)

    names = [("all system calls", "raw_syscalls:sys_enter"),
             ("sendto", "syscalls:sys_enter_sendto"), ("recvfrom", "syscalls:sys_enter_recvfrom"),
             ("epoll_wait", "syscalls:sys_enter_epoll_wait"), ("futex", "syscalls:sys_enter_futex"),
             ("write (eventfd)", "syscalls:sys_enter_write"),
             ("read (eventfd)", "syscalls:sys_enter_read"),
             ("context switches", "context-switches")]
    print(f"{a.sessions} {'phone calls' if a.twilio else 'sessions'}, "
          f"{a.window:.0f} s window in the steady state, "
          f"{rt:.0f} round trips; per round trip:")
    print()
    measured = [n for n, v in peers.items() if not isinstance(v, str)]
    print("| per round trip | switchboard | its network thread | its workers |"
          + "".join(f" {n} relay |" for n in measured))
    print("|---|---|---|---|" + "---|" * len(measured))
    for label, ev in names:
        cells = [f" {per(ev, c=peers[n][0], n_rt=peers[n][1]):.2f} |" for n in measured]
        print(f"| {label} | {per(ev):.2f} | {per(ev, 'network'):.2f} | {per(ev, 'workers'):.2f} |"
              + "".join(cells))
    for n, v in peers.items():
        if isinstance(v, str):
            print(f"\n{n} relay skipped: {v}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
