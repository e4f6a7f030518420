#!/bin/sh
# make bench: runs the benchmarks on the release build and writes one markdown report to
# build/bench/results.md (also printed). Figures come from one run on this machine.
set -eu
OUT=build/bench
mkdir -p "$OUT"
R="$OUT/results.md"
{
    echo "# switchboard benchmarks"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -r)"
    echo
    echo "## Runtime"
    echo
    echo "| measurement | result |"
    echo "|---|---|"
    build/release/bench/bench_mbox --markdown
    echo
    echo "| audio codecs (release build) | result |"
    echo "|---|---|"
    build/release/bench/bench_audio --markdown
    echo
    echo "| round trip over loopback (us) | p50 | p99 | max |"
    echo "|---|---|---|---|"
    build/release/bench/bench_roundtrip --markdown
    echo
    echo "## Idle connections"
    echo
    echo "| measurement | result |"
    echo "|---|---|"
    SWITCHBOARD_BIN=build/bin/switchboard /usr/bin/python3 bench/idle_conns.py --markdown
    echo
    echo "## Voice relay under load (switchboard-bench, switchboard-sim in echo mode)"
    echo
    echo "24 kHz PCM16, 20 ms frames, ${RELAY_DURATION:-10} s of audio per session; every process on this machine."
    echo
    /usr/bin/python3 bench/relay_matrix.py --sessions "${RELAY_SESSIONS:-50,200,500,1000}" \
        --duration "${RELAY_DURATION:-10}" --peers "${RELAY_PEERS:-go,node}" \
        --json "$OUT/relay.json"
    echo
    echo "### System calls per relayed round trip, by thread (steady state, \`bench/relay_syscalls.py\`)"
    echo
    /usr/bin/python3 bench/relay_syscalls.py --sessions "${SYSCALL_SESSIONS:-200}"
    echo
    echo "## Phone calls against the browser path (switchboard-bench --twilio, the simulator in echo mode)"
    echo
    echo "μ-law 8 kHz Twilio Media Streams (marks echoed as played) and PCM16 24 kHz /ws sessions," \
        "${PHONE_DURATION:-10} s of audio per session; every process on this machine."
    echo
    /usr/bin/python3 bench/phone_matrix.py --sessions "${PHONE_SESSIONS:-50,200,500}" \
        --duration "${PHONE_DURATION:-10}" --json "$OUT/phone.json"
    echo
    echo "The same at ${PHONE_SESSIONS_2NET:-200} calls with two network threads" \
        "(\`SWITCHBOARD_NET_THREADS=2\`, the setting for a phone-heavy gateway; README, \"Phone calls\"):"
    echo
    /usr/bin/python3 bench/phone_matrix.py --sessions "${PHONE_SESSIONS_2NET:-200}" \
        --duration "${PHONE_DURATION:-10}" --net-threads 2 --json "$OUT/phone-2net.json"
    echo
    echo "### System calls per phone round trip, by thread (\`bench/relay_syscalls.py --twilio\`)"
    echo
    echo "Next to the browser sessions' table above: a phone call reads Twilio's mark echo too."
    echo
    /usr/bin/python3 bench/relay_syscalls.py --sessions "${SYSCALL_SESSIONS:-200}" --twilio
    echo
    echo "## Audio isolation under tool load"
    echo
    echo "${ISOLATION_SESSIONS:-200} audio sessions x ${ISOLATION_DURATION:-10} s, quiet and then with" \
        "${ISOLATION_STORM:-50} --tool-storm sessions (each supervisor run: 10 rounds of a booking" \
        "tool behind a 50 ms chat model); fresh processes for each run."
    echo
    echo "The storm's supervisor answers are spoken at real time (the storm adds that audio too):"
    echo
    /usr/bin/python3 bench/isolation.py --sessions "${ISOLATION_SESSIONS:-200}" \
        --storm "${ISOLATION_STORM:-50}" --duration "${ISOLATION_DURATION:-10}" \
        --json "$OUT/isolation.json"
    echo
    echo "The same with the storm's answers as text (\`--text-answers\`): the tool work alone:"
    echo
    /usr/bin/python3 bench/isolation.py --sessions "${ISOLATION_SESSIONS:-200}" \
        --storm "${ISOLATION_STORM:-50}" --duration "${ISOLATION_DURATION:-10}" \
        --text-answers --json "$OUT/isolation-text.json"
    echo
    echo "## Supervisor overhead (function call -> function_call_output, simulator answering at once)"
    echo
    echo "| turn | client-seen p50 / p99 / max | service duration_ms p50 / p99 |"
    echo "|---|---|---|"
    /usr/bin/python3 bench/supervisor_overhead.py --markdown
    echo
    echo "## MCP tools/call round trip (echo of server-everything)"
    echo
    /usr/bin/python3 bench/mcp_overhead.py
    echo
    echo "## Console in chromium (performance timeline; switchboard-sim in agent mode)"
    echo
    BROWSER_E2E_ONLY=1 scripts/browser.sh --markdown | grep '^|'
} > "$R"
cat "$R"
