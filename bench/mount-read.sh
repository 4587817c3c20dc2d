#!/usr/bin/env bash
# Side-by-side timings of the mount, printing ratios (peer time / our time: above 1 means we are faster).
#  1. Sequential read of raw/disk of a 2 GiB monolithicSparse and streamOptimized disk: our vmdkmount
#     against libvmdk's vmdkmount (Debian libvmdk-utils) and against cat of the raw image, all with the
#     source files in the page cache (the tools are timed, not the disk).
#  2. Cold-cache walk-and-read of every file of an ext4 and an NTFS volume holding a copy of /usr/share:
#     through our mount, against the kernel's loop mount of the raw image, ntfs-3g, and the kernel over
#     libvmdk's FUSE file (how vmware-mount works).
#  3. The daemon's peak memory (VmHWM) while reading a 2 TiB sparse disk.
# Needs root (loop mounts, drop_caches), fuse3, qemu-utils, libvmdk-utils, ntfs-3g, openssl, bc.
# Usage: bench/mount-read.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
go build -o "$work/bin/" ./cmd/...
ours=$work/bin/vmdkmount
libvmdk=/usr/bin/vmdkmount
m1=$work/m1 m2=$work/m2
mkdir -p "$m1" "$m2"
cleanup() { "$ours" umount "$m1" 2>/dev/null || true; fusermount3 -u "$m2" 2>/dev/null || umount "$m2" 2>/dev/null || true; }
trap cleanup EXIT

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
ratio() { echo "$1 / $2" | bc -l; }
# CPU seconds used so far by the FUSE daemon serving mount point $1 (a steadier figure than wall time
# on a busy machine); "-" for the kernel.
cpuof() {
	local p
	p=$(pgrep -f -- "[ ]$1\$" | head -1)
	if [ -n "$p" ]; then awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$p/stat"; else echo -; fi
}
waitfile() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; return 1; }
rnd() { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null | head -c "$2" || true; }

echo "== 1. sequential read of raw/disk (2 GiB)"
src=$work/src2g.raw
if [ ! -f "$src" ]; then
	truncate -s 2G "$src"
	for i in $(seq 0 31); do
		off=$((i * 64 << 20))
		case $((i % 4)) in
		0) rnd "b$i" $((64 << 20)) | dd of="$src" oflag=seek_bytes seek=$off conv=notrunc status=none ;;
		1) (yes "block $i: compressible guest text" || true) | head -c $((64 << 20)) | dd of="$src" oflag=seek_bytes seek=$off conv=notrunc status=none ;;
		3) rnd "h$i" $((32 << 20)) | dd of="$src" oflag=seek_bytes seek=$off conv=notrunc status=none ;;
		esac
	done
fi
cat "$src" >/dev/null
tcat=$(secs cat "$src")
printf '%-18s %9s %9s %9s %12s %12s %14s\n' disk "ours s" "libvmdk s" "cat s" "vs libvmdk" "vs cat" "daemon CPU s"
for fmt in monolithicSparse streamOptimized; do
	d=$work/seq-$fmt.vmdk
	[ -f "$d" ] || qemu-img convert -f raw -O vmdk -o subformat=$fmt "$src" "$d"
	# The source file is in the page cache for both (as the raw image is for cat): this times the tools,
	# not the disk. Each mount is fresh, so nothing of raw/disk itself is cached.
	cat "$d" >/dev/null
	"$ours" --raw "$d" "$m1"
	to=$(secs cat "$m1/raw/disk")
	co=$(cpuof "$m1")
	"$ours" umount "$m1"
	"$libvmdk" "$d" "$m2" >/dev/null 2>&1 &
	waitfile "$m2/vmdk1"
	tl=$(secs cat "$m2/vmdk1")
	cl=$(cpuof "$m2")
	fusermount3 -u "$m2" || fusermount -u "$m2"
	wait || true
	printf '%-18s %9.3f %9.3f %9.3f %11.2fx %11.2fx %6s / %-6s\n' "$fmt" "$to" "$tl" "$tcat" "$(ratio "$tl" "$to")" "$(ratio "$tcat" "$to")" "$co" "$cl"
done

