#!/bin/sh
# puls-tool.sh: the gf-puls tool end to end.  Generates jobs, reads them
# back with info and stats --json (plain, gzip, stdin), renders PNG and SVG
# and checks the bytes, and checks the exit status of bad input and usage.
# Env: GFE_BIN (build dir holding gf-puls).  POSIX sh, grep, od only.
set -u

BIN=${GFE_BIN:?GFE_BIN not set}/gf-puls
WORK=$(mktemp -d "${TMPDIR:-/tmp}/puls-tool.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT INT TERM
FAILS=0

fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

# json_num FILE KEY: the first number for "KEY": in FILE.
json_num() {
	grep -o "\"$2\":-\{0,1\}[0-9][0-9.e+-]*" "$1" | head -n 1 | cut -d: -f2
}

# expect_num FILE KEY VALUE
expect_num() {
	got=$(json_num "$1" "$2")
	[ "$got" = "$3" ] || fail "$1: $2 is '$got', want '$3'"
}

# expect_rc WANT CMD...: runs CMD, stderr to $WORK/err.
expect_rc() {
	want=$1
	shift
	"$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	[ "$rc" -eq "$want" ] ||
	    fail "$* exited $rc, want $want: $(cat "$WORK/err")"
}

cd "$WORK" || exit 1
# Under -DGFE_SANITIZE=address: fontconfig (below cairo's text) keeps its
# configuration until exit and frees it never; that is not ours.
printf 'leak:libfontconfig\n' >lsan.supp
LSAN_OPTIONS="suppressions=$WORK/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

# --- generate, stats --json: travel exact in steps (1 mm = 53.33 steps) ---
expect_rc 0 "$BIN" generate --line 100,-30 --laser -o line.puls
expect_rc 0 "$BIN" stats --json line.puls
cp out line.json
expect_num line.json XP 5333
expect_num line.json XN 0
expect_num line.json XEND 5333
expect_num line.json YN 1600
expect_num line.json YEND -1600
expect_num line.json XMM 99.99375
expect_num line.json YMM -30
expect_num line.json LP 1
expect_num line.json header_len 24
expect_num line.json STfr 10000
[ "$(grep -c . line.json)" -eq 1 ] || fail "stats --json: not one line"
grep -q '"run_time":"0:00:0[0-9]\.[0-9]\{6\}"' line.json ||
    fail "run_time format: $(cat line.json)"
grep -q '"extents":{"X":{"min":0,"max":5333,' line.json ||
    fail "extents: $(cat line.json)"
grep -q '"travel_mm":0,' line.json || fail "travel_mm of a pure cut"
# size + header = file length
size=$(json_num line.json size)
len=$(wc -c <line.puls)
[ $((size + 32)) -eq "$len" ] || fail "size $size + 32 != file $len"

# rectangle, gzip, a serial: closes exactly
expect_rc 0 "$BIN" generate --rect 10,20 --gzip --serial 42 -o rect.puls.gz
[ "$(od -An -tx1 -N2 rect.puls.gz | tr -d ' ')" = "1f8b" ] ||
    fail "--gzip did not write gzip"
expect_rc 0 "$BIN" stats --json rect.puls.gz
cp out rect.json
expect_num rect.json XTOT 1066
expect_num rect.json YTOT 2134
expect_num rect.json XEND 0
expect_num rect.json YEND 0
expect_num rect.json MCsn 42
expect_num rect.json cut_mm 60

# hunt: Z down 5 mm and back (14 Z steps of 0.35306 mm)
expect_rc 0 "$BIN" generate --hunt -o - >/dev/null </dev/null
"$BIN" generate --hunt -o - >hunt.puls || fail "generate -o -"
expect_rc 0 "$BIN" stats --json - <hunt.puls
cp out hunt.json
expect_num hunt.json ZP 14
expect_num hunt.json ZN 14
expect_num hunt.json ZEND 0
expect_num hunt.json XTOT 0

# several files: one object each, in order
expect_rc 0 "$BIN" stats --json line.puls rect.puls.gz hunt.puls
[ "$(grep -c '^{' out)" -eq 3 ] || fail "stats --json of 3 files"

# --- info ---
expect_rc 0 "$BIN" info rect.puls.gz
grep -q 'gzip' out || fail "info: no gzip"
grep -q 'MCsn  *42' out || fail "info: MCsn"
grep -q 'STfr  *10000  *step frequency' out || fail "info: STfr meaning"
grep -q 'format byte   0x80' out || fail "info: format byte"
grep -q 'body  *[0-9]* bytes' out || fail "info: body"
grep -q 'for machine 42 only' out || fail "info: checks"
expect_rc 0 "$BIN" info --serial 7 rect.puls.gz
grep -q 'refused: job is for machine 42' out || fail "info --serial"

# --- render ---
expect_rc 0 "$BIN" render rect.puls.gz -o rect.png --width 640
[ "$(od -An -tx1 -N8 rect.png | tr -d ' ')" = "89504e470d0a1a0a" ] ||
    fail "PNG signature"
[ "$(od -An -tx1 -j12 -N4 rect.png | tr -d ' ')" = "49484452" ] ||
    fail "PNG: no IHDR first"
[ "$(od -An -tu4 --endian=big -j16 -N4 rect.png | tr -d ' ')" = "640" ] ||
    fail "PNG width is not 640"
expect_rc 0 "$BIN" render line.puls -o line.svg --width 800
grep -q '<svg[^>]* width="800px"' line.svg || fail "SVG root width"
grep -q '</svg>' line.svg || fail "SVG not closed"
"$BIN" render hunt.puls -o - --width 500 >hunt.png || fail "render -o -"
[ "$(od -An -tu4 --endian=big -j16 -N4 hunt.png | tr -d ' ')" = "500" ] ||
    fail "PNG to stdout"
expect_rc 2 "$BIN" render rect.puls.gz -o rect.jpg
expect_rc 2 "$BIN" render rect.puls.gz -o x.png --width 10

# --- bad input: exit 1, the file and the byte offset named ---
head -c 300 rect.puls.gz >trunc.gz
expect_rc 1 "$BIN" stats trunc.gz
grep -q 'trunc.gz: gzip stream truncated' err || fail "truncated: $(cat err)"
printf '\200GF2\010\000\000\000' >badmagic.puls
expect_rc 1 "$BIN" info badmagic.puls
grep -q 'badmagic.puls: bad magic at byte 3' err || fail "magic: $(cat err)"
printf '\200GF1\100\000\000\000STfr' >lying.puls
expect_rc 1 "$BIN" stats --json lying.puls
grep -q 'lying.puls: input ends at byte 12 inside the header' err ||
    fail "lying length: $(cat err)"
expect_rc 1 "$BIN" info nonexistent.puls
expect_rc 1 "$BIN" stats line.puls nonexistent.puls
grep -q 'XEND' out || fail "the good file before the bad one"
gzip -c line.puls >trail.gz 2>/dev/null && printf 'junk' >>trail.gz &&
    { expect_rc 1 "$BIN" stats trail.gz
      grep -q 'trailing data' err || fail "trailing: $(cat err)"; }

# --- many files and folders: argument order, a bad file among good ones ---
mkdir jobs
cp line.puls jobs/a.puls
cp rect.puls.gz jobs/b.puls.gz
cp badmagic.puls jobs/c.puls
cp hunt.puls jobs/d.puls
printf 'not a job' >jobs/notes.txt
expect_rc 1 "$BIN" stats --json hunt.puls jobs nonexistent.puls line.puls
[ "$(grep -c '^{' out)" -eq 5 ] || fail "stats DIR: $(grep -c '^{' out) objects"
# hunt, a, b, d, line: Z, then X 5333, X 1066, Z, X 5333
[ "$(grep -o '"XTOT":[0-9]*' out | tr '\n' ' ')" = \
    '"XTOT":0 "XTOT":5333 "XTOT":1066 "XTOT":0 "XTOT":5333 ' ] ||
    fail "stats DIR order: $(grep -o '"XTOT":[0-9]*' out | tr '\n' ' ')"
grep -q 'jobs/c.puls: bad magic' err || fail "bad file in DIR: $(cat err)"
grep -q 'nonexistent.puls' err || fail "missing file: $(cat err)"
grep -q 'notes' err out && fail "stats DIR read a non-pulse file"
expect_rc 0 "$BIN" stats line.puls jobs/a.puls
[ "$(grep -c '^line.puls$\|^jobs/a.puls$' out)" -eq 2 ] &&
    [ "$(head -n 1 out)" = "line.puls" ] || fail "stats text order"
# never a progress bar when stderr is not a terminal
[ -s err ] && fail "stats wrote to a non-TTY stderr: $(cat err)"
GFE_PULS_PROGRESS_AFTER=0 "$BIN" stats line.puls rect.puls.gz >out 2>err
[ -s err ] && fail "progress on a non-TTY stderr: $(cat err)"
# on a terminal (script(1) gives one), it shows (threshold lowered)
if command -v script >/dev/null 2>&1; then
	GFE_PULS_PROGRESS_AFTER=0 script -qc "'$BIN' stats line.puls" \
	    /dev/null >tty.out 2>&1 </dev/null
	grep -q '100%' tty.out || fail "no progress bar on a TTY"
	grep -q 'XEND' tty.out || fail "stats on a TTY: $(cat tty.out)"
fi

# --- render: laser-off travel retracing one small square (issue 9) ---
# Each lap is the same pixels: memory must not grow with the laps (it
# was quadratic: 32 MiB took 5 s and 53 MB, 120 MiB minutes and 1.8 GB).
expect_rc 0 "$BIN" generate --rect 2,2 --travel --laps 300 -o lap1.puls
expect_rc 0 "$BIN" generate --rect 2,2 --travel --laps 6000 -o lap2.puls
expect_rc 0 "$BIN" stats --json lap2.puls
expect_num out XEND 0
expect_num out LE 0
if [ -x /usr/bin/time ]; then
	for f in lap1 lap2; do
		/usr/bin/time -f '%M' -o $f.rss "$BIN" render $f.puls \
		    -o $f.png --width 600 || fail "render $f"
	done
	a=$(tail -n 1 lap1.rss)
	b=$(tail -n 1 lap2.rss)
	# 20 times the body, at most 8 MB more (the old path: +30 MB)
	[ $((b - a)) -lt 8192 ] || fail "render RSS grew ${a} -> ${b} KB"
else
	echo "no /usr/bin/time: render memory not checked" >&2
	expect_rc 0 "$BIN" render lap2.puls -o lap2.png --width 600
fi

# --- render: a dithered raster, memory bounded by the picture (issue 12) ---
# Rows of 4000 ticks, the laser toggled at random every tick, one Y step
# between rows: thousands of vertices a row, none retraced.  The picture
# is drawn as the body is walked, so 4 times the body must not cost more
# memory (it did: 4 MiB 39 MB, 16.5 MiB 111 MB).  The larger one is over
# GFP_SPLIT_MIN: its second half, walked apart, spills to a file.
dither_block() {
	i=0
	while [ $i -lt 64 ]; do
		head -c 4000 /dev/urandom |
		    tr '\000-\177\200-\377' '[\001*128][\021*128]'
		printf '\014'
		head -c 4000 /dev/urandom |
		    tr '\000-\177\200-\377' '[\003*128][\023*128]'
		printf '\014'
		i=$((i + 1))
	done
}
expect_rc 0 "$BIN" generate --line 1,1 -o dhead.puls
hl=$(od -A n -t u1 -j 4 -N 1 dhead.puls | tr -d ' ')
dither_block >dblk
for n in 8 33; do
	head -c "$hl" dhead.puls >dith$n.puls
	i=0
	while [ $i -lt $n ]; do
		cat dblk
		i=$((i + 1))
	done >>dith$n.puls
done
if [ -x /usr/bin/time ]; then
	# Under ASan, freed blocks wait in a quarantine (256 MB): keep it
	# small, or it is what grows.
	for f in dith8 dith33; do
		ASAN_OPTIONS="quarantine_size_mb=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
		    /usr/bin/time -f '%M' -o $f.rss "$BIN" render $f.puls \
		    -o $f.png || fail "render $f"
	done
	a=$(tail -n 1 dith8.rss)
	b=$(tail -n 1 dith33.rss)
	echo "dither render RSS: ${a} -> ${b} KB" >&2
	# TSan shadows every byte the program touches several times over:
	# the bound is the program's, checked in the plain and ASan builds.
	if [ "${GFE_SANITIZE:-}" = thread ]; then
		echo "under TSan: dither render memory not bounded here" >&2
	else
		[ $((b - a)) -lt 8192 ] ||
		    fail "dither render RSS grew ${a} -> ${b} KB"
	fi
else
	echo "no /usr/bin/time: dither render memory not checked" >&2
	expect_rc 0 "$BIN" render dith8.puls -o dith8.png
fi
# stdin is read once: the vertices are kept (the title says "-"), and
# drawn: the PNG is about the file's size, not a bare line's
"$BIN" render - -o dith8s.png <dith8.puls || fail "render dither stdin"
"$BIN" render dhead.puls -o dhead.png || fail "render dither head"
[ "$(od -A n -c -N 4 dith8s.png | tr -d ' ')" = '211PNG' ] ||
    fail "render dither stdin: not a PNG"
a=$(wc -c <dith8.png)
b=$(wc -c <dith8s.png)
c=$(wc -c <dhead.png)
[ $((b - c)) -gt $(((a - c) / 2)) ] ||
    fail "render dither stdin: $b bytes, the file $a, a bare line $c"
# Past the vertices it keeps (GFP_RENDER_KEEP), render draws as it walks
# after a pass for the extents: the same picture as keeping them all.
GFE_PULS_KEEP=0 "$BIN" render dith8.puls -o dith8k.png ||
    fail "render dither, every vertex kept"
cmp -s dith8.png dith8k.png ||
    fail "render dither: drawn as walked differs from kept"
# A FIFO is read once, like stdin: its vertices are kept, never re-read.
if command -v mkfifo >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1
then
	mkfifo dfifo
	cat dith8.puls >dfifo &
	GFE_PULS_KEEP=1 timeout 120 "$BIN" render dfifo -o dith8f.png ||
	    fail "render dither from a FIFO"
	wait
	[ "$(wc -c <dith8f.png)" -gt $(((a + c) / 2)) ] ||
	    fail "render dither from a FIFO: $(wc -c <dith8f.png) bytes"
	rm -f dfifo
fi
GFE_PULS_KEEP=1 "$BIN" render rect.puls.gz -o rect1.png --width 640 ||
    fail "render rect, drawn as walked"
cmp -s rect.png rect1.png || fail "render rect: drawn as walked differs"
rm -f dith8.puls dith33.puls dblk

# --- render: a big plain file is walked in two halves (issue 12) ---
# The same job as gzip is read in one walk: the pictures differ at most
# in the toolpath's own line (a vertex on the path at the join).
expect_rc 0 "$BIN" generate --line 400,250 --speed 0.25 --laser -o big.puls
[ "$(wc -c <big.puls)" -gt 16777216 ] || fail "big.puls is not over 16 MiB"
mkdir -p split one
cp big.puls split/j.puls
gzip -c big.puls >one/j.puls
(cd split && "$BIN" render j.puls -o j.svg --width 800) || fail "render split"
(cd one && "$BIN" render j.puls -o j.svg --width 800) || fail "render one"
n=$(diff split/j.svg one/j.svg | grep -c '^<')
[ "$n" -le 1 ] || fail "split render differs in $n lines"
if [ "$n" -eq 1 ]; then
	diff split/j.svg one/j.svg | grep '^<' | grep -q 'stroke:rgb(85%,10%,10%)' ||
	    fail "split render: not the cut line differs"
fi
cut_ends() {
	grep 'stroke-width:1.6;[^"]*stroke:rgb(85%,10%,10%)' "$1" | head -n 1 |
	    sed 's/.* d="M \([^ ]* [^ ]*\) .* \([^ ]* [^ ]*\) "\/>/\1 \2/'
}
[ -n "$(cut_ends one/j.svg)" ] &&
    [ "$(cut_ends split/j.svg)" = "$(cut_ends one/j.svg)" ] ||
    fail "split render: the cut ends $(cut_ends split/j.svg) vs $(cut_ends one/j.svg)"
rm -rf split one big.puls

# --- usage: exit 2 ---
expect_rc 2 "$BIN"
expect_rc 2 "$BIN" frobnicate
expect_rc 2 "$BIN" stats
expect_rc 2 "$BIN" generate --line 1 -o x
expect_rc 2 "$BIN" generate --line 1,2 --rect 1,2 -o x
expect_rc 2 "$BIN" generate --line 1,2
expect_rc 0 "$BIN" --help
grep -q 'Exit status' out || fail "--help"

if [ "$FAILS" -ne 0 ]; then
	echo "$FAILS check(s) failed" >&2
	exit 1
fi
echo "puls-tool: all checks passed"
