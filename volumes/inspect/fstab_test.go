package inspect

import (
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
)

// TestDeviceNames resolves every spelling of a device fstab allows on the Linux fixture disk.
func TestDeviceNames(t *testing.T) {
	disk := inspecttest.LinuxDisk(t, t.TempDir())
	set, closer, err := volumes.OpenFiles([]string{disk}, vddk.Options{}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	checkSpecs(t, set, map[string]string{
		"/dev/disk/by-uuid/" + inspecttest.BootUUID:                     "p1",
		"UUID=" + strings.ToUpper(inspecttest.RootUUID):                 "p2",
		"/dev/disk/by-label/home":                                       "p3",
		"LABEL=\"srv\"":                                                 "p4",
		"PARTLABEL=srv":                                                 "p4",
		"/dev/disk/by-partlabel/boot":                                   "p1",
		"/dev/disk/by-partuuid/" + strings.ToLower(inspecttest.SrvPart): "p4",
		"/dev/sda2":      "p2",
		"/dev/vda3":      "p3",
		"/dev/nvme0n1p4": "p4",
		"/dev/sdb1":      "",
		"LABEL=nope":     "",
		"/dev/vg0/lv":    "",
	})
}

// checkSpecs requires each fstab device spec to resolve to the volume of the given ID ("": none).
func checkSpecs(t *testing.T, set *volumes.Set, want map[string]string) {
	t.Helper()
	for spec, id := range want {
		got := ""
		if v := resolveSpec(spec, set); v != nil {
			got = v.ID
		}
		if got != id {
			t.Errorf("%s: %q, want %q", spec, got, id)
		}
	}
}

func TestNameEscapes(t *testing.T) {
	for in, want := range map[string][2]string{
		"vg-lv":          {"vg", "lv"},
		"my--vg-root--1": {"my-vg", "root-1"},
		"a-b-c":          {"a", "b-c"},
	} {
		vg, lv, ok := splitMapperName(in)
		if !ok || vg != want[0] || lv != want[1] {
			t.Errorf("%s: %q %q %v", in, vg, lv, ok)
		}
	}
	if _, _, ok := splitMapperName("novg"); ok {
		t.Error("novg split")
	}
	if got := unescapeFstab(`/mnt/my\040disk\`); got != `/mnt/my disk\` {
		t.Errorf("unescapeFstab %q", got)
	}
	if got := udevUnescape(`a\x2fb\x2`); got != `a/b\x2` {
		t.Errorf("udevUnescape %q", got)
	}
}

// FuzzFstab feeds fstab text to the resolver over a one-disk set: never a panic.
func FuzzFstab(f *testing.F) {
	f.Add([]byte("UUID=x / ext4 defaults 0 1\n/dev/mapper/vg-lv /home xfs defaults 0 2\nLABEL=a\\040b /srv ext4 bind 0 0\n"))
	set, err := volumes.Open([]volumes.Disk{testfix.NewDev(make([]byte, 1<<16))}, volumes.Options{})
	if err != nil {
		f.Fatal(err)
	}
	root := set.Volumes()[0]
	f.Fuzz(func(t *testing.T, b []byte) {
		o := OS{Mountpoints: map[string]string{}}
		fstab(b, set, root, &o)
		parseVersion(string(b))
	})
}

// TestLVMNames resolves device-mapper and /dev/VG/LV names on the LVM fixture (three disks, VG vgt,
// made with lvm2 by testdata/volumes/make.sh).
func TestLVMNames(t *testing.T) {
	var disks []volumes.Disk
	for _, n := range []string{"lvm-d0.img", "lvm-d1.img", "lvm-d2.img"} {
		disks = append(disks, testfix.NewDev(testfix.Image(t, n)))
	}
	set, err := volumes.Open(disks, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkSpecs(t, set, map[string]string{
		"/dev/mapper/vgt-lin":  "vgt-lin",
		"/dev/vgt/str":         "vgt-str",
		"/dev/mapper/vgt-r5":   "vgt-r5",
		"LABEL=lvraid5":        "vgt-r5",
		"/dev/mapper/vgt-nope": "",
		"/dev/vgt":             "",
	})
}

// TestMBRPartUUID: an MBR partition's PARTUUID is what util-linux partx says it is.
func TestMBRPartUUID(t *testing.T) {
	inspecttest.NeedTools(t, "sfdisk", "partx")
	disk := inspecttest.Sparse(t, t.TempDir(), "mbr.img", 8<<20)
	inspecttest.Run(t, "sh", "-c", "printf 'label: dos\\nlabel-id: 0x1badcafe\\nstart=2048, size=4096, type=83\\n"+
		"start=6144, size=4096, type=83\\n' | sfdisk -q "+disk)
	set, closer, err := volumes.OpenFiles([]string{disk}, vddk.Options{}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	n := 0
	for _, line := range strings.Split(inspecttest.Run(t, "partx", "-g", "-r", "-o", "NR,UUID", disk), "\n") {
		nr, uuid, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v := resolveSpec("PARTUUID="+uuid, set)
		if v == nil || v.ID != "p"+nr {
			t.Errorf("PARTUUID=%s: %v, want p%s", uuid, v, nr)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("partx listed %d partitions", n)
	}
}
