#!/bin/sh
# The FlashForge's multicast discovery: with bind 0.0.0.0 the daemon joins
# 225.0.0.9 (IP_ADD_MEMBERSHIP) and answers a probe sent to the group.
# Loopback carries no multicast by default, so the test runs in a network
# namespace of its own (unshare -n, or -rn without root) where lo is made
# multicast and the group's route points at it; the host's network is not
# touched.  Exit 77 (ctest: skipped) when no namespace can be made.
#
# usage: flashforge-multicast.sh DAEMON FF_CLIENT NOTIFY_PROBE WORK_DIR
set -eu
daemon=$1 client=$2 probe=$3 work=$4

if [ "${GFE_IN_NETNS:-}" != 1 ]; then
	for how in -n -rn; do
		if unshare $how true 2>/dev/null; then
			GFE_IN_NETNS=1 exec unshare $how sh "$0" "$@"
		fi
	done
	echo "flashforge-multicast: SKIP: cannot make a network namespace" >&2
	exit 77
fi

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
	echo "flashforge-multicast: FAIL: $*" >&2
	[ -f "$work/daemon.log" ] && tail -n 20 "$work/daemon.log" >&2
	exit 1
}

ip link set lo up && ip link set lo multicast on &&
    ip route add 224.0.0.0/4 dev lo || {
	echo "flashforge-multicast: SKIP: cannot set up lo for multicast" >&2
	exit 77
}

# The namespace is ours alone: the ports are free.
cat >"$work/ff.cfg" <<-CFG
[FLASHFORGE]
model: adventurer5m
name: Group Printer
serial: SNMCAST01
check_code: 0badf00d
bind: 0.0.0.0
tcp_port: 8899
http_port: 8898
discovery_port: 48899
multicast_port: 19000
CFG

# Ready when the daemon says so on its notify socket (never a sleep).
mkfifo "$work/probe.fifo"
"$probe" "$work/notify.sock" >"$work/probe.fifo" &
probe_pid=$!
exec 3<"$work/probe.fifo"
read -r line <&3 && [ "$line" = LISTENING ] || fail "probe"
NOTIFY_SOCKET=$work/notify.sock "$daemon" -f -c "$work/ff.cfg" \
    >"$work/daemon.log" 2>&1 &
pid=$!
ready=0
while read -r line <&3; do
	case $line in READY=1*) ready=1; break ;; esac
done
[ $ready -eq 1 ] || fail "the daemon never said READY=1"
grep -q "joining 225.0.0.9" "$work/daemon.log" &&
    fail "the daemon could not join the group"

"$client" disco 225.0.0.9 19000 >"$work/mdisco" ||
    fail "no reply to a probe sent to 225.0.0.9:19000"
kv() { sed -n "s/^$1=//p" "$work/mdisco"; }
[ "$(kv len)" = 276 ] || fail "reply of $(kv len) bytes, not 276"
[ "$(kv name)" = "Group Printer" ] || fail "name '$(kv name)'"
[ "$(kv serial)" = SNMCAST01 ] || fail "serial '$(kv serial)'"
[ "$(kv port)" = 8899 ] || fail "port '$(kv port)'"
echo "flashforge-multicast: a probe to 225.0.0.9:19000 is answered"

kill -TERM "$pid"
wait "$pid" || fail "exit status $? on SIGTERM"
pid=
