#!/bin/bash
# sim-selftest.sh: gf-cloud-sim on its own, without the daemon.  HTTP with
# curl(1); the WebSocket with sim_ws_probe, a minimal machine.  Checks the
# endpoints, the knobs, the requests that must fail a scenario, the frame
# checks, TLS, and that no secret reaches the transcript.
#
#   sim-selftest.sh GF_CLOUD_SIM SIM_WS_PROBE [SIM_RAW]
#
# Synchronisation is by pipes (the sim prints its port, the probe each
# action it gets) and wait(1); no sleeps.
set -u

SIM=${1:?usage: sim-selftest.sh GF_CLOUD_SIM SIM_WS_PROBE}
PROBE=${2:?usage: sim-selftest.sh GF_CLOUD_SIM SIM_WS_PROBE}
RAW=${3:-}
command -v curl >/dev/null || { echo "sim-selftest: SKIP: no curl" >&2; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/sim-selftest.XXXXXX") || exit 1
SERIAL=12345678
PW=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
FAILS=0
SIM_PID= PROBE_PID=
cleanup() {
	local p
	for p in $PROBE_PID $SIM_PID; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

# expect WHAT GOT WANT
expect() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# start_sim SCENARIO_TEXT [ARGS...]: starts the sim, sets SIM_PID and PORT.
start_sim() {
	printf '%s\n' "$1" >"$W/scenario.jsonl"
	shift
	rm -f "$W/tr.jsonl" "$W/port" "$W/secrets"
	rm -rf "$W/up" && mkdir "$W/up"
	mkfifo "$W/port"
	"$SIM" --port 0 --print-port --serial "$SERIAL" --password "$PW" \
	    --scenario "$W/scenario.jsonl" --transcript "$W/tr.jsonl" \
	    --pulse-dir "$W/pulse" --upload-dir "$W/up" --secrets "$W/secrets" \
	    --timeout 30 "$@" >"$W/port" 2>"$W/sim.log" &
	SIM_PID=$!
	PORT=
	read -r -t 10 PORT <"$W/port"
	rm -f "$W/port"
	case $PORT in
	''|*[!0-9]*) fail "the sim did not start: $(cat "$W/sim.log")"; PORT=1 ;;
	esac
	BASE=${SCHEME:-http}://127.0.0.1:$PORT
}

# stop_sim WANT_RC [REASON_PART]: waits for the sim's exit.
stop_sim() {
	local rc
	wait "$SIM_PID"
	rc=$?
	SIM_PID=
	[ "$rc" -eq "$1" ] || fail "the sim exited $rc, want $1: $(tail -n 3 "$W/sim.log")"
	# Under a sanitizer, an error would hide behind an expected exit 1.
	if grep -q -E 'Sanitizer|runtime error:' "$W/sim.log"; then
		fail "sanitizer report: $(grep -m3 -E 'Sanitizer|runtime error:' "$W/sim.log")"
	fi
	if [ -n "${2:-}" ] && ! grep -q -F -- "$2" "$W/sim.log"; then
		fail "the sim's reason lacks '$2': $(grep FAIL "$W/sim.log")"
	fi
	if [ -s "$W/secrets" ] && grep -q -F -f "$W/secrets" "$W/tr.jsonl" \
	    "$W/sim.log"; then
		fail "a secret reached the transcript or the log"
	fi
}

# curl_code ARGS...: the status code; the body in $W/body.
curl_code() {
	curl -s -o "$W/body" -w '%{http_code}' ${CACERT:+--cacert "$CACERT"} "$@"
}

sign_in() {
	curl_code -X POST -H 'Content-Type: application/json' \
	    -d "{\"serial\":\"S$SERIAL\",\"password\":\"$PW\"}" \
	    "$BASE/machines/sign_in"
}

json_str() {	# KEY: from $W/body
	sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$W/body"
}

# start_probe MODE: connects with a fresh ws token (left in WSTOK); reads
# from fd 5 give the actions it receives.
start_probe() {
	local code
	code=$(sign_in)
	expect "sign-in before the probe" "$code" 200
	WSTOK=$(json_str ws_token)
	rm -f "$W/probe"
	mkfifo "$W/probe"
	"$PROBE" "${WSCHEME:-ws}://127.0.0.1:$PORT" "$WSTOK" "$1" ${CACERT:+"$CACERT"} \
	    >"$W/probe" 2>"$W/probe.log" &
	PROBE_PID=$!
	exec 5<"$W/probe"
	rm -f "$W/probe"
}

stop_probe() {
	exec 5<&-
	wait "$PROBE_PID"
	PROBE_PID=
}

# next_action: the next action line the probe got, in $ACTION.
next_action() {
	ACTION=
	read -r -t 10 ACTION <&5 || fail "the probe got no action"
}

WAIT_RAW='{"await": "never", "timeout": 30}'
mkdir "$W/pulse"
head -c 5000 /dev/urandom >"$W/pulse/job.puls.gz"
printf '\377\330a small jpeg\377\331' >"$W/small.jpg"
{ printf '\377\330'; head -c 200000 /dev/urandom; printf '\377\331'; } >"$W/big.jpg"
printf 'not a jpeg' >"$W/bad.jpg"
ST=$(printf '%s' "$PW" | cut -c1-8)	# never sent: a stale-looking token

# --- usage ---
"$SIM" >/dev/null 2>&1; expect "no arguments" $? 2
"$SIM" --help >/dev/null 2>&1; expect "--help" $? 0
printf '{"send": {"action_type": "settings"}, "bogus": 1}\n' >"$W/bad.jsonl"
"$SIM" --scenario "$W/bad.jsonl" --print-config >/dev/null 2>"$W/err"
expect "a bad scenario" $? 2
grep -q 'bad.jsonl:1: ' "$W/err" || fail "no file:line in '$(cat "$W/err")'"
printf '{"config": {"EMULATOR": {"button_press_delay": 30, "bypass_homing": true}}}\n{"raw": "x"}\n' >"$W/cfg.jsonl"
expect "--print-config" "$("$SIM" --scenario "$W/cfg.jsonl" --print-config | tr '\n' '|')" \
    "[EMULATOR]|button_press_delay: 30|bypass_homing: True|"
"$SIM" --scenario "$W/cfg.jsonl" --serial S1 --password x >/dev/null 2>&1
expect "--serial with an S" $? 2

# --- the endpoints, the knobs ---
start_sim '{"send": {"action_type": "lid_image", "endpoint": true}}
{"send": {"action_type": "lidar_image"}, "label": "legacy"}
{"expire_token": true}
{"fail_upload": 1}
{"fail_pulse": 1}
{"await": "never", "timeout": 30}'
expect "sign-in" "$(sign_in)" 200
tok1=$(json_str auth_token)
expect "auth_token is 64 hex" "$(printf '%s' "$tok1" | tr -d '0-9a-f' | wc -c)$(printf '%s' "$tok1" | wc -c)" "064"
expect "update, stale token" "$(curl_code -H "Authorization: Bearer $ST" "$BASE/update/current")" 401
expect "update" "$(curl_code -H "Authorization: Bearer $tok1" "$BASE/update/current")" 200
grep -q '"version":"2.6.0-2228"' "$W/body" || fail "update: $(cat "$W/body")"
expect "sign-in again" "$(sign_in)" 200
tok2=$(json_str auth_token)
expect "the old token is retired" "$(curl_code -H "Authorization: Bearer $tok1" "$BASE/update/current")" 401
expect "pulse missing" "$(curl_code "$BASE/pulse/missing.puls.gz")" 404
start_probe ok
next_action
url=$(printf '%s' "$ACTION" | sed -n 's/.*"endpoint":"\([^"]*\)".*/\1/p')
case $url in "$BASE/upload/"*"?sig="*) ;; *) fail "endpoint: $ACTION" ;; esac
next_action
case $ACTION in *'"action_type":"lidar_image"'*) ;; *) fail "lidar: $ACTION" ;; esac
legacy_id=$(printf '%s' "$ACTION" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
# The knobs ran before the probe saw the actions.
expect "update after expire_token" "$(curl_code -H "Authorization: Bearer $tok2" "$BASE/update/current")" 401
expect "pulse, fail_pulse" "$(curl_code "$BASE/pulse/job.puls.gz")" 500
expect "pulse" "$(curl_code -D "$W/hdr" "$BASE/pulse/job.puls.gz")" 200
cmp -s "$W/body" "$W/pulse/job.puls.gz" || fail "pulse: not served as is"
grep -qi '^content-type: application/octet-stream' "$W/hdr" || fail "pulse type: $(cat "$W/hdr")"
grep -qi '^content-encoding' "$W/hdr" && fail "pulse: a Content-Encoding"
expect "PUT, fail_upload" "$(curl_code -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$W/small.jpg" "$url")" 500
# 200 KB: libcurl asks "Expect: 100-continue"; the sim must answer it.
expect "PUT" "$(curl_code --max-time 0.9 -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$W/big.jpg" "$url")" 200
id=${url#"$BASE/upload/"}; id=${id%%\?*}
cmp -s "$W/big.jpg" "$W/up/$id.jpg" || fail "the upload is not stored as $id.jpg"
expect "sign-in a third time" "$(sign_in)" 200
tok3=$(json_str auth_token)
expect "legacy, stale token" "$(curl_code -X POST -H "Authorization: Bearer $tok2" -H 'Content-Type: image/jpeg' --data-binary @"$W/small.jpg" "$BASE/api/machines/lidar_image/$legacy_id")" 401
expect "legacy" "$(curl_code -X POST -H "Authorization: Bearer $tok3" -H 'Content-Type: image/jpeg' --data-binary @"$W/small.jpg" "$BASE/api/machines/lidar_image/$legacy_id")" 200
cmp -s "$W/small.jpg" "$W/up/$legacy_id.jpg" || fail "the legacy upload is not stored"
kill -TERM "$SIM_PID"
stop_sim 1 "interrupted by signal 15"
stop_probe
grep -q '"dir":"http","method":"GET","path":"/<redacted>","upgrade":"websocket","origin":"http://status.glowforge.com"' "$W/tr.jsonl" ||
    fail "the transcript lacks the upgrade's Origin"
for d in rx tx http ws; do
	grep -q "\"dir\":\"$d\"" "$W/tr.jsonl" || fail "no $d record in the transcript"
done
grep -q -F "$tok1" "$W/secrets" || fail "the tokens are not in --secrets"
expect "--secrets mode" "$(stat -c %a "$W/secrets")" 600

# --- pipelined requests: each connection gets an answer and closes ---
# lws 4.1.6 spun for ever on a request with a body pipelined behind
# another; the sim now closes after every answer.  Each shape goes in one
# write; sim_raw exits 2 when nothing comes back (a wedged loop).
if [ -n "$RAW" ]; then
	start_sim "$WAIT_RAW"
	B="{\"serial\":\"S$SERIAL\",\"password\":\"$PW\"}"
	printf 'POST /machines/sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
	    ${#B} "$B" >"$W/SI"
	printf 'POST /machines/sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' \
	    ${#B} "$B" >"$W/CH"
	printf 'GET /pulse/job.puls.gz HTTP/1.1\r\nHost: x\r\n\r\n' >"$W/GP"
	printf 'GET /update/current HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' \
	    "$ST" >"$W/GU"
	for shape in "SI SI:200" "SI SI SI SI:200" "GP SI:200" "SI GP:200" \
	    "GU SI:401" "GP GP GP:200" "CH:411" "CH SI:411" "SI CH:200"; do
		( cd "$W" && cat ${shape%:*} ) | "$RAW" "$PORT" 10 >"$W/raw.out"
		expect "pipelined $shape: sim_raw" $? 0
		expect "pipelined $shape: answers" "$(grep -a -c '^HTTP/1.1 ' "$W/raw.out")" 1
		expect "pipelined $shape: status" "$(sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$W/raw.out")" "${shape#*:}"
	done
	# The loop still serves, its log did not run away, and it stops.
	expect "sign-in after the pipelines" "$(sign_in)" 200
	[ "$(wc -c <"$W/sim.log")" -lt 100000 ] || fail "the sim's log ran away: $(wc -c <"$W/sim.log") bytes"
	# A wedged sim ignores SIGTERM: a watchdog kills it, so the test
	# fails instead of hanging.
	kill -TERM "$SIM_PID"
	( sleep 10; kill -KILL "$SIM_PID" 2>/dev/null ) &
	DOG=$!
	stop_sim 1 "interrupted by signal 15"
	kill "$DOG" 2>/dev/null
	wait "$DOG" 2>/dev/null
fi

# --- requests that fail the scenario: status, then exit 1 with a reason ---
WAIT='{"await": "never", "timeout": 30}'
start_sim "$WAIT"
expect "form sign-in" "$(curl_code -X POST -d "serial=S$SERIAL&password=$PW" "$BASE/machines/sign_in")" 400
stop_sim 1 "not sent as JSON"
start_sim "$WAIT"
expect "non-JSON sign-in" "$(curl_code -X POST -H 'Content-Type: application/json' -d "serial=S$SERIAL" "$BASE/machines/sign_in")" 400
stop_sim 1 "not a JSON object"
start_sim "$WAIT"
expect "wrong password" "$(curl_code -X POST -H 'Content-Type: application/json' -d "{\"serial\":\"S$SERIAL\",\"password\":\"$ST\"}" "$BASE/machines/sign_in")" 401
stop_sim 1 "wrong serial or password"
start_sim "$WAIT"
expect "serial without S" "$(curl_code -X POST -H 'Content-Type: application/json' -d "{\"serial\":\"$SERIAL\",\"password\":\"$PW\"}" "$BASE/machines/sign_in")" 401
stop_sim 1 "wrong serial or password"
start_sim "$WAIT"
expect "update without Authorization" "$(curl_code "$BASE/update/current")" 401
stop_sim 1 "no Authorization header"
start_sim "$WAIT"
expect "unknown path" "$(curl_code "$BASE/favicon.ico")" 404
stop_sim 1 "does not have"
start_sim "$WAIT"
expect "pulse name with .." "$(curl_code "$BASE/pulse/a..b")" 400
stop_sim 1 "never hands out"
start_sim "$WAIT"
"$PROBE" "ws://127.0.0.1:$PORT" "$PW" ok >/dev/null 2>&1
expect "probe with a token never issued" $? 1
stop_sim 1 "not a ws token the sim issued"
UPLOAD='{"send": {"action_type": "lid_image", "endpoint": true}}
{"await": "never", "timeout": 30}'
for bad in auth type jpeg sig; do
	start_sim "$UPLOAD"
	start_probe ok
	next_action
	url=$(printf '%s' "$ACTION" | sed -n 's/.*"endpoint":"\([^"]*\)".*/\1/p')
	case $bad in
	auth)
		expect "PUT with Bearer" "$(curl_code -X PUT -H 'Authorization: Bearer x' -H 'Content-Type: image/jpeg' --data-binary @"$W/small.jpg" "$url")" 400
		stop_sim 1 "an Authorization header on a presigned upload" ;;
	type)
		expect "PUT as octet-stream" "$(curl_code -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$W/small.jpg" "$url")" 400
		stop_sim 1 "not image/jpeg" ;;
	jpeg)
		expect "PUT not a JPEG" "$(curl_code -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$W/bad.jpg" "$url")" 400
		stop_sim 1 "not a JPEG"
		[ -z "$(ls -A "$W/up")" ] || fail "a refused upload left $(ls -A "$W/up")" ;;
	sig)
		expect "PUT with a wrong sig" "$(curl_code -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$W/small.jpg" "${url%%\?*}?sig=00")" 403
		stop_sim 1 "presigned signature" ;;
	esac
	stop_probe
