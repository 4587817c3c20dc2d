package vddk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// One fuzz target per other format, each seeded with small images qemu-img made: whole files are
// opened (beside a sound raw base, so children's chains open) and read.

func fuzzForeign(f *testing.F, samples func(testing.TB, string) []foreignSample) {
	dir := fuzzWorkDir(f)
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), bytes.Repeat([]byte("base"), 256<<10), 0o644); err != nil {
		f.Fatal(err)
	}
	for _, s := range samples(f, dir) {
		if len(s.img) <= 1<<20 {
			f.Add(s.img)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.img")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fuzzOpenAndRead(t, p, 256<<10)
	})
}

func FuzzOpenQcow2(f *testing.F) {
	needTool(f, "qemu-img")
	fuzzForeign(f, qcow2Samples)
}

func FuzzOpenVHD(f *testing.F) {
	needTool(f, "qemu-img")
	fuzzForeign(f, vhdSamples)
}

func FuzzOpenVHDX(f *testing.F) {
	needTool(f, "qemu-img")
	fuzzForeign(f, vhdxSamples)
}

func FuzzOpenVDI(f *testing.F) {
	needTool(f, "qemu-img")
	fuzzForeign(f, vdiSamples)
}
