#!/usr/bin/env bash
# Time from mount to a listed root on crash-consistent snapshots whose journal or log is full: ext4 with
# a 128 MiB journal (filled through a data=journal mount with fsync'd writes) and XFS with a 64 MiB log
# (filled by creating files, each directory fsync'd). Our vmdkmount, which replays in memory,
# against the kernel's read-write loop mount of a writable copy, which replays in place (the copy itself
# is not timed). Cold page cache for every run; best of ROUNDS (default 3) interleaved rounds. Prints
# both times, the ratio ours/kernel (goal: at most 1.5) and our daemon's peak memory (VmHWM) next to
# the journal's or log's size (goal: under it plus 64 MiB).
# Needs root (loop mounts, drop_caches), fuse3, e2fsprogs, xfsprogs, python3 and bc.
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


fsync() { python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)" "$1"; }

make_ext4() { # $1: snapshot path
	local img=$work/live.img
	rm -f "$img"
	truncate -s 2G "$img"
	mke2fs -q -F -t ext4 -J size=128 "$img"
	mount -o loop,data=journal "$img" "$live"
	mkdir "$live/d"
	# About 150 MiB of data through the journal (more than it holds: it stays full), file by file,
	# each fsync'd, then the directory.
	for i in $(seq 1 600); do
		head -c 262144 /dev/urandom >"$live/d/f$i"
		fsync "$live/d/f$i"
	done
	fsync "$live/d"
	cp --sparse=always "$img" "$1.part" # while mounted: the snapshot of a running guest
	umount "$live"
	rm -f "$img"
	[[ $(dumpe2fs -h "$1.part" 2>/dev/null) == *needs_recovery* ]] || { echo "the ext4 snapshot needs no recovery" >&2; exit 1; }
	mv "$1.part" "$1"
}

make_xfs() { # $1: snapshot path
	local img=$work/live.img
	rm -f "$img"
	truncate -s 2G "$img"
	mkfs.xfs -q -f -l size=64m "$img"
	mount -o loop "$img" "$live"
	# 60000 files in 60 directories: far more metadata than the log holds, so it stays full.
	python3 - "$live" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(60):
    p = os.path.join(root, "d%02d" % d)
    os.mkdir(p)
    for i in range(1000):
        with open(os.path.join(p, "f%04d" % i), "w") as f:
            f.write("x" * 100)
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)  # forces the log; what is in place stays as the AIL left it
    os.close(fd)
PY
	cp --sparse=always "$img" "$1.part"
	umount "$live"
	rm -f "$img"
	[[ $(xfs_logprint -t "$1.part" 2>/dev/null) == *DIRTY* ]] || { echo "the XFS snapshot's log is clean" >&2; exit 1; }
	mv "$1.part" "$1"
}

rounds=${ROUNDS:-3}
bench() { # $1: name, $2: snapshot, $3: journal MiB, $4: kernel mount options
	local snap=$2 opts=$4 ours_t=() kern_t=() hwm=0 r
	"$ours" list "$snap" 2>&1 | grep -o 'journal replayed.*\|log replayed.*' >&2 || true
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
		mount -o "loop,noatime$opts" "$work/judge.img" "$kern_m"
		ls "$kern_m" >/dev/null
		e=$(now)
		umount "$kern_m"
		rm -f "$work/judge.img"
		kern_t+=("$(echo "$e - $s" | bc)")
	}
	for r in $(seq 1 "$rounds"); do
		if [ $((r % 2)) -eq 1 ]; then run_ours; run_kernel; else run_kernel; run_ours; fi
	done
	local o k
	o=$(minof "${ours_t[@]}") k=$(minof "${kern_t[@]}")
	printf '%s: mount to listed root, cold cache, best of %d: kernel %.3fs  ours %.3fs  ratio ours/kernel %.2f\n' \
		"$1" "$rounds" "$k" "$o" "$(echo "$o / $k" | bc -l)"
	printf '%s: daemon peak memory (VmHWM) %d MiB; %d MiB journal; goal under %d MiB\n' "$1" $((hwm / 1024)) "$3" $(($3 + 64))
}

[ -f "$work/ext4.img" ] || { echo "making the ext4 snapshot…" >&2; make_ext4 "$work/ext4.img"; }
[ -f "$work/xfs.img" ] || { echo "making the XFS snapshot…" >&2; make_xfs "$work/xfs.img"; }
bench ext4 "$work/ext4.img" 128 ""
bench xfs "$work/xfs.img" 64 ",nouuid"
