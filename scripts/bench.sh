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
} > "$R"
cat "$R"
