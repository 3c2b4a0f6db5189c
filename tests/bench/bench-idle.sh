#!/bin/bash
# bench-idle.sh: how much memory the daemon holds at rest.  gf-cloud-sim
# sends two settings actions; just before the second it samples the
# daemon's /proc/<pid>/status and smaps_rollup (--machine-memory): the
# socket is up, one action has been served, nothing runs.
#
#   bench-idle.sh --bin BUILD_DIR [--tls] [--limit-mib MIB] [--work DIR]
#
# Prints VmRSS with its anonymous and file-backed parts, Pss (each shared
# page divided among the processes that map it) and the private pages,
# then the largest mappings by Rss, read from /proc/<pid>/smaps once the
# scenario is over (the daemon still runs; the sim has closed the socket).
# The daemon runs in the unit's environment (see bench-lib.sh).  Exits 1
# when VmRSS is not under --limit-mib (default 8, the project's target),
# 2 on set-up errors.  A benchmark, not a ctest test.
set -u
BENCH=bench-idle
. "$(dirname "$0")/bench-lib.sh"

usage() {
	echo "usage: bench-idle.sh --bin BUILD_DIR [--tls] [--limit-mib MIB]" \
	    "[--work DIR]" >&2
	exit 2
}

bin= tls=0 limit=8 wdir=
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=${2:-}; shift 2 || usage ;;
	--tls) tls=1; shift ;;
	--limit-mib) limit=${2:-}; shift 2 || usage ;;
	--work) wdir=${2:-}; shift 2 || usage ;;
	-h|--help) usage ;;
	*) echo "$BENCH: unknown argument $1" >&2; usage ;;
	esac
done
[ -n "$bin" ] || usage
case $limit in ''|*[!0-9]*) bench_die "--limit-mib: MiB" ;; esac

bench_init "$bin" "$wdir"
[ $tls -eq 1 ] && bench_tls
cat >"$work/scenario.jsonl" <<'SCENARIO'
{"send": {"action_type": "settings"}, "expect": "settings:completed"}
{"send": {"action_type": "settings"}, "expect": "settings:completed"}
SCENARIO
# A binary just linked has its pages dirty in the page cache until written
# back, and smaps counts them as the process's Private_Dirty (about 400 kB
# of the daemon's text): write it back first.
sync "$daemon" 2>/dev/null || sync
bench_start "$work/scenario.jsonl" --machine-memory "$work/memory.txt"
bench_wait_sim
[ "$sim_rc" -eq 0 ] || bench_die "the run failed"
pid=$bench_daemon_pid
cp "/proc/$pid/smaps" "$work/smaps.end" 2>/dev/null
bench_stop_daemon || exit 1

# "frame 2 VmRSS <kB> ... Pss <kB> ...": the sample before the second frame.
declare -A m=()
while read -r k v; do
	m[$k]=$v
done < <(awk '$1 == "frame" && $2 == 2 {
	for (i = 3; i < NF; i += 2) print $i, $(i + 1) }' "$work/memory.txt")
[ -n "${m[VmRSS]:-}" ] || bench_die "no memory sample (see $work/memory.txt)"
proto=ws/http
[ $tls -eq 1 ] && proto=wss/https
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "$BENCH: at rest over $proto, after one settings action:"
printf '  VmRSS %d kB (%s MiB): anonymous %d kB, file %d kB\n' \
    "${m[VmRSS]}" "$(mib "${m[VmRSS]}")" "${m[RssAnon]:-0}" \
    "${m[RssFile]:-0}"
printf '  Pss %d kB (%s MiB); private %d kB (%s MiB); %d threads\n' \
    "${m[Pss]:-0}" "$(mib "${m[Pss]:-0}")" \
    "$(( ${m[Private_Clean]:-0} + ${m[Private_Dirty]:-0} ))" \
    "$(mib $(( ${m[Private_Clean]:-0} + ${m[Private_Dirty]:-0} )))" \
    "${m[Threads]:-0}"
if [ -s "$work/smaps.end" ]; then
	echo "  largest mappings by Rss (kB), after the run:"
	awk '/^[0-9a-f]+-[0-9a-f]+ / {
		name = NF >= 6 ? $6 : "[anonymous]"
		sub(/.*\//, "", name)
	}
	$1 == "Rss:" { rss[name] += $2 }
	END { for (n in rss) if (rss[n] > 0) print rss[n], n }' \
	    "$work/smaps.end" | sort -rn | head -n 12 |
	    awk '{ printf "    %6d  %s\n", $1, $2 }'
fi
if [ "${m[VmRSS]}" -ge $((limit * 1024)) ]; then
	echo "$BENCH: VmRSS is not under $limit MiB" >&2
	exit 1
fi
exit 0
