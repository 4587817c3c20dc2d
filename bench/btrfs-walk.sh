#!/usr/bin/env bash
# Cold-cache walk-and-read of a Btrfs (zstd) image holding a copy of /usr/share: the kernel's loop mount
# against our FUSE mount of the same image (vmdkmount --volume disk, the Btrfs reader of
# volumes/fsys/btrfs). Each walk lstats every entry and reads every file (find | xargs cat), caches
# dropped before each, best of $ROUNDS interleaved rounds. Prints both times, the ratio kernel/ours
# (the speed of ours as a fraction of the kernel's: 1.00 is as fast) and the daemon's peak RSS.
# Needs root (mount, drop_caches) and btrfs-progs.
set -euo pipefail
cd "$(dirname "$0")/.."
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

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# walk reads every file and lists every entry; the bytes read go to $work/bytes.<side>, to check
# that both sides read the same amount.
walk() { (cd "$1" && find . -type f -print0 | xargs -0 -n 256 cat 2>/dev/null | wc -c >"$work/bytes.$2"; find . >/dev/null); }
secs() { local t0 t1; t0=$(date +%s.%N); walk "$1" "$2"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
walk_kernel() { mount -o loop,ro,noatime "$img" "$km"; drop; secs "$km" kernel; umount "$km"; }
peak=0
walk_ours() {
	"$work/bin/vmdkmount" -f --volume disk "$img" "$om" &
	local pid=$!
	for _ in $(seq 100); do mountpoint -q "$om" && break; sleep 0.1; done
	drop
	secs "$om" ours
	local hwm
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
	[ "$hwm" -gt "$peak" ] && peak=$hwm
	echo "$hwm" >"$work/hwm"
	"$work/bin/vmdkmount" umount "$om"
	wait "$pid" || true
}
rounds=${ROUNDS:-2}
best_k="" best_o=""
for r in $(seq "$rounds"); do
	if [ $((r % 2)) = 1 ]; then o=$(walk_ours); k=$(walk_kernel); else k=$(walk_kernel); o=$(walk_ours); fi
	p=$(cat "$work/hwm"); [ "$p" -gt "$peak" ] && peak=$p
	if [ -z "$best_k" ] || [ "$(echo "$k < $best_k" | bc)" = 1 ]; then best_k=$k; fi
	if [ -z "$best_o" ] || [ "$(echo "$o < $best_o" | bc)" = 1 ]; then best_o=$o; fi
done
files=$(find "$src" -type f 2>/dev/null | wc -l)
if [ "$(cat "$work/bytes.kernel")" != "$(cat "$work/bytes.ours")" ]; then
	echo "the walks read different amounts: kernel $(cat "$work/bytes.kernel"), ours $(cat "$work/bytes.ours") bytes" >&2
	exit 1
fi
printf 'kernel %.2fs  ours %.2fs  speed ours/kernel %.2fx  daemon peak RSS %d MiB  (%d files, %s bytes, best of %d)\n' \
	"$best_k" "$best_o" "$(echo "$best_k / $best_o" | bc -l)" "$((peak / 1024))" "$files" "$(cat "$work/bytes.ours")" "$rounds"
