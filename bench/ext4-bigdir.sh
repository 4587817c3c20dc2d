#!/usr/bin/env bash
# Listing a directory of 1,048,574 entries (ENTRIES to change) on an ext4 image: `ls -f` through our
# mount (vmdkmount DISK disk MNT, which streams the directory: fsys.DirStreamer) against the kernel's
# loop mount of the same image, cold cache, best of ROUNDS (default 3) interleaved runs. Prints both
# times, the ratio ours/kernel (the goal: at most 2), and the daemon's peak resident size (VmHWM) after
# the listings (the goal: under 200 MiB), then the same for `ls -l` when LONG=1. LINEAR=1 measures a
# copy of the image with dir_index turned off (tune2fs), so both sides look names up by scanning the
# directory blocks (the kernel from where its last lookup there stopped), as in directories mke2fs -d made.
# Needs root (loop mounts, drop_caches), fuse3, e2fsprogs, python3, bc.
# Usage: bench/ext4-bigdir.sh [WORKDIR]   (the image is kept in WORKDIR and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /var/tmp/ext4-bigdir.XXXXXX)}
mkdir -p "$work"
go build -o "$work/bin/" ./cmd/vmdkmount
ours=$work/bin/vmdkmount
n=${ENTRIES:-1048574}
img=$work/bigdir-$n.img
k=$work/k m=$work/m
mkdir -p "$k" "$m"
cleanup() { "$ours" umount "$m" 2>/dev/null || true; mountpoint -q "$k" && umount "$k" || true; }
trap cleanup EXIT

if [ ! -f "$img" ]; then
	echo "building the image: $n empty files in one directory, made by the kernel (a few minutes)…" >&2
	mke2fs -q -F -t ext4 -O ^has_journal -N $((n + 1000)) "$img.tmp" $((n / 1000 * 3 / 2 + 256))M
	mount -o loop "$img.tmp" "$k"
	mkdir "$k/big"
	python3 - "$k/big" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
fd = os.open(d, os.O_RDONLY)
for i in range(n):
    os.close(os.open("file-%07d-%08x" % (i, (i * 2654435761) % (1 << 32)), os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
PY
	umount "$k"
	mv "$img.tmp" "$img"
fi

if [ "${LINEAR:-0}" = 1 ]; then
	[ -f "$img.linear" ] || { cp "$img" "$img.linear.tmp" && tune2fs -O ^dir_index "$img.linear.tmp" >/dev/null && mv "$img.linear.tmp" "$img.linear"; }
	img=$img.linear
fi

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
minof() { printf '%s\n' "$@" | sort -g | head -1; }
hwm() { awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

mount -o loop,ro,noatime "$img" "$k"
"$ours" "$img" disk "$m"
pid=$(pgrep -f -- "[ ]$m\$" | head -1)
[ -n "$pid" ] || { echo "no daemon serving $m" >&2; exit 1; }

count() { ls -f "$1/big" | grep -cvx "\.\{1,2\}"; } # "." and "..": the kernel lists them, a FUSE daemon need not
kc=$(count "$k") oc=$(count "$m")
[ "$kc" = "$oc" ] || { echo "listings differ: kernel $kc names, ours $oc" >&2; exit 1; }

bench() { # $1: label, then the ls options
	local label=$1 kt=() ot=() i
	shift
	for i in $(seq "${ROUNDS:-3}"); do
		drop
		if [ $((i % 2)) = 1 ]; then kt+=("$(secs ls "$@" "$k/big")"); drop; ot+=("$(secs ls "$@" "$m/big")")
		else ot+=("$(secs ls "$@" "$m/big")"); drop; kt+=("$(secs ls "$@" "$k/big")"); fi
	done
	local kb ob
	kb=$(minof "${kt[@]}") ob=$(minof "${ot[@]}")
	printf '%s (%s names): kernel %.2fs  ours %.2fs  ratio ours/kernel %.2f  daemon peak RSS %s MiB\n' \
		"$label" "$kc" "$kb" "$ob" "$(echo "$ob / $kb" | bc -l)" "$(hwm "$pid")"
}
bench "ls -f" -f
if [ "${LONG:-0}" = 1 ]; then bench "ls -l" -l; fi
