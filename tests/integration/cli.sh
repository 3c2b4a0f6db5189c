#!/bin/sh
# cli.sh BINARY SOURCE_DIR: the real gf-machine-emulator's command line:
# --help, --version, --check-config on good and bad files, exit codes, and
# that the password never shows.  None of these reach the network.
set -u

bin=${1:?usage: cli.sh BINARY SOURCE_DIR}
src=${2:?usage: cli.sh BINARY SOURCE_DIR}
pw=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
work=$(mktemp -d "${TMPDIR:-/tmp}/cli.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
unset CREDENTIALS_DIRECTORY
failed=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# run NAME WANT_STATUS ARGS...: runs the binary in $work, output in
# $work/out and $work/err.
run() {
	name=$1 want=$2
	shift 2
	(cd "$work" && "$bin" "$@") >"$work/out" 2>"$work/err" </dev/null
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name: exit $got, expected $want"
		sed 's/^/  stderr: /' "$work/err" >&2
	fi
}

# has NAME FILE TEXT / hasnt NAME FILE TEXT: fixed-string checks.
has() {
	grep -qF -- "$3" "$work/$2" || fail "$1: '$3' not in $2"
}
hasnt() {
	! grep -qF -- "$3" "$work/$2" || fail "$1: '$3' in $2"
}

good() {
	printf '[MACHINE]\nserial: S12345678\npassword: %s\n' "$pw"
}

# --- help, version, usage errors ---
run help 0 --help
has help out "usage: gf-machine-emulator"
has help out "--check-config"
has help out "--shard I/N"
has help out "--print-shard"
run help-short 0 -h
has help-short out "usage:"
run version 0 --version
grep -qE '^gf-machine-emulator [0-9]+\.[0-9]+' "$work/out" ||
    fail "version: got '$(cat "$work/out")'"
run version-short 0 -V
has version-short out "gf-machine-emulator "
run bad-option 2 --no-such-option
has bad-option err "usage:"
run extra-argument 2 -n stray
has extra-argument err "unexpected argument 'stray'"
run missing-argument 2 -c

# --- --check-config on a good file ---
good >"$work/gf.cfg"
chmod 600 "$work/gf.cfg"
run check-good 0 --check-config -c gf.cfg
has check-good out "[MACHINE]"
has check-good out "serial = 12345678"
has check-good out "password = ********"
has check-good out "server_url = https://app.glowforge.com"
has check-good out "base_dir = $work"
hasnt check-good out "$pw"
hasnt check-good err "$pw"
hasnt check-good err "WARNING"

# The default file is ./gf-machine-emulator.cfg.
cp "$work/gf.cfg" "$work/gf-machine-emulator.cfg"
run check-default 0 -n
has check-default out "serial = 12345678"
rm "$work/gf-machine-emulator.cfg"
run check-default-missing 2 -n
has check-default-missing err "gf-machine-emulator.cfg: No such file"

# A password from a file, or a systemd credential, is masked too.
printf '%s\n' "$pw" >"$work/pw"
chmod 600 "$work/pw"
printf '[MACHINE]\nserial = 7\npassword_file = pw\n' >"$work/pwf.cfg"
run check-password-file 0 -n -c pwf.cfg
has check-password-file out "password = ********"
has check-password-file out "password_file = $work/pw"
hasnt check-password-file out "$pw"
mkdir "$work/creds"
cp "$work/pw" "$work/creds/password"
printf '[MACHINE]\nserial = 7\n' >"$work/cred.cfg"
export CREDENTIALS_DIRECTORY="$work/creds"
run check-credential 0 -n -c cred.cfg
unset CREDENTIALS_DIRECTORY
has check-credential out "password = ********"
hasnt check-credential out "$pw"

# Warnings do not fail a check; a readable file with the password warns.
{ good; printf '[EMULATOR]\nfrobnicate = 1\n'; } >"$work/warn.cfg"
chmod 644 "$work/warn.cfg"
run check-warnings 0 --check-config --config warn.cfg
has check-warnings err "warn.cfg:5: unknown key 'frobnicate' in [EMULATOR]"
has check-warnings err "warn.cfg:3: this file holds the password but is readable"
hasnt check-warnings err "$pw"

# --- --check-config on bad files: every problem, file:line, exit 2 ---
{
	printf '[MACHINE]\nserial: 12x\npassword: zz-not-a-password\n'
	printf '[EMULATOR]\nbutton_press_delay = -3\nprotocol_profile = 3\n'
	printf 'bypass_homing = perhaps\n[SERVICE]\nserver_url = ftp://x\n'
	printf 'status_service_url = wss://s/%%(nope)s\n'
} >"$work/bad.cfg"
chmod 600 "$work/bad.cfg"
run check-bad 2 -n -c bad.cfg
has check-bad err "bad.cfg:2: serial must be decimal digits"
has check-bad err "bad.cfg:3: password must be 64 hexadecimal characters"
has check-bad err "bad.cfg:5: button_press_delay must be between 0 and 3600"
has check-bad err "bad.cfg:6: protocol_profile '3' is not one of 2.6, 1.x"
has check-bad err "bad.cfg:7: bypass_homing: 'perhaps' is not a boolean"
has check-bad err "bad.cfg:9: server_url 'ftp://x' must be"
has check-bad err "bad.cfg:10: '%(nope)s' in the value of 'status_service_url'"
hasnt check-bad err "zz-not-a-password"
hasnt check-bad out "serial"

# Values are echoed escaped: no control byte reaches the terminal.
{ good; printf '[EMULATOR]\nprotocol_profile = 3\033[2J\n'; } >"$work/esc.cfg"
chmod 600 "$work/esc.cfg"
run check-escaped 2 -n -c esc.cfg
has check-escaped err "esc.cfg:5: protocol_profile '3\\x1b[2J' is not one of"
! grep -q "$(printf '\033')" "$work/err" || fail "check-escaped: ESC in stderr"

printf '[MACHINE]\nserial: 1\n' >"$work/nopw.cfg"
run check-no-password 2 -n -c nopw.cfg
has check-no-password err "nopw.cfg:1: no password"

printf 'just some text\n' >"$work/syntax.cfg"
run check-syntax 2 -n -c syntax.cfg
has check-syntax err "syntax.cfg:1: expected 'key = value'"

run check-missing 2 -n -c "$work/nope.cfg"
has check-missing err "nope.cfg: No such file or directory"

# A bad config stops the daemon too, before it goes anywhere.
run daemon-bad-config 2 -f -c bad.cfg
has daemon-bad-config err "bad.cfg:2: serial"

# --- a FIFO where a file is wanted: refused at once, never a hang ---
# open(2) on a FIFO blocks until a writer comes; the old code did that for
# the config and password_file, with --check-config, and on SIGHUP in the
# one thread that takes signals.  timeout(1) turns a hang into a failure.
mkfifo "$work/fifo"
trun() {	# like run, under a 10 s guard
	name=$1 want=$2
	shift 2
	(cd "$work" && timeout 10 "$bin" "$@") >"$work/out" 2>"$work/err" \
	    </dev/null
	got=$?
	[ "$got" -eq "$want" ] || fail "$name: exit $got, expected $want"
}
trun fifo-config 2 -n -c fifo
has fifo-config err "fifo: not a regular file"
printf '[MACHINE]\nserial = 7\npassword_file = fifo\n' >"$work/fifopw.cfg"
trun fifo-password 2 -n -c fifopw.cfg
has fifo-password err "fifopw.cfg:3: password_file '$work/fifo': not a regular file"
{ good; printf '[EMULATOR]\nsequences_file = fifo\n'; } >"$work/fifoseq.cfg"
chmod 600 "$work/fifoseq.cfg"
trun fifo-sequences 2 -n -c fifoseq.cfg
has fifo-sequences err "fifoseq.cfg:5: sequences_file '$work/fifo': not a regular file"

# await FILE REGEX: until a line of FILE matches.  tail -F follows the
# file as it grows (inotify), no polling; its 30 s are a guard against a
# daemon that never says it, not a timing (a sanitizer's start is slow).
await() {
	rm -f "$work/await.fifo"
	mkfifo "$work/await.fifo" || return 1
	timeout 30 tail -n +1 -F "$1" >"$work/await.fifo" 2>/dev/null &
	ap=$!
	grep -q -m1 -E -- "$2" <"$work/await.fifo"
	ar=$?
	kill "$ap" 2>/dev/null
	wait "$ap" 2>/dev/null
	rm -f "$work/await.fifo"
	return $ar
}
# SIGHUP onto a config whose password_file is a FIFO: rejected with
# file:line, the daemon keeps running and still stops on SIGTERM.
{
	good
	printf '[SERVICE]\nserver_url = http://127.0.0.1:9\n'
	printf 'status_service_url = ws://127.0.0.1:9\n'
} >"$work/hup.cfg"
chmod 600 "$work/hup.cfg"
(cd "$work" && exec "$bin" -f -c hup.cfg) >"$work/hup.out" 2>"$work/hup.err" \
    </dev/null &
dpid=$!
if await "$work/hup.err" "glowforge: profile"; then
	sed 's/^password: .*/password_file = fifo/' "$work/hup.cfg" \
	    >"$work/hup.new" && mv "$work/hup.new" "$work/hup.cfg"
	kill -HUP "$dpid"
	await "$work/hup.err" "hup.cfg rejected" ||
	    fail "sighup-fifo: no rejection logged"
	has sighup-fifo hup.err "hup.cfg:3: password_file '$work/fifo': not a regular file"
else
	fail "sighup-fifo: the daemon did not start"
fi
kill -TERM "$dpid" 2>/dev/null
# A guard, not a synchronisation: a daemon stuck in open() ignores TERM.
# Its fds go to /dev/null: a sleep left behind must not hold ctest's pipe.
(sleep 10; kill -KILL "$dpid") >/dev/null 2>&1 &
guard=$!
wait "$dpid"
got=$?
kill "$guard" 2>/dev/null
[ "$got" -eq 0 ] || fail "sighup-fifo: exit $got on SIGTERM after the reload"

# --- [FLEET] and shards: --shard I/N, --shards N + $JOB_COMPLETION_INDEX ---
unset JOB_COMPLETION_INDEX
printf '%s\n' "$pw" >"$work/fleet.pw"
chmod 600 "$work/fleet.pw"
printf '[FLEET]\ncount = 10000\nserial_first = S24681357\npassword_file = fleet.pw\nconnect_rate = 400\n' \
    >"$work/fleet.cfg"
run fleet-check 0 -n -c fleet.cfg --shard 1/4
has fleet-check out "[FLEET]"
has fleet-check out "count = 10000"
has fleet-check out "# serial_first: (set, not shown)"
has fleet-check out "keep_jobs = False"
has fleet-check out "# shard 1/4: machines 2500 to 4999 (2500) of 10000, 100 sign-ins/s"
hasnt fleet-check out "24681357"
hasnt fleet-check out "$pw"
hasnt fleet-check err "$pw"
run fleet-print-shard 0 --check-config --print-shard -c fleet.cfg --shard 3/7
[ "$(cat "$work/out")" = "4285 1429 10000" ] ||
    fail "fleet-print-shard: got '$(cat "$work/out")'"
run fleet-whole 0 --print-shard -c fleet.cfg
[ "$(cat "$work/out")" = "0 10000 10000" ] ||
    fail "fleet-whole: got '$(cat "$work/out")'"
export JOB_COMPLETION_INDEX=3
run fleet-job-index 0 --print-shard -c fleet.cfg --shards 4
[ "$(cat "$work/out")" = "7500 2500 10000" ] ||
    fail "fleet-job-index: got '$(cat "$work/out")'"
# Without --shards the variable means nothing: the whole fleet.
run fleet-job-index-alone 0 --print-shard -c fleet.cfg
[ "$(cat "$work/out")" = "0 10000 10000" ] ||
    fail "fleet-job-index-alone: got '$(cat "$work/out")'"
JOB_COMPLETION_INDEX=4
run fleet-job-index-high 2 --print-shard -c fleet.cfg --shards 4
has fleet-job-index-high err "JOB_COMPLETION_INDEX '4': must be below --shards"
JOB_COMPLETION_INDEX=' 1'
run fleet-job-index-space 2 --print-shard -c fleet.cfg --shards 4
has fleet-job-index-space err "JOB_COMPLETION_INDEX ' 1': not a whole number"
JOB_COMPLETION_INDEX=$(printf '1\033[2J')
run fleet-job-index-escaped 2 --print-shard -c fleet.cfg --shards 4
has fleet-job-index-escaped err "JOB_COMPLETION_INDEX '1\\x1b[2J'"
! grep -q "$(printf '\033')" "$work/err" ||
    fail "fleet-job-index-escaped: ESC in stderr"
unset JOB_COMPLETION_INDEX
run fleet-shards-no-index 2 --print-shard -c fleet.cfg --shards 4
has fleet-shards-no-index err "--shards needs \$JOB_COMPLETION_INDEX"
# Bad shard arguments: exit 2 before the config is even read.
for bad in 4/4 5/4 1 /4 1/ -1/4 1/-4 +1/4 1/0 0/0 1/4x a/4 '1 /4' 1/65537 \
    99999999999/4; do
	run "shard-bad-$bad" 2 --print-shard -c nope.cfg --shard "$bad"
	has "shard-bad-$bad" err "--shard '$bad'"
	hasnt "shard-bad-$bad" err "nope.cfg"
	[ -s "$work/out" ] && fail "shard-bad-$bad: printed '$(cat "$work/out")'"
done
for bad in 0 -1 x '' 65537; do
	run "shards-bad-$bad" 2 -n -c fleet.cfg --shards "$bad"
	has "shards-bad-$bad" err "--shards '$bad'"
done
run shard-and-shards 2 -n -c fleet.cfg --shard 0/2 --shards 2
has shard-and-shards err "--shard and --shards exclude each other"
# More shards than machines: the empty one is refused.
printf '[FLEET]\ncount = 2\nserial_first = 5\npassword_file = fleet.pw\n' \
    >"$work/two.cfg"
run shard-empty 2 --print-shard -c two.cfg --shard 0/3
has shard-empty err "shard 0/3 has no machines: the fleet has 2, so at most 2 shards"
run shard-empty-daemon 2 -f -c two.cfg --shard 0/3
has shard-empty-daemon err "has no machines"
# [MACHINE] alone is a fleet of one.
run machine-print-shard 0 --print-shard -c gf.cfg
[ "$(cat "$work/out")" = "0 1 1" ] ||
    fail "machine-print-shard: got '$(cat "$work/out")'"
run machine-two-shards 2 -n -c gf.cfg --shard 0/2
has machine-two-shards err "shard 0/2 has no machines: the fleet has 1"
# A machines_file with bad lines: each one as file:line, no secret.
{
	printf '# serial,password,hostname\n'
	printf 'S20000001,%s,lab-1\n' "$pw"
	printf '20000002,%s\n' "${pw%?}"
	printf '\n20000001,%s\n' "$pw"
	printf '20000003,%s,h,extra\n' "$pw"
} >"$work/m.csv"
chmod 600 "$work/m.csv"
printf '[FLEET]\nmachines_file = m.csv\n' >"$work/csv.cfg"
run csv-bad-lines 2 -n -c csv.cfg
has csv-bad-lines err "$work/m.csv:3: password must be 64 hexadecimal characters"
has csv-bad-lines err "$work/m.csv:5: duplicate serial (first on line 2)"
has csv-bad-lines err "$work/m.csv:6: too many fields"
hasnt csv-bad-lines err "$pw"
hasnt csv-bad-lines err "20000001"
hasnt csv-bad-lines out "[FLEET]"
printf '[FLEET]\ncount = 2\nserial_first = 5\nmachines_file = m.csv\n' \
    >"$work/both.cfg"
run count-and-csv 2 -n -c both.cfg
has count-and-csv err "both.cfg:4: count and machines_file exclude each other"
# FlashForge alone has no Glowforge to shard.
printf '[FLASHFORGE]\nenabled = yes\n' >"$work/ff.cfg"
run ff-shard 2 -n -c ff.cfg --shard 1/2
has ff-shard err "shards need [MACHINE] or [FLEET]"

# --- the shipped sample loads as it is ---
cp "$src/gf-machine-emulator.cfg.sample" "$work/sample.cfg"
chmod 600 "$work/sample.cfg"
run check-sample 0 -n -c sample.cfg
hasnt check-sample err "unknown"
has check-sample out "password = ********"
# Its [FLEET] section, uncommented and [MACHINE]'s login removed, too.
sed -e '/^serial:/d' -e '/^password:/d' \
    -e 's/^#\(\[FLEET\]\|count:\|serial_first:\|password_file:\)/\1/' \
    -e 's/^#\(connect_rate:\|keep_jobs:\)/\1/' \
    "$src/gf-machine-emulator.cfg.sample" >"$work/sample-fleet.cfg"
chmod 600 "$work/sample-fleet.cfg"
run check-sample-fleet 0 -n -c sample-fleet.cfg --shard 1/2
hasnt check-sample-fleet err "unknown"
has check-sample-fleet out "# machines in the fleet: 10000"
has check-sample-fleet out "# shard 1/2: machines 5000 to 9999 (5000) of 10000, 500 sign-ins/s, keeps no stepper files"

if [ "$failed" -ne 0 ]; then
	echo "$failed check(s) failed" >&2
	exit 1
fi
echo "all cli checks passed"
