package inspect

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
)

// TestLinuxGPT: every mount line resolves to the partition blkid and sfdisk say it names.
func TestLinuxGPT(t *testing.T) {
	dir := t.TempDir()
	disk := inspecttest.LinuxDisk(t, dir)
	parts := inspecttest.SfdiskDump(t, disk)
	// The judges: blkid for the filesystems' UUIDs and labels, sfdisk for the partition GUID.
	if b := inspecttest.BlkidPart(t, disk, 1); b["UUID"] != inspecttest.BootUUID {
		t.Fatalf("blkid /boot: %v", b)
	}
	if b := inspecttest.BlkidPart(t, disk, 3); b["LABEL"] != "home" {
		t.Fatalf("blkid /home: %v", b)
	}
	if !strings.EqualFold(parts[4]["uuid"], inspecttest.SrvPart) {
		t.Fatalf("sfdisk p4: %v", parts[4])
	}
	want := OS{Root: "p2", Type: "linux", Distro: "debian", ProductName: "Debian GNU/Linux 12 (bookworm)",
		MajorVersion: 12, MinorVersion: 5, Arch: inspecttest.HostArch(t, inspecttest.HostLS(t)), Hostname: "debby",
		Mountpoints: map[string]string{"/": "p2", "/boot": "p1", "/home": "p3", "/srv": "p4"},
		Problems:    []string{"fstab: UUID=ffffffff-0000-0000-0000-000000000000 for /mnt/usb is no volume of this disk set"}}
	checkOS(t, inspectDisk(t, disk), want)
}

// TestUnixReleaseFiles: the distribution files read when os-release is missing, and the BSD and macOS
// release files, each on an ext4 volume (the readers we have).
func TestUnixReleaseFiles(t *testing.T) {
	inspecttest.NeedTools(t, "mkfs.ext4")
	cases := []struct {
		files map[string]string
		want  OS
	}{
		{map[string]string{"etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n", "etc/HOSTNAME": "c7\n"},
			OS{Type: "linux", Distro: "centos", ProductName: "CentOS Linux release 7.9.2009 (Core)", MajorVersion: 7, MinorVersion: 9, Hostname: "c7"}},
		{map[string]string{"etc/debian_version": "11.9\n", "etc/hostname": "old\n"},
			OS{Type: "linux", Distro: "debian", ProductName: "11.9", MajorVersion: 11, MinorVersion: 9, Hostname: "old"}},
		{map[string]string{"etc/os-release": "NAME=Ubuntu\nVERSION_ID=\"22.04\"\nID=ubuntu\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n"},
			OS{Type: "linux", Distro: "ubuntu", ProductName: "Ubuntu 22.04.4 LTS", MajorVersion: 22, MinorVersion: 4}},
		{map[string]string{"bin/freebsd-version": "#!/bin/sh\nUSERLAND_VERSION=\"13.2-RELEASE\"\n", "etc/rc.conf": "hostname=\"bsd1\"\n"},
			OS{Type: "freebsd", Distro: "freebsd", ProductName: "FreeBSD 13.2-RELEASE", MajorVersion: 13, MinorVersion: 2, Hostname: "bsd1"}},
		{map[string]string{"etc/release": "NetBSD 9.3 (GENERIC) #0: Thu Aug  4 15:30:37 UTC 2022\n", "netbsd": "kernel", "etc/myname": "nb\n"},
			OS{Type: "netbsd", Distro: "netbsd", ProductName: "NetBSD 9.3 (GENERIC) #0: Thu Aug  4 15:30:37 UTC 2022", MajorVersion: 9, MinorVersion: 3, Hostname: "nb"}},
		{map[string]string{"etc/motd": "OpenBSD 7.4 (GENERIC.MP) #1397: Tue Oct 10 09:02:37 MDT 2023\n", "bsd": "kernel"},
			OS{Type: "openbsd", Distro: "openbsd", ProductName: "OpenBSD 7.4 (GENERIC.MP) #1397: Tue Oct 10 09:02:37 MDT 2023", MajorVersion: 7, MinorVersion: 4}},
		{map[string]string{"System/Library/CoreServices/SystemVersion.plist": "<dict>\n<key>ProductName</key>\n<string>macOS</string>\n<key>ProductVersion</key>\n<string>14.4</string>\n</dict>"},
			OS{Type: "macos", Distro: "macos", ProductName: "macOS 14.4", MajorVersion: 14, MinorVersion: 4}},
	}
	for i, c := range cases {
		t.Run(c.want.Distro, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			files := map[string][]byte{}
			for k, v := range c.files {
				files[k] = []byte(v)
			}
			inspecttest.WriteTree(t, src, files)
			img := inspecttest.Ext4Image(t, dir, "fs.img", 4<<20, fmt.Sprint("fs", i), "0b0e0b0e-1111-4222-8333-00000000000"+fmt.Sprint(i), src)
			c.want.Root = "disk"
			c.want.Mountpoints = map[string]string{"/": "disk"}
			checkOS(t, inspectDisk(t, img), c.want)
		})
	}
}
