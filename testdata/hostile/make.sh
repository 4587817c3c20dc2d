#!/bin/bash
# Builds the small filesystem images the hostile-image suite (volumes/hostile_test.go) derives its
# damaged variants from. Every image holds the same tree, made by the real tools of each format:
#   etc/passwd            guest text a symlink must resolve to (never the host's /etc/passwd)
#   big.bin               77777 bytes: the suite finds its size field by that value and makes it 2^63
#   passwd-abs, passwd-rel, etc-abs, dev-sda, loop-a/loop-b   hostile symlinks (where the format has them)
#   loopdir/selfref, loopdir/upref   empty directories the suite re-points at loopdir and at the root
#   fan/fanA/…/fanA, each level with an empty fanB   the suite re-points every fanB at its sibling fanA
# Metadata checksums are left off where mkfs allows (ext4), so a patched field reaches the parser; XFS v5
# and exFAT checksums are recomputed by the suite. Needs root (loop and FUSE mounts).
# Output: <fs>.img.gz and fan-<fs>.img.gz next to this script; `make.sh btrfs` builds only the Btrfs ones.
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
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=1700000000 TZ=UTC

# tree DIR [nolinks]: the common tree; without symlinks and hard links when $2 is set.
tree() {
	local d=$1
	mkdir -p "$d/etc" "$d/loopdir/selfref" "$d/loopdir/upref"
	printf 'guest passwd: not the host file\n' >"$d/etc/passwd"
	printf 'hello, hostile world\n' >"$d/hello.txt"
	{ yes "a line of the big file" || true; } | head -c 77777 >"$d/big.bin"
	printf 'inside the loop directory\n' >"$d/loopdir/inner.txt"
	if [ -z "${2:-}" ]; then
		ln -s /etc/passwd "$d/passwd-abs"
		ln -s ../../../../etc/passwd "$d/passwd-rel"
		ln -s /etc "$d/etc-abs"
		ln -s /dev/sda "$d/dev-sda"
		ln -s loop-b "$d/loop-a"
		ln -s loop-a "$d/loop-b"
		ln "$d/big.bin" "$d/big.lnk"
	fi
}
tree "$work/t"
tree "$work/plain" nolinks
# The fan images: fanA/fanA/… 16 levels deep, each level also holding an empty fanB that the suite
# re-points at its sibling fanA, which makes 2^16 paths out of 32 directories.
f="$work/fan"
for _ in $(seq 1 16); do
	mkdir -p "$f/fanA" "$f/fanB"
	f="$f/fanA"
done
cd "$work"

# btrfs_image TREE PREFIX: a 16 MiB mixed-block-group Btrfs (4 KiB nodes, single profile, so one copy of
# each tree block) filled through a kernel loop mount, with zstd.txt written under compress-force=zstd
# for the suite's compressed-extent cases.
btrfs_image() {
	local t=$1 p=$2
	truncate -s 16M btrfs.img
	mkfs.btrfs -q -f -M -m single -d single -L hostile -U 11111111-2222-3333-4444-555555555555 btrfs.img >/dev/null 2>&1
	# Copied in name order, so every fanA is indexed before its fanB.
	mount -o loop btrfs.img "$mnt" && tar --sort=name -C "$t" -cf - . | tar -C "$mnt" -xpf -
	mount -o remount,compress-force=zstd "$mnt"
	{ yes "a compressible line of zstd.txt" || true; } | head -c 200000 >"$mnt/zstd.txt"
	umount "$mnt"
	gzip -9 -n -c btrfs.img >"$here/${p}btrfs.img.gz"
	rm btrfs.img
}
if [ "${1:-}" = btrfs ]; then
	btrfs_image t ""
	btrfs_image fan fan-
	exit
fi

# images TREE PLAINTREE PREFIX: one image per filesystem, PREFIX<fs>.img.gz next to this script.
images() {
	local t=$1 plain=$2 p=$3
	# ext4 without metadata checksums, 1 KiB blocks, populated by mke2fs itself.
	mke2fs -q -t ext4 -b 1024 -O ^metadata_csum,^has_journal -L hostile -U 11111111-2222-3333-4444-555555555555 \
		-E root_owner=0:0 -d "$t" ext4.img 1M

	# XFS v5 (inode CRCs recomputed by the suite), filled through a kernel loop mount.
	truncate -s 16M xfs.img
	mkfs.xfs -q -f --unsupported -L hostile -m uuid=11111111-2222-3333-4444-555555555555 -d agcount=1 xfs.img 2>&1 |
		grep -v -e unsupported -e '^$' || true
	mount -o loop xfs.img "$mnt" && cp -a "$t"/. "$mnt"/ && umount "$mnt"

	# NTFS through ntfs-3g (it writes Interix symlinks).
	truncate -s 2M ntfs.img
	mkntfs -q -F -L hostile -s 512 -c 4096 ntfs.img >/dev/null 2>&1
	ntfs-3g ntfs.img "$mnt" && cp -a "$t"/. "$mnt"/ && umount "$mnt"

	# FAT12 through mtools (no links).
	truncate -s 512K fat.img
	mkfs.fat -F 12 -n HOSTILE -i 1234abcd fat.img >/dev/null
	mcopy -s -m -i fat.img "$plain"/* ::/

	# exFAT through exfat-fuse (no links).
	truncate -s 1M exfat.img
	mkfs.exfat -b 4096 -L hostile exfat.img >/dev/null
	local loop
	loop=$(losetup -f --show exfat.img)
	mount.exfat-fuse "$loop" "$mnt" >/dev/null && cp -r "$plain"/. "$mnt"/ && umount "$mnt"
	losetup -d "$loop"

	# ISO9660 with Rock Ridge (symlinks, hard links) and Joliet.
	xorriso -as mkisofs -quiet -R -J -V HOSTILE -o iso.img "$t" 2>/dev/null

	# squashfs with uncompressed inode and directory tables, data and fragments, so fields can be patched.
	mksquashfs "$t" squashfs.img -comp gzip -b 4096 -noI -noD -noF -noX -noappend -quiet -no-progress >/dev/null

	for f in ext4 xfs ntfs fat exfat iso squashfs; do
		gzip -9 -n -c "$f.img" >"$here/$p$f.img.gz"
		rm "$f.img"
	done
	btrfs_image "$t" "$p"
}
images t plain ""
images fan fan fan-
ls -l "$here"/*.gz | awk '{s += $5} END {print s " bytes of fixtures"}'