echo "== 1b. parallel readers of raw/disk (streamOptimized, source in page cache): throughput against one reader"
d=$work/seq-streamOptimized.vmdk
"$ours" --raw "$d" "$m1"
total=$(stat -c %s "$m1/raw/disk")
one=""
for n in 1 2 4; do
	"$ours" umount "$m1"
	cat "$d" >/dev/null
	"$ours" --raw "$d" "$m1"
	part=$((total / n / 1048576))
	s=$(date +%s.%N)
	for i in $(seq 0 $((n - 1))); do
		dd if="$m1/raw/disk" of=/dev/null bs=1M skip=$((i * part)) count=$part status=none &
	done
	wait
	e=$(date +%s.%N)
	t=$(echo "$e - $s" | bc)
	[ -n "$one" ] || one=$t
	printf '%d readers: %7.3f s, %5.2fx the throughput of one (cores: %d)\n' "$n" "$t" "$(ratio "$one" "$t")" "$(nproc)"
done
"$ours" umount "$m1"

echo "== 2. cold-cache walk and read of /usr/share"
walk() { find "$1" -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true; }
ext=$work/share-ext4.raw
if [ ! -f "$ext" ]; then
	size=$(du -sm /usr/share | cut -f1)
	mkfs.ext4 -q -F -d /usr/share "$ext" "$((size * 3 / 2 + 64))M"
fi
ntfs=$work/share-ntfs.raw
if [ ! -f "$ntfs" ]; then
	size=$(du -sm /usr/share | cut -f1)
	truncate -s "$((size * 2 + 64))M" "$ntfs"
	mkntfs -q -F -f "$ntfs" >/dev/null 2>&1
	ntfs-3g "$ntfs" "$m2"
	cp -a /usr/share/. "$m2/" 2>/dev/null || true
	umount "$m2"
fi
printf '%-8s %9s %9s %12s %14s %s\n' volume "ours s" "peer s" ratio "daemon CPU s" peer
# ext4: kernel loop mount of the raw image, and the kernel over libvmdk's FUSE file of a VMDK of it.
mount -o loop,ro "$ext" "$m2"; drop; tk=$(secs walk "$m2"); umount "$m2"
"$ours" --volume disk "$ext" "$m1"; drop; to=$(secs walk "$m1"); co=$(cpuof "$m1"); "$ours" umount "$m1"
printf '%-8s %9.3f %9.3f %11.2fx %6s / %-6s %s\n' ext4 "$to" "$tk" "$(ratio "$tk" "$to")" "$co" - "kernel loop mount"
extv=$work/share-ext4.vmdk
[ -f "$extv" ] || qemu-img convert -f raw -O vmdk "$ext" "$extv"
"$ours" --volume disk "$extv" "$m1"; drop; to=$(secs walk "$m1"); co=$(cpuof "$m1"); "$ours" umount "$m1"
"$libvmdk" "$extv" "$m2" >/dev/null 2>&1 &
waitfile "$m2/vmdk1"
m3=$work/m3
mkdir -p "$m3"
mount -o loop,ro "$m2/vmdk1" "$m3"; drop; tl=$(secs walk "$m3"); umount "$m3"
cl=$(cpuof "$m2")
fusermount3 -u "$m2" || true
wait || true
printf '%-8s %9.3f %9.3f %11.2fx %6s / %-6s %s\n' ext4 "$to" "$tl" "$(ratio "$tl" "$to")" "$co" "$cl" "kernel over libvmdk vmdkmount (VMDK)"
# NTFS: ntfs-3g on the raw image.
ntfs-3g -o ro "$ntfs" "$m2"; drop; tn=$(secs walk "$m2"); cl=$(cpuof "$m2"); umount "$m2"
"$ours" --volume disk "$ntfs" "$m1"; drop; to=$(secs walk "$m1"); co=$(cpuof "$m1"); "$ours" umount "$m1"
printf '%-8s %9.3f %9.3f %11.2fx %6s / %-6s %s\n' ntfs "$to" "$tn" "$(ratio "$tn" "$to")" "$co" "$cl" "ntfs-3g"

echo "== 3. peak memory of the daemon on a 2 TiB sparse disk"
big=$work/big2t.vmdk
rm -f "$big"
"$work/bin/vmdk" create -t monolithicSparse -s 2047G "$big"
"$ours" -f --raw "$big" "$m1" &
pid=$!
waitfile "$m1/raw/disk"
# Read 1 MiB at 2048 places spread over the whole disk, then a full sequential pass over the first 1 GiB.
for i in $(seq 0 2047); do dd if="$m1/raw/disk" of=/dev/null bs=1M count=1 skip=$((i * 1023)) status=none; done
dd if="$m1/raw/disk" of=/dev/null bs=1M count=1024 status=none
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
"$ours" umount "$m1"
wait $pid || true
echo "peak resident memory: $((hwm / 1024)) MiB (goal: under 100 MiB)"
