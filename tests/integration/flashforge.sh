#!/bin/sh
# The FlashForge printer, end to end: the real daemon with a [FLASHFORGE]
# section only, on real sockets, for every model:
#  - the Finder captures replayed byte for byte (tests/integration/ff/finder-capture.txt);
#  - a client that behaves as the Finder API does (new connection per
#    command, login and command as two writes, one read of <= 1024 bytes),
#    parsing with the same `Field: ?(.+?)\r\n` patterns;
#  - the legacy discovery probe from a socket of the client's own;
#  - HTTP: each endpoint's JSON shape, a wrong serial/checkCode pair, an
#    upload, and a print started over HTTP seen over TCP;
#  - bad clients (over-long line, junk, a non-reader, a flood);
#  - SIGHUP: a broken config is rejected and the printer keeps serving; a
#    good one is applied;
#  - the bounds: pipelined HTTP requests, odd and empty datagrams, a
#    flood of half-sent HTTP requests; the command port keeps answering
#    and SIGTERM still stops the daemon;
#  - M610 on the Adventurer 3: the name survives a restart (M115 and
#    discovery), until the configured name is edited.
# The daemon's readiness comes from its sd_notify messages (notify_probe),
# never from a sleep.
#
# usage: flashforge.sh DAEMON FF_CLIENT NOTIFY_PROBE TESTS_DIR WORK_DIR
set -eu
daemon=$1 client=$2 probe=$3 tests=$4 work=$5

rm -rf "$work"
mkdir -p "$work"
pid= probe_pid=
cleanup() {
	# Only after a failure: a wedged daemon ignores SIGTERM.
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	[ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null
	return 0
}
trap cleanup EXIT
fail() {
	echo "flashforge: FAIL: $*" >&2
	[ -f "$work/daemon.log" ] && tail -n 20 "$work/daemon.log" >&2
	exit 1
}

# Below the ephemeral range, so the kernel never hands them to another
# test's client; spread by pid so parallel runs rarely meet.
base=$((12000 + ($$ % 2000) * 8))
tcp=$base http=$((base + 1)) disco=$((base + 2)) mcast=$((base + 3))
host=127.0.0.1

# Starts the probe; the daemon's messages then arrive on fd 3, a line each.
start_probe() {
	rm -f "$work/probe.fifo"
	mkfifo "$work/probe.fifo"
	"$probe" "$work/notify.sock" >"$work/probe.fifo" &
	probe_pid=$!
	exec 3<"$work/probe.fifo"
	read -r line <&3 && [ "$line" = LISTENING ] || fail "probe"
}

# Reads messages until one matches the pattern (a guard ends a hang).
await_notify() {
	while read -r line <&3; do
		echo "$line" >>"$work/notify.log"
		case $line in $1) return 0 ;; esac
	done
	fail "the daemon never said '$1'"
}

write_config() {	# model name
	cat >"$work/ff.cfg" <<-EOF
	[FLASHFORGE]
	model: $1
	name: $2
	serial: ${SERIAL}
	check_code: ${CHECK}
	bind: $host
	tcp_port: $tcp
	http_port: $http
	discovery_port: $disco
	multicast_port: $mcast
	camera_port: $((base + 4))
	EOF
}

start_daemon() {
	start_probe
	NOTIFY_SOCKET=$work/notify.sock "$daemon" -f -c "$work/ff.cfg" \
	    >>"$work/daemon.log" 2>&1 &
	pid=$!
	await_notify 'READY=1*'
}

stop_daemon() {
	kill -TERM "$pid"
	wait "$pid" || fail "exit status $? on SIGTERM"
	pid=
	await_notify 'STOPPING=1*'
	exec 3<&-
	kill "$probe_pid" 2>/dev/null || true
	wait "$probe_pid" 2>/dev/null || true
	probe_pid=
}

# The Finder API's parse, `Field: ?(.+?)\r\n` over one read; grep splits
# at \n, so the \r must end the line.
field() {	# file field
	grep -aoP "$2: ?\K.+?(?=\r$)" "$1" | head -n 1
}

