#!/usr/bin/env bash
# Instructions our WOF decoders (XPRESS4K and LZX) execute against wimlib's decoders, on the same
# chunks, counted by valgrind's callgrind: a ratio the machine's load does not move, unlike the CPU
# seconds bench/wof-read.sh compares (on a shared 2-core machine those vary by 5-10% from run to
# run). Ours is BenchmarkResourceFile's one pass, counted inside the decoders' Decompress; wimlib's
# is bench/wofdecode's, counted inside wimlib_decompress. Simulated branch mispredictions
# (--branch-sim) are printed beside them: they cost cycles the instruction count misses.
# The data is the first SIZE_MB (default 20) MiB of the machine's binaries and libraries, as in
# bench/wof-read.sh, compressed by bench/wofimage (wimlib's compressors).
# Needs valgrind, root, ntfs-3g, mkntfs, wimtools, libwim (its .so) and a C compiler.
# Usage: bench/wof-instructions.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work/bin"
go build -o "$work/bin/" ./bench/wofimage
cc -O2 -o "$work/bin/wofdecode" bench/wofdecode/wofdecode.c -l:libwim.so.15
(cd volumes/internal/wof && go test -c -o "$work/bin/wof.test" .)

size_mb=${SIZE_MB:-20}
src=$work/src.bin
img=$work/wof.img
if [ ! -f "$img.lzx.res" ]; then
	find /usr/lib /usr/bin -type f -size +64k 2>/dev/null | sort | xargs cat 2>/dev/null | head -c $((size_mb << 20)) >"$src" || true
	"$work/bin/wofimage" "$src" "$img"
fi
size=$(stat -c %s "$src")

# counts OUT FUNCTION CMD...: "instructions mispredicted-branches" of CMD inside FUNCTION.
counts() {
	local out=$1 fn=$2
	shift 2
	valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$out" --toggle-collect="$fn" "$@" \
		>/dev/null 2>"$out.log" || { cat "$out.log" >&2; return 1; }
	# Events: Ir Bc Bcm Bi Bim.
	awk '/^totals:/ {print $2, $4 + $6}' "$out"
}
for c in xpress4k:xpress:4096:0:xpress lzx:lzx:32768:1:lzx; do
	IFS=: read -r name alg chunk num pkg <<<"$c"
	res=$img.$name.res
	# Go's preemption signals upset callgrind: off, on one thread.
	read -r oi ob < <(GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 WOF_BENCH_RES=$res WOF_BENCH_SIZE=$size \
		WOF_BENCH_ALG=$num counts "$work/cg.ours.$name" "*$pkg.(*Decoder).Decompress" \
		"$work/bin/wof.test" -test.run '^$' -test.bench '^BenchmarkResourceFile$' -test.benchtime 1x)
	read -r wi wb < <(counts "$work/cg.wimlib.$name" wimlib_decompress \
		"$work/bin/wofdecode" "$res" "$size" "$alg" "$chunk" 1)
	printf '%-9s instructions: ours %5.1f M, wimlib %5.1f M: %.3fx   mispredicted branches: ours %.2f M, wimlib %.2f M\n' \
		"$name" "$(echo "$oi / 1000000" | bc -l)" "$(echo "$wi / 1000000" | bc -l)" "$(echo "$oi / $wi" | bc -l)" \
		"$(echo "$ob / 1000000" | bc -l)" "$(echo "$wb / 1000000" | bc -l)"
done
