package inspect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/regf/regftest"
)

// expectWindows builds what inspection must say from hivexget's answers and the disk's table.
func expectWindows(t *testing.T, root, software, system string, parts map[int]map[string]string, sig uint32) OS {
	cv := `\Microsoft\Windows NT\CurrentVersion`
	want := OS{Root: root, Type: "windows", Distro: "windows", WindowsSystemRoot: "/Windows",
		ProductName: inspecttest.Hivexget(t, software, cv, "ProductName"), BuildID: inspecttest.Hivexget(t, software, cv, "CurrentBuildNumber"),
		EditionID: inspecttest.Hivexget(t, software, cv, "EditionID"), ProductVariant: inspecttest.Hivexget(t, software, cv, "InstallationType"),
		WindowsCurrentControlSet: "ControlSet00" + inspecttest.Hivexget(t, system, `\Select`, "Current")}
	if maj := inspecttest.Run(t, "hivexget", software, cv); strings.Contains(maj, "CurrentMajorVersionNumber") {
		want.MajorVersion, _ = strconv.Atoi(inspecttest.Hivexget(t, software, cv, "CurrentMajorVersionNumber"))
		want.MinorVersion, _ = strconv.Atoi(inspecttest.Hivexget(t, software, cv, "CurrentMinorVersionNumber"))
	} else {
		want.MajorVersion, want.MinorVersion = parseVersion(inspecttest.Hivexget(t, software, cv, "CurrentVersion"))
	}
	cs := `\` + want.WindowsCurrentControlSet
	if all := inspecttest.Run(t, "hivexget", system, cs+`\Services\Tcpip\Parameters`); strings.Contains(all, `"Hostname"`) {
		want.Hostname = inspecttest.Hivexget(t, system, cs+`\Services\Tcpip\Parameters`, "Hostname")
	} else {
		want.Hostname = inspecttest.Hivexget(t, system, cs+`\Control\ComputerName\ComputerName`, "ComputerName")
	}
	if env := inspecttest.Run(t, "hivexget", system, cs+`\Control\Session Manager\Environment`); strings.Contains(env, "PROCESSOR_ARCHITECTURE") {
		want.Arch = windowsArch[strings.ToUpper(inspecttest.Hivexget(t, system, cs+`\Control\Session Manager\Environment`, "PROCESSOR_ARCHITECTURE"))]
	}
	// MountedDevices as hivexget lists it, matched to the partitions sfdisk lists.
	want.DriveMappings, want.VolumeGUIDs = map[string]string{}, map[string]string{}
	for _, line := range strings.Split(inspecttest.Run(t, "hivexget", system, `\MountedDevices`), "\n") {
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var set func(string)
		switch {
		case strings.HasPrefix(name, `"\\DosDevices\\`):
			letter := name[len(`"\\DosDevices\\`) : len(`"\\DosDevices\\`)+1]
			set = func(id string) { want.DriveMappings[letter] = id }
		case strings.HasPrefix(name, `"\\??\\Volume{`):
			guid := strings.ToUpper(strings.Trim(strings.TrimPrefix(name, `"\\??\\Volume`), `"`))
			set = func(id string) { want.VolumeGUIDs[guid] = id }
		default:
			continue
		}
		b := inspecttest.HexValue(t, val)
		for n, p := range parts {
			if n == 0 {
				continue
			}
			start, _ := strconv.ParseInt(p["start"], 10, 64)
			if len(b) == 24 && strings.EqualFold(guidString(b[8:]), p["uuid"]) ||
				len(b) == 12 && binary.LittleEndian.Uint32(b) == sig && int64(binary.LittleEndian.Uint64(b[4:])) == start*512 {
				set(fmt.Sprintf("p%d", n))
			}
		}
	}
	return want
}

