package inspect

import (
	"encoding/binary"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/regf"
)

// windowsRoots are the folders Windows has been installed in (matched case-insensitively).
var windowsRoots = []string{"Windows", "WINNT", "WIN32"}

// inspectWindows recognises a Windows system volume: <root>/System32/config/SOFTWARE and cmd.exe.
func inspectWindows(set *volumes.Set, v *volumes.Volume, t fsys.FS) (OS, bool) {
	var sysroot, software string
	for _, r := range windowsRoots {
		p, err := findFold(t, r+"/System32/config/SOFTWARE")
		if err != nil {
			continue
		}
		if _, err := findFold(t, r+"/System32/cmd.exe"); err != nil {
			continue
		}
		sysroot, software = strings.SplitN(p, "/", 2)[0], p
		break
	}
	if sysroot == "" {
		return OS{}, false
	}
	o := OS{Root: v.ID, Type: "windows", Distro: "windows", WindowsSystemRoot: "/" + sysroot}
	problem := func(err error) { o.Problems = append(o.Problems, err.Error()) }
	if err := readSoftware(t, software, v.ID, &o); err != nil {
		problem(err)
	}
	if p, err := findFold(t, path.Dir(software)+"/SYSTEM"); err != nil {
		problem(err)
	} else if err := readSystem(t, p, set, v.ID, &o); err != nil {
		problem(err)
	}
	if o.Arch == "" {
		if p, err := findFold(t, sysroot+"/System32/cmd.exe"); err == nil {
			if arch, err := peArch(t, p); err == nil {
				o.Arch = arch
			}
		}
	}
	return o, true
}

// openHive opens a hive file of the tree. A hive with writes left in its transaction logs (not
// replayed here, as hivex does not) is noted in o's problems: its newest values may be missing.
func openHive(t fsys.FS, name, vol string, o *OS) (*regf.Hive, func(), error) {
	f, fi, err := openFile(t, name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", vol, err)
	}
	h, err := regf.Open(f, fi.Size(), vol+":/"+name)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if h.Dirty {
		o.Problems = append(o.Problems, fmt.Sprintf("%s:/%s has writes in its transaction logs that were not replayed", vol, name))
	}
	return h, func() { f.Close() }, nil
}

// regString returns a string value ("" when absent); a number is given in decimal.
func regString(k *regf.Key, name string) string {
	v, err := k.Value(name)
	if err != nil {
		return ""
	}
	if s, err := v.String(); err == nil {
		return s
	}
	if n, err := v.Uint(); err == nil {
		return strconv.FormatUint(n, 10)
	}
	return ""
}

func regUint(k *regf.Key, name string) (uint64, bool) {
	v, err := k.Value(name)
	if err != nil {
		return 0, false
	}
	n, err := v.Uint()
	return n, err == nil
}

func readSoftware(t fsys.FS, name, vol string, o *OS) error {
	h, done, err := openHive(t, name, vol, o)
	if err != nil {
		return err
	}
	defer done()
	k, err := h.Open(`Microsoft\Windows NT\CurrentVersion`)
	if err != nil {
		return err
	}
	o.ProductName = regString(k, "ProductName")
	o.BuildID = regString(k, "CurrentBuildNumber")
	o.EditionID = regString(k, "EditionID")
	o.ProductVariant = regString(k, "InstallationType")
	major, okMajor := regUint(k, "CurrentMajorVersionNumber")
	minor, okMinor := regUint(k, "CurrentMinorVersionNumber")
	if okMajor && okMinor {
		o.MajorVersion, o.MinorVersion = int(major), int(minor)
	} else if cv := regString(k, "CurrentVersion"); cv != "" {
		o.MajorVersion, o.MinorVersion = parseVersion(cv)
	}
	return nil
}

// parseVersion reads "6.1", "10", "22.04.3" as a major and minor number.
func parseVersion(s string) (int, int) {
	s = strings.TrimSpace(s)
	maj, rest, _ := strings.Cut(s, ".")
	major, _ := strconv.Atoi(leadingDigits(maj))
	minor, _ := strconv.Atoi(leadingDigits(rest))
	return major, minor
}

func leadingDigits(s string) string {
	for i, c := range s {
		if c < '0' || c > '9' {
			return s[:i]
		}
	}
	return s
}

// windowsArch maps PROCESSOR_ARCHITECTURE to libguestfs's architecture names.
var windowsArch = map[string]string{"AMD64": "x86_64", "X86": "i386", "ARM64": "aarch64", "IA64": "ia64", "ARM": "arm"}

