package iso9660

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Directory record flags.
const (
	flagHidden     = 0x01
	flagDirectory  = 0x02
	flagAssociated = 0x04
	flagMultiExt   = 0x80
)

// record is one decoded directory record.
type record struct {
	length uint8
	extent uint32 // first logical block of the data (extended attribute record skipped)
	size   uint32
	flags  uint8
	time   time.Time
	id     []byte // file identifier as stored
	system []byte // system use area (SUSP entries)
}

// parseRecord decodes the directory record at the start of b; b must hold at least the whole record.
func parseRecord(b []byte) (*record, error) {
	if len(b) < 34 || int(b[0]) > len(b) || b[0] < 34 {
		return nil, fmt.Errorf("%w: directory record of %d bytes in %d", ErrCorrupt, firstOr0(b), len(b))
	}
	r := &record{
		length: b[0],
		extent: binary.LittleEndian.Uint32(b[2:]) + uint32(b[1]),
		size:   binary.LittleEndian.Uint32(b[10:]),
		flags:  b[25],
		time:   recordTime(b[18:25]),
	}
	nameLen := int(b[32])
	if 33+nameLen > int(r.length) {
		return nil, fmt.Errorf("%w: identifier of %d bytes overruns a %d-byte record", ErrCorrupt, nameLen, r.length)
	}
	r.id = b[33 : 33+nameLen]
	su := 33 + nameLen
	if nameLen%2 == 0 {
		su++ // padding byte keeps the system use area even-aligned
	}
	if su < int(r.length) {
		r.system = b[su:r.length]
	}
	return r, nil
}

func firstOr0(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(b[0])
}

// recordTime decodes the 7-byte recording date: years since 1900, month, day, hour, minute, second and
// the offset from GMT in 15-minute units. The kernel ignores offsets beyond ±13 hours.
func recordTime(b []byte) time.Time {
	if b[1] == 0 && b[2] == 0 {
		return time.Time{}
	}
	t := time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, time.UTC)
	if off := int(int8(b[6])); off >= -52 && off <= 52 {
		t = t.Add(-time.Duration(off) * 15 * time.Minute)
	}
	return t
}

// longTime decodes the 17-byte "YYYYMMDDHHMMSScc" + offset form used by Rock Ridge TF (long form).
func longTime(b []byte) time.Time {
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d := num(b[0:4]), num(b[4:6]), num(b[6:8])
	h, mi, s, cs := num(b[8:10]), num(b[10:12]), num(b[12:14]), num(b[14:16])
	if y <= 0 || mo <= 0 || d <= 0 || h < 0 || mi < 0 || s < 0 || cs < 0 {
		return time.Time{}
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, cs*10_000_000, time.UTC)
	if off := int(int8(b[16])); off >= -52 && off <= 52 {
		t = t.Add(-time.Duration(off) * 15 * time.Minute)
	}
	return t
}
