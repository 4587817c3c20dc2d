package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/inspect"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
	"golang.org/x/sys/unix"
)

// TestCrossVolumeLinks: on inspecttest's Windows disk (C: is p3, D: is p4, E: names a disk that is
// not there; volume GUIDs …1… and …2… name C: and D:), links written on C: through ntfs-3g point
// into the mount: to D:'s folder when they name D: by letter or GUID (in the case D: stores), to
// C:'s own folder for C:, and, for E:, where ntfs-3g points them (a dangling path inside the mount).
func TestCrossVolumeLinks(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	disk, _, _ := inspecttest.WindowsGPT(t, dir)
	p := inspecttest.SfdiskDump(t, disk)[3]
	start, _ := strconv.ParseInt(p["start"], 10, 64)
	size, _ := strconv.ParseInt(p["size"], 10, 64)
	dev := strings.TrimSpace(inspecttest.Run(t, "losetup", "-f", "--show", "-o", strconv.FormatInt(start*512, 10),
		"--sizelimit", strconv.FormatInt(size*512, 10), disk))
	defer exec.Command("losetup", "-d", dev).Run()

	const (
		junction = 0xA0000003
		symlink  = 0xA000000C
		guidC    = `Volume{b2b3b4b5-0000-0000-0000-100000000000}`
		guidD    = `Volume{B2B3B4B5-0000-0000-0000-200000000000}`
	)
	links := []struct {
		name   string
		tag    uint32
		target string
		want   string // in the mount; "" when ntfs-3g's target (under its mount point) is wanted
	}{
		{"to-d", junction, `\??\D:\shared`, "p4/shared"},
		{"to-d-file", symlink, `\??\d:\SHARED\Report.TXT`, "p4/shared/report.txt"},
		{"to-d-root", junction, `\??\D:\`, "p4"},
		{"guid-d", junction, `\??\` + guidD + `\Shared`, "p4/shared"},
		{"guid-c", junction, `\??\` + guidC + `\users`, "p3/Users"},
		{"self", junction, `\??\C:\Users`, ""},
		{"self-file", symlink, `\??\C:\Users\alice\evil.exe`, ""},
		{"missing-drive", junction, `\??\E:\x`, ""},
	}
	rw := filepath.Join(dir, "rw")
	os.Mkdir(rw, 0o755)
	inspecttest.Run(t, "ntfs-3g", dev, rw)
	for _, l := range links {
		f := filepath.Join(rw, l.name)
		var err error
		if l.tag == junction {
			err = os.Mkdir(f, 0o755)
		} else {
			err = os.WriteFile(f, nil, 0o644)
		}
		if err == nil {
			err = unix.Setxattr(f, "system.ntfs_reparse_data", inspecttest.LinkReparse(l.tag, l.target, false), 0)
		}
		if err != nil {
			testfix.Unmount(t, rw)
			t.Fatal(err)
		}
	}
	testfix.Unmount(t, rw)
	ref := filepath.Join(dir, "ref")
	os.Mkdir(ref, 0o755)
	inspecttest.Run(t, "ntfs-3g", "-o", "ro", dev, ref)
	defer testfix.Unmount(t, ref)

	mnt := mountPoint(t, bin, dir)
	if out, err := exec.Command(bin, disk, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	defer exec.Command(bin, "umount", mnt).Run()
	for _, l := range links {
		got, err := os.Readlink(filepath.Join(mnt, "p3", l.name))
		if err != nil {
			t.Errorf("%s: %v", l.name, err)
			continue
		}
		want := filepath.Join(mnt, l.want)
		if l.want == "" {
			theirs, err := os.Readlink(filepath.Join(ref, l.name))
			if err != nil {
				t.Fatalf("ntfs-3g: %v", err)
			}
			if !strings.HasPrefix(theirs, ref+"/") {
				t.Fatalf("ntfs-3g's %s -> %q, outside its mount", l.name, theirs)
			}
			want = filepath.Join(mnt, "p3", strings.TrimPrefix(theirs, ref))
		}
		if got != want {
			t.Errorf("%s (%s) -> %q, want %q", l.name, l.target, got, want)
		}
	}
	for name, want := range map[string]string{"to-d/report.txt": "quarterly", "to-d-file": "quarterly",
		"guid-d/report.txt": "quarterly", "to-d-root/shared/report.txt": "quarterly", "self/alice/evil.exe": "x", "guid-c/alice/evil.exe": "x"} {
		if b, err := os.ReadFile(filepath.Join(mnt, "p3", name)); err != nil || string(b) != want {
			t.Errorf("reading p3/%s: %q, %v", name, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "p3", "missing-drive")); !os.IsNotExist(err) {
		t.Errorf("a link to a drive not in the set resolves: %v", err)
	}
}

// TestLinkVolume: the drive letters and volume GUIDs of the Windows install that gives the link's
// volume a letter; the only Windows install when none does; C: for a system volume with no letter.
func TestLinkVolume(t *testing.T) {
	w1 := inspect.OS{Type: "windows", Root: "p1", DriveMappings: map[string]string{"D": "p2"},
		VolumeGUIDs: map[string]string{"{AB}": "p2"}}
	w2 := inspect.OS{Type: "windows", Root: "p5", DriveMappings: map[string]string{"C": "p5", "D": "p6"}}
	lin := inspect.OS{Type: "linux", Root: "p9", Mountpoints: map[string]string{"/": "p9"}}
	for _, c := range []struct {
		oses       []inspect.OS
		from, vol  string
		want       string
		wantResult bool
	}{
		{[]inspect.OS{w1, w2}, "p2", "C:", "p1", true},
		{[]inspect.OS{w1, w2}, "p1", "d:", "p2", true},
		{[]inspect.OS{w1, w2}, "p5", "D:", "p6", true},
		{[]inspect.OS{w1, w2}, "p6", "VOLUME{ab}", "", false},
		{[]inspect.OS{w1, w2}, "p1", "Volume{ab}", "p2", true},
		{[]inspect.OS{w1, w2}, "p7", "D:", "", false}, // two installs, neither gives p7 a letter
		{[]inspect.OS{w1, lin}, "p7", "D:", "p2", true},
		{[]inspect.OS{w1}, "p1", "E:", "", false},
		{[]inspect.OS{w1}, "p1", "\\", "", false},
		{[]inspect.OS{lin}, "p9", "C:", "", false},
	} {
		got, ok := linkVolume(c.oses, c.from, c.vol)
		if got != c.want || ok != c.wantResult {
			t.Errorf("from %s, %s: %q %v, want %q %v", c.from, c.vol, got, ok, c.want, c.wantResult)
		}
	}
}
