# shellcheck shell=bash
# fleet-lib.sh: the start-up and shut-down shared by the fleet tests (one
# daemon running a [FLEET] against gf-cloud-sim in load mode).  Sourced,
# not run:  . "$(dirname "$0")/fleet-lib.sh"
#
# The script sets, before calling these: SIM and DAEMON (the binaries),
# N (machines) and FIRST (the first serial); GUARD (s) if it wants
# another hang guard than GFE_TERM_GUARD or 30.  The lib sets W (the
# work folder), SIM_PID, SIM_PORT, SIM_RC, D_PID, D_RC.
# Synchronisation: the sim's port through a fifo, processes' exits and
# log lines awaited; every timeout is a guard against a hang, not a sync.

# fleet_skip MSG: exit 77 (ctest's SKIP_RETURN_CODE) saying why.
fleet_skip() {
	echo "$FLEET_NAME: SKIP: $*" >&2
	exit 77
}

# fleet_need CMD...: SKIP unless every CMD is on the PATH.
fleet_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || fleet_skip "no $c"
	done
}

# fleet_need_fds K: SKIP unless the hard fd limit allows K files.
fleet_need_fds() {
	[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$1" ] ||
	    fleet_skip "ulimit -Hn below $1"
}

# fleet_init NAME [DIR]: the work folder W (a new temporary one, or DIR
# emptied and made), and a trap that ends the daemon and the sim on any
# exit and removes a temporary W unless KEEP is set.  FLEET_D_SIG and
# FLEET_SIM_SIG (KILL, TERM) say how cleanup ends each; a script may
# define fleet_on_exit for its own children (called first).
fleet_init() {
	FLEET_NAME=$1
	GUARD=${GUARD:-${GFE_TERM_GUARD:-30}}
	if [ -n "${2:-}" ]; then
		W=$2 FLEET_TMP=
		rm -rf "$W"
		mkdir -p "$W" || exit 1
	else
		W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
		FLEET_TMP=1
	fi
	SIM_PID= D_PID= SIM_PORT= SIM_RC= D_RC=
	trap fleet_cleanup EXIT
}

fleet_cleanup() {
	declare -F fleet_on_exit >/dev/null && fleet_on_exit
	[ -n "$D_PID" ] && kill -"${FLEET_D_SIG:-KILL}" "$D_PID" 2>/dev/null
	[ -n "$SIM_PID" ] &&
	    kill -"${FLEET_SIM_SIG:-TERM}" "$SIM_PID" 2>/dev/null
	wait 2>/dev/null
	[ -z "$FLEET_TMP" ] || [ -n "${KEEP:-}" ] || rm -rf "$W"
}

# fleet_fail MSG (also as fail MSG): say it, show the sim's summary and
# the tails of the sim's and the daemon's logs, exit 1.
fleet_fail() {
	local f
	echo "$FLEET_NAME: FAIL: $*" >&2
	[ -f "$W/summary.json" ] &&
	    { echo "--- summary" >&2; cat "$W/summary.json" >&2; }
	for f in sim.log:30 daemon.out:40 daemon.log:20; do
		[ -f "$W/${f%:*}" ] || continue
		echo "--- ${f%:*} (tail)" >&2
		tail -n "${f#*:}" "$W/${f%:*}" >&2
	done
	exit 1
}
fail() { fleet_fail "$@"; }

# fleet_password: a random password for every machine, in $W/pw (0600).
fleet_password() {
	( umask 077
	  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/pw" )
}

# fleet_profile_settings_lid: $W/profile.jsonl of settings and lid_image
# (a capture and a presigned upload), each with its exact events.
fleet_profile_settings_lid() {
	cat >"$W/profile.jsonl" <<'P'
{"send": {"action_type": "settings"}, "expect": "settings:completed", "events": ["settings:completed"]}
{"send": {"action_type": "lid_image", "endpoint": true, "settings": {"LCfl": 1}}, "expect": "lid_image:completed", "events": ["lid_image:starting", "lid_image:capture:starting", "lid_image:capture:completed", "lid_image:upload:starting", "lid_image:upload:completed", "lid_image:completed"]}
P
}

# fleet_sim_start ARGS...: the sim for N machines from FIRST with $W/pw,
# $W/profile.jsonl and $W/summary.json, plus ARGS (rate, duration...);
# SIM_PORT once it printed its port on the fifo (10 s guard).
fleet_sim_start() {
	mkfifo "$W/simport"
	"$SIM" --port 0 --print-port --machines "$N" --serial-first "$FIRST" \
	    --password-file "$W/pw" --load "$W/profile.jsonl" \
	    --summary-json "$W/summary.json" "$@" \
	    >"$W/simport" 2>"$W/sim.log" &
	SIM_PID=$!
	read -r -t 10 SIM_PORT <"$W/simport" || fail "the sim printed no port"
}

# fleet_sim_wait: SIM_RC once the sim ended (it ends when the load did).
fleet_sim_wait() {
	wait "$SIM_PID"
	SIM_RC=$?
	SIM_PID=
}

# fleet_loops_run SECONDS: the [FLEET] loops tests' run.  N machines on
# a daemon with loops = L (the script sets L), the sim sending settings
# and lid_image at 20 actions/s for SECONDS once all N signed in; returns
# once the sim has ended (SIM_RC), the daemon still up.
fleet_loops_run() {
	fleet_password
	fleet_profile_settings_lid
	fleet_sim_start --rate 20 --duration "$1" --grace 20 \
	    --start-after-signins "$N"
	fleet_config <<C
connect_rate = 200
loops = $L
keep_jobs = False
[EMULATOR]
motion_dl_dir: $W/motion
[LOGGING]
file: $W/daemon.log
C
	fleet_daemon_start
	fleet_sim_wait
}

# fleet_config: $W/gf.cfg, [SERVICE] at the sim and the [FLEET]'s count,
# serials and password, then stdin (the rest of [FLEET], other sections).
fleet_config() {
	{ cat <<C
[SERVICE]
server_url: http://127.0.0.1:$SIM_PORT
status_service_url: ws://127.0.0.1:$SIM_PORT
[FLEET]
count = $N
serial_first = $FIRST
password_file = $W/pw
C
	  cat; } >"$W/gf.cfg"
}

# fleet_daemon_start: the daemon on $W/gf.cfg in the foreground mode,
# stdout and stderr in $W/daemon.out; D_PID.
fleet_daemon_start() {
	"$DAEMON" -c "$W/gf.cfg" -f >"$W/daemon.out" 2>&1 &
	D_PID=$!
}

# fleet_await_nth FILE STRING K: 0 once FILE has K lines holding STRING;
# 1 when the daemon ended or GUARD s passed first.
fleet_await_nth() {
	local fd pid rc
	exec {fd}< <(exec timeout "$GUARD" tail -n +1 -F --pid="$D_PID" "$1" \
	    2>/dev/null)
	pid=$!
	# grep, not awk: mawk reads a pipe in blocks and would wait for more.
	[ "$(grep -m "$3" -F -- "$2" <&"$fd" | wc -l)" -ge "$3" ]
	rc=$?
	exec {fd}<&-
	kill "$pid" 2>/dev/null
	return $rc
}

# fleet_await_exit PID: 0 once PID ended, 1 after GUARD s.
fleet_await_exit() {
	timeout "$GUARD" tail --pid="$1" -f /dev/null
}

# fleet_stop_daemon: SIGTERM, its exit awaited (a hang is killed and
# fails after GUARD s); fails unless it exited 0; D_RC.
fleet_stop_daemon() {
	kill -TERM "$D_PID" 2>/dev/null
	fleet_await_exit "$D_PID" || { kill -KILL "$D_PID"
	    fail "the daemon did not exit within $GUARD s of SIGTERM"; }
	wait "$D_PID"
	D_RC=$?
	D_PID=
	[ "$D_RC" -eq 0 ] || fail "the daemon exited $D_RC after SIGTERM"
}

# fleet_no_reports [ERE]: fails on a sanitizer report (or a line matching
# ERE too) in the daemon's output or log.
fleet_no_reports() {
	local re="Sanitizer|runtime error:${1:+|$1}"
	if grep -q -E "$re" "$W/daemon.out" "$W/daemon.log" 2>/dev/null; then
		fail "$(grep -h -m3 -E "$re" "$W/daemon.out" "$W/daemon.log")"
	fi
}
