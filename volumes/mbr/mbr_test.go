package mbr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func read(t *testing.T, img []byte) (*Table, error) {
	return Read(testfix.NewDev(img), 512, uint64(len(img)/512))
}

func summary(tb *Table) string {
	s := ""
	for _, p := range tb.Partitions {
		s += fmt.Sprintf("%d:%x@%d+%d ", p.Number, p.Type, p.Start, p.Sectors)
	}
	return s
}

// The tiny fixture was written by sfdisk: its own listing (sfdisk --json, checked by hand when the
// fixture was made and compared in the volumes package tests) is primary 1, extended 2, logicals 5–9.
func TestTinyChain(t *testing.T) {
	tb, err := read(t, testfix.Image(t, "ebrtiny.img"))
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(tb); got != "1:83@1+3 2:5@5+15 5:83@6+1 6:7@8+2 7:c@11+3 8:82@15+1 9:83@17+1 " {
		t.Errorf("got %s", got)
	}
	if !tb.Partitions[0].Active || tb.Signature != 0x0badcafe || len(tb.Problems) != 0 {
		t.Errorf("active %v signature %x problems %q", tb.Partitions[0].Active, tb.Signature, tb.Problems)
	}
}

func TestBadEntrySpoilsOnlyItself(t *testing.T) {
	img := testfix.Image(t, "ebrtiny.img")
	img[0x1BE] = 0x12 // boot flag of slot 1
	tb, err := read(t, img)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(tb); got != "2:5@5+15 5:83@6+1 6:7@8+2 7:c@11+3 8:82@15+1 9:83@17+1 " || len(tb.Problems) != 1 {
		t.Errorf("got %s, problems %q", got, tb.Problems)
	}
}

func TestChainLoopAndLies(t *testing.T) {
	// The third EBR (sector 10) links back to the first one (relative 0).
	img := testfix.Image(t, "ebrtiny.img")
	link := 10*512 + 0x1BE + 16
	img[link+8], img[link+9], img[link+10], img[link+11] = 0, 0, 0, 0
	tb, err := read(t, img)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(tb); got != "1:83@1+3 2:5@5+15 5:83@6+1 6:7@8+2 7:c@11+3 " {
		t.Errorf("got %s", got)
	}
	if len(tb.Problems) != 1 {
		t.Errorf("problems %q", tb.Problems)
	}
	// A logical claiming 2^32-1 sectors is cut at the disk end, not trusted.
	img = testfix.Image(t, "ebrtiny.img")
	copy(img[7*512+0x1BE+12:], []byte{0xff, 0xff, 0xff, 0xff})
	tb, err = read(t, img)
	if err != nil {
		t.Fatal(err)
	}
	if p := tb.Partitions[3]; p.Number != 6 || p.Start+p.Sectors != 20 {
		t.Errorf("partition 6 %+v not cut at the disk end", p)
	}
}

func TestNotAnMBR(t *testing.T) {
	for name, mod := range map[string]func([]byte){
		"no signature": func(b []byte) { b[510] = 0 },
		"NTFS VBR":     func(b []byte) { copy(b[3:], "NTFS    ") },
		"all bad":      func(b []byte) { b[0x1BE], b[0x1CE] = 1, 1 },
	} {
		img := testfix.Image(t, "ebrtiny.img")
		mod(img)
		if _, err := read(t, img); !errors.Is(err, ErrNoTable) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := Read(testfix.NewDev(make([]byte, 100)), 512, 0); err == nil {
		t.Error("truncated disk accepted")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(testfix.Image(f, "ebrtiny.img"))
	f.Add(testfix.Image(f, "gpttiny.img")[:4096])
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := Read(testfix.NewDev(b), 512, uint64(len(b)/512))
		if err != nil {
			return
		}
		for _, p := range tb.Partitions {
			if p.Sectors == 0 || p.Start+p.Sectors > uint64(len(b)/512) {
				t.Fatalf("partition %+v outside a %d-byte disk", p, len(b))
			}
		}
	})
}
