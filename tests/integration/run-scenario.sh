#!/bin/bash
# run-scenario.sh: plays one scenario of tests/integration/scenarios/ with the real
# daemon (gf-machine-emulator) against the offline service (gf-cloud-sim).
#
#   run-scenario.sh --bin BUILD_DIR --scenario FILE --work DIR
#                   [--tls] [--trust HOW] [--verbose] [--expect-fail]
#                   [--timeout SECS]
#                   [--ulimit-f KB] [--expect-log COUNT:REGEX]...
#                   [--expect-kept N] [--await-log REGEX]... [--second-sigint]
#                   [--fleet]
#                   [--web-check CMD]
#
# DIR is made afresh and keeps everything for a post-mortem: pulse/ (jobs
# made with gf-puls generate), upload/ (images the daemon sent), motion/
# (the daemon's downloads), transcript.jsonl, summary.txt, sim.log,
# daemon.log, daemon.stderr, gf-machine-emulator.cfg, tls/.
#
# A scenario may add options of its own with a line
# {"harness": ["--expect-log", "1:sign-in refused", ...]}; it may give
# --ulimit-f, --expect-log, --expect-kept, --await-log, --second-sigint and
# --timeout.  In its "config" values @WORK@ stands for DIR and
# @SCENARIO_DIR@ for the scenario's folder.
#
#   --ulimit-f KB       the daemon runs with RLIMIT_FSIZE KB (ulimit -f): a
#                       "disk" that fills up.  Its log and stderr count too.
#   --expect-log C:RE   after the run, exactly C lines of daemon.log match
#                       the extended regular expression RE.
#   --expect-kept N     N stepper files kept in motion/ (default: one per
#                       job the daemon reported loaded).
#   --await-log RE      once the scenario passed, wait until daemon.log has
#                       a line matching RE before signalling the daemon (for
#                       what the daemon does after the sim's last event).
#   --web-check CMD     the daemon runs with [WEB] on a free loopback
#                       port; once the scenario passed (and before the
#                       daemon is signalled), CMD runs (through sh) with
#                       GFE_WEB_URL (http://127.0.0.1:PORT), GFE_WORK and
#                       GFE_BIN set; its failure fails the run.
#   --fleet             the machine is configured as a [FLEET] of one
#                       (count 1, serial_first, password_file, keep_jobs)
#                       instead of [MACHINE]: the same code must serve it.
#   --second-sigint     end with SIGINT, and a second SIGINT once the daemon
#                       is in its shutdown path: it must die of SIGINT
#                       (exit status 130) instead of exiting 0.
#   --trust HOW         (implies --tls) how the daemon is told of the test
#                       CA: ca-file (the default: [SERVICE] ca_file),
#                       cert-dir (in a hashed folder named by $SSL_CERT_DIR,
#                       $SSL_CERT_FILE unset), cert-file ($SSL_CERT_FILE).
#                       untrusted: $SSL_CERT_DIR holds another CA only; the
#                       daemon must log a certificate error, never reach
#                       the sim's HTTP or WebSocket, and keep running; the
#                       scenario is not played.  untrusted-ws: the test CA
#                       is trusted (cert-dir), sign-in succeeds, but the
#                       status socket goes to a second sim whose
#                       certificate another CA signed: lws must refuse it.
#
# Exit status: the simulator's verdict (0 every expectation held, 1 not),
# inverted by --expect-fail; 1 too when the daemon crashed, did not exit 0
# on SIGTERM, wrote a secret (password, token) to its log or stderr, or an
# --expect-*/--await-log did not hold; 2 on usage or set-up errors; 77
# when a binary is not built yet (ctest reports a skip).
#
# Synchronisation is by pipes and wait(1) only: the sim prints its port on
# a coprocess pipe, the run ends when the sim exits, and log lines are
# awaited by following the file (tail -F).  The one timer is a guard
# against a daemon that ignores SIGTERM or never logs an awaited line
# (GFE_TERM_GUARD seconds, default 20).
set -u

SERIAL=12345678		# the emulated machine
OTHER_SERIAL=87654321	# a job cut for another machine
TERM_GUARD=${GFE_TERM_GUARD:-20}		# seconds a daemon may take to exit on SIGTERM

