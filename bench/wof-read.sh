#!/usr/bin/env bash
# Read throughput of WOF-compressed files (Windows' CompactOS compression) through our mount, against
# the same file stored uncompressed on the same volume, read through the same mount. Prints the time
# ratios compressed / uncompressed (goals: XPRESS4K within 2x, LZX within 4x) and the daemon's CPU.
# The file is SIZE_MB (default 200) MiB of the machine's own binaries and libraries, the kind of data
# Windows compresses this way; bench/wofimage writes it with wimlib's compressors and ntfs-3g. Each
# read is a fresh mount (the kernel keeps no page cache of the file between rounds) with the image
# itself in the page cache; best of ROUNDS (default 3) interleaved rounds.
# Beside them, the peer decoder: wimlib's wimextract of the same data from a WIM with the same chunks
# (its time includes the SHA-1 check it always makes), and the decoders alone on the same chunks,
# one thread each: ours (a Go benchmark) and wimlib's library (bench/wofdecode), whose CPU ratio the
# machine's load hardly moves. Last, the floor: no read can take less wall time than its CPU work
# (daemon plus reader) spread over every core; it is printed in seconds and as a ratio to the
# uncompressed read, with our decoder and with wimlib's decoding time in place of ours. (On a
# loaded machine the uncompressed read slows down more than the floor, so read the seconds.)
# bench/wof-instructions.sh compares the decoders' instruction counts, which no load moves.
# Needs root, fuse3, ntfs-3g, mkntfs, wimtools, libwim (its .so), a C compiler and bc.
# Usage: bench/wof-read.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
go build -o "$work/bin/" ./cmd/vmdkmount ./bench/wofimage
cc -O2 -o "$work/bin/wofdecode" bench/wofdecode/wofdecode.c -l:libwim.so.15
ours=$work/bin/vmdkmount
mnt=$work/mnt
mkdir -p "$mnt"
unmount() { "$ours" umount "$mnt"; }
trap '"$ours" umount "$mnt" 2>/dev/null || true' EXIT

size_mb=${SIZE_MB:-200}
src=$work/src.bin
img=$work/wof.img
if [ ! -f "$img" ] || [ ! -f "$img.lzx.res" ]; then
	find /usr/lib /usr/bin -type f -size +64k 2>/dev/null | sort | xargs cat 2>/dev/null | head -c $((size_mb << 20)) >"$src" || true
	"$work/bin/wofimage" "$src" "$img"
fi
cat "$img" >/dev/null # the image in the page cache: the mount is timed, not the disk

cpuof() {
	local p
	p=$(pgrep -f -- "[ ]$1\$" | head -1)
	awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$p/stat"
}
# cputime CMD...: user+system CPU seconds of a command.
cputime() { /usr/bin/time -f '%U %S' "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.2f", $1 + $2}'; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }
# timed FILE: mounts the image's volume (a whole-disk NTFS, id "disk"), times one cat of FILE, prints
# "seconds daemon-CPU reader-CPU" (the reader's: cat's and the kernel's work on its behalf), unmounts.
timed() {
	"$ours" --volume disk "$img" "$mnt"
	local s e c
	s=$(date +%s.%N)
	c=$(cputime cat "$mnt/$1")
	e=$(date +%s.%N)
	echo "$(echo "$e - $s" | bc) $(cpuof "$mnt") $c"
	unmount
}

# The peer: the same data in WIMs with the same algorithms and chunk sizes.
for c in xpress4k:xpress:4096 lzx:lzx:32768; do
	IFS=: read -r name alg chunk <<<"$c"
	if [ ! -f "$work/$name.wim" ]; then
		mkdir -p "$work/wimsrc" && ln -sf "$src" "$work/wimsrc/f"
		wimcapture "$work/wimsrc" "$work/$name.wim" --dereference --compress="$alg" --chunk-size="$chunk" >/dev/null
	fi
done

