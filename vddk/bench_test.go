package vddk

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

var (
	benchDir   string
	benchOnce  sync.Once
	benchDisks map[string]string
	benchErr   error
)

// benchImages makes a 256 MiB disk (random, text and holes) as monolithicSparse and streamOptimized.
func benchImages(b *testing.B) map[string]string {
	needTool(b, "qemu-img")
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vddk-bench-")
		if err != nil {
			benchErr = err
			return
		}
		benchDir = dir
		raw := filepath.Join(dir, "src.raw")
		buf := make([]byte, 256<<20)
		r := rand.New(rand.NewPCG(3, 4))
		for off := 0; off < len(buf); off += 16 << 20 {
			switch (off >> 24) % 4 {
			case 0:
				for i := off; i < off+16<<20; i += 8 {
					v := r.Uint64()
					for k := range 8 {
						buf[i+k] = byte(v >> (8 * k))
					}
				}
			case 1:
				for i := off; i < off+16<<20; i++ {
					buf[i] = "guest text and logs\n"[i%20]
				}
			}
		}
		if benchErr = os.WriteFile(raw, buf, 0o644); benchErr != nil {
			return
		}
		benchDisks = map[string]string{}
		for _, f := range []string{"monolithicSparse", "streamOptimized"} {
			p := filepath.Join(dir, f+".vmdk")
			if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+f, raw, p).CombinedOutput(); err != nil {
				benchErr = &Error{Code: ErrFail, Msg: string(out), Err: err}
				return
			}
			benchDisks[f] = p
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDisks
}

func BenchmarkReadSequential(b *testing.B) {
	for _, f := range []string{"monolithicSparse", "streamOptimized"} {
		b.Run(f, func(b *testing.B) {
			d, err := Open(benchImages(b)[f], Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(d.Size())
			for b.Loop() {
				for off := int64(0); off < d.Size(); off += int64(len(buf)) {
					if _, err := d.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkReadRandom4K(b *testing.B) {
	for _, f := range []string{"monolithicSparse", "streamOptimized"} {
		b.Run(f, func(b *testing.B) {
			d, err := Open(benchImages(b)[f], Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.SetBytes(4096)
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 1))
				buf := make([]byte, 4096)
				for pb.Next() {
					if _, err := d.ReadAt(buf, r.Int64N(d.Size()/4096)*4096); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestMain(m *testing.M) {
	testfix.RunSwapperIfAsked() // the attacker process of TestConfinedOpenRace
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}
