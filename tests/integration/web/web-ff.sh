#!/bin/bash
# web-ff.sh: /metrics counts a FlashForge's clients, /api/status shows the
# printer (model, name, state, file, progress): a FlashForge-only
# daemon with [WEB]; two command connections (three command lines) and
# one HTTP API request, then /metrics and /api/status must say so.  The
# page listens on every interface here (allow_remote), which the log
# must say.
#   web-ff.sh DAEMON WORK_DIR
set -u
daemon=${1:?} work=${2:?}
[ -x "$daemon" ] || exit 77
rm -rf "$work" && mkdir -p "$work" || exit 2
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null' EXIT
fails=0
fail() {
	echo "web-ff: FAIL: $*" >&2
	fails=$((fails + 1))
}
# Below the ephemeral range, spread by pid (see flashforge.sh); the top
# half of each block of 8, whose bottom half flashforge-clients.sh takes:
# run side by side (ctest -j) with pids 500 apart, they cannot collide.
base=$((28000 + ($$ % 500) * 8 + 4))
cat >"$work/ff.cfg" <<EOF2
[FLASHFORGE]
model: adventurer5m
serial: SNWEB1
check_code: abc123
tcp_port: $base
http_port: $((base + 1))
discovery_port: 0
multicast_port: 0
camera_port: 0
state_file: $work/ff.state

[WEB]
listen: 0.0.0.0:0
allow_remote: True

[LOGGING]
file: $work/daemon.log
EOF2
"$daemon" -c "$work/ff.cfg" -f >"$work/stdout" 2>"$work/stderr" &
pid=$!
# The line that names the port: followed as the log grows, no polling.
url=$(timeout 20 tail -n +1 -F --pid=$pid "$work/daemon.log" 2>/dev/null |
    grep -m1 -o -E 'web: listening on http://[0-9.:]+' |
    sed 's/^web: listening on http:\/\/0\.0\.0\.0/http:\/\/127.0.0.1/')
[ -n "$url" ] || { cat "$work/stderr" >&2; echo "web-ff: no web line" >&2; exit 1; }
grep -q 'NOTICE.*web: listening on http://0\.0\.0\.0:[0-9]*, reachable from other hosts (allow_remote)' \
    "$work/daemon.log" || fail "no log line says the page is reachable from other hosts"

cmd() {	# LINES...: one connection, the lines, each reply's "ok" read
	local n=0 line
	exec {fd}<>"/dev/tcp/127.0.0.1/$base" || return 1
	printf '%s\r\n' "$@" >&"$fd"
	while [ $n -lt $# ] && IFS= read -r -t 5 line <&"$fd"; do
		case $line in ok*) n=$((n + 1)) ;; esac
	done
	exec {fd}<&-
	[ $n -eq $# ] || fail "$n replies to $*"
}
cmd '~M601 S1' '~M115'
cmd '~M119'
curl -sS --max-time 5 -o /dev/null -d '{"serialNumber":"SNWEB1","checkCode":"abc123"}' \
    "http://127.0.0.1:$((base + 1))/detail" || fail "HTTP API"
curl -sS --max-time 5 "$url/metrics" >"$work/metrics.txt" || fail "/metrics"
for line in 'gfe_flashforge_connections_total 2' \
    'gfe_flashforge_commands_total 3' \
    'gfe_flashforge_http_requests_total 1' 'gfe_sign_ins_total 0'; do
	grep -q -x -F "$line" "$work/metrics.txt" || fail "/metrics lacks $line"
done
curl -sS --max-time 5 "$url/api/status" >"$work/status.json"
jq -e '.machines.flashforge == true and .machines.glowforge == false and
    .machines.flashforge_commands_total == 3' "$work/status.json" \
    >/dev/null || fail "/api/status: $(cat "$work/status.json")"
# The printer's own state: its name and model, ready; then printing the
# card's demo file (the 5M's M23 starts it), then paused; never the check
# code.
jq -e '.machines.printer == {model: "adventurer5m", name:
    .machines.printer.name, state: "ready", file: "", progress: 0,
    clients: 0} and (.machines.printer.name | length) > 0' \
    "$work/status.json" >/dev/null ||
    fail "/api/status: the printer: $(jq -c .machines.printer "$work/status.json")"
cmd '~M601 S1' '~M23 0:/user/20mm_cube.gcode'
curl -sS --max-time 5 "$url/api/status" >"$work/status2.json"
jq -e '.machines.printer | .state == "printing" and
    .file == "20mm_cube.gcode" and .progress >= 0 and .progress < 1' \
    "$work/status2.json" >/dev/null ||
    fail "/api/status while printing: $(jq -c .machines.printer "$work/status2.json")"
cmd '~M601 S1' '~M25'
curl -sS --max-time 5 "$url/api/status" >"$work/status3.json"
jq -e '.machines.printer | .state == "paused" and .file == "20mm_cube.gcode"' \
    "$work/status3.json" >/dev/null ||
    fail "/api/status when paused: $(jq -c .machines.printer "$work/status3.json")"
grep -q abc123 "$work/status.json" "$work/status2.json" "$work/status3.json" &&
    fail "/api/status holds the check code"
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "the daemon exited $rc on SIGTERM"
[ $fails -eq 0 ] && echo "web-ff: passed"
[ $fails -eq 0 ]
