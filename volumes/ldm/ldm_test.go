package ldm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

// rec builds a VBLK record body: the 8-byte record header and the fields.
type rec struct{ b bytes.Buffer }

func newRec(kind, rev, flags byte) *rec {
	r := &rec{}
	r.b.Write([]byte{0, 0, flags, rev<<4 | kind, 0, 0, 0, 0})
	return r
}
func (r *rec) raw(b ...byte) *rec { r.b.Write(b); return r }
func (r *rec) zeros(n int) *rec   { r.b.Write(make([]byte, n)); return r }
func (r *rec) str(s string) *rec  { r.b.WriteByte(byte(len(s))); r.b.WriteString(s); return r }
func (r *rec) u64(v uint64) *rec  { return r.raw(binary.BigEndian.AppendUint64(nil, v)...) }
func (r *rec) num(v uint64) *rec {
	if v < 1<<32 {
		return r.raw(append([]byte{4}, binary.BigEndian.AppendUint32(nil, uint32(v))...)...)
	}
	return r.raw(append([]byte{8}, binary.BigEndian.AppendUint64(nil, v)...)...)
}
func (r *rec) bytes() []byte { return r.b.Bytes() }
func vol(id uint64, name string, ncomps, size uint64) []byte {
	return newRec(1, 5, 0).num(id).str(name).str("gen").str("").zeros(14).raw(3).zeros(5).raw(0).num(ncomps).zeros(16).num(size).zeros(4).raw(7).zeros(16).bytes()
}
func comp(id uint64, typ byte, nparts, parent uint64) []byte {
	return newRec(2, 3, 0).num(id).str("c").str("ACTIVE").raw(typ).zeros(4).num(nparts).zeros(16).num(parent).zeros(1).bytes()
}
func part(id uint64, name string, start, off, size, parent, disk uint64) []byte {
	return newRec(3, 3, 0).num(id).str(name).zeros(12).u64(start).u64(off).num(size).num(parent).num(disk).bytes()
}
func disk(id uint64, guid byte) []byte {
	g := make([]byte, 16)
	g[15] = guid
	return newRec(4, 4, 0).num(id).str("Disk1").raw(g...).bytes()
}

// vmdb lays records out as 128-byte VBLKs after a VMDB header, fragmenting long ones.
func vmdb(records ...[]byte) []byte {
	b := make([]byte, 512)
	copy(b, "VMDB")
	binary.BigEndian.PutUint32(b[8:], 128)
	binary.BigEndian.PutUint32(b[12:], 512)
	copy(b[0x16:], "TestDg0")
	binary.BigEndian.PutUint64(b[0x75:], 7)
	for i, r := range records {
		n := (len(r) + 111) / 112
		for e := 0; e < n; e++ {
			v := make([]byte, 128)
			copy(v, "VBLK")
			binary.BigEndian.PutUint32(v[8:], uint32(i+1))
			binary.BigEndian.PutUint16(v[12:], uint16(e))
			binary.BigEndian.PutUint16(v[14:], uint16(n))
			copy(v[16:], r[e*112:min(len(r), (e+1)*112)])
			b = append(b, v...)
		}
	}
	return b
}

func assembleOne(t *testing.T, db *DB) *Volume {
	t.Helper()
	d := &Disk{DiskGUID: formatGUID(append(make([]byte, 15), 1)), GroupGUID: "g", DataStart: 63, DataSize: 1000, DB: db, dev: layout.Zero(1 << 20)}
	groups, _ := Assemble([]*Disk{d})
	if len(groups) != 1 || len(groups[0].Volumes) != 1 {
		t.Fatalf("%+v", groups)
	}
	return groups[0].Volumes[0]
}

func TestSyntheticSimple(t *testing.T) {
	db, err := ParseVMDB(vmdb(vol(1, "Volume1", 1, 100), comp(2, CompSpanned, 1, 1), part(3, "Disk1-01", 10, 0, 100, 2, 4), disk(4, 1)))
	if err != nil {
		t.Fatal(err)
	}
	v := assembleOne(t, db)
	if v.Err != nil || v.Layout != "simple" || v.Size != 100*512 || v.Extents[0].Offset != (63+10)*512 {
		t.Errorf("%+v", v)
	}
}

// References to records that are not there, and extents that lie, spoil the volume with an error.
func TestSyntheticBadReferences(t *testing.T) {
	for name, records := range map[string][][]byte{
		"no component":       {vol(1, "V", 1, 100), part(3, "P", 0, 0, 100, 2, 4), disk(4, 1)},
		"no partition":       {vol(1, "V", 1, 100), comp(2, CompSpanned, 1, 1), disk(4, 1)},
		"unknown disk":       {vol(1, "V", 1, 100), comp(2, CompSpanned, 1, 1), part(3, "P", 0, 0, 100, 2, 9), disk(4, 1)},
		"outside data area":  {vol(1, "V", 1, 100), comp(2, CompSpanned, 1, 1), part(3, "P", 990, 0, 100, 2, 4), disk(4, 1)},
		"gap in span":        {vol(1, "V", 1, 100), comp(2, CompSpanned, 1, 1), part(3, "P", 0, 50, 100, 2, 4), disk(4, 1)},
		"short of volume":    {vol(1, "V", 1, 200), comp(2, CompSpanned, 1, 1), part(3, "P", 0, 0, 100, 2, 4), disk(4, 1)},
		"huge volume":        {vol(1, "V", 1, 1<<62), comp(2, CompSpanned, 1, 1), part(3, "P", 0, 0, 100, 2, 4), disk(4, 1)},
		"striped, no chunk":  {vol(1, "V", 1, 100), comp(2, CompStriped, 1, 1), part(3, "P", 0, 0, 100, 2, 4), disk(4, 1)},
		"component count":    {vol(1, "V", 2, 100), comp(2, CompSpanned, 1, 1), part(3, "P", 0, 0, 100, 2, 4), disk(4, 1)},
		"raid under gen vol": {vol(1, "V", 1, 100), comp(2, CompRAID5, 1, 1), part(3, "P", 0, 0, 100, 2, 4), disk(4, 1)},
	} {
		db, err := ParseVMDB(vmdb(records...))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if v := assembleOne(t, db); v.Err == nil || v.Dev != nil {
			t.Errorf("%s: assembled %+v", name, v)
		}
	}
}