usage() {
	echo "usage: run-scenario.sh --bin BUILD_DIR --scenario FILE" \
	    "--work DIR [--tls] [--trust HOW] [--verbose] [--expect-fail]" \
	    "[--timeout SECS]" \
	    "[--ulimit-f KB] [--expect-log COUNT:REGEX]... [--expect-kept N]" \
	    "[--await-log REGEX]... [--second-sigint]" >&2
	exit 2
}

die() {
	echo "run-scenario: $*" >&2
	exit 2
}

skip() {
	echo "run-scenario: SKIP: $*" >&2
	exit 77
}

bin= scenario= work= tls=0 trust=ca-file verbose=0 expect_fail=0 timeout=60
ulimit_f= expect_kept= second_sigint=0 fleet=0 web_check=
expect_log=() await_log=()
# parse_opts ORIGIN ARG...: ORIGIN "scenario" allows only what a scenario's
# "harness" line may set.
parse_opts() {
	local origin=$1
	shift
	while [ $# -gt 0 ]; do
		if [ "$origin" = scenario ]; then
			case $1 in
			--ulimit-f|--expect-log|--expect-kept|--await-log|\
			--second-sigint|--timeout) ;;
			*) die "$scenario: \"harness\": $1 is not for a" \
			    "scenario to set" ;;
			esac
		fi
		case $1 in
		--bin) bin=${2:-}; shift 2 || usage ;;
		--scenario) scenario=${2:-}; shift 2 || usage ;;
		--work) work=${2:-}; shift 2 || usage ;;
		--timeout) timeout=${2:-}; shift 2 || usage ;;
		--ulimit-f) ulimit_f=${2:-}; shift 2 || usage ;;
		--expect-log) expect_log+=("${2:-}"); shift 2 || usage ;;
		--expect-kept) expect_kept=${2:-}; shift 2 || usage ;;
		--await-log) await_log+=("${2:-}"); shift 2 || usage ;;
		--second-sigint) second_sigint=1; shift ;;
		--fleet) fleet=1; shift ;;
		--web-check) web_check=${2:-}; shift 2 || usage ;;
		--tls) tls=1; shift ;;
		--trust) trust=${2:-}; tls=1; shift 2 || usage ;;
		--verbose) verbose=1; shift ;;
		--expect-fail) expect_fail=1; shift ;;
		-h|--help) usage ;;
		*) echo "run-scenario: unknown argument $1" >&2; usage ;;
		esac
	done
}
parse_opts cli "$@"
[ -n "$bin" ] && [ -n "$scenario" ] && [ -n "$work" ] || usage
[ -f "$scenario" ] || die "$scenario: no such file"
command -v jq >/dev/null || die "jq(1) is needed"
# The scenario's own options: its "harness" lines (comments are not JSON).
harness=()
mapfile -t harness < <(grep -v -E '^[[:space:]]*(#|$)' "$scenario" |
    jq -r 'select(type == "object" and has("harness")) | .harness[]' \
    2>/dev/null)
[ ${#harness[@]} -gt 0 ] && parse_opts scenario "${harness[@]}"
case $timeout in ''|*[!0-9]*) die "--timeout: seconds" ;; esac
case $trust in ca-file|cert-dir|cert-file|untrusted|untrusted-ws) ;;
*) die "--trust: ca-file, cert-dir, cert-file, untrusted or untrusted-ws" ;;
esac
case $ulimit_f in *[!0-9]*) die "--ulimit-f: KB" ;; esac
case $expect_kept in *[!0-9]*) die "--expect-kept: a count" ;; esac
for e in "${expect_log[@]}"; do
	case ${e%%:*} in
	''|*[!0-9]*) die "--expect-log $e: COUNT:REGEX" ;;
	esac
	[ "$e" != "${e#*:}" ] && [ -n "${e#*:}" ] ||
	    die "--expect-log $e: COUNT:REGEX"
done
for e in "${await_log[@]}"; do
	[ -n "$e" ] || die "--await-log: a regular expression"
done
bin=$(cd "$bin" 2>/dev/null && pwd) || die "$bin: no such directory"
scenario=$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")

sim=$bin/gf-cloud-sim
daemon=$bin/gf-machine-emulator
puls=$bin/gf-puls
for b in "$sim" "$daemon" "$puls"; do
	[ -x "$b" ] || skip "$b is not built"
done

