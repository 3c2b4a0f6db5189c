#!/bin/sh
# busy-check.sh: run by run-scenario.sh --web-check after
# tests/integration/scenarios/busy.jsonl: the motion sent while the print waited was
# refused (a "busy" log frame, no event); /api/status shows it "refused"
# with that line, not "received" for ever.
set -u
url=${GFE_WEB_URL:?} work=${GFE_WORK:?}
curl -sS --max-time 10 "$url/api/status" >"$work/status.json" || exit 1
jq -e '[.actions[] | select(.type == "motion")] | length == 1 and
    (.[0].state == "refused") and (.[0].events == []) and
    (.[0].refused | startswith("busy: motion "))' \
    "$work/status.json" >/dev/null || {
	echo "busy-check: FAIL: $(head -c 600 "$work/status.json")" >&2
	exit 1
}
echo "busy-check: passed"
