package vddk

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"
	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
)

// Tests of inflateRaw against the standard library's compress/flate and compress/zlib readers, on
// streams made by the standard library's and klauspost's compressors and by qemu-img.

// stdInflate decodes a raw deflate stream with compress/flate, reading at most limit+1 bytes. It
// returns the output, the input bytes the reader consumed (it reads a bytes.Reader exactly as far as it
// needs), and the reader's error.
func stdInflate(src []byte, limit int) ([]byte, int, error) {
	r := bytes.NewReader(src)
	fr := flate.NewReader(r)
	out, err := io.ReadAll(io.LimitReader(fr, int64(limit)+1))
	return out, len(src) - r.Len(), err
}

// wordText is compressible pseudo-text: words of a small vocabulary, so matches have many lengths
// and distances.
func wordText(r *rand.Rand, n int) []byte {
	words := strings.Fields("the disk grain table sector marker footer header stream optimized sparse extent " +
		"descriptor a of to in is for with that qemu vmware block volume file system inode journal data")
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		switch r.IntN(12) {
		case 0:
			b.WriteString(".\n")
		case 1:
			fmt.Fprintf(&b, " %d ", r.IntN(100000))
		default:
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// runs repeats short patterns (periods 1-9) with random run lengths: overlapping matches.
func runs(r *rand.Rand, n int) []byte {
	var b []byte
	for len(b) < n {
		period := 1 + r.IntN(9)
		pat := randomBytes(r, period)
		for k := r.IntN(300); k >= 0; k-- {
			b = append(b, pat[k%period])
		}
	}
	return b[:n]
}

// mixed alternates text, random bytes, zeros and runs in chunks of a few KiB.
func mixed(r *rand.Rand, n int) []byte {
	var b []byte
	for len(b) < n {
		k := 512 + r.IntN(6000)
		switch r.IntN(4) {
		case 0:
			b = append(b, wordText(r, k)...)
		case 1:
			b = append(b, randomBytes(r, k)...)
		case 2:
			b = append(b, make([]byte, k)...)
		default:
			b = append(b, runs(r, k)...)
		}
	}
	return b[:n]
}

type compressor struct {
	name string
	fn   func([]byte) []byte
}

// compressors are raw deflate writers: the standard library's and klauspost's at several levels
// (each reused through Reset: a new writer allocates about a megabyte).
func compressors() []compressor {
	var cs []compressor
	add := func(name string, b *bytes.Buffer, w interface {
		io.WriteCloser
		Reset(io.Writer)
	}) {
		cs = append(cs, compressor{name, func(p []byte) []byte {
			b.Reset()
			w.Reset(b)
			w.Write(p)
			w.Close()
			return bytes.Clone(b.Bytes())
		}})
	}
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, 1, 5, 9} {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, level)
		add(fmt.Sprintf("stdlib%d", level), &b, w)
	}
	for _, level := range []int{kflate.HuffmanOnly, 1, 4, 6, 9} {
		var b bytes.Buffer
		w, _ := kflate.NewWriter(&b, level)
		add(fmt.Sprintf("klauspost%d", level), &b, w)
	}
	// Several flushed blocks in one stream: non-final stored and Huffman blocks mixed.
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, 6)
	cs = append(cs, compressor{"stdlib-flushes", func(p []byte) []byte {
		b.Reset()
		w.Reset(&b)
		for len(p) > 0 {
			k := min(len(p), 5000)
			w.Write(p[:k])
			w.Flush()
			p = p[k:]
		}
		w.Close()
		return bytes.Clone(b.Bytes())
	}})
	return cs
}

type testInput struct {
	name string
	data []byte
}

func testInputs() []testInput {
	r := rand.New(rand.NewPCG(1, 2))
	ins := []testInput{
		{"zeros", make([]byte, 64<<10)},
		{"random", randomBytes(r, 64<<10)},
		{"text", wordText(r, 64<<10)},
		{"mixed", mixed(r, 64<<10)},
		{"runs", runs(r, 64<<10)},
	}
	text := wordText(r, 300)
	rnd := randomBytes(r, 300)
	for n := 0; n <= 300; n++ {
		ins = append(ins, testInput{fmt.Sprintf("text%d", n), text[:n]}, testInput{fmt.Sprintf("random%d", n), rnd[:n]})
	}
	return ins
}

