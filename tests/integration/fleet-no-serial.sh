#!/bin/bash
# fleet-no-serial.sh: a fleet of 3 machines in one daemon, keep_jobs =
# True, each machine runs print jobs from gf-cloud-sim in load mode.  The
# serial is half of a machine's login (PROTOCOL.md 2): no line of the
# daemon's log (at DEBUG) or of its stdout/stderr may carry any machine's
# serial, while the kept jobs really are in <motion_dl_dir>/<serial>/.
# The web view ([WEB]) shows every machine's jobs in one gallery, under
# the machine's label and at /jobs/m<index>/..., and no page or API
# answer carries a serial either.
#
#   fleet-no-serial.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR GF_PULS
#
# Synchronisation: the sim prints its port on a fifo and exits when the
# load is done; the daemon is then ended with SIGTERM and awaited.
set -u
SIM=${1:?usage: fleet-no-serial.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR GF_PULS}
DAEMON=${2:?usage}
PULS=${3:?usage}
N=3
FIRST=40000001
GUARD=${GFE_TERM_GUARD:-30}
. "$(dirname "$0")/fleet-lib.sh"
FLEET_SIM_SIG=KILL
fleet_init fleet-no-serial
[ -x "$SIM" ] && [ -x "$DAEMON" ] && [ -x "$PULS" ] || fleet_skip "not built"

# The gallery, once every kept job has its picture (awaited on the
# page's own event stream; 30 s is a hang guard).
web_check() {
	local url n want name k
	url=$(grep -m1 -o -E 'web: listening on http://[0-9.:]+' \
	    "$W/daemon.log" | sed 's/^web: listening on //')
	[ -n "$url" ] || { echo "no web: listening line" >&2; return 1; }
	want=$(ls "$W"/motion/*/*.puls 2>/dev/null | wc -l)
	drawn() {
		curl -sS --max-time 10 -o "$W/jobs.json" "$url/api/jobs" &&
		    jq -e --argjson n "$want" '(.jobs | length) == $n and
		    all(.jobs[]; .picture == "ready")' "$W/jobs.json" \
		    >/dev/null
	}
	if ! drawn; then
		exec {ev}< <(exec curl -sS -N --max-time 30 "$url/api/events")
		while IFS= read -r line <&"$ev"; do
			[ "$line" = 'event: jobs' ] && drawn && break
		done
		exec {ev}<&-
		drawn || { echo "gallery: not $want jobs drawn:" \
		    "$(head -c 300 "$W/jobs.json")" >&2; return 1; }
	fi
	[ "$want" -ge $N ] || { echo "only $want jobs kept" >&2; return 1; }
	# Each is the machine's file, served under its index, not its serial.
	n=0
	while read -r name k; do
		s=$((FIRST + ${k#m}))
		curl -sS --max-time 10 -o "$W/got" \
		    "$url/jobs/$k/$name.puls" &&
		    cmp -s "$W/got" "$W/motion/$s/$name.puls" ||
		    { echo "/jobs/$k/$name.puls is not motion/<serial>/" >&2
		    return 1; }
		curl -sS --max-time 10 -o "$W/got" "$url/jobs/$k/$name.png" &&
		    [ "$(head -c 4 "$W/got" | od -An -tx1 | tr -d ' ')" = \
		    89504e47 ] || { echo "$k/$name.png: no PNG" >&2; return 1; }
		n=$((n + 1))
	done < <(jq -r '.jobs[] | select(.puls_url == "jobs/" + .machine +
	    "/" + .name + ".puls") | "\(.name) \(.machine)"' "$W/jobs.json")
	[ "$n" -eq "$want" ] || { echo "$n of $want jobs under jobs/m<i>/:" \
	    "$(head -c 300 "$W/jobs.json")" >&2; return 1; }
	# A key is a whole segment: no other machine's folder, no way out.
	for p in "/jobs/m0/../m1/$name.puls" "/jobs/$s/$name.puls" \
	    "/jobs/$name.puls" "/jobs/m0%2f$name.puls"; do
		[ "$(curl -sS --path-as-is --max-time 10 -o /dev/null \
		    -w '%{http_code}' "$url$p")" != 200 ] ||
		    { echo "$p: 200" >&2; return 1; }
	done
	for p in /api/jobs /api/status /metrics /; do
		curl -sS --max-time 10 -o "$W/page" "$url$p" || return 1
		for i in $(seq 0 $((N - 1))); do
			! grep -q "$((FIRST + i))" "$W/page" ||
			    { echo "$p names serial $((FIRST + i))" >&2
			    return 1; }
		done
	done
}

mkdir -p "$W/pulse"
"$PULS" generate --line 20,10 --laser --gzip -o "$W/pulse/job.puls.gz" \
    >"$W/puls.log" 2>&1 || fail "gf-puls generate"
fleet_password
cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "print", "motion_file": "job.puls.gz"}, "expect": "print:completed"}
P
fleet_sim_start --listen 127.0.0.1 --pulse-dir "$W/pulse" --rate 3 \
    --duration 2 --grace 20 --start-after-signins $N
fleet_config <<C
keep_jobs = True
[EMULATOR]
motion_dl_dir: $W/motion
[WEB]
listen = 127.0.0.1:0
[LOGGING]
file: $W/daemon.log
level: debug
console_level: debug
C
fleet_daemon_start
fleet_sim_wait
rc=$SIM_RC
web_check || fail "the web view (above)"
fleet_stop_daemon
[ "$rc" -eq 0 ] || fail "the sim's verdict: $rc"
# The jobs were kept, each under its machine's serial: the paths exist.
for i in $(seq 0 $((N - 1))); do
	s=$((FIRST + i))
	ls "$W/motion/$s/"*.puls >/dev/null 2>&1 ||
	    fail "no job kept in motion/$s/"
done
for i in $(seq 0 $((N - 1))); do
	s=$((FIRST + i))
	if grep -n "$s" "$W/daemon.log" "$W/daemon.out" >"$W/hits"; then
		head -n 5 "$W/hits" >&2
		fail "serial $s is in the daemon's log"
	fi
done
grep -q "kept as" "$W/daemon.log" || fail "no 'kept as' line in the log"
echo "fleet-no-serial: $N machines kept jobs, shown in one gallery;" \
    "no serial in any log line or page"
exit 0
