# shellcheck shell=bash
# bench-lib.sh: what the benchmarks (bench-latency.sh, bench-bigjob.sh,
# bench-idle.sh) share.  Sourced, not run.  It starts gf-cloud-sim and the real daemon on
# loopback the way run-scenario.sh does (the sim's port on a coprocess
# pipe, the daemon's pid file written before it can connect), without the
# transcript and the post-mortem checks: a benchmark measures, the
# scenario tests judge.
#
# The caller sets BENCH (its name, for messages), then calls, in order:
#   bench_init BUILD_DIR [WORK_DIR]	binaries, work folder, password
#   bench_gen NAME GF-PULS-ARGS...	(optional) a job in WORK/pulse/
#   bench_tls				(optional) wss/https with a test CA
#   bench_start SCENARIO [SIM_ARGS...]	the sim, then the daemon
#   bench_wait_sim			until the scenario ends: sim_rc
#   bench_stop_daemon			SIGTERM, then the verdict on it
# BENCH_CFG (an array of "SECTION key value") adds daemon settings.
# Synchronisation is by pipes and wait(1) only, as in run-scenario.sh.

BENCH_SERIAL=12345678
BENCH_TERM_GUARD=${GFE_TERM_GUARD:-20}	# seconds a daemon may take on SIGTERM

bench_die() {
	echo "$BENCH: $*" >&2
	exit 2
}

bench_cleanup() {
	local p
	for p in $bench_guard_pid $bench_daemon_pid $bench_sim_pid; do
		kill -KILL "$p" 2>/dev/null
	done
	# Only a folder this script made; a given --work is kept.
	[ "$bench_own_work" = 1 ] && rm -rf "$work"
}

# bench_init BUILD_DIR [WORK_DIR]: sets sim, daemon, puls, work.
bench_init() {
	local bin=$1
	bench_sim_pid= bench_daemon_pid= bench_guard_pid= bench_own_work=0
	bench_scheme=http bench_wscheme=ws bench_sim_tls=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	bin=$(cd "$bin" 2>/dev/null && pwd) || bench_die "$1: no such directory"
	sim=$bin/gf-cloud-sim
	daemon=$bin/gf-machine-emulator
	puls=$bin/gf-puls
	for b in "$sim" "$daemon" "$puls"; do
		[ -x "$b" ] || bench_die "$b is not built"
	done
	if [ -n "${2:-}" ]; then
		work=$2
		case $work in /|'') bench_die "--work $work: refusing" ;; esac
		if [ -e "$work" ]; then
			[ -f "$work/.bench" ] ||
			    [ -z "$(ls -A "$work" 2>/dev/null)" ] ||
			    bench_die "$work exists and was not made by $BENCH"
			rm -rf "$work" || bench_die "cannot remove $work"
		fi
		mkdir -p "$work" || bench_die "cannot make $work"
		work=$(cd "$work" && pwd)
	else
		work=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH.XXXXXX") ||
		    bench_die "mktemp"
		bench_own_work=1
	fi
	: >"$work/.bench"
	mkdir "$work/pulse" "$work/upload" "$work/motion" || bench_die "mkdir"
	umask 077
	bench_password=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	[ ${#bench_password} -eq 64 ] || bench_die "cannot read /dev/urandom"
	printf '%s\n' "$bench_password" >"$work/password"
	umask 022
}

# bench_gen NAME ARGS...: gf-puls generate ARGS -o WORK/pulse/NAME.
bench_gen() {
	local out=$1
	shift
	"$puls" generate "$@" -o "$work/pulse/$out" >>"$work/gf-puls.log" 2>&1 ||
	    bench_die "gf-puls generate $* failed (see $work/gf-puls.log)"
}

# bench_tls: a throw-away CA and a certificate for 127.0.0.1, as in
# run-scenario.sh; the daemon trusts the CA through ca_file.
bench_tls() {
	local t=$work/tls
	command -v openssl >/dev/null || bench_die "--tls needs openssl(1)"
	mkdir "$t" || bench_die "mkdir $t"
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 \
		    -subj "/CN=gf-cloud-sim bench CA" \
		    -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -keyout "$t/server.key" -out "$t/server.csr" \
		    -subj "/CN=127.0.0.1" &&
		printf '%s\n' "basicConstraints=CA:FALSE" \
		    "keyUsage=critical,digitalSignature,keyEncipherment" \
		    "extendedKeyUsage=serverAuth" \
		    "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$t/ext.cnf" &&
		openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" \
		    -CAkey "$t/ca.key" -CAcreateserial -days 2 \
		    -extfile "$t/ext.cnf" -out "$t/server.pem"
	} >"$t/openssl.log" 2>&1 || bench_die "openssl failed (see $t/openssl.log)"
	bench_scheme=https bench_wscheme=wss
	bench_sim_tls=(--tls-cert "$t/server.pem" --tls-key "$t/server.key")
}

