// Package wimres makes compressed resources with wimlib for tests and benchmarks: it captures data
// into a WIM with wimcapture and returns the file's resource (chunk table then chunks), which is
// byte for byte the layout Windows' WOF stores in a file's WofCompressedData stream.
package wimres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

const (
	resFlagMetadata   = 0x02
	resFlagCompressed = 0x04
	blobEntrySize     = 50
)

// Capture compresses data with wimcapture (compress "xpress" or "lzx", chunk size in bytes) and
// returns its resource. It skips the test when wimcapture is absent and fails it when wimlib stored
// the data uncompressed.
func Capture(t testing.TB, data []byte, compress string, chunk int) []byte {
	t.Helper()
	if _, err := exec.LookPath("wimcapture"); err != nil {
		t.Skip("wimcapture (wimtools) is not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := CaptureFile(src, dir, compress, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// CaptureFile compresses the file src with wimcapture, working in the folder tmp, and returns its
// resource.
func CaptureFile(src, tmp, compress string, chunk int) ([]byte, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	in, err := os.MkdirTemp(tmp, "wimres-")
	if err != nil {
		return nil, err
	}
	wim := in + ".wim" // outside the captured folder
	defer os.RemoveAll(in)
	defer os.Remove(wim)
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	if err := os.Symlink(abs, filepath.Join(in, "f")); err != nil {
		return nil, err
	}
	cmd := exec.Command("wimcapture", in, wim, "--dereference", "--compress="+compress, "--chunk-size="+strconv.Itoa(chunk))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wimcapture: %v: %s", err, out)
	}
	b, err := os.ReadFile(wim)
	if err != nil {
		return nil, err
	}
	res, err := resource(b, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", wim, err)
	}
	return res, nil
}

// resource finds the compressed, non-metadata blob of the given uncompressed size in a WIM.
func resource(b []byte, size int64) ([]byte, error) {
	if len(b) < 208 || !bytes.HasPrefix(b, []byte("MSWIM\x00\x00\x00")) {
		return nil, fmt.Errorf("not a WIM")
	}
	tabSize, _, tabOff, _ := reshdr(b[0x30:])
	if tabOff+tabSize > int64(len(b)) {
		return nil, fmt.Errorf("blob table past the file")
	}
	tab := b[tabOff : tabOff+tabSize]
	for i := 0; i+blobEntrySize <= len(tab); i += blobEntrySize {
		csize, flags, off, usize := reshdr(tab[i:])
		if usize != size || flags&resFlagMetadata != 0 {
			continue
		}
		if flags&resFlagCompressed == 0 {
			return nil, fmt.Errorf("wimlib stored the %d-byte blob uncompressed", size)
		}
		if off+csize > int64(len(b)) {
			return nil, fmt.Errorf("blob past the file")
		}
		return b[off : off+csize], nil
	}
	return nil, fmt.Errorf("no blob of %d bytes", size)
}

// reshdr decodes a WIM resource header: 7-byte stored size, flags, offset, original size.
func reshdr(b []byte) (stored int64, flags byte, off, orig int64) {
	v := binary.LittleEndian.Uint64(b)
	return int64(v & (1<<56 - 1)), byte(v >> 56), int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[16:]))
}

// Chunks splits a resource of size uncompressed bytes in chunks of chunk bytes into its stored
// chunks (compressed, or raw when a chunk's stored size equals its uncompressed size).
func Chunks(t testing.TB, res []byte, size int64, chunk int) [][]byte {
	t.Helper()
	n := (size + int64(chunk) - 1) / int64(chunk)
	entry := int64(4)
	if size > 0xFFFFFFFF {
		entry = 8
	}
	table := (n - 1) * entry
	offs := []int64{0}
	for i := int64(0); i < n-1; i++ {
		if entry == 4 {
			offs = append(offs, int64(binary.LittleEndian.Uint32(res[i*4:])))
		} else {
			offs = append(offs, int64(binary.LittleEndian.Uint64(res[i*8:])))
		}
	}
	offs = append(offs, int64(len(res))-table)
	out := make([][]byte, n)
	for i := range out {
		out[i] = res[table+offs[i] : table+offs[i+1]]
	}
	return out
}

// Sample returns size bytes that exercise a compressor, the same on every run: x86-like code with
// E8 calls (which LZX translates), repeated text, zeros, and incompressible bytes that wimlib
// stores raw.
func Sample(t testing.TB, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	rnd := uint64(0x9E3779B97F4A7C15)
	next := func() byte {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return byte(rnd)
	}
	for part := 0; b.Len() < size; part++ {
		switch part % 4 {
		case 0:
			for i := 0; i < 3000; i++ {
				// push rbp; mov rbp,rsp; call rel32; add rsp,imm8; a varying byte;
				b.Write([]byte{0x55, 0x48, 0x89, 0xE5, 0xE8})
				b.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(i%97*64-3000))))
				b.Write([]byte{0x48, 0x83, 0xC4, byte(i), next() & 7})
				// mov rax,[rbp-8]; mov rdi,rax; mov rax,[rip+…]: long repeats, as real code has
				b.Write([]byte{0x48, 0x8B, 0x45, 0xF8, 0x48, 0x89, 0xC7, 0x48, 0x8B, 0x05})
			}
		case 1:
			for i := 0; i < 2000; i++ {
				fmt.Fprintf(&b, "line %d of the sample, value %x\n", i, i*i)
			}
		case 2:
			b.Write(make([]byte, 20000+part))
		case 3:
			for i := 0; i < 9000; i++ {
				b.WriteByte(next())
			}
		}
	}
	return b.Bytes()[:size]
}
