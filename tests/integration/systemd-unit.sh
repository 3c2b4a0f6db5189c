#!/bin/sh
# A shipped unit, as configured by CMake, passes systemd-analyze verify
# without a single complaint (verify exits 0 on unknown keys, so any
# output fails too), and its hardening rates no worse than "OK".  A
# template (NAME@.service) is verified as an instance, NAME@fleet.service,
# and must name its config by the instance: -c .../%i.cfg.
#
# usage: systemd-unit.sh UNIT_FILE DAEMON_BINARY WORK_DIR
set -eu
unit=$1 daemon=$2 work=$3

command -v systemd-analyze >/dev/null 2>&1 || {
	echo "systemd-unit: no systemd-analyze: skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
name=$(basename "$unit")
file="$work/$name"
case $name in
*@.service) check="$work/${name%@.service}@fleet.service" ;;
*) check=$file ;;
esac
# verify checks that ExecStart exists: point it at the binary just built.
sed "s#^ExecStart=[^ ]*#ExecStart=$daemon#" "$unit" >"$file"
grep -q "^ExecStart=$daemon " "$file" ||
    { echo "systemd-unit: FAIL: no ExecStart line"; exit 1; }
out=$(systemd-analyze verify --man=no "$check" 2>&1) ||
    { echo "systemd-unit: FAIL: $out"; exit 1; }
if [ -n "$out" ]; then
	echo "systemd-unit: FAIL: systemd-analyze verify said:"
	echo "$out"
	exit 1
fi
for key in Type=notify WatchdogSec= Restart=on-failure StateDirectory= \
    DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes \
    RestrictAddressFamilies= SystemCallFilter=@system-service \
    ExecReload= LoadCredential= LimitNOFILE=; do
	grep -q "^#*$key" "$file" ||
	    { echo "systemd-unit: FAIL: no $key"; exit 1; }
done
# High enough for a fleet: 10,000 machines hold 20,000 descriptors or so.
nofile=$(sed -n 's/^LimitNOFILE=//p' "$file")
[ "$nofile" = infinity ] || [ "$nofile" -ge 65536 ] ||
    { echo "systemd-unit: FAIL: LimitNOFILE=$nofile"; exit 1; }
if [ "$check" != "$file" ]; then
	grep -q "^ExecStart=$daemon -c [^ ]*/%i\.cfg " "$file" ||
	    { echo "systemd-unit: FAIL: the template's config is not %i.cfg"
	    exit 1; }
	grep -q '^StateDirectory=gf-machine-emulator/%i$' "$file" ||
	    { echo "systemd-unit: FAIL: instances share a StateDirectory"
	    exit 1; }
fi
level=$(systemd-analyze security --offline=true "$check" 2>&1 |
    grep 'Overall exposure') ||
    { echo "systemd-unit: no offline security analysis here"; level=; }
case $level in
*MEDIUM*|*EXPOSED*|*UNSAFE*)
	echo "systemd-unit: FAIL: $level"; exit 1 ;;
esac
echo "systemd-unit: ok. $level"
