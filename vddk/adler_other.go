//go:build !amd64

package vddk

// hasAVX2 is false off amd64: there is only the portable checksum.
const hasAVX2 = false

// adler32Sum is the zlib checksum of p.
func adler32Sum(p []byte) uint32 { return adler32Generic(p) }

// adler32AVX2 exists so the tests build everywhere; they call it only when hasAVX2 is true.
func adler32AVX2([]byte) uint32 { panic("vddk: no AVX2 checksum on this architecture") }