# A fresh work directory, but never wipe a folder this script did not make.
case $work in /|'') die "--work $work: refusing" ;; esac
if [ -e "$work" ]; then
	[ -f "$work/.run-scenario" ] || [ -z "$(ls -A "$work" 2>/dev/null)" ] ||
	    die "$work exists and was not made by run-scenario.sh"
	rm -rf "$work" || die "cannot remove $work"
fi
mkdir -p "$work" || die "cannot make $work"
work=$(cd "$work" && pwd)
: >"$work/.run-scenario"
mkdir "$work/pulse" "$work/upload" "$work/motion" || die "mkdir"

sim_pid= daemon_pid= guard_pid= reader_pid= sim2_pid=
cleanup() {
	local p
	for p in $guard_pid $daemon_pid $sim_pid $reader_pid $sim2_pid; do
		kill -KILL "$p" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the jobs the scenarios name in "motion_file" ---
gen() {
	local out=$1
	shift
	"$puls" generate "$@" -o "$work/pulse/$out" \
	    >>"$work/gf-puls.log" 2>&1 ||
	    skip "gf-puls generate $* failed (see $work/gf-puls.log)"
}
gen job.puls.gz --line 20,10 --laser --gzip
gen job.puls --line 20,10 --laser
gen hunt.puls.gz --hunt --gzip
gen rect.puls.gz --rect 30,20 --laser --gzip
gen other-machine.puls.gz --line 20,10 --laser --gzip --serial "$OTHER_SERIAL"
gen big.puls.gz --rect 100,80 --speed 5 --laser --gzip
gen small.puls --line 2,0 --laser

# Broken jobs, made from those: a gzip stream cut short, and headers whose
# length (u32 LE at byte 4) lies: past the end of the file (a file shorter
# than the 256 tags a header may have), and below its 8 bytes of magic and
# length.
le32() {	# N: four bytes, little-endian
	printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) \
	    $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
}
header_len() {	# IN OUT LEN
	cp "$work/pulse/$1" "$work/pulse/$2" &&
	    le32 "$3" | dd of="$work/pulse/$2" bs=1 seek=4 conv=notrunc \
	    2>/dev/null
}
{
	n=$(wc -c <"$work/pulse/job.puls.gz") &&
	head -c $((n - 40)) "$work/pulse/job.puls.gz" \
	    >"$work/pulse/truncated.puls.gz" &&
	n=$(wc -c <"$work/pulse/small.puls") &&
	[ "$n" -lt 2048 ] &&
	header_len small.puls long-header.puls 2048 &&
	gzip -n "$work/pulse/long-header.puls" &&
	header_len job.puls short-header.puls 4 &&
	rm "$work/pulse/small.puls"
} || die "cannot make the broken jobs"
# A regular file where a folder should be (motion_dl_dir below it: ENOTDIR).
: >"$work/not-a-dir"
# A folder for saved images where one image's name is taken by a FIFO,
# which blocks whoever opens it for writing, and another's by a link.
mkdir "$work/images" &&
    mkfifo "$work/images/lid_image_4242.jpg" &&
    ln -s "$work/not-a-dir" "$work/images/lid_image_4243.jpg" ||
    die "cannot make images/"

