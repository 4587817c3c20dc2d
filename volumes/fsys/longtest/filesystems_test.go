package longtest_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/exfat"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/ext4"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/fat"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/iso9660"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/ntfs"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/squashfs"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/xfs"
)

// imageSize leaves room for the data twice over and a cluster per entry; images are sparse files.
// The size is a whole number of MiB, as losetup wants whole sectors.
func imageSize(tr *tree) int64 {
	return (2*tr.bytes+int64(tr.entries)*16<<10)>>20<<20 + 256<<20
}

// compareExt4: mkfs.ext4 -d fills the image; the kernel's read-only loop mount is the judge.
func compareExt4(t *testing.T, tr *tree) int {
	needTools(t, "mkfs.ext4", "mount", "umount")
	img := sparseImage(t, imageSize(tr))
	run(t, "mkfs.ext4", "-q", "-F", "-N", fmt.Sprint(tr.entries+10000), "-d", tr.src, img)
	mnt := kernelMount(t, img, "ext4", "loop,ro,noatime")
	return compare(t, openImage(t, img, ext4.Open), mnt, treecmp.Options{CompareIno: true}, nil)
}

// compareXFS: the kernel fills a fresh XFS image through a read-write mount, then its read-only mount
// is the judge.
func compareXFS(t *testing.T, tr *tree) int {
	needTools(t, "mkfs.xfs", "mount", "umount", "cp")
	img := sparseImage(t, imageSize(tr))
	run(t, "mkfs.xfs", "-q", "-f", img)
	rw := kernelMount(t, img, "xfs", "loop,noatime")
	run(t, "cp", "-a", tr.src+"/.", rw)
	unmount(t, rw)
	mnt := kernelMount(t, img, "xfs", "loop,ro,noatime")
	return compare(t, openImage(t, img, xfs.Open), mnt, treecmp.Options{CompareIno: true}, nil)
}

// compareSquashfs: mksquashfs builds the image; the kernel's mount is the judge.
func compareSquashfs(t *testing.T, tr *tree) int {
	needTools(t, "mksquashfs", "mount", "umount")
	img := filepath.Join(t.TempDir(), "vol.sqfs")
	run(t, "mksquashfs", tr.src, img, "-noappend", "-quiet", "-no-progress")
	mnt := kernelMount(t, img, "squashfs", "loop,ro")
	return compare(t, openImage(t, img, squashfs.Open), mnt, treecmp.Options{
		CompareIno: true,
		// squashfs stores only the mtime; the kernel copies it into atime and ctime.
		Ignore: treecmp.Atime | treecmp.Ctime | treecmp.Btime,
	}, nil)
}

// compareISO: xorriso writes Rock Ridge and Joliet; the judge is the source tree itself, as in the
// iso9660 package's TestMatchesSourceTree.
func compareISO(t *testing.T, tr *tree) int {
	needTools(t, "xorriso")
	img := filepath.Join(t.TempDir(), "vol.iso")
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", img, tr.src)
	// Inode numbers and allocation are the image's own; -R records no xattrs; directory sizes are
	// extent lengths; atime and ctime moved while the tree was read; -as mkisofs writes no PX serial
	// numbers, so hard links are separate files with the source's link count.
	opt := treecmp.Options{
		Ignore: treecmp.Blocks | treecmp.DirSize | treecmp.Xattr | treecmp.Atime | treecmp.Ctime | treecmp.Btime |
			treecmp.Links,
		TimeGranularity: time.Second, // Rock Ridge TF short form keeps whole seconds
	}
	return compare(t, openImage(t, img, iso9660.Open), tr.src, opt, func(d treecmp.Diff) bool {
		// A directory's link count is the writer's choice (xorriso writes 1), not the source's.
		return !(d.Field == treecmp.Nlink && isDir(tr.src, d.Path))
	})
}

func isDir(root, rel string) bool {
	fi, err := os.Lstat(filepath.Join(root, rel))
	return err == nil && fi.IsDir()
}

// compareNTFS: ntfs-3g fills a fresh mkntfs image; its read-only mount (streams as xattrs) is the judge.
func compareNTFS(t *testing.T, tr *tree) int {
	needTools(t, "mkntfs", "ntfs-3g", "umount", "cp")
	img := sparseImage(t, imageSize(tr))
	run(t, "mkntfs", "-q", "-F", "-Q", img)
	// Written through a loop device, ntfs-3g runs as fuseblk, whose unmount waits until it has
	// flushed everything and let go of the volume.
	dev, detach := loopDevice(t, img, false)
	rw := mountPoint(t)
	run(t, "ntfs-3g", "-o", "noatime,streams_interface=xattr", dev, rw)
	unmountAtCleanup(t, rw)
	// ntfs-3g refuses what NTFS without a user mapping cannot keep (owners, fifos' modes); what it did
	// store is what both readers must agree on.
	if out, err := runErr("cp", "-a", tr.src+"/.", rw); err != nil {
		t.Logf("cp -a onto ntfs-3g: %v (%d lines of complaints, e.g. %q)", err, strings.Count(out, "\n"), firstLine(out))
	}
	unmount(t, rw)
	detach()
	mnt := mountPoint(t)
	run(t, "ntfs-3g", "-o", "ro,noatime,streams_interface=xattr", img, mnt)
	unmountAtCleanup(t, mnt)
	ours := openImage(t, img, func(r io.ReaderAt, size int64) (fsys.FS, error) { return ntfs.Open(r, size, ntfs.Options{}) })
	return compare(t, ours, mnt, treecmp.Options{
		CompareIno: true,
		// ntfs-3g lists the entries of $Extend but cannot look them up.
		IgnorePath: func(name string) bool { return strings.HasPrefix(name, "$Extend/") },
	}, func(d treecmp.Diff) bool { return !ntfs3gTruncatedTime(d) })
}

