package md

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// tolerance is how many members a level may lose and still read.
func tolerance(level, members int) int {
	switch level {
	case 1:
		return members - 1
	case 4, 5:
		return 1
	case 6:
		return 2
	case 10:
		return 1
	}
	return 0
}

// TestAssembledEqualsData assembles every shape from its members, whole and with every set of members
// up to two missing, and reads it back: the bytes equal what was laid out, or (beyond what the level
// survives) assembly fails with ErrMissing.
func TestAssembledEqualsData(t *testing.T) {
	for i, shape := range shapes {
		t.Run(shapeName(shape), func(t *testing.T) {
			data, members, _ := build(t, shape, uint64(i))
			n := len(members)
			for gone1 := -1; gone1 < n; gone1++ {
				for gone2 := gone1; gone2 < n; gone2++ {
					if gone2 == gone1 && gone1 >= 0 {
						continue
					}
					var ms []Member
					lost := 0
					for r, img := range members {
						if r == gone1 || r == gone2 {
							lost++
							continue
						}
						sb, err := Read(dev(img), int64(len(img)))
						if err != nil {
							t.Fatal(err)
						}
						ms = append(ms, Member{SB: sb, Dev: dev(img)})
					}
					if len(ms) == 0 {
						continue
					}
					name := fmt.Sprintf("without %d,%d", gone1, gone2)
					arrays, problems := Assemble(ms)
					if len(arrays) != 1 || len(problems) != 0 {
						t.Fatalf("%s: %d arrays, problems %v", name, len(arrays), problems)
					}
					a := arrays[0]
					if len(a.Missing) != lost {
						t.Errorf("%s: missing %v", name, a.Missing)
					}
					if a.Err != nil {
						if lost <= tolerance(shape.Level, n) {
							t.Errorf("%s: %v", name, a.Err)
						} else if !errors.Is(a.Err, layout.ErrMissing) {
							t.Errorf("%s: %v is not ErrMissing", name, a.Err)
						}
						continue
					}
					if lost > tolerance(shape.Level, n) && shape.Level != 10 {
						t.Errorf("%s: assembled with %d lost", name, lost)
					}
					checkRead(t, name, a.Dev, data)
				}
			}
		})
	}
}

// checkRead reads d whole, in odd-sized pieces across chunk boundaries, and past its end.
func checkRead(t *testing.T, name string, d layout.Dev, want []byte) {
	t.Helper()
	if d.Size() != int64(len(want)) {
		t.Fatalf("%s: size %d, want %d", name, d.Size(), len(want))
	}
	got := make([]byte, len(want))
	if n, err := d.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("%s: read %d: %v", name, n, err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: differs first at byte %d", name, i)
	}
	for _, off := range []int64{1, 65535, 65536*3 - 7, int64(len(want)) - 100} {
		b := make([]byte, 70000)
		n, err := d.ReadAt(b, off)
		end := min(off+int64(len(b)), int64(len(want)))
		if int64(n) != end-off || !bytes.Equal(b[:n], want[off:end]) {
			t.Fatalf("%s: read at %d: %d bytes, %v", name, off, n, err)
		}
		if end < off+int64(len(b)) && err != io.EOF {
			t.Fatalf("%s: short read at %d without EOF: %v", name, off, err)
		}
	}
}

// TestRAID5Diagrams checks chunk placement against the four RAID-5 diagrams of the md documentation
// (four members, four stripes; "P" is parity, numbers are array chunks).
func TestRAID5Diagrams(t *testing.T) {
	diagrams := map[int][4]string{
		leftAsymmetric:  {"0 1 2 P", "3 4 P 5", "6 P 7 8", "P 9 10 11"},
		rightAsymmetric: {"P 0 1 2", "3 P 4 5", "6 7 P 8", "9 10 11 P"},
		leftSymmetric:   {"0 1 2 P", "4 5 P 3", "8 P 6 7", "P 9 10 11"},
		rightSymmetric:  {"P 0 1 2", "5 P 3 4", "7 8 P 6", "9 10 11 P"},
	}
	for alg, rows := range diagrams {
		p := &parityArray{g: Geometry{Level: 5, Members: 4}, algorithm: alg, parity: 1}
		for s, row := range rows {
			cells := make([]string, 4)
			for k := 0; k < 3; k++ {
				pl, stripe := p.locate(int64(s*3 + k))
				if stripe != int64(s) {
					t.Fatalf("%s chunk %d: stripe %d", LayoutName(5, uint32(alg)), s*3+k, stripe)
				}
				cells[pl.dd] = fmt.Sprint(s*3 + k)
				cells[pl.pd] = "P"
			}
			if got := fmt.Sprint(cells); got != "["+row+"]" {
				t.Errorf("%s stripe %d: %s, want [%s]", LayoutName(5, uint32(alg)), s, got, row)
			}
		}
	}
}