expect() {	# what got want
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# ---- the Finder, byte for byte ----
SERIAL=62B08883 CHECK=c0ffee42
write_config finder "My Finder"
start_daemon
"$client" replay $host $tcp "$tests/integration/ff/finder-capture.txt" ||
    fail "the Finder captures differ"
echo "flashforge: finder captures replayed byte for byte"
"$client" abuse $host $tcp || fail "a bad client hurt the printer"
echo "flashforge: bad clients survived"

# ---- bind 127.0.0.1 is loopback's one address, not every interface ----
# All of 127/8 reaches loopback, so 127.0.0.2 stands in for a LAN
# address: a listener bound to every interface would accept there.
for p in $tcp $http $((base + 4)); do
	if curl -s -m 5 -o /dev/null "http://127.0.0.2:$p/"; [ $? -ne 7 ]; then
		fail "port $p answers on 127.0.0.2 with bind $host"
	fi
done
echo "flashforge: listeners bound to $host only"

# ---- SIGHUP: broken config rejected, good one applied ----
cp "$work/ff.cfg" "$work/good.cfg"
echo "tcp_port: banana" >>"$work/ff.cfg"
kill -HUP "$pid"
await_notify 'READY=1|STATUS=reload rejected*'
grep -q "ff.cfg:[0-9]*: tcp_port: 'banana' is not a port number" \
    "$work/daemon.log" || fail "no file:line for the broken config"
"$client" once $host $tcp M115 >"$work/hup1.out"
expect "name after a rejected reload" "$(field "$work/hup1.out" \
    'Machine Name')" "My Finder"
write_config finder "Renamed Finder"
kill -HUP "$pid"
await_notify 'RELOADING=1*'
await_notify 'READY=1*'
"$client" once $host $tcp M115 >"$work/hup2.out"
expect "name after a reload" "$(field "$work/hup2.out" 'Machine Name')" \
    "Renamed Finder"
echo "flashforge: SIGHUP rejects a bad config, applies a good one"
stop_daemon

# ---- every model, as the Finder API and discovery see it ----
SERIAL=SNMOMC9900728 CHECK=abc123
for model in finder adventurer3 adventurer4 adventurer5m adventurer5m-pro; do
	name="Emu $model"
	write_config $model "$name"
	start_daemon
	for c in M115 M105 M27 M119 M114; do
		"$client" once $host $tcp $c >"$work/$model.$c" ||
		    fail "$model $c: no reply"
		# The one read holds both replies, each whole.
		grep -aq "^CMD M601 Received\." "$work/$model.$c" ||
		    fail "$model $c: no login reply"
		grep -aq "CMD $c Received\." "$work/$model.$c" ||
		    fail "$model $c: no reply in the same read"
	done
	m=$work/$model
	case $model in
	finder) type="Flashforge Finder" ;;
	adventurer3) type="Flashforge Adventurer 3" ;;
	adventurer4) type="Flashforge Adventurer 4" ;;
	adventurer5m) type="Flashforge Adventurer 5M" ;;
	adventurer5m-pro) type="Flashforge Adventurer 5M Pro" ;;
	esac
	got=$(field $m.M115 'Machine Type')
	case $got in "$type"*) ;; *) fail "$model: Machine Type '$got'" ;; esac
	expect "$model Machine Name" "$(field $m.M115 'Machine Name')" "$name"
	expect "$model SN" "$(field $m.M115 SN)" "$SERIAL"
	[ -n "$(field $m.M115 Firmware)" ] || fail "$model: no Firmware"
	expect "$model Tool Count" "$(field $m.M115 'Tool Count')" 1
	expect "$model MachineStatus" "$(field $m.M119 MachineStatus)" READY
	expect "$model MoveMode" "$(field $m.M119 MoveMode)" READY
	[ -n "$(field $m.M119 Status)" ] || fail "$model: no Status"
	[ -n "$(field $m.M119 Endstop)" ] || fail "$model: no Endstop"
	grep -aqP 'SD printing byte \d+/\d+\r$' $m.M27 || fail "$model: M27"
	grep -aqP 'T0:\s*[\d.]+\s*/\s*[\d.]+ ' $m.M105 || fail "$model: M105"
	grep -aqP 'X:[-\d.]+ Y:[-\d.]+ Z:[-\d.]+' $m.M114 || fail "$model: M114"

	"$client" disco $host $disco >"$m.disco" || fail "$model: discovery"
	kv() { sed -n "s/^$1=//p" "$m.disco"; }
	expect "$model discovery name" "$(kv name)" "$name"
	expect "$model discovery port" "$(kv port)" "$tcp"
	case $model in
	adventurer5m*)
		expect "$model discovery length" "$(kv len)" 276
		expect "$model discovery serial" "$(kv serial)" "$SERIAL"
		expect "$model product" "$(kv product)" 0x5a02 ;;
	*)
		expect "$model discovery length" "$(kv len)" 140
		# No HTTP API before the 5M: nothing listens on its port.
		rc=0
		curl -s --max-time 20 -o /dev/null -X POST \
		    "http://$host:$http/detail" || rc=$?
		expect "$model HTTP port (curl exit status)" $rc 7 ;;
	esac
	# The probe newer clients send to the multicast port, answered alike.
	"$client" disco $host $mcast >"$m.mdisco" || fail "$model: multicast"
	cmp -s "$m.disco" "$m.mdisco" || fail "$model: replies differ by port"
	echo "flashforge: $model: Finder API fields and discovery ok"
	[ $model = adventurer5m-pro ] || stop_daemon
