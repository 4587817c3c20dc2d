#!/bin/bash
# Builds the FAT12/16/32 and exFAT fixtures with real tools: mkfs.vfat + mtools for FAT (no kernel
# vfat mount needed), mkfs.exfat + exfat-fuse on a loop device for exFAT (needs root).
# Output: fat12.img.gz fat16.img.gz fat32.img.gz exfat.img.gz next to this script.
set -euo pipefail
cd "$(dirname "$0")"
export MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8 TZ=UTC
work=$(mktemp -d)
trap 'umount "$work/mnt" 2>/dev/null || true; [ -n "${loop:-}" ] && losetup -d "$loop"; rm -rf "$work"' EXIT

# stage builds the common tree in $1 with fixed timestamps.
stage() {
	local d=$1
	mkdir -p "$d"
	: >"$d/empty.txt"
	printf 'hello, FAT\n' >"$d/short.txt"
	printf 'long name\n' >"$d/A long file name with spaces.text"
	printf 'unicode\n' >"$d/Ünïcødé — 日本語.txt"
	# mtools 4.0.32 writes only the low 16 bits of non-BMP characters, so FAT images get placeholders
	# that patch_surrogates replaces with real UTF-16 surrogate pairs.
	printf 'surrogates\n' >"$d/emoji-${EMOJI1:-😀}-${EMOJI2:-𝄞}.txt"
	printf 'mixed\n' >"$d/MiXeD.Txt"
	printf 'lower\n' >"$d/lower.txt"
	mkdir -p "$d/deep/a/b/c/d/e/f/g/h/i/j"
	printf 'deep leaf\n' >"$d/deep/a/b/c/d/e/f/g/h/i/j/leaf.txt"
	mkdir -p "$d/emptydir" "$d/Hidden Dir"
	printf 'in hidden dir\n' >"$d/Hidden Dir/inside.txt"
	printf 'read only\n' >"$d/readonly.txt"
	printf 'hidden\n' >"$d/hidden.txt"
	printf 'system\n' >"$d/system.sys"
	# A file with runs of zeros between data (FAT has no sparse files; the zeros are stored).
	{ printf 'start'; head -c 70000 /dev/zero; printf 'middle'; head -c 40000 /dev/zero; printf 'end'; } >"$d/zeros.bin"
	# A many-cluster file, compressible but not uniform.
	seq 1 30000 >"$d/big.txt"
	find "$d" -exec touch -h -d '2021-03-04 05:06:07' {} +
	touch -d '1999-12-31 23:59:58' "$d/short.txt"
	touch -d '2038-02-03 04:05:06' "$d/lower.txt"
}

# fat builds one FAT image: $1 name, $2 size in KiB, $3 FAT bits, $4 files in the big directory,
# $5 optional logical sector size.
fat() {
	local img=$work/$1.img src=$work/src-$1
	EMOJI1=XX EMOJI2=YY stage "$src"
	mkfs.vfat -F "$3" ${5:+-S "$5" -s 1} -n "FAT$3 TEST" -i 1234ABCD -C "$img" "$2" >/dev/null
	# Fragment the free space first so big.txt gets a chain with several runs.
	for i in 1 2 3 4 5 6; do head -c 3000 /dev/zero | tr '\0' "$i" >"$work/frag$i"; mcopy -i "$img" "$work/frag$i" ::/; done
	mdel -i "$img" ::/frag2 ::/frag4 ::/frag6
	mcopy -s -m -i "$img" "$src"/* ::/
	mdel -i "$img" ::/frag1 ::/frag3 ::/frag5
	mattrib -i "$img" +r ::/readonly.txt
	mattrib -i "$img" +h ::/hidden.txt
	mattrib -i "$img" +s ::/system.sys
	mattrib -i "$img" +h "::/Hidden Dir"
	if [ "$4" -gt 0 ]; then
		mkdir -p "$work/many-$1/many"
		# Distinct leading digits keep mtools' alias generation (~1) fast.
		for i in $(seq -w 1 "$4"); do printf '%d\n' "$((10#$i))" >"$work/many-$1/many/${i} file with a long name.txt"; done
		find "$work/many-$1" -exec touch -d '2022-06-07 08:09:10' {} +
		mcopy -s -m -i "$img" "$work/many-$1/many" ::/
		# Deleted entries inside a big directory.
		mdel -i "$img" "::/many/$(printf %0${#4}d 7) file with a long name.txt" "::/many/$(printf %0${#4}d 100) file with a long name.txt"
	fi
	patch_surrogates "$img"
	gzip -9n <"$img" >"$1.img.gz"
}

# patch_surrogates rewrites the long name emoji-XX-YY.txt in the root directory to emoji-😀-𝄞.txt:
# same length in UTF-16 units, so the slots and the checksum stay valid.
patch_surrogates() {
	python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
offs = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
# Slot 1 of the long name holds its first 13 units, "emoji-XX-YY.t"; it may sit in another cluster
# than the short entry when the directory is fragmented, so it is found by content.
slot = d.find(b'\x01e\x00m\x00o\x00j\x00i\x00\x0f')
assert slot > 0 and slot % 32 == 0 and d.find(b'\x01e\x00m\x00o\x00j\x00i\x00\x0f', slot + 1) < 0
name = ''.join(chr(d[slot + o] | d[slot + o + 1] << 8) for o in offs)
assert name.startswith('emoji-XX-YY'), repr(name)
for k, unit in zip((6, 7, 9, 10), (0xD83D, 0xDE00, 0xD834, 0xDD1E)):
    d[slot + offs[k]], d[slot + offs[k] + 1] = unit & 0xFF, unit >> 8
open(p, 'wb').write(d)
PY
}

fat fat12 2048 12 0
fat fat16 16384 16 300
fat fat32 36864 32 3000
fat fat16-4k 20480 16 0 4096

# exFAT through exfat-fuse on a loop device.
img=$work/exfat.img
truncate -s 8M "$img"
mkfs.exfat -L "exFAT Test" -c 4K "$img" >/dev/null
loop=$(losetup -f --show "$img")
mkdir "$work/mnt"
mount.exfat-fuse "$loop" "$work/mnt"
m=$work/mnt
for i in 1 2 3 4 5 6; do head -c 5000 /dev/zero | tr '\0' "$i" >"$m/frag$i"; done
rm "$m/frag2" "$m/frag4" "$m/frag6"
stage "$work/src-exfat"
cp -a "$work/src-exfat/." "$m/"
rm "$m/frag1" "$m/frag3" "$m/frag5"
mkdir "$m/many"
for i in $(seq 1 1000); do printf '%d\n' "$i" >"$m/many/entry $i"; done
rm "$m/many/entry 7" "$m/many/entry 500"
# A file grown by truncate: exfat-fuse may leave its valid data length short of its size.
printf 'grown' >"$m/grown.bin"
truncate -s 300000 "$m/grown.bin"
find "$m" -exec touch -h -d '2021-03-04 05:06:07.25' {} +
touch -d '2038-02-03 04:05:06.5' "$m/lower.txt"
umount "$m"
losetup -d "$loop"
loop=
fsck.exfat -n "$img" >/dev/null # the volume exfat-fuse left must be consistent
gzip -9n <"$img" >exfat.img.gz
ls -l ./*.img.gz
