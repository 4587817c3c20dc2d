#!/usr/bin/env bash
# Side-by-side timings of the mount, printing ratios (peer time / our time: above 1 means we are faster).
#  1. Sequential read of raw/disk of a 2 GiB monolithicSparse and streamOptimized disk: our vmdkmount
#     against libvmdk's vmdkmount (Debian libvmdk-utils) and against cat of the raw image, all with the
#     source files in the page cache (the tools are timed, not the disk). Beside them, the FUSE floor:
#     bench/fusefloor, a daemon with our mount options whose reads do no work at all. No FUSE daemon
#     here can read faster than it, so libvmdk's time over the floor's is the best ratio any could reach.
#  2. Cold-cache walk-and-read of every file of an ext4 and an NTFS volume holding a copy of /usr/share:
#     through our mount, against the kernel's loop mount of the raw image, ntfs-3g, and the kernel over
#     libvmdk's FUSE file (how vmware-mount works).
#  3. The daemon's peak memory (VmHWM) while reading a 2 TiB sparse disk.
# Every timing is the best of several rounds in which the tools take turns (ROUNDS, default 3, for 1 and
# 1b; WALK_ROUNDS, default 2, for 2): these machines are noisy, and a single run can be off by 2x.
# Needs root (loop mounts, drop_caches), fuse3, qemu-utils, libvmdk-utils, ntfs-3g, openssl, bc, python3
# and taskset.
# Usage: bench/mount-read.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
go build -o "$work/bin/" ./cmd/... ./bench/fusefloor
ours=$work/bin/vmdkmount
libvmdk=/usr/bin/vmdkmount
m1=$work/m1 m2=$work/m2
mkdir -p "$m1" "$m2"
cleanup() { "$ours" umount "$m1" 2>/dev/null || true; fusermount3 -u "$m2" 2>/dev/null || umount "$m2" 2>/dev/null || true; }
trap cleanup EXIT

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
ratio() { echo "$1 / $2" | bc -l; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }
# CPU seconds used so far by the FUSE daemon serving mount point $1 (a steadier figure than wall time
# on a busy machine); "-" for the kernel.
cpuof() {
	local p
	p=$(pgrep -f -- "[ ]$1\$" | head -1)
	if [ -n "$p" ]; then awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$p/stat"; else echo -; fi
}
waitfile() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; return 1; }
rnd() { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null | head -c "$2" || true; }
# warm touches 3 GiB of anonymous memory and frees it just before a timed run. On a virtual machine whose
# balloon takes free memory back from the guest, the first write to a page costs a trip to the host,
# and whichever tool ran first after an idle spell paid for it (one run measured 4.5 s of our daemon's
# CPU where the next took 0.9 s). After this, every tool fills its page cache from memory the host backs.
warm() { python3 -c 'import mmap
m = mmap.mmap(-1, 3 << 30)
for i in range(0, 3 << 30, 4096): m[i] = 1'; }
# Rounds per measure: the tools run in turn (the order alternating between rounds) and each keeps its
# best time, as such noisy machines call for.
rounds=${ROUNDS:-3}

echo "== 1. sequential read of raw/disk (2 GiB), best of $rounds interleaved rounds"
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
# timed_cat FILE MOUNTPOINT: one timed cat of FILE after warm; prints "seconds daemon-CPU" of the daemon
# serving MOUNTPOINT.
timed_cat() {
	warm
	local t
	t=$(secs cat "$1")
	echo "$t $(cpuof "$2")"
}
# One timed sequential read through each tool; prints "seconds daemon-CPU".
seq_ours() {
	"$ours" --raw "$1" "$m1"
	timed_cat "$m1/raw/disk" "$m1"
	"$ours" umount "$m1"
}
seq_libvmdk() {
	"$libvmdk" "$1" "$m2" >/dev/null 2>&1 &
	waitfile "$m2/vmdk1"
	timed_cat "$m2/vmdk1" "$m2"
	fusermount3 -u "$m2" || fusermount -u "$m2"
	wait || true
}
seq_cat() { warm; echo "$(secs cat "$src") -"; }
# floor_up/floor_down mount and unmount the FUSE floor at $m1: a file of the raw image's size at raw/disk.
floor_up() {
	"$@" "$work/bin/fusefloor" "$(($(stat -c %s "$src") >> 20))" "$m1" >/dev/null &
	waitfile "$m1/raw/disk"
}
floor_down() { fusermount3 -u "$m1"; wait || true; }
seq_floor() {
	floor_up
	timed_cat "$m1/raw/disk" "$m1"
	floor_down
}
printf '%-18s %9s %9s %9s %9s %12s %12s %12s %14s\n' disk "ours s" "libvmdk s" "cat s" "floor s" "vs libvmdk" "vs cat" "vs floor" "daemon CPU s"
for fmt in monolithicSparse streamOptimized; do
	d=$work/seq-$fmt.vmdk
	[ -f "$d" ] || qemu-img convert -f raw -O vmdk -o subformat=$fmt "$src" "$d"
	# The source files are in the page cache for every tool (as the raw image is for cat): this times
	# the tools, not the disk. Each mount is fresh, so nothing of raw/disk itself is cached.
	cat "$d" "$src" >/dev/null
	to=() tl=() tc=() tf=() co=() cl=()
	for r in $(seq "$rounds"); do
		if [ $((r % 2)) = 1 ]; then a=$(seq_ours "$d"); b=$(seq_libvmdk "$d"); else b=$(seq_libvmdk "$d"); a=$(seq_ours "$d"); fi
		c=$(seq_cat) f=$(seq_floor)
		to+=("${a% *}") co+=("${a#* }") tl+=("${b% *}") cl+=("${b#* }") tc+=("${c% *}") tf+=("${f% *}")
	done
	bo=$(minof "${to[@]}") bl=$(minof "${tl[@]}") bc=$(minof "${tc[@]}") bf=$(minof "${tf[@]}")
	printf '%-18s %9.3f %9.3f %9.3f %9.3f %11.2fx %11.2fx %11.2fx %6s / %-6s\n' "$fmt" "$bo" "$bl" "$bc" "$bf" \
		"$(ratio "$bl" "$bo")" "$(ratio "$bc" "$bo")" "$(ratio "$bf" "$bo")" "$(minof "${co[@]}")" "$(minof "${cl[@]}")"
	printf '%-18s best ratio any FUSE daemon could reach against libvmdk here (libvmdk / floor): %.2fx\n' "" "$(ratio "$bl" "$bf")"
done

echo "== 1b. parallel readers of raw/disk (streamOptimized, source in page cache), best of $rounds"
# Each of n readers reads its own 1/n of the disk. Throughput against one reader shows whether readers
# get in each other's way; the same readers with the daemon and readers held to one core (taskset) show
# whether the work spreads over the cores: on a machine with c cores, "cores" approaches c when it does.
d=$work/seq-streamOptimized.vmdk
total=$(stat -c %s "$src")
# par KIND N [taskset -c 0]: N readers of KIND's raw/disk (ours: the streamOptimized disk; floor: the
# FUSE floor), the daemon and readers optionally held to one core; prints the seconds.
par() {
	local kind=$1 n=$2
	shift 2
	if [ "$kind" = ours ]; then "$@" "$ours" --raw "$d" "$m1"; else floor_up "$@"; fi
	warm
	local part=$((total / n / 1048576)) s e pids=()
	s=$(date +%s.%N)
	for i in $(seq 0 $((n - 1))); do
		"$@" dd if="$m1/raw/disk" of=/dev/null bs=1M skip=$((i * part)) count=$part status=none &
		pids+=($!)
	done
	wait "${pids[@]}"
	e=$(date +%s.%N)
	if [ "$kind" = ours ]; then "$ours" umount "$m1"; else floor_down; fi
	echo "$e - $s" | bc
}
# The floor's readers show what the kernel side alone allows: when one reader of the floor already keeps
# every core busy, more readers cannot add throughput for any daemon.
printf '%-9s %10s %18s %14s %8s %12s %18s\n' readers "all cores" "vs one reader" "on one core" cores "floor" "floor vs one"
one="" fone=""
for n in 1 2 4; do
	ta=() t1=() tf=()
	for r in $(seq "$rounds"); do
		ta+=("$(par ours "$n")") t1+=("$(par ours "$n" taskset -c 0)") tf+=("$(par floor "$n")")
	done
	a=$(minof "${ta[@]}") b=$(minof "${t1[@]}") f=$(minof "${tf[@]}")
	[ -n "$one" ] || one=$a
	[ -n "$fone" ] || fone=$f
	printf '%-9d %9.3fs %17.2fx %13.3fs %7.2fx %11.3fs %17.2fx\n' "$n" "$a" "$(ratio "$one" "$a")" "$b" "$(ratio "$b" "$a")" "$f" "$(ratio "$fone" "$f")"
done
echo "(cores: $(nproc))"

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
extv=$work/share-ext4.vmdk
[ -f "$extv" ] || qemu-img convert -f raw -O vmdk "$ext" "$extv"
m3=$work/m3
mkdir -p "$m3"
# One cold walk through each reader; prints "seconds daemon-CPU".
walk_kernel() { mount -o loop,ro "$1" "$m2"; drop; echo "$(secs walk "$m2") -"; umount "$m2"; }
walk_ours() {
	"$ours" --volume disk "$1" "$m1"
	drop
	local t
	t=$(secs walk "$m1")
	echo "$t $(cpuof "$m1")"
	"$ours" umount "$m1"
}
walk_libvmdk_kernel() { # the kernel's ext4 over libvmdk's FUSE file, as vmware-mount works
	"$libvmdk" "$1" "$m2" >/dev/null 2>&1 &
	waitfile "$m2/vmdk1"
	mount -o loop,ro "$m2/vmdk1" "$m3"
	drop
	local t
	t=$(secs walk "$m3")
	umount "$m3"
	echo "$t $(cpuof "$m2")"
	fusermount3 -u "$m2" || true
	wait || true
}
walk_ntfs3g() {
	ntfs-3g -o ro "$1" "$m2"
	drop
	local t
	t=$(secs walk "$m2")
	echo "$t $(cpuof "$m2")"
	umount "$m2"
}
# compare NAME PEER-LABEL OURS-IMAGE PEER-FUNCTION PEER-IMAGE: best of walk_rounds interleaved rounds.
walk_rounds=${WALK_ROUNDS:-2}
compare() {
	local to=() tp=() co=() cp=() a b
	for r in $(seq "$walk_rounds"); do
		if [ $((r % 2)) = 1 ]; then a=$(walk_ours "$3"); b=$("$4" "$5"); else b=$("$4" "$5"); a=$(walk_ours "$3"); fi
		to+=("${a% *}") co+=("${a#* }") tp+=("${b% *}") cp+=("${b#* }")
	done
	local bo bp
	bo=$(minof "${to[@]}") bp=$(minof "${tp[@]}")
	printf '%-8s %9.3f %9.3f %11.2fx %6s / %-6s %s\n' "$1" "$bo" "$bp" "$(ratio "$bp" "$bo")" "$(minof "${co[@]}")" "$(minof "${cp[@]}")" "$2"
}
echo "(best of $walk_rounds interleaved rounds)"
printf '%-8s %9s %9s %12s %14s %s\n' volume "ours s" "peer s" ratio "daemon CPU s" peer
compare ext4 "kernel loop mount" "$ext" walk_kernel "$ext"
compare ext4 "kernel over libvmdk vmdkmount (VMDK; ours reads the same VMDK)" "$extv" walk_libvmdk_kernel "$extv"
compare ntfs "ntfs-3g" "$ntfs" walk_ntfs3g "$ntfs"

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
