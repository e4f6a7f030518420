#!/usr/bin/python3
"""The store on PostgreSQL against SQLite (SPEC 13 "measure"), one run, every process on this
machine:
  - booking throughput: bench_store's bookAppointment calls, none conflicting, with 1, 8 and 32
    in flight (SQLite: the WAL file with synchronous=NORMAL; PostgreSQL: fsync on, each booking
    committed with synchronous_commit on, one connection pipelined);
  - call records written a second (bench_store -r: starts, transcript lines, ends);
  - the dashboard's reads over N generated calls (bench/calls_gen.py, with --pg for PostgreSQL):
    GET /api/calls first page, searches, a filter and the analytics, p50/p99 on the server.

    bench/store_matrix.py [--bookings 2000] [--calls 100000] [--requests 200]

Prints markdown. Binaries come from build/ (release)."""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from pgfix import Postgres  # noqa: E402

BENCH_STORE = os.path.join(ROOT, "build", "release", "bench", "bench_store")


def bench_store(args, url=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    if url:
        env["SWITCHBOARD_DATABASE_URL"] = url
    out = subprocess.run([BENCH_STORE] + args, env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def bookings(n, in_flight, url=None):
    return bench_store(["-n", str(n), "-c", str(in_flight)], url)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bookings", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--records", type=int, default=100000)
    a = ap.parse_args()
    print("### Bookings without conflicts (`bench_store`)\n")
    print("| in flight | SQLite bookings/s (p50 / p99 ms) | PostgreSQL bookings/s (p50 / p99 ms) |")
    print("|---|---|---|")
    with Postgres(fsync=True) as pg:
        for c in (1, 8, 32):
            s = bookings(a.bookings, c)
            p = bookings(a.bookings, c, pg.url)
            pg.sql("TRUNCATE appointments, customers")
            print("| %d | %.0f (%.2f / %.2f) | %.0f (%.2f / %.2f) |" % (
                c, s["bookings_per_s"], s["p50_ms"], s["p99_ms"],
                p["bookings_per_s"], p["p50_ms"], p["p99_ms"]))
        s = bench_store(["-r", str(a.records)])
        p = bench_store(["-r", str(a.records)], pg.url)
        print("\n### Call records written a second (`bench_store -r %d`: a start, 8 transcript "
              "lines and an end per call)\n" % a.records)
        print("| SQLite | PostgreSQL |\n|---|---|")
        print("| %.0f | %.0f |" % (s["records_per_s"], p["records_per_s"]))
    for label, extra in (("SQLite", []), ("PostgreSQL", ["--pg"])):
        print("\n### The dashboard's reads on %s (`bench/calls_gen.py%s`)\n"
              % (label, " --pg" if extra else ""))
        sys.stdout.flush()
        subprocess.run([sys.executable, os.path.join(HERE, "calls_gen.py"), "--calls",
                        str(a.calls), "--requests", str(a.requests)] + extra, check=True)


if __name__ == "__main__":
    main()