# --- secrets: a random password, handed to the sim in a 0600 file ---
umask 077
password=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
[ ${#password} -eq 64 ] || die "cannot read /dev/urandom"
printf '%s\n' "$password" >"$work/password"
umask 022

# --- TLS: a throw-away CA and a server certificate for 127.0.0.1 ---
scheme=http wscheme=ws
sim_tls=()
if [ $tls -eq 1 ]; then
	command -v openssl >/dev/null || die "--tls needs openssl(1)"
	t=$work/tls
	mkdir "$t" || die "mkdir $t"
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 \
		    -subj "/CN=gf-cloud-sim test CA" \
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
		    -extfile "$t/ext.cnf" -out "$t/server.pem" &&
		# Hashed folders, as update-ca-certificates leaves
		# /etc/ssl/certs: one with the test CA, one with another CA.
		mkdir "$t/roots" "$t/other-roots" &&
		cp "$t/ca.pem" "$t/roots/" &&
		openssl req -x509 -newkey ec \
		    -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		    -keyout "$t/other-ca.key" -out "$t/other-roots/other-ca.pem" \
		    -days 2 -subj "/CN=gf-cloud-sim test CA" \
		    -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		    -nodes -keyout "$t/other-server.key" \
		    -out "$t/other-server.csr" -subj "/CN=127.0.0.1" &&
		openssl x509 -req -in "$t/other-server.csr" \
		    -CA "$t/other-roots/other-ca.pem" -CAkey "$t/other-ca.key" \
		    -CAcreateserial -days 2 -extfile "$t/ext.cnf" \
		    -out "$t/other-server.pem" &&
		openssl rehash "$t/roots" "$t/other-roots"
	} >"$t/openssl.log" 2>&1 || die "openssl failed (see $t/openssl.log)"
	scheme=https wscheme=wss
	sim_tls=(--tls-cert "$t/server.pem" --tls-key "$t/server.key")
fi

# The daemon settings the scenario asks for ("config" lines).
overrides=$("$sim" --scenario "$scenario" --print-config) ||
    die "$scenario: the simulator refused it"

# --- the simulator, as a coprocess: its first line is its port ---
sim_args=(--listen 127.0.0.1 --port 0 --print-port --serial "$SERIAL"
    --password-file "$work/password" --scenario "$scenario"
    --transcript "$work/transcript.jsonl" --pulse-dir "$work/pulse"
    --upload-dir "$work/upload" --secrets "$work/secrets"
    --summary "$work/summary.txt" --machine-pid-file "$work/daemon.pid"
    --timeout "$timeout" "${sim_tls[@]}")
[ $verbose -eq 1 ] && sim_args+=(--verbose)
coproc SIM { exec "$sim" "${sim_args[@]}" 2>"$work/sim.log"; }
sim_pid=$SIM_PID
port=
read -r -t 30 port <&"${SIM[0]}"
case $port in
''|*[!0-9]*)
	cat "$work/sim.log" >&2
	die "the simulator did not start" ;;
esac

# --- the daemon's configuration: defaults, then the scenario's ---
declare -A cfg=()
sections=()
cfg_set() {	# SECTION KEY VALUE
	local s
	for s in "${sections[@]}"; do
		[ "$s" = "$1" ] && break
	done
	[ "${s:-}" = "$1" ] || sections+=("$1")
	[ -n "${cfg[$1.$2]+x}" ] || cfg["$1 keys"]="${cfg[$1 keys]:-} $2"
	cfg["$1.$2"]=$3
}
cfg_set SERVICE server_url "$scheme://127.0.0.1:$port"
cfg_set SERVICE status_service_url "$wscheme://127.0.0.1:$port"
# --trust untrusted-ws: the status socket goes to a second sim, whose
# certificate the daemon must refuse.  It prints its port on a FIFO.
if [ "$trust" = untrusted-ws ]; then
	mkfifo "$work/sim2.port" || die "mkfifo"
	"$sim" --listen 127.0.0.1 --port 0 --print-port --serial "$SERIAL" \
	    --password-file "$work/password" --scenario "$scenario" \
	    --transcript "$work/transcript2.jsonl" --pulse-dir "$work/pulse" \
	    --upload-dir "$work/upload" --timeout "$timeout" \
	    --tls-cert "$work/tls/other-server.pem" \
	    --tls-key "$work/tls/other-server.key" \
	    >"$work/sim2.port" 2>"$work/sim2.log" &
	sim2_pid=$!
	exec {sim2_fd}<"$work/sim2.port"
	port2=
	read -r -t 30 port2 <&"$sim2_fd"
	case $port2 in
	''|*[!0-9]*) cat "$work/sim2.log" >&2; die "the second sim did not start" ;;
	esac
	cfg_set SERVICE status_service_url "wss://127.0.0.1:$port2"
fi
[ $tls -eq 1 ] && [ "$trust" = ca-file ] &&
    cfg_set SERVICE ca_file "$work/tls/ca.pem"
if [ "$fleet" -eq 1 ]; then
	# --fleet: the same machine as a [FLEET] of one, its jobs kept.
	chmod 600 "$work/password"
	cfg_set FLEET count 1
	cfg_set FLEET serial_first "$SERIAL"
	cfg_set FLEET password_file "$work/password"
	cfg_set FLEET keep_jobs True
else
	cfg_set MACHINE serial "$SERIAL"
	cfg_set MACHINE password "$password"