# bench_start SCENARIO [SIM_ARGS...]: the sim as a coprocess (its first
# line is its port), then the daemon, configured for it.
bench_start() {
	local scenario=$1 port line
	shift
	coproc BENCH_SIM { exec "$sim" --listen 127.0.0.1 --port 0 \
	    --print-port --serial "$BENCH_SERIAL" \
	    --password-file "$work/password" --scenario "$scenario" \
	    --pulse-dir "$work/pulse" --upload-dir "$work/upload" \
	    --summary "$work/summary.txt" \
	    --machine-pid-file "$work/daemon.pid" \
	    "${bench_sim_tls[@]}" "$@" 2>"$work/sim.log"; }
	bench_sim_pid=$BENCH_SIM_PID
	port=
	read -r -t 30 port <&"${BENCH_SIM[0]}"
	case $port in
	''|*[!0-9]*)
		cat "$work/sim.log" >&2
		bench_die "the simulator did not start" ;;
	esac

	umask 077
	{
		echo "[SERVICE]"
		echo "server_url: $bench_scheme://127.0.0.1:$port"
		echo "status_service_url: $bench_wscheme://127.0.0.1:$port"
		[ -d "$work/tls" ] && echo "ca_file: $work/tls/ca.pem"
		echo "[MACHINE]"
		echo "serial: $BENCH_SERIAL"
		echo "password: $bench_password"
		echo "[EMULATOR]"
		echo "motion_dl_dir: $work/motion"
		echo "button_press_delay: 0.2"
		echo "[LOGGING]"
		echo "file: $work/daemon.log"
		for line in ${BENCH_CFG[@]+"${BENCH_CFG[@]}"}; do
			# shellcheck disable=SC2086	# "SECTION key value"
			set -- $line
			echo "[$1]"
			shift
			echo "$1: ${*:2}"
		done
	} >"$work/gf-machine-emulator.cfg"
	umask 022

	# Through sh, so the pid file exists before the daemon can connect.
	# GFE_DAEMON_WRAPPER runs it under a tool, as in run-scenario.sh.  The
	# tool must become the daemon's process (valgrind does); one that
	# forks it (perf record, heaptrack) would be the pid measured and
	# signalled, and leave the daemon behind.
	# The environment the systemd unit gives it: no OpenSSL variables
	# from the caller's shell, GnuTLS not initialised behind our back.
	# shellcheck disable=SC2086
	sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$work/daemon.pid" \
	    env -u SSL_CERT_FILE -u SSL_CERT_DIR GNUTLS_NO_IMPLICIT_INIT=1 \
	    ${GFE_DAEMON_WRAPPER:-} "$daemon" -c "$work/gf-machine-emulator.cfg" -f \
	    >"$work/daemon.stdout" 2>"$work/daemon.stderr" &
	bench_daemon_pid=$!
}

# bench_wait_sim: until the sim exits (sim_rc: its status) or the daemon
# dies first (then 2, and the sim is stopped).  The daemon is left
# running, so the caller can still look at it.
bench_wait_sim() {
	local done_pid rc
	wait -n -p done_pid "$bench_sim_pid" "$bench_daemon_pid"
	rc=$?
	if [ "$done_pid" = "$bench_daemon_pid" ]; then
		bench_daemon_pid=
		echo "$BENCH: the daemon exited ($rc) during the run" >&2
		tail -n 15 "$work/daemon.stderr" >&2
		kill -TERM "$bench_sim_pid" 2>/dev/null
		wait "$bench_sim_pid"
		bench_sim_pid=
		sim_rc=2
		return
	fi
	bench_sim_pid=
	sim_rc=$rc
	if [ "$sim_rc" -ne 0 ]; then
		grep -m1 '^gf-cloud-sim: FAIL: ' "$work/sim.log" >&2 ||
		    tail -n 5 "$work/sim.log" >&2
	fi
}

# bench_stop_daemon: SIGTERM; 0 when it exited 0 in time.
bench_stop_daemon() {
	local done_pid rc
	[ -n "$bench_daemon_pid" ] || return 1
	kill -TERM "$bench_daemon_pid" 2>/dev/null
	sleep "$BENCH_TERM_GUARD" &	# a guard only, never a synchronisation
	bench_guard_pid=$!
	wait -n -p done_pid "$bench_daemon_pid" "$bench_guard_pid"
	rc=$?
	if [ "$done_pid" = "$bench_guard_pid" ]; then
		bench_guard_pid=
		kill -KILL "$bench_daemon_pid" 2>/dev/null
		wait "$bench_daemon_pid"
		bench_daemon_pid=
		echo "$BENCH: the daemon ignored SIGTERM" >&2
		return 1
	fi
	# KILL, not TERM: a guard still between fork and exec is a copy of
	# this shell, traps included, and TERM would run our EXIT trap there.
	kill -KILL "$bench_guard_pid" 2>/dev/null
	wait "$bench_guard_pid" 2>/dev/null
	bench_guard_pid= bench_daemon_pid=
	[ "$rc" -eq 0 ] || echo "$BENCH: the daemon exited $rc on SIGTERM" >&2
	return "$rc"
}

# bench_status_kb PID KEY: KEY's value (kB) in /proc/PID/status.
bench_status_kb() {
	awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status"
}
