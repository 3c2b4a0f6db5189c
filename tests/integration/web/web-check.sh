#!/bin/bash
# web-check.sh: run by run-scenario.sh --web-check after tests/integration/web/web.jsonl
# played, while the daemon still runs.  Checks /metrics against what the
# scenario did (and with promtool), /api/status and /api/jobs (jq), the
# job files, that no client path reaches the filesystem, that the server
# is read-only, bounded, and shows no secret.
# Environment: GFE_WEB_URL, GFE_WORK (run-scenario.sh's DIR).
set -u
url=${GFE_WEB_URL:?} work=${GFE_WORK:?}
out=$work/web
mkdir -p "$out"
fails=0
fail() {
	echo "web-check: FAIL: $*" >&2
	fails=$((fails + 1))
}
get() {	# PATH OUTFILE: prints the status
	curl -sS --path-as-is --max-time 10 -o "$2" -w '%{http_code}' "$url$1"
}

# --- the pictures are drawn off the loop: await the stream's "jobs"
# events until /api/jobs has every picture (at most 30 s) ---
ready() {
	get /api/jobs "$out/jobs.json" >/dev/null &&
	    jq -e '(.jobs | length) == 3 and
	    all(.jobs[]; .picture == "ready")' "$out/jobs.json" >/dev/null
}
if ! ready; then
	exec {ev}< <(exec curl -sS -N --max-time 30 "$url/api/events")
	while IFS= read -r line <&"$ev"; do
		case $line in
		'event: jobs') ready && break ;;
		esac
	done
	exec {ev}<&-
	ready || fail "/api/jobs: not 3 jobs with their pictures: $(head -c 400 "$out/jobs.json")"
fi

# --- /metrics: what the scenario did ---
[ "$(get /metrics "$out/metrics.txt")" = 200 ] || fail "/metrics: not 200"
metric() {	# LINE: the exact series and value must be there
	grep -q -x -F -- "$1" "$out/metrics.txt" ||
	    fail "/metrics lacks \"$1\""
}
metric 'gfe_actions_total{type="motion",result="completed"} 2'
metric 'gfe_actions_total{type="motion",result="failed"} 1'
metric 'gfe_actions_total{type="print",result="completed"} 1'
metric 'gfe_actions_total{type="lid_image",result="completed"} 1'
metric 'gfe_actions_total{type="settings",result="completed"} 1'
metric 'gfe_action_first_event_seconds_count 6'
metric 'gfe_action_duration_seconds_count 6'
metric 'gfe_jobs_kept_total 3'
metric 'gfe_jobs_refused_total 1'
metric 'gfe_disk_errors_total 0'
metric 'gfe_actions_running 0'
metric 'gfe_flashforge_commands_total 0'
grep -q -x 'gfe_sign_ins_total [1-9][0-9]*' "$out/metrics.txt" ||
    fail "/metrics: no sign-in counted"
# The job bytes, the lid image's bytes: what the sim served and took.
grep -q -x 'gfe_download_bytes_total [1-9][0-9]*' "$out/metrics.txt" ||
    fail "/metrics: no bytes downloaded"
