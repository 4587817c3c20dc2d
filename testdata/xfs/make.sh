#!/usr/bin/env bash
# Builds the XFS fixtures with the real tools: mkfs.xfs, then a loop mount (as root) to fill the v5 image
# through the kernel, and an mkfs.xfs protofile for the v4 image (this kernel cannot mount v4).
#   v5-1k.img.gz    the same tree on 1 KiB blocks, 8 KiB directory blocks, no bigtime, nrext64.
#   v5.img.gz       v5 (CRC, ftype, bigtime), 4 AGs, filled by the kernel: every directory format
#                   (shortform, block, leaf, node, btree), extent- and btree-format files, unwritten
#                   extents, sparse files, symlinks, hard links, devices, xattrs of all sizes.
#   v4.img.gz       v4 (no CRC, no ftype), 1 KiB blocks, 4 KiB directory blocks, 256-byte inodes,
#                   filled from v4-src.tar.gz by a protofile.
#   v4-src.tar.gz   the tree the v4 image was made from: the test's expected contents.
#   v4-xattrs.txt   the attributes xfs_db then set on the v4 image.
# The v5 images have their (clean) log zeroed to save space: mount them with -o ro,norecovery.
# Usage: testdata/xfs/make.sh [outdir]   (root; default outdir is this script's folder)
# With XFS_BIG_USR=1 it instead builds usr-share.img in outdir (a copy of /usr/share) for the benchmark.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
work=$(mktemp -d)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$work"; }
trap cleanup EXIT
# mkfs.xfs refuses filesystems under 300 MB unless it believes it runs under fstests.
export TEST_DIR=/nonexistent TEST_DEV=/nonexistent QA_CHECK_FS=1

if [ "${XFS_BIG_USR:-}" = 1 ]; then
  need=$(du -sm /usr/share | cut -f1)
  truncate -s "$((need * 2 + 400))M" "$out/usr-share.img"
  mkfs.xfs -q -f "$out/usr-share.img"
  mount -o loop "$out/usr-share.img" "$mnt"
  cp -a /usr/share/. "$mnt/"
  umount "$mnt"
  exit 0
fi

# Deterministic filler: n bytes of text derived from a seed, different per file. Past 5003 bytes it
# repeats with that period: cheap for gzip, yet no misplaced block can match (4096 and 5003 are coprime).
filler() { awk -v n="$1" -v s="$2" 'BEGIN{ l=""; while (length(l) < 5003) l = l sprintf("%s-%08d\n", s, length(l));
  l = substr(l, 1, 5003); while (length(l) < n) l = l l; printf "%s", substr(l, 1, n) }'; }

populate_common() { # $1 = root of the tree to fill, $2 = node-directory size, $3 = link|file
  local r=$1
  mkdir "$r/short" "$r/block" "$r/leaf" "$r/node"
  for i in 1 2 3; do filler 100 "s$i" > "$r/short/f$i"; done
  for i in $(seq 1 60); do filler 10 "b$i" > "$r/block/entry_$i"; done
  for i in $(seq 1 400); do : > "$r/leaf/leaf_entry_name_$i"; done
  # node entries are hard links where the tree allows them: thousands of names without thousands of
  # inodes (spread over 30 inodes, so no link group gets huge)
  for i in $(seq 0 29); do : > "$r/node/a_rather_longer_node_directory_entry_name_$i"; done
  for i in $(seq 30 "$2"); do
    if [ "$3" = link ]; then ln "$r/node/a_rather_longer_node_directory_entry_name_$((i % 30))" "$r/node/a_rather_longer_node_directory_entry_name_$i"
    else : > "$r/node/a_rather_longer_node_directory_entry_name_$i"; fi
  done
  filler 5 x > "$r/node/a_rather_longer_node_directory_entry_name_x"
  filler 300000 big > "$r/big.txt"
  : > "$r/empty"
  filler 70 inline > "$r/tiny"
  ln -s tiny "$r/link_local"
  ln -s "$(printf 'long/%.0s' $(seq 1 150))target" "$r/link_remote"
  ln -s /short/f1 "$r/link_abs"
  ln -s missing "$r/link_dangling"
  mkdir "$r/ünïcødé_dïr"
  filler 33 u > "$r/ünïcødé_dïr/日本語のファイル名.txt"
  filler 44 l > "$r/$(printf 'n%.0s' $(seq 1 255))"
  mknod "$r/chardev" c 1 7
  mknod "$r/blockdev" b 8 17
  mknod "$r/bigdev" c 300 70000
  mkfifo "$r/fifo"
  mkdir "$r/modes"
  for m in 4755 2755 1777 0000 0600 6711; do : > "$r/modes/m$m"; chmod "$m" "$r/modes/m$m"; done
  mkdir "$r/modes/sticky_dir"; chmod 1777 "$r/modes/sticky_dir"
  : > "$r/owned"; chown 1234:5678 "$r/owned"
  : > "$r/owned_big"; chown 4000000000:3000000000 "$r/owned_big"
}

