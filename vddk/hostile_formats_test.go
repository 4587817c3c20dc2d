package vddk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// foreignSample is a small image of another format for the hostile suite and the fuzzers: its bytes,
// the file offsets where its metadata starts and ends (truncated around each), the header ranges whose
// bits are flipped, and the table entries (offset, width, byte order) given hostile values.
type foreignSample struct {
	name    string
	img     []byte
	edges   []int
	flips   [][2]int // [start, end) byte ranges
	entries []tableEntry
	fix     func(b []byte) // recomputes checksums after a change, so the damage reaches the fields' readers
}

type tableEntry struct {
	off, width int
	big        bool
	what       string
}

// sampleImage makes an image with qemu-img and qemu-io in dir and returns its bytes.
// An empty size takes the backing file's.
func sampleImage(t testing.TB, dir, name, format string, create []string, size string, writes ...string) []byte {
	t.Helper()
	p := filepath.Join(dir, name)
	args := append(append([]string{"create", "-f", format}, create...), p)
	if size != "" {
		args = append(args, size)
	}
	run(t, "qemu-img", args...)
	if len(writes) > 0 {
		qemuIO(t, format, p, writes...)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// qcow2Samples: v2, v3 with extended L2, zstd and zlib compressed clusters, each a child with a
// backing file.
func qcow2Samples(t testing.TB, dir string) []foreignSample {
	writes := []string{"write -P 0x61 0 8k", "write -z 64k 4k", "write -P 0x62 300k 2k"}
	var out []foreignSample
	for _, s := range []struct{ name, opts string }{
		{"qcow2-v2", "compat=0.10,cluster_size=4096"},
		{"qcow2-extl2", "extended_l2=on,cluster_size=16k"},
		{"qcow2-zstd", "compression_type=zstd,cluster_size=4096"},
		{"qcow2-zlib", "cluster_size=4096"},
	} {
		w := writes
		if s.name == "qcow2-zstd" || s.name == "qcow2-zlib" {
			w = []string{"write -c -P 0x61 0 4k", "write -c -P 0x63 8k 4k", "write -z 64k 4k"}
		}
		img := sampleImage(t, dir, s.name, "qcow2", []string{"-o", s.opts, "-b", "base.raw", "-F", "raw"}, "", w...)
		out = append(out, qcow2Sample(s.name, img))
	}
	return out
}

// qcow2Sample finds the metadata of a qcow2 image: header, extensions, L1 and the first L2 table.
func qcow2Sample(name string, img []byte) foreignSample {
	be := binary.BigEndian
	s := foreignSample{name: name, img: img, flips: [][2]int{{0, 112}}}
	cs := 1 << be.Uint32(img[20:])
	l1 := int(be.Uint64(img[40:]))
	s.edges = []int{72, 104, 112, cs, l1, l1 + 8, int(be.Uint64(img[48:]))}
	extL2 := be.Uint32(img[4:]) == 3 && be.Uint64(img[72:])&incExtL2Bit != 0
	entry := 8
	if extL2 {
		entry = 16
	}
	for i := range 2 {
		s.entries = append(s.entries, tableEntry{l1 + 8*i, 8, true, fmt.Sprintf("L1[%d]", i)})
	}
	if l2 := int(be.Uint64(img[l1:]) & 0x00fffffffffffe00); l2 != 0 && l2+cs <= len(img) {
		s.edges = append(s.edges, l2, l2+cs)
		for i := range 3 {
			s.entries = append(s.entries, tableEntry{l2 + entry*i, 8, true, fmt.Sprintf("L2[%d]", i)})
			if extL2 {
				s.entries = append(s.entries, tableEntry{l2 + entry*i + 8, 8, true, fmt.Sprintf("L2[%d].bitmap", i)})
			}
		}
	}
	return s
}

const incExtL2Bit = 1 << 4

// hostileValues are written into table entries: zero, tiny, the header, past the end, all ones, and
// values that keep only the top flag bits.
func hostileValues(fileSize int) []uint64 {
	return []uint64{0, 1, 0x200, 0x10000, uint64(fileSize), uint64(fileSize) + 0x10000, 1 << 40, 1<<56 - 512,
		1 << 62, 1 << 63, 1<<63 | 0x200, ^uint64(0), 0xffffffff, 0xfffffffe}
}

// The hostile suite for the other formats: truncations at every metadata edge, header bit flips,
// table entries past the end or into metadata, chains that loop, a parent that is /etc/passwd. Each
// case ends with an error carrying a code, or opens and reads within bounds; never a panic, a hang, a
// read of a host file, or an allocation past the budget.
func TestHostileForeignImages(t *testing.T) {
	needTool(t, "qemu-img")
	// Damaged copies of redundant structures are logged; thousands of cases would flood the output.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	dir := fuzzWorkDir(t)
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), bytes.Repeat([]byte("base"), 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var samples []foreignSample
	samples = append(samples, qcow2Samples(t, dir)...)
	samples = append(samples, otherFormatSamples(t, dir)...)
	work := filepath.Join(dir, "case")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	// Every case sees sound parents beside it, so children's chains open.
	for _, p := range []string{"base.raw", "vhd-parent.vhd", "vdi-parent.vdi", "vhdx-parent.vhdx"} {
		if err := os.Link(filepath.Join(dir, p), filepath.Join(work, p)); err != nil {
			t.Fatal(err)
		}
	}
	host, _ := os.ReadFile("/etc/passwd")
	hostMark := host[:min(len(host), 48)]
	cases, opened := 0, 0
	try := func(name, file string, b []byte) {
		cases++
		if raceOn && cases%5 != 0 {
			return
		}
		p := filepath.Join(work, file)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan string, 1)
		go func() {
			msg := ""
			defer func() {
				if r := recover(); r != nil {
					msg = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
				}
				done <- msg
			}()
			d, err := Open(p, Options{})
			if err != nil {
				if CodeOf(err) == ErrFail {
					msg = fmt.Sprintf("error without a code: %v", err)
				}
				return
			}
			opened++
			defer d.Close()
			buf := make([]byte, 64<<10)
			for _, off := range []int64{0, d.Size() / 3, d.Size() - int64(len(buf))} {
				n, _ := d.ReadAt(buf, max(0, off))
				if len(hostMark) >= 16 && bytes.Contains(buf[:n], hostMark) {
					msg = fmt.Sprintf("read the host's /etc/passwd at %d", off)
				}
			}
			d.AllocatedBlocks(0, uint64(min(d.Size(), 256<<20)/SectorSize), 128)
			_ = d.Info()
		}()
		select {
		case msg := <-done:
			if msg != "" {
				t.Errorf("%s: %s", name, msg)
			}
		case <-time.After(hostileCaseTimeout):
			t.Fatalf("%s: no result after %v (a hang or a loop)", name, hostileCaseTimeout)
		}
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > hostileCaseAlloc {
			t.Errorf("%s: allocated %d MiB (bound %d MiB)", name, a>>20, hostileCaseAlloc>>20)
		}
	}
	for _, s := range samples {
		img := s.img
		cuts := map[int]bool{len(img) - 1: true, len(img) - 512: true}
		for c := 0; c < min(len(img), 8<<10); c += SectorSize {
			cuts[c] = true
		}
		for _, e := range s.edges {
			for _, d := range []int{-SectorSize, -1, 0, 1, SectorSize} {
				if c := e + d; c > 0 && c < len(img) {
					cuts[c] = true
				}
			}
		}
		for _, c := range slices.Sorted(maps.Keys(cuts)) {
			try(fmt.Sprintf("%s/truncate@%d", s.name, c), s.name, img[:c])
		}
		for _, r := range s.flips {
			for bit := r[0] * 8; bit < min(r[1], len(img))*8; bit++ {
				b := append([]byte{}, img...)
				b[bit/8] ^= 1 << (bit % 8)
				try(fmt.Sprintf("%s/flip-byte%d-bit%d", s.name, bit/8, bit%8), s.name, b)
			}
		}
		for _, e := range s.entries {
			for _, v := range append(hostileValues(len(img)), uint64(e.off), uint64(e.off)&^511) {
				b := append([]byte{}, img...)
				switch {
				case e.width == 8 && e.big:
					binary.BigEndian.PutUint64(b[e.off:], v)
				case e.width == 8:
					binary.LittleEndian.PutUint64(b[e.off:], v)
				case e.big:
					binary.BigEndian.PutUint32(b[e.off:], uint32(v))
				default:
					binary.LittleEndian.PutUint32(b[e.off:], uint32(v))
				}
				try(fmt.Sprintf("%s/%s=%#x", s.name, e.what, v), s.name, b)
				if s.fix != nil {
					s.fix(b)
					try(fmt.Sprintf("%s/%s=%#x+checksum", s.name, e.what, v), s.name, b)
				}
			}
		}
	}
	// Chains: a qcow2 whose backing file is itself, /etc/passwd, a folder above, and two that name
	// each other.
	for _, bf := range []string{"self.qcow2", "/etc/passwd", "../../../../etc/passwd", "/dev/zero", "loop-b.qcow2"} {
		name := "self.qcow2"
		if bf == "loop-b.qcow2" {
			name = "loop-a.qcow2"
			b := sampleImage(t, dir, "loop-b.qcow2", "qcow2", []string{"-u", "-b", "loop-a.qcow2", "-F", "qcow2"}, "1M")
			if err := os.WriteFile(filepath.Join(work, "loop-b.qcow2"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b := sampleImage(t, dir, name, "qcow2", []string{"-u", "-b", bf, "-F", "raw"}, "1M")
		try("qcow2-backing="+bf, name, b)
		b = sampleImage(t, dir, name, "qcow2", []string{"-u", "-b", bf, "-F", "qcow2"}, "1M")
		try("qcow2-backing-qcow2="+bf, name, b)
	}
	t.Logf("%d hostile images of other formats tried, %d opened (and were read)", cases, opened)
	if opened == 0 || cases < 1000 {
		t.Errorf("the suite tried %d cases and opened %d", cases, opened)
	}
}
