package ntfs

// dataRun maps length clusters starting at vcn to lcn; lcn < 0 marks a sparse run (no clusters).
type dataRun struct {
	vcn, lcn, length int64
}

const maxVCN = 1 << 56 // far beyond any volume; keeps VCN arithmetic free of overflow

// decodeRuns decodes a mapping-pairs array. Each pair is a header byte (low nibble: size of the
// length, high nibble: size of the signed LCN delta, 0 for a sparse run), then the two numbers.
func decodeRuns(b []byte, startVCN int64) ([]dataRun, error) {
	var runs []dataRun
	vcn, lcn := startVCN, int64(0)
	for i := 0; i < len(b); {
		h := b[i]
		if h == 0 {
			return runs, nil
		}
		ls, os := int(h&0x0F), int(h>>4)
		if ls == 0 || ls > 8 || os > 8 || i+1+ls+os > len(b) {
			return nil, corrupt("run list: bad pair header %#x at %d", h, i)
		}
		length := int64(readSigned(b[i+1 : i+1+ls]))
		if length <= 0 || length > maxVCN || vcn > maxVCN-length {
			return nil, corrupt("run list: bad run length %d at %d", length, i)
		}
		r := dataRun{vcn: vcn, lcn: -1, length: length}
		if os > 0 {
			lcn += readSigned(b[i+1+ls : i+1+ls+os])
			if lcn < 0 || lcn > maxVCN {
				return nil, corrupt("run list: cluster %d out of range at %d", lcn, i)
			}
			r.lcn = lcn
		}
		runs = append(runs, r)
		vcn += length
		i += 1 + ls + os
	}
	// The attribute ended without a terminator byte: its bounds end the list.
	return runs, nil
}

// readSigned reads a little-endian two's-complement integer of 1–8 bytes.
func readSigned(b []byte) int64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	shift := 64 - 8*uint(len(b))
	return int64(v<<shift) >> shift
}
