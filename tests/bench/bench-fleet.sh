#!/bin/bash
# bench-fleet.sh: N machines in ONE daemon (a [FLEET]) against gf-cloud-sim
# serving the fleet in load mode on loopback.
#
#   bench-fleet.sh --bin BUILD_DIR [--machines N] [--rate R] [--duration S]
#                  [--connect-rate C] [--work DIR] [--tls] [--web STREAMS]
#                  [--loops L] [--mixed] [--profile FILE] [--pin]
#
# --mixed: issue 10's load profile, settings, update_check, hunt, motion
# (a small generated job) and lid_image in turn, instead of settings and
# lid_image.
# --profile FILE: a load profile of one's own (JSON lines, the scenario
# format), instead of the built-in ones; with --mixed, it may name the
# generated job.puls.gz and hunt.puls.gz.
# --pin: the daemon on CPU 0, the sim (and this script) on CPU 1, as a
# load generator on its own host would be; unpinned, the two share both
# cores with whatever else runs, and the scheduler's moves show in the
# tail.  Needs taskset and 2 CPUs.
# --loops L: [FLEET] loops, L event loops with a thread each (default 1).
#
# --tls: https and wss; the sim's certificate from a test CA made here
# with openssl (as run-scenario.sh --tls), given to the daemon as
# [SERVICE] ca_file.
# --web STREAMS: the daemon also serves its [WEB] view (on a free port)
# and STREAMS clients (curl -N) follow /api/events meanwhile (0: the view
# on, no stream); the daemon's CPU seconds (user+sys) are printed, and
# the stream messages received.
#
# The sim waits until every machine has signed in, then sends R actions/s
# (settings and lid_image) for S seconds across them.  Prints the sim's
# JSON summary (machines connected, seconds until all were up, actions,
# lost, duplicates, latency percentiles) and the daemon's /proc figures:
# VmRSS after start (the loop, no machine up yet) and its peak (VmHWM,
# the kernel's high-water mark), with KiB per machine between the two,
# and its threads.  Exits
# with the sim's status (non-zero on a lost or duplicated action or a
# violation), 2 on set-up errors.  A benchmark, not a ctest test.
set -u
n=100 rate=50 duration=5 crate=1000 bin= work= tls=0 web= loops=1 mixed=0 profile= pin=0
need() { echo "bench-fleet: $1 needs a value" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=${2:-}; shift 2 || need "$1" ;;
	--machines) n=${2:-}; shift 2 || need "$1" ;;
	--rate) rate=${2:-}; shift 2 || need "$1" ;;
	--duration) duration=${2:-}; shift 2 || need "$1" ;;
	--connect-rate) crate=${2:-}; shift 2 || need "$1" ;;
	--loops) loops=${2:-}; shift 2 || need "$1" ;;
	--work) work=${2:-}; shift 2 || need "$1" ;;
	--tls) tls=1; shift ;;
	--web) web=${2:-}; shift 2 || need "$1" ;;
	--mixed) mixed=1; shift ;;
	--profile) profile=${2:-}; shift 2 || need "$1" ;;
	--pin) pin=1; shift ;;
	*) echo "usage: bench-fleet.sh --bin BUILD_DIR [--machines N]" \
	    "[--rate R] [--duration S] [--connect-rate C] [--work DIR]" \
	    "[--tls] [--web STREAMS] [--loops L] [--mixed] [--profile FILE]" \
	    "[--pin]" >&2
	   exit 2 ;;
	esac
done
[ -n "$bin" ] || { echo "bench-fleet: --bin is required" >&2; exit 2; }
sim=$bin/gf-cloud-sim daemon=$bin/gf-machine-emulator
[ -x "$sim" ] && [ -x "$daemon" ] || { echo "bench-fleet: not built" >&2; exit 2; }
pin_d=()
if [ "$pin" -eq 1 ]; then
	command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null &&
	    taskset -c 1 true 2>/dev/null ||
	    { echo "bench-fleet: --pin needs taskset and CPUs 0 and 1" >&2
	      exit 2; }
	taskset -p -c 1 $$ >/dev/null || exit 2
	pin_d=(taskset -c 0)