// ntfs3gTruncatedTime reports a time before 1970 with a fraction of a second that ntfs-3g shows
// rounded toward 1970: it splits NTFS's 100 ns count with C's truncating division (-0.5 s gives 0 s and
// -500000000 ns) and then zeroes the negative nanoseconds. The stored time, which ntfs-3g itself wrote
// from the source's exact value, is what we show.
func ntfs3gTruncatedTime(d treecmp.Diff) bool {
	if d.Field&treecmp.Times == 0 {
		return false
	}
	ours, err1 := time.Parse(time.RFC3339Nano, d.Ours)
	host, err2 := time.Parse(time.RFC3339Nano, d.Host)
	return err1 == nil && err2 == nil && ours.Unix() < 0 && ours.Nanosecond() != 0 &&
		host.Equal(time.Unix(ours.Unix()+1, 0))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// compareExFAT: exfat-fuse fills a fresh image on a loop device; its read-only mount is the judge.
func compareExFAT(t *testing.T, tr *tree) int {
	needTools(t, "mkfs.exfat", "mount.exfat-fuse", "losetup", "umount", "cp")
	img := sparseImage(t, imageSize(tr))
	run(t, "mkfs.exfat", "-c", "4K", img)
	rw := mountPoint(t)
	dev, detach := loopDevice(t, img, false)
	run(t, "mount.exfat-fuse", "-o", "noatime", dev, rw)
	unmountAtCleanup(t, rw)
	run(t, "cp", "-r", "--preserve=timestamps", tr.portable+"/.", rw)
	unmount(t, rw)
	detach()
	ro, _ := loopDevice(t, img, true)
	mnt := mountPoint(t)
	// umask=022 gives the 0755 a kernel exfat mount shows, which our reader follows.
	run(t, "mount.exfat-fuse", "-o", "ro,noatime,umask=022", ro, mnt)
	unmountAtCleanup(t, mnt)
	// exfat-fuse reports whole seconds and a link count of 1 for every directory (the kernel driver,
	// which we follow, counts subdirectories).
	opt := treecmp.Options{TimeGranularity: time.Second, Ignore: treecmp.Nlink}
	return compare(t, openImage(t, img, exfat.Open), mnt, opt, func(d treecmp.Diff) bool {
		// The root has no times on either side (the epoch on FUSE).
		return !(d.Path == "." && d.Field&treecmp.Times != 0 && d.Host == "1970-01-01T00:00:00Z")
	})
}

// compareFAT32: mcopy fills a fresh mkfs.vfat image; mcopy -s -m's extraction is the judge (names,
// types, sizes, contents and mtimes).
func compareFAT32(t *testing.T, tr *tree) int {
	needTools(t, "mkfs.vfat", "mcopy")
	img := sparseImage(t, imageSize(tr))
	run(t, "mkfs.vfat", "-F", "32", img)
	rc := filepath.Join(t.TempDir(), "mtoolsrc")
	// mtools defaults to code page 850 for short names; the kernel's vfat default is 437.
	check(t, os.WriteFile(rc, []byte("DEFAULT_CODEPAGE=437\n"), 0o600))
	t.Setenv("MTOOLSRC", rc)
	ents, err := os.ReadDir(tr.fat)
	check(t, err)
	args := []string{"-s", "-m", "-D", "s", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(tr.fat, e.Name()))
	}
	run(t, "mcopy", append(args, "::/")...)
	out := filepath.Join(t.TempDir(), "extracted")
	check(t, os.Mkdir(out, 0o755))
	run(t, "mcopy", "-s", "-m", "-i", img, "::/", out)
	opt := treecmp.Options{
		Ignore: treecmp.Perm | treecmp.Uid | treecmp.Gid | treecmp.Nlink | treecmp.Atime | treecmp.Ctime |
			treecmp.Btime | treecmp.Blocks | treecmp.DirSize | treecmp.Links,
	}
	return compare(t, openImage(t, img, fat.Open), out, opt, func(d treecmp.Diff) bool {
		return !(d.Path == "." && d.Field == treecmp.Mtime) // FAT's root has no times; mcopy stamps the extraction directory
	})
}
