package iso9660

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// maxContinuations bounds how many CE continuation areas one record may chain through.
const maxContinuations = 32

// rockRidge is what the SUSP entries of one directory record say.
type rockRidge struct {
	any        bool // any Rock Ridge entry was present
	sp         bool // SUSP "SP" indicator (only meaningful on the root's "." record)
	skip       int  // SP's LEN_SKP
	hasPX      bool
	mode       uint32
	nlink      uint32
	uid, gid   uint32
	serial     uint64
	hasSerial  bool
	hasPN      bool
	devHigh    uint32
	devLow     uint32
	name       string
	hasName    bool
	target     string
	hasTarget  bool
	relocated  bool   // RE: this directory sits in a relocation folder; hide it there
	childLink  uint32 // CL: the directory's real location
	hasCL      bool
	times      [4]time.Time // creation, modify, access, attributes(change)
	hasTime    [4]bool
	zf         *zisofs
	slParts    []string // symlink components gathered so far
	slPartial  bool     // the last component continues in the next SL entry
	slRoot     bool
	nmContinue bool
}

// parseSUSP walks the System Use entries of one record, following CE continuation areas.
func (f *FS) parseSUSP(area []byte, skip int) (*rockRidge, error) {
	rr := &rockRidge{}
	if skip > len(area) {
		return rr, nil
	}
	area = area[skip:]
	seen := map[int64]bool{}
	for hop := 0; ; hop++ {
		ce, err := rr.parseEntries(area)
		if err != nil {
			return nil, err
		}
		if ce == nil {
			break
		}
		if hop >= maxContinuations || seen[ce.pos] {
			return nil, fmt.Errorf("%w: continuation area chain loops or exceeds %d areas", ErrCorrupt, maxContinuations)
		}
		seen[ce.pos] = true
		if ce.length > sectorSize || ce.pos < 0 || ce.pos+int64(ce.length) > f.size {
			return nil, fmt.Errorf("%w: continuation area %d+%d outside the image", ErrCorrupt, ce.pos, ce.length)
		}
		area = make([]byte, ce.length)
		if _, err := f.r.ReadAt(area, ce.pos); err != nil {
			return nil, fmt.Errorf("iso9660: reading continuation area: %w", err)
		}
	}
	if rr.hasTarget || len(rr.slParts) > 0 {
		rr.target = joinSymlink(rr.slRoot, rr.slParts)
		rr.hasTarget = true
	}
	return rr, nil
}

type continuation struct {
	pos    int64
	length uint32
}

