#!/bin/bash
# Walks and reads every file of a generated NTFS image with our reader and with ntfs-3g's FUSE mount,
# each from a cold page cache, and prints the ratio (goal: ours at least 2x faster); then checks that
# both readers see the same tree (names, metadata, content).
# The image is built at run time from a copy of a directory tree (default /usr/share) written through
# ntfs-3g; nothing is kept. Needs root (FUSE, drop_caches), ntfs-3g, mkntfs and Go.
# Usage: bench/ntfs-walk.sh [source-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-/usr/share}
work=$(mktemp -d /var/tmp/ntfs-walk.XXXXXX)
mnt="$work/mnt"
cleanup() {
	cd /
	if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$mnt"

bytes=$(du -sb "$src" | cut -f1)
img="$work/walk.img"
truncate -s $((bytes * 3 / 2 + (512 << 20))) "$img"
mkntfs -F -f -Q -q -c 4096 -L walk "$img" 2>/dev/null
ntfs-3g "$img" "$mnt"
echo "copying $src into the image through ntfs-3g…"
cp -r --no-preserve=all "$src"/. "$mnt"/ 2>/dev/null || true
umount "$mnt"

ntfs-3g -o ro,streams_interface=xattr "$img" "$mnt"
cd "$root"
NTFS_WALK_IMAGE="$img" NTFS_WALK_HOST="$mnt" \
	go test -count=1 -timeout 30m -run '^TestWalkBench$' -v ./volumes/fsys/ntfs/ |
	grep -E 'round|RESULT|ntfs3g_test|^(ok|FAIL)'
