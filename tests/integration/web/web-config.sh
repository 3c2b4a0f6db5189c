#!/bin/sh
# web-config.sh: [WEB] in --check-config.  A non-loopback listen needs
# allow_remote = True, and is refused with file:line without it; a bad
# listen is refused; the default is loopback 9180.
#   web-config.sh DAEMON
set -u
daemon=${1:?usage: web-config.sh DAEMON}
[ -x "$daemon" ] || exit 77
dir=$(mktemp -d) || exit 2
trap 'rm -rf "$dir"' EXIT
fails=0
fail() {
	echo "web-config: FAIL: $*" >&2
	fails=$((fails + 1))
}
base() {
	printf '[MACHINE]\nserial = 12345678\npassword = %s\n\n[WEB]\n' "$(printf '%064d' 0)"
}
# NAME WANT_RC WANT_REGEX [WEB] LINES...
check() {
	name=$1 want=$2 re=$3
	shift 3
	{ base; for l in "$@"; do printf '%s\n' "$l"; done; } >"$dir/$name.cfg"
	chmod 600 "$dir/$name.cfg"
	"$daemon" --check-config -c "$dir/$name.cfg" >"$dir/$name.out" 2>&1
	rc=$?
	[ $rc -eq "$want" ] || fail "$name: exit $rc, not $want: $(cat "$dir/$name.out")"
	grep -q -E -- "$re" "$dir/$name.out" ||
	    fail "$name: no line matching \"$re\": $(cat "$dir/$name.out")"
}
check default 0 '^listen = 127\.0\.0\.1:9180$'
check loopback 0 '^listen = 127\.0\.0\.2:8000$' 'listen = 127.0.0.2:8000'
check remote 2 "$dir/remote.cfg:6: .*not a loopback address.*allow_remote" \
    'listen = 0.0.0.0:9180'
check remote-lan 2 "remote-lan.cfg:6: .*192\.168\.1\.5:9180 is not a loopback" \
    'listen = 192.168.1.5:9180'
check remote-allowed 0 '^allow_remote = True$' 'listen = 0.0.0.0:9180' \
    'allow_remote = True'
check no-port 2 "no-port.cfg:6: .*not IPv4:port" 'listen = 127.0.0.1'
check bad-port 2 "bad-port.cfg:6: .*not IPv4:port" 'listen = 127.0.0.1:70000'
check hostname 2 "hostname.cfg:6: .*not IPv4:port" 'listen = localhost:9180'
check off 0 '^enabled = False$' 'enabled = False' 'listen = 0.0.0.0:1'
[ $fails -eq 0 ] && echo "web-config: passed"
[ $fails -eq 0 ]
