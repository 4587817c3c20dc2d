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
