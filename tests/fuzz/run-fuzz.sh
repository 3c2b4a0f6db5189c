#!/bin/sh
# Builds the libFuzzer targets (clang, -DGFE_FUZZ=ON) and runs each for a
# while on its seed corpus; exits 1 if any crashes, leaks, hangs or runs
# out of memory.
#
#   tests/fuzz/run-fuzz.sh [SECONDS [BUILD-DIR]]
#
# SECONDS per target (default 60; CI: 30).  BUILD-DIR defaults to
# build-fuzz in the source tree, so two checkouts never share a cache.
# Targets run one after the other:
#   fuzz_frame   a WebSocket message: frame_split() + frame_parse_action()
#   fuzz_puls    a pulse file: header parser and streaming reader, gzip too
#   fuzz_config  a configuration file: config_load() + config_print()
#   fuzz_ff      FlashForge HTTP JSON bodies and TCP command lines
# Environment: FUZZ_TARGETS="frame puls" runs a subset; FUZZ_JOBS=N runs N
# fuzzing processes per target in parallel (-jobs=N -workers=N; their logs
# go to BUILD-DIR/fuzz-run/TARGET/fuzz-K.log).
#
# The long run, before a release or after changing a parser (an hour per
# target, on all cores):
#   FUZZ_JOBS=$(nproc) tests/fuzz/run-fuzz.sh 3600
# Each target's corpus is kept in BUILD-DIR/fuzz-run/TARGET/corpus and
# grows across runs in the same BUILD-DIR (the seeds are added each time).
# To fold what a long run found back into the seeds, minimised:
#   BUILD-DIR/tests/fuzz/fuzz_puls -merge=1 tests/corpus/puls \
#       BUILD-DIR/fuzz-run/puls/corpus
# (only while that stays a few dozen small files).
#
# A crash leaves BUILD-DIR/fuzz-run/TARGET/artifacts/crash-<sha1>; replay
# it with the fuzzer (BUILD-DIR/tests/fuzz/fuzz_TARGET FILE) or the plain
# build (replay_TARGET FILE), fix the bug, and keep the input as a test:
#   cp FILE tests/corpus/regress/TARGET/<what-it-was>
# where the fuzz-replay-TARGET ctest test runs it in every build.
set -eu

secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${2:-$src/build-fuzz}
targets=${FUZZ_TARGETS:-frame puls config ff}
jobs=${FUZZ_JOBS:-1}
cc=${CC:-clang}

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS [BUILD-DIR]]" >&2; exit 2 ;;
esac

echo "run-fuzz: building in $build ($cc, GFE_FUZZ=ON)"
mkdir -p "$build"
CC=$cc cmake -S "$src" -B "$build" -DGFE_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/run-fuzz-cmake.log" 2>&1 || {
	cat "$build/run-fuzz-cmake.log" >&2
	exit 1
}
set --
for t in $targets; do
	set -- "$@" "fuzz_$t"
done
cmake --build "$build" -j"$(nproc)" --target "$@" >/dev/null

# UB is fatal in the build (-fno-sanitize-recover); print where it was.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=
for t in $targets; do
	case $t in
	frame)	seeds=frames max_len=16384 ;;
	puls)	seeds=puls max_len=16384 ;;
	config)	seeds=config max_len=8192 ;;
	ff)	seeds=ff max_len=8192 ;;
	*)	echo "run-fuzz: unknown target $t" >&2; exit 2 ;;
	esac
	work=$build/fuzz-run/$t
	mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
	rm -rf "$work/artifacts"/* "$work"/fuzz-*.log "$work/tmp"/*
	cp "$src/tests/corpus/$seeds"/* "$work/corpus/"
	# The regressions too: every input that once crashed stays a seed.
	find "$src/tests/corpus/regress/$t" -type f ! -name '.*' \
	    -exec cp {} "$work/corpus/" \;

	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$max_len" -dict="$here/$t.dict" \
	    -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
	    -close_fd_mask=3
	[ "$jobs" -gt 1 ] && set -- "$@" -jobs="$jobs" -workers="$jobs"
	echo "== fuzz_$t: ${secs} s, $jobs job(s), corpus $work/corpus"
	rc=0
	# In $work: -jobs writes its fuzz-K.log files to the current folder.
	# TMPDIR: fuzz_config's scratch folder, left behind by a crash.
	(cd "$work" && TMPDIR="$work/tmp" "$build/tests/fuzz/fuzz_$t" "$@" \
	    "$work/corpus" </dev/null >"$work/fuzz.log" 2>&1) || rc=$?
	# The last status line (runs, coverage, speed) and the final stats.
	grep -h -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW)' "$work/fuzz.log" \
	    "$work"/fuzz-*.log 2>/dev/null | tail -n 1 || true
	grep -h '^stat::' "$work/fuzz.log" "$work"/fuzz-*.log 2>/dev/null |
	    grep -E 'executed_units|exec_per_sec|peak_rss' || true
	if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
		echo "run-fuzz: fuzz_$t FAILED (exit $rc):" >&2
		tail -n 60 "$work/fuzz.log" >&2
		for f in "$work"/fuzz-*.log; do
			[ -f "$f" ] && grep -q -E 'ERROR|SUMMARY|check failed' \
			    "$f" && tail -n 60 "$f" >&2
		done
		ls -l "$work/artifacts" >&2
		failed="$failed $t"
	fi
done

if [ -n "$failed" ]; then
	echo "run-fuzz: crashes in:$failed (inputs in $build/fuzz-run/*/artifacts)" >&2
	exit 1
fi
echo "run-fuzz: no crash in $secs s per target"
