#!/bin/bash
# browser-test.sh: headless Chromium opens the page FIRST, then the
# scenario (tests/integration/web/web.jsonl, after an await_file line) plays: the
# actions must reach the open page live, without a reload.
#   browser-test.sh BUILD_DIR WORK_DIR
# The opener (in the background) awaits the daemon's "web: listening on"
# line, has cdp.py load the page and make WORK/pulse/page-open, which lets
# the sim play; once the scenario passed, browser-check.sh (run-scenario's
# --web-check) hands cdp.py what the page must show, and gets its verdict.
# Exit 77 (skip) only when Chromium is not installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
chromium=$(command -v chromium || command -v chromium-browser) ||
    { echo "browser-test: SKIP: no chromium" >&2; exit 77; }
build=$1 work=${2%/}
# run-scenario.sh makes WORK afresh; wiped here first, so the opener never
# reads a former run's log.
case $work in /|'') exit 2 ;; esac
if [ -e "$work" ]; then
	[ -f "$work/.run-scenario" ] || [ -z "$(ls -A "$work")" ] || exit 2
	rm -rf "$work" || exit 2
fi
scenario=$work.jsonl
# A FlashForge too, for the page's printer line; its ports below the
# ephemeral range (32768 up: a client socket of another test took 33640
# once) and below the other FlashForge tests' (12000 to 31999), spread
# by pid.
base=$((8000 + ($$ % 500) * 8))
{
	echo '{"await_file": "page-open", "timeout": 120, "comment": "the page is open"}'
	printf '{"config": {"FLASHFORGE": {"model": "adventurer5m", "serial": "SNBROWSER", "check_code": "abc123", "tcp_port": %d, "http_port": %d, "discovery_port": 0, "multicast_port": 0, "camera_port": 0}}}\n' \
	    "$base" $((base + 1))
	cat "$here/web.jsonl"
} >"$scenario" || exit 2

opener() {
	local fd pid url
	exec {fd}< <(exec timeout 120 tail -n +1 -F "$work/daemon.log" \
	    2>/dev/null)
	pid=$!
	url=$(grep -m1 -o -E 'web: listening on http://[0-9.:]+' <&"$fd")
	exec {fd}<&-
	kill "$pid" 2>/dev/null
	url=${url#web: listening on }
	[ -n "$url" ] || { echo "opener: no web line" >&2; exit 1; }
	mkdir -p "$work/browser" &&
	    mkfifo "$work/browser/expect.fifo" "$work/browser/result.fifo" ||
	    exit 1
	exec python3 "$here/cdp.py" "$chromium" "$url/" "$work/browser" \
	    "$work/pulse/page-open" "$work/motion"
}
opener >"$work.opener.log" 2>&1 &
opener_pid=$!

"$here/../run-scenario.sh" --bin "$build" --scenario "$scenario" \
    --web-check "$here/browser-check.sh" --work "$work"
rc=$?
# After a failure cdp.py may still wait for its expectation.
[ $rc -eq 0 ] || kill "$opener_pid" 2>/dev/null
wait "$opener_pid"
orc=$?
cat "$work.opener.log" >&2
[ $rc -eq 0 ] && [ $orc -ne 0 ] && rc=1
exit $rc
