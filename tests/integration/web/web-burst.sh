#!/bin/bash
# web-burst.sh BUILD_DIR WORK: a fleet (one daemon, [WEB] on) under
# gf-cloud-sim --load while two clients follow /api/events.  The history
# changes a few thousand times; each stream must get them as few
# updates (pushes are coalesced and shared, not one per change), and the
# state it ends with must be /api/status's: every action with its last
# event (the trailing push).  Counts, not timings.
set -u
bin=${1:?} W=${2:?}
n=20 rate=200 duration=3 first=31000000
sim=$bin/gf-cloud-sim daemon=$bin/gf-machine-emulator
command -v jq >/dev/null && command -v curl >/dev/null ||
    { echo "web-burst: needs jq and curl" >&2; exit 77; }
rm -rf "$W"
mkdir -p "$W"
SIM_PID= D_PID= CURLS=
cleanup() {
	for c in $CURLS; do kill -TERM "$c" 2>/dev/null; done
	[ -n "$D_PID" ] && kill -TERM "$D_PID" 2>/dev/null
	[ -n "$SIM_PID" ] && kill -TERM "$SIM_PID" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT
fail() { echo "web-burst: FAIL: $*" >&2; exit 1; }

umask 077
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw"
cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
mkfifo "$W/simport"
# --grace is a hang guard: the sim ends once every action has ended.
# Under TSan on a busy box the fleet took 40 to 60 actions a second, so
# the 600 due in 3 s needed more than 10 s after.
"$sim" --port 0 --print-port --machines "$n" --serial-first $first \
    --password-file "$W/pw" --load "$W/profile.jsonl" --rate "$rate" \
    --duration "$duration" --grace 60 --ramp 60 --start-after-signins "$n" \
    --summary-json "$W/summary.json" >"$W/simport" 2>"$W/sim.log" &
SIM_PID=$!
read -r -t 10 port <"$W/simport" || fail "no sim port"
cat >"$W/gf.cfg" <<C
[SERVICE]
server_url: http://127.0.0.1:$port
status_service_url: ws://127.0.0.1:$port
[FLEET]
count = $n
serial_first = $first
password_file = $W/pw
keep_jobs = False
[EMULATOR]
motion_dl_dir: $W/motion
[LOGGING]
file: $W/daemon.log
[WEB]
listen: 127.0.0.1:0
C
umask 022
"$daemon" -c "$W/gf.cfg" -f >"$W/daemon.out" 2>&1 &
D_PID=$!
# The port is in the log once the view listens (before any sign-in).
exec {lg}< <(exec timeout 20 tail -n +1 -F "$W/daemon.log" 2>/dev/null)
wport=
while IFS= read -r line <&"$lg"; do
	case $line in
	*'web: listening on http://127.0.0.1:'*)
		wport=${line##*127.0.0.1:}; wport=${wport%%[!0-9]*}; break ;;
	esac
done
exec {lg}<&-
[ -n "$wport" ] || fail "no web port in the log"
url=http://127.0.0.1:$wport
for i in 1 2; do
	curl -sN "$url/api/events" >"$W/sse.$i" &
	CURLS="$CURLS $!"
done
wait "$SIM_PID" || fail "the sim: $(cat "$W/summary.json" 2>/dev/null)"
SIM_PID=
sent=$(jq -r .actions_sent "$W/summary.json")
[ "${sent:-0}" -gt 100 ] || fail "only ${sent:-0} actions sent"
curl -sS --max-time 10 -o "$W/status.json" "$url/api/status" ||
    fail "/api/status"
jq -e '(.actions | length) == 100 and all(.actions[]; .state == "ended")' \
    "$W/status.json" >/dev/null || fail "/api/status: not 100 ended actions"

# The stream's state (its updates' actions, by id, the last wins) must
# come to hold every action of /api/status as it is there: awaited on
# the stream itself (the trailing push), at most 20 s.
caught_up() {	# FILE
	sed -n 's/^data: //p' "$1" | jq -s --slurpfile st "$W/status.json" '
	    (reduce (.[] | objects | .actions[]) as $a ({}; .[$a.id | tostring] = $a)) as $m
	    | all($st[0].actions[]; $m[.id | tostring] == .)' 2>/dev/null |
	    grep -q true
}
for i in 1 2; do
	ok=0
	exec {ev}< <(exec timeout 20 tail -n +1 -f "$W/sse.$i")
	caught_up "$W/sse.$i" && ok=1
	while [ $ok -eq 0 ] && IFS= read -r line <&"$ev"; do
		case $line in
		'data: '*) caught_up "$W/sse.$i" && ok=1 ;;
		esac
	done
	exec {ev}<&-
	[ $ok -eq 1 ] || fail "stream $i never showed the final state"
	# Each action is received and ends (two changes at least, most
	# have more): one update per change would be 2 * sent or more.
	ups=$(grep -c '^event: update' "$W/sse.$i")
	echo "web-burst: stream $i: $ups updates for $sent actions"
	[ $((ups * 5)) -lt "$sent" ] ||
	    fail "stream $i: $ups updates for $sent actions: not coalesced"
done
echo "web-burst: ok"
