#!/usr/bin/env bash
# Times `vmdk make-fs` against the usual pipeline for the same tree, side by side, best of RUNS runs,
# and prints the ratios (peer time / our time: above 1 means vmdk is faster):
#   --fs squashfs   vs  mksquashfs (gzip) + qemu-img convert -O vmdk
#   --fs fat32      vs  truncate + mkfs.vfat -F 32 + mcopy -s -m + qemu-img convert -O vmdk
# Sources: SQ_SRC (default /usr/share) and FAT_SRC (default /usr/share/zoneinfo: go-diskfs v1.9.4's FAT32
# writer re-reads a folder per file added, so a whole /usr/share takes very long; set FAT_SRC to see it).
# Usage: bench/make-fs.sh   (needs qemu-utils, squashfs-tools, dosfstools, mtools, bc)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SQ_SRC=${SQ_SRC:-/usr/share}
FAT_SRC=${FAT_SRC:-/usr/share/zoneinfo}
work=$(mktemp -d /var/tmp/make-fs.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vmdk" ./cmd/vmdk
export MTOOLS_SKIP_CHECK=1

best() {
	local b=999999 t s e
	for _ in $(seq "$RUNS"); do
		rm -rf "${work:?}"/out && mkdir "$work/out"
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		b=$(echo "if ($t < $b) $t else $b" | bc)
	done
	echo "$b"
}

peer_squashfs() {
	mksquashfs "$SQ_SRC" "$work/out/sq.img" -comp gzip -noappend -quiet &&
		qemu-img convert -O vmdk "$work/out/sq.img" "$work/out/sq.vmdk"
}
peer_fat() {
	local kb
	kb=$(du -sk "$FAT_SRC" | cut -f1)
	truncate -s $(((kb * 11 / 10 + 65536) * 1024)) "$work/out/fat.img" &&
		mkfs.vfat -F 32 "$work/out/fat.img" &&
		mcopy -s -m -i "$work/out/fat.img" "$FAT_SRC"/* ::/ &&
		qemu-img convert -O vmdk "$work/out/fat.img" "$work/out/fat.vmdk"
}

files() { find "$1" | wc -l; }
report() { # name ours peer
	printf '%-9s ours %6.2fs  peer %6.2fs  ratio peer/ours %.2f\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"
}

echo "squashfs: $SQ_SRC ($(files "$SQ_SRC") entries)" >&2
ours=$(best "$work/vmdk" make-fs --fs squashfs --skip-unsupported "$SQ_SRC" "$work/out/o.vmdk")
"$work/vmdk" make-fs --fs squashfs --skip-unsupported "$SQ_SRC" "$work/out/check.vmdk" # fail loudly if it fails
peer=$(best peer_squashfs)
report squashfs "$ours" "$peer"

echo "fat32: $FAT_SRC ($(files "$FAT_SRC") entries)" >&2
ours=$(best "$work/vmdk" make-fs --fs fat32 --skip-unsupported "$FAT_SRC" "$work/out/o.vmdk")
peer=$(best peer_fat)
report fat32 "$ours" "$peer"
