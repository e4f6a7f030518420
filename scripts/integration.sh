#!/bin/sh
# Runs the black-box integration tests against the service binary in $SWITCHBOARD_BIN.
# Debian's python3 is used on purpose: python3-websockets and python3-aiohttp come from apt.
set -eu
: "${SWITCHBOARD_BIN:=build/bin/switchboard}"
export SWITCHBOARD_BIN
exec /usr/bin/python3 tests/integration/run.py "$@"
