// Package probe recognises filesystems and containers by their signatures at the start of a volume and
// reads the label and UUID where the format keeps them near the start. Names follow blkid where blkid has
// one (ntfs, exfat, ext4, xfs, btrfs, iso9660, hfsplus, apfs, swap, crypto_LUKS, squashfs, LVM2_member);
// FAT is reported as fat12/fat16/fat32.
package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/volumes/md"
)

// Result is what Detect found. Type is empty when nothing was recognised.
type Result struct {
	Type  string // e.g. "ntfs", "fat32", "ext4", "LVM2_member"
	Label string
	UUID  string
}

// reader bounds all reads by the volume size.
type reader struct {
	r    io.ReaderAt
	size int64
}

// at returns n bytes at off, or nil when they are not all inside the volume or cannot be read.
func (r reader) at(off int64, n int) []byte {
	if off < 0 || n < 0 || off+int64(n) > r.size {
		return nil
	}
	b := make([]byte, n)
	if m, _ := r.r.ReadAt(b, off); m != n {
		return nil
	}
	return b
}

// Detect looks for a known signature at the start of a volume of size bytes. An unreadable or
// unrecognised volume yields an empty Result; label and UUID are best effort.
func Detect(r io.ReaderAt, size int64) Result {
	rd := reader{r, size}
	for _, d := range detectors {
		if res, ok := d(rd); ok {
			return res
		}
	}
	return Result{}
}

// detectors run in order. md comes first: a member with metadata 0.90 or 1.0 (at its end) holds the
// array's data from its first byte, often a filesystem whose signature would otherwise win.
var detectors = []func(reader) (Result, bool){
	mdRAID, lvmPV, luks, ntfs, exfat, bitlocker, refs, fat, xfs, squashfs, ext, btrfs, hfs, apfs, iso9660, swap, f2fs,
}

func magicAt(r reader, off int64, magic string) bool {
	b := r.at(off, len(magic))
	return b != nil && string(b) == magic
}

