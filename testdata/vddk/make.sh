#!/usr/bin/env bash
# Makes the VMDK fixtures in this folder with qemu-img and qemu-io (Debian qemu-utils).
# Every fixture is read back by vddk's tests and compared with `qemu-img convert -O raw` of it.
# The ESXi formats qemu cannot write (COWD, seSparse) are built by the tests themselves from the
# format facts (vddk/esxgen_test.go) and judged by qemu-img the same way.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f ./*.vmdk ./*.bin

# Deterministic pseudo-random bytes: rnd SEED COUNT.
rnd() { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null | head -c "$2" || true; }
# put FILE OFFSET < data
put() { dd of="$1" oflag=seek_bytes seek="$2" conv=notrunc status=none; }

# The source disk: 6 MiB + 3 sectors (capacity not a multiple of the 64 KiB grain), holding random data
# across grain boundaries, compressible text, and data in the partial last grain.
src=$tmp/src.raw
size=$((6 * 1024 * 1024 + 1536))
truncate -s $size "$src"
printf 'vmdkmount test disk\n' | put "$src" 0
rnd a $((96 * 1024)) | put "$src" $((32 * 1024))
seq 1 30000 | put "$src" $((1024 * 1024))
rnd b $((20 * 1024)) | put "$src" $((3 * 1024 * 1024 - 10 * 1024))
rnd c 2048 | put "$src" $((size - 2048))

qemu-img convert -f raw -O vmdk "$src" mono-sparse.vmdk
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$src" stream.vmdk
qemu-img convert -f raw -O vmdk -o adapter_type=lsilogic,hwversion=9,zeroed_grain=on "$src" zeroed-grain.vmdk
# A whole-grain zero write over allocated text makes a zeroed-grain entry (GTE 1).
qemu-io -f vmdk -c "write -z $((1024 * 1024)) 64k" zeroed-grain.vmdk >/dev/null

# monolithicFlat: text descriptor + raw extent (kept to 1 MiB).
truncate -s 1M "$tmp/flat.raw"
rnd d 4096 | put "$tmp/flat.raw" 1000
seq 1 2000 | put "$tmp/flat.raw" 500000
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat "$tmp/flat.raw" mono-flat.vmdk

# twoGbMaxExtentSparse across an extent boundary: 2 GiB + 4 MiB in three files.
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split-sparse.vmdk $((2048 + 4))M
rnd e $((64 * 1024)) >"$tmp/e"
qemu-io -f vmdk -c "write -s $tmp/e $((2 * 1024 * 1024 * 1024 - 32 * 1024)) 64k" \
	-c "write -P 0x5a 1G 100k" split-sparse.vmdk >/dev/null

# A three-link chain with writes at each level: mono-sparse.vmdk as the base, child1 (partial-grain
# copy-on-write), child2 (over both).
qemu-img create -q -f vmdk -b mono-sparse.vmdk -F vmdk chain-child1.vmdk
rnd f 8192 >"$tmp/f"
qemu-io -f vmdk -c "write -s $tmp/f 40960 8k" -c "write -P 0x11 2M 64k" chain-child1.vmdk >/dev/null
qemu-img create -q -f vmdk -b chain-child1.vmdk -F vmdk chain-child2.vmdk
qemu-io -f vmdk -c "write -P 0x22 45056 1k" -c "write -P 0x33 4M 4k" -c "write -z 2M 4k" chain-child2.vmdk >/dev/null

# A custom multi-extent descriptor: FLAT at a non-zero offset, ZERO, and an RDONLY sparse extent.
{ rnd g $((64 * 512)); seq 1 50000; } | head -c $((600 * 512)) >custom-flat.bin || true
truncate -s $((1 * 1024 * 1024)) "$tmp/cs.raw"
seq 1 5000 | put "$tmp/cs.raw" 10000
qemu-img convert -f raw -O vmdk "$tmp/cs.raw" custom-sparse.vmdk
cat >custom.vmdk <<'DESC'
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=1234abcd
parentCID=ffffffff
createType="custom"

# Extent description
RW 500 FLAT "custom-flat.bin" 100
RW 300 ZERO
RDONLY 2048 SPARSE "custom-sparse.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "buslogic"
ddb.geometry.cylinders = "2"
ddb.geometry.heads = "16"
ddb.geometry.sectors = "63"
ddb.virtualHWVersion = "4"
DESC
ls -l
