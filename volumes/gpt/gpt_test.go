package gpt

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// gpttiny.img was written by sgdisk: entry 1 "tiny one" LBA 34–40 Linux filesystem, entry 2 "second"
// LBA 41–60 Microsoft basic data with attribute bit 0, disk GUID 0D15EA5E-0000-4000-8000-0000000000AA.
func checkTiny(t *testing.T, tb *Table) {
	t.Helper()
	if tb.DiskGUID.String() != "0D15EA5E-0000-4000-8000-0000000000AA" || len(tb.Partitions) != 2 {
		t.Fatalf("disk %s, %d partitions", tb.DiskGUID, len(tb.Partitions))
	}
	p1, p2 := tb.Partitions[0], tb.Partitions[1]
	if p1.Number != 1 || p1.FirstLBA != 34 || p1.LastLBA != 40 || p1.Name != "tiny one" || TypeName(p1.Type) != "Linux filesystem" {
		t.Errorf("p1 %+v", p1)
	}
	if p2.Number != 2 || p2.FirstLBA != 41 || p2.LastLBA != 60 || p2.Name != "second" || p2.Attributes != 1 || TypeName(p2.Type) != "Microsoft basic data" {
		t.Errorf("p2 %+v", p2)
	}
}

func TestTiny(t *testing.T) {
	img := testfix.Image(t, "gpttiny.img")
	tb, err := Read(testfix.NewDev(img), 512, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	checkTiny(t, tb)
	if tb.FromBackup {
		t.Error("read from backup")
	}
	if _, err := Read(testfix.NewDev(img), 4096, int64(len(img))); !errors.Is(err, ErrNoTable) {
		t.Errorf("read as 4096-byte sectors: %v", err)
	}
}

func TestBackup(t *testing.T) {
	for name, damage := range map[string]func([]byte){
		"header CRC":     func(b []byte) { b[512+40] ^= 1 },
		"entry CRC":      func(b []byte) { b[1024+56] ^= 1 },
		"zeroed primary": func(b []byte) { clear(b[512:1024]) },
		"lying count":    func(b []byte) { b[512+80+3] = 0x7f }, // CRC then fails too; either way not trusted
	} {
		img := testfix.Image(t, "gpttiny.img")
		damage(img)
		tb, err := Read(testfix.NewDev(img), 512, int64(len(img)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !tb.FromBackup || tb.PrimaryError == nil {
			t.Errorf("%s: not from backup", name)
		}
		checkTiny(t, tb)
	}
	img := testfix.Image(t, "gpttiny.img")
	img[512+40] ^= 1
	img[len(img)-512+40] ^= 1
	if _, err := Read(testfix.NewDev(img), 512, int64(len(img))); !errors.Is(err, ErrNoTable) {
		t.Errorf("both headers bad: %v", err)
	}
}

// The gptman images: 4096-byte sectors, and a name with garbage after its NUL.
func TestGptmanNames(t *testing.T) {
	dir := testfix.Corpus(t)
	if dir == "" {
		t.Skip("acceptance corpus not present")
	}
	img, err := os.ReadFile(filepath.Join(dir, "gptman", "disk4.img"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(testfix.NewDev(img), 512, int64(len(img))); err == nil {
		t.Error("4Kn disk read as 512-byte sectors")
	}
	tb, err := Read(testfix.NewDev(img), 4096, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Partitions) != 2 || tb.Partitions[1].Name != "Name with garbage" || tb.Partitions[1].FirstLBA != 50 || tb.Partitions[1].LastLBA != 93 {
		t.Errorf("%+v", tb.Partitions)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(testfix.Image(f, "gpttiny.img"), false)
	f.Fuzz(func(t *testing.T, b []byte, big bool) {
		ss := 512
		if big {
			ss = 4096
		}
		tb, err := Read(testfix.NewDev(b), ss, int64(len(b)))
		if err != nil {
			return
		}
		for _, p := range tb.Partitions {
			if p.FirstLBA > p.LastLBA || (p.LastLBA+1)*uint64(ss) > uint64(len(b)) {
				t.Fatalf("partition %+v outside a %d-byte disk", p, len(b))
			}
		}
	})
}
