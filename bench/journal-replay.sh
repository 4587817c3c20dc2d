#!/usr/bin/env bash
# Time from mount to a listed root on a crash-consistent snapshot whose ext4 journal is full (128 MiB,
# filled through a data=journal mount with fsync'd writes): our vmdkmount, which replays the journal in
# memory, against the kernel's read-write loop mount of a writable copy, which replays it in place (the
# copy itself is not timed). Cold page cache for every run; best of ROUNDS (default 3) interleaved
# rounds. Prints both times, the ratio ours/kernel (goal: at most 1.5) and our daemon's peak memory
# (VmHWM) next to the journal's size (goal: under the journal plus 64 MiB).
# The XFS log is detected but not replayed yet, so XFS has no row here.
# Needs root (loop mounts, drop_caches), fuse3, e2fsprogs and bc.
# Usage: bench/journal-replay.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /var/tmp/journal-replay.XXXXXX)}
mkdir -p "$work"
go build -o "$work/bin/" ./cmd/vmdkmount
ours=$work/bin/vmdkmount
live=$work/live ours_m=$work/ours kern_m=$work/kernel
mkdir -p "$live" "$ours_m" "$kern_m"
cleanup() {
	"$ours" umount "$ours_m" 2>/dev/null || true
	for m in "$kern_m" "$live"; do mountpoint -q "$m" && umount "$m"; done
	true
}
trap cleanup EXIT

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }

img=$work/live.img snap=$work/snap.img
if [ ! -f "$snap" ]; then
	echo "making the snapshot: 2 GiB ext4, 128 MiB journal, data=journal, fsync'd writes…" >&2
	rm -f "$img"
	truncate -s 2G "$img"
	mke2fs -q -F -t ext4 -J size=128 "$img"
	mount -o loop,data=journal "$img" "$live"
	mkdir "$live/d"
	# About 150 MiB of data through the journal (more than it holds: it stays full), file by file, each fsync'd, then the directory.
	for i in $(seq 1 600); do
		head -c 262144 /dev/urandom >"$live/d/f$i"
		sync -d "$live/d/f$i" 2>/dev/null || python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)" "$live/d/f$i"
	done
	python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)" "$live/d"
	cp --sparse=always "$img" "$snap" # while mounted: the snapshot of a running guest
	umount "$live"
	rm -f "$img"
fi
dumpe2fs -h "$snap" 2>/dev/null | grep -q needs_recovery || { echo "the snapshot's journal needs no recovery" >&2; exit 1; }
"$ours" list "$snap" 2>&1 | grep -o 'ext4 journal replayed.*' >&2 || true

rounds=${ROUNDS:-3}
ours_t=() kern_t=() hwm=0
run_ours() {
	drop
	local s e pid h
	s=$(now)
	"$ours" "$snap" "$ours_m" 2>/dev/null
	ls "$ours_m/disk" >/dev/null
	e=$(now)
	pid=$(pgrep -f -- "[ ]$ours_m\$" | head -1)
	h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	[ "$h" -gt "$hwm" ] && hwm=$h
	"$ours" umount "$ours_m"
	ours_t+=("$(echo "$e - $s" | bc)")
}
run_kernel() {
	cp --sparse=always "$snap" "$work/judge.img"
	drop
	local s e
	s=$(now)
	mount -o loop,noatime "$work/judge.img" "$kern_m"
	ls "$kern_m" >/dev/null
	e=$(now)
	umount "$kern_m"
	rm -f "$work/judge.img"
	kern_t+=("$(echo "$e - $s" | bc)")
}
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then run_ours; run_kernel; else run_kernel; run_ours; fi
done
o=$(minof "${ours_t[@]}") k=$(minof "${kern_t[@]}")
printf 'mount to listed root, cold cache, best of %d: kernel %.3fs  ours %.3fs  ratio ours/kernel %.2f\n' \
	"$rounds" "$k" "$o" "$(echo "$o / $k" | bc -l)"
printf 'daemon peak memory (VmHWM): %d MiB; journal 128 MiB; goal under %d MiB\n' $((hwm / 1024)) $((128 + 64))
