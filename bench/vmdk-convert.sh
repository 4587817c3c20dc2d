#!/usr/bin/env bash
# Times `vmdk convert -t TYPE RAW OUT` against `qemu-img convert -O vmdk -o subformat=TYPE RAW OUT` for a
# 1.25 GiB raw image (random data, text, holes), side by side in one run, best of RUNS runs, and prints
# the ratios (qemu time / our time: above 1 means vmdk is faster). Output goes to OUTDIR (default
# /dev/shm) so that both are timed on the conversion rather than on a busy disk.
# Usage: bench/vmdk-convert.sh [WORKDIR]   (needs qemu-utils, openssl, bc)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
work=${1:-$(mktemp -d)}
outdir=${OUTDIR:-/dev/shm}/vmdk-convert-$$
mkdir -p "$work" "$outdir"
trap 'rm -rf "$outdir"' EXIT
go build -o "$work/vmdk" ./cmd/vmdk

. bench/lib.sh
src=$work/src.raw
make_mix "$src" 20

best() {
	local b=999999 t s e
	for _ in $(seq "$RUNS"); do
		rm -rf "${outdir:?}"/*
		s=$(date +%s.%N)
		"$@" >/dev/null
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		b=$(echo "if ($t < $b) $t else $b" | bc)
	done
	echo "$b"
}
printf '%-20s %10s %10s %8s\n' type "vmdk s" "qemu-img s" "ratio"
for t in monolithicSparse streamOptimized; do
	rm -rf "${outdir:?}"/*
	"$work/vmdk" convert -t "$t" "$src" "$outdir/ours.vmdk"
	qemu-img compare -q -f raw -F vmdk "$src" "$outdir/ours.vmdk" || { echo "$t: our output differs from the source" >&2; exit 1; }
	to=$(best "$work/vmdk" convert -t "$t" "$src" "$outdir/ours.vmdk")
	tq=$(best qemu-img convert -f raw -O vmdk -o subformat="$t" "$src" "$outdir/qemu.vmdk")
	printf '%-20s %10.3f %10.3f %7.2fx\n' "$t" "$to" "$tq" "$(echo "$tq / $to" | bc -l)"
done
