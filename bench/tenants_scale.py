#!/usr/bin/python3
"""Tenants at scale (SPEC 16, issue 17's measurement): start-up time and RSS with N tenant files,
reload time, and the memory one idle tenant costs.

    bench/tenants_scale.py [--tenants 1000] [--mcp 10] [--bin build/bin/switchboard]

Writes N tenant files (each with its own brief, services, pages, keys and a phone number; --mcp
of them name an MCP server: tests/integration/fake_mcp.py over stdio) into a temporary directory,
then for N and for 1 tenant: starts switchboard, times the start (exec -> "listening on"), reads
VmRSS after the MCP servers are up, sends SIGHUP with every file changed and reads the reload's
own timing from the log (tenant.reloaded ms=...), then stops it. The per-tenant cost is
(RSS(N) - RSS(1)) / (N - 1). Stdlib only.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_MCP = os.path.join(ROOT, "tests", "integration", "fake_mcp.py")


def tenant(i, n_mcp, brief_tag=""):
    t = {
        "company": {"name": "Business %d" % i, "phone": "+1 555 %07d" % i,
                    "email": "desk%d@example.com" % i, "timezone": "America/New_York"},
        "brief": ("Business %d fixes things in town %d. %s" % (i, i, brief_tag)) * 8,
        "voice": "marin",
        "services": [{"name": "Service %d-%d" % (i, k), "duration_min": 30 + 15 * k,
                      "price": "$%d" % (50 + 10 * k)} for k in range(4)],
        "pages": {"home": ["hero", "services", "pricing", "contact"]},
        "publicKey": "pk_%032x" % (i * 7919 + 1),
        "apiSecret": "sk_%032x" % (i * 104729 + 3),
        "allowedOrigins": ["https://www%d.example.com" % i],
        "phoneNumbers": ["+1415%07d" % i],
    }
    if i < n_mcp:
        t["mcpServers"] = {"crm": {"command": sys.executable, "args": [FAKE_MCP]}}
    return t


def write_all(d, n, n_mcp, tag=""):
    for i in range(n):
        with open(os.path.join(d, "t%04d.json" % i), "w") as f:
            json.dump(tenant(i, n_mcp, tag), f)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_one(binary, d, n_mcp):
    tmp = tempfile.mkdtemp(prefix="sbscale-")
    log_path = os.path.join(tmp, "log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"SWITCHBOARD_PORT": "0", "SWITCHBOARD_CONFIG": d,
                "SWITCHBOARD_DB": os.path.join(tmp, "db"), "SWITCHBOARD_WORKERS": "2"})
    log = open(log_path, "wb")
    t0 = time.monotonic()
    p = subprocess.Popen([binary], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        while "listening on" not in open(log_path, errors="replace").read():
            if p.poll() is not None:
                raise SystemExit("switchboard exited: " + open(log_path).read()[-2000:])
            time.sleep(0.002)
        start_s = time.monotonic() - t0
        # The MCP servers start after listening; wait until they are all up (or 10 s).
        end = time.monotonic() + 10
        while time.monotonic() < end and \
                open(log_path, errors="replace").read().count("mcp.ready") < n_mcp:
            time.sleep(0.05)
        time.sleep(0.5)
        rss = rss_kb(p.pid)
        write_all(d, len([f for f in os.listdir(d) if f.endswith(".json")]), n_mcp, "v2")
        before = open(log_path, errors="replace").read().count("tenant.reloaded")
        p.send_signal(signal.SIGHUP)
        reload_ms = None
        end = time.monotonic() + 30
        while time.monotonic() < end:
            found = re.findall(r"tenant\.reloaded .*?ms=(\d+)", open(log_path, errors="replace").read())
            if len(found) > before:
                reload_ms = int(found[-1])
                break
            time.sleep(0.01)
        rss_after = rss_kb(p.pid)
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        return start_s, rss, reload_ms, rss_after
    finally:
        if p.poll() is None:
            p.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--mcp", type=int, default=10, help="tenants with an MCP server")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "switchboard"))
    a = ap.parse_args()
    rows = []
    for n, n_mcp in ((1, 0), (a.tenants, min(a.mcp, a.tenants))):
        d = tempfile.mkdtemp(prefix="sbtenants-")
        try:
            write_all(d, n, n_mcp)
            rows.append((n, n_mcp) + run_one(a.bin, d, n_mcp))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    print("%8s %5s %10s %10s %11s %14s" % ("tenants", "mcp", "start_ms", "rss_MB", "reload_ms",
                                            "rss_after_MB"))
    for n, m, start_s, rss, reload_ms, rss_after in rows:
        print("%8d %5d %10.0f %10.1f %11s %14.1f" % (n, m, start_s * 1000, rss / 1024,
                                                     reload_ms, rss_after / 1024))
    (n1, _, _, r1, _, _), (nn, _, _, rn, _, _) = rows
    if nn > n1:
        print("per tenant: %.1f KB (RSS difference / %d; includes its MCP share)"
              % ((rn - r1) / (nn - n1), nn - n1))


if __name__ == "__main__":
    main()