done

# ---- HTTP on the 5M Pro ----
url=http://$host:$http
auth="\"serialNumber\":\"$SERIAL\",\"checkCode\":\"$CHECK\""
post() {	# path json
	curl -sS --max-time 20 -X POST -H 'Content-Type: application/json' \
	    -d "$2" "$url$1"
}
jqt() {		# what json filter
	echo "$2" | jq -e "$3" >/dev/null || fail "$1: $2"
}
r=$(post /detail "{\"serialNumber\":\"$SERIAL\",\"checkCode\":\"wrong\"}")
jqt "wrong pair" "$r" '.code == 1001'
r=$(post /detail "{}")
jqt "no pair" "$r" '.code == 1001'
r=$(post /product "{$auth}")
jqt "/product" "$r" '.code == 0 and (.product | has("lightCtrlState") and
    has("nozzleTempCtrlState") and has("platformTempCtrlState"))'
r=$(post /detail "{$auth}")
jqt "/detail" "$r" '.code == 0 and .detail.status == "ready" and
    .detail.name == "Emu adventurer5m-pro" and
    (.detail | has("printProgress") and has("rightTemp") and
    has("platTargetTemp") and has("firmwareVersion") and has("measure"))'
printf 'G28\nG1 X10 Y10\n' >"$work/cube.gcode"
size=$(wc -c <"$work/cube.gcode")
r=$(curl -sS --max-time 20 -X POST -H "serialNumber: $SERIAL" \
    -H "checkCode: $CHECK" -H "fileSize: $size" -H "printNow: false" \
    -F "gcodeFile=@$work/cube.gcode" "$url/uploadGcode")
jqt "/uploadGcode" "$r" '.code == 0'
r=$(curl -sS --max-time 20 -X POST -H "serialNumber: $SERIAL" \
    -H "checkCode: nope" -F "gcodeFile=@$work/cube.gcode" "$url/uploadGcode")
jqt "/uploadGcode, wrong pair" "$r" '.code == 1001'
r=$(post /gcodeList "{$auth}")
jqt "/gcodeList" "$r" '.code == 0 and (.gcodeList | index("cube.gcode"))'
r=$(post /printGcode "{$auth,\"fileName\":\"cube.gcode\",\"levelingBeforePrint\":false}")
jqt "/printGcode" "$r" '.code == 0'
# The print started over HTTP, as TCP and /detail see it.
"$client" once $host $tcp M119 >"$work/print.M119"
expect "M119 while printing" "$(field "$work/print.M119" MachineStatus)" \
    BUILDING_FROM_SD
expect "CurrentFile" "$(field "$work/print.M119" CurrentFile)" cube.gcode
r=$(post /detail "{$auth}")
jqt "/detail while printing" "$r" '.detail.status == "printing" and
    .detail.printFileName == "cube.gcode"'
