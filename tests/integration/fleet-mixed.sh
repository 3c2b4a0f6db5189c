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
#  - the summary shows lws' calls reached sim_uvpoll.c (its skips > 0);
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
. "$(dirname "$0")/fleet-lib.sh"
fleet_init fleet-mixed
fleet_need jq
mkdir -p "$W/pulse" "$W/upload"
"$PULS" generate --line 20,10 --laser --gzip -o "$W/pulse/job.puls.gz" \
    >"$W/puls.log" 2>&1 || fail "gf-puls generate (job)"
"$PULS" generate --hunt --gzip -o "$W/pulse/hunt.puls.gz" \
    >>"$W/puls.log" 2>&1 || fail "gf-puls generate (hunt)"
fleet_password
cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "update_check"}, "expect": "update_check:completed", "events": ["update_check:completed"]}
{"send": {"action_type": "hunt", "motion_file": "hunt.puls.gz"}, "expect": "hunt:completed", "events": ["hunt:starting", "hunt:completed"]}
{"send": {"action_type": "motion", "motion_file": "job.puls.gz"}, "expect": "motion:completed", "events": ["motion:starting", "motion:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
fleet_sim_start --rate "$N" --duration $PER --grace 30 --ramp 60 \
    --start-after-signins "$N" --pulse-dir "$W/pulse" \
    --upload-dir "$W/upload" --transcript "$W/transcript.jsonl"
fleet_config <<C
connect_rate = 200
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
[ "$src" -eq 0 ] || fail "the sim exited $src"
S=$W/summary.json
jq -e --argjson n "$N" '.connected == $n and .all_up_s != null' "$S" \
    >/dev/null || fail "not all $N machines connected"
jq -e --argjson k $((N * PER)) '.actions_sent == $k and
    .terminals.completed == $k and .terminals.failed == 0 and
    .terminals.cancelled == 0 and .lost == 0 and .duplicated == 0 and
    .violations == 0 and .not_sent == 0' "$S" >/dev/null ||
    fail "actions lost, duplicated, failed or out of order"
# lws' libuv plugin reached the sim's own uv_poll_start() (sim_uvpoll.c):
# 0 would mean the executable no longer exports it.
jq -e '.sim.poll_calls_skipped > 0' "$S" >/dev/null ||
    fail "the sim's uv_poll_start() was never called by lws"
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
fleet_stop_daemon
fleet_no_reports
# A fleet's per-machine lines are DEBUG (its summary line speaks for all):
# at INFO, no line names a machine.
if grep -E '^[-0-9]+ [0-9:]+ INFO [^ ]+ m[0-9]+: ' "$W/daemon.log" \
    >"$W/info-lines"; then
	fail "$(wc -l <"$W/info-lines") per-machine INFO lines in a fleet," \
	    "first: $(head -1 "$W/info-lines")"
fi
echo "fleet-mixed: $N machines, $((N * PER)) actions:" \
    "$(for t in $TYPES; do printf '%s %s, ' "$t" \
    "$(grep -c -x "$t:completed" "$T")"; done)all up" \
    "$(jq .all_up_s "$S") s, p99 $(jq .latency_us.terminal.p99 "$S") us," \
    "daemon exit $D_RC"
exit 0
