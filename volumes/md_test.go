package volumes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/internal/mdfix"
)

// mdExt4 makes an ext4 image of exactly size bytes holding a few files, and the kernel's read-only
// mount of it for treecmp.
func mdExt4(t *testing.T, size int64) ([]byte, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the kernel mount needs root")
	}
	for _, name := range []string{"mkfs.ext4", "mount"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not installed", name)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFiles(t, src, map[string]string{"readme.txt": "on an md array\n", "data/big.bin": strings.Repeat("0123456789abcdef", 40000),
		"data/small.txt": "small\n"})
	img := filepath.Join(dir, "fs.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "onmd", "-d", src, img, strconv.FormatInt(size/1024, 10)+"k").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("mkfs.ext4 made %d bytes, want %d", len(b), size)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop,ro,noatime", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	return b, mnt
}

// mdMembers lays fs out over an array's members.
func mdMembers(t *testing.T, a mdfix.Array, fs []byte) [][]byte {
	t.Helper()
	members, err := a.Build(fs)
	if err != nil {
		t.Fatal(err)
	}
	return members
}

// checkArray checks the array volume: its bytes are the filesystem image, it holds ext4 and its tree
// equals the kernel's mount of the image.
func checkArray(t *testing.T, s *Set, id string, fs []byte, mnt string) *Volume {
	t.Helper()
	v, ok := s.Volume(id)
	if !ok {
		t.Fatalf("no volume %s among %s (problems %v)", id, ids(s.All()), s.Problems())
	}
	if v.Incomplete || v.Kind != KindMD || v.Filesystem.Type != "ext4" || v.Filesystem.Label != "onmd" {
		t.Fatalf("%s: kind %s incomplete %v (%s) holds %+v", id, v.Kind, v.Incomplete, v.Reason, v.Filesystem)
	}
	if got := readAll(t, v); !bytes.Equal(got, fs) {
		t.Fatalf("%s: the assembled array differs from the filesystem image it was built from", id)
	}
	tree, err := v.OpenTree(TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	for _, d := range treecmp.Compare(tree, mnt, treecmp.Options{CompareIno: true}) {
		t.Errorf("%s: %s", id, d)
	}
	return v
}

// TestMDRAID0v10OnPartitions is the reported mistake: a two-disk RAID 0 with metadata 1.0 (superblock
// at the end) in MBR partitions, whose first member starts with the array's ext4. The partitions are
// md members (containers), the array is assembled and holds the ext4.
func TestMDRAID0v10OnPartitions(t *testing.T) {
	a := mdfix.Array{Version: "1.0", Level: 0, Members: 2, Chunk: 64 << 10, DevSize: 3 << 20, Name: "guest:0", Events: 7,
		UUID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	fs, mnt := mdExt4(t, a.ArraySize())
	members := mdMembers(t, a, fs)
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("sfdisk not installed")
	}
	var paths []string
	for i, m := range members {
		p := filepath.Join(t.TempDir(), "disk"+strconv.Itoa(i)+".img")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 1<<20+int64(len(m))+1<<20); err != nil {
			t.Fatal(err)
		}
		sf := exec.Command("sfdisk", "-q", p)
		sf.Stdin = strings.NewReader("label: dos\nstart=2048, size=" + strconv.Itoa(len(m)/512) + ", type=fd\n")
		if out, err := sf.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v %s", err, out)
		}
		if out, err := exec.Command("mdadm", "--examine", p).CombinedOutput(); err == nil && strings.Contains(string(out), "a92b4efc") {
			t.Logf("mdadm sees a superblock on the whole disk: %s", out)
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(m, 1<<20); err != nil {
			t.Fatal(err)
		}
		f.Close()
		paths = append(paths, p)
	}
	s := open(t, paths...)
	if got := ids(s.Volumes()); got != "md0" {
		t.Errorf("volumes %q, want md0 alone (problems %v)", got, s.Problems())
	}
	for _, id := range []string{"d0p1", "d1p1"} {
		v, _ := s.Volume(id)
		if v == nil || !v.Container || v.Filesystem.Type != "linux_raid_member" || v.Filesystem.Label != "guest:0" {
			t.Errorf("%s: %+v, want a linux_raid_member container", id, v)
		}
	}
	v := checkArray(t, s, "md0", fs, mnt)
	if v.MD.Level != "raid0" || v.MD.Metadata != "1.0" || len(v.Extents) != 2 || v.Extents[1].Disk != 1 || v.Extents[1].Offset != 1<<20 {
		t.Errorf("md0: %+v extents %+v", v.MD, v.Extents)
	}
}

