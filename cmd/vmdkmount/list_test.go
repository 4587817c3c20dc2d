package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func corpusDir(t *testing.T) string {
	t.Helper()
	c := filepath.Join(testfix.RepoRoot(t), "..", "shared", "acceptance", "corpus")
	if _, err := os.Stat(c); err != nil {
		t.Skip("acceptance corpus not present")
	}
	return c
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"vmdkmount"}, args...))
	return out.String(), errOut.String(), err
}

func listJSON(t *testing.T, args ...string) []listedVolume {
	t.Helper()
	out, _, err := run(t, append([]string{"list", "--json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Volumes []listedVolume }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	return v.Volumes
}

// dfvfs mbr.raw wrapped in a stream-optimized VMDK by qemu-img: the volumes EXPECTED.md records.
func TestListMBRInVMDK(t *testing.T) {
	c := corpusDir(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	vmdk := filepath.Join(t.TempDir(), "mbr so.vmdk")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
		filepath.Join(c, "dfvfs", "mbr.raw"), vmdk).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	vols := listJSON(t, vmdk)
	if len(vols) != 2 {
		t.Fatalf("%d volumes: %+v", len(vols), vols)
	}
	want := []struct {
		id          string
		start, size int64
		label       string
	}{{"p1", 512, 66048, "ext3_test"}, {"p5", 131 * 512, 129 * 512, "ext4_test"}}
	for i, w := range want {
		v := vols[i]
		if v.ID != w.id || v.Start != w.start || v.Size != w.size || v.Label != w.label || v.Partition == nil || v.Partition.TypeID != 0x83 {
			t.Errorf("volume %d: %+v, want %+v", i, v, w)
		}
	}
	table, _, err := run(t, "list", vmdk)
	if err != nil || !strings.Contains(table, "p5") || !strings.Contains(table, "Linux (0x83)") {
		t.Errorf("table: %v\n%s", err, table)
	}
}

// A Windows dynamic-disk set given as several disks: every volume assembles as ldmtool sees it.
func TestListLDMSet(t *testing.T) {
	c := corpusDir(t)
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-SJxf", filepath.Join(c, "libldm", "ldm-data.tar.xz"), "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	find := func(name string) string {
		m, _ := filepath.Glob(filepath.Join(dir, "*", name))
		if len(m) == 0 {
			m, _ = filepath.Glob(filepath.Join(dir, name))
		}
		if len(m) == 0 {
			t.Fatalf("%s not in the archive", name)
		}
		return m[0]
	}
	vols := listJSON(t, find("ldm-2003r2-raid5-1.img"), find("ldm-2003r2-raid5-2.img"), find("ldm-2003r2-raid5-3.img"))
	var raid *listedVolume
	for i := range vols {
		if vols[i].ID == "Raid1" {
			raid = &vols[i]
		}
	}
	if raid == nil || raid.Incomplete || raid.Size != 192512*512 || raid.Filesystem != "ntfs" || raid.LDM == nil || raid.LDM.Layout != "raid5" {
		t.Fatalf("Raid1: %+v (all: %+v)", raid, vols)
	}
}

// A disk whose extents are missing fails with a message naming the first missing extent.
func TestListMissingExtent(t *testing.T) {
	c := corpusDir(t)
	_, _, err := run(t, "list", filepath.Join(c, "vmdk-forensic", "ms3-win.vmdk"))
	if err == nil || !strings.Contains(err.Error(), "disk-s001.vmdk") {
		t.Fatalf("got %v", err)
	}
	if _, _, err := run(t, "list"); err == nil {
		t.Fatal("list without a disk succeeded")
	}
}

// A recognised filesystem without a reader is listed raw-only, with the reason.
func TestListRawOnly(t *testing.T) {
	if _, err := exec.LookPath("mkswap"); err != nil {
		t.Skip("mkswap not installed")
	}
	img := filepath.Join(t.TempDir(), "swap.img")
	os.WriteFile(img, make([]byte, 8<<20), 0o644)
	if out, err := exec.Command("mkswap", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	vols := listJSON(t, img)
	if len(vols) != 1 || vols[0].Filesystem != "swap" || vols[0].Tree || !strings.Contains(vols[0].NoTree, "raw access only") {
		t.Errorf("%+v", vols)
	}
	table, _, _ := run(t, "list", img)
	if !strings.Contains(table, "swap (raw only)") {
		t.Errorf("table:\n%s", table)
	}
}
