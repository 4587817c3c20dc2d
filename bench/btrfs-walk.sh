#!/usr/bin/env bash
# Cold-cache walk-and-read of a Btrfs (zstd) image holding a copy of /usr/share: the kernel's loop mount
# against our FUSE mount of the same image (vmdkmount --volume disk, the Btrfs reader of
# volumes/fsys/btrfs). Each walk lstats every entry and reads every file (find | xargs cat), caches
# dropped before each, best of $ROUNDS interleaved rounds. Prints both times, the ratio kernel/ours
# (the speed of ours as a fraction of the kernel's: 1.00 is as fast) and the daemon's peak RSS.
# Needs root (mount, drop_caches) and btrfs-progs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
work=$(mktemp -d /var/tmp/btrfs-walk.XXXXXX)
km=$work/kernel
om=$work/ours
mkdir -p "$km" "$om"
cleanup() {
	mountpoint -q "$km" && umount "$km"
	mountpoint -q "$om" && { "$work/bin/vmdkmount" umount "$om" || umount -l "$om"; }
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bin/" ./cmd/vmdkmount

src=${BTRFS_BENCH_SRC:-/usr/share}
img=$work/usr-share-btrfs.img
need=$(du -sm "$src" | cut -f1)
echo "building the image (copy of $src, ${need} MiB, compress-force=zstd)…" >&2
truncate -s "$((need * 2 + 512))M" "$img"
mkfs.btrfs -q "$img"
mount -o loop,compress-force=zstd "$img" "$km"
cp -a "$src/." "$km/" 2>/dev/null || true
umount "$km"

walk_kernel() { mount -o loop,ro,noatime "$img" "$km"; drop_caches; walk_secs "$km" kernel; umount "$km"; }
walk_ours() {
	"$work/bin/vmdkmount" -f --volume disk "$img" "$om" &
	local pid=$!
	for _ in $(seq 100); do mountpoint -q "$om" && break; sleep 0.1; done
	drop_caches
	walk_secs "$om" ours
	awk '/VmHWM/ { print $2 }' "/proc/$pid/status" >"$work/hwm"
	"$work/bin/vmdkmount" umount "$om"
	wait "$pid" || true
}
rounds=${ROUNDS:-2}
walk_rounds "$rounds"
files=$(find "$src" -type f 2>/dev/null | wc -l)
printf 'kernel %.2fs  ours %.2fs  speed ours/kernel %.2fx  daemon peak RSS %d MiB  (%d files, %s bytes, best of %d)\n' \
	"$best_k" "$best_o" "$(echo "$best_k / $best_o" | bc -l)" "$((peak / 1024))" "$files" "$(cat "$work/bytes.ours")" "$rounds"
