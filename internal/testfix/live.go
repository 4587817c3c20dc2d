package testfix

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// MountLive makes a size-byte image with a mkfs command (mkfs[0] is the program; the image path is
// appended) and mounts it read-write on a loop device with the extra mount options opts, as a running
// guest has its disk. It returns the image and the mount point, unmounted at cleanup unless the test
// unmounted it (testfix.Unmount). It skips
// without root or without the mkfs program.
func MountLive(tb testing.TB, size int64, mkfs []string, opts string) (img, mnt string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("loop mounts need root")
	}
	if _, err := exec.LookPath(mkfs[0]); err != nil {
		tb.Skipf("%s not installed", mkfs[0])
	}
	dir := tb.TempDir()
	img = filepath.Join(dir, "live.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		tb.Fatal(err)
	}
	args := append(append([]string(nil), mkfs[1:]...), img)
	if out, err := exec.Command(mkfs[0], args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v: %s", mkfs[0], err, out)
	}
	mnt = filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	o := "loop"
	if opts != "" {
		o += "," + opts
	}
	if out, err := exec.Command("mount", "-o", o, img, mnt).CombinedOutput(); err != nil {
		tb.Fatalf("mount: %v: %s", err, out)
	}
	tb.Cleanup(func() {
		if mounted(mnt) {
			Unmount(tb, mnt)
		}
	})
	return img, mnt
}

// mounted tells whether dir is a mount point now (a test may unmount a live volume itself).
func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	return bytes.Contains(b, []byte(" "+dir+" "))
}

// Snapshot copies a live image as it is now, while mounted: what a crash-consistent snapshot of a
// running guest holds. Nothing syncs: the kernel's dirty pages stay out of the copy.
func Snapshot(tb testing.TB, img string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), "snap.img")
	CopyFile(tb, img, dst)
	return dst
}

// CopyFile copies src to dst, leaving runs of zeros as holes (the images are mostly empty).
func CopyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	var size int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if bytes.Count(buf[:n], []byte{0}) == n {
				_, err = out.Seek(int64(n), io.SeekCurrent)
			} else {
				_, err = out.Write(buf[:n])
			}
			if err != nil {
				tb.Fatal(err)
			}
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := out.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// KernelReplay mounts a writable copy of a snapshot read-write with the extra options opts, which makes
// the kernel replay its journal or log: the judge of a replay. The mount goes away at cleanup.
func KernelReplay(tb testing.TB, img, opts string) string {
	tb.Helper()
	cp := filepath.Join(tb.TempDir(), "judge.img")
	CopyFile(tb, img, cp)
	mnt := filepath.Join(tb.TempDir(), "judge")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop,noatime"+opts, cp, mnt).CombinedOutput(); err != nil {
		tb.Fatalf("mount of the writable copy: %v: %s", err, out)
	}
	tb.Cleanup(func() { Unmount(tb, mnt) })
	return mnt
}

// SourceID is a file's SHA-256 and stat (size, mode, times), read without touching its access time:
// equal before and after a test shows the test left the file alone.
func SourceID(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOATIME, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("%x size=%d mode=%o atime=%v mtime=%v ctime=%v", h.Sum(nil), st.Size, st.Mode, st.Atim, st.Mtim, st.Ctim)
}
