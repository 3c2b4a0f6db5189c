#!/bin/bash
# fleet-mixed.sh (issue 10, section 5): "a fleet of 50 machines against
# the sim running a mixed profile".
#
#   fleet-mixed.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR GF_PULS
#
# One daemon runs a [FLEET] of N machines (50) against gf-cloud-sim in
# load mode with a profile of five action types: settings, update_check,
# hunt (a hunt job), motion (a small cut) and lid_image (a capture and a
# presigned upload), each line with its exact 2.6 event sequence.  The
# load is 5 actions per machine (N actions/s for 5 s), started once all
# N signed in; a machine runs one action at a time and goes through the
# profile in order, so 5 N actions over N machines reach every line.
# Passes when:
#  - the sim exits 0 and its summary says N connected, all up, every
#    action sent and completed, 0 lost, 0 duplicated, 0 violations (an
#    event out of the line's order or a wrong terminal is a violation);
#  - the sim's transcript holds, for each of the five types, at least one
#    "<type>:completed" (every action type got its terminal), and
#    exactly as many terminal events as actions sent (one each);
#  - SIGTERM then ends the daemon with exit 0 and no sanitizer report.
# Synchronisation: the sim prints its port through a fifo and exits once
# every action is answered; the daemon's exit is waited for (a guard
# kills it after GFE_TERM_GUARD s).  No sleeps, no timing assertion.
set -u

SIM=${1:?usage: fleet-mixed.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR GF_PULS}
DAEMON=${2:?usage}
PULS=${3:?usage}
N=${FLEET_MIXED_N:-50}
PER=5				# actions per machine: one profile round
FIRST=42000000
GUARD=${GFE_TERM_GUARD:-30}
TYPES="settings update_check hunt motion lid_image"
command -v jq >/dev/null || { echo "fleet-mixed: SKIP: no jq" >&2; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/fleet-mixed.XXXXXX") || exit 1
SIM_PID= D_PID=
cleanup() {
	[ -n "$D_PID" ] && kill -KILL "$D_PID" 2>/dev/null
	[ -n "$SIM_PID" ] && kill -TERM "$SIM_PID" 2>/dev/null
	wait 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
fail() {
	echo "fleet-mixed: FAIL: $*" >&2
	echo "--- summary" >&2; cat "$W/summary.json" >&2 2>/dev/null
	echo "--- sim log (tail)" >&2; tail -n 20 "$W/sim.log" >&2
	echo "--- daemon out (tail)" >&2; tail -n 30 "$W/daemon.out" >&2
	echo "--- daemon log (tail)" >&2; tail -n 20 "$W/daemon.log" >&2
	exit 1
}

mkdir -p "$W/pulse" "$W/upload"
"$PULS" generate --line 20,10 --laser --gzip -o "$W/pulse/job.puls.gz" \
    >"$W/puls.log" 2>&1 || fail "gf-puls generate (job)"
"$PULS" generate --hunt --gzip -o "$W/pulse/hunt.puls.gz" \
    >>"$W/puls.log" 2>&1 || fail "gf-puls generate (hunt)"
umask 077
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw"
cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "update_check"}, "expect": "update_check:completed", "events": ["update_check:completed"]}
{"send": {"action_type": "hunt", "motion_file": "hunt.puls.gz"}, "expect": "hunt:completed", "events": ["hunt:starting", "hunt:completed"]}
{"send": {"action_type": "motion", "motion_file": "job.puls.gz"}, "expect": "motion:completed", "events": ["motion:starting", "motion:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
mkfifo "$W/simport"
"$SIM" --port 0 --print-port --machines "$N" --serial-first $FIRST \
    --password-file "$W/pw" --load "$W/profile.jsonl" --rate "$N" \
    --duration $PER --grace 30 --ramp 60 --start-after-signins "$N" \
    --pulse-dir "$W/pulse" --upload-dir "$W/upload" \
    --transcript "$W/transcript.jsonl" --summary-json "$W/summary.json" \
    >"$W/simport" 2>"$W/sim.log" &
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
S=$W/summary.json
jq -e --argjson n "$N" '.connected == $n and .all_up_s != null' "$S" \
    >/dev/null || fail "not all $N machines connected"
jq -e --argjson k $((N * PER)) '.actions_sent == $k and
    .terminals.completed == $k and .terminals.failed == 0 and
    .terminals.cancelled == 0 and .lost == 0 and .duplicated == 0 and
    .violations == 0 and .not_sent == 0' "$S" >/dev/null ||
    fail "actions lost, duplicated, failed or out of order"
# The machines' events as the sim received them: one terminal per action,
# and a completed one of every type.
T=$W/terminals
jq -r 'select(.dir == "rx") | (.frame // .frames[]?) |
    select(.type == "event") | .event' "$W/transcript.jsonl" |
    grep -E ':(completed|failed|cancelled)$' |
    grep -v -E ':(capture|upload|download):' >"$T"
[ "$(wc -l <"$T")" -eq $((N * PER)) ] ||
    fail "$(wc -l <"$T") terminal events in the transcript, not $((N * PER))"
for t in $TYPES; do
	grep -q -x "$t:completed" "$T" || fail "no $t:completed received"
done
kill -TERM "$D_PID"
( exec timeout "$GUARD" tail --pid="$D_PID" -f /dev/null ) ||
    { kill -KILL "$D_PID"; fail "no exit within $GUARD s of SIGTERM"; }
wait "$D_PID"
drc=$?
D_PID=
[ "$drc" -eq 0 ] || fail "the daemon exited $drc after SIGTERM"
if grep -q -E 'Sanitizer|runtime error:' "$W/daemon.out"; then
	fail "$(grep -h -m3 -E 'Sanitizer|runtime error:' "$W/daemon.out")"
fi
echo "fleet-mixed: $N machines, $((N * PER)) actions:" \
    "$(for t in $TYPES; do printf '%s %s, ' "$t" \
    "$(grep -c -x "$t:completed" "$T")"; done)all up" \
    "$(jq .all_up_s "$S") s, p99 $(jq .latency_us.terminal.p99 "$S") us," \
    "daemon exit $drc"
exit 0
