package volumes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// ldmImages extracts the libldm test images once per test binary run.
var ldmImages = struct {
	once sync.Once
	dir  string
	err  error
}{}

func ldmDir(t *testing.T) string {
	t.Helper()
	tarball := filepath.Join(corpus(t), "libldm", "ldm-data.tar.xz")
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed")
	}
	ldmImages.once.Do(func() {
		dir, err := mkdirTempShared()
		if err != nil {
			ldmImages.err = err
			return
		}
		out, err := exec.Command("tar", "-SJxf", tarball, "-C", dir).CombinedOutput()
		if err != nil {
			ldmImages.err = fmt.Errorf("tar: %v: %s", err, out)
		}
		ldmImages.dir = dir
	})
	if ldmImages.err != nil {
		t.Fatal(ldmImages.err)
	}
	return ldmImages.dir
}

func ldmSet(t *testing.T, group string, sets ...string) ([]string, *Set) {
	t.Helper()
	dir := ldmDir(t)
	var paths []string
	for _, s := range sets {
		m, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("ldm-%s-%s.img", group, s)))
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		t.Fatalf("no images for %s %v", group, sets)
	}
	return paths, open(t, paths...)
}

// ldmtoolShow runs `ldmtool -d … show <what> <dg> <name>` and decodes its JSON.
func ldmtoolShow(t *testing.T, paths []string, out any, args ...string) {
	t.Helper()
	var a []string
	for _, p := range paths {
		a = append(a, "-d", p)
	}
	a = append(append(a, "show"), args...)
	if err := json.Unmarshal(tool(t, "ldmtool", a...), out); err != nil {
		t.Fatalf("ldmtool %v: %v", args, err)
	}
}

// compareLdmtool checks each LDM volume's layout, size, drive hint and extents against ldmtool.
func compareLdmtool(t *testing.T, s *Set, paths []string) {
	t.Helper()
	for _, v := range ldmVolumes(s) {
		var vol struct {
			Type       string   `json:"type"`
			Size       int64    `json:"size"`
			Chunk      int64    `json:"chunk-size"`
			Hint       string   `json:"hint"`
			Partitions []string `json:"partitions"`
		}
		ldmtoolShow(t, paths, &vol, "volume", v.LDM.GroupGUID, v.LDM.Name)
		if !strings.EqualFold(vol.Type, v.LDM.Layout) || vol.Size*512 != v.Size() || vol.Hint != v.LDM.DriveHint {
			t.Errorf("%s: we say %s %d %q, ldmtool %s %d %q", v.ID, v.LDM.Layout, v.Size(), v.LDM.DriveHint, vol.Type, vol.Size*512, vol.Hint)
		}
		var theirs, ours []string
		for _, name := range vol.Partitions {
			var part struct {
				Start, Size int64
				Disk        string
			}
			ldmtoolShow(t, paths, &part, "partition", v.LDM.GroupGUID, name)
			var disk struct {
				Present   bool   `json:"present"`
				Device    string `json:"device"`
				DataStart int64  `json:"data-start"`
			}
			ldmtoolShow(t, paths, &disk, "disk", v.LDM.GroupGUID, part.Disk)
			where := "absent"
			if disk.Present {
				i := sort.SearchStrings(paths, disk.Device)
				where = fmt.Sprintf("d%d@%d", i, (disk.DataStart+part.Start)*512)
			}
			theirs = append(theirs, fmt.Sprintf("%s+%d", where, part.Size*512))
		}
		for _, e := range v.Extents {
			where := "absent"
			if e.Disk >= 0 {
				where = fmt.Sprintf("d%d@%d", e.Disk, e.Offset)
			}
			ours = append(ours, fmt.Sprintf("%s+%d", where, e.Size))
		}
		sort.Strings(theirs)
		sort.Strings(ours)
		if strings.Join(theirs, " ") != strings.Join(ours, " ") {
			t.Errorf("%s: our extents %v, ldmtool %v", v.ID, ours, theirs)
		}
	}
}

// checkNTFS reads the volume's NTFS with ntfs-3g's tools: the label and test.txt.
func checkNTFS(t *testing.T, v *Volume, label string) {
	t.Helper()
	b := make([]byte, 512)
	if _, err := v.ReadAt(b, 0); err != nil || string(b[3:11]) != "NTFS    " {
		t.Errorf("%s: no NTFS boot sector (%v)", v.ID, err)
		return
	}
	if v.Filesystem.Type != "ntfs" || v.Filesystem.Label != label {
		t.Errorf("%s: filesystem %+v, want ntfs %q", v.ID, v.Filesystem, label)
	}
	img := extractVolume(t, v)
	if got := strings.TrimSpace(string(tool(t, "ntfslabel", "-f", img))); got != label {
		t.Errorf("%s: ntfslabel says %q, want %q", v.ID, got, label)
	}
	if got := tool(t, "ntfscat", "-f", img, "test.txt"); string(got) != "Filesystem test" {
		t.Errorf("%s: test.txt = %q", v.ID, got)
	}
}

func TestCorpusLDM2003(t *testing.T) {
	paths, s := ldmSet(t, "2003r2", "*")
	want := map[string][2]string{
		"Volume1": {"simple", "Simple"}, "Volume2": {"spanned", "Spanned"}, "Stripe1": {"striped", "Striped"},
		"Volume3": {"mirrored", "Mirrored"}, "Raid1": {"raid5", "Raid5"}, "Volume4": {"spanned", "Spanned2"},
	}
	checkLDMGroup(t, s, paths, want)
}

