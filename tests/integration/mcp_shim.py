#!/usr/bin/python3
"""A stdio MCP proxy for tests: runs the command after `--`, copies the client's lines to it and
its lines back, and appends every client line to LOG (one JSON per line, prefixed "C ").

When the client sends notifications/cancelled, the shim sends the server a ping of its own
(id "shim-ping") and logs "S alive" when the server answers it (the answer is not forwarded):
proof that the server kept working after the cancel.

    mcp_shim.py LOG -- node server.js [args...]
"""
import json
import subprocess
import sys
import threading


def main():
    log_path = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    log = open(log_path, "a", buffering=1)
    lock = threading.Lock()

    def note(s):
        with lock:
            log.write(s + "\n")

    def from_server():
        for line in child.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                m = None
            if isinstance(m, dict) and m.get("id") == "shim-ping":
                note("S alive")
                continue
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    t = threading.Thread(target=from_server, daemon=True)
    t.start()
    for line in sys.stdin.buffer:
        note("C " + line.decode(errors="replace").rstrip("\n"))
        child.stdin.write(line)
        try:
            m = json.loads(line)
        except ValueError:
            m = None
        if isinstance(m, dict) and m.get("method") == "notifications/cancelled":
            child.stdin.write(b'{"jsonrpc":"2.0","id":"shim-ping","method":"ping"}\n')
        child.stdin.flush()
    child.stdin.close()
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.terminate()
    t.join(2)


if __name__ == "__main__":
    main()
