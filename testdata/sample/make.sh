#!/usr/bin/env bash
# Makes the sample disks that `make demo` mounts, with real tools and no mounting (no root needed):
#   sample-gpt.vmdk  stream-optimized, GPT: p1 NTFS "Windows" (mkntfs + ntfscp), p2 ext4 "linux" (mkfs.ext4 -d)
#   sample-mbr.vmdk  stream-optimized, MBR: p1 FAT32 "USBSTICK" (mkfs.vfat + mtools)
# Needs: ntfs-3g, e2fsprogs, dosfstools, mtools, gdisk, fdisk, qemu-utils.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000

# Files shown in the demo.
src=$tmp/src
mkdir -p "$src/etc" "$src/home/alice/Documents"
printf 'Hello from the ext4 volume of a VMDK, read by vmdkmount.\n' >"$src/home/alice/Documents/readme.txt"
printf 'sample-vm\n' >"$src/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n' >"$src/etc/passwd"
ln -s Documents/readme.txt "$src/home/alice/readme-link"
seq 1 20000 >"$src/home/alice/numbers.txt"

# GPT disk: 1 MiB alignment, NTFS 4 MiB, ext4 4 MiB.
gpt=$tmp/gpt.raw
truncate -s 10M "$gpt"
sgdisk -o -n 1:2048:+4M -t 1:0700 -c 1:Windows -n 2:0:+4M -t 2:8300 -c 2:linux "$gpt" >/dev/null
ntfs=$tmp/ntfs.img
truncate -s 4M "$ntfs"
mkntfs -q -F -f -L Windows -s 512 -c 4096 "$ntfs" >/dev/null 2>&1
printf 'Hello from the NTFS volume of a VMDK, read by vmdkmount.\r\n' >"$tmp/hello.txt"
ntfscp -q "$ntfs" "$tmp/hello.txt" "hello.txt"
seq 1 5000 >"$tmp/log.txt"
ntfscp -q "$ntfs" "$tmp/log.txt" "log.txt"
ext=$tmp/ext4.img
mkfs.ext4 -q -F -L linux -U 5a3c1e2f-0000-4000-8000-00000000cafe -E root_owner=0:0 -d "$src" "$ext" 4M
dd if="$ntfs" of="$gpt" bs=512 seek=2048 conv=notrunc status=none
dd if="$ext" of="$gpt" bs=512 seek=$((2048 + 8192)) conv=notrunc status=none
rm -f sample-gpt.vmdk sample-mbr.vmdk
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$gpt" sample-gpt.vmdk

# MBR disk with one FAT32 partition.
mbr=$tmp/mbr.raw
truncate -s 40M "$mbr"
echo 'start=2048, type=c' | sfdisk -q "$mbr"
fat=$tmp/fat.img
truncate -s $((40 * 1024 * 1024 - 2048 * 512)) "$fat"
mkfs.vfat -F 32 -n USBSTICK -i 1234abcd "$fat" >/dev/null
printf 'Hello from the FAT32 volume of a VMDK, read by vmdkmount.\r\n' >"$tmp/HELLO.TXT"
mmd -i "$fat" ::/Photos
mcopy -m -i "$fat" "$tmp/HELLO.TXT" "::/Hello from FAT.txt"
dd if="$fat" of="$mbr" bs=512 seek=2048 conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$mbr" sample-mbr.vmdk
ls -l sample-*.vmdk