up=$(sed -n 's/^gfe_upload_bytes_total //p' "$out/metrics.txt")
want=$(cat "$work"/upload/* 2>/dev/null | wc -c)
[ "${up:-0}" -eq "$want" ] && [ "$want" -gt 0 ] ||
    fail "/metrics: $up bytes uploaded, the sim has $want"
if command -v promtool >/dev/null; then
	promtool check metrics <"$out/metrics.txt" >"$out/promtool.log" 2>&1 ||
	    fail "promtool check metrics: $(cat "$out/promtool.log")"
else
	fail "promtool is missing (Debian's prometheus package, .ci/deps)"
fi

# --- /api/status ---
[ "$(get /api/status "$out/status.json")" = 200 ] || fail "/api/status"
jq -e '(.actions | length) == 6 and (.running | length) == 0 and
    .machines.glowforge == true and
    ([.actions[].type] | sort) == ["lid_image","motion","motion","motion",
    "print","settings"] and
    all(.actions[]; .state == "ended" and (.events | length) >= 1 and
    .events[-1].name == .type + ":" + .result) and
    ([.actions[] | select(.type == "print") | .events[].name] ==
    ["print:starting", "print:download:completed",
    "print:warmup:starting", "print:running",
    "print:return_to_home:succeeded", "print:completed"])' \
    "$out/status.json" >/dev/null ||
    fail "/api/status: $(head -c 600 "$out/status.json")"

# --- /api/jobs and the files it names ---
jq -e 'all(.jobs[]; .info.run_time != null and .view.cut_mm > 0 and
    (.view.X.max_mm - .view.X.min_mm) > 0)' "$out/jobs.json" >/dev/null ||
    fail "/api/jobs: statistics missing"
for name in $(jq -r '.jobs[].name' "$out/jobs.json"); do
	for ext in puls info; do
		[ "$(get "/jobs/$name.$ext" "$out/f")" = 200 ] &&
		    cmp -s "$out/f" "$work/motion/$name.$ext" ||
		    fail "/jobs/$name.$ext is not the kept file"
	done
	[ "$(get "/jobs/$name.png" "$out/f")" = 200 ] &&
	    [ "$(head -c 8 "$out/f" | od -An -tx1 | tr -d ' \n')" = \
	    89504e470d0a1a0a ] || fail "/jobs/$name.png is no PNG"
done

# --- no client path reaches the filesystem.  A link planted in the
# folder, named as a job, points at the password file: never listed,
# never served.  Its .info is a regular file, so only the link is wrong.
first=$(jq -r '.jobs[0].name' "$out/jobs.json")
plant=2026-01-01_000000_motion_666
# The listing sees it at its next look: a "jobs" event after the
# stream's opening one.
exec {ev}< <(exec curl -sS -N --max-time 10 "$url/api/events")
planted=0
while IFS= read -r line <&"$ev"; do
	[ "$line" = 'event: jobs' ] || continue
	[ $planted -eq 1 ] && break
	ln -s "$work/password" "$work/motion/$plant.puls"
	echo '{}' >"$work/motion/$plant.info"
	ln -s "$work/password" "$work/motion/$plant.png"
	planted=1
done
exec {ev}<&-
get /api/jobs "$out/jobs2.json" >/dev/null
jq -e --arg p "$plant" '(.jobs | length) == 3 and
    all(.jobs[]; .name != $p)' "$out/jobs2.json" >/dev/null ||
    fail "a symlinked job is listed"
secret=$(cat "$work/password")
for p in "/jobs/$plant.puls" "/jobs/$plant.info" "/jobs/$plant.png" \
    "/jobs/../password" "/jobs/%2e%2e/password" "/jobs/..%2fpassword" \
    "/jobs/%2e%2e%2fpassword" "/jobs/..%2F..%2Fpassword" \
    "/jobs/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd" "/../../etc/passwd" \
    "/jobs//etc/passwd" "/jobs/$first.puls/.." "/jobs/$first.puls%00" \
    "/jobs/$first.PULS" "/jobs/$first" "/jobs/$first.view.json" \
    "/jobs/.$first.png.tmp" "/jobs/$first.puls%2f..%2f..%2fpassword" \
    "/jobs/%2e%2e%5cpassword" "/..%2fpassword" "/password"; do
	code=$(get "$p" "$out/f")
	case $code in
	200) fail "$p: 200" ;;
	4??) ;;
	000) ;;	# lws may drop a request it finds malformed: fine
	*) fail "$p: status $code" ;;
	esac
	if grep -q -F -e "$secret" -e 'root:' "$out/f" 2>/dev/null; then
		fail "$p: the body holds a file it must not"
	fi
done
rm -f "$work/motion/$plant.puls" "$work/motion/$plant.info" \
    "$work/motion/$plant.png"

# --- the picture cache: links planted at the names the daemon's files
# take (the old fixed temporary names and the picture's own) point at a
# file outside the folder.  It stays as it was, content and mode, and the
# picture is made all the same.
victim=$work/victim
printf 'not a picture\n' >"$victim" && chmod 600 "$victim"
pic=2026-01-02_000000_motion_777
for n in ".$pic.png.tmp" ".$pic.view.json.tmp" "$pic.png" \
    "$pic.view.json"; do
	ln -s "$victim" "$work/motion/$n"
done
cp "$work/motion/$first.info" "$work/motion/$pic.info" &&
    cp "$work/motion/$first.puls" "$work/motion/.$pic.puls" &&
    mv "$work/motion/.$pic.puls" "$work/motion/$pic.puls"
pic_done() {
	get /api/jobs "$out/f" >/dev/null &&
	    jq -e --arg p "$pic" 'any(.jobs[]; .name == $p and
	    .picture != "pending")' "$out/f" >/dev/null
}
exec {ev}< <(exec curl -sS -N --max-time 30 "$url/api/events")
while IFS= read -r line <&"$ev"; do
	[ "$line" = 'event: jobs' ] && pic_done && break
done
exec {ev}<&-
[ "$(cat "$victim")" = 'not a picture' ] ||
    fail "a planted link's target was written"
[ "$(stat -c %a "$victim")" = 600 ] ||
    fail "a planted link's target changed mode: $(stat -c %a "$victim")"
jq -e --arg p "$pic" 'any(.jobs[]; .name == $p and .picture == "ready")' \
    "$out/f" >/dev/null || fail "$pic: no picture past the planted links"
[ "$(get "/jobs/$pic.png" "$out/f")" = 200 ] &&
    [ "$(head -c 8 "$out/f" | od -An -tx1 | tr -d ' \n')" = \
    89504e470d0a1a0a ] || fail "/jobs/$pic.png is no PNG"
rm -f "$work/motion/$pic".* "$work/motion/.$pic".*

# --- read-only ---
for m in POST PUT DELETE PATCH OPTIONS; do
	code=$(curl -sS -o /dev/null -w '%{http_code}' -X "$m" --max-time 10 \
	    -d x "$url/api/jobs")
	[ "$code" = 405 ] || fail "$m /api/jobs: $code, not 405"
done
# A page of another site whose name was rebound to 127.0.0.1 (DNS
# rebinding) is same-origin with the view and could read the jobs: a Host
# that is not this loopback address is refused.
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
    -H 'Host: rebound.example:80' "$url/api/status")
[ "$code" = 403 ] || fail "Host: rebound.example: $code, not 403"
port=${url##*:}
for h in "localhost:$port" "127.0.0.1:$port" localhost; do
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
	    -H "Host: $h" "$url/api/status")
	[ "$code" = 200 ] || fail "Host: $h: $code, not 200"
done
# Nor a WebSocket: an upgraded socket would be answered by nobody and
# kept open with no time-out (any web page may open one to loopback).
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    -H 'Sec-WebSocket-Version: 13' "$url/" 2>/dev/null)
[ "$code" != 101 ] || fail "a WebSocket upgrade was accepted"
[ "$(get /api/status "$out/f")" = 200 ] || fail "no answer after an upgrade"
head=$(curl -sS -I --max-time 10 "$url/")
printf '%s\n' "$head" | grep -q -i '^content-length: [1-9]' &&
    printf '%s\n' "$head" | grep -q '^HTTP/1.1 200' ||
    fail "HEAD /: $head"

# --- bounded: idle connections past the cap do not lock a client out ---
port=${url##*:}
fds=()
for i in $(seq 1 40); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" && fds+=("$fd")
done
[ "$(get /api/status "$out/f")" = 200 ] ||
    fail "/api/status refused with 40 idle connections open"
for fd in "${fds[@]}"; do
	exec {fd}<&-
done
# A client that asks for a big job and never reads holds neither the loop
# nor memory: the file leaves a chunk at a time as the socket drains.
# (The job is junk: listed, served, never drawn.)
big=2026-01-03_000000_motion_888
head -c $((64 << 20)) /dev/urandom >"$work/motion/.$big.puls" &&
    mv "$work/motion/.$big.puls" "$work/motion/$big.puls" &&
    echo '{}' >"$work/motion/$big.info"
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$(cat "$work/daemon.pid")/status"; }
# Listed at the worker's next look: await its "jobs" event.
exec {ev}< <(exec curl -sS -N --max-time 10 "$url/api/events")
while IFS= read -r line <&"$ev"; do
	[ "$line" = 'event: jobs' ] || continue
	get /api/jobs "$out/f" >/dev/null
	jq -e --arg b "$big" 'any(.jobs[]; .name == $b)' "$out/f" >/dev/null &&
	    break
done
exec {ev}<&-
before=$(rss)
exec {slow}<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /jobs/%s.puls HTTP/1.1\r\nHost: x\r\n\r\n' "$big" >&"$slow"
# The loop goes on serving while that one is stuck.
for i in 1 2 3 4 5; do
	[ "$(get /api/status "$out/f")" = 200 ] ||
	    fail "/api/status not served while a client does not read"
done
after=$(rss)
[ $((after - before)) -lt 16384 ] ||
    fail "RSS grew by $((after - before)) kB for a 64 MiB file not read"
exec {slow}<&-
rm -f "$work/motion/$big.puls" "$work/motion/$big.info"
# An oversized request is refused, and the server goes on.
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
    -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$url/metrics")
[ "$code" != 200 ] || fail "a 20 kB header was served"
[ "$(get /metrics "$out/f")" = 200 ] || fail "no answer after a big request"

# --- the page and the stream: offline (no other origin), no secret ---
[ "$(get / "$out/index.html")" = 200 ] || fail "/: not 200"
grep -q -E '(src|href)="(https?:)?//' "$out/index.html" &&
    fail "the page loads something from elsewhere"
curl -sS -N --max-time 2 "$url/api/events" >"$out/events.txt" 2>/dev/null
grep -q '^event: update' "$out/events.txt" || fail "/api/events: no update"
for f in metrics.txt status.json jobs.json index.html events.txt; do
	grep -q -F -e "$secret" "$out/$f" && fail "$f holds the password"
	[ -s "$work/secrets" ] && grep -q -F -f "$work/secrets" "$out/$f" &&
	    fail "$f holds a secret (token)"
	grep -q -E 'X-Amz-Signature|Signature=|[?&]token=' "$out/$f" &&
	    fail "$f holds a URL's signature"
done
[ $fails -eq 0 ] && echo "web-check: passed"
exit $((fails > 0))
