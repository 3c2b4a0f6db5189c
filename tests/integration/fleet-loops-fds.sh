#!/bin/bash
# fleet-loops-fds.sh: [FLEET] loops = L (4): no loop closes another's
# descriptor, through a reload and a SIGTERM.
#
#   fleet-loops-fds.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR
#
# The daemon runs under strace -f.  As fleet-loops.sh: N machines (100)
# against gf-cloud-sim in load mode; once the sim has ended, SIGHUP (every
# loop stopped and made again, while the machines sign in again and fail,
# each loop making sockets), then SIGTERM.  fd_reuse.py then reads the
# trace: no thread closed a number that another thread had made anew
# since its own close of it, and no loop's teardown (lws 4.1.6 frees its
# event pipe's number a loop iteration before it closes it again) ran
# while another loop worked.  SKIP without strace or ptrace.
# Synchronisation: the sim's end, log lines and the trace's last line are
# awaited; no sleeps.
set -u

SIM=${1:?usage: fleet-loops-fds.sh GF_CLOUD_SIM GF_MACHINE_EMULATOR}
REAL=${2:?usage}
N=${FLEET_LOOPS_N:-100}
L=${FLEET_LOOPS:-4}
FIRST=41100000
GUARD=${GFE_TERM_GUARD:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/fleet-lib.sh"
fleet_init fleet-loops-fds
fleet_need jq strace python3
strace -f -o /dev/null true 2>/dev/null || fleet_skip "strace cannot trace here"
DAEMON=$W/traced
cat >"$DAEMON" <<T
#!/bin/sh
# -D: the daemon keeps this pid, strace runs beside it.  LeakSanitizer
# cannot run under ptrace (fleet-loops checks leaks).
ASAN_OPTIONS=\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0
export ASAN_OPTIONS
exec strace -D -f -tt -o "$W/strace" -e trace=socket,socketpair,pipe2,\
open,openat,eventfd2,accept4,epoll_create1,signalfd4,dup,dup2,dup3,close \
    "$REAL" "\$@"
T
chmod +x "$DAEMON"
fleet_loops_run 2
[ "$SIM_RC" -eq 0 ] || fail "the sim exited $SIM_RC"
pid=$D_PID
kill -HUP "$D_PID"
fleet_await_nth "$W/daemon.log" "glowforge: $L loops" 2 ||
    fail "SIGHUP: the $L loops did not come back"
fleet_stop_daemon
fleet_no_reports
# strace writes the daemon's exit last.
timeout "$GUARD" tail -n +1 -F "$W/strace" 2>/dev/null |
    grep -q -m1 "^$pid .*+++ exited with" || fail "the trace did not end"
out=$(python3 "$HERE/fd_reuse.py" "$W/strace") ||
    fail "$(printf '%s\n' "$out" | head -5)"
echo "fleet-loops-fds: $N machines on $L loops, reload and SIGTERM:" \
    "${out##*fd_reuse: }"
exit 0
