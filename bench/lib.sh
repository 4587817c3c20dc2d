# Shared by the bench/ scripts (sourced): test data and timing.

# rnd SEED BYTES: BYTES of incompressible data, the same for the same SEED.
rnd() { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null | head -c "$2" || true; }

# make_mix FILE BLOCKS: a raw image of BLOCKS 64 MiB blocks in turn random, text, hole, half random/half
# hole — a plausible disk mix. Kept when FILE exists.
make_mix() {
	local src=$1 n=$2 i off
	[ -f "$src" ] && return
	truncate -s $((n * 64 << 20)) "$src"
	for i in $(seq 0 $((n - 1))); do
		off=$((i * 64 << 20))
		case $((i % 4)) in
		0) rnd "b$i" $((64 << 20)) | dd of="$src" oflag=seek_bytes seek=$off conv=notrunc status=none ;;
		1) (yes "block $i: some compressible guest text, logs and config files" || true) | head -c $((64 << 20)) |
			dd of="$src" oflag=seek_bytes seek=$off conv=notrunc status=none ;;
		3) rnd "h$i" $((32 << 20)) | dd of="$src" oflag=seek_bytes seek=$off conv=notrunc status=none ;;
		esac
	done
}

# best_time CMD...: the best wall time in seconds of RUNS runs of CMD; the function `before_run`, when
# the script defines it, runs before each (to remove the last output).
best_time() {
	local b=999999 t s e
	for _ in $(seq "${RUNS:-3}"); do
		if declare -F before_run >/dev/null; then before_run; fi
		s=$(date +%s.%N)
		"$@"
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		b=$(echo "if ($t < $b) $t else $b" | bc)
	done
	echo "$b"
}

# FORMAT_IMAGES: the images format_images makes, as FILE:QEMU-FORMAT; the VMDKs, the references, last.
FORMAT_IMAGES="qcow2.qcow2:qcow2 qcow2-zlib.qcow2:qcow2 qcow2-zstd.qcow2:qcow2 qcow2-extl2.qcow2:qcow2
qcow2-top.qcow2:qcow2 vhd-fixed.vhd:vpc vhd-dynamic.vhd:vpc vhdx-fixed.vhdx:vhdx vhdx-dynamic.vhdx:vhdx
vdi-static.vdi:vdi vdi-dynamic.vdi:vdi sparse.vmdk:vmdk stream.vmdk:vmdk"

# format_images DIR SRC: the raw image SRC in every format vmdkmount reads besides VMDK (qcow2 plain,
# zlib and zstd compressed, with extended L2 entries, a two-link qcow2 chain; VHD fixed and dynamic;
# VHDX fixed and dynamic; VDI static and dynamic) and as monolithicSparse and streamOptimized VMDKs
# (uncompressed and compressed), made by qemu-img
# into DIR under the names of FORMAT_IMAGES. Kept when present.
format_images() {
	local dir=$1 src=$2
	mk() { # mk NAME FORMAT [qemu-img convert options...]
		local name=$1 fmt=$2
		shift 2
		[ -f "$dir/$name" ] || qemu-img convert -f raw -O "$fmt" "$@" "$src" "$dir/$name"
	}
	mk qcow2.qcow2 qcow2
	mk qcow2-zlib.qcow2 qcow2 -c
	mk qcow2-zstd.qcow2 qcow2 -c -o compression_type=zstd
	mk qcow2-extl2.qcow2 qcow2 -o extended_l2=on,cluster_size=128k
	mk vhd-fixed.vhd vpc -o subformat=fixed,force_size=on
	mk vhd-dynamic.vhd vpc -o subformat=dynamic,force_size=on
	mk vhdx-fixed.vhdx vhdx -o subformat=fixed
	mk vhdx-dynamic.vhdx vhdx -o subformat=dynamic
	mk vdi-static.vdi vdi -o static=on
	mk vdi-dynamic.vdi vdi
	mk sparse.vmdk vmdk -o subformat=monolithicSparse
	mk stream.vmdk vmdk -o subformat=streamOptimized
	if [ ! -f "$dir/qcow2-top.qcow2" ]; then
		qemu-img create -q -f qcow2 -b qcow2.qcow2 -F qcow2 "$dir/qcow2-top.qcow2"
		qemu-io -f qcow2 -c "write -P 0x11 100M 200M" "$dir/qcow2-top.qcow2" >/dev/null
	fi
}

# recache FILE...: drops each FILE's pages from the page cache and reads it back whole, so that it is
# cached as a disk image read from disk is (readahead fills large folios). A file just written in small
# pieces (qemu-img convert -c writes a cluster at a time) sits in small folios, and a copy out of it
# costs about 1.2-1.5x as much per byte (kernel-only sendfile out of this bench's qcow2 images):
# the bench would time how the images happened to be written, for every tool alike.
recache() {
	local f
	for f in "$@"; do
		sync "$f"
		dd if="$f" iflag=nocache count=0 status=none # GNU dd: count=0 drops the whole file
		cat "$f" >/dev/null
	done
}

# secs_of CMD...: the wall time of one run of CMD, in seconds (after `before_run`, when defined).
secs_of() {
	local s e
	if declare -F before_run >/dev/null; then before_run; fi
	s=$(date +%s.%N)
	"$@"
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}

# wall_cpu CMD...: "WALL CPU", the seconds one run of CMD (after `before_run`, when defined) took and
# the CPU seconds it and its children used (steadier than wall time on a busy machine).
wall_cpu() {
	local f
	f=$(mktemp)
	if declare -F before_run >/dev/null; then before_run; fi
	/usr/bin/time -f '%e %U %S' -o "$f" "$@"
	awk '{printf "%s %.2f\n", $1, $2 + $3}' "$f"
	rm -f "$f"
}

# median NUMBERS...: their median (the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }


# Cold walk-and-read of a mounted tree, for the kernel-against-ours walks. They need $work.
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# walk DIR NAME: lstat every entry and read every file; the bytes read go to $work/bytes.NAME.
walk() { (cd "$1" && find . -type f -print0 | xargs -0 -n 256 cat 2>/dev/null | wc -c >"$work/bytes.$2"; find . >/dev/null); }
walk_secs() { local t0 t1; t0=$(date +%s.%N); walk "$1" "$2"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }

# walk_rounds ROUNDS: runs the caller's walk_kernel and walk_ours in turns (each prints its seconds;
# walk_ours leaves the daemon's VmHWM in $work/hwm), sets best_k, best_o and peak (KiB), and fails when
# the two walks read different amounts.
walk_rounds() {
	local r k o p
	best_k="" best_o="" peak=0
	for r in $(seq "$1"); do
		if [ $((r % 2)) = 1 ]; then o=$(walk_ours); k=$(walk_kernel); else k=$(walk_kernel); o=$(walk_ours); fi
		p=$(cat "$work/hwm"); [ "$p" -gt "$peak" ] && peak=$p
		if [ -z "$best_k" ] || [ "$(echo "$k < $best_k" | bc)" = 1 ]; then best_k=$k; fi
		if [ -z "$best_o" ] || [ "$(echo "$o < $best_o" | bc)" = 1 ]; then best_o=$o; fi
	done
	if [ "$(cat "$work/bytes.kernel")" != "$(cat "$work/bytes.ours")" ]; then
		echo "the walks read different amounts: kernel $(cat "$work/bytes.kernel"), ours $(cat "$work/bytes.ours") bytes" >&2
		return 1
	fi
}
