#!/usr/bin/python3
"""Supervisor overhead: time from the voice model's function call to its function_call_output.

Starts switchboard-sim (agent mode, chat answering at once) and switchboard on free ports, opens
--sessions voice sessions and has each run --turns text turns one after another, alternating a
question the supervisor answers in one Chat Completions round ("What are your hours?") and one
that needs a built-in tool first ("Is <date> available?": checkAvailability on SQLite, then a
second round). For every turn it takes the time between the `started` and the terminal tool.call
events of getNextResponseFromSupervisor as the client sees them (the service sends the first when
it reads the function call and the second with the function_call_output), and the service's own
integer `duration_ms`, and prints p50/p99 per kind (markdown rows with --markdown).

    bench/supervisor_overhead.py [--sessions 4] [--turns 50] [--markdown]
"""
import argparse, asyncio, datetime, json, os, re, signal, socket, subprocess, threading, time
import urllib.request

import websockets

BIN = os.environ.get("SWITCHBOARD_BIN_DIR", "build/bin")
SUP = "getNextResponseFromSupervisor"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] if xs else float("nan")


def next_weekday():
    d = datetime.date.today() + datetime.timedelta(days=7)
    while d.weekday() >= 5:
        d += datetime.timedelta(days=1)
    return d.isoformat()


def user_text(text):
    return json.dumps({"type": "conversation.item.create",
                       "item": {"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": text}]}})


async def session(base, i, turns, out):
    req = urllib.request.Request(base + "/api/sessions", method="POST",
                                 data=json.dumps({"sessionId": "sup_bench_%04d" % i}).encode())
    tok = json.loads(urllib.request.urlopen(req).read())
    url = base.replace("http", "ws") + "/ws?sessionId=%s&token=%s" % (tok["sessionId"],
                                                                       tok["token"])
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        async def until(pred):
            while True:
                m = await asyncio.wait_for(ws.recv(), 20)
                if isinstance(m, str):
                    m = json.loads(m)
                    if pred(m):
                        return m
        await until(lambda m: m["type"] == "session.ready")
        date = next_weekday()
        for t in range(turns):
            kind = "one round" if t % 2 == 0 else "tool + two rounds"
            text = "What are your hours?" if t % 2 == 0 else "Is %s available?" % date
            await ws.send(user_text(text))
            await ws.send('{"type":"response.create"}')
            await until(lambda m: m["type"] == "tool.call" and m["name"] == SUP
                        and m["status"] == "started")
            t0 = time.monotonic()
            end = await until(lambda m: m["type"] == "tool.call" and m["name"] == SUP
                              and m["status"] != "started")
            seen_ms = (time.monotonic() - t0) * 1000
            if end["status"] != "completed":
                raise RuntimeError("turn failed: %r" % end)
            out.setdefault(kind, []).append((end["duration_ms"], seen_ms))
            await until(lambda m: m["type"] == "response.done"
                        and m["response"].get("status") == "completed"
                        and any(o.get("type") == "message" for o in m["response"]["output"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--turns", type=int, default=50)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    sim_port, port = free_port(), free_port()
    sim = subprocess.Popen([BIN + "/switchboard-sim", "--port", str(sim_port), "--mode", "agent",
                            "--pace", "50", "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, OPENAI_API_KEY="sk-bench", SWITCHBOARD_PORT=str(port),
               SWITCHBOARD_REALTIME_URL="ws://127.0.0.1:%d/v1/realtime" % sim_port,
               SWITCHBOARD_OPENAI_BASE_URL="http://127.0.0.1:%d/v1" % sim_port,
               SWITCHBOARD_LOG_LEVEL="warn", SWITCHBOARD_SESSIONS_PER_MIN="100000",
               SWITCHBOARD_DB=os.path.join("build", "bench", "supervisor-%d.db" % port))
    svc = subprocess.Popen([BIN + "/switchboard"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    for line in svc.stderr:
        if re.search(r"listening on http://", line):
            break
    threading.Thread(target=lambda: [None for _ in svc.stderr], daemon=True).start()
    out = {}
    try:
        base = "http://127.0.0.1:%d" % port

        async def run():
            await asyncio.gather(*[session(base, i, a.turns, out) for i in range(a.sessions)])
        asyncio.run(run())
    finally:
        svc.send_signal(signal.SIGTERM)
        svc.wait(15)
        sim.terminate()
        sim.wait(5)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(env["SWITCHBOARD_DB"] + suffix)
            except OSError:
                pass
    for kind, pairs in sorted(out.items()):
        srv = [p[0] for p in pairs]
        seen = [p[1] for p in pairs]
        if a.markdown:
            print("| %s (%d calls, %d sessions in parallel) | %.2f / %.2f / %.2f ms | "
                  "%.0f / %.0f ms |" % (kind, len(pairs), a.sessions, pct(seen, 50),
                                        pct(seen, 99), max(seen), pct(srv, 50), pct(srv, 99)))
        else:
            print("%-18s n=%d client-seen p50=%.2f p99=%.2f max=%.2f ms; service duration_ms "
                  "p50=%.0f p99=%.0f" % (kind, len(pairs), pct(seen, 50), pct(seen, 99),
                                         max(seen), pct(srv, 50), pct(srv, 99)))


if __name__ == "__main__":
    main()
