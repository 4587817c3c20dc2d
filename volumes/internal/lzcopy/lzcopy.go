// Package lzcopy copies LZ77 matches, the inner step both the XPRESS and the LZX decoders share.
package lzcopy

import "encoding/binary"

// Match copies length bytes from offset bytes back to dst[out:], repeating the pattern when the two
// overlap. The caller has checked 0 < offset <= out and out+length <= len(dst). It may write up to 7
// bytes past out+length, never past len(dst): those bytes are rewritten by the output that follows.
//
// It is small enough to inline into a decoding loop and makes no call on any path (a call there
// makes the loop keep its state in memory): the common case copies 8-byte words, each from bytes
// already final since the source trails by 8 or more; overlapping and end-of-output matches go byte
// by byte.
func Match(dst []byte, out, offset, length int) {
	if from := out - offset; offset >= 8 && out+length+8 <= len(dst) {
		// Slices of a constant length: no check of an empty result (its pointer masked), and the
		// word access needs no check of its own.
		for i := 0; i < length; i += 8 {
			binary.LittleEndian.PutUint64(dst[out+i:out+i+8], binary.LittleEndian.Uint64(dst[from+i:from+i+8]))
		}
	} else {
		for i := range length {
			dst[out+i] = dst[from+i]
		}
	}
}

// WindowSize is the largest output a Window holds: an XPRESS Huffman block, twice an LZX chunk.
const WindowSize = 1 << 16

// Window is an output buffer for a decoder's chunk of up to WindowSize bytes, with room past its end
// for the bytes a word copy writes beyond a match. Indexes into it are masked to WindowSize, which
// the compiler sees: copies into it take no bounds checks, unlike copies into a slice.
type Window [WindowSize + 16]byte

const winMask = WindowSize - 1

// Match is the package Match inside w: the caller has checked 0 < offset <= out and
// out+length <= WindowSize. It may write up to 7 bytes past out+length.
func (w *Window) Match(out, offset, length int) {
	if offset >= 8 {
		// Most matches are 8 bytes or shorter: one word, then a loop for the rest.
		for {
			p := out & winMask
			binary.LittleEndian.PutUint64(w[p:p+8], binary.LittleEndian.Uint64(w[(p-offset)&winMask:]))
			if length <= 8 {
				return
			}
			out, length = out+8, length-8
		}
	}
	for i := out; i < out+length; i++ {
		w[i&winMask] = w[(i-offset)&winMask]
	}
}
