package volumes

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sfdiskTable is the part of `sfdisk --json` the tests compare.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    uint64 `json:"start"`
			Size     uint64 `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

var trailingNumber = regexp.MustCompile(`(\d+)$`)

// sfdiskAttrs turns sfdisk's attribute text ("LegacyBIOSBootable GUID:63") into the attribute bits.
func sfdiskAttrs(t *testing.T, s string) uint64 {
	var bits uint64
	for _, f := range strings.Fields(s) {
		switch {
		case f == "RequiredPartition":
			bits |= 1
		case f == "NoBlockIOProtocol":
			bits |= 2
		case f == "LegacyBIOSBootable":
			bits |= 4
		case strings.HasPrefix(f, "GUID:"):
			for _, n := range strings.Split(strings.TrimPrefix(f, "GUID:"), ",") {
				b, err := strconv.Atoi(n)
				if err != nil {
					t.Fatalf("sfdisk attrs %q", s)
				}
				bits |= 1 << b
			}
		default:
			t.Fatalf("sfdisk attrs %q: unknown %q", s, f)
		}
	}
	return bits
}

// compareSfdisk checks that the partitions of disk 0 of s are exactly those sfdisk lists for path.
func compareSfdisk(t *testing.T, s *Set, path string) {
	t.Helper()
	compareSfdiskJSON(t, s, path, tool(t, "sfdisk", "--json", path))
}

// compareSfdiskJSON is compareSfdisk on output sfdisk already gave (for a device since detached).
func compareSfdiskJSON(t *testing.T, s *Set, path string, out []byte) {
	t.Helper()
	var st sfdiskTable
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	for _, v := range s.All() {
		if v.Kind == KindPartition && v.Disk == 0 && v.Partition.SectorSize != st.PartitionTable.SectorSize {
			t.Errorf("%s %s: we read %d-byte sectors, sfdisk %d", path, v.ID, v.Partition.SectorSize, st.PartitionTable.SectorSize)
		}
	}
	ours := map[int]*Volume{}
	for _, v := range s.All() {
		if v.Kind == KindPartition && v.Disk == 0 {
			ours[v.Partition.Number] = v
		}
	}
	if len(ours) != len(st.PartitionTable.Partitions) {
		t.Errorf("%s: we found %d partitions, sfdisk %d", path, len(ours), len(st.PartitionTable.Partitions))
	}
	for _, p := range st.PartitionTable.Partitions {
		n, _ := strconv.Atoi(trailingNumber.FindString(p.Node))
		v := ours[n]
		if v == nil {
			t.Errorf("%s: sfdisk lists partition %d, we do not", path, n)
			continue
		}
		pi := v.Partition
		if pi.StartLBA != p.Start || pi.Sectors != p.Size {
			t.Errorf("%s p%d: we say %d+%d, sfdisk %d+%d", path, n, pi.StartLBA, pi.Sectors, p.Start, p.Size)
		}
		switch st.PartitionTable.Label {
		case "dos":
			if pi.Scheme != "mbr" || fmt.Sprintf("%x", pi.TypeID) != p.Type || pi.Active != p.Bootable {
				t.Errorf("%s p%d: we say type %x active %v, sfdisk %s %v", path, n, pi.TypeID, pi.Active, p.Type, p.Bootable)
			}
		case "gpt":
			if pi.Scheme != "gpt" || pi.TypeGUID != p.Type || pi.UniqueGUID != p.UUID || pi.Name != p.Name || pi.Attributes != sfdiskAttrs(t, p.Attrs) {
				t.Errorf("%s p%d: we say %s %s %q %#x, sfdisk %s %s %q %q", path, n, pi.TypeGUID, pi.UniqueGUID, pi.Name, pi.Attributes, p.Type, p.UUID, p.Name, p.Attrs)
			}
		}
	}
}

// mmlsLine matches an allocated mmls row: "002:  000:000   0000000001   0000000129   0000000129   Linux (0x83)".
var mmlsLine = regexp.MustCompile(`^\d+:\s+(\d+(?::\d+)?)\s+(\d+)\s+(\d+)\s+(\d+)\s`)

// compareMmls checks that mmls lists exactly our non-container partitions of disk 0 (start, length).
func compareMmls(t *testing.T, s *Set, path string, sectorSize int) {
	t.Helper()
	out := tool(t, "mmls", "-b", strconv.Itoa(sectorSize), path)
	var theirs, ours []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := mmlsLine.FindStringSubmatch(line); m != nil {
			start, _ := strconv.ParseUint(m[2], 10, 64)
			length, _ := strconv.ParseUint(m[4], 10, 64)
			theirs = append(theirs, fmt.Sprintf("%d+%d", start, length))
		}
	}
	for _, v := range s.All() {
		if v.Kind == KindPartition && v.Disk == 0 && !(v.Partition.Scheme == "mbr" && v.Container) {
			ours = append(ours, fmt.Sprintf("%d+%d", v.Partition.StartLBA, v.Partition.Sectors))
		}
	}
	sort.Strings(theirs)
	sort.Strings(ours)
	if strings.Join(theirs, " ") != strings.Join(ours, " ") {
		t.Errorf("%s: mmls lists %v, we %v", path, theirs, ours)
	}
}

func ids(vs []*Volume) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return strings.Join(out, " ")
}

func TestCorpusDfvfsMBR(t *testing.T) {
	path := filepath.Join(corpus(t), "dfvfs", "mbr.raw")
	s := open(t, path)
	vs := s.Volumes()
	if got := ids(vs); got != "p1 p5" {
		t.Fatalf("volumes %q, want p1 p5", got)
	}
	p5 := vs[1]
	if p5.Offset != 67072 || p5.Size() != 66048 || p5.Partition.TypeID != 0x83 || !p5.Partition.Logical {
		t.Errorf("p5: offset %d size %d type %x", p5.Offset, p5.Size(), p5.Partition.TypeID)
	}
	if vs[0].Filesystem.Label != "ext3_test" || p5.Filesystem.Label != "ext4_test" {
		t.Errorf("labels %q %q", vs[0].Filesystem.Label, p5.Filesystem.Label)
	}
	b := make([]byte, 32)
	if _, err := p5.ReadAt(b, 0x15A00-0x10600); err != nil || string(b) != "place,user,password\nbank,joesmit" {
		t.Errorf("p5 at 0x5400: %q %v", b, err)
	}
	compareSfdisk(t, s, path)
	compareMmls(t, s, path, 512)
}

func TestCorpusTSKVolumeSystem(t *testing.T) {
	path := filepath.Join(corpus(t), "dfvfs", "tsk_volume_system.raw")
	s := open(t, path)
	vs := s.Volumes()
	if got := ids(vs); got != "p1 p5" {
		t.Fatalf("volumes %q, want p1 p5", got)
	}
	if p := vs[1].Partition; p.StartLBA != 352 || p.Sectors != 2528 {
		t.Errorf("logical at %d+%d", p.StartLBA, p.Sectors)
	}
	want := []byte{0xc0, 0x41, 0, 0, 0, 0x30, 0, 0, 0xc8, 0x8c, 0xb9, 0x52, 0xc8, 0x8c, 0xb9, 0x52, 0xc8, 0x8c, 0xb9, 0x52, 0, 0, 0, 0, 0, 0, 2, 0, 0x18, 0, 0, 0}
	b := make([]byte, 32)
	if _, err := vs[1].ReadAt(b, 0x2e900-352*512); err != nil || string(b) != string(want) {
		t.Errorf("logical bytes % x %v", b, err)
	}
	if vs[1].Filesystem.Type != "ext2" {
		t.Errorf("logical holds %q, want ext2", vs[1].Filesystem.Type)
	}
	compareSfdisk(t, s, path)
	compareMmls(t, s, path, 512)
}

func TestCorpusMbrman(t *testing.T) {
	dir := filepath.Join(corpus(t), "mbrman")
	s := open(t, filepath.Join(dir, "disk1.img"))
	vs := s.Volumes()
	if ids(vs) != "p1 p2" || !vs[0].Partition.Active || vs[1].Partition.Active ||
		vs[0].Partition.TypeID != 0x06 || vs[1].Partition.TypeID != 0x0b || vs[1].Partition.StartLBA != 3 {
		t.Errorf("disk1: %s %+v %+v", ids(vs), vs[0].Partition, vs[len(vs)-1].Partition)
	}
	compareSfdisk(t, s, filepath.Join(dir, "disk1.img"))
	s = open(t, filepath.Join(dir, "disk2.img"))
	if got := ids(s.Volumes()); got != "p1 p5 p6 p7 p8 p9" {
		t.Errorf("disk2 volumes %q", got)
	}
	var starts []uint64
	for _, v := range s.Volumes()[1:] {
		starts = append(starts, v.Partition.StartLBA)
	}
	if fmt.Sprint(starts) != "[6 8 11 15 17]" {
		t.Errorf("logical starts %v", starts)
	}
	compareSfdisk(t, s, filepath.Join(dir, "disk2.img"))
	compareMmls(t, s, filepath.Join(dir, "disk2.img"), 512)
}

func TestCorpusGptman(t *testing.T) {
	dir := filepath.Join(corpus(t), "gptman")
	for _, c := range []struct {
		file  string
		ss    int
		names []string
		disk  string
	}{
		{"disk1.img", 512, []string{"Foo", "Bar"}, ""},
		{"disk2.img", 4096, []string{"", ""}, ""},
		{"disk3.img", 512, []string{"Properly zeroed name", "Name with garbage"}, "EEFD2936-3172-4DD6-A221-E6E5988F76FB"},
		{"disk4.img", 4096, []string{"Properly zeroed name", "Name with garbage"}, ""},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			s := open(t, path)
			vs := s.Volumes()
			if ids(vs) != "p1 p2" {
				t.Fatalf("volumes %q", ids(vs))
			}
			for i, v := range vs {
				if v.Partition.SectorSize != c.ss || v.Partition.Name != c.names[i] {
					t.Errorf("%s: sector size %d name %q", v.ID, v.Partition.SectorSize, v.Partition.Name)
				}
				if v.Offset != int64(v.Partition.StartLBA)*int64(c.ss) {
					t.Errorf("%s: offset %d", v.ID, v.Offset)
				}
			}
			if c.ss == 512 {
				compareSfdisk(t, s, path)
				compareSgdisk(t, s, path)
			}
			compareMmls(t, s, path, c.ss)
		})
	}
}

// TestCorpusSleuthkitE01 reads the FTK Imager disk (exported to raw with ewfexport): an MBR with two
// NTFS partitions starting at sector 128.
func TestCorpusSleuthkitE01(t *testing.T) {
	e01 := filepath.Join(corpus(t), "sleuthkit", "imageformat_mmls_1.E01")
	target := filepath.Join(t.TempDir(), "mm")
	tool(t, "ewfexport", "-q", "-t", target, "-f", "raw", "-u", e01)
	path := target + ".raw"
	s := open(t, path)
	vs := s.Volumes()
	if ids(vs) != "p1 p2" {
		t.Fatalf("volumes %q", ids(vs))
	}
	for i, w := range []struct {
		start, sectors uint64
		label          string
	}{{128, 55296, "Part 1"}, {55424, 61440, "Part 2"}} {
		p := vs[i].Partition
		if p.StartLBA != w.start || p.Sectors != w.sectors || p.TypeID != 0x07 || vs[i].Filesystem.Type != "ntfs" || vs[i].Filesystem.Label != w.label {
			t.Errorf("%s: %d+%d type %x fs %+v", vs[i].ID, p.StartLBA, p.Sectors, p.TypeID, vs[i].Filesystem)
		}
	}
	compareSfdisk(t, s, path)
	compareMmls(t, s, path, 512)
	compareBlkid(t, s, path)
}
