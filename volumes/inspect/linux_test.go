package inspect

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

const (
	bootUUID = "0b0e0b0e-1111-4222-8333-000000000001"
	rootUUID = "0b0e0b0e-1111-4222-8333-000000000002"
	homeUUID = "0b0e0b0e-1111-4222-8333-000000000003"
	srvUUID  = "0b0e0b0e-1111-4222-8333-000000000004"
	srvPart  = "5A7E0000-1111-4222-8333-00000000A004"
)

// linuxDisk makes a GPT disk with /boot, /, /home and /srv (ext4 by mkfs.ext4 -d): /boot mounted by
// UUID, /home by LABEL, /srv by PARTUUID, plus swap, tmpfs, proc, network and bind lines to skip.
func linuxDisk(t *testing.T, dir string) string {
	needTools(t, "mkfs.ext4", "sgdisk", "sfdisk", "blkid")
	disk := sparse(t, dir, "linux.img", 40<<20)
	run(t, "sgdisk", "-n1:2048:+6M", "-c1:boot", "-n2:0:+12M", "-c2:root", "-n3:0:+6M", "-c3:home",
		"-n4:0:+6M", "-c4:srv", "-u4:"+srvPart, "-n5:0:0", "-t5:8200", "-c5:swap", disk)
	fstab := strings.Join([]string{
		"# /etc/fstab: static file system information.",
		"UUID=" + rootUUID + " / ext4 errors=remount-ro 0 1",
		"UUID=" + bootUUID + " /boot ext4 defaults 0 2",
		"LABEL=home /home ext4 defaults 0 2",
		"PARTUUID=" + strings.ToLower(srvPart) + " /srv ext4 defaults 0 2",
		"/dev/disk/by-partlabel/swap none swap sw 0 0",
		"tmpfs /tmp tmpfs defaults 0 0",
		"proc /proc proc defaults 0 0",
		"nas:/export /mnt/nas nfs defaults 0 0",
		"//server/share /mnt/smb cifs credentials=/x 0 0",
		"/srv/www /var/www none bind 0 0",
		"UUID=ffffffff-0000-0000-0000-000000000000 /mnt/usb ext4 noauto,nofail 0 0",
	}, "\n") + "\n"
	root := filepath.Join(dir, "root")
	writeTree(t, root, map[string][]byte{
		"etc/os-release": []byte(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"` + "\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n" +
			"VERSION=\"12 (bookworm)\"\nID=debian\n"),
		"etc/debian_version": []byte("12.5\n"),
		"etc/hostname":       []byte("debby\n"),
		"etc/fstab":          []byte(fstab),
		"usr/bin/ls":         mustRead(t, "/usr/bin/ls"),
	})
	run(t, "ln", "-s", "usr/bin", filepath.Join(root, "bin"))
	for _, d := range []string{"boot", "home", "srv", "tmp", "proc"} {
		writeTree(t, root, map[string][]byte{d + "/.keep": nil})
	}
	boot := filepath.Join(dir, "bootfs")
	writeTree(t, boot, map[string][]byte{"vmlinuz-6.1.0": []byte("kernel"), "grub/grub.cfg": []byte("menuentry")})
	home := filepath.Join(dir, "homefs")
	writeTree(t, home, map[string][]byte{"alice/notes.txt": []byte("hello")})
	srv := filepath.Join(dir, "srvfs")
	writeTree(t, srv, map[string][]byte{"www/index.html": []byte("<html>")})
	placePartitions(t, disk, map[int]string{
		1: ext4Image(t, dir, "boot.img", 6<<20, "boot", bootUUID, boot),
		2: ext4Image(t, dir, "root.img", 12<<20, "root", rootUUID, root),
		3: ext4Image(t, dir, "home.img", 6<<20, "home", homeUUID, home),
		4: ext4Image(t, dir, "srv.img", 6<<20, "srv", srvUUID, srv),
	})
	return disk
}

// TestLinuxGPT: every mount line resolves to the partition blkid and sfdisk say it names.
func TestLinuxGPT(t *testing.T) {
	dir := t.TempDir()
	disk := linuxDisk(t, dir)
	parts := sfdiskDump(t, disk)
	// The judges: blkid for the filesystems' UUIDs and labels, sfdisk for the partition GUID.
	if b := blkidPart(t, disk, 1); b["UUID"] != bootUUID {
		t.Fatalf("blkid /boot: %v", b)
	}
	if b := blkidPart(t, disk, 3); b["LABEL"] != "home" {
		t.Fatalf("blkid /home: %v", b)
	}
	if !strings.EqualFold(parts[4]["uuid"], srvPart) {
		t.Fatalf("sfdisk p4: %v", parts[4])
	}
	want := OS{Root: "p2", Type: "linux", Distro: "debian", ProductName: "Debian GNU/Linux 12 (bookworm)",
		MajorVersion: 12, MinorVersion: 5, Arch: hostArch(t, "/usr/bin/ls"), Hostname: "debby",
		Mountpoints: map[string]string{"/": "p2", "/boot": "p1", "/home": "p3", "/srv": "p4"},
		Problems:    []string{"fstab: UUID=ffffffff-0000-0000-0000-000000000000 for /mnt/usb is no volume of this disk set"}}
	checkOS(t, inspectDisk(t, disk), want)
}

// TestUnixReleaseFiles: the distribution files read when os-release is missing, and the BSD and macOS
// release files, each on an ext4 volume (the readers we have).
func TestUnixReleaseFiles(t *testing.T) {
	needTools(t, "mkfs.ext4")
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
			writeTree(t, src, files)
			img := ext4Image(t, dir, "fs.img", 4<<20, fmt.Sprint("fs", i), "0b0e0b0e-1111-4222-8333-00000000000"+fmt.Sprint(i), src)
			c.want.Root = "disk"
			c.want.Mountpoints = map[string]string{"/": "disk"}
			checkOS(t, inspectDisk(t, img), c.want)
		})
	}
}
