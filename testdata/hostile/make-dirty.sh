#!/bin/bash
# Builds the dirty images of the hostile-image suite: snapshots of a live ext4 volume and a live XFS
# volume with fsync'd files still only in the journal or log, which the suite damages
# (volumes/internal/hostile/journal.go). Each holds make.sh's tree written in place (synced), then
# journal/f0..f7 fsync'd one by one with their directory, and is copied while mounted (no global sync),
# as a crash-consistent snapshot of a running guest. Needs root (loop mounts).
# Output: ext4-dirty.img.gz and xfs-dirty.img.gz next to this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mnt="$work/mnt"
cleanup() {
	cd /
	if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$mnt"
cd "$work"

# live IMG: fills the mounted volume, leaves eight fsync'd files in its log and snapshots it.
live() {
	local img=$1
	mkdir -p "$mnt/etc" "$mnt/loopdir"
	printf 'guest passwd: not the host file\n' >"$mnt/etc/passwd"
	printf 'hello, hostile world\n' >"$mnt/hello.txt"
	{ yes "a line of the big file" || true; } | head -c 77777 >"$mnt/big.bin"
	printf 'inside the loop directory\n' >"$mnt/loopdir/inner.txt"
	sync -f "$mnt"
	mkdir "$mnt/journal"
	for i in 0 1 2 3 4 5 6 7; do
		printf 'journalled file %d\n' "$i" >"$mnt/journal/f$i"
		sync "$mnt/journal/f$i"
	done
	sync "$mnt/journal"
	cp --sparse=always "$img" snap.img
	umount "$mnt"
	gzip -9 -n -c snap.img >"$here/$img.gz"
	rm -f snap.img "$img"
}

# ext4 with metadata checksums (journal checksum v3), 1 KiB blocks and a 1 MiB journal.
truncate -s 4M ext4-dirty.img
mke2fs -q -t ext4 -b 1024 -J size=1 -L dirty -U 11111111-2222-3333-4444-555555555555 ext4-dirty.img
mount -o loop ext4-dirty.img "$mnt"
live ext4-dirty.img

# XFS v5 in one AG; its internal log is what the suite damages.
truncate -s 16M xfs-dirty.img
mkfs.xfs -q -f --unsupported -L dirty -m uuid=11111111-2222-3333-4444-555555555555 -d agcount=1 xfs-dirty.img 2>&1 |
	grep -v -e unsupported -e '^$' || true
mount -o loop xfs-dirty.img "$mnt"
live xfs-dirty.img
ls -l "$here"/*-dirty.img.gz