// checkAgainstStdlib decodes src with inflateRaw into a dst of dstLen bytes and compares every outcome
// with compress/flate's: same bytes and same input consumed when the standard library succeeds within
// dstLen, an error when it fails, an error when the output does not fit.
func checkAgainstStdlib(t testing.TB, src []byte, dstLen int) {
	t.Helper()
	want, wantUsed, wantErr := stdInflate(src, dstLen)
	dst := make([]byte, dstLen)
	n, used, err := deflate.InflateRaw(dst, src)
	switch {
	case len(want) > dstLen:
		if err == nil {
			t.Fatalf("output of more than %d bytes accepted as %d bytes", dstLen, n)
		}
		if wantErr == nil && !errors.As(err, new(deflate.OutputLimitError)) {
			t.Fatalf("output of more than %d bytes: error %v, want an output limit error", dstLen, err)
		}
		// Up to the limit the output is the same.
		if !bytes.Equal(dst[:n], want[:n]) {
			t.Fatalf("output before the limit differs")
		}
	case wantErr != nil:
		if err == nil {
			t.Fatalf("compress/flate fails (%v), inflateRaw gives %d bytes", wantErr, n)
		}
	default:
		if err != nil {
			t.Fatalf("compress/flate gives %d bytes, inflateRaw fails: %v", len(want), err)
		}
		if n != len(want) || !bytes.Equal(dst[:n], want) {
			t.Fatalf("inflateRaw gives %d bytes, compress/flate %d; equal: %v", n, len(want), bytes.Equal(dst[:min(n, len(want))], want[:min(n, len(want))]))
		}
		if used != wantUsed {
			t.Fatalf("inflateRaw used %d input bytes, compress/flate %d", used, wantUsed)
		}
	}
}

func TestInflateRawMatchesStdlib(t *testing.T) {
	ins := testInputs()
	for _, c := range compressors() {
		t.Run(c.name, func(t *testing.T) {
			for _, in := range ins {
				src := c.fn(in.data)
				dst := make([]byte, len(in.data)+100)
				n, used, err := deflate.InflateRaw(dst, src)
				if err != nil || n != len(in.data) || !bytes.Equal(dst[:n], in.data) {
					t.Fatalf("%s: %d bytes, %v", in.name, n, err)
				}
				if used != len(src) {
					t.Fatalf("%s: used %d of %d bytes", in.name, used, len(src))
				}
				// Trailing bytes (a zlib checksum) are left unconsumed; the output may end exactly at
				// dst's end; one byte less does not fit.
				withTail := append(bytes.Clone(src), 0xde, 0xad, 0xbe, 0xef)
				checkAgainstStdlib(t, withTail, len(in.data))
				if len(in.data) > 0 && (len(in.data) > 300 || len(in.data)%7 == 0) {
					checkAgainstStdlib(t, src, len(in.data)-1)
					_, _, err := deflate.InflateRaw(dst[:len(in.data)-1], src)
					if want := fmt.Sprintf("deflate: output larger than %d bytes", len(in.data)-1); err == nil || err.Error() != want {
						t.Fatalf("%s: output one byte too large: %v", in.name, err)
					}
				}
			}
		})
	}
}

