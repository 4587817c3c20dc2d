#!/bin/bash
# make.sh: rebuild the ISO9660 fixtures from the tree ../squashfs/mktree.sh builds. Run as root.
#   tree-xorriso.iso.gz     xorriso -as mkisofs -R -J: Rock Ridge 1.10 PX (no serial numbers), Joliet
#   tree-rrip112.iso.gz     xorriso native, -compliance new_rr -hardlinks on: PX serials shared by hard links
#   tree-genisoimage.iso.gz genisoimage -R -J: Rock Ridge 1.10, deep-directory relocation (CL/PL/RE)
#                           (without the fifo, socket and the 150-component symlink: genisoimage hangs on them)
#   small-rr.iso.gz         genisoimage -R with an El Torito boot record: a few entries of each kind and one
#                           relocated directory, for fuzzing
#   small-zisofs.iso.gz     xorriso native with the zisofs filter (Rock Ridge ZF, transparently compressed)
#   small-joliet.iso.gz     Joliet without Rock Ridge (genisoimage; xorriso always adds Rock Ridge)
#   small-plain.iso.gz      plain ISO9660 level 1 names (genisoimage)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/../squashfs/mktree.sh" "$tmp/src"
xorriso -as mkisofs -quiet -R -J -V TREE_XORRISO -o "$tmp/tree-xorriso.iso" "$tmp/src"
xorriso -report_about SORRY -compliance new_rr -hardlinks on -joliet on -volid TREE_RRIP112 \
	-outdev "$tmp/tree-rrip112.iso" -map "$tmp/src" / 2>/dev/null

cp -a "$tmp/src" "$tmp/geniso"
rm -f "$tmp/geniso/dev/fifo" "$tmp/geniso/dev/socket" "$tmp/geniso/long-target"
touch -d '2021-06-15 12:34:56.123456789 UTC' "$tmp/geniso" "$tmp/geniso/dev"
timeout 120 genisoimage -quiet -input-charset utf-8 -R -J -joliet-long -V TREE_GENISO \
	-o "$tmp/tree-genisoimage.iso" "$tmp/geniso"

mkdir -p "$tmp/small/Sub Dir" "$tmp/small/deep/a/b/c"
printf 'joliet and plain\n' > "$tmp/small/ReadMe.TXT"
printf 'unicode\n' > "$tmp/small/Sub Dir/Ünïcødé name.txt"
printf 'three\n' > "$tmp/small/deep/a/b/c/file.dat"
printf 'noext\n' > "$tmp/small/NOEXT"
find "$tmp/small" -exec touch -d "2010-03-04 05:06:07 UTC" {} +
genisoimage -quiet -input-charset utf-8 -J -V SMALL_JOLIET -o "$tmp/small-joliet.iso" "$tmp/small"
genisoimage -quiet -input-charset utf-8 -V SMALL_PLAIN -o "$tmp/small-plain.iso" "$tmp/small"

mkdir -p "$tmp/rr/d1/d2/d3/d4/d5/d6/d7/d8/d9"
printf 'nine deep\n' > "$tmp/rr/d1/d2/d3/d4/d5/d6/d7/d8/d9/f"
printf 'file\n' > "$tmp/rr/file"
ln "$tmp/rr/file" "$tmp/rr/hard"
ln -s ../file "$tmp/rr/d1/up-link"
ln -s /a/b/../c "$tmp/rr/abs"
mknod "$tmp/rr/blk" b 7 0
chmod 4711 "$tmp/rr/file"
chown 7:8 "$tmp/rr/hard"
head -c 2048 /dev/zero > "$tmp/rr/boot.img"
find "$tmp/rr" -exec touch -h -d "2015-05-05 05:05:05 UTC" {} +
genisoimage -quiet -input-charset utf-8 -R -V SMALL_RR -b boot.img -c boot.cat -no-emul-boot \
	-boot-load-size 4 -o "$tmp/small-rr.iso" "$tmp/rr"

mkdir -p "$tmp/zf/sub"
head -c 300000 < <(yes 'zisofs compressible line') > "$tmp/zf/big.txt"
truncate -s 200000 "$tmp/zf/sub/holes"
head -c 100 < <(yes tail) >> "$tmp/zf/sub/holes"
printf 'too small to compress\n' > "$tmp/zf/small.txt"
find "$tmp/zf" -exec touch -h -d "2012-12-12 12:12:12 UTC" {} +
xorriso -report_about SORRY -compliance new_rr -volid SMALL_ZISOFS -outdev "$tmp/small-zisofs.iso" \
	-map "$tmp/zf" / -set_filter_r --zisofs / -- 2>/dev/null

for f in small-rr small-zisofs tree-xorriso tree-rrip112 tree-genisoimage small-joliet small-plain; do
	gzip -9 -n -c "$tmp/$f.iso" > "$here/$f.iso.gz"
done
ls -l "$here"
