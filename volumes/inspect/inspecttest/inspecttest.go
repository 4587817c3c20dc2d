// Package inspecttest builds the disks inspection is tested on, with real tools: sgdisk and sfdisk
// tables, mkntfs and ntfs-3g, mkfs.vfat, mkfs.ext4 -d, hives written by regftest and filled by hivexsh.
// For tests only.
package inspecttest

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/regf/regftest"
)

func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sparse makes an empty file of size bytes.
func Sparse(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// Hive writes a minimal Hive, fills it with a hivexsh script and returns its path.
func Hive(t testing.TB, dir, name, script string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, regftest.MinimalHive("ROOT"), 0o644); err != nil {
		t.Fatal(err)
	}
	sf := p + ".hivexsh"
	os.WriteFile(sf, []byte(script+"\ncommit\n"), 0o644)
	Run(t, "hivexsh", "-w", "-f", sf, p)
	return p
}

// Hivexget returns what Hivexget prints for one value.
func Hivexget(t testing.TB, hive, key, value string) string {
	t.Helper()
	return strings.TrimSpace(Run(t, "hivexget", hive, key, value))
}

// PEFile is the start of a PE executable for machine (enough for an architecture check).
func PEFile(machine uint16) []byte {
	b := make([]byte, 0x100)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3C:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x84:], machine)
	return b
}

// NTFSWithFiles makes an NTFS image with mkntfs and copies src's contents onto it through ntfs-3g
// (on a loop device, so that the unmount waits for ntfs-3g to finish writing).
func NTFSWithFiles(t testing.TB, dir, name string, size int64, label, src string) string {
	t.Helper()
	img := Sparse(t, dir, name, size)
	Run(t, "mkntfs", "-q", "-F", "-Q", "-L", label, img)
	if src == "" {
		return img
	}
	dev := strings.TrimSpace(Run(t, "losetup", "-f", "--show", img))
	defer exec.Command("losetup", "-d", dev).Run()
	mnt := filepath.Join(dir, name+".mnt")
	os.Mkdir(mnt, 0o755)
	Run(t, "ntfs-3g", "-o", "noatime", dev, mnt)
	if out, err := exec.Command("cp", "-r", src+"/.", mnt).CombinedOutput(); err != nil {
		testfix.Unmount(t, mnt)
		t.Fatalf("cp: %v %s", err, out)
	}
	testfix.Unmount(t, mnt)
	return img
}

// PlacePartitions copies each image onto disk at the start of partition n.
func PlacePartitions(t testing.TB, disk string, images map[int]string) {
	t.Helper()
	parts := SfdiskDump(t, disk)
	for n, img := range images {
		Run(t, "dd", "if="+img, "of="+disk, "bs=512", "seek="+parts[n]["start"], "conv=notrunc,sparse", "status=none")
	}
}

// SfdiskDump reads util-linux sfdisk's dump of disk: per partition number its fields (start, size,
// uuid, name, type), and under 0 the table's own (label-id).
func SfdiskDump(t testing.TB, disk string) map[int]map[string]string {
	t.Helper()
	out := Run(t, "sfdisk", "--dump", disk)
	parts := map[int]map[string]string{0: {}}
	for _, line := range strings.Split(out, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if !strings.HasPrefix(name, disk) {
			parts[0][strings.TrimSpace(name)] = strings.TrimSpace(rest)
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(name, disk)))
		parts[n] = map[string]string{}
		for _, f := range strings.Split(rest, ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok {
				parts[n][strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	return parts
}

// BlkidPart returns util-linux blkid's tags (UUID, LABEL, TYPE) for the filesystem of partition n.
func BlkidPart(t testing.TB, disk string, n int) map[string]string {
	t.Helper()
	p := SfdiskDump(t, disk)[n]
	start, _ := strconv.ParseInt(p["start"], 10, 64)
	size, _ := strconv.ParseInt(p["size"], 10, 64)
	out, _ := exec.Command("blkid", "-p", "-o", "export", "-O", strconv.FormatInt(start*512, 10),
		"-S", strconv.FormatInt(size*512, 10), disk).Output()
	tags := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			tags[k] = v
		}
	}
	return tags
}

// HexValue decodes hivexget's hex(N):aa,bb,… output.
func HexValue(t testing.TB, s string) []byte {
	_, h, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("not a hex value: %q", s)
	}
	var out []byte
	for _, x := range strings.Split(h, ",") {
		n, err := strconv.ParseUint(x, 16, 8)
		if err != nil {
			t.Fatalf("hex value %q: %v", s, err)
		}
		out = append(out, byte(n))
	}
	return out
}