func inspectDisk(t *testing.T, paths ...string) []OS {
	t.Helper()
	set, closer, err := volumes.OpenFiles(paths, vddk.Options{}, volumes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	trees := NewTrees(set, volumes.TreeOptions{})
	t.Cleanup(func() { trees.Close() })
	return Inspect(trees)
}

func checkOS(t *testing.T, oses []OS, want OS) {
	t.Helper()
	if len(oses) != 1 {
		t.Fatalf("%d OSes found: %+v", len(oses), oses)
	}
	if !reflect.DeepEqual(oses[0], want) {
		t.Errorf("inspected\n %+v\nwant\n %+v", oses[0], want)
	}
}

// TestWindowsGPT: a UEFI Windows Server disk (EFI system, MSR, C: and D:) made with sgdisk, mkfs.vfat,
// mkntfs and ntfs-3g, hives filled by hivexsh. Every value is checked against hivexget, the drive
// letters against sfdisk's partition GUIDs.
func TestWindowsGPT(t *testing.T) {
	disk, software, system := inspecttest.WindowsGPT(t, t.TempDir())
	want := expectWindows(t, "p3", software, system, inspecttest.SfdiskDump(t, disk), 0)
	if len(want.DriveMappings) != 2 || len(want.VolumeGUIDs) != 2 || want.Hostname != "winsrv-01" || want.Arch != "x86_64" || want.MajorVersion != 10 {
		t.Fatalf("the fixture is not what the test meant: %+v", want)
	}
	checkOS(t, inspectDisk(t, disk), want)
}

// TestWindowsMBR: a BIOS Windows 7 disk (System Reserved and C:) made with sfdisk and mkntfs. The
// version comes from CurrentVersion, the host name from ComputerName, the architecture from cmd.exe.
func TestWindowsMBR(t *testing.T) {
	inspecttest.NeedTools(t, "hivexsh", "hivexget", "mkntfs", "ntfs-3g", "losetup", "sfdisk")
	dir := t.TempDir()
	disk := inspecttest.Sparse(t, dir, "disk.img", 48<<20)
	sfdisk := "label: dos\nlabel-id: 0x1badcafe\nstart=2048, size=16384, type=7, bootable\nstart=18432, size=65536, type=7\n"
	cmd := fmt.Sprintf("printf '%s' | sfdisk -q %s", sfdisk, disk)
	inspecttest.Run(t, "sh", "-c", cmd)
	parts := inspecttest.SfdiskDump(t, disk)
	sig := uint32(0x1badcafe)
	software := inspecttest.Hive(t, dir, "SOFTWARE", inspecttest.SoftwareScript(
		"ProductName", "string:Windows 7 Professional", "CurrentVersion", "string:6.1",
		"CurrentBuildNumber", "string:7601", "EditionID", "string:Professional", "InstallationType", "string:Client"))
	system := inspecttest.Hive(t, dir, "SYSTEM", inspecttest.SystemScript("", "WIN7-PC", "",
		`\DosDevices\C:`, "hex:3:"+inspecttest.MBRDevice(sig, 18432*512),
		`\DosDevices\F:`, "hex:3:"+inspecttest.MBRDevice(0xdeadbeef, 18432*512))) // another disk, not in the set
	sysres := inspecttest.NTFSWithFiles(t, dir, "sysres.img", 16384*512, "System Reserved", "")
	c := inspecttest.NTFSWithFiles(t, dir, "c.img", 65536*512, "", inspecttest.WindowsTree(t, dir, software, system, 0x14c))
	inspecttest.PlacePartitions(t, disk, map[int]string{1: sysres, 2: c})

	want := expectWindows(t, "p2", software, system, parts, sig)
	want.Arch = "i386" // no PROCESSOR_ARCHITECTURE: cmd.exe's PE header says
	if parts[0]["label-id"] != "0x1badcafe" || len(want.DriveMappings) != 1 || want.Hostname != "WIN7-PC" || want.MajorVersion != 6 || want.MinorVersion != 1 {
		t.Fatalf("the fixture is not what the test meant: %+v %v", want, parts[0])
	}
	checkOS(t, inspectDisk(t, disk), want)
}

// TestWindowsDamagedHives: a SOFTWARE hive with unreplayed log writes and a SYSTEM hive cut short
// still give a Windows root, with the problems named and the architecture from cmd.exe.
func TestWindowsDamagedHives(t *testing.T) {
	inspecttest.NeedTools(t, "mkfs.ext4", "hivexsh")
	dir := t.TempDir()
	system := inspecttest.Hive(t, dir, "SYSTEM", inspecttest.SystemScript("h", "H", "AMD64"))
	full := inspecttest.MustRead(t, system)
	software := inspecttest.Hive(t, dir, "SOFTWARE", inspecttest.SoftwareScript("ProductName", "string:Windows 10 Pro"))
	dirty := inspecttest.MustRead(t, software)
	dirty[4]++ // the primary sequence number: a write was begun and never completed in the hive file
	regftest.FixChecksum(dirty)
	src := filepath.Join(dir, "src")
	inspecttest.WriteTree(t, src, map[string][]byte{
		"Windows/System32/config/SOFTWARE": dirty,
		"Windows/System32/config/SYSTEM":   full[:len(full)/2],
		"Windows/System32/config/SAM":      bytes.Repeat([]byte("not a hive "), 1000),
		"Windows/System32/cmd.exe":         inspecttest.PEFile(0xaa64),
	})
	img := inspecttest.Ext4Image(t, dir, "c.img", 4<<20, "c", "0b0e0b0e-1111-4222-8333-0000000000c0", src)
	oses := inspectDisk(t, img)
	if len(oses) != 1 || oses[0].Type != "windows" || oses[0].Arch != "aarch64" || len(oses[0].Problems) != 2 ||
		oses[0].ProductName != "Windows 10 Pro" {
		t.Fatalf("%+v", oses)
	}
	for _, p := range oses[0].Problems {
		t.Log(p)
		if !strings.Contains(p, "disk:/Windows/System32/config/") {
			t.Errorf("problem %q does not name the hive", p)
		}
	}
}