fi
cfg_set EMULATOR motion_dl_dir "$work/motion"
cfg_set EMULATOR button_press_delay 0.2
cfg_set LOGGING file "$work/daemon.log"
[ -n "$web_check" ] && cfg_set WEB listen 127.0.0.1:0
section=
while IFS= read -r line; do
	case $line in
	'['*']') section=${line#[}; section=${section%]} ;;
	*': '*)
		v=${line#*: }
		v=${v//@WORK@/$work}
		v=${v//@SCENARIO_DIR@/$(dirname "$scenario")}
		cfg_set "$section" "${line%%: *}" "$v" ;;
	esac
done <<<"$overrides"
# --second-sigint: the log goes through a FIFO the harness can stop and
# fill (see the end).  cat, unbuffered, keeps daemon.log current.
if [ $second_sigint -eq 1 ]; then
	mkfifo "$work/daemon.log.fifo" || die "mkfifo"
	cfg_set LOGGING file "$work/daemon.log.fifo"
	cat <"$work/daemon.log.fifo" >"$work/daemon.log" &
	reader_pid=$!
fi
umask 077
for s in "${sections[@]}"; do
	echo "[$s]"
	for k in ${cfg[$s keys]}; do
		echo "$k: ${cfg[$s.$k]}"
	done
done >"$work/gf-machine-emulator.cfg"
umask 022

# --- the daemon, until the scenario ends ---
# Through sh, so the pid file (the sim's press_button) exists before the
# daemon can connect: sh writes its pid, then becomes the daemon.
# GFE_DAEMON_WRAPPER (e.g. "valgrind --error-exitcode=99") runs it under
# a tool; its exit status then counts like the daemon's own.
# In the background, run_daemon is a subshell that execs into it: so
# --ulimit-f applies to the daemon alone.
run_daemon() {
	if [ -n "$ulimit_f" ]; then
		ulimit -f "$ulimit_f" || exit 2
	fi
	# OpenSSL's variables, from the caller's environment or the host's
	# setup, would decide the test: each --trust sets its own.
	unset SSL_CERT_FILE SSL_CERT_DIR
	case $tls.$trust in
	1.cert-dir|1.untrusted-ws) export SSL_CERT_DIR=$work/tls/roots ;;
	1.cert-file) export SSL_CERT_FILE=$work/tls/ca.pem ;;
	1.untrusted) export SSL_CERT_DIR=$work/tls/other-roots ;;
	esac
	# shellcheck disable=SC2086
	exec sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$work/daemon.pid" \
	    ${GFE_DAEMON_WRAPPER:-} "$daemon" \
	    -c "$work/gf-machine-emulator.cfg" -f
}
run_daemon >"$work/daemon.stdout" 2>"$work/daemon.stderr" &
daemon_pid=$!

# await_line FILE REGEX: until a line of FILE matches, the daemon exits or
# TERM_GUARD seconds pass; 0 when it matched.  tail -F follows the file as
# it grows (inotify): no polling here.
await_line() {
	local fd pid rc
	# exec, not "grep < <(...)": only this form sets $! to the follower.
	exec {fd}< <(exec timeout "$TERM_GUARD" tail -n +1 -F \
	    --pid="$daemon_pid" "$1" 2>/dev/null)
	pid=$!
	grep -q -m1 -E -- "$2" <&"$fd"
	rc=$?
	exec {fd}<&-
	kill "$pid" 2>/dev/null
	return $rc
}

# await_blocked PID: until PID's main thread (the loop) sleeps in a write
# to a full pipe or FIFO, at most TERM_GUARD seconds.  No event says a
# process blocked; /proc/PID/wchan does, so it is looked at every 10 ms.
await_blocked() {
	local i w
	for ((i = 0; i < TERM_GUARD * 100; i++)); do
		w=$(cat "/proc/$1/wchan" 2>/dev/null) || return 1
		case $w in
		*pipe_write) return 0 ;;
		esac
		sleep 0.01
	done
	return 1
}

