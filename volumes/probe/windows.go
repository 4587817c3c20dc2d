package probe

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
)

func ntfs(r reader) (Result, bool) {
	b := r.at(0, 512)
	if b == nil || string(b[3:11]) != "NTFS    " {
		return Result{}, false
	}
	res := Result{Type: "ntfs", UUID: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(b[0x48:]))}
	res.Label = ntfsLabel(r, b)
	return res, true
}

// ntfsLabel reads the VOLUME_NAME attribute of MFT record 3 ($Volume). The first MFT records always lie
// in the MFT's first run, at the cluster the boot sector names.
func ntfsLabel(r reader, boot []byte) string {
	bps := int64(binary.LittleEndian.Uint16(boot[0x0B:]))
	spc := int64(boot[0x0D])
	if spc > 0x80 {
		spc = 1 << (256 - spc)
	}
	if bps < 256 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc > 1<<16 {
		return ""
	}
	cluster := bps * spc
	var recSize int64
	if v := int8(boot[0x40]); v < 0 {
		if -v > 20 {
			return ""
		}
		recSize = 1 << -v
	} else {
		recSize = int64(v) * cluster
	}
	if recSize < 512 || recSize > 65536 {
		return ""
	}
	mft := int64(binary.LittleEndian.Uint64(boot[0x30:]))
	if mft < 0 || mft > r.size/cluster {
		return ""
	}
	rec := r.at(mft*cluster+3*recSize, int(recSize))
	if rec == nil || string(rec[:4]) != "FILE" || !ntfsFixup(rec) {
		return ""
	}
	off := int(binary.LittleEndian.Uint16(rec[0x14:]))
	for off+16 <= len(rec) {
		typ := binary.LittleEndian.Uint32(rec[off:])
		n := int(binary.LittleEndian.Uint32(rec[off+4:]))
		if typ == 0xFFFFFFFF || n < 16 || off+n > len(rec) {
			break
		}
		if typ == 0x60 && rec[off+8] == 0 && n >= 0x18 {
			vlen := int(binary.LittleEndian.Uint32(rec[off+0x10:]))
			voff := int(binary.LittleEndian.Uint16(rec[off+0x14:]))
			if voff+vlen <= n {
				return utf16le(rec[off+voff : off+voff+vlen])
			}
			break
		}
		off += n
	}
	return ""
}

// ntfsFixup applies the update sequence array: the last two bytes of every 512-byte block were saved
// there and replaced by the sequence number. A mismatch means a torn record.
func ntfsFixup(rec []byte) bool {
	usaOff := int(binary.LittleEndian.Uint16(rec[4:]))
	usaCount := int(binary.LittleEndian.Uint16(rec[6:]))
	if usaCount == 0 || usaOff+2*usaCount > len(rec) || (usaCount-1)*512 > len(rec) {
		return false
	}
	seq := rec[usaOff : usaOff+2]
	for i := 1; i < usaCount; i++ {
		end := i*512 - 2
		if rec[end] != seq[0] || rec[end+1] != seq[1] {
			return false
		}
		copy(rec[end:end+2], rec[usaOff+2*i:])
	}
	return true
}

func exfat(r reader) (Result, bool) {
	b := r.at(0, 512)
	if b == nil || string(b[3:11]) != "EXFAT   " {
		return Result{}, false
	}
	serial := binary.LittleEndian.Uint32(b[0x64:])
	res := Result{Type: "exfat", UUID: fmt.Sprintf("%04X-%04X", serial>>16, serial&0xFFFF)}
	bpsShift, spcShift := uint(b[0x6C]), uint(b[0x6D])
	if bpsShift < 9 || bpsShift > 12 || bpsShift+spcShift > 25 {
		return res, true
	}
	heap := int64(binary.LittleEndian.Uint32(b[0x58:])) << bpsShift
	root := int64(binary.LittleEndian.Uint32(b[0x60:]))
	clusterSize := int64(1) << (bpsShift + spcShift)
	dir := r.at(heap+(root-2)*clusterSize, int(min(clusterSize, 1<<20)))
	for i := 0; dir != nil && i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0x83 {
			n := min(int(e[1]), 11)
			res.Label = utf16le(e[2 : 2+2*n])
			break
		}
	}
	return res, true
}

func fat(r reader) (Result, bool) {
	b := r.at(0, 512)
	if b == nil || b[510] != 0x55 || b[511] != 0xAA || (b[0] != 0xEB && b[0] != 0xE9) {
		return Result{}, false
	}
	bps := int64(binary.LittleEndian.Uint16(b[0x0B:]))
	spc := int64(b[0x0D])
	reserved := int64(binary.LittleEndian.Uint16(b[0x0E:]))
	nfats := int64(b[0x10])
	rootEntries := int64(binary.LittleEndian.Uint16(b[0x11:]))
	total := int64(binary.LittleEndian.Uint16(b[0x13:]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(b[0x20:]))
	}
	fatSize := int64(binary.LittleEndian.Uint16(b[0x16:]))
	fat32 := fatSize == 0
	if fat32 {
		fatSize = int64(binary.LittleEndian.Uint32(b[0x24:]))
	}
	if bps < 512 || bps > 4096 || bits.OnesCount64(uint64(bps)) != 1 || spc == 0 || bits.OnesCount64(uint64(spc)) != 1 ||
		reserved == 0 || nfats == 0 || nfats > 4 || fatSize == 0 || total == 0 {
		return Result{}, false
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	meta := reserved + nfats*fatSize + rootSectors
	if meta >= total {
		return Result{}, false
	}
	clusters := (total - meta) / spc
	res := Result{Type: "fat32"}
	switch {
	case clusters < 4085:
		res.Type = "fat12"
	case clusters < 65525:
		res.Type = "fat16"
	}
	serialAt, labelAt := 0x27, 0x2B
	var rootOff, rootLen int64
	if fat32 {
		serialAt, labelAt = 0x43, 0x47
		rootCluster := int64(binary.LittleEndian.Uint32(b[0x2C:]))
		rootOff = (reserved + nfats*fatSize + (rootCluster-2)*spc) * bps
		rootLen = spc * bps
	} else {
		rootOff = (reserved + nfats*fatSize) * bps
		rootLen = rootEntries * 32
	}
	if b[serialAt-1] == 0x29 || fat32 { // extended boot signature present
		serial := binary.LittleEndian.Uint32(b[serialAt:])
		res.UUID = fmt.Sprintf("%04X-%04X", serial>>16, serial&0xFFFF)
		if l := strings.TrimRight(string(b[labelAt:labelAt+11]), " \x00"); l != "NO NAME" {
			res.Label = l
		}
	}
	// The label in the root directory wins over the boot sector's copy, as in blkid.
	dir := r.at(rootOff, int(min(rootLen, 1<<20)))
	for i := 0; dir != nil && i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] != 0xE5 && e[11]&0x08 != 0 && e[11]&0x0F != 0x0F {
			res.Label = strings.TrimRight(string(e[:11]), " ")
			break
		}
	}
	return res, true
}
