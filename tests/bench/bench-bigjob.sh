#!/bin/bash
# bench-bigjob.sh: a job of any size runs in bounded memory.  gf-cloud-sim
# serves a motion job whose pulse body is SIZE MiB (default 1024) plain,
# gzip on the wire (a slow straight line compresses about 900:1, so it is
# cheap to make and to serve); the daemon streams it: inflates, checks,
# counts and writes its copy to motion_dl_dir as the bytes arrive.
#
#   bench-bigjob.sh --bin BUILD_DIR [--size MIB] [--limit-kib KIB]
#                   [--work DIR]
#
# The job runs twice.  The sim samples the daemon's /proc/<pid>/status
# and smaps_rollup just before it writes each motion frame and once at
# the end (--machine-memory), and after each sample sets VmHWM, the
# kernel's high-water mark of VmRSS, back to VmRSS (--reset-peak): each
# sample's VmHWM is then the exact peak since the one before, no moment
# missed.  Idle is VmRSS before the first job, with the socket up and a
# settings action served; peak - idle is that job's VmHWM less idle: the
# cold figure, the one the limit holds.  It counts everything the job
# made resident, also pages of code the daemon ran for the first time
# (zlib's inflate): those are file-backed, shared with other processes,
# read in once.  So the report splits it: file-backed (RssFile after the
# job less before) and the rest, and shows the second job's peak less
# its idle (the first job's end), which has no first-time pages.  kB are
# KiB, as /proc counts.  Exits 1 when the cold peak - idle passes
# --limit-kib (default 64, issue 12's "idle + 64 KiB") or a job did not
# complete, 2 on set-up errors.  The kept copies (SIZE MiB) are deleted;
# without --work the whole folder is.  A benchmark, not a ctest test.
set -u
BENCH=bench-bigjob
. "$(dirname "$0")/bench-lib.sh"

usage() {
	echo "usage: bench-bigjob.sh --bin BUILD_DIR [--size MIB]" \
	    "[--limit-kib KIB] [--work DIR]" >&2
	exit 2
}

bin= size=1024 limit=64 wdir=
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=${2:-}; shift 2 || usage ;;
	--size) size=${2:-}; shift 2 || usage ;;
	--limit-kib) limit=${2:-}; shift 2 || usage ;;
	--work) wdir=${2:-}; shift 2 || usage ;;
	-h|--help) usage ;;
	*) echo "$BENCH: unknown argument $1" >&2; usage ;;
	esac
done
[ -n "$bin" ] || usage
case $size in ''|*[!0-9]*|0) bench_die "--size: MiB, a positive number" ;; esac
case $limit in ''|*[!0-9]*) bench_die "--limit-kib: KiB" ;; esac

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
# The socket up and one action served: then the idle sample, then the job
# twice: cold (frames 2 and 3 bound it), then warm (frame 3 and the end).
{"send": {"action_type": "settings"}, "expect": "settings:completed"}
{"send": {"action_type": "motion", "motion_file": "big.puls.gz"}, "expect": "motion:completed", "timeout": 1800}
{"send": {"action_type": "motion", "motion_file": "big.puls.gz"}, "expect": "motion:completed", "timeout": 1800}
EOF

# The body bound is a config key: set it past the job, so the job runs.
BENCH_CFG=("EMULATOR max_job_size $((size + 1))")
start=$(date +%s.%N)
bench_start "$work/scenario.jsonl" --machine-memory "$work/memory.txt" \
    --reset-peak --timeout 1900
bench_wait_sim
end=$(date +%s.%N)
[ -n "$bench_daemon_pid" ] &&
    cp "/proc/$bench_daemon_pid/smaps_rollup" "$work/smaps_rollup.end" \
    2>/dev/null
bench_stop_daemon || sim_rc=2

# mem WHAT N KEY: KEY's kB in the sample "WHAT N KEY kB KEY kB ...".
mem() {
	awk -v w="$1" -v n="$2" -v k="$3" '$1 == w && $2 == n {
		for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1) }' \
	    "$work/memory.txt" 2>/dev/null
}
# Before job 1 (frame 2), between the jobs (frame 3), after job 2 (end).
idle=$(mem frame 2 VmRSS) fidle=$(mem frame 2 RssFile)
hwm1=$(mem frame 3 VmHWM) rss1=$(mem frame 3 VmRSS) f1=$(mem frame 3 RssFile)
hwm2=$(mem end 3 VmHWM) rss2=$(mem end 3 VmRSS) f2=$(mem end 3 RssFile)
kept=$(stat -c %s "$work"/motion/*.puls 2>/dev/null | sort -u)
nkept=$(find "$work/motion" -name '*.puls' | wc -l)
rm -f "$work"/motion/*.puls

status=0
if [ "$sim_rc" -ne 0 ] || [ "$nkept" -ne 2 ]; then
	# The folder may go at exit: say here what the daemon said.
	echo "$BENCH: the jobs did not complete; the daemon said:" >&2
	grep -E 'refused|failed' "$work/daemon.stderr" | tail -n 3 | sed 's/^/  /' >&2
	if grep -q 'passes the limit' "$work/daemon.stderr"; then
		echo "$BENCH: its body bound ([EMULATOR] max_job_size) is" \
		    "under $size MiB" >&2
	fi
	status=1
fi
for v in "$idle" "$fidle" "$hwm1" "$rss1" "$f1" "$hwm2" "$rss2" "$f2"; do
	case $v in
	''|*[!0-9]*)
		echo "$BENCH: no memory figures (see $work/memory.txt)" >&2
		exit 2 ;;
	esac
done
secs=$(echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }')
echo "$BENCH: motion job, $size MiB plain, $wire bytes gzip on the wire," \
    "kept copy ${kept:-0} bytes, twice: $secs s"
delta=$((hwm1 - idle)) file=$((f1 - fidle))
echo "  job 1 (cold): idle VmRSS $idle kB, peak VmHWM $hwm1 kB," \
    "VmRSS $rss1 kB after"
printf '  peak - idle: %d kB, limit %d kB (file-backed code read in: %d kB;' \
    "$delta" "$limit" "$file"
printf ' the rest: %d kB)\n' $((delta - file))
echo "  job 2 (warm): idle VmRSS $rss1 kB, peak VmHWM $hwm2 kB," \
    "VmRSS $rss2 kB after"
printf '  peak - idle: %d kB (file-backed: %d kB)\n' $((hwm2 - rss1)) \
    $((f2 - f1))
if [ "$delta" -gt "$limit" ]; then
	echo "$BENCH: job 1's peak - idle passes $limit kB" >&2
	status=1
fi
exit $status
