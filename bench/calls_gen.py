#!/usr/bin/python3
"""A database of many calls for the dashboard's measurements (SPEC 15): N ended calls over the
last DAYS days with transcripts (searchable), tool calls, summaries, outcomes, first-audio times
and done post-call jobs, written straight into a switchboard database (created by starting the
service once, so the schema is the service's own). Then, against a service on that file:
GET /api/calls first page, a transcript search, GET /api/analytics?days=30, each timed on the
server (the X-… header is not needed: the client times a loopback keep-alive request, which
is server time plus well under a millisecond), p50/p99 over R requests.

    bench/calls_gen.py [--calls 100000] [--days 30] [--requests 200] [--keep DIR] [--pg]

--pg: the same calls in PostgreSQL (SPEC 13; a server started for the run with
tests/integration/pgfix.py, the schema applied by the service itself, rows loaded with COPY)
instead of the SQLite file.

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR)."""
import argparse, csv, http.client, io, json, os, random, sqlite3, statistics, subprocess, sys
import tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "integration"))
from relay_matrix import start_service, start_sim, stop  # noqa: E402

WORDS = ("oil change brakes tires alignment battery engine light transmission inspection "
         "estimate appointment tomorrow monday price quote warranty rental pickup "
         "carburetors coolant wipers headlight noise vibration").split()
OUTCOMES = ("booked", "information", "callback", "transferred", "other")
DAY_MS = 86400 * 1000


