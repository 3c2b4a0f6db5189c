#!/bin/bash
# web-burst.sh BUILD_DIR WORK: a fleet (one daemon, [WEB] on) under
# gf-cloud-sim --load while two clients follow /api/events.  The history
# changes a few thousand times; each stream must get them as few
# updates (pushes are coalesced and shared, not one per change), and the
# state it ends with must be /api/status's: every action with its last
# event (the trailing push).  Counts, not timings.
set -u
bin=${1:?}
N=20 rate=200 duration=3 FIRST=31000000
SIM=$bin/gf-cloud-sim DAEMON=$bin/gf-machine-emulator
. "$(dirname "$0")/../fleet-lib.sh"
FLEET_D_SIG=TERM
fleet_init web-burst "${2:?}"
fleet_need jq curl
CURLS=
fleet_on_exit() {
	for c in $CURLS; do kill -TERM "$c" 2>/dev/null; done
}

fleet_password
fleet_profile_settings_lid
# --grace is a hang guard: the sim ends once every action has ended.
# Under TSan on a busy box the fleet took 40 to 60 actions a second, so
# the 600 due in 3 s needed more than 10 s after.
fleet_sim_start --rate "$rate" --duration "$duration" --grace 60 --ramp 60 \
    --start-after-signins "$N"
fleet_config <<C
keep_jobs = False
[EMULATOR]
motion_dl_dir: $W/motion
[LOGGING]
file: $W/daemon.log
[WEB]
listen: 127.0.0.1:0
C
fleet_daemon_start
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
fleet_sim_wait
[ "$SIM_RC" -eq 0 ] || fail "the sim exited $SIM_RC"
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
