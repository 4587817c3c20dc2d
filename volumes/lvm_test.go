package volumes

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func lvmFixture(t *testing.T) []string {
	return []string{fixture(t, "lvm-d0.img"), fixture(t, "lvm-d1.img"), fixture(t, "lvm-d2.img")}
}

// extractVolume writes a volume to a sparse temp file for external tools.
func extractVolume(t *testing.T, v *Volume) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), v.ID+".img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(v.Size()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	for off := int64(0); off < v.Size(); off += int64(len(buf)) {
		n, err := v.ReadAt(buf, off)
		if n < len(buf) && off+int64(n) < v.Size() {
			t.Fatalf("%s: read at %d: %v", v.ID, off, err)
		}
		if bytes.Equal(buf[:n], zero[:n]) {
			continue
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// e2fsckClean runs e2fsck read-only on an extracted ext volume: it must find nothing wrong.
func e2fsckClean(t *testing.T, v *Volume) {
	t.Helper()
	p := extractVolume(t, v)
	out, err := exec.Command("e2fsck", "-fn", p).CombinedOutput()
	if err != nil {
		t.Errorf("%s: e2fsck: %v\n%s", v.ID, err, out)
	}
}

func TestFixtureLVM(t *testing.T) {
	paths := lvmFixture(t)
	s := open(t, paths...)
	if got := ids(s.Volumes()); got != "vgt-lin vgt-str vgt-r1 vgt-r5 vgt-tpool vgt-thin1 vgt-mir" {
		t.Fatalf("volumes %q", got)
	}
	if got := ids(s.All()); got != "d0 d1 d2p1 vgt-lin vgt-str vgt-r1 vgt-r5 vgt-tpool vgt-thin1 vgt-mir" {
		t.Errorf("all %q", got)
	}
	want := map[string]string{"vgt-lin": "lvlinear", "vgt-str": "lvstripe", "vgt-r1": "LVMIRROR", "vgt-r5": "lvraid5", "vgt-mir": "LVLEGACY"}
	for id, label := range want {
		v, _ := s.Volume(id)
		if v.Incomplete || v.Filesystem.Label != label {
			t.Errorf("%s: incomplete %v (%s), label %q want %q", id, v.Incomplete, v.Reason, v.Filesystem.Label, label)
		}
	}
	for _, id := range []string{"vgt-lin", "vgt-str", "vgt-r5"} {
		v, _ := s.Volume(id)
		e2fsckClean(t, v)
	}
	r1, _ := s.Volume("vgt-r1")
	if out := tool(t, "mtype", "-i", extractVolume(t, r1), "::/M.TXT"); string(out) != "mirrored file\n" {
		t.Errorf("r1 M.TXT = %q", out)
	}
	mir, _ := s.Volume("vgt-mir")
	img := extractVolume(t, mir)
	tool(t, "fsck.fat", "-n", img) // fails the test on any inconsistency
	if out := tool(t, "mlabel", "-s", "-i", img, "::"); !bytes.Contains(out, []byte("LVLEGACY")) {
		t.Errorf("legacy mirror: mlabel says %s", out)
	}
	for _, id := range []string{"vgt-tpool", "vgt-thin1"} {
		v, _ := s.Volume(id)
		if !v.Incomplete || !strings.Contains(v.Reason, "not supported") {
			t.Errorf("%s: incomplete %v reason %q", id, v.Incomplete, v.Reason)
		}
		if _, err := v.ReadAt(make([]byte, 1), 0); err == nil {
			t.Errorf("%s: read of an unsupported LV succeeded", id)
		}
	}
	compareLVS(t, s, paths, "vgt")
}

// TestFixtureLVMMissingDisk drops the disk holding the GPT PV: the mirror and the RAID-5 (rebuilt from
// parity) still read, the striped LV is listed incomplete.
func TestFixtureLVMMissingDisk(t *testing.T) {
	all := lvmFixture(t)
	full := open(t, all...)
	s := open(t, all[:2]...)
	str, ok := s.Volume("vgt-str")
	if !ok || !str.Incomplete || !strings.Contains(str.Reason, "missing") {
		t.Fatalf("vgt-str: %+v", str)
	}
	for _, id := range []string{"vgt-lin", "vgt-r1", "vgt-r5", "vgt-mir"} {
		v, ok := s.Volume(id)
		w, _ := full.Volume(id)
		if !ok || v.Incomplete {
			t.Errorf("%s: %+v", id, v)
			continue
		}
		if !bytes.Equal(readAll(t, v), readAll(t, w)) {
			t.Errorf("%s differs without the third disk", id)
		}
	}
	if !strings.Contains(strings.Join(s.Problems(), "\n"), "not in the disk set") {
		t.Errorf("problems %q do not name the missing PV", s.Problems())
	}
}

// TestFixtureLVMBadMetadataCopy damages the first metadata copy of disk 0: its second copy and the
// other PVs' copies still assemble the same group.
func TestFixtureLVMBadMetadataCopy(t *testing.T) {
	paths := lvmFixture(t)
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	// The first metadata area starts at 4096 (pvcreate's default); its header's first raw_locn points
	// at the committed text.
	if string(b[4096+4:4096+20]) != " LVM2 x[5A%r0N*>" {
		t.Fatal("no metadata area at 4096 on disk 0")
	}
	text := 4096 + int(binary.LittleEndian.Uint64(b[4096+40:]))
	b[text+1] ^= 0x20
	if err := os.WriteFile(paths[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, paths...)
	if got := ids(s.Volumes()); got != "vgt-lin vgt-str vgt-r1 vgt-r5 vgt-tpool vgt-thin1 vgt-mir" {
		t.Errorf("volumes %q", got)
	}
	if !strings.Contains(strings.Join(s.Problems(), "\n"), "text CRC") {
		t.Errorf("problems %q do not report the bad copy", s.Problems())
	}
}

// compareLVS attaches the images to read-only loop devices and checks our LV extents against what lvs
// reports (no activation: lvm2 only reads the metadata).
func compareLVS(t *testing.T, s *Set, paths []string, vg string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: skipping the lvs comparison")
		return
	}
	if _, err := exec.LookPath("lvs"); err != nil {
		t.Log("lvm2 not installed: skipping the lvs comparison")
		return
	}
	// The PV of disk i is the container volume on that disk.
	pvOf := map[int]*Volume{}
	for _, v := range s.All() {
		if v.Container && v.Filesystem.Type == "LVM2_member" {
			pvOf[v.Disk] = v
		}
	}
	type loop struct {
		disk int
		off  int64
	}
	loops := map[string]loop{}
	var filter []string
	for i, p := range paths {
		args := []string{"-r", "-f", "--show"}
		pv := pvOf[i]
		if pv == nil {
			t.Fatalf("disk %d holds no PV", i)
		}
		off := pv.Offset
		args = append(args, "-o", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(pv.Size(), 10))
		out, err := exec.Command("losetup", append(args, p)...).Output()
		if err != nil {
			t.Logf("losetup failed (%v): skipping the lvs comparison", err)
			return
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
		loops[dev] = loop{i, off}
		filter = append(filter, fmt.Sprintf(`"a|^%s$|"`, dev))
	}
	cfg := fmt.Sprintf(`devices{filter=[%s,"r|.*|"]}`, strings.Join(filter, ","))
	var pvs struct {
		Report []struct {
			PV []struct {
				PVName  string `json:"pv_name"`
				PEStart string `json:"pe_start"`
			} `json:"pv"`
		} `json:"report"`
	}
	var lvs struct {
		Report []struct {
			Seg []struct {
				LVName       string `json:"lv_name"`
				SegType      string `json:"segtype"`
				SegPERanges  string `json:"seg_pe_ranges"`
				VGExtentSize string `json:"vg_extent_size"`
			} `json:"seg"`
		} `json:"report"`
	}
	pvOut := tool(t, "pvs", "--config", cfg, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "pv_name,pe_start")
	lvOut := tool(t, "lvs", "--config", cfg, "--reportformat", "json", "--units", "b", "--nosuffix", "--segments",
		"-o", "lv_name,segtype,seg_pe_ranges,vg_extent_size")
	if err := json.Unmarshal(pvOut, &pvs); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lvOut, &lvs); err != nil {
		t.Fatal(err)
	}
	var vgs struct {
		Report []struct {
			VG []struct {
				Name       string `json:"vg_name"`
				UUID       string `json:"vg_uuid"`
				ExtentSize string `json:"vg_extent_size"`
				LVCount    string `json:"lv_count"`
			} `json:"vg"`
		} `json:"report"`
	}
	vgOut := tool(t, "vgs", "--config", cfg, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_uuid,vg_extent_size,lv_count")
	if err := json.Unmarshal(vgOut, &vgs); err != nil {
		t.Fatal(err)
	}
	if len(vgs.Report[0].VG) != 1 {
		t.Fatalf("vgs lists %d VGs", len(vgs.Report[0].VG))
	}
	theVG := vgs.Report[0].VG[0]
	nLV := 0
	for _, v := range s.Volumes() {
		if v.Kind == KindLVM {
			nLV++
			if got := fmt.Sprintf("%s %s %d", v.LVM.VG, v.LVM.VGUUID, v.LVM.ExtentSize); got != theVG.Name+" "+theVG.UUID+" "+theVG.ExtentSize {
				t.Errorf("%s: we say VG %s, vgs %+v", v.ID, got, theVG)
			}
		}
	}
	if strconv.Itoa(nLV) != theVG.LVCount {
		t.Errorf("we list %d LVs, vgs counts %s", nLV, theVG.LVCount)
	}
	peStart := map[string]int64{}
	for _, p := range pvs.Report[0].PV {
		var v int64
		fmt.Sscan(p.PEStart, &v)
		peStart[p.PVName] = v
	}
	theirs := map[string][]string{}
	for _, seg := range lvs.Report[0].Seg {
		if seg.SegType != "linear" && seg.SegType != "striped" {
			continue
		}
		ext, _ := strconv.ParseInt(seg.VGExtentSize, 10, 64)
		for _, r := range strings.Fields(seg.SegPERanges) {
			dev, span, _ := strings.Cut(r, ":")
			a, b, _ := strings.Cut(span, "-")
			first, _ := strconv.ParseInt(a, 10, 64)
			last, _ := strconv.ParseInt(b, 10, 64)
			l := loops[dev]
			theirs[seg.LVName] = append(theirs[seg.LVName], fmt.Sprintf("d%d@%d+%d", l.disk, l.off+peStart[dev]+first*ext, (last-first+1)*ext))
		}
	}
	if len(theirs) == 0 {
		t.Fatalf("lvs reported %d linear/striped LVs", len(theirs))
	}
	for name, segs := range theirs {
		v, ok := s.Volume(vg + "-" + name)
		if !ok {
			t.Errorf("lvs lists %s, we do not", name)
			continue
		}
		var ours []string
		for _, e := range v.Extents {
			ours = append(ours, fmt.Sprintf("d%d@%d+%d", e.Disk, e.Offset, e.Size))
		}
		sort.Strings(ours)
		sort.Strings(segs)
		if strings.Join(ours, " ") != strings.Join(segs, " ") {
			t.Errorf("%s: our extents %v, lvs %v", name, ours, segs)
		}
	}
}

// qcow2Raw converts a qcow2 corpus image to a raw temp file with qemu-img.
func qcow2Raw(t *testing.T, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".raw")
	tool(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, out)
	return out
}

func TestCorpusDfvfsLVM(t *testing.T) {
	dir := filepath.Join(corpus(t), "dfvfs")
	for _, c := range []struct {
		file, vg, vgUUID string
		lvs              []string
		sizes            []int64
		probe            int64
		text             string
	}{
		{"lvm.qcow2", "test_volume_group", "SN0dH9-7Eic-NCvi-WHj8-76G8-za0g-iJobeq", []string{"test_logical_volume"}, []int64{4 << 20}, 0x300408, "er,passw"},
		{"lvmtest.qcow2", "vg_test", "kZ4S06-lhFY-G4cB-8OQx-SWVg-GrI6-1jEYEf", []string{"lv_test1", "lv_test2"}, []int64{8 << 20, 4 << 20}, 0x700408, "er,passw"},
	} {
		t.Run(c.file, func(t *testing.T) {
			raw := qcow2Raw(t, filepath.Join(dir, c.file))
			s := open(t, raw)
			var want []string
			for _, lv := range c.lvs {
				want = append(want, c.vg+"-"+lv)
			}
			vs := s.Volumes()
			if ids(vs) != strings.Join(want, " ") {
				t.Fatalf("volumes %q, want %q", ids(vs), want)
			}
			for i, v := range vs {
				if v.Size() != c.sizes[i] || v.LVM.VGUUID != c.vgUUID || v.Incomplete {
					t.Errorf("%s: size %d vg %s incomplete %v %s", v.ID, v.Size(), v.LVM.VGUUID, v.Incomplete, v.Reason)
				}
			}
			b := make([]byte, len(c.text))
			if _, err := vs[0].ReadAt(b, c.probe); err != nil || string(b) != c.text {
				t.Errorf("%s at %#x: %q %v", vs[0].ID, c.probe, b, err)
			}
			if vs[0].Filesystem.Type != "ext2" || vs[0].Offset != 0 || vs[0].Extents[0].Offset != 1<<20 {
				t.Errorf("%s: %+v at %+v", vs[0].ID, vs[0].Filesystem, vs[0].Extents)
			}
			compareLVS(t, s, []string{raw}, c.vg)
		})
	}
}
