package untar

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// maxXZDict bounds the LZMA2 dictionary an xz block may declare: the decoder allocates it whole
// from the block header (up to 4 GiB), so a hostile archive of a few bytes would cost that much
// memory. 64 MiB is what xz -9 uses; larger dictionaries are refused.
var maxXZDict int64 = 64 << 20

// xzGuard passes an xz stream through unchanged while following its framing (stream headers, block
// headers, LZMA2 chunk headers, index, footer): payloads are skipped by their declared sizes, never
// decoded. A block header is handed on only once its dictionary size has been checked, so the
// decoder behind it never allocates more than maxXZDict.
type xzGuard struct {
	r       *bufio.Reader
	off     int64  // bytes passed on
	pending []byte // framing bytes checked and not yet passed on
	skip    int64  // payload bytes to pass on before the next framing element
	next    func() error
	check   int   // size of each block's check field
	blockN  int64 // compressed bytes of the current block, for its padding
	done    bool  // EOF where a stream may end
}

func newXZGuard(r *bufio.Reader) *xzGuard {
	g := &xzGuard{r: r}
	g.next = g.streamHeader
	return g
}

var errXZFraming = errors.New("xz: bad framing")

func (g *xzGuard) Read(p []byte) (int, error) {
	for len(g.pending) == 0 && g.skip == 0 {
		if g.done {
			return 0, io.EOF
		}
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		g.off += int64(n)
		return n, nil
	}
	if int64(len(p)) > g.skip {
		p = p[:g.skip]
	}
	n, err := g.r.Read(p)
	g.skip -= int64(n)
	g.off += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// take reads n framing bytes into pending and returns them.
func (g *xzGuard) take(n int) ([]byte, error) {
	start := len(g.pending)
	g.pending = append(g.pending, make([]byte, n)...)
	if _, err := io.ReadFull(g.r, g.pending[start:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("xz at byte %d: %w", g.off, err)
	}
	return g.pending[start:], nil
}

func (g *xzGuard) fail(what string) error {
	return fmt.Errorf("%w at byte %d: %s", errXZFraming, g.off, what)
}

func (g *xzGuard) streamHeader() error {
	h, err := g.take(12)
	if err != nil {
		return err
	}
	if string(h[:6]) != "\xfd7zXZ\x00" {
		return g.fail("no stream header")
	}
	g.check = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[h[7]&0x0f]
	g.next = g.blockOrIndex
	return nil
}

// blockOrIndex reads a block header, checking its dictionary, or the index and footer that end a
// stream.
func (g *xzGuard) blockOrIndex() error {
	b, err := g.take(1)
	if err != nil {
		return err
	}
	if b[0] == 0 {
		return g.index()
	}
	size := (int(b[0]) + 1) * 4
	rest, err := g.take(size - 1)
	if err != nil {
		return err
	}
	h := append([]byte{b[0]}, rest...)
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return g.fail("block header checksum mismatch")
	}
	flags, pos := h[1], 2
	skipVarint := func() bool {
		for pos < size-4 {
			pos++
			if h[pos-1] < 0x80 {
				return true
			}
		}
		return false
	}
	if flags&0x40 != 0 && !skipVarint() || flags&0x80 != 0 && !skipVarint() {
		return g.fail("block header truncated")
	}
	var last uint64
	for i := 0; i <= int(flags&3); i++ {
		id, n := binary.Uvarint(h[pos : size-4])
		if n <= 0 {
			return g.fail("block header truncated")
		}
		pos += n
		psize, n := binary.Uvarint(h[pos : size-4])
		if n <= 0 || uint64(size-4-pos-n) < psize {
			return g.fail("block header truncated")
		}
		pos += n
		if id == 0x21 {
			if psize != 1 || h[pos] > 40 {
				return g.fail("bad LZMA2 properties")
			}
			d := h[pos]
			dict := int64(2|d&1) << (d/2 + 11)
			if d == 40 {
				dict = 1<<32 - 1
			}
			if dict > maxXZDict {
				return fmt.Errorf("xz block at byte %d declares a %d MiB dictionary, more than the %d MiB allowed", g.off, dict>>20, maxXZDict>>20)
			}
		}
		pos += int(psize)
		last = id
	}
	if last != 0x21 {
		return g.fail("the last filter is not LZMA2")
	}
	g.blockN = 0
	g.next = g.chunk
	return nil
}

// chunk reads an LZMA2 chunk header and skips its payload; after the end marker come the block's
// padding and check.
func (g *xzGuard) chunk() error {
	c, err := g.take(1)
	if err != nil {
		return err
	}
	switch ctl := c[0]; {
	case ctl == 0:
		g.blockN++
		pad := (4 - (g.blockN % 4)) % 4 // the header's size is a multiple of 4 already
		if _, err := g.take(int(pad) + g.check); err != nil {
			return err
		}
		g.next = g.blockOrIndex
	case ctl == 1 || ctl == 2:
		s, err := g.take(2)
		if err != nil {
			return err
		}
		g.skip = int64(binary.BigEndian.Uint16(s)) + 1
	case ctl >= 0x80:
		n := 4
		if (ctl>>5)&3 >= 2 {
			n = 5
		}
		s, err := g.take(n)
		if err != nil {
			return err
		}
		g.skip = int64(binary.BigEndian.Uint16(s[2:])) + 1
	default:
		return g.fail("bad LZMA2 chunk")
	}
	if c[0] != 0 {
		g.blockN += int64(len(g.pending)) + g.skip
	}
	return nil
}

// index reads the index (its indicator already taken), the footer, and any stream padding.
func (g *xzGuard) index() error {
	n := int64(1)
	varint := func() (uint64, error) {
		var v uint64
		for i := 0; i < 9; i++ {
			b, err := g.take(1)
			if err != nil {
				return 0, err
			}
			n++
			v |= uint64(b[0]&0x7f) << (7 * i)
			if b[0] < 0x80 {
				return v, nil
			}
		}
		return 0, g.fail("index varint too long")
	}
	count, err := varint()
	if err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		for range 2 {
			if _, err := varint(); err != nil {
				return err
			}
		}
	}
	if _, err := g.take(int((4-n%4)%4) + 4 + 12); err != nil {
		return err
	}
	g.next = g.afterStream
	return nil
}

// afterStream reads stream padding, then another stream or the end.
func (g *xzGuard) afterStream() error {
	b, err := g.r.Peek(4)
	if len(b) == 0 && err == io.EOF {
		g.done = true
		return nil
	}
	if len(b) < 4 {
		return g.fail("truncated stream padding")
	}
	if string(b) == "\x00\x00\x00\x00" {
		_, err := g.take(4)
		return err
	}
	g.next = g.streamHeader
	return nil
}
