#!/bin/bash
# Builds the NTFS fixtures with mkntfs and fills them through the ntfs-3g FUSE driver.
# Needs root (FUSE mount), ntfs-3g, attr (setfattr) and gzip. Output: basic.img.gz next to this script.
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
set -E
trap 'echo "failed at line $LINENO" >&2' ERR
mkdir "$mnt"

# Deterministic pseudo-random bytes: $1 = seed, $2 = byte count.
prng() { { openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c "$2"; }
# Compressible text: numbered lines.
text() { seq 1 "$2" | sed "s/^/$1 line /" || true; }

# reparse KIND TARGET: the hex of a symlink (relative or absolute) or junction reparse point, for
# ntfs-3g's system.ntfs_reparse_data attribute (ntfs-3g itself only writes Interix symlinks).
reparse() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
kind, target = sys.argv[1], sys.argv[2]
u = lambda s: s.encode("utf-16-le")
if kind == "junction":
    sub, show = u("\\??\\" + target), u(target)
    body = struct.pack("<HHHH", 0, len(sub), len(sub) + 2, len(show)) + sub + b"\0\0" + show + b"\0\0"
    tag = 0xA0000003
else:
    sub = u(target) if kind == "relative" else u("\\??\\" + target)
    show = u(target)
    body = struct.pack("<HHHHI", 0, len(sub), len(sub), len(show), 1 if kind == "relative" else 0) + sub + show
    tag = 0xA000000C
print("0x" + (struct.pack("<IHH", tag, len(body), 0) + body).hex())
PY
}

# common_files fills the current directory with every kind of entry the reader must handle.
common_files() {
	# Resident and non-resident plain files.
	printf 'hello, ntfs\n' >small.txt
	: >empty.txt
	text plain 3000 >plain.txt
	prng nonres 3000 >random.bin

	# Compressed files: the compression attribute on a directory is inherited by new files.
	mkdir compressed
	setfattr -n system.ntfs_attrib_be -v 0x00000800 compressed
	text comp 20000 >compressed/text.txt
	prng comprand 5000 >compressed/random.bin
	{ text mixed 3000; prng mixed 2000; text mixed2 4000; } >compressed/mixed.bin
	truncate -s 300000 compressed/sparse-compressed.bin
	printf 'tail' >>compressed/sparse-compressed.bin

	# Sparse files: holes made by seeking past the end.
	{ printf 'head'; } >sparse.bin
	truncate -s 1000000 sparse.bin
	printf 'middle' | dd of=sparse.bin bs=1 seek=500000 conv=notrunc 2>/dev/null
	printf 'end' | dd of=sparse.bin bs=1 seek=999997 conv=notrunc 2>/dev/null
	truncate -s 70000 allhole.bin

	# Alternate data streams (exposed as user.* xattrs by streams_interface=xattr).
	printf 'main data\n' >ads.txt
	setfattr -n user.stream -v "stream value" ads.txt
	setfattr -n user.big -v "$(text big 400)" ads.txt
	setfattr -n user.empty -v "" ads.txt
	mkdir adsdir
	setfattr -n user.dirstream -v "on a directory" adsdir

	# Hard links, across directories.
	mkdir links
	text linked 50 >links/original.txt
	ln links/original.txt links/second.txt
	ln links/original.txt third-name.txt

	# Symlinks: relative, absolute, to a directory, dangling.
	ln -s small.txt link-to-small
	ln -s ../plain.txt links/up-link
	ln -s /compressed/text.txt abs-link
	ln -s links dirlink
	ln -s does-not-exist dangling

	# Deep nesting, long and Unicode names.
	mkdir -p deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p
	printf 'deep\n' >deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/leaf.txt
	long=$(printf 'L%.0s' $(seq 1 240))
	printf 'long\n' >"$long.txt"
	mkdir 'Ünïcødé dir'
	printf 'unicode\n' >'Ünïcødé dir/日本語のファイル.txt'
	printf 'emoji\n' >'Ünïcødé dir/emoji-😀.txt'
	printf 'MixedCase\n' >MixedCase.TXT

	# Files ntfs-3g stores as Interix special files, and Windows attribute bits.
	mkfifo fifo
	mknod chardev c 1 3
	mknod blockdev b 7 1
	printf 'read only\n' >readonly.txt
	setfattr -n system.ntfs_attrib_be -v 0x00000001 readonly.txt
	printf 'hidden\n' >hidden.txt
	setfattr -n system.ntfs_attrib_be -v 0x00000002 hidden.txt
	# Windows symlinks and junctions (reparse points), and a reparse tag that is neither.
	mkdir -p reparse/sub/deeper
	touch reparse/sub/rel reparse/sub/abs reparse/dirlink-as-file reparse/unknown
	setfattr -n system.ntfs_reparse_data -v "$(reparse relative '..\..\small.txt')" reparse/sub/rel
	setfattr -n system.ntfs_reparse_data -v "$(reparse absolute 'C:\SMALL.TXT')" reparse/sub/abs
	setfattr -n system.ntfs_reparse_data -v "$(reparse absolute 'C:\links')" reparse/dirlink-as-file
	mkdir reparse/sub/deeper/junction reparse/junction-missing reparse/junction-other-drive
	setfattr -n system.ntfs_reparse_data -v "$(reparse junction 'C:\Links')" reparse/sub/deeper/junction
	setfattr -n system.ntfs_reparse_data -v "$(reparse junction 'C:\no\such\dir')" reparse/junction-missing
	setfattr -n system.ntfs_reparse_data -v "$(reparse junction 'E:\links')" reparse/junction-other-drive
	printf 'data behind an unknown reparse tag\n' >reparse/unknown
	setfattr -n system.ntfs_reparse_data -v 0x9900008004000000deadbeef reparse/unknown
	# A Windows CompactOS (WOF, XPRESS4K) reparse point: its real data would be elsewhere.
	printf 'not the real data\n' >reparse/wof
	setfattr -n system.ntfs_reparse_data -v 0x170000801000000001000000020000000100000000000000 reparse/wof
}

