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
GUARD=${GFE_TERM_GUARD:-60}
. "$(dirname "$0")/fleet-lib.sh"
fleet_init fleet-loops
fleet_need jq
fleet_loops_run 5
src=$SIM_RC
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
fleet_await_nth "$W/daemon.log" "glowforge: $L loops" 2 ||
    fail "SIGHUP: the $L loops did not come back"
fleet_stop_daemon
fleet_no_reports 'still open|did not close'
grep -q "glowforge: $L loops" "$W/daemon.log" || fail "no 'glowforge: $L loops' line"
echo "fleet-loops: $N machines on $L loops ($loops more threads): all up" \
    "$(jq .all_up_s "$S") s, $(jq .actions_sent "$S") actions, lost" \
    "$(jq .lost "$S"), exit $D_RC"
exit 0
