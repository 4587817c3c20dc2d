package huffman

import (
	"errors"
	"testing"
)

// TestCanonical checks the codes of a small canonical code (lengths 2,1,3,3 → 10,0,110,111) and a
// code with lengths longer than the direct table.
func TestCanonical(t *testing.T) {
	var d Decoder
	if err := d.Init([]uint8{2, 1, 3, 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ bits, sym, n int }{{0b10, 0, 2}, {0b0, 1, 1}, {0b110, 2, 3}, {0b111, 3, 3}} {
		sym, n := d.Decode(uint32(c.bits) << (16 - c.n))
		if sym != c.sym || n != c.n {
			t.Errorf("code %b: symbol %d length %d, want %d %d", c.bits, sym, n, c.sym, c.n)
		}
	}
	// Lengths 1, 2, …, 15, 16, 16: every code is the previous one's prefix of ones then a zero.
	lens := make([]uint8, 17)
	for i := range lens {
		lens[i] = uint8(min(i+1, 16))
	}
	if err := d.Init(lens); err != nil {
		t.Fatal(err)
	}
	for i := range lens {
		n := int(lens[i])
		code := uint32(1<<n-1) - 1 // n-1 ones then a zero
		if i == 16 {
			code = 1<<16 - 1
		}
		if sym, got := d.Decode(code << (16 - n)); sym != i || got != n {
			t.Errorf("symbol %d: decoded %d length %d", i, sym, got)
		}
	}
}

func TestBadCodes(t *testing.T) {
	var d Decoder
	if err := d.Init([]uint8{1, 1, 1}); !errors.Is(err, ErrBadCode) {
		t.Errorf("over-subscribed code: %v", err)
	}
	for _, lens := range [][]uint8{{17}, {1, 31}, {0, 0, 32}, {200, 1, 1}} {
		if err := d.Init(lens); !errors.Is(err, ErrBadCode) {
			t.Errorf("lengths %v: %v", lens, err)
		}
	}
	// An incomplete code (one symbol) decodes its code and refuses the rest.
	if err := d.Init([]uint8{0, 1}); err != nil {
		t.Fatal(err)
	}
	if sym, n := d.Decode(0); sym != 1 || n != 1 {
		t.Errorf("single code: %d %d", sym, n)
	}
	if _, n := d.Decode(0x8000); n != 0 {
		t.Errorf("bits outside an incomplete code decoded")
	}
	if err := d.Init(make([]uint8, 10)); err != nil {
		t.Fatal(err)
	}
	if _, n := d.Decode(0); n != 0 {
		t.Errorf("an empty code decoded")
	}
}

// TestSmall decodes with Small's 7-bit table the code of lengths 1 to 16, whose longer codes take
// Slow, and compares with Decoder.
func TestSmall(t *testing.T) {
	lens := make([]uint8, 17)
	for i := range lens {
		lens[i] = uint8(min(i+1, 16))
	}
	var d Decoder
	var s Small
	if err := d.Init(lens); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(lens); err != nil {
		t.Fatal(err)
	}
	for bits := 0; bits < 1<<16; bits += 3 {
		ws, wn := d.Decode(uint32(bits))
		if sym, n := s.Decode(uint32(bits)); sym != ws || n != wn {
			t.Fatalf("bits %016b: Small %d/%d, Decoder %d/%d", bits, sym, n, ws, wn)
		}
		if e := s.Top(uint64(bits) << 48); e&31 != 0 && (int(e>>5) != ws || int(e&31) != wn) {
			t.Fatalf("bits %016b: Small.Top %d/%d, Decoder %d/%d", bits, e>>5, e&31, ws, wn)
		}
	}
	if err := s.Init([]uint8{1, 1, 1}); !errors.Is(err, ErrBadCode) {
		t.Errorf("over-subscribed code: %v", err)
	}
}

// TestInitPacked: the packed form of a code's lengths decodes as the lengths do.
func TestInitPacked(t *testing.T) {
	lens := make([]uint8, 32)
	for i := range 15 {
		lens[2*i+1] = uint8(i + 1) // lengths 1 to 15 on odd symbols, then 15 on symbol 30
	}
	lens[30] = 15
	packed := make([]byte, len(lens)/2)
	for i := range packed {
		packed[i] = lens[2*i] | lens[2*i+1]<<4
	}
	var d, p Decoder
	if err := d.Init(lens); err != nil {
		t.Fatal(err)
	}
	if err := p.InitPacked(packed); err != nil {
		t.Fatal(err)
	}
	for bits := 0; bits < 1<<16; bits++ {
		ws, wn := d.Decode(uint32(bits))
		if sym, n := p.Decode(uint32(bits)); sym != ws || n != wn {
			t.Fatalf("bits %016b: packed %d/%d, unpacked %d/%d", bits, sym, n, ws, wn)
		}
	}
	if err := p.InitPacked([]byte{0x11, 0x01}); !errors.Is(err, ErrBadCode) {
		t.Errorf("over-subscribed packed code: %v", err)
	}
}
