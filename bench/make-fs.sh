#!/usr/bin/env bash
# Times `vmdk make-fs` against the usual pipeline for the same tree, runs of both taking turns (the load
# of a shared machine then weighs on both alike), and prints the ratios (peer time / our time: above 1
# means vmdk is faster), per run, their median, and best against best:
#   --fs squashfs   vs  mksquashfs -comp gzip -Xcompression-level 6 (our level; its default threads)
#                       + qemu-img convert -O vmdk
#   --fs fat32      vs  truncate + mkfs.vfat -F 32 + mcopy -s -m + qemu-img convert -O vmdk
# Both sides of a comparison read the same input: a copy of SRC (default /usr/share) from which what
# `vmdk make-fs --skip-unsupported` reports it leaves out (symlinks and names FAT32 cannot hold; special
# files) is deleted first, and listed. Then vmdk builds without --skip-unsupported, so nothing is
# silently left out. The sizes the two VMDKs take on disk are printed too, and the CPU seconds (user +
# system) of each side: on a busy machine their ratio says more than the wall times.
# Usage: bench/make-fs.sh   (needs qemu-utils, squashfs-tools, dosfstools, mtools, bc)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SRC=${SRC:-/usr/share}
work=$(mktemp -d /var/tmp/make-fs.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vmdk" ./cmd/vmdk
export MTOOLS_SKIP_CHECK=1
shopt -s dotglob

# input FS: a copy of SRC holding only what vmdk's FS writer takes; says what it removed.
input() {
	local fs=$1 dir=$work/in-$1 round n
	cp -a "$SRC" "$dir"
	for round in 1 2 3; do # removing a link target can leave another link dangling
		rm -f "$work/probe.raw"
		"$work/vmdk" make-fs --fs "$fs" -t raw --skip-unsupported "$dir" "$work/probe.raw" 2>&1 >/dev/null |
			sed -n 's/^left out \(.*\): \(.*\)$/\1\t\2/p' >"$work/left-$fs.$round"
		n=$(wc -l <"$work/left-$fs.$round")
		[ "$n" = 0 ] && break
		echo "$fs: removed $n entries from the copy that the writer cannot hold, e.g.:" >&2
		cut -f2 "$work/left-$fs.$round" | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -5 >&2
		cut -f1 "$work/left-$fs.$round" | while IFS= read -r p; do rm -rf "${dir:?}/$p"; done
	done
	rm -f "$work/probe.raw"
	echo "$fs input: $(find "$dir" | wc -l) of the $(find "$SRC" | wc -l) entries of $SRC, $(du -sh "$dir" | cut -f1)" >&2
}

secs() { # CMD...: wall and CPU (user + system, of every process it ran) seconds of one run
	local s e cpu
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
	e=$(date +%s.%N)
	# times (in this shell, not a pipeline's): the shell's, then its children's user and system time
	times >"$work/times"
	cpu=$(sed -n 2p "$work/times" | sed 's/\([0-9]*\)m\([0-9.]*\)s/(\1*60+\2)/g; s/ /+/')
	echo "$(echo "$e - $s" | bc) $(echo "$cpu" | bc)"
}

peer_squashfs() {
	mksquashfs "$work/in-squashfs" "$work/out/sq.img" -comp gzip -Xcompression-level 6 -noappend -quiet &&
		qemu-img convert -O vmdk "$work/out/sq.img" "$work/out/sq.vmdk"
}
peer_fat() {
	local kb
	kb=$(du -sk "$work/in-fat32" | cut -f1)
	truncate -s $(((kb * 11 / 10 + 65536) * 1024)) "$work/out/fat.img" &&
		mkfs.vfat -F 32 "$work/out/fat.img" &&
		mcopy -s -m -i "$work/out/fat.img" "$work/in-fat32"/* ::/ &&
		qemu-img convert -O vmdk "$work/out/fat.img" "$work/out/fat.vmdk"
}

compare() { # name ourcmd... -- peercmd...
	local name=$1 ours=() peer=() o p oc pc r ratios=() cratios=() bo=999999 bp=999999
	shift
	while [ "$1" != -- ]; do ours+=("$1") && shift; done
	shift
	peer=("$@")
	for i in $(seq "$RUNS"); do
		rm -f "$work/o.vmdk"
		r=$(secs "${ours[@]}") && read -r o oc <<<"$r"
		rm -rf "${work:?}/out" && mkdir "$work/out"
		r=$(secs "${peer[@]}") && read -r p pc <<<"$r"
		[ "$i" = 1 ] && echo "$name: VMDKs on disk: ours $(du -k "$work/o.vmdk" | cut -f1) KiB, peer $(du -k "$work"/out/*.vmdk | cut -f1) KiB" >&2
		ratios+=("$(echo "$p / $o" | bc -l)")
		cratios+=("$(echo "$pc / $oc" | bc -l)")
		bo=$(echo "if ($o < $bo) $o else $bo" | bc)
		bp=$(echo "if ($p < $bp) $p else $bp" | bc)
		printf '%-9s run %d: ours %6.2fs  peer %6.2fs  ratio %.2f   CPU ours %6.2fs  peer %6.2fs  ratio %.2f   (load %s)\n' \
			"$name" "$i" "$o" "$p" "${ratios[-1]}" "$oc" "$pc" "${cratios[-1]}" "$(cut -d' ' -f1 /proc/loadavg)" >&2
	done
	printf '%-9s best ours %6.2fs  best peer %6.2fs  ratio peer/ours: best %.2f, median of runs %.2f; CPU median %.2f\n' \
		"$name" "$bo" "$bp" "$(echo "$bp / $bo" | bc -l)" \
		"$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")" \
		"$(printf '%s\n' "${cratios[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")"
}

input squashfs
compare squashfs "$work/vmdk" make-fs --fs squashfs "$work/in-squashfs" "$work/o.vmdk" -- peer_squashfs
rm -rf "${work:?}/in-squashfs"
input fat32
compare fat32 "$work/vmdk" make-fs --fs fat32 "$work/in-fat32" "$work/o.vmdk" -- peer_fat
