package volumes

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// blkid probes [off, off+size) of path with util-linux blkid, low-level mode; nil when it finds nothing.
func blkid(t *testing.T, path string, off, size int64) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("blkid"); err != nil {
		t.Skip("blkid not installed")
	}
	out, err := exec.Command("blkid", "-p", "-o", "export", "-O", strconv.FormatInt(off, 10), "-S", strconv.FormatInt(size, 10), path).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return nil
	}
	if err != nil {
		t.Fatalf("blkid %s at %d: %v", path, off, err)
	}
	tags := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			tags[k] = unescapeShell(v)
		}
	}
	return tags
}

// compareBlkid checks type, label and UUID of every readable volume on disk 0 against blkid.
func compareBlkid(t *testing.T, s *Set, path string) {
	t.Helper()
	for _, v := range s.All() {
		if v.Disk != 0 || v.dev == nil || (v.Partition != nil && v.Partition.Scheme == "mbr" && v.Container) {
			continue
		}
		tags := blkid(t, path, v.Offset, v.Size())
		want := tags["TYPE"]
		if want == "vfat" {
			want = strings.ToLower(tags["VERSION"])
		}
		got := v.Filesystem
		if got.Type != want || got.Label != tags["LABEL"] || got.UUID != tags["UUID"] {
			t.Errorf("%s %s: we found %q label %q uuid %q; blkid %q label %q uuid %q", path, v.ID,
				got.Type, got.Label, got.UUID, want, tags["LABEL"], tags["UUID"])
		}
	}
}

func TestFixtureGPT512(t *testing.T) {
	path := fixture(t, "gpt512.img")
	s := open(t, path)
	if got := ids(s.Volumes()); got != "p1 p2 p4" {
		t.Fatalf("volumes %q", got)
	}
	compareSfdisk(t, s, path)
	compareMmls(t, s, path, 512)
	compareBlkid(t, s, path)
	compareSgdisk(t, s, path)
	p1, _ := s.Volume("p1")
	p2, _ := s.Volume("p2")
	if p2.Partition.Attributes != 1<<2|1<<60 || p2.Partition.Name != "linux data" {
		t.Errorf("p2: %+v", p2.Partition)
	}
	if p1.Filesystem.Type != "fat12" || p1.Filesystem.Label != "ESPLABEL" || p2.Filesystem.Type != "ext2" || p2.Filesystem.Label != "gptdata" {
		t.Errorf("filesystems %+v %+v", p1.Filesystem, p2.Filesystem)
	}
}

// TestFixtureGPTHybrid: an MBR with 0xEE plus a real entry; as in Linux and sfdisk, the GPT wins.
func TestFixtureGPTHybrid(t *testing.T) {
	path := fixture(t, "gpt512-hybrid.img")
	s := open(t, path)
	if got := ids(s.Volumes()); got != "p1 p2 p4" {
		t.Fatalf("volumes %q", got)
	}
	for _, v := range s.Volumes() {
		if v.Partition.Scheme != "gpt" {
			t.Errorf("%s read from the %s table", v.ID, v.Partition.Scheme)
		}
	}
	compareSfdisk(t, s, path)
	compareSgdisk(t, s, path)
}

// compareSgdisk checks every GPT partition of disk 0 against `sgdisk -i N`.
func compareSgdisk(t *testing.T, s *Set, path string) {
	t.Helper()
	for _, v := range s.All() {
		if v.Disk != 0 || v.Partition == nil || v.Partition.Scheme != "gpt" {
			continue
		}
		p := v.Partition
		out := string(tool(t, "sgdisk", "-i", strconv.Itoa(p.Number), path))
		field := func(name string) string {
			for _, line := range strings.Split(out, "\n") {
				if rest, ok := strings.CutPrefix(line, name+": "); ok {
					return rest
				}
			}
			t.Errorf("sgdisk -i %d: no %q line", p.Number, name)
			return ""
		}
		typ, _, _ := strings.Cut(field("Partition GUID code"), " ")
		first, _, _ := strings.Cut(field("First sector"), " ")
		last, _, _ := strings.Cut(field("Last sector"), " ")
		attrs, err := strconv.ParseUint(field("Attribute flags"), 16, 64)
		if err != nil {
			t.Errorf("sgdisk attribute flags: %v", err)
		}
		want := fmt.Sprintf("%s %s %s-%s %#x '%s'", typ, field("Partition unique GUID"), first, last, attrs, strings.Trim(field("Partition name"), "'"))
		got := fmt.Sprintf("%s %s %d-%d %#x '%s'", p.TypeGUID, p.UniqueGUID, p.StartLBA, p.StartLBA+p.Sectors-1, p.Attributes, p.Name)
		if got != want {
			t.Errorf("%s: we say %s, sgdisk %s", v.ID, got, want)
		}
	}
}