rounds=${ROUNDS:-3}
declare -A best cpu rcpu peer
for r in $(seq "$rounds"); do
	for f in plain.bin xpress4k.bin lzx.bin; do
		out=$(timed "$f") # not read < <(…): the next mount must wait for this one's unmount
		read -r t c rc <<<"$out"
		if [ -z "${best[$f]:-}" ] || [ "$(echo "$t < ${best[$f]}" | bc)" = 1 ]; then best[$f]=$t cpu[$f]=$c rcpu[$f]=$rc; fi
	done
	for n in xpress4k lzx; do
		c=$(cputime wimextract "$work/$n.wim" 1 /f --to-stdout)
		if [ -z "${peer[$n]:-}" ] || [ "$(echo "$c < ${peer[$n]}" | bc)" = 1 ]; then peer[$n]=$c; fi
	done
done
# The decoders alone, one thread, on the same chunks: CPU seconds per pass over the file.
size=$(stat -c %s "$src")
declare -A dec wdec
for c in xpress4k:xpress:4096:0 lzx:lzx:32768:1; do
	IFS=: read -r name alg chunk num <<<"$c"
	dec[$name]=$(cd volumes/internal/wof && WOF_BENCH_RES="$img.$name.res" WOF_BENCH_SIZE=$size WOF_BENCH_ALG=$num \
		go test -run '^$' -bench '^BenchmarkResourceFile$' -benchtime "${rounds}x" | awk '/cpu-s\/op/ {
			for (i = 1; i < NF; i++) if ($(i + 1) == "cpu-s/op") print $i }')
	wdec[$name]=$("$work/bin/wofdecode" "$img.$name.res" "$size" "$alg" "$chunk" "$rounds")
done
cores=$(nproc)
"$ours" --volume disk "$img" "$mnt"
for f in xpress4k.bin lzx.bin; do
	cmp "$src" "$mnt/$f" && echo "$f reads equal to the source"
done
unmount
printf '%-14s %8s s  daemon CPU %6s s  reader CPU %6s s\n' "uncompressed" "${best[plain.bin]}" "${cpu[plain.bin]}" "${rcpu[plain.bin]}"
for f in xpress4k.bin lzx.bin; do
	n=${f%.bin}
	printf '%-14s %8s s  daemon CPU %6s s  reader CPU %6s s  ratio to uncompressed %.2fx (daemon CPU %.2fx)\n' "$n" \
		"${best[$f]}" "${cpu[$f]}" "${rcpu[$f]}" "$(echo "${best[$f]} / ${best[plain.bin]}" | bc -l)" \
		"$(echo "${cpu[$f]} / ${cpu[plain.bin]}" | bc -l)"
	printf '%-14s wimextract CPU %6s s (decode + SHA-1); our daemon CPU / wimlib CPU %.2fx\n' "  wimlib" "${peer[$n]}" \
		"$(echo "${cpu[$f]} / ${peer[$n]}" | bc -l)"
	printf '%-14s decoders alone, one thread: ours %s s, wimlib %s s: ours / wimlib %.2fx\n' "" "${dec[$n]}" "${wdec[$n]}" \
		"$(echo "${dec[$n]} / ${wdec[$n]}" | bc -l)"
	floor() { echo "($1 + ${rcpu[$f]}) / $cores" | bc -l; }
	ratio() { echo "r = $1 / ${best[plain.bin]}; if (r < 1) r = 1; r" | bc -l; }
	ours_floor=$(floor "${cpu[$f]}")
	wim_floor=$(floor "${cpu[$f]} - ${dec[$n]} + ${wdec[$n]}")
	printf '%-14s floor on %d cores: %.3f s (%.2fx) with our decoder, %.3f s (%.2fx) at wimlib decoding speed\n' \
		"" "$cores" "$ours_floor" "$(ratio "$ours_floor")" "$wim_floor" "$(ratio "$wim_floor")"
done
