#!/bin/sh
# systemd's view of a full cycle, through a real notify socket: READY=1
# only once the status socket is up, WATCHDOG=1 from the event loop, and
# STOPPING=1 at the end, in that order.  WATCHDOG_USEC is long (60 s) on
# purpose: the loop pings once as it starts, so the test needs no timing.
#
# usage: notify.sh BUILD_DIR NOTIFY_PROBE SOURCE_DIR WORK_DIR
set -eu
bin=$1 probe=$2 src=$3 work=$4

fail() { echo "notify: FAIL: $*" >&2; [ -f "$work/notify.log" ] &&
    sed 's/^/  /' "$work/notify.log" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
sock="$work/notify.sock"
mkfifo "$work/probe.fifo"
"$probe" "$sock" >"$work/probe.fifo" &
probe_pid=$!
exec 3<"$work/probe.fifo"
read -r first <&3 || fail "the probe did not start"
[ "$first" = LISTENING ] || fail "the probe said '$first'"
cat <&3 >"$work/notify.log" &
cat_pid=$!

NOTIFY_SOCKET=$sock WATCHDOG_USEC=60000000 "$src/tests/integration/run-scenario.sh" \
    --bin "$bin" --scenario "$src/tests/integration/scenarios/settings.jsonl" \
    --work "$work/run" || fail "the scenario failed"
"$probe" --send "$sock" PROBE_END=1
wait "$probe_pid" || fail "the probe failed"
wait "$cat_pid"
exec 3<&-

log=$work/notify.log
ready=$(grep -n 'READY=1' "$log" | head -n 1 | cut -d: -f1)
dog=$(grep -n '^WATCHDOG=1$' "$log" | head -n 1 | cut -d: -f1)
stop=$(grep -n 'STOPPING=1' "$log" | head -n 1 | cut -d: -f1)
[ -n "$ready" ] || fail "no READY=1"
[ -n "$dog" ] || fail "no WATCHDOG=1"
[ -n "$stop" ] || fail "no STOPPING=1"
grep -q 'READY=1|STATUS=status socket up' "$log" ||
    fail "READY=1 did not come with the socket up"
[ "$(grep -c 'READY=1' "$log")" -eq 1 ] || fail "READY=1 more than once"
[ "$ready" -lt "$stop" ] || fail "STOPPING=1 before READY=1"
[ "$(tail -n 1 "$log")" = STOPPING=1 ] || fail "STOPPING=1 is not last"
# Nothing secret goes to systemd either.
if grep -Eq '[0-9a-f]{64}|token' "$log"; then fail "a secret in a STATUS"; fi
echo "notify: ok ($(wc -l <"$log") messages)"
