#!/usr/bin/python3
"""A tiny MCP server for tests (stdio, newline-delimited JSON-RPC, Python stdlib only).

    fake_mcp.py LOG

Appends every line the client sends to LOG as "C <json>", and notes what it does itself as
"S <what>" ("S bye" when the client closes its stdin, the polite end of a stdio session). It speaks the protocol version the client asks for and pages tools/list three tools a
page, so its seven tools (eight after add_tool) take three pages (cursors "page-2", "page-3").

Tools:
- echo {message}: "Echo: <message>".
- slow {seconds}: answers "slow done" after the given time, whatever the client sent meanwhile
  (a cancel is logged, not obeyed: the answer is then a late one, "S late <id>").
- add_tool: adds `added_tool` to the list, answers "added", then sends
  notifications/tools/list_changed.
- added_tool: "added tool works" (only listed after add_tool).
- ping_me: sends the client a `ping` request whose id is the id of this tools/call (ids of the two
  directions collide), and answers the call with the client's reply as JSON.
- ask_client: the same with `sampling/createMessage`, then `roots/list`: the call's answer is the
  JSON array of the client's two replies.
- secret: "the secret" (tests allow-lists).
- crash {after}: the server kills itself with SIGKILL after that many seconds, never answering.
"""
import json
import os
import signal
import sys
import threading
import time

PAGE = 3
TOOLS = [
    {"name": "echo", "description": "Echoes the message",
     "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}},
                     "required": ["message"]}},
    {"name": "slow", "description": "Answers after a while",
     "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}}},
    {"name": "add_tool", "description": "Adds a tool and says the list changed",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "ping_me", "description": "Pings the client",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "ask_client", "description": "Sends the client sampling and roots requests",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "secret", "description": "Not for everyone",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "crash", "description": "Kills the server mid-call",
     "inputSchema": {"type": "object", "properties": {"after": {"type": "number"}}}},
]
ADDED = {"name": "added_tool", "description": "Appears after add_tool",
         "inputSchema": {"type": "object", "properties": {}}}

out_lock = threading.Lock()
log = None
pending = {}  # our requests to the client, by id: what to do with the reply


def note(s):
    with out_lock:
        log.write(s + "\n")
        log.flush()


def send(msg):
    line = json.dumps(msg, separators=(",", ":")) + "\n"
    with out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def result(rid, res):
    send({"jsonrpc": "2.0", "id": rid, "result": res})


def text(rid, s, is_error=False):
    res = {"content": [{"type": "text", "text": s}]}
    if is_error:
        res["isError"] = True
    result(rid, res)


def ask(rid, method, then):
    """Sends the client a request with id rid; then(reply) runs when its answer comes."""
    pending[rid] = then
    send({"jsonrpc": "2.0", "id": rid, "method": method, "params": {}})


def call(rid, params):
    name = params.get("name")
    args = params.get("arguments") or {}
    if name == "echo":
        text(rid, "Echo: %s" % args.get("message", ""))
    elif name == "slow":
        def later():
            time.sleep(float(args.get("seconds", 1)))
            note("S late %s" % json.dumps(rid))
            text(rid, "slow done")
        threading.Thread(target=later, daemon=True).start()
    elif name == "add_tool":
        if ADDED not in TOOLS:
            TOOLS.append(ADDED)
        text(rid, "added")
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        note("S list_changed")
    elif name == "added_tool" and ADDED in TOOLS:
        text(rid, "added tool works")
    elif name == "ping_me":
        ask(rid, "ping", lambda reply: text(rid, json.dumps(reply, sort_keys=True)))
    elif name == "ask_client":
        replies = []

        def second(reply):
            replies.append(reply)
            text(rid, json.dumps(replies, sort_keys=True))

        def first(reply):
            replies.append(reply)
            ask(rid, "roots/list", second)
        ask(rid, "sampling/createMessage", first)
    elif name == "crash":
        def die():
            time.sleep(float(args.get("after", 0.5)))
            note("S crash")
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Thread(target=die, daemon=True).start()
    elif name == "secret":
        text(rid, "the secret")
    else:
        text(rid, "Tool %s not found" % name, is_error=True)


def handle(msg):
    method = msg.get("method")
    rid = msg.get("id")
    if method is None:  # a response to one of ours: told apart by its fields
        then = pending.pop(rid, None)
        if then:
            then(msg)
        return
    if rid is None:
        if method == "notifications/cancelled":
            note("S cancelled %s" % json.dumps(msg.get("params", {}).get("requestId")))
        return
    params = msg.get("params") or {}
    if method == "initialize":
        result(rid, {"protocolVersion": params.get("protocolVersion", "2025-11-25"),
                     "capabilities": {"tools": {"listChanged": True}},
                     "serverInfo": {"name": "fake-mcp", "version": "1.0.0"}})
    elif method == "ping":
        result(rid, {})
    elif method == "tools/list":
        cursor = params.get("cursor")
        page = int(cursor.split("-")[1]) - 1 if cursor else 0
        res = {"tools": TOOLS[page * PAGE:(page + 1) * PAGE]}
        if (page + 1) * PAGE < len(TOOLS):
            res["nextCursor"] = "page-%d" % (page + 2)
        result(rid, res)
    elif method == "tools/call":
        call(rid, params)
    else:
        send({"jsonrpc": "2.0", "id": rid,
              "error": {"code": -32601, "message": "Method not found"}})


def main():
    global log
    log = open(sys.argv[1] if len(sys.argv) > 1 else "/dev/null", "a")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        note("C " + line)
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            handle(msg)
    note("S bye")


if __name__ == "__main__":
    main()
