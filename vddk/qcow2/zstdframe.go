package qcow2

import "encoding/binary"

// zstdFrameEnd returns the length of the zstd frame src starts with, found by walking its header and
// block headers without decoding, so that the frame alone can be handed to a whole-buffer decoder:
// the byte range an L2 entry gives runs on past the frame (its sector count rounds up) into the next
// cluster's bytes. ok is false when src does not start with a whole, well-formed zstd frame.
func zstdFrameEnd(src []byte) (n int, ok bool) {
	if len(src) < 6 || binary.LittleEndian.Uint32(src) != 0xFD2FB528 {
		return 0, false
	}
	fhd := src[4]
	if fhd&0x08 != 0 { // reserved bit
		return 0, false
	}
	single := fhd&0x20 != 0
	pos := 5
	if !single {
		pos++ // window descriptor
	}
	pos += [4]int{0, 1, 2, 4}[fhd&3] // dictionary ID
	fcs := [4]int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && single {
		fcs = 1
	}
	pos += fcs
	for {
		if pos+3 > len(src) {
			return 0, false
		}
		h := int(src[pos]) | int(src[pos+1])<<8 | int(src[pos+2])<<16
		pos += 3
		switch h >> 1 & 3 {
		case 0, 2: // raw, compressed: size bytes follow
			pos += h >> 3
		case 1: // RLE: one byte follows
			pos++
		default: // reserved
			return 0, false
		}
		if pos > len(src) {
			return 0, false
		}
		if h&1 != 0 { // last block
			break
		}
	}
	if fhd&0x04 != 0 { // content checksum
		pos += 4
		if pos > len(src) {
			return 0, false
		}
	}
	return pos, true
}
