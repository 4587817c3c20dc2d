package lvm

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// pvPrefix returns the start of a fixture PV up to the end of its committed metadata text, with the
// metadata area shrunk to fit (CRCs redone): a small, valid fuzz seed.
func pvPrefix(tb testing.TB, name string) []byte {
	img := testfix.Image(tb, name)
	const mda = 4096
	end := mda + int(binary.LittleEndian.Uint64(img[mda+40:])) + int(binary.LittleEndian.Uint64(img[mda+48:]))
	b := img[:end]
	// The PV header's first metadata area entry follows the data area list (one entry and a zero pair).
	binary.LittleEndian.PutUint64(b[512+32+40+32+8:], uint64(end-mda))
	binary.LittleEndian.PutUint64(b[mda+32:], uint64(end-mda))
	fixCRCs(b)
	return b
}

// fixCRCs recomputes the label and metadata-area header checksums after a test edited them.
func fixCRCs(b []byte) {
	binary.LittleEndian.PutUint32(b[512+16:], crc(b[512+20:1024]))
	binary.LittleEndian.PutUint32(b[4096:], crc(b[4096+4:4096+512]))
}

func TestReadPV(t *testing.T) {
	img := testfix.Image(t, "lvm-d1.img")
	pv, err := ReadPV(testfix.NewDev(img))
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Copies) != 1 || pv.Copies[0].VGName != "vgt" || pv.Data[0].Offset != 1<<20 || pv.LabelSect != 1 {
		t.Fatalf("%+v", pv)
	}
	vg := pv.Copies[0].Root.Child("vgt")
	if es, _ := vg.Int("extent_size"); es != 512 {
		t.Errorf("extent size %d sectors", es)
	}
	if lv := vg.Child("logical_volumes").Child("r5"); lv == nil || lv.Child("segment1").String("type") != "raid5" {
		t.Errorf("r5 missing from the metadata")
	}
	// pvcreate --pvmetadatacopies 2 on disk 0: both copies read.
	pv0, err := ReadPV(testfix.NewDev(testfix.Image(t, "lvm-d0.img")))
	if err != nil || len(pv0.Copies) != 2 || pv0.Copies[0].Seqno != pv0.Copies[1].Seqno {
		t.Errorf("disk 0: %v, %d copies", err, len(pv0.Copies))
	}
}

func TestDamagedPV(t *testing.T) {
	for name, c := range map[string]struct {
		damage func([]byte)
		want   string
	}{
		"label CRC":      {func(b []byte) { b[512+40] ^= 1 }, "CRC"},
		"mda header CRC": {func(b []byte) { b[4096+30] ^= 1 }, "header CRC"},
		"text CRC":       {func(b []byte) { b[len(b)-20] ^= 1 }, "text CRC"},
		"lying mda size": {func(b []byte) { binary.LittleEndian.PutUint64(b[512+32+40+32+8:], 1<<50); fixCRCs(b) }, "does not fit"},
		"text past area": {func(b []byte) { binary.LittleEndian.PutUint64(b[4096+48:], 1<<30); fixCRCs(b) }, "does not fit"},
	} {
		b := pvPrefix(t, "lvm-d1.img")
		c.damage(b)
		pv, err := ReadPV(testfix.NewDev(b))
		if err != nil {
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v", name, err)
			}
			continue
		}
		if len(pv.Copies) != 0 || len(pv.Problems) == 0 || !strings.Contains(pv.Problems[0], c.want) {
			t.Errorf("%s: %d copies, problems %q", name, len(pv.Copies), pv.Problems)
		}
	}
	if _, err := ReadPV(testfix.NewDev(make([]byte, 4096))); !errors.Is(err, ErrNoLabel) {
		t.Errorf("blank device: %v", err)
	}
}