# ---- v5 images, filled through the kernel ----
kernel_image() { # $1 = name, $2 = size, $3 = node-directory size, $4 = full|light, rest = mkfs.xfs options
  local name=$1 size=$2 nodes=$3 kind=$4 img=$work/$1.img r=$mnt bs
  shift 4
  truncate -s "$size" "$img"
  mkfs.xfs -q -f "$@" -L "xfs-$name" "$img"
  mount -o loop "$img" "$mnt"
  bs=$(stat -f -c %S "$mnt")
  populate_common "$mnt" "$nodes" link
  ln "$r/tiny" "$r/hardlink1"; ln "$r/tiny" "$r/short/hardlink2"
  # freed data blocks (holes in the directory's data space) and stale hash entries
  for i in $(seq 100 900); do rm "$r/node/a_rather_longer_node_directory_entry_name_$i"; done
  for i in $(seq 1 2 399); do rm "$r/leaf/leaf_entry_name_$i"; done
  cp --reflink=always "$r/big.txt" "$r/reflinked.txt" # shared extents
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$r/socket"
  # sparse: leading hole, data islands, trailing hole
  truncate -s 10M "$r/sparse"
  printf 'middle' | dd of="$r/sparse" bs=1 seek=3000000 conv=notrunc status=none
  printf 'end' | dd of="$r/sparse" bs=1 seek=8000000 conv=notrunc status=none
  # unwritten extents, partly written
  xfs_io -f -c "falloc 0 1m" -c "pwrite -S 0x61 200000 5000" "$r/prealloc" >/dev/null
  xfs_io -f -c "falloc -k 0 256k" -c "pwrite -S 0x62 0 1000" "$r/prealloc_beyond_eof" >/dev/null
  # btree-format data forks: every other block written (a unique tag, then a byte pattern whose short period
  # keeps the gzip size small)
  python3 - "$r/fragmented" "$r/fragmented_more" "$([ "$kind" = full ] && echo 6000 || echo 0)" <<'PY'
import sys
for path, count, length in ((sys.argv[1], 300, 4096), (sys.argv[2], int(sys.argv[3]), 16)):
    with open(path, "wb") as f:
        for i in range(count):
            f.seek(2 * i * 4096)
            f.write((b"blk%06d" % i) + bytes([i % 7 + 1]) * (length - 9))
PY
  # xattrs
  : > "$r/xattr_short"
  setfattr -n user.a -v 1 "$r/xattr_short"
  setfattr -n user.empty "$r/xattr_short"
  setfattr -n trusted.t -v trustme "$r/xattr_short"
  setfattr -n security.s -v secret "$r/xattr_short"
  : > "$r/xattr_leaf"
  for i in $(seq 1 10); do setfattr -n "user.attr_$i" -v "$(filler 100 a$i)" "$r/xattr_leaf"; done
  setfattr -n user.big -v "$(filler 1500 big)" "$r/xattr_leaf"
  : > "$r/xattr_remote"
  setfattr -n user.remote -v "$(filler 20000 rem)" "$r/xattr_remote"
  setfattr -n user.remote_max -v "$(filler 65536 max)" "$r/xattr_remote"
  setfattr -n user.local -v small "$r/xattr_remote"
  : > "$r/xattr_node"
  for i in $(seq 1 "$([ "$kind" = full ] && echo 600 || echo 150)"); do setfattr -n "user.many_attribute_name_$i" -v "$(filler 40 v$i)" "$r/xattr_node"; done
  setfattr -n user.dirattr -v "on a dir" "$r/short"
  setfattr -h -n trusted.onlink -v "on a link" "$r/link_local"
  # POSIX ACLs (no setfacl here: the xattr form is user::rw- user:1000:r-- group::r-- mask::r-- other::r--)
  : > "$r/acl_file"; mkdir "$r/acl_dir"
  acl=0x02000000 # version 2, then (tag u16, perm u16, id u32) little-endian
  acl+=01000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000400ffffffff
  setfattr -n system.posix_acl_access -v "$acl" "$r/acl_file"
  setfattr -n system.posix_acl_default -v "$acl" "$r/acl_dir"
  if [ "$kind" = full ]; then
  # a btree-format directory: fragment all free space into single blocks, then grow a directory of hard
  # links (no new inodes needed) so each of its blocks is its own extent.
  mkdir "$r/btree"
  for i in $(seq 0 19); do : > "$r/btree_target_$i"; done
  free=$(df -B"$bs" --output=avail "$r" | tail -1)
  xfs_io -f -c "falloc 0 $(( (free - 64) * bs ))" "$r/fill" >/dev/null || true
  blocks=$(( $(stat -c %s "$r/fill") / bs ))
  args=(); for i in $(seq 0 2 $((blocks - 1))); do args+=(-c "fpunch $((i * bs)) $bs"); done
  xfs_io "${args[@]}" "$r/fill" >/dev/null
  for i in $(seq 1 1500); do ln "$r/btree_target_$((i % 20))" "$r/btree/$(printf 'b%.0s' $(seq 1 180))_$i"; done
  rm "$r/fill"
  fi
  umount "$mnt"
  # The log still holds every transaction of the fill, and any formatted log costs tens of KiB gzipped:
  # zero it. The volume was unmounted cleanly, so nothing is lost, but it must now be mounted with
  # norecovery (the kernel's LSN checks reject a zeroed log otherwise).
  local logstart logblocks logbyte
  logstart=$(xfs_db -r -c "sb 0" -c "print logstart" "$img" | awk '{print $3}')
  logblocks=$(xfs_db -r -c "sb 0" -c "print logblocks" "$img" | awk '{print $3}')
  logbyte=$(xfs_db -r -c "convert fsb $logstart byte" "$img" | sed 's/.*(\([0-9]*\)).*/\1/')
  dd if=/dev/zero of="$img" bs="$bs" seek=$((logbyte / bs)) count="$logblocks" conv=notrunc status=none
  gzip -9 -n -c "$img" > "$out/$name.img.gz"
}
kernel_image v5 96M 3000 full -d agcount=4
# 1 KiB blocks with 8 KiB directory blocks (each spanning several extents), 2 inodes per block, classic
# 32-bit timestamps and 64-bit extent counters (no btree directory: building one takes minutes here).
kernel_image v5-1k 48M 1100 light -b size=1024 -n size=8192 -i size=512,nrext64=1 -m bigtime=0 -d agcount=2