fi
W=${work:-$(mktemp -d /tmp/bench-fleet.XXXXXX)}
mkdir -p "$W"
first=30000000
SIM_PID= D_PID= CURLS=
cleanup() {
	for c in $CURLS; do kill -TERM "$c" 2>/dev/null; done
	[ -n "$D_PID" ] && kill -TERM "$D_PID" 2>/dev/null
	[ -n "$SIM_PID" ] && kill -TERM "$SIM_PID" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT

umask 077
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw"
cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
sim_pulse=()
if [ "${mixed:-0}" -eq 1 ]; then
	mkdir -p "$W/pulse"
	{ "$bin/gf-puls" generate --line 20,10 --laser --gzip \
	    -o "$W/pulse/job.puls.gz" &&
	  "$bin/gf-puls" generate --hunt --gzip -o "$W/pulse/hunt.puls.gz"
	} >"$W/puls.log" 2>&1 ||
	    { echo "bench-fleet: gf-puls generate failed" >&2; exit 2; }
	cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "update_check"}, "expect": "update_check:completed", "events": ["update_check:completed"]}
{"send": {"action_type": "hunt", "motion_file": "hunt.puls.gz"}, "expect": "hunt:completed", "events": ["hunt:starting", "hunt:completed"]}
{"send": {"action_type": "motion", "motion_file": "job.puls.gz"}, "expect": "motion:completed", "events": ["motion:starting", "motion:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
	sim_pulse=(--pulse-dir "$W/pulse")
fi
if [ -n "$profile" ]; then
	cp "$profile" "$W/profile.jsonl" ||
	    { echo "bench-fleet: cannot read $profile" >&2; exit 2; }
fi
scheme=http wscheme=ws sim_tls=() ca_line=
if [ "$tls" -eq 1 ]; then
	t=$W/tls
	mkdir -p "$t"
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 \
		    -subj "/CN=bench-fleet test CA" \
		    -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -keyout "$t/server.key" -out "$t/server.csr" \
		    -subj "/CN=127.0.0.1" &&
		printf '%s\n' "basicConstraints=CA:FALSE" \
		    "extendedKeyUsage=serverAuth" \
		    "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$t/ext.cnf" &&
		openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" \
		    -CAkey "$t/ca.key" -CAcreateserial -days 2 \
		    -extfile "$t/ext.cnf" -out "$t/server.pem"
	} >"$t/openssl.log" 2>&1 ||
	    { echo "bench-fleet: openssl failed" >&2; exit 2; }
	scheme=https wscheme=wss
	sim_tls=(--tls-cert "$t/server.pem" --tls-key "$t/server.key")
	ca_line="ca_file: $t/ca.pem"
fi
rm -f "$W/simport"
mkfifo "$W/simport"
"$sim" --port 0 --print-port --machines "$n" --serial-first $first \
    --password-file "$W/pw" --load "$W/profile.jsonl" --rate "$rate" \
    --duration "$duration" --grace 10 --ramp 60 --start-after-signins "$n" \
    --summary-json "$W/summary.json" "${sim_tls[@]}" "${sim_pulse[@]}" \
    ${BENCH_FLEET_SIM_ARGS:-} >"$W/simport" 2>"$W/sim.log" &
SIM_PID=$!
read -r -t 10 port <"$W/simport" || { echo "bench-fleet: no sim" >&2; exit 2; }
cat >"$W/gf.cfg" <<C
[SERVICE]
server_url: $scheme://127.0.0.1:$port
status_service_url: $wscheme://127.0.0.1:$port
$ca_line
[FLEET]
count = $n
serial_first = $first
password_file = $W/pw
connect_rate = $crate
loops = $loops
keep_jobs = False
[EMULATOR]
motion_dl_dir: $W/motion
[LOGGING]
file: $W/daemon.log
C
[ -z "$web" ] || printf '[WEB]\nlisten: 127.0.0.1:0\n' >>"$W/gf.cfg"
umask 022
# BENCH_FLEET_SIM_ARGS: more arguments for the sim, e.g. "--transcript
# FILE" to see each action's events with their times.
# BENCH_FLEET_WRAP: a command the daemon runs under, e.g.
# "valgrind --tool=massif" to see where its memory goes.
rm -f "$W/daemon.log"	# a --work reused: the port is this run's
"${pin_d[@]}" ${BENCH_FLEET_WRAP:-} "$daemon" -c "$W/gf.cfg" -f >"$W/daemon.out" 2>&1 &
D_PID=$!
if [ -n "$web" ]; then
	wport=
	for _ in $(seq 100); do
		wport=$(sed -n 's|.*web: listening on http://127.0.0.1:\([0-9]*\).*|\1|p' \
		    "$W/daemon.log" 2>/dev/null | head -1)
		[ -n "$wport" ] && break
		sleep 0.1
	done
	[ -n "$wport" ] || { echo "bench-fleet: no web port" >&2; exit 2; }
	for i in $(seq "$web"); do
		curl -sN "http://127.0.0.1:$wport/api/events" >"$W/sse.$i" &
		CURLS="$CURLS $!"
	done
fi
# A benchmark samples /proc while the sim runs: the first sample is the
# loop before any socket is up.  Nothing here forks while the load runs:
# the awk and sleep of each sample, 15 processes a second on the sim's
# CPU under --pin, showed as 1-3 ms stalls in the sim, which the p99
# counted.  Builtins read /proc, a FIFO no one writes times the samples,
# and the peak is the kernel's own (VmHWM), read once the load is over.
base= peak=0 threads=0 rss= hwm= th=
proc_status() {
	local k v _
	rss= hwm= th=
	while read -r k v _; do
		case $k in
		VmRSS:) rss=$v ;;
		VmHWM:) hwm=$v ;;
		Threads:) th=$v ;;
		esac
	done <"/proc/$D_PID/status" 2>/dev/null
}
rm -f "$W/tick"
mkfifo "$W/tick"
exec 9<>"$W/tick"
while kill -0 "$SIM_PID" 2>/dev/null; do
	proc_status
	[ -n "$rss" ] || break
	# The base: once the daemon has logged (its libraries and config
	# loaded), not the bare fork.
	[ -n "$base" ] || { [ -s "$W/daemon.log" ] && base=$rss; }
	[ "$th" -gt "$threads" ] && threads=$th
	read -r -t 0.2 -u 9 _
done
proc_status
peak=${hwm:-0}
exec 9>&-
wait "$SIM_PID"
rc=$?
SIM_PID=
# utime + stime (fields 14, 15; the name in field 2 has no space here).
cpu=$(awk '{print $14 + $15}' "/proc/$D_PID/stat")
cat "$W/summary.json"
echo
echo "daemon: $n machines, VmRSS first sample ${base:-?} kB, peak (VmHWM) $peak kB," \
    "$(( (peak - ${base:-0}) / n )) KiB/machine, threads at most $threads"
echo "daemon: CPU $(awk -v t="$cpu" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.2f", t / hz}') s (user+sys)"
if [ -n "$web" ]; then
	for i in $(seq "$web"); do
		echo "web stream $i: $(grep -c '^event: update' "$W/sse.$i")" \
		    "updates, $(wc -c <"$W/sse.$i") bytes"
	done
fi
exit $rc
