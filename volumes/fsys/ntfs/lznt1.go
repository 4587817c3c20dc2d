package ntfs

import "encoding/binary"

const lzntChunk = 4096

// decompressLZNT1 expands an LZNT1 stream into dst (one compression unit) and returns the number
// of bytes produced. Chunks decompress to at most 4096 bytes each; a short chunk ends the data of the
// chunk is zero-filled to its full 4096 bytes, as Windows does.
func decompressLZNT1(dst, src []byte) (int, error) {
	out := 0
	for in := 0; in+2 <= len(src) && out < len(dst); {
		h := binary.LittleEndian.Uint16(src[in:])
		if h == 0 {
			break
		}
		size := int(h&0x0FFF) + 1
		in += 2
		if in+size > len(src) {
			return out, corrupt("LZNT1: chunk of %d bytes at %d overruns the %d-byte unit", size, in-2, len(src))
		}
		chunk := src[in : in+size]
		in += size
		end := min(out+lzntChunk, len(dst))
		if h&0x8000 == 0 {
			// Stored chunk: the bytes are the data.
			n := copy(dst[out:end], chunk)
			clear(dst[out+n : end])
			out = end
			continue
		}
		n, err := lzntChunkDecode(dst[out:end], chunk)
		if err != nil {
			return out, err
		}
		clear(dst[out+n : end])
		out = end
	}
	return out, nil
}

// lzntChunkDecode expands one compressed chunk. A back-reference token splits its 16 bits between
// offset and length; the offset gets more bits the further into the chunk the output is.
func lzntChunkDecode(dst, src []byte) (int, error) {
	out := 0
	for in := 0; in < len(src); {
		flags := src[in]
		in++
		for bit := 0; bit < 8 && in < len(src); bit++ {
			if flags&(1<<bit) == 0 {
				if out >= len(dst) {
					return out, corrupt("LZNT1: literal past the end of the chunk")
				}
				dst[out] = src[in]
				out++
				in++
				continue
			}
			if in+2 > len(src) {
				return out, corrupt("LZNT1: truncated back-reference")
			}
			tok := int(binary.LittleEndian.Uint16(src[in:]))
			in += 2
			if out == 0 {
				return out, corrupt("LZNT1: back-reference at the start of a chunk")
			}
			lenBits := 12
			for p := out - 1; p >= 0x10; p >>= 1 {
				lenBits--
			}
			off := tok>>lenBits + 1
			length := tok&(1<<lenBits-1) + 3
			if off > out {
				return out, corrupt("LZNT1: back-reference %d before the chunk start", off)
			}
			if out+length > len(dst) {
				return out, corrupt("LZNT1: back-reference past the end of the chunk")
			}
			// Byte by byte: the source may overlap the bytes being written.
			for i := 0; i < length; i++ {
				dst[out] = dst[out-off]
				out++
			}
		}
	}
	return out, nil
}
