package inspect

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/vddk"
	"github.com/vmdkmount/vmdkmount/volumes"
)

func hexList(b []byte) string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(s, ",")
}

// dmio is a MountedDevices value naming a GPT partition by its unique GUID.
func dmio(guid string) string { return hexList([]byte("DMIO:ID:")) + "," + guidBytes(guid) }

// mbrDevice is a MountedDevices value naming an MBR partition by disk signature and byte offset.
func mbrDevice(sig uint32, off int64) string {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b, sig)
	binary.LittleEndian.PutUint64(b[4:], uint64(off))
	return hexList(b)
}

func softwareScript(values ...string) string {
	return "add Microsoft\ncd Microsoft\nadd Windows NT\ncd Windows NT\nadd CurrentVersion\ncd CurrentVersion\n" +
		fmt.Sprintf("setval %d\n", len(values)/2) + strings.Join(values, "\n")
}

// systemScript makes a SYSTEM hive whose current control set is ControlSet002; ControlSet001 holds
// stale names that must not be reported.
func systemScript(tcpipHost, computerName, arch string, mounted ...string) string {
	var s strings.Builder
	s.WriteString("add Select\ncd Select\nsetval 2\nCurrent\ndword:2\nDefault\ndword:2\ncd \\ \n")
	for i, cs := range []string{"ControlSet001", "ControlSet002"} {
		host, name := tcpipHost, computerName
		if i == 0 {
			host, name = "stale-host", "STALE"
		}
		fmt.Fprintf(&s, "add %s\ncd %s\nadd Services\ncd Services\nadd Tcpip\ncd Tcpip\nadd Parameters\ncd Parameters\n", cs, cs)
		if host != "" {
			fmt.Fprintf(&s, "setval 1\nHostname\nstring:%s\n", host)
		}
		fmt.Fprintf(&s, "cd \\%s\nadd Control\ncd Control\nadd ComputerName\ncd ComputerName\nadd ComputerName\ncd ComputerName\n", cs)
		fmt.Fprintf(&s, "setval 1\nComputerName\nstring:%s\n", name)
		fmt.Fprintf(&s, "cd \\%s\\Control\nadd Session Manager\ncd Session Manager\nadd Environment\ncd Environment\n", cs)
		if arch != "" {
			fmt.Fprintf(&s, "setval 1\nPROCESSOR_ARCHITECTURE\nstring:%s\n", arch)
		}
		s.WriteString("cd \\ \n")
	}
	fmt.Fprintf(&s, "add MountedDevices\ncd MountedDevices\nsetval %d\n%s\n", len(mounted)/2, strings.Join(mounted, "\n"))
	return s.String()
}

// windowsTree lays out a system volume's files: the two hives and a cmd.exe for machine.
func windowsTree(t *testing.T, dir, software, system string, machine uint16) string {
	root := filepath.Join(dir, "c")
	writeTree(t, root, map[string][]byte{
		"Windows/System32/config/SOFTWARE": mustRead(t, software),
		"Windows/System32/config/SYSTEM":   mustRead(t, system),
		"Windows/System32/cmd.exe":         peFile(machine),
		"Users/alice/evil.exe":             []byte("x"),
	})
	return root
}

