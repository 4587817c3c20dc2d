#!/usr/bin/env bash
# Reads raw/disk through vmdkmount for the same disk (SIZE_MIB, default 2 GiB) in each format vmdkmount
# reads (see format_images in lib.sh) and as VMDKs, and prints each format's time over the VMDK's
# holding the same data the same way: streamOptimized for compressed qcow2, monolithicSparse for the
# rest (1.20x or less is the goal: every format served about as fast as VMDK). A fresh
# mount for every read, so that nothing of raw/disk is in the page cache; the image files are (the
# daemon is timed, not the disk), filled as a read from disk fills it (recache in lib.sh). Median of
# RUNS runs each, the formats taking turns within a round.
# Usage: bench/formats-mount.sh [WORKDIR]   (root, fuse3, qemu-utils, openssl, bc; WORKDIR may be the
# one of formats-cat.sh, whose images it reuses)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZE_MIB=${SIZE_MIB:-2048}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
go build -o "$work/vmdkmount" ./cmd/vmdkmount
m=$work/mnt
mkdir -p "$m"
trap '"$work/vmdkmount" umount "$m" 2>/dev/null || true' EXIT

. bench/lib.sh
src=$work/src.raw
make_mix "$src" $((SIZE_MIB / 64))
format_images "$work" "$src"
for v in $FORMAT_IMAGES; do recache "$work/${v%%:*}"; done

# daemon_cpu: CPU seconds used so far by the daemon serving $m (a steadier figure than wall time on a
# busy machine).
daemon_cpu() {
	local p
	p=$(pgrep -f -- "[ ]$m\$" | head -1)
	awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$p/stat"
}
# read_once IMAGE: mounts it, times one sequential read of raw/disk, unmounts; prints the seconds and
# the daemon's CPU seconds.
read_once() {
	"$work/vmdkmount" --raw "$1" "$m"
	local t
	t=$(secs_of dd if="$m/raw/disk" of=/dev/null bs=1M status=none)
	echo "$t $(daemon_cpu)"
	"$work/vmdkmount" umount "$m"
}
declare -A times cpus
for r in $(seq "$RUNS"); do
	for v in $FORMAT_IMAGES; do
		name=${v%%:*}
		x=$(read_once "$work/$name")
		times[$name]+=" ${x% *}" cpus[$name]+=" ${x#* }"
	done
done
printf '%-20s %10s %10s %10s %10s %-12s  (median of %d; goal: 1.20x or less)\n' image "mount s" "over VMDK" "CPU s" "over VMDK" "" "$RUNS"
for v in $FORMAT_IMAGES; do
	name=${v%%:*}
	case $name in *-zlib.* | *-zstd.* | stream.vmdk) ref=stream.vmdk ;; *) ref=sparse.vmdk ;; esac
	t=$(median ${times[$name]}) c=$(median ${cpus[$name]})
	printf '%-20s %10.3f %9.2fx %10.2f %9.2fx %-12s\n' "$name" "$t" "$(echo "$t / $(median ${times[$ref]})" | bc -l)" \
		"$c" "$(echo "$c / $(median ${cpus[$ref]})" | bc -l)" "($ref)"
done
