#!/bin/sh
# browser-test.sh: plays tests/web/web.jsonl and, while the daemon runs,
# has headless Chromium load the page (tests/web/browser-check.sh).
#   browser-test.sh BUILD_DIR WORK_DIR
# Exit 77 (skip) only when Chromium is not installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser \
    >/dev/null 2>&1 || { echo "browser-test: SKIP: no chromium" >&2; exit 77; }
exec "$here/../run-scenario.sh" --bin "$1" --scenario "$here/web.jsonl" \
    --web-check "$here/browser-check.sh" --work "$2"
