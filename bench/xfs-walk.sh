#!/usr/bin/env bash
# Cold-cache walk of an XFS image holding a copy of /usr/share: the kernel (loop mount) against our
# reader (volumes/fsys/xfs), the same Go walker on both sides (lstat every entry, read every file).
# Prints both times and the ratio ours/kernel. Needs root (mount, drop_caches).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /var/tmp/xfs-walk.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$work"; }
trap cleanup EXIT

echo "building the image (copy of /usr/share)…" >&2
XFS_BIG_USR=1 testdata/xfs/make.sh "$work" >/dev/null
img=$work/usr-share.img
go test -c -o "$work/xfs.test" ./volumes/fsys/xfs

cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
measure() { # prints seconds; $2 names the side, whose file and byte counts go to $work/$2.count
  local start end
  start=$(date +%s.%N)
  XFS_WALK_PATH=$1 "$work/xfs.test" -test.run '^TestWalkTiming$' -test.count=1 | grep '^walked' \
    | awk '{print $2, $4}' > "$work/$2.count"
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

runs=${RUNS:-3}
k_total=0 o_total=0
for i in $(seq 1 "$runs"); do
  mount -o loop,ro,noatime "$img" "$mnt"
  cold
  k=$(measure "$mnt" kernel)
  umount "$mnt"
  cold
  o=$(measure "$img" ours)
  if ! cmp -s "$work/kernel.count" "$work/ours.count"; then
    echo "walks differ: kernel $(cat "$work/kernel.count"), ours $(cat "$work/ours.count") (files, bytes)" >&2
    exit 1
  fi
  printf 'run %d: kernel %.2fs  ours %.2fs  (%s files, bytes)\n' "$i" "$k" "$o" "$(cat "$work/ours.count")"
  k_total=$(echo "$k_total + $k" | bc -l)
  o_total=$(echo "$o_total + $o" | bc -l)
done
printf 'kernel %.2fs  ours %.2fs  ratio ours/kernel %.2f\n' "$(echo "$k_total / $runs" | bc -l)" \
  "$(echo "$o_total / $runs" | bc -l)" "$(echo "$o_total / $k_total" | bc -l)"