def rows(n, days, seed=7):
    """The generated rows: calls, transcript lines, tool calls, jobs and search texts."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    t0 = now - days * DAY_MS
    step = (now - t0) // n
    calls, lines, tools, jobs, fts = [], [], [], [], []
    for i in range(n):
        cid = "call_gen%08d" % i
        start = t0 + i * step + rnd.randrange(max(1, step))
        dur = rnd.randrange(20000, 400000)
        outcome = rnd.choice(OUTCOMES)
        phone = "+1415555%04d" % rnd.randrange(10000)
        said = " ".join(rnd.choice(WORDS) for _ in range(12))
        summary = json.dumps({"summary": "Caller asked about " + said[:40], "caller":
                              {"name": None, "phone": phone, "email": None}, "reason": said[:60],
                              "outcome": outcome, "followUp": None, "sentiment": "neutral"})
        booked = 1 if outcome == "booked" else 0
        channel = "phone" if i % 3 == 0 else "web"
        calls.append((cid, "sess_gen%08d" % i, start, start + dur, "client_closed", dur,
                      "default", channel, phone if channel == "phone" else None, summary,
                      outcome, rnd.randrange(300, 1500), booked, 2, 2 - (i % 17 == 0)))
        text = []
        for k in range(6):
            role = "user" if k % 2 == 0 else "assistant"
            t = " ".join(rnd.choice(WORDS) for _ in range(10))
            text.append(t)
            lines.append((cid, role, t, start + k * 5000))
        tools.append((cid, "tc_%d" % i, "getNextResponseFromSupervisor", "{}", "ok", "completed",
                      900, "supervisor", start + 6000, None))
        tools.append((cid, "tc_%db" % i, "bookAppointment" if booked else "checkAvailability",
                      "{}", "{}", "completed", 12, "builtin", start + 6100, "tc_%d" % i))
        jobs.append((cid, "default", "done", 1, None, "done", "done", 1, start + dur, start + dur + 900))
        fts.append(" ".join(text))
    return calls, lines, tools, jobs, fts


def generate(db, n, days):
    calls, lines, tools, jobs, fts = rows(n, days)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    with con:
        con.executemany("INSERT INTO calls (id, session_id, started_at, ended_at, end_reason, "
                        "duration_ms, tenant, channel, caller_from, summary, outcome, "
                        "first_audio_ms, booked, tools_total, tools_ok) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", calls)
        con.executemany("INSERT INTO transcript_items (call_id, role, text, at) VALUES (?,?,?,?)",
                        lines)
        con.executemany("INSERT INTO tool_calls (call_id, tool_call_id, name, arguments, output, "
                        "status, duration_ms, via, at, parent_call_id) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?)", tools)
        con.executemany("INSERT INTO postcall_jobs (call_id, tenant, state, attempts, next_at, "
                        "step_summary, step_crm, webhook_sent, created_at, updated_at) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?)", jobs)
        rowids = dict(con.execute("SELECT id, rowid FROM calls WHERE id LIKE 'call_gen%'"))
        con.executemany("INSERT INTO calls_fts (rowid, text) VALUES (?, ?)",
                        [(rowids[c[0]], t) for c, t in zip(calls, fts)])
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def copy_in(url, table, cols, data):
    """COPY data (tuples) into table(cols) through psql."""
    buf = io.StringIO()
    w = csv.writer(buf)
    for row in data:
        w.writerow(["\\N" if v is None else v for v in row])
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    "\\copy %s (%s) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
                    % (table, ", ".join(cols))], input=buf.getvalue(), text=True, check=True)


def generate_pg(url, n, days):
    calls, lines, tools, jobs, fts = rows(n, days)
    calls = [c[:12] + (c[12] == 1,) + c[13:] for c in calls]  # booked is a boolean there
    jobs = [j[:7] + (j[7] == 1,) + j[8:] for j in jobs]
    copy_in(url, "calls", ("id", "session_id", "started_at", "ended_at", "end_reason",
                           "duration_ms", "tenant", "channel", "caller_from", "summary", "outcome",
                           "first_audio_ms", "booked", "tools_total", "tools_ok"), calls)
    copy_in(url, "transcript_items", ("call_id", "role", "text", "at"), lines)
    copy_in(url, "tool_calls", ("call_id", "tool_call_id", "name", "arguments", "output",
                                "status", "duration_ms", "via", "at", "parent_call_id"), tools)
    copy_in(url, "postcall_jobs", ("call_id", "tenant", "state", "attempts", "next_at",
                                   "step_summary", "step_crm", "webhook_sent", "created_at",
                                   "updated_at"), jobs)
    # The search documents, as the store sets them at a call's end.
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    "UPDATE calls c SET search = to_tsvector('simple', sb_search_text(t.text)) "
                    "FROM (SELECT call_id, string_agg(text, ' ' ORDER BY at) AS text "
                    "FROM transcript_items GROUP BY call_id) t WHERE t.call_id = c.id",
                    "-c", "VACUUM ANALYZE"], check=True)


def wait_ready(port, deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit("the service never reached PostgreSQL")


def timed(port, path, n):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        ms.append((time.perf_counter() - t) * 1000)
        assert r.status == 200, (r.status, body[:200])
    conn.close()
    ms.sort()
    return {"p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "bytes": len(body)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--keep", help="leave the database in this folder")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    a = ap.parse_args()
    pg = None
    if a.pg:
        from pgfix import Postgres
        pg = Postgres().start()
    tmp = a.keep or tempfile.mkdtemp(prefix="sb-calls-")
    os.makedirs(tmp, exist_ok=True)
    db = os.path.join(tmp, "switchboard.db")
    sim, sim_port = start_sim()
    try:
        env = {"SWITCHBOARD_DB": db, "SWITCHBOARD_RETENTION_DAYS": str(a.days + 5)}
        if pg:
            env["SWITCHBOARD_DATABASE_URL"] = pg.url
        svc, port = start_service(sim_port, 10, env)  # creates the schema
        if pg:
            wait_ready(port)
        stop(svc)
        t = time.perf_counter()
        if pg:
            generate_pg(pg.url, a.calls, a.days)
        else:
            generate(db, a.calls, a.days)
        gen_s = time.perf_counter() - t
        svc, port = start_service(sim_port, 10, env)
        if pg:
            wait_ready(port)
        try:
            res = {
                "first page (limit 20)": timed(port, "/api/calls", a.requests),
                "text search q=carburetors": timed(port, "/api/calls?q=carburetors", a.requests),
                "text search q=coolant%20wipers": timed(port, "/api/calls?q=coolant%20wipers",
                                                        a.requests),
                "filter outcome=booked&channel=phone": timed(
                    port, "/api/calls?outcome=booked&channel=phone", a.requests),
                "analytics days=30": timed(port, "/api/analytics?days=30", max(20, a.requests // 10)),
            }
        finally:
            stop(svc)
    finally:
        stop(sim)
        if pg:
            pg.close()
    where = "PostgreSQL" if pg else db
    print(f"{a.calls} calls over {a.days} days generated in {gen_s:.1f} s ({where})\n")
    print("| request | p50 ms | p99 ms | body bytes |\n|---|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v['p50']:.2f} | {v['p99']:.2f} | {v['bytes']} |")


if __name__ == "__main__":
    main()
