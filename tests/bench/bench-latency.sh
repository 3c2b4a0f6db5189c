#!/bin/bash
# bench-latency.sh: how fast the daemon answers an action.  gf-cloud-sim
# sends N actions one after another over the status WebSocket on loopback,
# each once the previous one has ended, and times each from the write of
# its frame to the arrival of the first event for it (CLOCK_MONOTONIC, us;
# the sim's --latency file and the "latency:" line of its --summary).
#
#   bench-latency.sh --bin BUILD_DIR [--count N] [--action settings|motion]
#                    [--tls] [--limit-us US] [--work DIR]
#
# settings (the default) is answered from memory: its one event,
# settings:completed with the full report, is the daemon's own work and
# nothing else.  motion's first event, motion:starting, goes out before
# the download (a small gzip job); the next action waits for
# motion:completed.  Use a Release build for figures.
#
# Prints count, p50, p90, p99 and max; exits 1 when the p99 is not under
# --limit-us (default 1000, the project's target), 2 on set-up errors.
# A benchmark: not a ctest test, nothing here asserts timing in CI.
set -u
BENCH=bench-latency
. "$(dirname "$0")/bench-lib.sh"

usage() {
	echo "usage: bench-latency.sh --bin BUILD_DIR [--count N]" \
	    "[--action settings|motion] [--tls] [--limit-us US]" \
	    "[--work DIR]" >&2
	exit 2
}

bin= count=2000 action=settings tls=0 limit=1000 wdir=
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=${2:-}; shift 2 || usage ;;
	--count) count=${2:-}; shift 2 || usage ;;
	--action) action=${2:-}; shift 2 || usage ;;
	--limit-us) limit=${2:-}; shift 2 || usage ;;
	--work) wdir=${2:-}; shift 2 || usage ;;
	--tls) tls=1; shift ;;
	-h|--help) usage ;;
	*) echo "$BENCH: unknown argument $1" >&2; usage ;;
	esac
done
[ -n "$bin" ] || usage
case $count in ''|*[!0-9]*|0) bench_die "--count: a positive number" ;; esac
case $limit in ''|*[!0-9]*) bench_die "--limit-us: microseconds" ;; esac
# The sim reads at most 1 MiB of scenario, about 70 bytes an action.
[ "$count" -le 10000 ] || bench_die "--count: at most 10000"
case $action in
settings)
	line='{"send": {"action_type": "settings"}, "expect": "settings:completed"}'
	;;
motion)
	line='{"send": {"action_type": "motion", "motion_file": "job.puls.gz"}, "expect": "motion:completed"}'
	;;
*)
	bench_die "--action: settings or motion" ;;
esac

bench_init "$bin" "$wdir"
[ "$action" = motion ] && bench_gen job.puls.gz --line 20,10 --laser --gzip
[ $tls -eq 1 ] && bench_tls

# The scenario, made here: N times the same line, ids from the sim.
for ((i = 0; i < count; i++)); do
	printf '%s\n' "$line"
done >"$work/scenario.jsonl"

# A minute per thousand actions is far more than any healthy run needs.
bench_start "$work/scenario.jsonl" --latency "$work/latency.txt" \
    --timeout $((60 + count * 60 / 1000))
bench_wait_sim
[ "$sim_rc" -eq 0 ] || bench_die "the run failed"
bench_stop_daemon || exit 1

# "latency: N actions, frame written to first event: p50 A us, p90 B us,
# p99 C us, max D us"
n= p50= p90= p99= max=
read -r n p50 p90 p99 max < <(awk '/^latency: / {
	for (i = 1; i < NF; i++)
		v[$i] = $(i + 1)
	print $2, v["p50"], v["p90"], v["p99"], v["max"]
}' "$work/summary.txt")
[ -n "$max" ] || bench_die "no latency line in the sim's summary"
proto=ws
[ $tls -eq 1 ] && proto=wss
printf '%s: %d %s actions over %s on loopback, frame written to first event:\n' \
    "$BENCH" "$n" "$action" "$proto"
printf '  p50 %d us  p90 %d us  p99 %d us  max %d us\n' "$p50" "$p90" "$p99" \
    "$max"
if [ "$p99" -ge "$limit" ]; then
	echo "$BENCH: p99 $p99 us is not under $limit us" >&2
	exit 1
fi
exit 0
