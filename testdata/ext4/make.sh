#!/bin/bash
# Builds the ext2/ext3/ext4 test images with mke2fs and fills them through the kernel's loop mount,
# then gzips them. Needs root (mount, mknod, chown). Run from anywhere: ./make.sh [image names...]
# (no names: all images).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
mnt=$work/mnt
mkdir -p "$mnt"
trap 'umount "$mnt" 2>/dev/null || true; rm -rf "$work"' EXIT

# fill populates a mounted filesystem with every kind of entry. $1: block size, $2: "inline" or "".
fill() {
	local bs=$1 m=$mnt
	mkdir -p "$m/dir/sub/deeper" "$m/empty_dir" "$m/sticky" "$m/Ünïcødé-目录"
	chmod 1777 "$m/sticky"
	printf 'hello, ext\n' >"$m/dir/small.txt"
	printf '%0100d' 7 >"$m/dir/hundred.txt" # inline_data: 60 bytes in i_block, 40 in system.data
	: >"$m/empty"
	# Every block distinct (a wrong block mapping shows) yet compressible; sparse_lead below reaches the
	# double-indirect block on 1K-block ext2/3.
	seq -f 'line %06g of a file whose blocks all differ' 1 1500 >"$m/dir/sub/random.bin"
	# Sparse: a leading hole, then many small chunks (an extent tree deeper than the inode).
	printf 'after the hole' | dd of="$m/sparse_lead" bs=1 seek=$((300 * 1024)) conv=notrunc status=none
	for i in $(seq 0 80); do
		printf 'chunk %03d' "$i" | dd of="$m/sparse_many" bs=1 seek=$((i * 3 * bs)) conv=notrunc status=none
	done
	# Data far out: the triple-indirect block on 1K-block ext2/3, a high logical block elsewhere.
	printf 'far away' | dd of="$m/sparse_far" bs=1 seek=$((70 * 1024 * 1024)) conv=notrunc status=none
	truncate -s $((5 * bs + 17)) "$m/trailing_hole"
	printf 'head' >"$m/trailing_hole.tmp" && dd if="$m/trailing_hole.tmp" of="$m/trailing_hole" conv=notrunc status=none && rm "$m/trailing_hole.tmp"
	if fallocate -l $((8 * bs)) "$m/prealloc" 2>/dev/null; then # unwritten extents on ext4
		printf 'written in the middle' | dd of="$m/prealloc" bs=1 seek=$((3 * bs + 5)) conv=notrunc status=none
	fi
	# Names.
	local long
	long=$(printf 'L%.0s' $(seq 1 255))
	printf 'long\n' >"$m/dir/$long"
	printf 'unicode\n' >"$m/Ünïcødé-目录/ファイル名.txt"
	printf 'emoji\n' >"$m/Ünïcødé-目录/🙂 space & quote'.txt"
	# Links.
	ln "$m/dir/small.txt" "$m/hardlink1"
	ln "$m/dir/small.txt" "$m/dir/sub/hardlink2"
	ln -s dir/small.txt "$m/fast_link"
	ln -s "/$(printf 'a%.0s' $(seq 1 70))/../dir/small.txt" "$m/slow_link"
	ln -s "$(printf 'x/%.0s' $(seq 1 450))end" "$m/very_slow_link"
	ln -s dangling_target "$m/dangling"
	# Special files.
	mkfifo "$m/fifo"
	python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$m/socket"
	mknod "$m/null_dev" c 1 3
	mknod "$m/block_dev" b 8 1
	mknod "$m/big_dev" c 300 70000 # needs the new device encoding
	# Modes and owners.
	printf 'suid\n' >"$m/setuid" && chmod 4755 "$m/setuid"
	printf 'sgid\n' >"$m/setgid" && chmod 2711 "$m/setgid"
	mkdir "$m/sgid_dir" && chmod 2775 "$m/sgid_dir"
	printf 'odd owner\n' >"$m/odd_owner" && chown 4000000000:123456 "$m/odd_owner"
	printf 'mode 0\n' >"$m/mode0" && chmod 0 "$m/mode0"
	[ "$2" = rev0 ] && return # no xattrs, ACLs, htree or new times: any of them would upgrade the revision
	# Extended attributes: small ones fit in the inode, a big one needs the xattr block.
	setfattr -n user.small -v tiny "$m/dir/small.txt"
	setfattr -n user.empty "$m/dir/small.txt"
	setfattr -n user.big -v "$(printf 'B%.0s' $(seq 1 700))" "$m/dir/sub/random.bin"
	setfattr -n user.other -v 0x00ff00ff "$m/dir/sub/random.bin"
	setfattr -n trusted.secret -v hidden "$m/dir"
	setfattr -n security.label -v labelled "$m/empty"
	setfattr -n trusted.on_link -v linked -h "$m/fast_link"
	if [ "$2" = inline ]; then # ea_inode: a value larger than a block lives in its own inode
		setfattr -n user.huge -v "$(printf 'H%.0s' $(seq 1 10000))" "$m/empty"
	fi
	# POSIX ACLs in the xattr format: user::rw- user:1234:r-- group::r-- mask::r-- other::---
	setfattr -n system.posix_acl_access -v 0x0200000001000600ffffffff02000400d204000004000400ffffffff10000400ffffffff20000000ffffffff "$m/dir/hundred.txt"
	setfattr -n system.posix_acl_default -v 0x0200000001000700ffffffff04000500ffffffff20000500ffffffff "$m/dir/sub/deeper"
	# A directory big enough for an htree index.
	mkdir "$m/many"
	for i in $(seq 1 400); do : >"$m/many/entry-$i-$(printf 'p%.0s' $(seq 1 $((i % 40))))"; done
	# Times: nanoseconds, before 1970, after 2038 (epoch bits).
	touch -h -d '2001-02-03 04:05:06.123456789 UTC' "$m/dir/small.txt"
	touch -d '1960-06-01 12:00:00.5 UTC' "$m/setgid"
	touch -d '2300-01-01 00:00:00.000000001 UTC' "$m/setuid"
	touch -a -d '2100-12-31 23:59:59.999999999 UTC' "$m/odd_owner"
}

