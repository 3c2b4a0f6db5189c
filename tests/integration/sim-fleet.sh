#!/bin/bash
# sim-fleet.sh: gf-cloud-sim serving a fleet, in load mode, against
# several real daemons (one machine each) on loopback.
#
#   sim-fleet.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR [pass|negative|csv]
#
# pass: 3 daemons with serials S..S+2 sign in; daemon 1 is restarted (a
# second sign-in and a second socket of machine 1); the load (settings +
# lid_image, 30 actions/s for 3 s) starts once the 4th sign-in is in and
# every machine is up (--start-after-signins 4).  Passes when the sim
# exits 0 and its summary says: 3 machines connected, only one of them
# twice, every action sent and completed, 0 lost, 0 duplicated, 0
# violations; daemons 2 and 3 kept their one socket.
# negative: the profile expects settings:failed; the sim must exit 1
# and count the violations.
# csv: as pass, but the machines come from --machines-file, each with a
# password of its own; first, a CSV with a bad line must be refused (exit
# 2) with a message naming that line.
#
# Synchronisation: the sim prints its port; each daemon's "status socket
# up" line is awaited with tail -F; no sleeps.
set -u

SIM=${1:?usage: sim-fleet.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR [pass|negative]}
DAEMON=${2:?usage}
MODE=${3:-pass}
# For figures: SIM_FLEET_N daemons, SIM_FLEET_RATE actions/s for
# SIM_FLEET_DURATION s, SIM_FLEET_PROFILE instead of settings + lid_image;
# SIM_FLEET_SHOW=1 prints the summary and the sim's log.
N=${SIM_FLEET_N:-3}
FIRST=20000001
RATE=${SIM_FLEET_RATE:-30}
DURATION=${SIM_FLEET_DURATION:-3}
GUARD=${GFE_TERM_GUARD:-30}
command -v jq >/dev/null || { echo "sim-fleet: SKIP: no jq" >&2; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/sim-fleet.XXXXXX") || exit 1
SIM_PID=
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}" $SIM_PID; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$W"/sim.log "$W"/d*/daemon.log; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
	done
	exit 1
}

od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw"
pw_of() {	# I: machine I's password
	if [ "$MODE" = csv ]; then
		printf '%s%02d' "$(head -c 62 "$W/pw")" "$1"
	else
		cat "$W/pw"
	fi
}
FLEET=(--machines $N --serial-first $FIRST --password-file "$W/pw")
if [ "$MODE" = csv ]; then
	{
		echo "# serial,password,hostname"
		for i in $(seq 1 $N); do
			echo "S$((FIRST + i - 1)),$(pw_of "$i"),gf-$i.test"
		done
	} >"$W/fleet.csv"
	FLEET=(--machines-file "$W/fleet.csv")
	printf '1,a\n\n3\n' >"$W/bad.csv"
	printf '{"send": {"action_type": "settings"}}\n' >"$W/one.jsonl"
	"$SIM" --machines-file "$W/bad.csv" --load "$W/one.jsonl" --rate 1 \
	    --duration 1 >/dev/null 2>"$W/bad.log"
	rc=$?
	[ $rc -eq 2 ] || fail "a bad CSV: exit $rc, not 2"
	grep -q -F "$W/bad.csv:3: expected serial,password[,hostname]" \
	    "$W/bad.log" || fail "a bad CSV: no line number: $(cat "$W/bad.log")"
fi
if [ -n "${SIM_FLEET_PROFILE:-}" ]; then
	cp "$SIM_FLEET_PROFILE" "$W/profile.jsonl" || exit 1
elif [ "$MODE" = negative ]; then
	cp "$(dirname "$0")/scenarios/negative/load-wrong-terminal.jsonl" \
	    "$W/profile.jsonl" || exit 1
else
	cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
fi

mkfifo "$W/simport"
"$SIM" --port 0 --print-port "${FLEET[@]}" --load "$W/profile.jsonl" --rate $RATE \
    --duration $DURATION --grace 10 --ramp 60 --start-after-signins $((N + 1)) \
    --summary-json "$W/summary.json" --secrets "$W/secrets" \
    >"$W/simport" 2>"$W/sim.log" &
SIM_PID=$!
read -r -t 10 PORT <"$W/simport" || fail "the sim did not start"

# await_line FILE REGEX COUNT: until COUNT lines of FILE match.
await_line() {
	local fd pid rc
	exec {fd}< <(exec timeout "$GUARD" tail -n +1 -F "$1" 2>/dev/null)
	pid=$!
	grep -q -m"$3" -E -- "$2" <&"$fd"
	rc=$?
	exec {fd}<&-
	kill "$pid" 2>/dev/null
	return $rc
}

