#!/bin/sh
# browser-check.sh: run by run-scenario.sh --web-check (browser-test.sh)
# once the scenario passed.  Headless Chromium opened the page before the
# first action was sent (cdp.py, started by browser-test.sh); this says
# what it must now show, live: every action of /api/status with its
# terminal event, one gallery entry per kept job whose picture decodes;
# then cdp.py keeps a job while the page is open.  cdp.py's verdict is
# this script's.  Screenshots go to $GFE_WORK/browser/.
set -u
url=${GFE_WEB_URL:?} work=${GFE_WORK:?}
out=$work/browser
# What the page must show: the actions of the daemon's own account, the
# jobs the store kept (the page's listing may lag them by a second).
curl -sS --max-time 10 "$url/api/status" >"$out/status.json" || exit 1
for f in "$work"/motion/*.puls; do
	[ -e "$f" ] && basename "$f" .puls
done | jq -R . | jq -s . >"$out/kept.json"
jq -n --slurpfile s "$out/status.json" --slurpfile k "$out/kept.json" \
    '{actions: ($s[0].actions | map({key: (.id | tostring),
    value: (.result // .state)}) | from_entries),
    jobs: $k[0], printer: $s[0].machines.printer}' >"$out/expect.json" ||
    exit 1
# The scenario's six actions and three kept jobs: an empty page would
# match an empty expectation.
jq -e '(.actions | length) == 6 and (.jobs | length) == 3 and
    .printer.state == "ready"' \
    "$out/expect.json" >/dev/null || {
	echo "browser-check: the daemon reports $(cat "$out/expect.json")" >&2
	exit 1
}
# cdp.py waits on the FIFOs (at most 240 s); each open blocks until it is
# there.
timeout 60 sh -c 'cat "$1" >"$2"' sh "$out/expect.json" \
    "$out/expect.fifo" || { echo "browser-check: cdp.py not there" >&2; exit 1; }
verdict=$(timeout 120 cat "$out/result.fifo")
echo "browser-check: cdp.py says: $verdict"
# The job cdp.py kept is not the daemon's: run-scenario.sh counts those.
rm -f "$work"/motion/2026-01-02_000000_motion_777.*
[ "$verdict" = passed ]
