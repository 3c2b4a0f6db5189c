#!/bin/bash
# bench-bigjob.sh: a job of any size runs in bounded memory.  gf-cloud-sim
# serves a motion job whose pulse body is SIZE MiB (default 1024) plain,
# gzip on the wire (a slow straight line compresses about 900:1, so it is
# cheap to make and to serve); the daemon streams it: inflates, checks,
# counts and writes its copy to motion_dl_dir as the bytes arrive.
#
#   bench-bigjob.sh --bin BUILD_DIR [--size MIB] [--limit-mib MIB]
#                   [--work DIR]
#
# Idle is the daemon's VmRSS once its socket is up and a settings action
# has been served: the sim samples /proc/<pid>/status just before it
# writes the motion frame (--machine-memory).  Peak is VmHWM, the
# kernel's high-water mark of VmRSS, read after motion:completed while the
# daemon still runs: no sampling can miss it.  Exits 1 when peak - idle is
# not under --limit-mib (default 16, the project's target) or the job did
# not complete, 2 on set-up errors.  The kept copy (SIZE MiB) is deleted;
# without --work the whole folder is.  A benchmark, not a ctest test.
set -u
BENCH=bench-bigjob
. "$(dirname "$0")/bench-lib.sh"

usage() {
	echo "usage: bench-bigjob.sh --bin BUILD_DIR [--size MIB]" \
	    "[--limit-mib MIB] [--work DIR]" >&2
	exit 2
}

bin= size=1024 limit=16 wdir=
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=${2:-}; shift 2 || usage ;;
	--size) size=${2:-}; shift 2 || usage ;;
	--limit-mib) limit=${2:-}; shift 2 || usage ;;
	--work) wdir=${2:-}; shift 2 || usage ;;
	-h|--help) usage ;;
	*) echo "$BENCH: unknown argument $1" >&2; usage ;;
	esac
done
[ -n "$bin" ] || usage
case $size in ''|*[!0-9]*|0) bench_die "--size: MiB, a positive number" ;; esac
case $limit in ''|*[!0-9]*) bench_die "--limit-mib: MiB" ;; esac

bench_init "$bin" "$wdir"
# The kept copy must not be left behind, whatever happens: a trap of our
# own, then the library's.
bench_bigjob_cleanup() {
	rm -f "$work"/motion/*.puls "$work"/motion/.*.tmp* 2>/dev/null
	bench_cleanup
}
trap bench_bigjob_cleanup EXIT

# At --speed 0.01 mm/s and 10000 ticks/s a mm is 10^6 ticks, a byte each.
mm=$(( (size * 1048576 + 999999) / 1000000 ))
bench_gen big.puls.gz --line "$mm,0" --speed 0.01 --gzip
wire=$(stat -c %s "$work/pulse/big.puls.gz")

cat >"$work/scenario.jsonl" <<'EOF'
# The socket up and one action served: then the idle sample, then the job.
{"send": {"action_type": "settings"}, "expect": "settings:completed"}
{"send": {"action_type": "motion", "motion_file": "big.puls.gz"}, "expect": "motion:completed", "timeout": 1800}
EOF

# The body bound is a config key: set it past the job, so the job runs.
BENCH_CFG=("EMULATOR max_job_size $((size + 1))")
start=$(date +%s.%N)
bench_start "$work/scenario.jsonl" --machine-memory "$work/memory.txt" \
    --timeout 1900
bench_wait_sim
end=$(date +%s.%N)
pid=$bench_daemon_pid
hwm= rss=
if [ -n "$pid" ]; then
	hwm=$(bench_status_kb "$pid" VmHWM)
	rss=$(bench_status_kb "$pid" VmRSS)
	cp "/proc/$pid/smaps_rollup" "$work/smaps_rollup.end" 2>/dev/null
fi
bench_stop_daemon || sim_rc=2

# "frame 2 VmRSS <kB> VmHWM <kB> ...": the sample before the motion frame.
idle=$(awk '$1 == "frame" && $2 == 2 {
	for (i = 3; i < NF; i += 2) if ($i == "VmRSS") print $(i + 1) }' \
    "$work/memory.txt" 2>/dev/null)
kept=$(stat -c %s "$work"/motion/*.puls 2>/dev/null | head -n 1)
rm -f "$work"/motion/*.puls

status=0
if [ "$sim_rc" -ne 0 ] || [ -z "$kept" ]; then
	# The folder may go at exit: say here what the daemon said.
	echo "$BENCH: the job did not complete; the daemon said:" >&2
	grep -E 'refused|failed' "$work/daemon.stderr" | tail -n 3 | sed 's/^/  /' >&2
	if grep -q 'passes the limit' "$work/daemon.stderr"; then
		echo "$BENCH: its body bound ([EMULATOR] max_job_size) is" \
		    "under $size MiB" >&2
	fi
	status=1
fi
if [ -z "$idle" ] || [ -z "$hwm" ]; then
	echo "$BENCH: no memory figures (see $work/memory.txt)" >&2
	exit 2
fi
secs=$(echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }')
echo "$BENCH: motion job, $size MiB plain, $wire bytes gzip on the wire," \
    "kept copy ${kept:-0} bytes, $secs s"
echo "  idle VmRSS $idle kB, peak VmHWM $hwm kB (VmRSS $rss kB after the job)"
delta=$((hwm - idle))
printf '  peak - idle: %d kB (%.1f MiB), limit %d MiB\n' "$delta" \
    "$(echo "$delta" | awk '{ print $1 / 1024 }')" "$limit"
if [ "$delta" -ge $((limit * 1024)) ]; then
	echo "$BENCH: peak - idle is not under $limit MiB" >&2
	status=1
fi
exit $status