start_daemon() {	# I
	local d=$W/d$1
	"$DAEMON" -c "$d/gf.cfg" -f >"$d/stdout" 2>"$d/stderr" &
	PIDS[$1]=$!
}
for i in $(seq 1 $N); do
	d=$W/d$i
	mkdir -p "$d/motion"
	umask 077
	cat >"$d/gf.cfg" <<C
[SERVICE]
server_url: http://127.0.0.1:$PORT
status_service_url: ws://127.0.0.1:$PORT
[MACHINE]
serial: $((FIRST + i - 1))
password: $(pw_of "$i")
[EMULATOR]
motion_dl_dir: $d/motion
button_press_delay: 0.2
[LOGGING]
file: $d/daemon.log
C
	umask 022
	start_daemon "$i"
done
for i in $(seq 1 $N); do
	await_line "$W/d$i/daemon.log" 'status socket up' 1 ||
	    fail "daemon $i never connected"
done
# Machine 1 signs in again with a new process: machines 2 and 3 must not
# notice.  The load waits for this 4th sign-in.
kill -TERM "${PIDS[1]}"
wait "${PIDS[1]}" || fail "daemon 1 exited $? on SIGTERM"
start_daemon 1
await_line "$W/d1/daemon.log" 'status socket up' 2 ||
    fail "daemon 1 did not come back"

# The sim ends by itself: all answered, or the grace passed.
wait "$SIM_PID"
sim_rc=$?
SIM_PID=
for i in $(seq 1 $N); do
	kill -TERM "${PIDS[$i]}" 2>/dev/null
	wait "${PIDS[$i]}"
done
PIDS=()
[ -s "$W/summary.json" ] || fail "no summary (sim exit $sim_rc)"

FAILS=0
check() {	# WHAT GOT WANT
	[ "$2" = "$3" ] && return
	echo "FAIL: $1: got '$2', want '$3'" >&2
	FAILS=$((FAILS + 1))
}
J() { jq -r "$1" "$W/summary.json"; }
SCHED=$((RATE * DURATION))
if [ "$MODE" = negative ]; then
	check "the sim's exit" "$sim_rc" 1
	check "violations > 0" "$(J '.violations > 0')" true
	grep -q 'ended settings:completed, expected settings:failed' "$W/sim.log" ||
	    { echo "FAIL: no violation line in sim.log" >&2; FAILS=$((FAILS + 1)); }
else
	check "the sim's exit" "$sim_rc" 0
	check "machines connected" "$(J .connected)" $N
	check "machines that reconnected" "$(J .reconnected)" 1
	check "sign-ins" "$(J .signins)" $((N + 1))
	check "actions scheduled" "$(J .actions_scheduled)" $SCHED
	check "actions sent" "$(J .actions_sent)" $SCHED
	check "completed" "$(J .terminals.completed)" $SCHED
	check "lost" "$(J .lost)" 0
	check "duplicated" "$(J .duplicated)" 0
	check "violations" "$(J .violations)" 0
	check "latencies counted" "$(J .latency_us.terminal.count)" $SCHED
	check "p99 within max" "$(J '.latency_us.terminal.p99 <= .latency_us.terminal.max')" true
	for i in 2 3; do
		check "daemon $i's sockets" "$(grep -c 'status socket up' "$W/d$i/daemon.log")" 1
	done
	# Every machine took part: each got actions.
	# shellcheck disable=SC2034
	for i in $(seq 1 $N); do
		n=$(grep -c -E 'lid_image|settings' "$W/d$i/daemon.log")
		[ "$n" -gt 0 ] || { echo "FAIL: daemon $i got no action" >&2; FAILS=$((FAILS + 1)); }
	done
fi
if grep -q -E 'Sanitizer|runtime error:' "$W/sim.log" "$W"/d*/stderr; then
	echo "FAIL: $(grep -h -m3 -E 'Sanitizer|runtime error:' "$W/sim.log" "$W"/d*/stderr)" >&2
	FAILS=$((FAILS + 1))
fi
for i in $(seq 1 $N); do pw_of "$i"; echo; done >"$W/pws"
if grep -q -F -f "$W/pws" "$W/sim.log" "$W"/d*/daemon.log; then
	echo "FAIL: the password reached a log" >&2
	FAILS=$((FAILS + 1))
fi
[ $FAILS -eq 0 ] || fail "$FAILS checks failed"
echo "sim-fleet ($MODE): $(jq -c "{connected, all_up_s, actions_sent, terminals, lost, duplicated, violations, latency: .latency_us.terminal, sim}" "$W/summary.json")"
[ -n "${SIM_FLEET_SHOW:-}" ] && { cat "$W/summary.json" "$W/sim.log"; } >&2
exit 0