func TestParseTextErrors(t *testing.T) {
	for _, text := range []string{
		`vg { a = 1`, `vg { a = [1, 2 }`, `vg { a = "x }`, `}`, `vg { = 1 }`, `a = 1x`,
		strings.Repeat("a {", 100) + strings.Repeat("}", 100), "a = " + strings.Repeat("[", 100) + strings.Repeat("]", 100),
	} {
		if _, err := ParseText(text); err == nil {
			t.Errorf("%q parsed", text)
		}
	}
	root, err := ParseText("# c\nvg {\n id = \"x\" # c\n l = [\"a\", 1, -2]\n s { n = \"q\\\"\" }\n}\n\x00garbage")
	if err != nil {
		t.Fatal(err)
	}
	vg := root.Child("vg")
	if vg.String("id") != "x" || len(vg.Values["l"].List) != 3 || vg.Values["l"].List[2].Int != -2 || vg.Child("s").String("n") != `q"` {
		t.Errorf("%+v", vg)
	}
}

// Metadata naming segments that lie (extents outside the PV, self-references, missing sub-LVs)
// gives errors on those LVs, never a panic.
func TestLyingMetadata(t *testing.T) {
	pv, err := ReadPV(testfix.NewDev(testfix.Image(t, "lvm-d1.img")))
	if err != nil {
		t.Fatal(err)
	}
	id := pv.UUID
	text := `vgx { id = "vgxid" seqno = 1 extent_size = 512
	physical_volumes { pv0 { id = "` + id + `" pe_start = 2048 pe_count = 20 } }
	logical_volumes {
		far { id = "a" status = ["VISIBLE"] segment1 { start_extent = 0 extent_count = 1000 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } }
		self { id = "b" status = ["VISIBLE"] segment1 { start_extent = 0 extent_count = 1 type = "raid1" raids = ["m", "self"] } }
		gap { id = "c" status = ["VISIBLE"] segment1 { start_extent = 5 extent_count = 1 type = "striped" stripes = ["pv0", 0] } }
		huge { id = "d" status = ["VISIBLE"] segment1 { start_extent = 0 extent_count = 9223372036854775807 type = "striped" stripes = ["pv0", 0] } }
		ghost { id = "e" status = ["VISIBLE"] segment1 { start_extent = 0 extent_count = 1 type = "mirror" mirrors = ["nope", 0] } }
		ok { id = "f" status = ["VISIBLE"] segment1 { start_extent = 0 extent_count = 2 type = "striped" stripes = ["pv0", 1] } }
	} }`
	root, err := ParseText(text)
	if err != nil {
		t.Fatal(err)
	}
	pv.Copies = []Copy{{VGName: "vgx", VGID: "vgxid", Seqno: 1, Root: root}}
	vgs, _ := Assemble([]*PV{pv})
	if len(vgs) != 1 || len(vgs[0].LVs) != 6 {
		t.Fatalf("%+v", vgs)
	}
	for _, lv := range vgs[0].LVs {
		if (lv.Err == nil) != (lv.Name == "ok") {
			t.Errorf("%s: err %v", lv.Name, lv.Err)
		}
	}
}

func FuzzParseText(f *testing.F) {
	pv, err := ReadPV(testfix.NewDev(testfix.Image(f, "lvm-d1.img")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pv.Copies[0].Text)
	f.Fuzz(func(t *testing.T, text string) {
		root, err := ParseText(text)
		if err != nil {
			return
		}
		// Whatever parses must assemble without panicking.
		for _, s := range root.Children {
			c := Copy{VGName: s.Name, VGID: s.String("id"), Root: root}
			Assemble([]*PV{{UUID: "x", dev: testfix.NewDev(make([]byte, 1<<20)), Copies: []Copy{c}}})
		}
	})
}

func FuzzReadPV(f *testing.F) {
	seed := pvPrefix(f, "lvm-d1.img")
	if pv, err := ReadPV(testfix.NewDev(seed)); err != nil || len(pv.Copies) != 1 {
		f.Fatalf("seed does not read: %v", err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		pv, err := ReadPV(testfix.NewDev(b))
		if err == nil {
			Assemble([]*PV{pv})
		}
	})
}
