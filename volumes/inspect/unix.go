package inspect

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const smallFile = 64 << 10

// inspectUnix recognises a Linux, BSD or macOS root by its release files.
func inspectUnix(set *volumes.Set, v *volumes.Volume, t fsys.FS) (OS, bool) {
	o := OS{Root: v.ID}
	switch {
	case osRelease(t, &o):
	case exists(t, "etc/debian_version"):
		o.Type, o.Distro = "linux", "debian"
		if b, err := readSmall(t, "etc/debian_version", smallFile); err == nil {
			o.ProductName = strings.TrimSpace(string(b))
			o.MajorVersion, o.MinorVersion = parseVersion(o.ProductName)
		}
	case exists(t, "etc/redhat-release"):
		o.Type = "linux"
		if b, err := readSmall(t, "etc/redhat-release", smallFile); err == nil {
			o.ProductName = strings.TrimSpace(firstLine(b))
			o.Distro = redhatDistro(o.ProductName)
			if m := versionRE.FindString(o.ProductName); m != "" {
				o.MajorVersion, o.MinorVersion = parseVersion(m)
			}
		}
	case exists(t, "bin/freebsd-version"):
		o.Type, o.Distro = "freebsd", "freebsd"
		if b, err := readSmall(t, "bin/freebsd-version", 1<<20); err == nil {
			if m := userlandRE.FindSubmatch(b); m != nil {
				o.ProductName = "FreeBSD " + string(m[1])
				o.MajorVersion, o.MinorVersion = parseVersion(string(m[1]))
			}
		}
	case exists(t, "etc/release") && exists(t, "netbsd"):
		o.Type, o.Distro = "netbsd", "netbsd"
		if b, err := readSmall(t, "etc/release", smallFile); err == nil {
			o.ProductName = strings.TrimSpace(firstLine(b))
			o.MajorVersion, o.MinorVersion = parseVersion(versionRE.FindString(o.ProductName))
		}
	case exists(t, "bsd") && exists(t, "etc/motd"):
		o.Type, o.Distro = "openbsd", "openbsd"
		if b, err := readSmall(t, "etc/motd", smallFile); err == nil && bytes.Contains(b, []byte("OpenBSD")) {
			o.ProductName = strings.TrimSpace(firstLine(b))
			o.MajorVersion, o.MinorVersion = parseVersion(versionRE.FindString(o.ProductName))
		}
	case exists(t, "System/Library/CoreServices/SystemVersion.plist"):
		o.Type, o.Distro = "macos", "macos"
		if b, err := readSmall(t, "System/Library/CoreServices/SystemVersion.plist", smallFile); err == nil {
			o.ProductName = plistString(b, "ProductName")
			ver := plistString(b, "ProductVersion")
			o.MajorVersion, o.MinorVersion = parseVersion(ver)
			if ver != "" {
				o.ProductName += " " + ver
			}
		}
	default:
		return OS{}, false
	}
	if o.Type == "" {
		o.Type = "linux"
	}
	o.Hostname = hostname(t)
	for _, p := range []string{"bin/ls", "usr/bin/ls", "bin/sh"} {
		if a, err := elfArch(t, p); err == nil {
			o.Arch = a
			break
		}
	}
	o.Mountpoints = map[string]string{"/": v.ID}
	if b, err := readSmall(t, "etc/fstab", 1<<20); err == nil {
		fstab(b, set, v, &o)
	}
	return o, true
}

var (
	versionRE  = regexp.MustCompile(`\d+(\.\d+)*`)
	userlandRE = regexp.MustCompile(`USERLAND_VERSION="([^"]+)"`)
	hostnameRE = regexp.MustCompile(`(?m)^\s*(?:HOSTNAME|hostname)=["']?([^"'\s]+)`)
)

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// osRelease reads /etc/os-release (or /usr/lib/os-release).
func osRelease(t fsys.FS, o *OS) bool {
	var b []byte
	var err error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, err = readSmall(t, p, smallFile); err == nil {
			break
		}
	}
	if err != nil {
		return false
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		kv[k] = v
	}
	id := kv["ID"]
	o.Type = "linux"
	switch id {
	case "freebsd", "netbsd", "openbsd":
		o.Type = id
	}
	o.Distro = distroName(id)
	o.ProductName = kv["PRETTY_NAME"]
	if o.ProductName == "" {
		o.ProductName = strings.TrimSpace(kv["NAME"] + " " + kv["VERSION"])
	}
	o.MajorVersion, o.MinorVersion = parseVersion(kv["VERSION_ID"])
	// Debian's os-release carries only the major number; debian_version has the point release.
	if id == "debian" {
		if dv, err := readSmall(t, "etc/debian_version", smallFile); err == nil {
			if maj, min := parseVersion(string(dv)); maj == o.MajorVersion {
				o.MinorVersion = min
			}
		}
	}
	return true
}

