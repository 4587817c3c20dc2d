#!/usr/bin/env bash
# Times `vmdk cat DISK > FILE` against `qemu-img convert -O raw DISK FILE` on the same disk (SIZE_MIB,
# default 2 GiB) in each other format vmdkmount reads (see format_images in lib.sh) and, for reference,
# as monolithicSparse and streamOptimized VMDKs. Prints the ratios (qemu time / our time: above 1
# means vmdk is faster) of the median times of RUNS runs each, ours and qemu-img's taking turns (these
# machines are shared and noisy: a single run can be off by 2x), and of their CPU times. The images are
# read from a warm page cache, filled as a read from disk fills it (recache in lib.sh). Both write a new
# sparse raw file to OUT (default: in /dev/shm, so that the conversion is timed rather than a busy
# disk's write-back).
# Usage: bench/formats-cat.sh [WORKDIR]   (needs qemu-utils, openssl, bc, time; about 16 GiB free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZE_MIB=${SIZE_MIB:-2048}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
out=${OUT:-/dev/shm/vmdk-formats-bench-$$.raw}
trap 'rm -f "$out" "$work/floor.raw"' EXIT
go build -o "$work/" ./cmd/vmdk ./bench/copyfloor

. bench/lib.sh
src=$work/src.raw
make_mix "$src" $((SIZE_MIB / 64))
format_images "$work" "$src"
for v in $FORMAT_IMAGES; do recache "$work/${v%%:*}"; done

before_run() { rm -f "$out"; }
ours() { wall_cpu sh -c '"$0" cat "$1" >"$2"' "$work/vmdk" "$1" "$out"; }
qemu() { wall_cpu qemu-img convert -f "$2" -O raw "$1" "$out"; }

# Beside each image, the floor: the image's own raw data (qemu-img's output, written next to the image
# like the image itself) copied by the kernel alone (bench/copyfloor). "reachable" is qemu-img's time
# over it, the best ratio any converter writing this output could show. (A floor copied from src.raw
# was wrong twice: the chain holds more data than src.raw, and src.raw, written in pieces,
# copies slower than a file qemu-img wrote whole: it said 1.75x for the chain at 1 GiB, this says 1.35x.)
printf '%-20s %8s %10s %8s %10s %12s   (median of %d)\n' image "vmdk s" "qemu-img s" "ratio" "reachable" "CPU ratio" "$RUNS"
for v in $FORMAT_IMAGES; do
	name=${v%%:*} fmt=${v##*:}
	d="$work/$name"
	# Both outputs must be identical before either is timed.
	ref=$work/floor.raw
	rm -f "$ref"
	qemu-img convert -f "$fmt" -O raw "$d" "$ref"
	recache "$ref" # its write-back not in the timings, its pages as the images' are
	"$work/vmdk" cat "$d" >"$out"
	cmp -s "$out" "$ref" || { echo "$name: vmdk cat and qemu-img convert differ" >&2; exit 1; }
	to=() tq=() tf=() co=() cq=()
	for r in $(seq "$RUNS"); do
		if [ $((r % 2)) = 1 ]; then
			a=$(ours "$d") b=$(qemu "$d" "$fmt")
		else
			b=$(qemu "$d" "$fmt") a=$(ours "$d")
		fi
		to+=("${a% *}") co+=("${a#* }") tq+=("${b% *}") cq+=("${b#* }")
		tf+=("$(secs_of "$work/copyfloor" "$ref" "$out")")
	done
	mo=$(median "${to[@]}") mq=$(median "${tq[@]}") floor=$(median "${tf[@]}")
	printf '%-20s %8.2f %10.2f %7.2fx %9.2fx %11.2fx\n' "$name" "$mo" "$mq" "$(echo "$mq / $mo" | bc -l)" \
		"$(echo "$mq / $floor" | bc -l)" "$(echo "$(median "${cq[@]}") / $(median "${co[@]}")" | bc -l)"
done