func GUIDBytes(s string) string {
	var b []string
	g := strings.ReplaceAll(s, "-", "")
	raw := make([]byte, 16)
	for i := range raw {
		n, _ := strconv.ParseUint(g[2*i:2*i+2], 16, 8)
		raw[i] = byte(n)
	}
	// Microsoft's layout: the first three groups little-endian.
	le := append([]byte{raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]}, raw[8:]...)
	for _, c := range le {
		b = append(b, fmt.Sprintf("%02x", c))
	}
	return strings.Join(b, ",")
}

func HostArch(t testing.TB, path string) string {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_386:
		return "i386"
	}
	return f.Machine.String()
}

// Ext4Image makes an ext4 image of src with mkfs.ext4 -d.
func Ext4Image(t testing.TB, dir, name string, size int64, label, uuid, src string) string {
	img := Sparse(t, dir, name, size)
	args := []string{"-q", "-F", "-L", label, "-U", uuid}
	if src != "" {
		args = append(args, "-d", src)
	}
	Run(t, "mkfs.ext4", append(args, img)...)
	return img
}

func WriteTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func MustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func HexList(b []byte) string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(s, ",")
}

// DMIO is a MountedDevices value naming a GPT partition by its unique GUID.
func DMIO(guid string) string { return HexList([]byte("DMIO:ID:")) + "," + GUIDBytes(guid) }

// MBRDevice is a MountedDevices value naming an MBR partition by disk signature and byte offset.
func MBRDevice(sig uint32, off int64) string {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b, sig)
	binary.LittleEndian.PutUint64(b[4:], uint64(off))
	return HexList(b)
}

func SoftwareScript(values ...string) string {
	return "add Microsoft\ncd Microsoft\nadd Windows NT\ncd Windows NT\nadd CurrentVersion\ncd CurrentVersion\n" +
		fmt.Sprintf("setval %d\n", len(values)/2) + strings.Join(values, "\n")
}