// TestMDDegradedAndIncomplete: RAID 5 (1.2) and RAID 6 (0.90) read with members missing, as md does
// degraded; a RAID 0 with a member missing is listed incomplete with the missing slot named.
func TestMDDegradedAndIncomplete(t *testing.T) {
	cases := []struct {
		a       mdfix.Array
		id      string
		keep    []int
		problem string
	}{
		{mdfix.Array{Version: "1.2", Level: 5, Layout: 2, Members: 3, Name: "web:data"}, "md-data", []int{0, 2}, "degraded"},
		{mdfix.Array{Version: "0.90", Level: 6, Layout: 2, Members: 5, Minor: 3}, "md3", []int{1, 2, 4}, "degraded"},
		{mdfix.Array{Version: "1.1", Level: 10, Layout: 0x201, Members: 4, Name: "h:7"}, "md7", []int{0, 1, 2, 3}, ""},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			a := c.a
			a.Chunk, a.DevSize, a.Events = 64<<10, 2<<20, 3
			a.UUID[0], a.UUID[15] = byte(a.Level), byte(a.Members)
			fs, mnt := mdExt4(t, a.ArraySize())
			members := mdMembers(t, a, fs)
			var paths []string
			for _, i := range c.keep {
				p := filepath.Join(t.TempDir(), "member"+strconv.Itoa(i))
				if err := os.WriteFile(p, members[i], 0o600); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}
			s := open(t, paths...)
			checkArray(t, s, c.id, fs, mnt)
			if got := strings.Join(s.Problems(), "\n"); !strings.Contains(got, c.problem) {
				t.Errorf("problems %q do not say %q", got, c.problem)
			}
		})
	}
	a := mdfix.Array{Version: "1.2", Level: 0, Members: 3, Chunk: 64 << 10, DevSize: 1 << 20, Name: "h:1", Events: 1}
	members := mdMembers(t, a, make([]byte, a.ArraySize()))
	var disks []Disk
	for _, m := range members[:2] {
		disks = append(disks, fileDiskOf(t, m))
	}
	s, err := Open(disks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, ok := s.Volume("md1")
	if !ok || !v.Incomplete || !strings.Contains(v.Reason, "missing slots 2") {
		t.Fatalf("md1: %+v", v)
	}
	if got := ids(s.Volumes()); got != "md1" {
		t.Errorf("volumes %q: the members must be containers", got)
	}
}

// fileDiskOf writes b to a temp file and opens it as a disk.
func fileDiskOf(t *testing.T, b []byte) Disk {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return openDisk(t, p)
}

// TestMDPartitionedArray: an array holding a partition table (sfdisk) with an ext4 in p1 lists md0p1
// holding that ext4, the array itself as its container.
func TestMDPartitionedArray(t *testing.T) {
	a := mdfix.Array{Version: "1.2", Level: 1, Members: 2, Chunk: 64 << 10, DevSize: 4 << 20, Name: "h:0", Events: 1}
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("sfdisk not installed")
	}
	fs, mnt := mdExt4(t, 3<<20)
	img := filepath.Join(t.TempDir(), "array")
	if err := os.WriteFile(img, make([]byte, a.ArraySize()), 0o600); err != nil {
		t.Fatal(err)
	}
	sf := exec.Command("sfdisk", "-q", img)
	sf.Stdin = strings.NewReader("label: dos\nstart=2048, size=6144, type=83\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	copyInto(t, img, writeTemp(t, fs), 1<<20)
	arr, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	members := mdMembers(t, a, arr)
	s, err := Open([]Disk{fileDiskOf(t, members[0]), fileDiskOf(t, members[1])}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(s.Volumes()); got != "md0p1" {
		t.Fatalf("volumes %q (all %q)", got, ids(s.All()))
	}
	v, _ := s.Volume("md0p1")
	if v.Offset != 1<<20 || v.Size() != 3<<20 || v.Filesystem.Type != "ext4" {
		t.Fatalf("md0p1 at %d+%d holds %+v", v.Offset, v.Size(), v.Filesystem)
	}
	if !bytes.Equal(readAll(t, v), fs) {
		t.Fatal("md0p1 differs from the ext4 image")
	}
	tree, err := v.OpenTree(TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	for _, d := range treecmp.Compare(tree, mnt, treecmp.Options{CompareIno: true}) {
		t.Error(d)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
