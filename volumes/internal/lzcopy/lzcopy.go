// Package lzcopy copies LZ77 matches, the inner step both the XPRESS and the LZX decoders share.
package lzcopy

import "encoding/binary"

// Match copies length bytes from offset bytes back to dst[out:], repeating the pattern when the two
// overlap. The caller has checked 0 < offset <= out and out+length <= len(dst). It may write up to 7
// bytes past out+length, never past len(dst): those bytes are rewritten by the output that follows.
func Match(dst []byte, out, offset, length int) {
	from := out - offset
	if offset >= 8 && out+length+8 <= len(dst) {
		// Each 8-byte word comes from bytes already final, since the source trails by 8 or more.
		for i := 0; i < length; i += 8 {
			binary.LittleEndian.PutUint64(dst[out+i:], binary.LittleEndian.Uint64(dst[from+i:]))
		}
		return
	}
	if offset >= length {
		copy(dst[out:out+length], dst[from:from+length])
		return
	}
	for i := range length {
		dst[out+i] = dst[from+i]
	}
}
