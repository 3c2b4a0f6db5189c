#!/bin/bash
# evloop-fleet.sh: N machines on one evloop against the real gf-cloud-sim.
# evloop_probe signs N machines in to the sim through the curl multi and
# opens their N WebSockets with lws on the same libuv loop (to a second
# evloop_probe, "serve": the sim keeps one socket).  Passes when the probe
# saw all N up and tore down cleanly, the sim answered N sign-ins, and the
# server saw N sockets.
#
#   evloop-fleet.sh GF_CLOUD_SIM EVLOOP_PROBE [N [tls]]
#
# With "tls", sign-ins are https and the sockets wss, under a throw-away
# CA (skipped without openssl).  With "nosim", no sim and no sign-ins:
# the N sockets alone, opened at once (skipped when the descriptor limit
# is too low for N).
#
# EVLOOP_WRAP runs the probe under a tool, its report then goes to stderr:
#   EVLOOP_WRAP='/usr/bin/time -v' evloop-fleet.sh SIM PROBE 1000
#   EVLOOP_WRAP='valgrind --leak-check=full' evloop-fleet.sh SIM PROBE 200
#
# Synchronisation: the sim and the server print their ports into fifos;
# the probe exits once all N are up; wait(1) for the rest.  No sleeps.
set -u

SIM=${1:?usage: evloop-fleet.sh GF_CLOUD_SIM EVLOOP_PROBE [N]}
PROBE=${2:?usage: evloop-fleet.sh GF_CLOUD_SIM EVLOOP_PROBE [N]}
N=${3:-200}
TLS=${4:-}
SERIAL=12345678
W=$(mktemp -d "${TMPDIR:-/tmp}/evloop-fleet.XXXXXX") || exit 1
SIM_PID= SRV_PID=
cleanup() {
	local p
	for p in $SRV_PID $SIM_PID; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# Each sign-in counts two secrets in the sim: keep to what it tracks.
[ "$TLS" = nosim ] || [ "$N" -le 2000 ] || fail "N=$N: the sim tracks at most 2000 sign-ins"
ulimit -n "$(ulimit -Hn)"
if [ "$TLS" = nosim ]; then
	[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((N + 100)) ] ||
	    { echo "evloop-fleet: SKIP: ulimit -n $(ulimit -n) < N=$N" >&2; exit 77; }
fi
SIMTLS=() SRVTLS=() CA=() SCHEME=http
if [ "$TLS" = tls ]; then
	command -v openssl >/dev/null || { echo "evloop-fleet: SKIP: no openssl" >&2; exit 77; }
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 1 \
	    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
	    >/dev/null 2>&1 || fail "openssl"
	SIMTLS=(--tls-cert "$W/cert.pem" --tls-key "$W/key.pem")
	SRVTLS=("$W/cert.pem" "$W/key.pem")
	CA=("$W/cert.pem")
	SCHEME=https
fi

od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw"
printf '{"await": "never", "timeout": 170}\n' >"$W/scenario.jsonl"
mkfifo "$W/simport" "$W/srvport"
if [ "$TLS" != nosim ]; then
	"$SIM" --port 0 --print-port --serial "$SERIAL" --password-file "$W/pw" \
	    --scenario "$W/scenario.jsonl" --timeout 170 "${SIMTLS[@]}" \
	    >"$W/simport" 2>"$W/sim.log" &
	SIM_PID=$!
	read -r -t 10 SIMPORT <"$W/simport" ||
	    fail "the sim did not start: $(cat "$W/sim.log")"
fi
"$PROBE" serve "${SRVTLS[@]}" >"$W/srvport" 2>"$W/srv.log" &
SRV_PID=$!
read -r -t 10 SRVPORT <"$W/srvport" || fail "the server did not start: $(cat "$W/srv.log")"

URL=-
[ -n "$SIM_PID" ] && URL=$SCHEME://127.0.0.1:$SIMPORT
${EVLOOP_WRAP:-} "$PROBE" run "$URL" "$SRVPORT" "$N" \
    "$SERIAL" "$W/pw" "${CA[@]}" >"$W/probe.out" 2>"$W/probe.log"
rc=$?
kill -TERM "$SRV_PID" $SIM_PID
wait "$SRV_PID"; srv_rc=$?
[ -n "$SIM_PID" ] && wait "$SIM_PID"
SRV_PID= SIM_PID=

[ -n "${EVLOOP_WRAP:-}" ] && cat "$W/probe.log" >&2
FAILS=0
check() {	# WHAT GOT WANT
	[ "$2" = "$3" ] && return
	echo "FAIL: $1: got '$2', want '$3'" >&2
	FAILS=$((FAILS + 1))
}
check "the probe's exit" "$rc" 0
check "the probe's report" "$(cat "$W/probe.out")" "up $N"
[ "$TLS" = nosim ] ||
    check "sign-ins the sim answered" "$(grep -c 'sign-in: tokens issued' "$W/sim.log")" "$N"
check "the server's exit" "$srv_rc" 0
check "sockets the server saw" "$(grep '^served ' "$W/srv.log")" "served $N"
if grep -q -E 'Sanitizer|runtime error:|still open|did not close' \
    "$W/probe.log" "$W/srv.log"; then
	echo "FAIL: $(grep -h -m3 -E 'Sanitizer|runtime error:|still open|did not close' "$W/probe.log" "$W/srv.log")" >&2
	FAILS=$((FAILS + 1))
fi
if grep -q -F -f "$W/pw" "$W/probe.log" "$W/srv.log" "$W/probe.out"; then
	echo "FAIL: the password reached a log" >&2
	FAILS=$((FAILS + 1))
fi
if [ $FAILS -ne 0 ]; then
	echo "--- probe.log" >&2; tail -n 20 "$W/probe.log" >&2
	[ -f "$W/sim.log" ] && { echo "--- sim.log" >&2; tail -n 5 "$W/sim.log" >&2; }
	exit 1
fi
echo "evloop-fleet: $N machines up on one loop${TLS:+ ($TLS)}"