// Every grain of the stream-optimized fixtures (qemu-img's, and other tools' in the acceptance corpus)
// inflates exactly as compress/zlib inflates it.
func TestInflateFixtureGrains(t *testing.T) {
	paths := []string{fixture(t, "stream.vmdk")}
	dir := filepath.Join(testfix.RepoRoot(t), "..", "shared", "acceptance", "corpus")
	for _, name := range []string{"vmdk-rs/streamOptimized.vmdk", "vmdk-rs/streamOptimizedWithMarkers.vmdk", "vmdk-forensic/compressed_stream_opt.vmdk", "vmdk-forensic/stream_opt.vmdk"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		grains := streamGrains(t, p)
		if len(grains) == 0 && filepath.Base(p) == "stream.vmdk" {
			t.Fatalf("%s: no compressed grains found", p)
		}
		for i, g := range grains {
			zr, err := zlib.NewReader(bytes.NewReader(g.data))
			if err != nil {
				t.Fatalf("%s grain %d: compress/zlib: %v", p, i, err)
			}
			want, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("%s grain %d: compress/zlib: %v", p, i, err)
			}
			out := make([]byte, g.size)
			n, err := inflateInto(out, g.data)
			if err != nil || n != len(want) || !bytes.Equal(out[:n], want) {
				t.Fatalf("%s grain %d: inflateInto gives %d bytes (%v), compress/zlib %d", p, i, n, err, len(want))
			}
			checkAgainstStdlib(t, g.data[2:], g.size)
		}
		t.Logf("%s: %d grains", filepath.Base(p), len(grains))
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type streamGrain struct {
	data []byte
	size int // the grain's inflated size
}

// streamGrains lists the compressed grains of a stream-optimized image by walking its markers.
func streamGrains(t *testing.T, p string) []streamGrain {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseSparseHeader(b)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var gs []streamGrain
	off := max(int(h.OverHead)*SectorSize, SectorSize)
	for off+16 <= len(b) {
		val := binary.LittleEndian.Uint64(b[off:])
		size := int(binary.LittleEndian.Uint32(b[off+8:]))
		if size > 0 {
			if off+12+size > len(b) {
				t.Fatalf("%s: grain at %d runs past the end", p, off)
			}
			gs = append(gs, streamGrain{b[off+12 : off+12+size], int(h.GrainSize) * SectorSize})
			off += (12 + size + SectorSize - 1) / SectorSize * SectorSize
			continue
		}
		if binary.LittleEndian.Uint32(b[off+12:]) == markerEOS {
			break
		}
		off += SectorSize + int(val)*SectorSize
	}
	return gs
}

// truncationStreams are a few streams of each block kind to cut and corrupt.
func truncationStreams() []testInput {
	r := rand.New(rand.NewPCG(5, 6))
	text, mix := wordText(r, 3000), mixed(r, 6000)
	var out []testInput
	for _, c := range compressors() {
		switch c.name {
		case "stdlib-2", "stdlib0", "stdlib1", "stdlib9", "klauspost6":
			out = append(out, testInput{c.name + "/text", c.fn(text)}, testInput{c.name + "/mixed", c.fn(mix)})
		}
	}
	// A fixed-Huffman block (short input) and an empty stream.
	c := compressors()[3]
	out = append(out, testInput{"fixed", c.fn([]byte("hello, hello, hello world"))}, testInput{"empty", c.fn(nil)})
	return out
}

// A stream cut at any byte is an error (truncated input), as it is for compress/flate, and what was
// decoded is the start of the real output.
func TestInflateRawTruncated(t *testing.T) {
	for _, s := range truncationStreams() {
		full, _, err := stdInflate(s.data, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, len(full))
		for cut := range len(s.data) {
			if _, _, err := stdInflate(s.data[:cut], 1<<20); err == nil {
				t.Fatalf("%s cut at %d: compress/flate accepts it", s.name, cut)
			}
			n, _, err := deflate.InflateRaw(dst, s.data[:cut])
			if !errors.Is(err, deflate.ErrTruncated) {
				t.Fatalf("%s cut at %d of %d: %v, want truncated input", s.name, cut, len(s.data), err)
			}
			if !bytes.Equal(dst[:n], full[:n]) {
				t.Fatalf("%s cut at %d: the %d bytes decoded differ from the real output", s.name, cut, n)
			}
		}
	}
}

// Streams with a flipped bit either fail or decode exactly as compress/flate decodes them.
func TestInflateRawCorrupted(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range truncationStreams() {
		flips := 8 * len(s.data)
		if testing.Short() {
			flips = min(flips, 200)
		}
		flips = min(flips, 1500)
		for range flips {
			bit := r.IntN(8 * len(s.data))
			bad := bytes.Clone(s.data)
			bad[bit/8] ^= 1 << (bit % 8)
			checkAgainstStdlib(t, bad, 64<<10)
		}
	}
}

// streamingInflateInto is the reference for inflateInto's rules: the klauspost streaming reader's
// inflateInto this package used before inflateRaw, and compress/zlib-like handling of the checksum.
func streamingInflateInto(out, src []byte) (int, error) {
	body, zlibHeader := src, isZlibHeader(src)
	if zlibHeader {
		body = src[2:]
	}
	r := bytes.NewReader(body)
	fr := kflate.NewReader(r)
	n, err := io.ReadFull(fr, out)
	switch err {
	case nil:
		var tail [1]byte
		if k, err := fr.Read(tail[:]); k > 0 {
			return n, nil
		} else if err != io.EOF {
			return n, err
		}
	case io.ErrUnexpectedEOF, io.EOF:
	default:
		return n, err
	}
	var sum [4]byte
	if zlibHeader && r.Len() >= 4 {
		r.Read(sum[:])
		if binary.BigEndian.Uint32(sum[:]) != adler32Sum(out[:n]) {
			return n, errChecksum
		}
	}
	return n, nil
}

// inflateInto keeps the rules of the streaming reader it replaced: grains cut short, cut inside their
// checksum, holding more than one grain or corrupted give the same result.
func TestInflateIntoMatchesStreamingReader(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	data := mixed(r, 64<<10)
	var grains [][]byte
	for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, zlib.HuffmanOnly} {
		var b bytes.Buffer
		w, _ := zlib.NewWriterLevel(&b, level)
		w.Write(data)
		w.Close()
		grains = append(grains, b.Bytes())
		// More than one grain of data, and a raw deflate grain without the zlib wrapper.
		b.Reset()
		w, _ = zlib.NewWriterLevel(&b, level)
		w.Write(data)
		w.Write(data[:3000])
		w.Close()
		grains = append(grains, b.Bytes(), b.Bytes()[2:len(b.Bytes())-4])
	}
	check := func(name string, src []byte, size int) {
		t.Helper()
		got, want := make([]byte, size), make([]byte, size)
		n, err := inflateInto(got, src)
		wn, werr := streamingInflateInto(want, src)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%s: inflateInto gives %d bytes, %v; the streaming reader %d bytes, %v", name, n, err, wn, werr)
		}
		if err != nil {
			return
		}
		// A stream cut (or corrupted into running) past the end of its input gives a short grain, but
		// the streaming reader may stop a few symbols earlier (before a literal it wants as many bits
		// as the end-of-block code has, even when the literal's code is shorter). inflateRaw decodes
		// every symbol the input holds.
		if wn < size && n >= wn && !isComplete(src) {
			n = wn
		}
		if n != wn || !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("%s: inflateInto gives %d bytes, the streaming reader %d", name, n, wn)
		}
	}
	for gi, g := range grains {
		for _, size := range []int{64 << 10, 32 << 10, 70 << 10} {
			check(fmt.Sprintf("grain %d size %d", gi, size), g, size)
			for cut := len(g) - 8; cut < len(g) && size == 64<<10; cut++ {
				check(fmt.Sprintf("grain %d size %d cut at %d", gi, size, cut), g[:cut], size)
			}
			for range 12 {
				cut := r.IntN(len(g))
				check(fmt.Sprintf("grain %d size %d cut at %d", gi, size, cut), g[:cut], size)
				bad := bytes.Clone(g)
				bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
				check(fmt.Sprintf("grain %d size %d corrupted", gi, size), bad, size)
			}
		}
	}
}

// isComplete reports whether compress/flate finds the end of the deflate stream in a zlib grain.
func isComplete(src []byte) bool {
	if isZlibHeader(src) {
		src = src[2:]
	}
	_, _, err := stdInflate(src, 1<<20)
	return !errors.Is(err, io.ErrUnexpectedEOF)
}