done
# A ws token is single-use: once the first probe has its action, the socket
# is up and the token spent.
start_sim '{"send": {"action_type": "settings"}, "expect": "settings:completed"}
'"$WAIT"
start_probe ok
next_action
"$PROBE" "ws://127.0.0.1:$PORT" "$WSTOK" ok >/dev/null 2>&1
expect "a ws token used twice" $? 1
stop_sim 1 "already used"
stop_probe

# --- the frame checks, with the probe's misbehaviours ---
PLAY='{"send": [{"action_type": "settings"}, {"action_type": "hunt", "motion_file": "job.puls.gz"}], "label": ["s", "h"]}
{"await": "settings:completed", "label": "s"}
{"await": "hunt:completed", "label": "h"}
{"send": {"action_type": "print", "motion_file": "job.puls.gz"}, "label": "p", "expect": "print:completed", "events": ["print:completed"]}'
for m in "ok:0:" "dup-id:1:does not rise" "no-newline:1:not newline-terminated" \
    "leak:1:holds a secret" "wrong-end:1:ended with settings:failed"; do
	mode=${m%%:*} rest=${m#*:}
	start_sim "$PLAY"
	start_probe "$mode"
	stop_sim "${rest%%:*}" "${rest#*:}"
	stop_probe
done
# A wrong event list, and a line that times out.
start_sim '{"send": {"action_type": "settings"}, "label": "s", "events": ["settings:starting", "settings:completed"]}
{"await": "settings:completed", "label": "s"}'
start_probe ok
stop_sim 1 "events differ at #1"
stop_probe
start_sim '{"send": {"action_type": "settings"}, "label": "s", "expect": "settings:completed"}
{"await": "button:pressed", "timeout": 0.5}'
start_probe ok
stop_sim 1 "no button:pressed within 500 ms"
stop_probe
start_sim "$WAIT" --timeout 1
stop_sim 1 "global timeout after 1 s (the machine never connected)"

# A machine that never reads: 32 MiB stuck behind its socket.  The sim
# must still exit soon after its global timeout (it took 15-30 s more,
# flushing in lws_context_destroy); the watchdog turns a hang into a kill.
start_sim '{"send_big": 16777216}
{"send_big": 16777216}
'"$WAIT" --timeout 2
start_probe deaf
( sleep 10; kill -KILL "$SIM_PID" 2>/dev/null ) &
DOG=$!
stop_sim 1 "global timeout after 2 s"
kill "$DOG" 2>/dev/null
wait "$DOG" 2>/dev/null
kill "$PROBE_PID" 2>/dev/null
stop_probe

# --- TLS: https and wss with a throw-away CA ---
if command -v openssl >/dev/null; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 1 \
	    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
	    >/dev/null 2>&1 || fail "openssl"
	SCHEME=https WSCHEME=wss CACERT=$W/cert.pem
	start_sim '{"send": {"action_type": "lid_image", "endpoint": true}, "expect": "lid_image:completed"}' \
	    --tls-cert "$W/cert.pem" --tls-key "$W/key.pem"
	start_probe ok
	next_action
	case $ACTION in *'"endpoint":"https://127.0.0.1:'*) ;; *) fail "TLS endpoint: $ACTION" ;; esac
	stop_sim 0
	stop_probe
	unset SCHEME WSCHEME CACERT
fi

if [ $FAILS -ne 0 ]; then
	echo "sim-selftest: $FAILS failure(s)" >&2
	exit 1
fi
echo "sim-selftest: all passed"