// cstring trims a fixed-size text field at its first NUL and surrounding blanks.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// utf16le decodes a little-endian UTF-16 field, stopping at a NUL.
func utf16le(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// FormatUUID prints 16 bytes in the usual 8-4-4-4-12 form; all zero gives "".
func FormatUUID(b []byte) string {
	if len(b) != 16 || bytes.Equal(b, make([]byte, 16)) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func ext(r reader) (Result, bool) {
	sb := r.at(1024, 1024)
	if sb == nil || binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return Result{}, false
	}
	compat := binary.LittleEndian.Uint32(sb[0x5C:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	rocompat := binary.LittleEndian.Uint32(sb[0x64:])
	t := "ext2"
	switch {
	// Like blkid: features ext3 lacks make it ext4 (extents, 64bit, flex_bg, inline data, huge files…).
	case incompat&^0x0016 != 0 || rocompat&^0x0007 != 0:
		t = "ext4"
	case compat&0x4 != 0:
		t = "ext3"
	}
	return Result{Type: t, Label: cstring(sb[0x78:0x88]), UUID: FormatUUID(sb[0x68:0x78])}, true
}

func xfs(r reader) (Result, bool) {
	sb := r.at(0, 512)
	if sb == nil || string(sb[:4]) != "XFSB" {
		return Result{}, false
	}
	return Result{Type: "xfs", Label: cstring(sb[0x6C:0x78]), UUID: FormatUUID(sb[0x20:0x30])}, true
}

func btrfs(r reader) (Result, bool) {
	sb := r.at(0x10000, 0x1000)
	if sb == nil || string(sb[0x40:0x48]) != "_BHRfS_M" {
		return Result{}, false
	}
	return Result{Type: "btrfs", Label: cstring(sb[0x12B:0x22B]), UUID: FormatUUID(sb[0x20:0x30])}, true
}

func squashfs(r reader) (Result, bool) {
	return Result{Type: "squashfs"}, magicAt(r, 0, "hsqs")
}

func swap(r reader) (Result, bool) {
	// The signature sits at the end of the first page; try the common page sizes.
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		if magicAt(r, page-10, "SWAPSPACE2") || magicAt(r, page-10, "SWAP-SPACE") {
			h := r.at(1024, 44)
			if h == nil {
				return Result{Type: "swap"}, true
			}
			return Result{Type: "swap", UUID: FormatUUID(h[12:28]), Label: cstring(h[28:44])}, true
		}
	}
	return Result{}, false
}

func luks(r reader) (Result, bool) {
	h := r.at(0, 512)
	if h == nil || string(h[:6]) != "LUKS\xba\xbe" {
		return Result{}, false
	}
	res := Result{Type: "crypto_LUKS", UUID: cstring(h[168:208])}
	if binary.BigEndian.Uint16(h[6:]) == 2 {
		res.Label = cstring(h[24:72])
	}
	return res, true
}

func bitlocker(r reader) (Result, bool) {
	return Result{Type: "BitLocker"}, magicAt(r, 3, "-FVE-FS-")
}

func refs(r reader) (Result, bool) {
	return Result{Type: "ReFS"}, magicAt(r, 3, "ReFS\x00\x00\x00\x00") && magicAt(r, 16, "FSRS")
}

func hfs(r reader) (Result, bool) {
	switch {
	case magicAt(r, 1024, "H+"):
		return Result{Type: "hfsplus"}, true
	case magicAt(r, 1024, "HX"):
		return Result{Type: "hfsplus"}, true
	}
	return Result{}, false
}

func apfs(r reader) (Result, bool) {
	h := r.at(0, 0x58)
	if h == nil || string(h[32:36]) != "NXSB" {
		return Result{}, false
	}
	return Result{Type: "apfs", UUID: FormatUUID(h[0x48:0x58])}, true
}

func iso9660(r reader) (Result, bool) {
	d := r.at(0x8000, 2048)
	if d == nil || string(d[1:6]) != "CD001" {
		return Result{}, false
	}
	res := Result{Type: "iso9660", Label: cstring(d[40:72])}
	// blkid's UUID for ISO9660 is the creation time, digits grouped.
	if c := d[813:829]; bytes.IndexFunc(c, func(x rune) bool { return x < '0' || x > '9' }) < 0 && string(c) != "0000000000000000" {
		res.UUID = fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", c[0:4], c[4:6], c[6:8], c[8:10], c[10:12], c[12:14], c[14:16])
	}
	return res, true
}

func f2fs(r reader) (Result, bool) {
	h := r.at(1024, 4)
	if h == nil || binary.LittleEndian.Uint32(h) != 0xF2F52010 {
		return Result{}, false
	}
	return Result{Type: "f2fs"}, true
}

// mdRAID finds an md superblock (any metadata version) whose checksum holds; like blkid, the label is
// the array name and the UUID the array's.
func mdRAID(r reader) (Result, bool) {
	sb, err := md.Read(r.r, r.size)
	if err != nil {
		return Result{}, false
	}
	return Result{Type: "linux_raid_member", Label: sb.Name, UUID: FormatUUID(sb.UUID[:])}, true
}

// lvmPV finds an LVM2 label in sectors 0–3.
func lvmPV(r reader) (Result, bool) {
	for s := int64(0); s < 4; s++ {
		b := r.at(s*512, 512)
		if b == nil || string(b[:8]) != "LABELONE" || string(b[24:32]) != "LVM2 001" {
			continue
		}
		off := int64(binary.LittleEndian.Uint32(b[20:]))
		if off < 32 || off+32 > 512 {
			continue
		}
		return Result{Type: "LVM2_member", UUID: FormatLVMID(b[off : off+32])}, true
	}
	return Result{}, false
}

// FormatLVMID puts the dashes into a 32-character LVM id: 6-4-4-4-4-4-6.
func FormatLVMID(id []byte) string {
	if len(id) != 32 {
		return string(id)
	}
	s := string(id)
	return s[0:6] + "-" + s[6:10] + "-" + s[10:14] + "-" + s[14:18] + "-" + s[18:22] + "-" + s[22:26] + "-" + s[26:32]
}