r=$(post /control "{$auth,\"payload\":{\"cmd\":\"jobCtl_cmd\",\"args\":{\"action\":\"pause\"}}}")
jqt "pause" "$r" '.code == 0'
"$client" once $host $tcp M119 >"$work/pause.M119"
expect "M119 paused" "$(field "$work/pause.M119" MachineStatus)" PAUSED
r=$(post /control "{$auth,\"payload\":{\"cmd\":\"jobCtl_cmd\",\"args\":{\"action\":\"cancel\"}}}")
jqt "cancel" "$r" '.code == 0'
"$client" once $host $tcp M119 >"$work/cancel.M119"
expect "M119 cancelled" "$(field "$work/cancel.M119" MachineStatus)" READY
r=$(post /control "{$auth,\"payload\":{\"cmd\":\"lightControl_cmd\",\"args\":{\"status\":\"close\"}}}")
jqt "lights" "$r" '.code == 0'
r=$(post /detail "{$auth}")
jqt "/detail lights" "$r" '.detail.lightStatus == "close"'
r=$(post /nosuch "{$auth}")
jqt "unknown path" "$r" '.code != 0'
head -c 70000 /dev/zero | tr '\0' x >"$work/big.json"
r=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -X POST \
    --data-binary @"$work/big.json" "$url/detail")
expect "a body over 64 KiB" "$r" 413
echo "flashforge: HTTP endpoints, auth, upload, print seen over TCP"

# ---- the bounds (issue 9) ----
r=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' -X POST \
    -H 'Transfer-Encoding: chunked' --data-binary "{$auth}" "$url/detail") ||
    true	# curl's exit status: the code (000) says it
expect "a chunked POST" "$r" 411
long=$(head -c 300 /dev/zero | tr '\0' n).gcode
r=$(curl -sS --max-time 20 -X POST -H "serialNumber: $SERIAL" \
    -H "checkCode: $CHECK" -F "gcodeFile=@$work/cube.gcode;filename=$long" \
    "$url/uploadGcode") || true
jqt "/uploadGcode, a 306-byte name" "$r" '.code != 0'
grep -q "upload refused: file name" "$work/daemon.log" ||
    fail "no log line for a long upload name"
"$client" pipeline $host $http $tcp || fail "pipelined HTTP requests"
"$client" udpflood $host $disco >/dev/null || fail "odd datagrams"
"$client" httpflood $host $http $tcp || fail "an HTTP flood"
grep -q "HTTP clients connected; closing the quietest" "$work/daemon.log" ||
    fail "no log line for the HTTP flood"
echo "flashforge: pipelining, odd datagrams, an HTTP flood: still serving"
stop_daemon

# ---- M610: a new name survives a restart (the state file) ----
SERIAL=SNRENAME0001 CHECK=abc123
write_config adventurer3 "Before Rename"
start_daemon
"$client" once $host $tcp "M610 After Rename" >"$work/m610.out"
grep -aq "CMD M610 Received" "$work/m610.out" || fail "M610: no reply"
stop_daemon
[ -f "$work/flashforge.state" ] || fail "M610: no state file"
start_daemon
"$client" once $host $tcp M115 >"$work/m610.M115"
expect "name after M610 and a restart" "$(field "$work/m610.M115" \
    'Machine Name')" "After Rename"
"$client" disco $host $disco >"$work/m610.disco" || fail "M610: discovery"
expect "discovery name after M610 and a restart" \
    "$(sed -n 's/^name=//p' "$work/m610.disco")" "After Rename"
stop_daemon
# A name edited in the configuration wins over the kept one.
write_config adventurer3 "Configured Again"
start_daemon
"$client" once $host $tcp M115 >"$work/m610b.M115"
expect "configured name after an edit" "$(field "$work/m610b.M115" \
    'Machine Name')" "Configured Again"
stop_daemon
echo "flashforge: M610's name kept across a restart"

# Nothing secret in the log: the check code never appears.
if grep -q "$CHECK" "$work/daemon.log"; then fail "check_code in the log"; fi
echo "flashforge: ok"
