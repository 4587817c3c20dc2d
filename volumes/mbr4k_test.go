package volumes

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// TestMBR4Kn lays out an MBR with an extended partition with sfdisk on a 4096-byte-sector loop device
// (losetup -b 4096), puts an ext4 into p1 and into the logical p5, and checks that we find both at the
// offsets sfdisk shows, in 4096-byte units, with trees equal to the kernel's mounts of those ranges.
func TestMBR4Kn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("losetup and mount need root")
	}
	for _, name := range []string{"losetup", "sfdisk", "mkfs.ext4", "mount"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not installed", name)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "4kn.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 96<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-b", "4096", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("losetup -b 4096: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	script := "label: dos\n,24M,83\n,,5\n,20M,83\n,,83\n"
	sf := exec.Command("sfdisk", "-q", dev)
	sf.Stdin = strings.NewReader(script)
	if out, err := sf.CombinedOutput(); err != nil {
		_ = exec.Command("losetup", "-d", dev).Run()
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	js, err := exec.Command("sfdisk", "--json", dev).Output()
	_ = exec.Command("losetup", "-d", dev).Run()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}

	// Write the filesystems where sfdisk says the partitions are.
	var st sfdiskTable
	if err := json.Unmarshal(js, &st); err != nil {
		t.Fatal(err)
	}
	if st.PartitionTable.SectorSize != 4096 {
		t.Fatalf("sfdisk reports %d-byte sectors on the 4K loop device", st.PartitionTable.SectorSize)
	}
	ranges := map[string][2]int64{}
	for _, p := range st.PartitionTable.Partitions {
		n := trailingNumber.FindString(p.Node)
		if n == "1" || n == "5" {
			ranges["p"+n] = [2]int64{int64(p.Start) * 4096, int64(p.Size) * 4096}
		}
	}
	if len(ranges) != 2 {
		t.Fatalf("sfdisk made %s", js)
	}
	for id, r := range ranges {
		src := filepath.Join(dir, "src-"+id)
		writeFiles(t, src, map[string]string{"hello.txt": "hello from " + id + "\n", "sub/deep.txt": strings.Repeat(id, 5000)})
		fsImg := filepath.Join(dir, id+".ext4")
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "four-k-"+id, "-b", "4096", "-d", src, fsImg,
			strconv.FormatInt(r[1]/1024, 10)+"k").CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v %s", err, out)
		}
		copyInto(t, img, fsImg, r[0])
	}

	s := open(t, img)
	compareSfdiskJSON(t, s, img, js)
	if got := ids(s.Volumes()); got != "p1 p5 p6" {
		t.Fatalf("volumes %q, want p1 p5 p6 (problems %v)", got, s.Problems())
	}
	if len(s.Problems()) != 0 {
		t.Errorf("problems: %v", s.Problems())
	}
	for id, r := range ranges {
		v, _ := s.Volume(id)
		if v.Offset != r[0] || v.Size() != r[1] || v.Filesystem.Type != "ext4" || v.Filesystem.Label != "four-k-"+id {
			t.Errorf("%s: at %d+%d holding %+v; sfdisk puts it at %d+%d", id, v.Offset, v.Size(), v.Filesystem, r[0], r[1])
			continue
		}
		tree, err := v.OpenTree(TreeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mnt := filepath.Join(dir, "mnt-"+id)
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		opts := fmt.Sprintf("loop,ro,noatime,offset=%d,sizelimit=%d", r[0], r[1])
		if out, err := exec.Command("mount", "-o", opts, img, mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount %s: %v %s", id, err, out)
		}
		for _, d := range treecmp.Compare(tree, mnt, treecmp.Options{CompareIno: true}) {
			t.Errorf("%s: %s", id, d)
		}
		testfix.Unmount(t, mnt)
		tree.Close()
	}
}

// copyInto writes the file src into dst at byte offset off.
func copyInto(t *testing.T, dst, src string, off int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// writeFiles creates the named files (slash paths relative to dir) with their contents.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
