#!/bin/bash
# evloop-fleet.sh: N machines on one evloop against the real gf-cloud-sim
# serving a fleet.  evloop_probe signs N machines (serials S .. S+N-1) in
# to the sim through the curl multi and opens their N WebSockets to the
# sim itself with lws, all on one libuv loop; the sim (--machines N, load
# mode at rate 0: it only serves) gives each machine its own socket.
# Passes when the probe saw all N up and tore down cleanly, and the sim's
# summary says N sign-ins and N machines connected, all at once.
#
#   evloop-fleet.sh GF_CLOUD_SIM EVLOOP_PROBE [N [tls|nosim|load]]
#
# With "tls", sign-ins are https and the sockets wss, under a throw-away
# CA (skipped without openssl).  With "nosim", no sim and no sign-ins:
# the N sockets alone, opened at once to a second evloop_probe ("serve"),
# skipped when the descriptor limit is too low for N.  With "load", the
# sim runs a load (settings, EVLOOP_RATE actions/s, default 200, for
# EVLOOP_DURATION s, default 5) over the N machines, which answer every
# action at once (EVLOOP_PROBE_ANSWER=1); the sim ends the run itself and
# its summary must show every action completed, none lost.
#
# EVLOOP_WRAP runs the probe under a tool, its report then goes to stderr:
#   EVLOOP_WRAP='/usr/bin/time -v' evloop-fleet.sh SIM PROBE 1000
#   EVLOOP_WRAP='valgrind --leak-check=full' evloop-fleet.sh SIM PROBE 200
# EVLOOP_SUMMARY=FILE keeps the sim's summary (its CPU, RSS, all-up time).
#
# Synchronisation: the sim and the server print their ports into fifos;
# the probe exits once all N are up; then SIGTERM ends the sim, which
# writes its summary.  No sleeps.
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
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((N + 100)) ] ||
    { echo "evloop-fleet: SKIP: ulimit -n $(ulimit -n) < N=$N" >&2; exit 77; }
[ "$TLS" = nosim ] || command -v jq >/dev/null ||
    { echo "evloop-fleet: SKIP: no jq" >&2; exit 77; }
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
# Rate 0: the profile is never played; the sim serves until SIGTERM.
RATE=0 DURATION=170
if [ "$TLS" = load ]; then
	RATE=${EVLOOP_RATE:-200} DURATION=${EVLOOP_DURATION:-5}
	export EVLOOP_PROBE_ANSWER=1
fi
printf '{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}\n' >"$W/profile.jsonl"
mkfifo "$W/simport" "$W/srvport"
if [ "$TLS" != nosim ]; then
	"$SIM" --port 0 --print-port --machines "$N" --serial-first "$SERIAL" \
	    --password-file "$W/pw" --load "$W/profile.jsonl" --rate "$RATE" \
	    --duration "$DURATION" --grace 10 --summary-json "$W/summary.json" "${SIMTLS[@]}" \
	    >"$W/simport" 2>"$W/sim.log" &
	SIM_PID=$!
	read -r -t 10 SIMPORT <"$W/simport" ||
	    fail "the sim did not start: $(cat "$W/sim.log")"
	WSPORT=$SIMPORT
	URL=$SCHEME://127.0.0.1:$SIMPORT
else
	"$PROBE" serve "${SRVTLS[@]}" >"$W/srvport" 2>"$W/srv.log" &
	SRV_PID=$!
	read -r -t 10 WSPORT <"$W/srvport" ||
	    fail "the server did not start: $(cat "$W/srv.log")"
	URL=-
fi

${EVLOOP_WRAP:-} "$PROBE" run "$URL" "$WSPORT" "$N" \
    "$SERIAL" "$W/pw" "${CA[@]}" >"$W/probe.out" 2>"$W/probe.log"
rc=$?
# The sim's /metrics (Prometheus text), scraped while it still serves.
if [ -n "$SIM_PID" ] && [ "$TLS" != load ] && command -v curl >/dev/null; then
	curl -sS -f ${CA:+--cacert "${CA[0]}"} "$URL/metrics" >"$W/metrics" 2>&1 ||
	    echo "curl failed" >>"$W/metrics"
fi
# A load run ends by itself (the probe stopped when the sim closed).
[ "$TLS" = load ] || kill -TERM $SRV_PID $SIM_PID
if [ -n "$SRV_PID" ]; then
	wait "$SRV_PID"; srv_rc=$?
fi
if [ -n "$SIM_PID" ]; then
	wait "$SIM_PID"; sim_rc=$?
fi
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
if [ "$TLS" = nosim ]; then
	check "the server's exit" "$srv_rc" 0
	check "sockets the server saw" "$(grep '^served ' "$W/srv.log")" "served $N"
else
	check "the sim's exit" "$sim_rc" 0
	J() { jq -r "$1" "$W/summary.json" 2>/dev/null; }
	check "sign-ins the sim answered" "$(J .signins)" "$N"
	check "machines with a socket to the sim" "$(J .connected)" "$N"
	check "all up at once" "$(J '.all_up_s != null')" true
	check "violations" "$(J .violations)" 0
	if [ -f "$W/metrics" ]; then
		check "/metrics: machines" "$(grep '^gfsim_machines ' "$W/metrics")" "gfsim_machines $N"
		check "/metrics: latency count" "$(grep '^gfsim_action_latency_microseconds_count ' "$W/metrics")" \
		    "gfsim_action_latency_microseconds_count 0"
	fi
	if [ "$TLS" = load ]; then
		SCHED=$(awk -v r="$RATE" -v d="$DURATION" 'BEGIN { printf "%d", r * d }')
		check "actions sent" "$(J .actions_sent)" "$SCHED"
		check "completed" "$(J .terminals.completed)" "$SCHED"
		check "lost" "$(J .lost)" 0
		check "duplicated" "$(J .duplicated)" 0
	fi
	[ -n "${EVLOOP_SUMMARY:-}" ] && cp "$W/summary.json" "$EVLOOP_SUMMARY"
fi
LOGS=("$W/probe.log")
[ -f "$W/srv.log" ] && LOGS+=("$W/srv.log")
[ -f "$W/sim.log" ] && LOGS+=("$W/sim.log")
if grep -q -E 'Sanitizer|runtime error:|still open|did not close' "${LOGS[@]}"; then
	echo "FAIL: $(grep -h -m3 -E 'Sanitizer|runtime error:|still open|did not close' "${LOGS[@]}")" >&2
	FAILS=$((FAILS + 1))
fi
if grep -q -F -f "$W/pw" "${LOGS[@]}" "$W/probe.out"; then
	echo "FAIL: the password reached a log" >&2
	FAILS=$((FAILS + 1))
fi
if [ $FAILS -ne 0 ]; then
	echo "--- probe.log" >&2; tail -n 20 "$W/probe.log" >&2
	[ -f "$W/sim.log" ] && { echo "--- sim.log" >&2; tail -n 5 "$W/sim.log" >&2; }
	exit 1
fi
if [ "$TLS" = nosim ]; then
	echo "evloop-fleet: $N sockets up on one loop"
else
	echo "evloop-fleet: $N machines up on one loop, each with its own socket to the sim${TLS:+ ($TLS)}: $(jq -c '{all_up_s, actions_sent, lost, latency: .latency_us.terminal, sim}' "$W/summary.json")"
fi
