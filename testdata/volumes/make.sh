#!/usr/bin/env bash
# Makes the volumes fixtures with real tools (sgdisk, sfdisk, mkfs.*, lvm2 on loop devices) and stores
# them gzip-compressed next to this script. Needs root (losetup) but no device-mapper: LVM metadata is
# written with activation off and vgcfgrestore, and LV contents are put at their mapped offsets with dd.
set -euo pipefail
cd "$(dirname "$0")"
out=$(pwd)
work=$(mktemp -d)
loops=()
cleanup() {
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export MTOOLS_SKIP_CHECK=1
# Reproducible-ish: fixed UUIDs and serials where the tools allow.
export SOURCE_DATE_EPOCH=1700000000

# put FSIMG IMG BYTEOFFSET: copy a filesystem image into a disk image.
put() { dd if="$1" of="$2" bs=512 seek=$(($3 / 512)) conv=notrunc,sparse status=none; }

# ---- GPT, 512-byte sectors: FAT12 ESP, ext2, a gap in numbering (no entry 3), a name, attributes.
truncate -s 4M gpt512.img
sgdisk -a 1 -U 6A8F1A3C-0B2D-4E5F-8A9B-1C2D3E4F5A6B \
	-n 1:2048:3071 -t 1:ef00 -c 1:"EFI system" -u 1:11111111-2222-3333-4444-555555555555 \
	-n 2:3072:5119 -t 2:8300 -c 2:"linux data" -A 2:set:2 -A 2:set:60 \
	-n 4:5120:7000 -t 4:0700 -c 4:"Basic data" gpt512.img >/dev/null
truncate -s 512K esp.fat && mkfs.fat -F 12 -n ESPLABEL -i 1234ABCD esp.fat >/dev/null
echo "hello from the ESP" > hello.txt && mcopy -i esp.fat hello.txt ::/HELLO.TXT
truncate -s 1M data.ext2 && mkfs.ext2 -q -L gptdata -U 0a0b0c0d-1111-2222-3333-444455556666 data.ext2
put esp.fat gpt512.img $((2048 * 512))
put data.ext2 gpt512.img $((3072 * 512))
# Same disk with a damaged primary header: the backup must be used.
cp gpt512.img gpt512-badprimary.img
printf 'XXXX' | dd of=gpt512-badprimary.img bs=1 seek=$((512 + 100)) conv=notrunc status=none
printf 'X' | dd of=gpt512-badprimary.img bs=1 seek=$((512 + 20)) conv=notrunc status=none
# Same disk with a hybrid MBR (0xEE plus a copy of entry 2): the GPT must win, as in Linux.
cp gpt512.img gpt512-hybrid.img
sgdisk -h 2:EE gpt512-hybrid.img >/dev/null

# ---- GPT, 4096-byte sectors, written through a 4Kn loop device.
truncate -s 2M gpt4k.img
l=$(losetup -b 4096 -f --show gpt4k.img); loops+=("$l")
sgdisk -n 1:256:383 -t 1:8300 -c 1:"four k" -n 2:384:500 -t 2:8200 "$l" >/dev/null
losetup -d "$l"; loops=()
truncate -s 512K k.ext2 && mkfs.ext2 -q -b 4096 -L fourk -U 0f0f0f0f-1111-2222-3333-444455556666 k.ext2
put k.ext2 gpt4k.img $((256 * 4096))
truncate -s 400K k.swap && mkswap -L swap4k -U 5e5e5e5e-1111-2222-3333-444455556666 k.swap >/dev/null 2>&1
put k.swap gpt4k.img $((384 * 4096))

# ---- MBR with an extended partition and a chain of logicals holding many filesystems.
truncate -s 66M mbr.img
sfdisk -q mbr.img <<'SF'
label: dos
label-id: 0x1234abcd
start=2048, size=1024, type=1, bootable
start=4096, size=131072, type=5
start=6144, size=8192, type=83
start=16384, size=2048, type=82
start=20480, size=4096, type=7
start=26624, size=4096, type=7
start=32768, size=67584, type=c
start=102400, size=32768, type=83
SF
mk() { truncate -s "$2" "$1"; }
mk f12 512K && mkfs.fat -F 12 -n FAT12LBL -i 11112222 f12 >/dev/null && put f12 mbr.img $((2048 * 512))
mk e3 4M && mkfs.ext3 -q -L extthree -U 33333333-1111-2222-3333-444455556666 e3 && put e3 mbr.img $((6144 * 512))
mk sw 1M && mkswap -L swaplbl -U 44444444-1111-2222-3333-444455556666 sw >/dev/null 2>&1 && put sw mbr.img $((16384 * 512))
mk nt 2M && mkntfs -q -F -L ntfslabel -s 512 nt >/dev/null 2>&1 && put nt mbr.img $((20480 * 512))
mk ex 2M && mkfs.exfat -b 4096 -L exlabel ex >/dev/null 2>&1 && put ex mbr.img $((26624 * 512))
mk f32 33M && mkfs.fat -F 32 -s 1 -n FAT32LBL -i 33334444 f32 >/dev/null && put f32 mbr.img $((32768 * 512))
mk xf 16M && mkfs.xfs -q -f --unsupported -L xfslbl -m uuid=55555555-1111-2222-3333-444455556666 xf 2>&1 | grep -v -e unsupported -e '^$' || true; put xf mbr.img $((102400 * 512))

# ---- Whole disks without a partition table: ext4, squashfs and ISO9660.
mk whole-ext4.img 1M && mkfs.ext4 -q -L wholeext4 -U 66666666-1111-2222-3333-444455556666 whole-ext4.img
mkdir -p sq && echo squash > sq/file && mksquashfs sq whole-squashfs.img -quiet -noappend >/dev/null
xorriso -as mkisofs -quiet -V ISOLABEL -o whole-iso.img sq 2>/dev/null

# ---- EBR chain that loops back to its first EBR.
mk ebrloop.img 4M
sfdisk -q ebrloop.img <<'SF'
label: dos
start=2048, size=1000, type=83
start=4096, size=2000, type=5
start=4097, size=100, type=83
start=4300, size=100, type=83
SF
# The second EBR (at 4096 + its link) links back to the first: relative start 0.
second=$(( 4096 + $(od -An -tu4 -j $((4096 * 512 + 446 + 16 + 8)) -N4 ebrloop.img) ))
printf '\x05' | dd of=ebrloop.img bs=1 seek=$((second * 512 + 446 + 16 + 4)) conv=notrunc status=none
printf '\x00\x00\x00\x00\x10\x00\x00\x00' | dd of=ebrloop.img bs=1 seek=$((second * 512 + 446 + 16 + 8)) conv=notrunc status=none

# ---- LVM2: a VG over three disks (two whole-disk PVs and a PV in a GPT partition).
mk lvm-d0.img 8M; mk lvm-d1.img 6M; mk lvm-d2.img 8M
sgdisk -n 1:2048:14335 -t 1:8e00 -c 1:"pv on gpt" lvm-d2.img >/dev/null
l0=$(losetup -f --show lvm-d0.img); loops+=("$l0")
l1=$(losetup -f --show lvm-d1.img); loops+=("$l1")
l2=$(losetup -f --show -o $((2048 * 512)) --sizelimit $((12288 * 512)) lvm-d2.img); loops+=("$l2")
cfg="devices{filter=[\"a|^$l0\$|\",\"a|^$l1\$|\",\"a|^$l2\$|\",\"r|.*|\"]}"
lv() { "$@" --config "$cfg" 2>&1 | grep -v -e 'leaked on' -e 'Activation disabled' -e 'not zeroed' -e 'device-mapper' -e 'libdevmapper' -e 'active volumes' || true; }
lv pvcreate -q --pvmetadatacopies 2 "$l0"
lv pvcreate -q "$l1" "$l2"
lv vgcreate -q -s 256k vgt "$l0" "$l1" "$l2"
lv lvcreate -q --driverloaded n -an -Zn -n lin -l 20 vgt "$l0:0-15" "$l1:0-3"
lv lvcreate -q --driverloaded n -an -Zn -n str -i 2 -I 64k -l 4 vgt "$l1:4-5" "$l2:0-1"
lv vgcfgbackup -q -f vgt.txt vgt
# raid1, raid5 and thin LVs cannot be created without device-mapper: add them to the metadata text.
python3 "$out/lvm-extra.py" vgt.txt vgt2.txt
lv vgcfgrestore -q --force -f vgt2.txt vgt
lvs -a --config "$cfg" --reportformat json --units b --nosuffix --segments \
	-o lv_name,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges,stripe_size,vg_extent_size 2>/dev/null >lvs.json
pvs --config "$cfg" --reportformat json --units b --nosuffix -o pv_name,pe_start 2>/dev/null >pvs.json
# Filesystems for the LVs, put at the offsets lvs reports.
mk lin.fs 5M && mkfs.ext4 -q -L lvlinear -U 77777777-1111-2222-3333-444455556666 lin.fs
mk str.fs 1M && mkfs.ext2 -q -L lvstripe -U 88888888-1111-2222-3333-444455556666 str.fs
mk r1.fs 1M && mkfs.fat -F 12 -n LVMIRROR -i 99990000 r1.fs >/dev/null
echo "mirrored file" > m.txt && mcopy -i r1.fs m.txt ::/M.TXT
mk mir.fs 512K && mkfs.fat -F 12 -n LVLEGACY -i 77770000 mir.fs >/dev/null
mk r5.fs 1M && mkfs.ext2 -q -L lvraid5 -U aaaaaaaa-1111-2222-3333-444455556666 r5.fs
python3 "$out/lvm-place.py" lvs.json pvs.json "$l0=lvm-d0.img:0" "$l1=lvm-d1.img:0" "$l2=lvm-d2.img:$((2048 * 512))" \
	lin=lin.fs str=str.fs r1=r1.fs r5=r5.fs mir=mir.fs
for l in "${loops[@]}"; do losetup -d "$l"; done; loops=()

# ---- Tiny tables (fuzz seeds and edge cases): an MBR with five logicals in 20 sectors, a 100-sector GPT.
mk ebrtiny.img 10K
sfdisk -q ebrtiny.img <<'SF'
label: dos
label-id: 0x0badcafe
start=1, size=3, type=83, bootable
start=5, size=15, type=5
start=6, size=1, type=83
start=8, size=2, type=7
start=11, size=3, type=c
start=15, size=1, type=82
start=17, size=1, type=83
SF
mk gpttiny.img 50K
sgdisk -U 0D15EA5E-0000-4000-8000-0000000000AA -n 1:34:40 -c 1:"tiny one" -n 2:41:60 -t 2:0700 -c 2:"second" -A 2:set:0 gpttiny.img >/dev/null

for f in gpt512.img gpt512-badprimary.img gpt512-hybrid.img gpt4k.img mbr.img whole-ext4.img whole-squashfs.img whole-iso.img ebrloop.img \
	lvm-d0.img lvm-d1.img lvm-d2.img ebrtiny.img gpttiny.img; do
	gzip -9n -c "$f" >"$out/$f.gz"
done
ls -l "$out"/*.gz | awk '{s += $5} END {print s " bytes of fixtures"}'