func TestFixtureGPTBackup(t *testing.T) {
	good := fixture(t, "gpt512.img")
	path := fixture(t, "gpt512-badprimary.img")
	s := open(t, path)
	if got := ids(s.Volumes()); got != "p1 p2 p4" {
		t.Fatalf("volumes %q", got)
	}
	for _, v := range s.Volumes() {
		if !v.Partition.FromBackup {
			t.Errorf("%s not marked as read from the backup GPT", v.ID)
		}
	}
	if len(s.Problems()) == 0 || !strings.Contains(s.Problems()[0], "CRC") {
		t.Errorf("problems %q should name the primary's CRC", s.Problems())
	}
	// The intact disk's table, as sfdisk and sgdisk read it, is what the backup must give.
	compareSfdisk(t, s, good)
	compareSgdisk(t, s, good)
}

func TestFixtureGPT4K(t *testing.T) {
	path := fixture(t, "gpt4k.img")
	s := open(t, path)
	vs := s.Volumes()
	if ids(vs) != "p1 p2" || vs[0].Partition.SectorSize != 4096 || vs[0].Offset != 256*4096 {
		t.Fatalf("volumes %q %+v", ids(vs), vs[0].Partition)
	}
	compareMmls(t, s, path, 4096)
	compareBlkid(t, s, path)
	if vs[0].Partition.Name != "four k" || vs[0].Filesystem.Label != "fourk" || vs[1].Filesystem.Type != "swap" {
		t.Errorf("p1 %q %+v, p2 %+v", vs[0].Partition.Name, vs[0].Filesystem, vs[1].Filesystem)
	}
}

func TestFixtureMBRLogicals(t *testing.T) {
	path := fixture(t, "mbr.img")
	s := open(t, path)
	if got := ids(s.Volumes()); got != "p1 p5 p6 p7 p8 p9 p10" {
		t.Fatalf("volumes %q", got)
	}
	compareSfdisk(t, s, path)
	compareMmls(t, s, path, 512)
	compareBlkid(t, s, path)
	want := map[string]string{"p1": "fat12", "p5": "ext3", "p6": "swap", "p7": "ntfs", "p8": "exfat", "p9": "fat32", "p10": "xfs"}
	for id, typ := range want {
		if v, _ := s.Volume(id); v.Filesystem.Type != typ {
			t.Errorf("%s holds %q, want %q", id, v.Filesystem.Type, typ)
		}
	}
}

func TestFixtureWholeDisks(t *testing.T) {
	for name, typ := range map[string]string{"whole-ext4.img": "ext4", "whole-squashfs.img": "squashfs", "whole-iso.img": "iso9660"} {
		path := fixture(t, name)
		s := open(t, path)
		vs := s.Volumes()
		if ids(vs) != "disk" || vs[0].Kind != KindWholeDisk || vs[0].Filesystem.Type != typ {
			t.Errorf("%s: %q %+v", name, ids(vs), vs[0].Filesystem)
			continue
		}
		compareBlkid(t, s, path)
	}
}

func TestFixtureEBRLoop(t *testing.T) {
	path := fixture(t, "ebrloop.img")
	s := open(t, path)
	if got := ids(s.Volumes()); got != "p1 p5 p6" {
		t.Errorf("volumes %q, want p1 p5 p6 (each logical once)", got)
	}
	if !strings.Contains(strings.Join(s.Problems(), "\n"), "loops") {
		t.Errorf("problems %q do not report the loop", s.Problems())
	}
}

// unescapeShell undoes blkid's export quoting: a backslash protects the next byte.
func unescapeShell(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
