#!/bin/sh
# Every FlashForge model against a client that drives it as its real LAN
# clients do (ff_clients.c says what each does): TCP upload, file list,
# thumbnail and print on every model; HTTP temperatures, files and the
# MJPEG camera on the 5M and 5M Pro.  The real daemon, real sockets; its
# readiness from sd_notify (notify_probe), never a sleep.
#
# usage: flashforge-clients.sh DAEMON FF_CLIENTS NOTIFY_PROBE WORK_DIR
set -eu
daemon=$1 clients=$2 probe=$3 work=$4

rm -rf "$work"
mkdir -p "$work"
pid= probe_pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null
	return 0
}
trap cleanup EXIT
fail() {
	echo "flashforge-clients: FAIL: $*" >&2
	[ -f "$work/daemon.log" ] && tail -n 20 "$work/daemon.log" >&2
	exit 1
}

# Below the ephemeral range and above flashforge.sh's ports; spread by
# pid.  The bottom half of each block of 8: web-ff.sh takes the top.
base=$((28000 + ($$ % 500) * 8))
tcp=$base http=$((base + 1)) camera=$((base + 2))
host=127.0.0.1 serial=SNCLIENT0001 check=cafe1234

start_probe() {
	rm -f "$work/probe.fifo"
	mkfifo "$work/probe.fifo"
	"$probe" "$work/notify.sock" >"$work/probe.fifo" &
	probe_pid=$!
	exec 3<"$work/probe.fifo"
	read -r line <&3 && [ "$line" = LISTENING ] || fail "probe"
}

await_notify() {
	while read -r line <&3; do
		case $line in $1) return 0 ;; esac
	done
	fail "the daemon never said '$1'"
}

for model in finder adventurer3 adventurer4 adventurer5m adventurer5m-pro; do
	cat >"$work/ff.cfg" <<-EOC
	[FLASHFORGE]
	model: $model
	name: Client $model
	serial: $serial
	check_code: $check
	bind: $host
	tcp_port: $tcp
	http_port: $http
	discovery_port: 0
	multicast_port: 0
	camera_port: $camera
	EOC
	start_probe
	NOTIFY_SOCKET=$work/notify.sock "$daemon" -f -c "$work/ff.cfg" \
	    >>"$work/daemon.log" 2>&1 &
	pid=$!
	await_notify 'READY=1*'
	"$clients" $model $host $tcp $http $camera $serial $check ||
	    fail "$model"
	kill -TERM "$pid"
	wait "$pid" || fail "$model: exit status $? on SIGTERM"
	pid=
	exec 3<&-
	kill "$probe_pid" 2>/dev/null || true
	wait "$probe_pid" 2>/dev/null || true
	probe_pid=
done
if grep -q "$check" "$work/daemon.log"; then fail "check_code in the log"; fi
echo "flashforge-clients: ok"
