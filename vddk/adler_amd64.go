package vddk

import "golang.org/x/sys/cpu"

// hasAVX2 selects the vector checksum: it ran over four times faster than adler32Generic, which took a
// quarter of the FUSE daemon's CPU reading stream-optimized disks.
var hasAVX2 = cpu.X86.HasAVX2

// adler32Sum is the zlib checksum of p.
func adler32Sum(p []byte) uint32 {
	if hasAVX2 && len(p) >= 64 {
		return adler32AVX2(p)
	}
	return adler32Generic(p)
}

// adler32AVX2 sums the whole 64-byte steps of p in assembly and the few bytes left in Go.
func adler32AVX2(p []byte) uint32 {
	n := len(p) &^ 63
	return adler32Update(adler32AVX2Blocks(1, p[:n]), p[n:])
}

// adler32AVX2Blocks continues the checksum adler over p rounded down to a multiple of 64 bytes.
//
//go:noescape
func adler32AVX2Blocks(adler uint32, p []byte) uint32