// expectWindows builds what inspection must say from hivexget's answers and the disk's table.
func expectWindows(t *testing.T, root, software, system string, parts map[int]map[string]string, sig uint32) OS {
	cv := `\Microsoft\Windows NT\CurrentVersion`
	want := OS{Root: root, Type: "windows", Distro: "windows", WindowsSystemRoot: "/Windows",
		ProductName: hivexget(t, software, cv, "ProductName"), BuildID: hivexget(t, software, cv, "CurrentBuildNumber"),
		EditionID: hivexget(t, software, cv, "EditionID"), ProductVariant: hivexget(t, software, cv, "InstallationType"),
		WindowsCurrentControlSet: "ControlSet00" + hivexget(t, system, `\Select`, "Current")}
	if maj := run(t, "hivexget", software, cv); strings.Contains(maj, "CurrentMajorVersionNumber") {
		want.MajorVersion, _ = strconv.Atoi(hivexget(t, software, cv, "CurrentMajorVersionNumber"))
		want.MinorVersion, _ = strconv.Atoi(hivexget(t, software, cv, "CurrentMinorVersionNumber"))
	} else {
		want.MajorVersion, want.MinorVersion = parseVersion(hivexget(t, software, cv, "CurrentVersion"))
	}
	cs := `\` + want.WindowsCurrentControlSet
	if all := run(t, "hivexget", system, cs+`\Services\Tcpip\Parameters`); strings.Contains(all, `"Hostname"`) {
		want.Hostname = hivexget(t, system, cs+`\Services\Tcpip\Parameters`, "Hostname")
	} else {
		want.Hostname = hivexget(t, system, cs+`\Control\ComputerName\ComputerName`, "ComputerName")
	}
	if env := run(t, "hivexget", system, cs+`\Control\Session Manager\Environment`); strings.Contains(env, "PROCESSOR_ARCHITECTURE") {
		want.Arch = windowsArch[strings.ToUpper(hivexget(t, system, cs+`\Control\Session Manager\Environment`, "PROCESSOR_ARCHITECTURE"))]
	}
	// MountedDevices as hivexget lists it, matched to the partitions sfdisk lists.
	want.DriveMappings = map[string]string{}
	for _, line := range strings.Split(run(t, "hivexget", system, `\MountedDevices`), "\n") {
		name, val, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, `"\\DosDevices\\`) {
			continue
		}
		letter := name[len(`"\\DosDevices\\`) : len(`"\\DosDevices\\`)+1]
		b := hexValue(t, val)
		for n, p := range parts {
			if n == 0 {
				continue
			}
			start, _ := strconv.ParseInt(p["start"], 10, 64)
			if len(b) == 24 && strings.EqualFold(guidString(b[8:]), p["uuid"]) ||
				len(b) == 12 && binary.LittleEndian.Uint32(b) == sig && int64(binary.LittleEndian.Uint64(b[4:])) == start*512 {
				want.DriveMappings[letter] = fmt.Sprintf("p%d", n)
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
	needTools(t, "hivexsh", "hivexget", "mkntfs", "ntfs-3g", "losetup", "sgdisk", "sfdisk", "mkfs.vfat")
	dir := t.TempDir()
	disk := sparse(t, dir, "disk.img", 64<<20)
	run(t, "sgdisk", "-n1:2048:+8M", "-t1:EF00", "-c1:EFI system partition", "-n2:0:+1M", "-t2:0C01",
		"-c2:Microsoft reserved partition", "-n3:0:+32M", "-t3:0700", "-c3:Basic data partition", "-n4:0:0", "-t4:0700", disk)
	parts := sfdiskDump(t, disk)
	software := hive(t, dir, "SOFTWARE", softwareScript(
		"ProductName", "string:Windows Server 2019 Standard", "CurrentMajorVersionNumber", "dword:10",
		"CurrentMinorVersionNumber", "dword:0", "CurrentVersion", "string:6.3", "CurrentBuildNumber", "string:17763",
		"EditionID", "string:ServerStandard", "InstallationType", "string:Server"))
	system := hive(t, dir, "SYSTEM", systemScript("winsrv-01", "WINSRV-01", "AMD64",
		`\DosDevices\C:`, "hex:3:"+dmio(parts[3]["uuid"]),
		`\DosDevices\D:`, "hex:3:"+dmio(parts[4]["uuid"]),
		`\DosDevices\E:`, "hex:3:"+dmio("0F0E0D0C-0B0A-0908-0706-050403020100"), // a disk not in the set
		`\??\Volume{b2b3b4b5-0000-0000-0000-100000000000}`, "hex:3:"+dmio(parts[3]["uuid"])))
	efi := sparse(t, dir, "efi.img", 8<<20)
	run(t, "mkfs.vfat", "-n", "EFI", efi)
	dSectors, _ := strconv.ParseInt(parts[4]["size"], 10, 64)
	c := ntfsWithFiles(t, dir, "c.img", 32<<20, "System", windowsTree(t, dir, software, system, 0x8664))
	d := ntfsWithFiles(t, dir, "d.img", dSectors*512, "Data", "")
	placePartitions(t, disk, map[int]string{1: efi, 3: c, 4: d})

	want := expectWindows(t, "p3", software, system, parts, 0)
	if len(want.DriveMappings) != 2 || want.Hostname != "winsrv-01" || want.Arch != "x86_64" || want.MajorVersion != 10 {
		t.Fatalf("the fixture is not what the test meant: %+v", want)
	}
	checkOS(t, inspectDisk(t, disk), want)
}

// TestWindowsMBR: a BIOS Windows 7 disk (System Reserved and C:) made with sfdisk and mkntfs. The
// version comes from CurrentVersion, the host name from ComputerName, the architecture from cmd.exe.
func TestWindowsMBR(t *testing.T) {
	needTools(t, "hivexsh", "hivexget", "mkntfs", "ntfs-3g", "losetup", "sfdisk")
	dir := t.TempDir()
	disk := sparse(t, dir, "disk.img", 48<<20)
	sfdisk := "label: dos\nlabel-id: 0x1badcafe\nstart=2048, size=16384, type=7, bootable\nstart=18432, size=65536, type=7\n"
	cmd := fmt.Sprintf("printf '%s' | sfdisk -q %s", sfdisk, disk)
	run(t, "sh", "-c", cmd)
	parts := sfdiskDump(t, disk)
	sig := uint32(0x1badcafe)
	software := hive(t, dir, "SOFTWARE", softwareScript(
		"ProductName", "string:Windows 7 Professional", "CurrentVersion", "string:6.1",
		"CurrentBuildNumber", "string:7601", "EditionID", "string:Professional", "InstallationType", "string:Client"))
	system := hive(t, dir, "SYSTEM", systemScript("", "WIN7-PC", "",
		`\DosDevices\C:`, "hex:3:"+mbrDevice(sig, 18432*512),
		`\DosDevices\F:`, "hex:3:"+mbrDevice(0xdeadbeef, 18432*512))) // another disk, not in the set
	sysres := ntfsWithFiles(t, dir, "sysres.img", 16384*512, "System Reserved", "")
	c := ntfsWithFiles(t, dir, "c.img", 65536*512, "", windowsTree(t, dir, software, system, 0x14c))
	placePartitions(t, disk, map[int]string{1: sysres, 2: c})

	want := expectWindows(t, "p2", software, system, parts, sig)
	want.Arch = "i386" // no PROCESSOR_ARCHITECTURE: cmd.exe's PE header says
	if parts[0]["label-id"] != "0x1badcafe" || len(want.DriveMappings) != 1 || want.Hostname != "WIN7-PC" || want.MajorVersion != 6 || want.MinorVersion != 1 {
		t.Fatalf("the fixture is not what the test meant: %+v %v", want, parts[0])
	}
	checkOS(t, inspectDisk(t, disk), want)
}
