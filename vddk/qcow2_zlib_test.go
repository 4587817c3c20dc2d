package vddk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk/internal/deflate"
)

// Damaged zlib clusters read as qemu reads them: a cluster is good when its stream fills it (even if
// the stream runs on, or its sector count cuts it after that point), and an error otherwise. Each damaged
// copy is judged by qemu-img convert: both fail, or both give the same bytes.
func TestQcow2DamagedZlibClustersAsQemu(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	// Words drawn at random: text that deflates to a few sectors per 4 KiB cluster, so that damage
	// can land inside a stream.
	words := strings.Fields("the guest wrote logs config files and some packages to its disk while booting")
	r := rand.New(rand.NewPCG(3, 4))
	var text bytes.Buffer
	for text.Len() < 1<<20 {
		text.WriteString(words[r.IntN(len(words))])
		text.WriteByte(" \n"[r.IntN(2)])
	}
	src := filepath.Join(dir, "src.raw")
	if err := os.WriteFile(src, text.Bytes()[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "zlib.qcow2")
	run(t, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c", "-o", "cluster_size=4096", src, img)
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	bits := be.Uint32(good[20:])
	l2 := int64(be.Uint64(good[be.Uint64(good[40:]):]) & 0x00fffffffffffe00)
	x := 62 - (bits - 8)
	// The compressed clusters of the first L2 table: where their entries and their streams lie.
	type cluster struct{ entry, off, sectors, used int64 }
	var cs []cluster
	out := make([]byte, 1<<bits)
	for i := range int64(1) << (bits - 3) {
		e := be.Uint64(good[l2+8*i:])
		if e&(1<<62) != 0 {
			c := cluster{entry: l2 + 8*i, off: int64(e & (1<<x - 1)), sectors: int64(e>>x&(1<<(bits-8)-1)) + 1}
			_, used, err := deflate.InflateRaw(out, good[c.off:min(int64(len(good)), c.off&^511+c.sectors*512)])
			if err != nil {
				t.Fatalf("cluster at byte %d: %v", c.off, err)
			}
			c.used = int64(used)
			cs = append(cs, c)
		}
	}
	if len(cs) < 8 {
		t.Fatalf("only %d compressed clusters", len(cs))
	}
	cases := 0
	for _, c := range []cluster{cs[1], cs[len(cs)/2], cs[len(cs)-2]} {
		mid := c.off + c.used/2
		sectors := func(b []byte, n int64) { // the entry's sector count set to n
			e := be.Uint64(b[c.entry:]) &^ ((1<<(bits-8) - 1) << x)
			be.PutUint64(b[c.entry:], e|uint64(n-1)<<x)
		}
		for _, m := range []struct {
			name string
			hurt func(b []byte)
		}{
			{"byte flipped at its start", func(b []byte) { b[c.off+1] ^= 0x40 }},
			{"byte flipped in its middle", func(b []byte) { b[mid] ^= 0x08 }},
			{"zeros in its second half", func(b []byte) { clear(b[mid : c.off+c.used]) }},
			{"sectors ending inside it", func(b []byte) { sectors(b, max(1, (mid-c.off&^511)/512)) }},
			{"sectors past its stream", func(b []byte) { sectors(b, 1<<(bits-8)) }},
		} {
			bad := bytes.Clone(good)
			m.hurt(bad)
			p := filepath.Join(dir, "bad.qcow2")
			if err := os.WriteFile(p, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("cluster at byte %d, %s", c.off, m.name)
			ref := filepath.Join(dir, "ref.raw")
			os.Remove(ref)
			qemuErr := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", p, ref).Run()
			d, err := Open(p, Options{})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			got := make([]byte, d.Size())
			_, ourErr := d.ReadAt(got, 0)
			d.Close()
			switch {
			case qemuErr != nil && ourErr == nil:
				t.Errorf("%s: qemu-img fails (%v), we read it", what, qemuErr)
			case qemuErr == nil && ourErr != nil:
				t.Errorf("%s: qemu-img reads it, we fail: %v", what, ourErr)
			case qemuErr == nil:
				want, err := os.ReadFile(ref)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: we read other bytes than qemu-img", what)
				}
				cases++
			}
		}
	}
	t.Logf("%d of 15 damaged copies read by both, the rest refused by both", cases)
	if cases == 0 || cases == 15 {
		t.Errorf("%d of 15 damaged copies read: the damage did not reach the streams as meant", cases)
	}
}
