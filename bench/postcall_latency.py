#!/usr/bin/python3
"""Post-call job latency (SPEC 15): N calls through switchboard-sim (agent mode), each one text
turn with a name, a phone and a question, hung up; the time from the call's end (endedAt) to its
job done with the CRM step done (postcall.updatedAt), over stdio MCP to tests/crm/crm_server.mjs.
Prints p50/p99/max. --concurrency calls at a time.

    bench/postcall_latency.py [--calls 50] [--concurrency 10]

Binaries come from build/bin (override with SWITCHBOARD_BIN_DIR)."""
import argparse, asyncio, json, os, statistics, sys, tempfile, time, urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_config import write_crm_config  # noqa: E402
from relay_matrix import start_service, start_sim, stop  # noqa: E402



def get(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


async def one_call(port, i):
    m = get(port, "/api/sessions", {})
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws?sessionId={m['sessionId']}"
                                  f"&token={m['token']}", max_size=None) as ws:
        async def until(t):
            while True:
                msg = await ws.recv()
                if isinstance(msg, str) and json.loads(msg).get("type") == t:
                    return
        await until("session.ready")
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text":
                "Hi, my name is Caller %d, my phone is 415-555-%04d. Do you do brakes?" % (i, i)}]}}))
        await ws.send('{"type":"response.create"}')
        await until("response.done")
    return m["sessionId"]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sb-postcall-bench-")
    cfg = write_crm_config(tmp)
    sim, sim_port = start_sim("--mode", "agent", "--pace", "20")
    svc, port = start_service(sim_port, a.calls, {
        "SWITCHBOARD_CONFIG": cfg, "SWITCHBOARD_DB": os.path.join(tmp, "sb.db"),
        "SWITCHBOARD_OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1"})
    try:
        await asyncio.sleep(2)  # the CRM server starts
        sem = asyncio.Semaphore(a.concurrency)

        async def guarded(i):
            async with sem:
                return await one_call(port, i)
        sids = set(await asyncio.gather(*[guarded(i) for i in range(a.calls)]))
        deadline = time.time() + 120
        while time.time() < deadline:
            calls = [c for c in get(port, "/api/calls?limit=100")["calls"] if c["sessionId"] in sids]
            if len(calls) == a.calls and all(c["postcall"] and c["postcall"]["state"] == "done"
                                              for c in calls):
                break
            await asyncio.sleep(0.2)
        lat = []
        for c in calls:
            rec = get(port, "/api/calls/" + c["id"])
            assert rec["postcall"]["steps"]["crm"] == "done", rec["postcall"]
            lat.append(rec["postcall"]["updatedAt"] - rec["endedAt"])
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        with open(os.path.join(tmp, "crm.json")) as f:
            contacts = len(json.load(f)["contacts"])
        print(f"{len(lat)} calls, {a.concurrency} at a time, {contacts} contacts in the CRM")
        print(f"call end -> CRM done: p50 {statistics.median(lat):.0f} ms, p99 {p99} ms, "
              f"max {lat[-1]} ms")
    finally:
        stop(svc)
        stop(sim)


if __name__ == "__main__":
    asyncio.run(main())