func TestCorpusLDM2008(t *testing.T) {
	paths, s := ldmSet(t, "2008r2", "*")
	want := map[string][2]string{
		"Volume1": {"spanned", "Spanned"}, "Volume2": {"striped", "Striped"}, "Volume3": {"mirrored", "Mirrored"},
		"Volume4": {"raid5", "Raid5"}, "Volume5": {"spanned", "Spanned2"},
	}
	checkLDMGroup(t, s, paths, want)
	// The group mixes MBR and GPT disks.
	schemes := map[string]bool{}
	for _, v := range s.All() {
		if v.Container && v.Partition != nil {
			schemes[v.Partition.Scheme] = true
		}
	}
	if !schemes["mbr"] || !schemes["gpt"] {
		t.Errorf("expected LDM on both MBR and GPT disks, saw %v", schemes)
	}
}

func checkLDMGroup(t *testing.T, s *Set, paths []string, want map[string][2]string) {
	t.Helper()
	vs := ldmVolumes(s)
	if len(vs) != len(want) {
		t.Errorf("volumes %q, want %d", ids(vs), len(want))
	}
	for _, v := range vs {
		w, ok := want[v.ID]
		if !ok || v.Kind != KindLDM || v.Incomplete || v.LDM.Layout != w[0] {
			t.Errorf("%s: kind %s incomplete %v (%s) layout %v", v.ID, v.Kind, v.Incomplete, v.Reason, v.LDM)
			continue
		}
		checkNTFS(t, v, w[1])
	}
	compareLdmtool(t, s, paths)
}

// TestCorpusLDMPartialSets opens each set on its own, as libldm's tests do: volumes of the group whose
// disks are absent are listed incomplete, a mirror reads from either leg alone, and a RAID-5 with one
// member missing is rebuilt from parity, byte-identical to the full set.
func TestCorpusLDMPartialSets(t *testing.T) {
	for _, group := range []string{"2003r2", "2008r2"} {
		_, full := ldmSet(t, group, "*")
		fullBytes := map[string][]byte{}
		for _, v := range ldmVolumes(full) {
			if v.LDM.Layout == "mirrored" || v.LDM.Layout == "raid5" {
				fullBytes[v.LDM.Layout] = sample(t, v)
			}
		}
		for _, c := range []struct {
			sets   []string
			layout string
		}{
			{[]string{"mirrored-1"}, "mirrored"}, {[]string{"mirrored-2"}, "mirrored"},
			{[]string{"raid5-1", "raid5-2"}, "raid5"}, {[]string{"raid5-2", "raid5-3"}, "raid5"}, {[]string{"raid5-1", "raid5-3"}, "raid5"},
		} {
			paths, s := ldmSet(t, group, c.sets...)
			for _, v := range ldmVolumes(s) {
				if v.LDM.Layout == c.layout && v.LDM.Name != "Volume5" {
					if v.Incomplete {
						t.Errorf("%s %v: %s incomplete: %s", group, c.sets, v.ID, v.Reason)
						continue
					}
					if !bytes.Equal(sample(t, v), fullBytes[c.layout]) {
						t.Errorf("%s %v: %s differs from the full set", group, c.sets, v.ID)
					}
				} else if !v.Incomplete || !strings.Contains(v.Reason, "not in the set") {
					t.Errorf("%s %v: %s should be incomplete, reason %q", group, c.sets, v.ID, v.Reason)
				}
			}
			compareLdmtool(t, s, paths)
		}
		// A spanned volume with one disk missing.
		_, s := ldmSet(t, group, "spanned-1")
		for _, v := range ldmVolumes(s) {
			if !v.Incomplete {
				t.Errorf("%s spanned-1 alone: %s is not incomplete", group, v.ID)
			}
			if _, err := v.ReadAt(make([]byte, 512), 0); err == nil {
				t.Errorf("%s spanned-1 alone: %s reads", group, v.ID)
			}
		}
	}
}

// ldmVolumes lists the LDM volumes of s (GPT dynamic disks also carry an ordinary MSR partition).
func ldmVolumes(s *Set) []*Volume {
	var out []*Volume
	for _, v := range s.Volumes() {
		if v.Kind == KindLDM {
			out = append(out, v)
		}
	}
	return out
}

// TestCorpusLDMBothGroups opens all 19 images as one set: two disk groups, names that clash
// (Volume1…Volume4 exist in both) are qualified with the group name.
func TestCorpusLDMBothGroups(t *testing.T) {
	_, s := ldmSet(t, "*", "*")
	vs := ldmVolumes(s)
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.ID] || v.Incomplete {
			t.Errorf("%s: duplicate or incomplete (%s)", v.ID, v.Reason)
		}
		seen[v.ID] = true
	}
	if len(vs) != 11 || !seen["Red-nzv8x6obywgDg0-Volume1"] || !seen["WIN-ERRDJSBDAVF-Dg0-Volume1"] || !seen["Stripe1"] {
		t.Errorf("volumes %q", ids(vs))
	}
}

// sample reads the first 16 MiB and the last MiB of a volume (where NTFS keeps its metadata and
// backup boot sector): enough to tell a wrong rebuild, at a fraction of a full read.
func sample(t *testing.T, v *Volume) []byte {
	t.Helper()
	head := make([]byte, min(16<<20, v.Size()))
	tail := make([]byte, min(1<<20, v.Size()))
	if _, err := v.ReadAt(head, 0); err != nil {
		t.Fatalf("%s: %v", v.ID, err)
	}
	if _, err := v.ReadAt(tail, v.Size()-int64(len(tail))); err != nil {
		t.Fatalf("%s: %v", v.ID, err)
	}
	return append(head, tail...)
}
