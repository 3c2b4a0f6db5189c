#!/bin/bash
# fleet-loops.sh (issue 10): "[FLEET] loops = N: one loop per core,
# machines split by serial".
#
#   fleet-loops.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR
#
# One daemon runs a [FLEET] of N machines (100) with loops = L (2)
# against gf-cloud-sim in load mode (settings and lid_image, 20
# actions/s for 5 s, started once all N signed in).  Passes when:
#  - the sim's summary says all N up, every action sent completed, none
#    lost or duplicated, no violation;
#  - while the daemon runs (after the sim ended its load), it has L - 1
#    threads named "gfe-loop" (loop 0 is the main thread);
#  - SIGHUP then reloads: every loop stops, is joined and freed, and all
#    L come back (a second "glowforge: L loops" line);
#  - SIGTERM then ends the daemon with exit 0 and no sanitizer report
#    (the ASan build: no lws context, TLS context or CA store left).
# Synchronisation: the sim prints its port and exits once every action is
# answered; log lines are awaited with tail -F; the daemon's exit is
# waited for.  No sleeps.
set -u

SIM=${1:?usage: fleet-loops.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR}
DAEMON=${2:?usage}
N=${FLEET_LOOPS_N:-100}
L=${FLEET_LOOPS:-2}
FIRST=41000000
command -v jq >/dev/null || { echo "fleet-loops: SKIP: no jq" >&2; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/fleet-loops.XXXXXX") || exit 1
SIM_PID= D_PID=
cleanup() {
	[ -n "$D_PID" ] && kill -KILL "$D_PID" 2>/dev/null
	[ -n "$SIM_PID" ] && kill -TERM "$SIM_PID" 2>/dev/null
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
fail() {
	echo "fleet-loops: FAIL: $*" >&2
	echo "--- summary" >&2; cat "$W/summary.json" >&2 2>/dev/null
	echo "--- sim log (tail)" >&2; tail -n 20 "$W/sim.log" >&2
	echo "--- daemon out (tail)" >&2; tail -n 40 "$W/daemon.out" >&2
	echo "--- daemon log (tail)" >&2; tail -n 20 "$W/daemon.log" >&2
	exit 1
}

# await_nth FILE REGEX N: until the Nth line of FILE matching REGEX, the
# daemon's exit or 60 s; 0 when it came.
await_nth() {
	local fd pid rc
	exec {fd}< <(exec timeout 60 tail -n +1 -F --pid="$D_PID" "$1" \
	    2>/dev/null)
	pid=$!
	awk -v re="$2" -v k="$3" '$0 ~ re && ++n >= k { exit }
	    END { exit n < k }' <&"$fd"
	rc=$?
	exec {fd}<&-
	kill "$pid" 2>/dev/null
	return $rc
}

umask 077
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw"
cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
mkfifo "$W/simport"
"$SIM" --port 0 --print-port --machines "$N" --serial-first $FIRST \
    --password-file "$W/pw" --load "$W/profile.jsonl" --rate 20 \
    --duration 5 --grace 20 --start-after-signins "$N" \
    --summary-json "$W/summary.json" >"$W/simport" 2>"$W/sim.log" &
SIM_PID=$!
read -r -t 10 port <"$W/simport" || fail "the sim printed no port"
cat >"$W/gf.cfg" <<C
[SERVICE]
server_url: http://127.0.0.1:$port
status_service_url: ws://127.0.0.1:$port
[FLEET]
count = $N
serial_first = $FIRST
password_file = $W/pw
connect_rate = 200
loops = $L
keep_jobs = False
[EMULATOR]
motion_dl_dir: $W/motion
[LOGGING]
file: $W/daemon.log
C
umask 022
"$DAEMON" -c "$W/gf.cfg" -f >"$W/daemon.out" 2>&1 &
D_PID=$!
wait "$SIM_PID"
src=$?
SIM_PID=
[ -s "$W/summary.json" ] || fail "no summary (sim exit $src)"
[ "$src" -eq 0 ] || fail "the sim exited $src"
# The load ran on every machine; the daemon still runs its loops.
kill -0 "$D_PID" 2>/dev/null || fail "the daemon is gone"
loops=$(cat /proc/"$D_PID"/task/*/comm 2>/dev/null | grep -c '^gfe-loop$')
[ "$loops" -eq $((L - 1)) ] ||
    fail "$loops threads named gfe-loop, want $((L - 1)) (loops = $L)"
S=$W/summary.json
jq -e --argjson n "$N" '.signins >= $n and .connected == $n and
    .all_up_s != null' "$S" >/dev/null || fail "not all $N machines up"
jq -e '.actions_sent > 0 and .terminals.completed == .actions_sent and
    .lost == 0 and .duplicated == 0 and .violations == 0 and
    .not_sent == 0' "$S" >/dev/null || fail "actions lost, duplicated or failed"
kill -HUP "$D_PID"
await_nth "$W/daemon.log" "glowforge: $L loops" 2 ||
    fail "SIGHUP: the $L loops did not come back"
kill -TERM "$D_PID"
wait "$D_PID"
drc=$?
D_PID=
[ "$drc" -eq 0 ] || fail "the daemon exited $drc after SIGTERM"
if grep -q -E 'Sanitizer|runtime error:|still open|did not close' \
    "$W/daemon.out" "$W/daemon.log"; then
	fail "$(grep -h -m3 -E 'Sanitizer|runtime error:|still open|did not close' "$W/daemon.out" "$W/daemon.log")"
fi
grep -q "glowforge: $L loops" "$W/daemon.log" || fail "no 'glowforge: $L loops' line"
echo "fleet-loops: $N machines on $L loops ($loops more threads): all up" \
    "$(jq .all_up_s "$S") s, $(jq .actions_sent "$S") actions, lost" \
    "$(jq .lost "$S"), exit $drc"
exit 0