# build NAME MKFS_ARGS... : makes NAME.img of $size bytes, fills it through a loop mount, gzips it.
build() {
	local name=$1 bs=$2 inline=$3
	shift 3
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then
		return
	fi
	local img=$work/$name.img
	truncate -s "$size" "$img"
	mke2fs -q -F -b "$bs" -L "$name" -U "$(python3 -c 'import uuid,sys; print(uuid.uuid5(uuid.NAMESPACE_DNS, sys.argv[1]))' "$name")" -E root_owner=0:0 "$@" "$img"
	mount -o loop "$img" "$mnt"
	fill "$bs" "$inline"
	umount "$mnt"
	e2fsck -fn "$img" >/dev/null
	gzip -9 -n -c "$img" >"$name.img.gz"
	echo "$name: $(stat -c %s "$name.img.gz") bytes gzipped"
}

only=("$@")
export E2FSPROGS_FAKE_TIME=1700000000
size=$((4 * 1024 * 1024))
build ext2-1k 1024 "" -t ext2 -I 256
build ext2-rev0 1024 rev0 -t ext2 -r 0 -O none
size=$((8 * 1024 * 1024)) build ext3-2k 2048 "" -t ext3 -J size=2
build ext4-4k 4096 "" -t ext4 -O ^has_journal
build ext4-1k-32bit 1024 "" -t ext4 -O ^64bit,^metadata_csum,^has_journal
build ext4-inline 4096 inline -t ext4 -O inline_data,ea_inode,^has_journal
# 64-byte descriptors, 16 per block, 32 groups: the second meta group's descriptors sit in group 16,
# and with 16 inodes per group most inodes live in groups whose descriptors are there.
size=$((8 * 1024 * 1024)) build ext4-metabg 1024 "" -t ext4 -O meta_bg,64bit,^resize_inode,^has_journal -g 256 -N 512
build ext4-128inode 4096 "" -t ext4 -I 128 -O ^has_journal
size=$((8 * 1024 * 1024)) build ext4-bigalloc 1024 "" -t ext4 -O bigalloc,^has_journal -C 4096
