#!/usr/bin/env bash
# Times `vmdk cat DISK > FILE` against `qemu-img convert -O raw DISK FILE` on the same 1.25 GiB disk in
# every subformat qemu-img writes (and a three-link chain), side by side in one run, and prints the
# ratios (qemu time / our time: above 1 means vmdk is faster). Best of RUNS runs each, warm page cache.
# The output goes to OUT (default: a file in /dev/shm) so that both tools are timed on the conversion,
# not on a busy disk's write-back.
# Usage: bench/vmdk-cat.sh [WORKDIR]   (needs qemu-utils, openssl, bc; about 7 GiB free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
out=${OUT:-/dev/shm/vmdk-bench-$$.raw}
trap 'rm -f "$out"' EXIT
go build -o "$work/vmdk" ./cmd/vmdk

. bench/lib.sh
src=$work/src.raw
make_mix "$src" 20
for fmt in monolithicSparse streamOptimized monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
	[ -f "$work/$fmt.vmdk" ] || qemu-img convert -f raw -O vmdk -o subformat=$fmt "$src" "$work/$fmt.vmdk"
done
if [ ! -f "$work/chain2.vmdk" ]; then
	qemu-img create -q -f vmdk -b monolithicSparse.vmdk -F vmdk "$work/chain1.vmdk"
	qemu-io -f vmdk -c "write -P 0x11 100M 200M" "$work/chain1.vmdk" >/dev/null
	qemu-img create -q -f vmdk -b chain1.vmdk -F vmdk "$work/chain2.vmdk"
	qemu-io -f vmdk -c "write -P 0x22 250M 300M" "$work/chain2.vmdk" >/dev/null
fi

before_run() { rm -f "$out"; }
best() { best_time "$@"; }
ours() { "$work/vmdk" cat "$1" >"$out"; }
qemu() { qemu-img convert -O raw "$1" "$out"; }

printf '%-24s %10s %10s %8s\n' variant "vmdk s" "qemu-img s" "ratio"
for v in monolithicSparse streamOptimized monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat chain2; do
	d="$work/$v.vmdk"
	# Both outputs must be identical before either is timed.
	qemu "$d" && cp --sparse=always "$out" "$out.qemu"
	ours "$d"
	cmp -s "$out" "$out.qemu" || { echo "$v: vmdk cat and qemu-img convert differ" >&2; exit 1; }
	rm -f "$out.qemu"
	to=$(best ours "$d")
	tq=$(best qemu "$d")
	printf '%-24s %10.3f %10.3f %7.2fx\n' "$v" "$to" "$tq" "$(echo "$tq / $to" | bc -l)"
done
