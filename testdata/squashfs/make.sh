#!/bin/bash
# make.sh: rebuild the squashfs fixtures, one per compressor the kernel mounts, from mktree.sh's tree.
# Owners and xattrs are kept (no -all-root, no -no-xattrs). Run as root from this folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/mktree.sh" "$tmp/src"
for comp in gzip xz lz4 zstd lzo; do
	mksquashfs "$tmp/src" "$here/tree-$comp.sqfs" -comp "$comp" -noappend -quiet -no-progress \
		-mkfs-time 1700000000 >/dev/null
done
# A second gzip image with 4 KiB blocks, uncompressed inodes and data, no fragments (gzipped when committed), to cover more layouts.
mksquashfs "$tmp/src" "$here/tree-small-blocks.sqfs" -comp gzip -b 4096 -noI -noD -no-fragments -noappend \
	-quiet -no-progress -mkfs-time 1700000000 >/dev/null
ls -l "$here"/*.sqfs
# A tiny image (a few entries of each kind), uncompressed so that fuzzing mutates the structures themselves.
mkdir -p "$tmp/tiny/d"
printf 'tiny file\n' > "$tmp/tiny/d/f"
head -c 5000 < <(yes tail) > "$tmp/tiny/tail"
ln -s d/f "$tmp/tiny/link"
mknod "$tmp/tiny/d/char" c 4 5
mkfifo "$tmp/tiny/fifo"
ln "$tmp/tiny/d/f" "$tmp/tiny/hard"
setfattr -n user.k -v value "$tmp/tiny/d/f"
touch -h -d '2020-01-01 00:00:00 UTC' "$tmp/tiny" "$tmp/tiny"/* "$tmp/tiny/d"/*
mksquashfs "$tmp/tiny" "$here/tiny-uncompressed.sqfs" -comp gzip -b 4096 -noI -noId -noD -noF -noX -noappend -quiet -no-progress \
	-mkfs-time 1700000000 >/dev/null
gzip -9 -n -f "$here/tree-small-blocks.sqfs"
