package makefs

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"time"
	"unicode/utf16"
)

// fatFix repairs what go-diskfs v1.9.4 leaves wrong in a FAT32 it wrote at start, and sets the times
// (mtimes by path) that its Chtimes cannot set without damaging non-ASCII long names (it writes them
// back with their 0xFFFF padding read in as characters):
//   - FAT[1] is not the end-of-chain marker fsck.fat expects;
//   - the FAT has room for exactly the cluster count, not for the two reserved entries too, so the
//     volume is shrunk by the clusters the FAT cannot describe (they are checked to be free);
//   - an empty file keeps the cluster it was created with; FAT gives an empty file start cluster 0, so
//     its chain is freed (readers such as go-diskfs's own then fail on it: its issue #417);
//   - a first-level folder's ".." names the root as its cluster, not as 0;
//   - the FSInfo free count is recomputed.
func fatFix(f *os.File, start int64, mtimes map[string]time.Time) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return err
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nfats := int64(bs[16])
	total := int64(le.Uint32(bs[32:]))
	fatsz := int64(le.Uint32(bs[36:]))
	root := le.Uint32(bs[44:])
	fsinfo := int64(le.Uint16(bs[48:]))
	backup := int64(le.Uint16(bs[50:]))
	if bps != 512 || spc == 0 || nfats == 0 || fatsz == 0 {
		return fmt.Errorf("unexpected FAT32 boot sector (%d bytes a sector, %d a cluster)", bps, spc)
	}
	fatOff := start + reserved*bps
	fat := make([]byte, fatsz*bps) // 4 bytes a cluster: bounded by the size we chose
	if _, err := f.ReadAt(fat, fatOff); err != nil {
		return err
	}
	entries := int64(len(fat) / 4)
	clusters := (total - reserved - nfats*fatsz) / spc
	if over := clusters + 2 - entries; over > 0 {
		total -= over * spc
		le.PutUint32(bs[32:], uint32(total))
	}
	le.PutUint32(fat[4:], 0x0fffffff)
	dataOff := fatOff + nfats*fatsz*bps
	csize := spc * bps
	chain := func(c uint32) ([]uint32, error) {
		var out []uint32
		for c >= 2 && c < 0x0ffffff8 {
			if int64(c) >= entries || len(out) > int(entries) {
				return nil, fmt.Errorf("cluster chain through %d leaves the FAT", c)
			}
			out = append(out, c)
			c = le.Uint32(fat[4*c:]) & 0x0fffffff
		}
		return out, nil
	}
	var walk func(dirClus, parent uint32, prefix string) error
	walk = func(dirClus, parent uint32, prefix string) error {
		cl, err := chain(dirClus)
		if err != nil {
			return err
		}
		buf := make([]byte, int64(len(cl))*csize)
		for i, c := range cl {
			if _, err := f.ReadAt(buf[int64(i)*csize:int64(i+1)*csize], dataOff+int64(c-2)*csize); err != nil {
				return err
			}
		}
		var lfn []uint16
		var subdirs []struct {
			clus uint32
			rel  string
		}
		for off := 0; off+32 <= len(buf); off += 32 {
			e := buf[off : off+32]
			if e[0] == 0 {
				break
			}
			if e[0] == 0xe5 {
				lfn = nil
				continue
			}
			if e[11] == 0x0f {
				ord := int(e[0] & 0x3f)
				if ord == 0 || ord > 20 {
					lfn = nil
					continue
				}
				if need := ord * 13; len(lfn) < need {
					lfn = append(lfn, make([]uint16, need-len(lfn))...)
				}
				for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					lfn[(ord-1)*13+i] = le.Uint16(e[o:])
				}
				continue
			}
			if e[11]&0x08 != 0 { // volume label
				lfn = nil
				continue
			}
			name := shortName(e)
			if lfn != nil {
				n := 0
				for n < len(lfn) && lfn[n] != 0 && lfn[n] != 0xffff {
					n++
				}
				name = string(utf16.Decode(lfn[:n]))
				lfn = nil
			}
			if name == ".." && parent == root { // ".." names the root as cluster 0
				le.PutUint16(e[20:], 0)
				le.PutUint16(e[26:], 0)
			}
			if name == "." || name == ".." {
				continue
			}
			rel := path.Join(prefix, name)
			clus := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			if e[11]&0x10 == 0 && le.Uint32(e[28:]) == 0 && clus != 0 { // empty file holding a cluster
				cl, err := chain(clus)
				if err != nil {
					return err
				}
				for _, c := range cl {
					le.PutUint32(fat[4*c:], 0)
				}
				le.PutUint16(e[20:], 0)
				le.PutUint16(e[26:], 0)
			}
			if t, ok := mtimes[rel]; ok {
				d, tm := fatDateTime(t)
				le.PutUint16(e[14:], tm)
				le.PutUint16(e[16:], d)
				le.PutUint16(e[18:], d)
				le.PutUint16(e[22:], tm)
				le.PutUint16(e[24:], d)
				e[13] = 0
			}
			if e[11]&0x10 != 0 && clus >= 2 {
				subdirs = append(subdirs, struct {
					clus uint32
					rel  string
				}{clus, rel})
			}
		}
		for i, c := range cl {
			if _, err := f.WriteAt(buf[int64(i)*csize:int64(i+1)*csize], dataOff+int64(c-2)*csize); err != nil {
				return err
			}
		}
		for _, s := range subdirs {
			if err := walk(s.clus, dirClus, s.rel); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0, ""); err != nil {
		return fmt.Errorf("fix the FAT32: %w", err)
	}
	for i := int64(0); i < nfats; i++ {
		if _, err := f.WriteAt(fat, fatOff+i*fatsz*bps); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(bs, start); err != nil {
		return err
	}
	if backup > 0 && backup < reserved {
		if _, err := f.WriteAt(bs, start+backup*bps); err != nil {
			return err
		}
	}
	if fsinfo > 0 && fsinfo < reserved {
		clusters = (total - reserved - nfats*fatsz) / spc
		var free, next uint32 = 0, 0xffffffff
		for c := int64(2); c < clusters+2 && c < entries; c++ {
			if le.Uint32(fat[4*c:])&0x0fffffff == 0 {
				free++
				next = min(next, uint32(c))
			}
		}
		var b [8]byte // free count, next free
		le.PutUint32(b[0:], free)
		le.PutUint32(b[4:], next)
		if _, err := f.WriteAt(b[:], start+fsinfo*bps+488); err != nil {
			return err
		}
	}
	return nil
}

// shortName is an 8.3 entry's name as readers show it, with the NT lower-case flags applied.
func shortName(e []byte) string {
	base := trimSpaces(e[0:8])
	ext := trimSpaces(e[8:11])
	if e[12]&0x08 != 0 {
		base = toLower(base)
	}
	if e[12]&0x10 != 0 {
		ext = toLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

func trimSpaces(b []byte) string {
	n := len(b)
	for n > 0 && b[n-1] == ' ' {
		n--
	}
	return string(b[:n])
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// fatDateTime encodes t in local time, as FAT stores it (2-second steps, 1980 to 2107).
func fatDateTime(t time.Time) (date, tm uint16) {
	t = t.Local()
	switch {
	case t.Year() < 1980:
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.Local)
	case t.Year() > 2107:
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.Local)
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tm
}