# ---- v4 via protofile (tree in a plain directory) ----
src=$work/src
mkdir "$src"
populate_common "$src" 1000 file
chmod -t "$src/modes/m1777" "$src/modes/sticky_dir" # protofiles cannot express the sticky bit
img4=$work/v4.img
truncate -s 48M "$img4"
proto=$work/proto
{
  echo /dev/null; echo 0 0; echo 'd--755 0 0'
  (cd "$src" && python3 "$here/proto.py")
  echo '$'
} > "$proto"
mkfs.xfs -q -f -m crc=0 -b size=1024 -n size=4096,ftype=0 -i size=256 -d agcount=3 -L fixture-v4 -p "$proto" "$img4"
# Protofiles carry no xattrs: xfs_db's attr_set (libxfs, the kernel's own code) adds them, each value
# being n bytes of 'v'. v4-xattrs.txt lists them (path, Linux name, length) for the test.
manifest=$out/v4-xattrs.txt
: > "$manifest"
v4_attr() { # $1 = path, $2 = namespace (user|trusted|security), $3 = name, $4 = length
  local flag=-u
  [ "$2" = trusted ] && flag=-r
  [ "$2" = security ] && flag=-s
  xfs_db -x -c "path $1" -c "attr_set $flag -n $3 -v $4" "$img4" >/dev/null
  echo "$1 $2.$3 $4" >> "$manifest"
}
v4_attr /tiny user user1 10; v4_attr /tiny trusted tr 5; v4_attr /tiny security sec 3
for i in $(seq 1 8); do v4_attr /short/f1 user "leaf_$i" 60; done
for i in $(seq 1 60); do v4_attr /short/f2 user "node_attribute_$i" 50; done
# (no remote value: xfs_db 6.1 attr_set crashes on one here)
v4_attr /short/f3 user small 4
v4_attr /short user d 7
gzip -9 -n -c "$img4" > "$out/v4.img.gz"
tar -C "$src" --numeric-owner -czf "$out/v4-src.tar.gz" .
ls -l "$out"/*.gz "$manifest"
