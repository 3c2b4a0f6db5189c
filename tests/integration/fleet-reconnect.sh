#!/bin/bash
# fleet-reconnect.sh (issue 10): "when the cloud drops every socket at
# once, the machines come back within the connect rate, with jitter".
#
#   fleet-reconnect.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR
#
# One daemon runs a [FLEET] of N machines (200) with connect_rate C (40)
# against gf-cloud-sim in load mode (settings and lid_image, 20
# actions/s for 10 s).
# The load starts once all N have signed in; 2 s into it the sim closes
# every WebSocket at once (--drop-all-at, a clean 1001 close).  Passes
# when the sim's summary says:
#  - all N machines were back up after the drop, each signed in again;
#  - the most sign-ins the sim answered in any sliding 1-second window
#    after the drop is <= 2 (C + burst), burst being the gate's bucket
#    (machine.c: a tenth of a second's worth, at least 1).  The daemon
#    admits at most C + burst a second, but the sim times a sign-in
#    when it answers it, and a sim whose loop stalls answers a backlog
#    at once: twice the rate leaves room for that, while a herd (the
#    gate bypassed) brings all 200 within half a second;
#  - no action duplicated, no violation, and lost <= the actions under
#    way at the drop (in_flight): the sim closes those sockets mid-action
#    and an event the daemon wrote as the close crossed it may never be
#    read, so such an action may legitimately end without a terminal.
#    The sim drops right after queueing the action due at that moment,
#    so at least one is under way; so far every one still ended (lost 0).
#    Actions sent after the drop must all end.
# Synchronisation: the sim prints its port; the script waits for the sim
# to exit (it ends once every action is answered and all are back).
set -u

SIM=${1:?usage: fleet-reconnect.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR}
DAEMON=${2:?usage}
N=${FLEET_RECONNECT_N:-200}
CRATE=${FLEET_RECONNECT_RATE:-40}
FIRST=40000000
. "$(dirname "$0")/fleet-lib.sh"
FLEET_D_SIG=TERM
fleet_init fleet-reconnect
fleet_need jq
fleet_password
fleet_profile_settings_lid
fleet_sim_start --rate 20 --duration 10 --grace 10 --ramp 60 \
    --start-after-signins "$N" --drop-all-at 2
fleet_config <<C
connect_rate = $CRATE
keep_jobs = False
[EMULATOR]
motion_dl_dir: $W/motion
[LOGGING]
file: $W/daemon.log
C
fleet_daemon_start
fleet_sim_wait
src=$SIM_RC
[ -s "$W/summary.json" ] || fail "no summary (sim exit $src)"
# The sim exits 1 on a lost action, which the drop may excuse (below).
[ "$src" -eq 0 ] || { [ "$src" -eq 1 ] &&
    jq -e '.lost > 0' "$W/summary.json" >/dev/null; } ||
    fail "the sim exited $src"
burst=$(awk -v r="$CRATE" 'BEGIN { b = int(r / 10); print (b > 1 ? b : 1) }')
cap=$((2 * (CRATE + burst)))
S=$W/summary.json
jq -e '.drop != null' "$S" >/dev/null || fail "the sim never dropped"
jq -e --argjson n "$N" '.drop.all_back_s != null and
    .reconnected == $n and
    .drop.signins_after >= $n and .signins_total >= 2 * $n' "$S" \
    >/dev/null || fail "not all $N machines came back after the drop"
jq -e --argjson cap "$cap" '.drop.max_signins_1s <= $cap' "$S" \
    >/dev/null || fail "a herd: $(jq .drop.max_signins_1s "$S") sign-ins" \
    "in one second, more than 2 (connect_rate $CRATE + burst $burst)"
jq -e '.duplicated == 0 and .violations == 0 and .not_sent == 0 and
    .lost <= .drop.in_flight' "$S" >/dev/null ||
    fail "actions lost or duplicated beyond the drop's own"
echo "fleet-reconnect: $N machines back $(jq .drop.all_back_s "$S") s" \
    "after the drop, at most $(jq .drop.max_signins_1s "$S") sign-ins" \
    "in 1 s (cap $cap), lost $(jq .lost "$S") of" \
    "$(jq .drop.in_flight "$S") under way"
exit 0
