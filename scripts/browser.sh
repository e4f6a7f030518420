#!/bin/sh
# Browser tests (issue 6): web/switchboard.js in Node, against a fake server and then (its chat
# and agent clients) against the real switchboard + switchboard-sim; then the end-to-end test in
# Debian's chromium driven by playwright-core (tests/browser/). npm installs exactly what
# tests/browser/package-lock.json pins; playwright-core never downloads a browser.
# Screenshots, the fake microphone's WAV and the browser's console go to build/test-artifacts/.
set -eu
: "${SWITCHBOARD_BIN:=build/bin/switchboard}"
export SWITCHBOARD_BIN
DIR=tests/browser
if [ ! -d "$DIR/node_modules/playwright-core" ] || [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$DIR" --no-audit --no-fund --loglevel=error
fi
if [ -z "${BROWSER_E2E_ONLY:-}" ]; then
    echo "# browser: switchboard.js unit tests"
    node --test "$DIR/lib.test.mjs"
    echo "# browser: switchboard.js against the real /ws/chat and /ws/agent"
    node --test "$DIR/live.test.mjs"
fi
echo "# browser: end to end in chromium"
node "$DIR/e2e.mjs" "$@"
echo "# browser: the calls dashboard in chromium"
node "$DIR/dashboard.mjs"
