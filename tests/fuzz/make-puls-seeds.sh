#!/bin/sh
# Writes the pulse-file seeds of fuzz_puls into a folder (the committed
# tests/corpus/puls was made by it):
#   tests/fuzz/make-puls-seeds.sh BUILD/gf-puls tests/corpus/puls
# Small files (each under 16 KiB, the fuzzer's input size): valid jobs
# plain and gzip, and the broken ones the daemon must refuse.  The
# hand-made headers are printf'd byte by byte: little-endian u32s.  The
# octal escapes in $tags and $body are for printf to expand, so they are
# in its format on purpose:
# shellcheck disable=SC2059
set -eu
[ $# -eq 2 ] || { echo "usage: $0 GF-PULS OUTDIR" >&2; exit 2; }
gp=$1
out=$2
mkdir -p "$out"
gen() { "$gp" generate "$@"; }

# Valid jobs: laser cuts, travel, a Z hunt; any machine and ours.
gen --line 3,2 --laser --stfr 2000 -o "$out/line-laser.puls"
gen --rect 2,1 --laser --power 60 --stfr 2000 --speed 50 \
    -o "$out/rect-power60.puls"
gen --hunt --depth 0.5 --stfr 1000 -o "$out/hunt.puls"
gen --line 10,-4 --stfr 10000 --serial 12345678 -o "$out/travel-serial.puls"
gen --rect 2,1 --laser --stfr 2000 --gzip -o "$out/rect-laser.puls.gz"
gen --line 3,2 --laser --stfr 10000 --serial 12345678 --gzip \
    -o "$out/line-serial.puls.gz"
# Another machine's job: the machine check refuses it.
gen --line 1,1 --stfr 2000 --serial 87654321 -o "$out/other-machine.puls"

# A gzip stream cut short, and one with junk after its end.
gen --line 3,2 --laser --stfr 10000 --gzip -o "$out/tmp.gz"
size=$(wc -c <"$out/tmp.gz")
head -c $((size - 9)) "$out/tmp.gz" >"$out/truncated.puls.gz"
{ cat "$out/tmp.gz"; printf 'junk'; } >"$out/trailing-junk.puls.gz"
rm -f "$out/tmp.gz"

# Headers by hand: 0x80 "GF1", u32 length (magic included), 8-byte tags.
tags='STfr\020\047\000\000MCsn\000\000\000\000PDfm\000\000\000\000'
# Header only, no body.
printf "\200GF1\040\000\000\000$tags" >"$out/header-only.puls"
# Lengths that lie: 80, so 48 body bytes are read as tags (and fail);
# 16, so MCsn and PDfm are body bytes (and the checks fail).
body='\021\023\060\061\021\023\060\061\021\023\060\061\021\023\060\061'
printf "\200GF1\120\000\000\000${tags}${body}${body}${body}${body}" \
    >"$out/header-lies-long.puls"
printf "\200GF1\020\000\000\000${tags}${body}" >"$out/header-lies-short.puls"
# A length past the 256-tag limit.
printf "\200GF1\010\010\001\000${tags}\001\002" >"$out/header-too-many-tags.puls"
# A length ending inside a tag.
printf "\200GF1\034\000\000\000${tags}\001\002" >"$out/header-partial-tag.puls"
# A length below the magic's 8 bytes.
printf "\200GF1\004\000\000\000${tags}" >"$out/header-too-short.puls"
# The header ends before its stated length, gzip'd: "inside the header".
printf "\200GF1\050\000\000\000${tags}" | gzip -9n >"$out/header-cut.puls.gz"
# Wrong magic, and an unprintable tag name.
printf "\200GF2\040\000\000\000${tags}\001" >"$out/bad-magic.puls"
printf "\200GF1\020\000\000\000ST\001r\020\047\000\000" >"$out/bad-tag-name.puls"
# No STfr / PDfm 1: header checks.
printf "\200GF1\030\000\000\000MCsn\000\000\000\000PDfm\000\000\000\000\021" \
    >"$out/no-stfr.puls"
printf "\200GF1\040\000\000\000STfr\020\047\000\000MCsn\000\000\000\000PDfm\001\000\000\000\021" \
    >"$out/pdfm-1.puls"
# A lone half gzip magic.
printf '\037' >"$out/lone-1f.bin"
