#!/usr/bin/env bash
# Cold-cache walk-and-read of a four-device Btrfs RAID6 (data and metadata) with two devices left out,
# so about half the reads rebuild from parity: the kernel's ro,degraded loop mount of the two devices
# left against our FUSE mount of the same two images (vmdkmount, the RAID5/6 rebuild of
# volumes/fsys/btrfs). The data is a copy of $BTRFS_BENCH_SRC (default /usr/share/doc), uncompressed,
# so the time goes to reading and rebuilding rather than to zstd. Each walk lstats every entry and
# reads every file, caches dropped before each, best of $ROUNDS interleaved rounds. Prints both times,
# the ratio kernel/ours (1.00 is as fast) and the daemon's peak RSS. Needs root and btrfs-progs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
work=$(mktemp -d /var/tmp/btrfs-raid6.XXXXXX)
km=$work/kernel
om=$work/ours
mkdir -p "$km" "$om"
loops=()
cleanup() {
	mountpoint -q "$km" && umount "$km"
	mountpoint -q "$om" && { "$work/bin/vmdkmount" umount "$om" || umount -l "$om"; }
	for l in "${loops[@]}"; do btrfs device scan --forget "$l" 2>/dev/null || true; losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bin/" ./cmd/vmdkmount

src=${BTRFS_BENCH_SRC:-/usr/share/doc}
need=$(du -sm "$src" | cut -f1)
echo "building the RAID6 (copy of $src, ${need} MiB, four devices, two left out for the walks)…" >&2
imgs=()
for i in 0 1 2 3; do
	imgs+=("$work/dev$i.img")
	truncate -s "$((need + 512))M" "$work/dev$i.img"
	loops+=("$(losetup -f --show "$work/dev$i.img")")
done
mkfs.btrfs -q -f -d raid6 -m raid6 "${loops[@]}" >/dev/null 2>&1
mount -o "device=${loops[1]},device=${loops[2]},device=${loops[3]}" "${loops[0]}" "$km"
cp -a "$src/." "$km/" 2>/dev/null || true
umount "$km"
# Devices 1 and 2 stay out: the kernel must not find them among its scanned devices.
for i in 1 2; do btrfs device scan --forget "${loops[$i]}"; losetup -d "${loops[$i]}"; done
loops=("${loops[0]}" "${loops[3]}")

walk_kernel() {
	mount -o "ro,noatime,degraded,device=${loops[1]}" "${loops[0]}" "$km"
	drop_caches
	walk_secs "$km" kernel
	umount "$km"
}
walk_ours() {
	"$work/bin/vmdkmount" -f "${imgs[0]}" "${imgs[3]}" "$om" 2>/dev/null &
	local pid=$!
	for _ in $(seq 100); do mountpoint -q "$om" && break; sleep 0.1; done
	drop_caches
	walk_secs "$om/d0" ours
	awk '/VmHWM/ { print $2 }' "/proc/$pid/status" >"$work/hwm"
	"$work/bin/vmdkmount" umount "$om"
	wait "$pid" || true
}
rounds=${ROUNDS:-2}
walk_rounds "$rounds"
printf 'degraded RAID6 (2 of 4 devices): kernel %.2fs  ours %.2fs  speed ours/kernel %.2fx  daemon peak RSS %d MiB  (%s bytes, best of %d)\n' \
	"$best_k" "$best_o" "$(echo "$best_k / $best_o" | bc -l)" "$((peak / 1024))" "$(cat "$work/bytes.ours")" "$rounds"