// parseEntries decodes one area's entries and returns the CE continuation it names, if any.
func (rr *rockRidge) parseEntries(b []byte) (*continuation, error) {
	var ce *continuation
	for len(b) >= 4 {
		sig, n := string(b[0:2]), int(b[2])
		if n < 4 || n > len(b) {
			if b[0] == 0 {
				break // zero padding
			}
			return nil, fmt.Errorf("%w: SUSP entry %q of length %d in %d bytes", ErrCorrupt, sig, n, len(b))
		}
		d := b[4:n]
		b = b[n:]
		le := binary.LittleEndian
		switch sig {
		case "ST":
			return ce, nil
		case "CE":
			if len(d) < 24 {
				return nil, fmt.Errorf("%w: short CE entry", ErrCorrupt)
			}
			ce = &continuation{
				pos:    int64(le.Uint32(d[0:]))*sectorSize + int64(le.Uint32(d[8:])),
				length: le.Uint32(d[16:]),
			}
		case "SP":
			if len(d) >= 3 && d[0] == 0xBE && d[1] == 0xEF {
				rr.sp, rr.skip = true, int(d[2])
			}
		case "PX":
			if len(d) < 32 {
				return nil, fmt.Errorf("%w: short PX entry", ErrCorrupt)
			}
			rr.any, rr.hasPX = true, true
			rr.mode, rr.nlink = le.Uint32(d[0:]), le.Uint32(d[8:])
			rr.uid, rr.gid = le.Uint32(d[16:]), le.Uint32(d[24:])
			if len(d) >= 40 {
				rr.serial, rr.hasSerial = uint64(le.Uint32(d[32:])), true
			}
		case "PN":
			if len(d) < 16 {
				return nil, fmt.Errorf("%w: short PN entry", ErrCorrupt)
			}
			rr.any, rr.hasPN = true, true
			rr.devHigh, rr.devLow = le.Uint32(d[0:]), le.Uint32(d[8:])
		case "NM":
			if len(d) < 1 {
				return nil, fmt.Errorf("%w: short NM entry", ErrCorrupt)
			}
			rr.any = true
			if d[0]&0x06 != 0 { // "." or ".." alias
				continue
			}
			if !rr.nmContinue {
				rr.name = ""
			}
			rr.name += string(d[1:])
			rr.hasName, rr.nmContinue = true, d[0]&1 != 0
		case "SL":
			if len(d) < 1 {
				return nil, fmt.Errorf("%w: short SL entry", ErrCorrupt)
			}
			rr.any = true
			if err := rr.symlinkComponents(d[1:]); err != nil {
				return nil, err
			}
		case "TF":
			if len(d) < 1 {
				return nil, fmt.Errorf("%w: short TF entry", ErrCorrupt)
			}
			rr.any = true
			rr.timestamps(d[0], d[1:])
		case "RE":
			rr.any, rr.relocated = true, true
		case "CL":
			if len(d) < 8 {
				return nil, fmt.Errorf("%w: short CL entry", ErrCorrupt)
			}
			rr.any, rr.hasCL, rr.childLink = true, true, le.Uint32(d[0:])
		case "ZF":
			if len(d) < 12 {
				return nil, fmt.Errorf("%w: short ZF entry", ErrCorrupt)
			}
			rr.any = true
			if string(d[0:2]) == "pz" {
				rr.zf = &zisofs{headerSize: uint32(d[2]) * 4, blockLog: d[3], size: le.Uint32(d[4:])}
			}
		case "RR", "PL", "SF", "ER", "ES", "PD", "AA", "AL":
			// RR: flag summary. PL: parent of a relocated directory, not needed to list it.
			// ER/ES/PD: extension bookkeeping. AA/AL: libisofs AAIP attributes, not Rock Ridge.
		}
	}
	return ce, nil
}

// symlinkComponents appends the components of one SL entry.
func (rr *rockRidge) symlinkComponents(b []byte) error {
	for len(b) > 0 {
		if len(b) < 2 || 2+int(b[1]) > len(b) {
			return fmt.Errorf("%w: SL component overruns its entry", ErrCorrupt)
		}
		flags, content := b[0], string(b[2:2+int(b[1])])
		b = b[2+int(b[1]):]
		var part string
		switch {
		case flags&0x02 != 0:
			part = "."
		case flags&0x04 != 0:
			part = ".."
		case flags&0x08 != 0:
			rr.slRoot, rr.slParts, rr.slPartial = true, nil, false
			continue
		default:
			part = content
		}
		if rr.slPartial && len(rr.slParts) > 0 {
			rr.slParts[len(rr.slParts)-1] += part
		} else {
			rr.slParts = append(rr.slParts, part)
		}
		rr.slPartial = flags&0x01 != 0
	}
	return nil
}

func joinSymlink(root bool, parts []string) string {
	s := strings.Join(parts, "/")
	if root {
		return "/" + s
	}
	return s
}

// timestamps decodes a TF entry: which times are present, in order creation, modify, access,
// attributes, backup, expiration, effective; bit 7 selects the 17-byte long form.
func (rr *rockRidge) timestamps(flags byte, b []byte) {
	size := 7
	if flags&0x80 != 0 {
		size = 17
	}
	for bit := range 7 {
		if flags&(1<<bit) == 0 {
			continue
		}
		if len(b) < size {
			return
		}
		var t time.Time
		if size == 7 {
			t = recordTime(b[:7])
		} else {
			t = longTime(b[:17])
		}
		b = b[size:]
		if bit < 4 {
			rr.times[bit], rr.hasTime[bit] = t, true
		}
	}
}
