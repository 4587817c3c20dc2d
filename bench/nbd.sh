#!/usr/bin/env bash
# NBD both ways, side by side with qemu-nbd, as ratios (above 1 means ours is faster):
#   serve: qemu-img convert of a streamOptimized disk read over `vmdk serve` against over qemu-nbd
#          serving the same file (qemu-nbd time / ours);
#   client: `vmdk cat` of a qemu-nbd export against `qemu-img convert` of the same export
#          (qemu-img time / ours), for the raw image and the streamOptimized disk; and `vmdk convert`
#          of the raw export to a monolithicSparse VMDK against `qemu-img convert -O vmdk` of it.
# Best of RUNS runs each, ours and the peer's taking turns (the machine is shared: its load drifts over
# the minutes a row takes), warm page cache; beside it the ratio of the median CPU seconds of the two
# commands (the servers' own CPU not counted), and the load average before and after. Outputs go to OUT
# (default /dev/shm) and are compared first.
# Usage: bench/nbd.sh [WORKDIR]   (SIZE_MB, default 2048; needs qemu-utils, openssl, bc)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-2048}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
out=${OUT:-/dev/shm/nbd-bench-$$.raw}
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -f "$out" "$out.ref" "$out.vmdk"
}
trap cleanup EXIT
go build -o "$work/vmdk" ./cmd/vmdk

. bench/lib.sh
src=$work/src-$SIZE_MB.raw
make_mix "$src" $((SIZE_MB / 64))
stream=$work/stream-$SIZE_MB.vmdk
[ -f "$stream" ] || qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$src" "$stream"

# wait_sock PATH: until a server's socket exists.
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return; sleep 0.1; done; echo "no socket $1" >&2; exit 1; }
serve_ours() { rm -f "$2"; "$work/vmdk" serve --socket "$2" "$1" & pids+=($!); wait_sock "$2"; }
serve_qemu() { rm -f "$3"; qemu-nbd -r -t -e 8 -k "$3" -f "$1" "$2" & pids+=($!); wait_sock "$3"; }
uri() { echo "nbd+unix:///?socket=$1"; }

before_run() { rm -f "$out" "$out.vmdk"; }
# Each CMD SOCK prints "WALL CPU" of one run (wall_cpu).
convert() { wall_cpu qemu-img convert -O raw "$(uri "$1")" "$out"; }
cat_() { wall_cpu sh -c '"$0" cat "$1" >"$2"' "$work/vmdk" "$(uri "$1")" "$out"; }
to_vmdk() { wall_cpu "$work/vmdk" convert "$(uri "$1")" "$out.vmdk"; }
qemu_to_vmdk() { wall_cpu qemu-img convert -O vmdk "$(uri "$1")" "$out.vmdk"; }
# same CMD SOCK: the output equals the source before anything is timed.
same() {
	rm -f "$out"
	"$1" "$2" >/dev/null
	cmp -s "$out" "$src" || { echo "$1 over $2: output differs from the source" >&2; exit 1; }
}
# row NAME OURS SOCK PEER SOCK: RUNS runs of each in turns; the best wall times and their ratio, and the
# ratio of the median CPU times (peer / ours: above 1 means ours is faster or cheaper).
row() {
	local r a b wa=() wb=() ca=() cb=()
	for r in $(seq "$RUNS"); do
		if [ $((r % 2)) = 1 ]; then a=$("$2" "$3") b=$("$4" "$5"); else b=$("$4" "$5") a=$("$2" "$3"); fi
		wa+=("${a% *}") ca+=("${a#* }") wb+=("${b% *}") cb+=("${b#* }")
	done
	a=$(printf '%s\n' "${wa[@]}" | sort -g | head -1) b=$(printf '%s\n' "${wb[@]}" | sort -g | head -1)
	printf '%-56s %10.3f %10.3f %7.2fx %9.2fx\n' "$1" "$a" "$b" "$(echo "$b / $a" | bc -l)" \
		"$(echo "$(median "${cb[@]}") / $(median "${ca[@]}")" | bc -l)"
}

ours_sock=$work/ours.sock
qemu_sock=$work/qemu.sock
raw_sock=$work/raw.sock
serve_ours "$stream" "$ours_sock"
serve_qemu vmdk "$stream" "$qemu_sock"
serve_qemu raw "$src" "$raw_sock"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-56s %10s %10s %8s %10s\n' "$SIZE_MB MiB, best of $RUNS" "ours s" "peer s" "ratio" "CPU ratio"
same convert "$ours_sock"
same convert "$qemu_sock"
row "qemu-img convert: vmdk serve vs qemu-nbd" convert "$ours_sock" convert "$qemu_sock"
for s in "$raw_sock" "$qemu_sock"; do
	same cat_ "$s"
	name=raw
	[ "$s" = "$qemu_sock" ] && name=streamOptimized
	row "qemu-nbd $name: vmdk cat vs qemu-img convert" cat_ "$s" convert "$s"
done
for f in to_vmdk qemu_to_vmdk; do
	before_run
	"$f" "$raw_sock" >/dev/null
	qemu-img compare -q -F raw "$out.vmdk" "$src" || { echo "$f: the VMDK differs from the source" >&2; exit 1; }
done
row "qemu-nbd raw: vmdk convert vs qemu-img convert -O vmdk" to_vmdk "$raw_sock" qemu_to_vmdk "$raw_sock"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
