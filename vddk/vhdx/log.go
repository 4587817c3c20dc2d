package vhdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/vmdkmount/vmdkmount/vddk/layer"
)

// A VHDX whose header names a log was not closed after its last metadata update: the log's active
// sequence of entries holds writes (4 KiB sectors, zero ranges) that must be applied before the
// file is consistent. They are applied to an overlay in memory; the file itself is never written.

const (
	logSector = 4096
	maxLog    = 32 << 20 // Hyper-V and qemu write 1 MiB logs
)

// op is one write of the log: data, or zeros when data is nil.
type op struct {
	off, n int64
	data   []byte
}

// overlay is the file with the log's writes applied, in order.
type overlay struct {
	f        io.ReaderAt
	fileSize int64
	size     int64 // the file's size after replay (LastFileOffset may lie past the end)
	ops      []op
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.f.ReadAt(p, off)
	if n < len(p) && (err == nil || err == io.EOF) && off+int64(len(p)) <= o.size {
		clear(p[n:])
		n, err = len(p), nil
	}
	end := off + int64(len(p))
	for _, w := range o.ops {
		s, e := max(off, w.off), min(end, w.off+w.n)
		if s >= e {
			continue
		}
		if w.data == nil {
			clear(p[s-off : e-off])
		} else {
			copy(p[s-off:e-off], w.data[s-w.off:])
		}
	}
	return n, err
}

// logEntry is a valid entry found in the log.
type logEntry struct {
	pos, length, tail int64
	seq               uint64
	last              int64
	body              []byte
}

// replayLog finds the log's active sequence and returns the file as it reads once the sequence is
// applied.
func replayLog(f io.ReaderAt, fileSize, off, length int64, guid []byte) (*overlay, error) {
	if off < mib || off%mib != 0 || length <= 0 || length%mib != 0 || off > fileSize || length > fileSize-off {
		return nil, fmt.Errorf("log (%d bytes at byte %d) is misaligned or outside the %d-byte file", length, off, fileSize)
	}
	if length > maxLog {
		return nil, layer.Unsupported("a VHDX log of %d MiB (replayed in memory up to %d MiB)", length>>20, maxLog>>20)
	}
	raw := make([]byte, length)
	if err := layer.ReadFull(f, raw, off, "VHDX log"); err != nil {
		return nil, err
	}
	ring := append(raw, raw...) // an entry may wrap around the end
	entries := map[int64]*logEntry{}
	for pos := int64(0); pos < length; pos += logSector {
		if e := parseEntry(ring, pos, length, guid); e != nil {
			entries[pos] = e
		}
	}
	// The active sequence: the valid run of consecutive entries from a head's tail to that head,
	// for the head with the highest sequence number.
	var best []*logEntry
	for _, head := range entries {
		if len(best) > 0 && head.seq <= best[len(best)-1].seq {
			continue
		}
		var run []*logEntry
		pos := head.tail
		for range length / logSector {
			e := entries[pos]
			if e == nil || len(run) > 0 && e.seq != run[len(run)-1].seq+1 {
				break
			}
			run = append(run, e)
			if e == head {
				best = run
				break
			}
			pos = (pos + e.length) % length
		}
	}
	if len(best) == 0 {
		return nil, fmt.Errorf("the header names a log but it holds no valid sequence of entries")
	}
	ov := &overlay{f: f, fileSize: fileSize, size: fileSize}
	for _, e := range best {
		if err := ov.apply(e); err != nil {
			return nil, err
		}
	}
	if l := best[len(best)-1].last; l > ov.size {
		if l > maxVirtual*2 {
			return nil, fmt.Errorf("log says the file is %d bytes long", l)
		}
		ov.size = l
	}
	return ov, nil
}

// parseEntry checks the entry at pos: signature, checksum, GUID, descriptors and data sectors.
func parseEntry(ring []byte, pos, logLen int64, guid []byte) *logEntry {
	le := binary.LittleEndian
	h := ring[pos:]
	if string(h[:4]) != "loge" {
		return nil
	}
	length := int64(le.Uint32(h[8:]))
	if length < logSector || length%logSector != 0 || length > logLen || !bytes.Equal(h[32:48], guid) {
		return nil
	}
	body := h[:length]
	c := crc32.Update(0, castagnoli, body[:4])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	if crc32.Update(c, castagnoli, body[8:]) != le.Uint32(body[4:]) {
		return nil
	}
	e := &logEntry{pos: pos, length: length, tail: int64(le.Uint32(h[12:])), seq: le.Uint64(h[16:]), last: int64(le.Uint64(h[56:])), body: body}
	count := int64(le.Uint32(h[24:]))
	descArea := (64 + 32*count + logSector - 1) / logSector * logSector
	if e.tail%logSector != 0 || e.tail >= logLen || descArea > length {
		return nil
	}
	data := int64(0)
	for i := range count {
		if string(body[64+32*i:][:4]) == "desc" {
			data++
		}
	}
	if descArea+data*logSector != length {
		return nil
	}
	return e
}

// apply adds an entry's writes to the overlay.
func (o *overlay) apply(e *logEntry) error {
	le := binary.LittleEndian
	count := int64(le.Uint32(e.body[24:]))
	sector := (64 + 32*count + logSector - 1) / logSector * logSector
	for i := range count {
		d := e.body[64+32*i:][:32]
		fileOff := int64(le.Uint64(d[16:]))
		if le.Uint64(d[24:]) != e.seq {
			return fmt.Errorf("log entry %d: descriptor %d has sequence %d", e.seq, i, le.Uint64(d[24:]))
		}
		if fileOff < 0 || fileOff%logSector != 0 || fileOff > maxVirtual*2 {
			return fmt.Errorf("log entry %d: descriptor %d writes at byte %d", e.seq, i, fileOff)
		}
		switch string(d[:4]) {
		case "zero":
			n := int64(le.Uint64(d[8:]))
			if n%logSector != 0 || n < 0 || n > maxVirtual {
				return fmt.Errorf("log entry %d: zero descriptor %d of %d bytes", e.seq, i, n)
			}
			o.ops = append(o.ops, op{off: fileOff, n: n})
		case "desc":
			s := e.body[sector:][:logSector]
			sector += logSector
			if string(s[:4]) != "data" || le.Uint32(s[4:]) != uint32(e.seq>>32) || le.Uint32(s[4092:]) != uint32(e.seq) {
				return fmt.Errorf("log entry %d: data sector %d is not of this entry", e.seq, i)
			}
			b := make([]byte, logSector)
			copy(b, d[8:16]) // the leading bytes the data sector's header displaced
			copy(b[8:], s[8:4092])
			copy(b[4092:], d[4:8]) // and the trailing ones
			o.ops = append(o.ops, op{off: fileOff, n: logSector, data: b})
		default:
			return fmt.Errorf("log entry %d: descriptor %d has no known signature", e.seq, i)
		}
	}
	return nil
}