// distroName maps an os-release ID to libguestfs's distro name.
func distroName(id string) string {
	switch {
	case id == "arch":
		return "archlinux"
	case id == "alpine":
		return "alpinelinux"
	case id == "ol":
		return "oraclelinux"
	case id == "sles" || id == "sled":
		return "sles"
	case strings.HasPrefix(id, "opensuse"):
		return "opensuse"
	case id == "":
		return "unknown"
	}
	return id
}

func redhatDistro(s string) string {
	l := strings.ToLower(s)
	switch {
	case strings.HasPrefix(l, "centos"):
		return "centos"
	case strings.HasPrefix(l, "fedora"):
		return "fedora"
	case strings.HasPrefix(l, "rocky"):
		return "rocky"
	case strings.HasPrefix(l, "almalinux"):
		return "almalinux"
	case strings.HasPrefix(l, "red hat"):
		return "rhel"
	}
	return "redhat-based"
}

func plistString(b []byte, key string) string {
	m := regexp.MustCompile(`<key>` + regexp.QuoteMeta(key) + `</key>\s*<string>([^<]*)</string>`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func hostname(t fsys.FS) string {
	for _, p := range []string{"etc/hostname", "etc/HOSTNAME", "etc/myname"} {
		if b, err := readSmall(t, p, smallFile); err == nil {
			if h := strings.TrimSpace(firstLine(b)); h != "" {
				return h
			}
		}
	}
	for _, p := range []string{"etc/sysconfig/network", "etc/rc.conf"} {
		if b, err := readSmall(t, p, smallFile); err == nil {
			if m := hostnameRE.FindSubmatch(b); m != nil {
				return string(m[1])
			}
		}
	}
	return ""
}

// elfArch reads the machine of an ELF executable, in libguestfs's names.
func elfArch(t fsys.FS, name string) (string, error) {
	r, _, err := openFile(t, name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var h [20]byte
	if _, err := r.ReadAt(h[:], 0); err != nil || string(h[:4]) != "\x7fELF" {
		return "", fmt.Errorf("%s is not an ELF file", name)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		bo = binary.BigEndian
	}
	is64 := h[4] == 2
	switch bo.Uint16(h[18:]) {
	case 3:
		return "i386", nil
	case 62:
		return "x86_64", nil
	case 183:
		return "aarch64", nil
	case 40:
		return "arm", nil
	case 8:
		if is64 {
			return "mips64", nil
		}
		return "mips", nil
	case 20:
		return "ppc", nil
	case 21:
		if h[5] == 1 {
			return "ppc64le", nil
		}
		return "ppc64", nil
	case 22:
		return "s390x", nil
	case 243:
		if is64 {
			return "riscv64", nil
		}
		return "riscv32", nil
	case 2, 43:
		return "sparc64", nil
	}
	return "", fmt.Errorf("%s: unknown ELF machine", name)
}

// skippedFS are fstab types that name no volume of a disk: swap, memory and kernel filesystems, network
// shares.
var skippedFS = map[string]bool{"swap": true, "tmpfs": true, "proc": true, "sysfs": true, "devpts": true, "devtmpfs": true,
	"nfs": true, "nfs4": true, "cifs": true, "smbfs": true, "smb3": true, "9p": true, "none": true, "cgroup": true,
	"cgroup2": true, "securityfs": true, "debugfs": true, "efivarfs": true, "bpf": true, "ramfs": true, "nullfs": true,
	"glusterfs": true, "ceph": true, "sshfs": true, "fuse.sshfs": true, "davfs": true, "procfs": true, "fdescfs": true,
	"linprocfs": true, "linsysfs": true, "mfs": true, "kernfs": true, "ptyfs": true}

// fstab resolves each mount line to a volume of the set.
func fstab(b []byte, set *volumes.Set, root *volumes.Volume, o *OS) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		spec, mp, typ := unescapeFstab(f[0]), unescapeFstab(f[1]), f[2]
		opts := ""
		if len(f) > 3 {
			opts = f[3]
		}
		if skippedFS[typ] || strings.HasPrefix(typ, "fuse") || !strings.HasPrefix(mp, "/") || mp == "/" ||
			hasOption(opts, "bind") || hasOption(opts, "rbind") || strings.Contains(spec, ":") && !strings.Contains(spec, "=") ||
			strings.HasPrefix(spec, "//") {
			continue
		}
		if v := resolveSpec(spec, set); v != nil {
			if v != root {
				o.Mountpoints[mp] = v.ID
			}
		} else {
			o.Problems = append(o.Problems, fmt.Sprintf("fstab: %s for %s is no volume of this disk set", spec, mp))
		}
	}
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// unescapeFstab undoes fstab's octal escapes (\040 for a space).
func unescapeFstab(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// udevUnescape undoes the \x2f escapes of /dev/disk/by-label names.
func udevUnescape(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if i+4 <= len(s) && s[i] == '\\' && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// resolveSpec finds the volume an fstab device names.
func resolveSpec(spec string, set *volumes.Set) *volumes.Volume {
	kind, val, ok := strings.Cut(spec, "=")
	if !ok {
		switch {
		case strings.HasPrefix(spec, "/dev/disk/by-uuid/"):
			kind, val = "UUID", udevUnescape(strings.TrimPrefix(spec, "/dev/disk/by-uuid/"))
		case strings.HasPrefix(spec, "/dev/disk/by-label/"):
			kind, val = "LABEL", udevUnescape(strings.TrimPrefix(spec, "/dev/disk/by-label/"))
		case strings.HasPrefix(spec, "/dev/disk/by-partuuid/"):
			kind, val = "PARTUUID", strings.TrimPrefix(spec, "/dev/disk/by-partuuid/")
		case strings.HasPrefix(spec, "/dev/disk/by-partlabel/"):
			kind, val = "PARTLABEL", udevUnescape(strings.TrimPrefix(spec, "/dev/disk/by-partlabel/"))
		default:
			return deviceName(spec, set)
		}
	}
	val = strings.Trim(val, `"`)
	sigs := map[int]uint32(nil)
	for _, v := range set.Volumes() {
		switch kind {
		case "UUID":
			if v.Filesystem.UUID != "" && strings.EqualFold(v.Filesystem.UUID, val) {
				return v
			}
		case "LABEL":
			if v.Filesystem.Label != "" && v.Filesystem.Label == val {
				return v
			}
		case "PARTUUID":
			if v.Partition == nil {
				continue
			}
			if v.Partition.Scheme == "gpt" && strings.EqualFold(v.Partition.UniqueGUID, val) {
				return v
			}
			if v.Partition.Scheme == "mbr" {
				// An MBR partition's PARTUUID is the disk signature and the partition number.
				if sigs == nil {
					sigs = mbrSignatures(set)
				}
				if strings.EqualFold(fmt.Sprintf("%08x-%02x", sigs[v.Disk], v.Partition.Number), val) {
					return v
				}
			}
		case "PARTLABEL":
			if v.Partition != nil && v.Partition.Scheme == "gpt" && v.Partition.Name == val {
				return v
			}
		}
	}
	return nil
}

var (
	linuxDiskRE = regexp.MustCompile(`^/dev/(?:[shv]d|xvd)([a-z]+)(\d+)$`)
	nvmeRE      = regexp.MustCompile(`^/dev/nvme(\d+)n1p(\d+)$`)
)

// deviceName resolves /dev/mapper/VG-LV, /dev/VG/LV and plain disk names (/dev/sda2, /dev/vdb1,
// /dev/nvme0n1p1, taking the set's disks in order).
func deviceName(spec string, set *volumes.Set) *volumes.Volume {
	if name, ok := strings.CutPrefix(spec, "/dev/mapper/"); ok {
		vg, lv, ok := splitMapperName(name)
		if ok {
			return lvmVolume(set, vg, lv)
		}
		return nil
	}
	disk, part := -1, 0
	if m := linuxDiskRE.FindStringSubmatch(spec); m != nil {
		disk = 0
		for _, c := range m[1] {
			disk = disk*26 + int(c-'a') + 1
		}
		disk--
		part, _ = strconv.Atoi(m[2])
	} else if m := nvmeRE.FindStringSubmatch(spec); m != nil {
		disk, _ = strconv.Atoi(m[1])
		part, _ = strconv.Atoi(m[2])
	}
	if disk >= 0 {
		for _, v := range set.Volumes() {
			if v.Partition != nil && v.Disk == disk && v.Partition.Number == part {
				return v
			}
		}
		return nil
	}
	if rest, ok := strings.CutPrefix(spec, "/dev/"); ok {
		if vg, lv, ok := strings.Cut(rest, "/"); ok && !strings.Contains(lv, "/") {
			return lvmVolume(set, vg, lv)
		}
	}
	return nil
}

// splitMapperName splits a device-mapper name: the VG and LV joined by one dash, dashes inside
// either doubled.
func splitMapperName(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '-' {
			i++
			continue
		}
		return strings.ReplaceAll(s[:i], "--", "-"), strings.ReplaceAll(s[i+1:], "--", "-"), true
	}
	return "", "", false
}

func lvmVolume(set *volumes.Set, vg, lv string) *volumes.Volume {
	for _, v := range set.Volumes() {
		if v.LVM != nil && v.LVM.VG == vg && v.LVM.LV == lv {
			return v
		}
	}
	return nil
}
