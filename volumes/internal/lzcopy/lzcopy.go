// Package lzcopy copies LZ77 matches, the inner step both the XPRESS and the LZX decoders share.
package lzcopy

import "encoding/binary"

// WindowSize is the largest output a Window holds: an XPRESS Huffman block, twice an LZX chunk.
const WindowSize = 1 << 16

// Window is an output buffer for a decoder's chunk of up to WindowSize bytes, with room past its end
// for the bytes a word copy writes beyond a match. Indexes into it are masked to WindowSize, which
// the compiler sees: copies into it take no bounds checks, unlike copies into a slice.
type Window [WindowSize + 16]byte

const winMask = WindowSize - 1

// Match copies length bytes from offset bytes back to w[out:], repeating the pattern when the two
// overlap. It is small enough to inline into a decoding loop and makes no call on any path (a call
// there makes the loop keep its state in memory): the common case copies 8-byte words, each from
// bytes already final since the source trails by 8 or more; overlapping matches go byte by byte.
// The caller has checked 0 < offset <= out; the copy is right when out+length <= WindowSize. It
// may write up to 7 bytes past out+length. Whatever the arguments, it stays inside w: indexes
// wrap around its size.
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