# minimal_files is a small mix for the 4 KiB-sector image (its $UpCase alone costs 100 KB gzipped).
minimal_files() {
	printf 'hello, ntfs\n' >small.txt
	text plain 3000 >plain.txt
	mkdir compressed
	setfattr -n system.ntfs_attrib_be -v 0x00000800 compressed
	text comp 8000 >compressed/text.txt
	truncate -s 300000 sparse.bin
	printf 'tail' >>sparse.bin
	setfattr -n user.stream -v "stream value" small.txt
	ln plain.txt hardlink.txt
	ln -s small.txt symlink
	mkdir -p 'dir/Ünïcødé'
	for i in $(seq 1 200); do printf '%d\n' "$i" >"dir/file-$i"; done
}

# volume_files adds the bulk: a multi-level index, many runs, physical fragmentation.
volume_files() {
	# A directory big enough for a multi-level $I30 B+tree.
	mkdir many
	for i in $(seq 1 400); do printf '%d\n' "$i" >"many/file-$i.txt"; done

	# Data beyond the initialized size: ntfs-3g extends by truncate without writing zeros.
	printf 'initialized' >uninit.bin
	truncate -s 50000 uninit.bin

	# Many runs: one written cluster every 4 clusters of a sparse file, so the runlist no longer fits
	# in one MFT record and spills into extension records behind an $ATTRIBUTE_LIST.
	printf 'start' >manyruns.bin
	for i in $(seq 1 450); do printf 'run %d' "$i" | dd of=manyruns.bin bs=1 seek=$((i * 2048)) conv=notrunc 2>/dev/null; done

	# Physical fragmentation: small files, fill the rest of the volume, free every other small file,
	# then write a file that can only go into the holes.
	mkdir frag
	for i in $(seq 1 240); do text "f$i" 100 | head -c 1024 >"frag/f$i"; done
	cat /dev/zero >filler 2>/dev/null || true
	sync
	for i in $(seq 1 2 240); do rm "frag/f$i"; done
	sync
	text fragmented 20000 | head -c 120000 >fragmented.bin || true
	rm filler

}

# build NAME SIZE SECTOR CLUSTER FILL...: mkntfs an image, mount it with ntfs-3g, run the fills.
build() {
	local name=$1 size=$2 sector=$3 cluster=$4
	shift 4
	local img="$work/$name.img"
	truncate -s "$size" "$img"
	mkntfs -F -f -Q -q -s "$sector" -c "$cluster" -L "Fixture $name" "$img" 2>/dev/null
	ntfs-3g -o streams_interface=xattr,big_writes "$img" "$mnt"
	(cd "$mnt" && for fill in "$@"; do "$fill"; done)
	umount "$mnt"
	gzip -9 -n -c "$img" >"$here/$name.img.gz"
	ls -l "$here/$name.img.gz"
}

# 512-byte clusters: 8 KiB compression units, long run lists.
build basic 8M 512 512 common_files volume_files
# 4 KiB clusters: 64 KiB compression units, the cluster size most volumes use.
build c4k 6M 512 4096 common_files
# 4 KiB sectors (4Kn disks): 4 KiB MFT records, still protected in 512-byte fixup blocks.
build s4k 6M 4096 4096 minimal_files