// SystemScript makes a SYSTEM Hive whose current control set is ControlSet002; ControlSet001 holds
// stale names that must not be reported.
func SystemScript(tcpipHost, computerName, arch string, mounted ...string) string {
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

// WindowsTree lays out a system volume's files: the two hives and a cmd.exe for machine.
func WindowsTree(t testing.TB, dir, software, system string, machine uint16) string {
	root := filepath.Join(dir, "c")
	WriteTree(t, root, map[string][]byte{
		"Windows/System32/config/SOFTWARE": MustRead(t, software),
		"Windows/System32/config/SYSTEM":   MustRead(t, system),
		"Windows/System32/cmd.exe":         PEFile(machine),
		"Users/alice/evil.exe":             []byte("x"),
	})
	return root
}

const (
	BootUUID = "0b0e0b0e-1111-4222-8333-000000000001"
	RootUUID = "0b0e0b0e-1111-4222-8333-000000000002"
	HomeUUID = "0b0e0b0e-1111-4222-8333-000000000003"
	SrvUUID  = "0b0e0b0e-1111-4222-8333-000000000004"
	SrvPart  = "5A7E0000-1111-4222-8333-00000000A004"
)

// LinuxDisk makes a GPT disk with /boot, /, /home and /srv (ext4 by mkfs.ext4 -d): /boot mounted by
// UUID, /home by LABEL, /srv by PARTUUID, plus swap, tmpfs, proc, network and bind lines to skip.
func LinuxDisk(t testing.TB, dir string) string {
	NeedTools(t, "mkfs.ext4", "sgdisk", "sfdisk", "blkid")
	disk := Sparse(t, dir, "linux.img", 40<<20)
	Run(t, "sgdisk", "-n1:2048:+6M", "-c1:boot", "-n2:0:+12M", "-c2:root", "-n3:0:+6M", "-c3:home",
		"-n4:0:+6M", "-c4:srv", "-u4:"+SrvPart, "-n5:0:0", "-t5:8200", "-c5:swap", disk)
	fstab := strings.Join([]string{
		"# /etc/fstab: static file system information.",
		"UUID=" + RootUUID + " / ext4 errors=remount-ro 0 1",
		"UUID=" + BootUUID + " /boot ext4 defaults 0 2",
		"LABEL=home /home ext4 defaults 0 2",
		"PARTUUID=" + strings.ToLower(SrvPart) + " /srv ext4 defaults 0 2",
		"/dev/disk/by-partlabel/swap none swap sw 0 0",
		"tmpfs /tmp tmpfs defaults 0 0",
		"proc /proc proc defaults 0 0",
		"nas:/export /mnt/nas nfs defaults 0 0",
		"//server/share /mnt/smb cifs credentials=/x 0 0",
		"/srv/www /var/www none bind 0 0",
		"UUID=ffffffff-0000-0000-0000-000000000000 /mnt/usb ext4 noauto,nofail 0 0",
	}, "\n") + "\n"
	root := filepath.Join(dir, "root")
	WriteTree(t, root, map[string][]byte{
		"etc/os-release": []byte(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"` + "\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n" +
			"VERSION=\"12 (bookworm)\"\nID=debian\n"),
		"etc/debian_version": []byte("12.5\n"),
		"etc/hostname":       []byte("debby\n"),
		"etc/fstab":          []byte(fstab),
		"usr/bin/ls":         MustRead(t, HostLS(t)),
	})
	Run(t, "ln", "-s", "usr/bin", filepath.Join(root, "bin"))
	for _, d := range []string{"boot", "home", "srv", "tmp", "proc"} {
		WriteTree(t, root, map[string][]byte{d + "/.keep": nil})
	}
	boot := filepath.Join(dir, "bootfs")
	WriteTree(t, boot, map[string][]byte{"vmlinuz-6.1.0": []byte("kernel"), "grub/grub.cfg": []byte("menuentry")})
	home := filepath.Join(dir, "homefs")
	WriteTree(t, home, map[string][]byte{"alice/notes.txt": []byte("hello")})
	srv := filepath.Join(dir, "srvfs")
	WriteTree(t, srv, map[string][]byte{"www/index.html": []byte("<html>")})
	PlacePartitions(t, disk, map[int]string{
		1: Ext4Image(t, dir, "boot.img", 6<<20, "boot", BootUUID, boot),
		2: Ext4Image(t, dir, "root.img", 12<<20, "root", RootUUID, root),
		3: Ext4Image(t, dir, "home.img", 6<<20, "home", HomeUUID, home),
		4: Ext4Image(t, dir, "srv.img", 6<<20, "srv", SrvUUID, srv),
	})
	return disk
}

// WindowsGPT makes a UEFI Windows Server disk: EFI system (FAT), MSR, C: (NTFS, with the SOFTWARE and
// SYSTEM hives, cmd.exe and Users/alice/evil.exe) and D: (NTFS, with shared/report.txt). MountedDevices
// maps C: and D: by their partition GUIDs (and volume GUIDs {B2B3B4B5-0000-0000-0000-100000000000}
// and …-200000000000 to them) and E: to a disk that is not there. It returns the disk and
// the two hive files.
func WindowsGPT(t testing.TB, dir string) (disk, software, system string) {
	NeedTools(t, "hivexsh", "hivexget", "mkntfs", "ntfs-3g", "losetup", "sgdisk", "sfdisk", "mkfs.vfat")
	disk = Sparse(t, dir, "disk.img", 64<<20)
	Run(t, "sgdisk", "-n1:2048:+8M", "-t1:EF00", "-c1:EFI system partition", "-n2:0:+1M", "-t2:0C01",
		"-c2:Microsoft reserved partition", "-n3:0:+32M", "-t3:0700", "-c3:Basic data partition", "-n4:0:0", "-t4:0700", disk)
	parts := SfdiskDump(t, disk)
	software = Hive(t, dir, "SOFTWARE", SoftwareScript(
		"ProductName", "string:Windows Server 2019 Standard", "CurrentMajorVersionNumber", "dword:10",
		"CurrentMinorVersionNumber", "dword:0", "CurrentVersion", "string:6.3", "CurrentBuildNumber", "string:17763",
		"EditionID", "string:ServerStandard", "InstallationType", "string:Server"))
	system = Hive(t, dir, "SYSTEM", SystemScript("winsrv-01", "WINSRV-01", "AMD64",
		`\DosDevices\C:`, "hex:3:"+DMIO(parts[3]["uuid"]),
		`\DosDevices\D:`, "hex:3:"+DMIO(parts[4]["uuid"]),
		`\DosDevices\E:`, "hex:3:"+DMIO("0F0E0D0C-0B0A-0908-0706-050403020100"), // a disk not in the set
		`\??\Volume{b2b3b4b5-0000-0000-0000-100000000000}`, "hex:3:"+DMIO(parts[3]["uuid"]),
		`\??\Volume{b2b3b4b5-0000-0000-0000-200000000000}`, "hex:3:"+DMIO(parts[4]["uuid"])))
	efi := Sparse(t, dir, "efi.img", 8<<20)
	Run(t, "mkfs.vfat", "-n", "EFI", efi)
	dSectors, _ := strconv.ParseInt(parts[4]["size"], 10, 64)
	c := NTFSWithFiles(t, dir, "c.img", 32<<20, "System", WindowsTree(t, dir, software, system, 0x8664))
	dsrc := filepath.Join(dir, "dsrc")
	WriteTree(t, dsrc, map[string][]byte{"shared/report.txt": []byte("quarterly")})
	d := NTFSWithFiles(t, dir, "d.img", dSectors*512, "Data", dsrc)
	PlacePartitions(t, disk, map[int]string{1: efi, 3: c, 4: d})
	return disk, software, system
}

// HostLS is the host's ls, an ELF binary of the host's architecture.
func HostLS(t testing.TB) string {
	p, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls")
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// LinkReparse builds a junction (tag 0xA0000003) or symlink (0xA000000C, relative when rel) buffer
// whose substitute and print names are both target.
func LinkReparse(tag uint32, target string, rel bool) []byte {
	name := utf16.Encode([]rune(target))
	nb := make([]byte, 2*len(name))
	for i, u := range name {
		binary.LittleEndian.PutUint16(nb[2*i:], u)
	}
	var body []byte
	le16 := func(v int) { body = binary.LittleEndian.AppendUint16(body, uint16(v)) }
	le16(0)
	le16(len(nb))
	le16(len(nb) + 2)
	le16(len(nb))
	if tag == 0xA000000C {
		flags := uint32(0)
		if rel {
			flags = 1
		}
		body = binary.LittleEndian.AppendUint32(body, flags)
	}
	body = append(append(append(body, nb...), 0, 0), nb...)
	body = append(body, 0, 0)
	hdr := binary.LittleEndian.AppendUint32(nil, tag)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(body)))
	return append(append(hdr, 0, 0), body...)
}
