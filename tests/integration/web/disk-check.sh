#!/bin/sh
# disk-check.sh: run by run-scenario.sh --web-check after
# scenarios/unwritable-dir.jsonl (motion_dl_dir below a regular file):
# both jobs ran, neither was kept, and /metrics and /api/jobs say so.
set -u
url=${GFE_WEB_URL:?} work=${GFE_WORK:?}
curl -sS --max-time 10 "$url/metrics" >"$work/metrics.txt" || exit 1
curl -sS --max-time 10 "$url/api/jobs" >"$work/jobs.json" || exit 1
rc=0
for line in 'gfe_disk_errors_total 2' 'gfe_jobs_kept_total 0' \
    'gfe_actions_total{type="motion",result="completed"} 1' \
    'gfe_actions_total{type="print",result="completed"} 1'; do
	grep -q -x -F "$line" "$work/metrics.txt" || {
		echo "disk-check: /metrics lacks $line" >&2
		rc=1
	}
done
jq -e '.folder == false and (.jobs | length) == 0' "$work/jobs.json" \
    >/dev/null || { echo "disk-check: /api/jobs: $(cat "$work/jobs.json")" >&2; rc=1; }
exit $rc
