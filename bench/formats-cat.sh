#!/usr/bin/env bash
# Times `vmdk cat DISK > FILE` against `qemu-img convert -O raw DISK FILE` on the same 2 GiB disk in each
# other format vmdkmount reads (qcow2 plain, zlib and zstd compressed, with extended L2 entries, a
# qcow2 chain; VHD fixed and dynamic; VHDX fixed and dynamic; VDI static and dynamic) and, for
# reference, as a monolithicSparse VMDK. Prints the ratios (qemu time / our time: above 1 means vmdk is
# faster). Best of RUNS runs each, warm page cache; the output goes to OUT (default: /dev/shm).
# Usage: bench/formats-cat.sh [WORKDIR]   (needs qemu-utils, openssl, bc; about 16 GiB free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-2048}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
out=${OUT:-/dev/shm/vmdk-formats-bench-$$.raw}
trap 'rm -f "$out" "$out.qemu"' EXIT
go build -o "$work/vmdk" ./cmd/vmdk

. bench/lib.sh
src=$work/src.raw
make_mix "$src" $((SIZE_MIB / 64))
mk() { # mk NAME FORMAT [qemu-img convert options...]
	local name=$1 fmt=$2
	shift 2
	[ -f "$work/$name" ] || qemu-img convert -f raw -O "$fmt" "$@" "$src" "$work/$name"
}
mk qcow2.qcow2 qcow2
mk qcow2-zlib.qcow2 qcow2 -c
mk qcow2-zstd.qcow2 qcow2 -c -o compression_type=zstd
mk qcow2-extl2.qcow2 qcow2 -o extended_l2=on,cluster_size=128k
mk vhd-fixed.vhd vpc -o subformat=fixed,force_size=on
mk vhd-dynamic.vhd vpc -o subformat=dynamic,force_size=on
mk vhdx-fixed.vhdx vhdx -o subformat=fixed
mk vhdx-dynamic.vhdx vhdx -o subformat=dynamic
mk vdi-static.vdi vdi -o static=on
mk vdi-dynamic.vdi vdi
mk sparse.vmdk vmdk -o subformat=monolithicSparse
if [ ! -f "$work/qcow2-top.qcow2" ]; then
	qemu-img create -q -f qcow2 -b qcow2.qcow2 -F qcow2 "$work/qcow2-top.qcow2"
	qemu-io -f qcow2 -c "write -P 0x11 100M 200M" "$work/qcow2-top.qcow2" >/dev/null
fi

before_run() { rm -f "$out"; }
best() { best_time "$@"; }
ours() { "$work/vmdk" cat "$1" >"$out"; }
qemu() { qemu-img convert -f "$2" -O raw "$1" "$out"; }

printf '%-20s %10s %10s %8s\n' image "vmdk s" "qemu-img s" "ratio"
for v in qcow2.qcow2:qcow2 qcow2-zlib.qcow2:qcow2 qcow2-zstd.qcow2:qcow2 qcow2-extl2.qcow2:qcow2 qcow2-top.qcow2:qcow2 \
	vhd-fixed.vhd:vpc vhd-dynamic.vhd:vpc vhdx-fixed.vhdx:vhdx vhdx-dynamic.vhdx:vhdx vdi-static.vdi:vdi vdi-dynamic.vdi:vdi \
	sparse.vmdk:vmdk; do
	name=${v%%:*} fmt=${v##*:}
	d="$work/$name"
	# Both outputs must be identical before either is timed.
	qemu "$d" "$fmt" && cp --sparse=always "$out" "$out.qemu"
	ours "$d"
	cmp -s "$out" "$out.qemu" || { echo "$name: vmdk cat and qemu-img convert differ" >&2; exit 1; }
	rm -f "$out.qemu"
	to=$(best ours "$d")
	tq=$(best qemu "$d" "$fmt")
	printf '%-20s %10.3f %10.3f %7.2fx\n' "$name" "$to" "$tq" "$(echo "$tq / $to" | bc -l)"
done