func TestSyntheticBadVBLKs(t *testing.T) {
	long := newRec(1, 5, 0).num(1).str(strings.Repeat("x", 200)).bytes()
	b := vmdb(long)
	// Drop the second fragment.
	copy(b[512+128:], make([]byte, 128))
	if _, err := ParseVMDB(b); err == nil || !strings.Contains(err.Error(), "fragments") {
		t.Errorf("missing fragment: %v", err)
	}
	b = vmdb(newRec(1, 5, 0).num(1).raw(200).bytes()) // name longer than the record
	if _, err := ParseVMDB(b); err == nil {
		t.Error("overlong name accepted")
	}
	b = vmdb(newRec(1, 5, 0).raw(9, 1, 2, 3, 4, 5, 6, 7, 8, 9).bytes()) // 9-byte id
	if _, err := ParseVMDB(b); err == nil {
		t.Error("9-byte integer accepted")
	}
	b = vmdb(disk(4, 1))
	binary.BigEndian.PutUint16(b[512+12:], 3) // entry 3 of 1
	if _, err := ParseVMDB(b); err == nil {
		t.Error("entry past total accepted")
	}
	if _, err := ParseConfig(make([]byte, 4096)); err == nil {
		t.Error("blank config accepted")
	}
}

// corpusConfig extracts one libldm image and returns its config area, or skips.
func corpusConfig(tb testing.TB) []byte {
	dir := testfix.Corpus(tb)
	if dir == "" {
		tb.Skip("acceptance corpus not present")
	}
	tmp := tb.TempDir()
	if out, err := exec.Command("tar", "-SJxf", filepath.Join(dir, "libldm", "ldm-data.tar.xz"), "-C", tmp, "ldm-2003r2-raid5-1.img").CombinedOutput(); err != nil {
		tb.Skipf("tar: %v %s", err, out)
	}
	f, err := os.Open(filepath.Join(tmp, "ldm-2003r2-raid5-1.img"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	d, err := ReadDisk(sized{f, st.Size()}, 6*512)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := make([]byte, d.ConfigSize*512)
	if _, err := f.ReadAt(cfg, int64(d.ConfigStart)*512); err != nil {
		tb.Fatal(err)
	}
	return cfg
}

type sized struct {
	*os.File
	n int64
}

func (s sized) Size() int64 { return s.n }

func TestCorpusConfig(t *testing.T) {
	db, err := ParseConfig(corpusConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if db.GroupName != "Red-nzv8x6obywgDg0" || len(db.Disks) != 10 || len(db.Volumes) != 6 {
		t.Errorf("group %q, %d disks, %d volumes", db.GroupName, len(db.Disks), len(db.Volumes))
	}
}

func FuzzParseVMDB(f *testing.F) {
	f.Add(vmdb(vol(1, "Volume1", 1, 100), comp(2, CompSpanned, 1, 1), part(3, "Disk1-01", 10, 0, 100, 2, 4), disk(4, 1)))
	f.Add(vmdb(vol(1, "R", 1, 200), comp(2, CompRAID5, 3, 1), part(3, "A", 0, 0, 100, 2, 4), part(5, "B", 100, 0, 100, 2, 4), part(6, "C", 200, 0, 100, 2, 4), disk(4, 1)))
	if dir := testfix.Corpus(f); dir != "" {
		if cfg := corpusConfig(f); len(cfg) > 17*512 {
			f.Add(cfg[17*512 : min(len(cfg), 17*512+32<<10)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		db, err := ParseVMDB(b)
		if err != nil {
			return
		}
		var disks []*Disk
		for _, r := range db.Disks {
			disks = append(disks, &Disk{DiskGUID: r.GUID, GroupGUID: "g", DataStart: 1, DataSize: 2000, DB: db, dev: layout.Zero(1 << 20)})
		}
		if len(disks) == 0 {
			disks = append(disks, &Disk{GroupGUID: "g", DB: db, dev: layout.Zero(4096)})
		}
		groups, _ := Assemble(disks)
		for _, g := range groups {
			for _, v := range g.Volumes {
				if v.Dev != nil {
					if _, err := v.Dev.ReadAt(make([]byte, 512), 0); err != nil && !errors.Is(err, layout.ErrMissing) && v.Size >= 512 {
						t.Fatalf("%s: %v", v.Name, err)
					}
				}
			}
		}
	})
}
