#!/usr/bin/env bash
# Cold-cache walk of an ext4 image holding a copy of /usr/share: the kernel (loop mount) against our
# reader (volumes/fsys/ext4), the same Go walker on both sides (lstat every entry, read every file),
# via `go test -bench Walk`. Prints both times and the ratio ours/kernel. Needs root (mount, drop_caches).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /var/tmp/ext4-walk.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$work"; }
trap cleanup EXIT

src=${EXT4_BENCH_SRC:-/usr/share}
img=$work/usr-share.img
need=$(du -sm "$src" | cut -f1)
echo "building the image (copy of $src, ${need} MiB)…" >&2
mke2fs -q -F -t ext4 -O ^has_journal -d "$src" "$img" "$((need * 3 / 2 + 256))M"

mount -o loop,ro,noatime "$img" "$mnt"
out=$(EXT4_BENCH_IMAGE=$img EXT4_BENCH_MOUNT=$mnt go test -run '^$' -bench '^BenchmarkWalk$' \
	-benchtime "${RUNS:-3}x" -count 1 ./volumes/fsys/ext4)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '
	/BenchmarkWalk\/kernel/ { k = $3; kb = $5; kf = $7 } # metrics print sorted: bytes, then files
	/BenchmarkWalk\/ours/   { o = $3; ob = $5; of = $7 }
	END {
		if (!k || !o) { print "benchmark did not run" > "/dev/stderr"; exit 1 }
		if (kf != of || kb != ob) { printf "walks differ: kernel %s files %s bytes, ours %s files %s bytes\n", kf, kb, of, ob > "/dev/stderr"; exit 1 }
		printf "kernel %.2fs  ours %.2fs  ratio ours/kernel %.2f  (%d files, %d bytes)\n", k / 1e9, o / 1e9, o / k, of, ob
	}'