func readSystem(t fsys.FS, name string, set *volumes.Set, vol string, o *OS) error {
	h, done, err := openHive(t, name, vol, o)
	if err != nil {
		return err
	}
	defer done()
	sel, err := h.Open("Select")
	if err != nil {
		return err
	}
	cur, ok := regUint(sel, "Current")
	if !ok {
		return fmt.Errorf("%s:/%s: Select has no Current value", vol, name)
	}
	ccs := fmt.Sprintf("ControlSet%03d", cur)
	o.WindowsCurrentControlSet = ccs
	cs, err := h.Open(ccs)
	if err != nil {
		return err
	}
	if k, err := cs.Open(`Services\Tcpip\Parameters`); err == nil {
		o.Hostname = regString(k, "Hostname")
	}
	if o.Hostname == "" {
		if k, err := cs.Open(`Control\ComputerName\ComputerName`); err == nil {
			o.Hostname = regString(k, "ComputerName")
		}
	}
	if k, err := cs.Open(`Control\Session Manager\Environment`); err == nil {
		o.Arch = windowsArch[strings.ToUpper(regString(k, "PROCESSOR_ARCHITECTURE"))]
	}
	if md, err := h.Open("MountedDevices"); err == nil {
		o.DriveMappings, o.VolumeGUIDs, err = driveMappings(md, set)
		if err != nil {
			o.Problems = append(o.Problems, err.Error())
		}
	}
	return nil
}

// driveMappings reads MountedDevices: \DosDevices\X: holds either an MBR disk signature and the
// partition's byte offset (12 bytes) or "DMIO:ID:" and the GPT partition's unique GUID (24 bytes).
// Letters of disks not in the set are left out. \??\Volume{GUID} values, in the same forms, give
// the volume GUIDs Windows paths may name instead of a letter (keyed "{GUID}" in upper case).
func driveMappings(md *regf.Key, set *volumes.Set) (letters, guids map[string]string, err error) {
	vals, err := md.Values()
	if err != nil {
		return nil, nil, err
	}
	sigs := mbrSignatures(set)
	letters, guids = map[string]string{}, map[string]string{}
	for _, v := range vals {
		name := strings.ToUpper(v.Name)
		rest, isLetter := strings.CutPrefix(name, `\DOSDEVICES\`)
		guid, isGUID := strings.CutPrefix(name, `\??\VOLUME`)
		switch {
		case isLetter && len(rest) == 2 && rest[1] == ':' && rest[0] >= 'A' && rest[0] <= 'Z':
		case isGUID && len(guid) == 38 && guid[0] == '{' && guid[37] == '}':
		default:
			continue
		}
		b, err := v.Data()
		if err != nil {
			continue
		}
		id := mountedVolume(b, set, sigs)
		switch {
		case id == "":
		case isLetter:
			letters[rest[:1]] = id
		default:
			guids[guid] = id
		}
	}
	return letters, guids, nil
}

// mountedVolume finds the volume of the set a MountedDevices value names, or "".
func mountedVolume(b []byte, set *volumes.Set, sigs map[int]uint32) string {
	var id string
	switch {
	case len(b) == 12:
		sig, off := binary.LittleEndian.Uint32(b), int64(binary.LittleEndian.Uint64(b[4:]))
		for _, vol := range set.Volumes() {
			if vol.Partition != nil && vol.Partition.Scheme == "mbr" && vol.Offset == off && sigs[vol.Disk] == sig && sig != 0 {
				id = vol.ID
			}
		}
	case len(b) == 24 && string(b[:8]) == "DMIO:ID:":
		guid := guidString(b[8:])
		for _, vol := range set.Volumes() {
			if vol.Partition != nil && strings.EqualFold(vol.Partition.UniqueGUID, guid) {
				id = vol.ID
			}
		}
	}
	return id
}

// mbrSignatures reads the disk signature of every MBR disk of the set.
func mbrSignatures(set *volumes.Set) map[int]uint32 {
	out := map[int]uint32{}
	for i, d := range set.Disks() {
		b := make([]byte, 512)
		if n, _ := d.ReadAt(b, 0); n == 512 && b[510] == 0x55 && b[511] == 0xAA {
			out[i] = binary.LittleEndian.Uint32(b[0x1B8:])
		}
	}
	return out
}

// guidString formats a GUID stored in Microsoft's mixed-endian layout.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// peArch reads the machine type of a PE executable (cmd.exe).
func peArch(t fsys.FS, name string) (string, error) {
	r, _, err := openFile(t, name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var hdr [64]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil || string(hdr[:2]) != "MZ" {
		return "", fmt.Errorf("%s is not a PE file", name)
	}
	var pe [6]byte
	if _, err := r.ReadAt(pe[:], int64(binary.LittleEndian.Uint32(hdr[0x3C:]))); err != nil || string(pe[:4]) != "PE\x00\x00" {
		return "", fmt.Errorf("%s is not a PE file", name)
	}
	switch binary.LittleEndian.Uint16(pe[4:]) {
	case 0x14c:
		return "i386", nil
	case 0x8664:
		return "x86_64", nil
	case 0xaa64:
		return "aarch64", nil
	case 0x1c4:
		return "arm", nil
	case 0x200:
		return "ia64", nil
	}
	return "", fmt.Errorf("%s: unknown PE machine", name)
}