# reap_daemon: waits for the daemon, at most TERM_GUARD seconds; its exit
# status in rc, or 124 when the guard had to kill it.
reap_daemon() {
	sleep "$TERM_GUARD" &
	guard_pid=$!
	wait -n -p done_pid "$daemon_pid" "$guard_pid"
	rc=$?
	if [ "$done_pid" = "$guard_pid" ]; then
		guard_pid=
		kill -KILL "$daemon_pid" 2>/dev/null
		wait "$daemon_pid"
		rc=124
	else
		# KILL, not TERM: a guard still between fork and exec is a
		# copy of this shell, traps included; TERM would run them.
		kill -KILL "$guard_pid" 2>/dev/null
		wait "$guard_pid" 2>/dev/null
		guard_pid=
	fi
	daemon_pid=
}

# --trust untrusted(-ws): a certificate must be refused.  Nothing is
# played; the daemon must say why, retry, and still stop cleanly.
case $trust in
untrusted) refusal='sign_in: SSL certificate problem' ;;
untrusted-ws) refusal='SSL error: .*certificate' ;;
esac
if [ "$trust" = untrusted ] || [ "$trust" = untrusted-ws ]; then
	name=$(basename "$scenario")
	problems=()
	await_line "$work/daemon.log" "$refusal" ||
	    problems+=("no daemon.log line says the certificate was refused")
	kill -0 "$daemon_pid" 2>/dev/null ||
	    problems+=("the daemon exited on an untrusted certificate")
	kill -TERM "$daemon_pid" 2>/dev/null
	reap_daemon
	[ $rc -eq 0 ] || problems+=("the daemon exited $rc on SIGTERM, not 0")
	kill -TERM "$sim_pid" 2>/dev/null
	wait "$sim_pid"
	sim_pid=
	if [ "$trust" = untrusted ]; then
		n=$(grep -c '"dir":"http"' "$work/transcript.jsonl" 2>/dev/null)
	else
		kill -TERM "$sim2_pid" 2>/dev/null
		wait "$sim2_pid"
		sim2_pid=
		n=$(grep -c '"dir":"http"' "$work/transcript2.jsonl" 2>/dev/null)
		# The refusal must be the socket's, not an earlier sign-in's.
		grep -q '"path":"/machines/sign_in".*"status":200' \
		    "$work/transcript.jsonl" ||
		    problems+=("the sign-in did not succeed first")
	fi
	[ "${n:-0}" -eq 0 ] ||
	    problems+=("$n HTTP requests got through an untrusted TLS link")
	for p in "${problems[@]}"; do
		echo "run-scenario: $name ($trust): $p" >&2
	done
	[ ${#problems[@]} -eq 0 ] || exit 1
	echo "run-scenario: $name ($trust): passed"
	exit 0
fi

status=0
problems=()
wait -n -p done_pid "$sim_pid" "$daemon_pid"
rc=$?
if [ "$done_pid" = "$daemon_pid" ]; then
	daemon_pid=
	why=
	[ $rc -eq $((128 + $(kill -l XFSZ))) ] &&
	    why=": SIGXFSZ, a file past RLIMIT_FSIZE killed it"
	problems+=("the daemon exited ($rc) before the scenario ended$why")
	kill -TERM "$sim_pid" 2>/dev/null
	wait "$sim_pid"
	sim_rc=$?
	sim_pid=
else
	sim_rc=$rc
	sim_pid=
	# What the daemon does after the sim's last event, awaited in its log.
	if [ $sim_rc -eq 0 ]; then
		for re in "${await_log[@]}"; do
			await_line "$work/daemon.log" "$re" ||
			    problems+=("no daemon.log line matched \"$re\"")
		done
	fi
	# The page, while the daemon still runs.
	if [ $sim_rc -eq 0 ] && [ -n "$web_check" ]; then
		url=$(grep -m1 -o -E 'web: listening on http://[0-9.:]+' \
		    "$work/daemon.log" | sed 's/^web: listening on //')
		if [ -z "$url" ]; then
			problems+=("no \"web: listening on\" line in daemon.log")
		elif ! GFE_WEB_URL=$url GFE_WORK=$work GFE_BIN=$bin \
		    sh -c "$web_check" >"$work/web-check.log" 2>&1; then
			problems+=("--web-check failed (see $work/web-check.log)")
			tail -n 20 "$work/web-check.log" >&2
		fi
	fi
	if [ $second_sigint -eq 1 ]; then
		# Hold the daemon in its shutdown path: stop the log's reader
		# and fill the FIFO, so the daemon's next log line blocks.  The
		# first SIGINT's "shutting down" is that line: it reaches
		# stderr first, proof that the signal was taken (two SIGINTs
		# pending at once would be one), while the daemon waits, right
		# before it unblocks SIGINT.  The second SIGINT must then kill
		# it as soon as it goes on; without that it would exit 0.
		kill -STOP "$reader_pid"
		dd if=/dev/zero of="$work/daemon.log.fifo" bs=1 \
		    oflag=nonblock 2>"$work/fill.log"
		grep -q 'Resource temporarily unavailable' "$work/fill.log" ||
		    problems+=("could not fill the log FIFO (see fill.log)")
		# Hold the loop itself in that write first: the button's line
		# reaches stderr, then blocks on the FIFO (or a line before it
		# does: once the sim is gone the daemon logs its reconnects,
		# and the loop then never reads the button).  A daemon that
		# takes its stop signals on the loop would never see them.
		kill -USR1 "$daemon_pid" 2>/dev/null
		await_blocked "$daemon_pid" ||
		    problems+=("the daemon's loop never blocked on its log")
		kill -INT "$daemon_pid" 2>/dev/null
		await_line "$work/daemon.stderr" 'SIGINT: shutting down' ||
		    problems+=("the daemon never logged its first SIGINT")
		kill -INT "$daemon_pid" 2>/dev/null
		kill -CONT "$reader_pid"
		reap_daemon
		if [ $rc -eq 124 ]; then
			problems+=("the daemon hung after two SIGINTs")
		elif [ $rc -ne $((128 + $(kill -l INT))) ]; then
			problems+=("after a second SIGINT the daemon exited \
$rc, not by SIGINT ($((128 + $(kill -l INT))))")
		fi
		wait "$reader_pid"
		reader_pid=
	else
		kill -TERM "$daemon_pid" 2>/dev/null
		# Guard only: a daemon that ignores SIGTERM must not hang the
		# test.
		reap_daemon
		if [ $rc -eq 124 ]; then
			problems+=("the daemon ignored SIGTERM for \
$TERM_GUARD s")
		elif [ $rc -ne 0 ]; then
			problems+=("the daemon exited $rc on SIGTERM, not 0")
		fi
	fi
fi
if [ -n "$reader_pid" ]; then
	kill -CONT "$reader_pid" 2>/dev/null
	wait "$reader_pid"
	reader_pid=
fi
if [ $second_sigint -eq 1 ]; then
	# The filler's NUL bytes are the harness's, not the daemon's.
	tr -d '\000' <"$work/daemon.log" >"$work/daemon.log.tmp" &&
	    mv "$work/daemon.log.tmp" "$work/daemon.log"
fi

# --- the log lines asked for ---
# Once the sim has exited, the daemon goes on reconnecting until SIGTERM,
# and on a loaded machine it may try more than once.  The refused
# connections are the harness's doing, not the scenario's: they are left
# out of the counts (no scenario counts them), so a count never depends
# on how long the checks after the sim's exit took.
gone="Couldn't connect to server|Connection refused|sign-in failed \\(network"
gone="$gone|status socket: connection failed"
grep -v -E -- "$gone" "$work/daemon.log" >"$work/daemon.counted" 2>/dev/null
for e in "${expect_log[@]}"; do
	want=${e%%:*} re=${e#*:}
	got=$(grep -c -E -- "$re" "$work/daemon.counted" 2>/dev/null)
	[ "${got:-0}" -eq "$want" ] ||
	    problems+=("${got:-0} daemon.log lines match \"$re\", not $want")
done

# --- no secret in anything the daemon (or the sim) wrote ---
if [ -s "$work/secrets" ]; then
	for f in daemon.log daemon.stderr daemon.stdout sim.log \
	    transcript.jsonl summary.txt; do
		[ -f "$work/$f" ] || continue
		if grep -q -F -f "$work/secrets" "$work/$f"; then
			problems+=("a secret (password or token) is in $f")
		fi
	done
fi

# --- kept stepper files: what the daemon reported, and right (PROTOCOL.md 8)
# Jobs it said it loaded (hunt/motion :completed, print:download:completed)
# are kept; refused ones are not.  Each .puls is one served job, inflated,
# byte for byte, and its .info is what gf-puls computes from those bytes.
if [ -f "$work/transcript.jsonl" ]; then
	loaded=$(jq -r 'select(.dir == "rx") | .frame.event // empty' \
	    "$work/transcript.jsonl" | grep -c -E \
	    '^(hunt:completed|motion:completed|print:download:completed)$')
	kept=0
	for f in "$work"/motion/*.puls; do
		[ -e "$f" ] || break
		kept=$((kept + 1))
		base=$(basename "$f" .puls)
		if ! printf '%s\n' "$base" | grep -q -E \
		    '^[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{6}_(hunt|motion|print)_[0-9]+$'
		then
			problems+=("kept file $base.puls is misnamed")
		fi
		if [ ! -f "$work/motion/$base.info" ]; then
			problems+=("$base.puls has no .info")
			continue
		fi
		want=$("$puls" stats --json "$f" | jq -S -c \
		    '{header_data, header_len, size, run_time, stats}')
		got=$(jq -S -c '{header_data, header_len, size, run_time, stats}' \
		    "$work/motion/$base.info")
		if [ -z "$want" ] || [ "$want" != "$got" ]; then
			problems+=("$base.info differs from gf-puls stats")
		fi
		same=0
		for src in "$work"/pulse/*; do
			if gzip -dcf "$src" | cmp -s - "$f"; then
				same=1
				break
			fi
		done
		[ $same -eq 1 ] || problems+=("$base.puls is no served job")
	done
	if [ -n "$expect_kept" ]; then
		[ "$kept" -eq "$expect_kept" ] || problems+=("$kept stepper \
files kept, not $expect_kept ($loaded jobs loaded)")
	elif [ "$kept" -ne "$loaded" ]; then
		problems+=("$kept stepper files kept, $loaded jobs loaded")
	fi
	if ls -A "$work/motion" 2>/dev/null | grep -q '^\.'; then
		problems+=("temporary files left in motion/")
	fi
fi

# --- every WebSocket upgrade looked like a real machine's (PROTOCOL.md 4) ---
if [ -f "$work/transcript.jsonl" ]; then
	ups=$(grep -c '"upgrade":"websocket"' "$work/transcript.jsonl")
	good=$(grep '"upgrade":"websocket"' "$work/transcript.jsonl" |
	    grep '"origin":"http://status.glowforge.com"' |
	    grep -c '"user_agent":"OpenGlow/[^"]')
	if [ "$ups" -ne "$good" ]; then
		problems+=("$((ups - good)) of $ups WebSocket upgrades lack \
Origin http://status.glowforge.com or User-Agent OpenGlow/")
	fi
fi

# --- verdict ---
case $sim_rc in
0) verdict=pass ;;
1) verdict=fail ;;
*) verdict=error ;;
esac
reason=$(grep -m1 '^gf-cloud-sim: FAIL: ' "$work/sim.log" 2>/dev/null |
    sed 's/^gf-cloud-sim: //')
name=$(basename "$scenario")
if [ $verbose -eq 1 ] && [ -f "$work/summary.txt" ]; then
	echo "--- $name: events per action"
	sed 's/^/  /' "$work/summary.txt"
fi
if [ $verdict = error ]; then
	status=2
	echo "run-scenario: $name: the simulator exited $sim_rc" >&2
	tail -n 20 "$work/sim.log" >&2
elif [ $expect_fail -eq 1 ]; then
	if [ $verdict = pass ]; then
		status=1
		echo "run-scenario: $name: passed, but was expected to fail" >&2
	else
		echo "run-scenario: $name: failed as expected: $reason"
	fi
elif [ $verdict = fail ]; then
	status=1
	echo "run-scenario: $name: $reason" >&2
fi
for p in "${problems[@]}"; do
	echo "run-scenario: $name: $p" >&2
	status=1
done
if [ $status -ne 0 ] && [ -s "$work/daemon.stderr" ]; then
	# Masked: a leaked token must not travel on into CI logs.
	mask=()
	[ -f "$work/secrets" ] && while IFS= read -r s; do
		[ -n "$s" ] && mask+=(-e "s/$s/<redacted>/g")
	done <"$work/secrets"
	echo "--- daemon stderr (last lines), more in $work" >&2
	tail -n 15 "$work/daemon.stderr" | sed "${mask[@]}" -e '' >&2
fi
[ $status -eq 0 ] && [ $expect_fail -eq 0 ] &&
    echo "run-scenario: $name: passed"
exit $status
