package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func startQemuNBD(t *testing.T, sock, format, file string) func() {
	t.Helper()
	return testfix.QemuNBD(t, sock, format, file)
}

// treeSums lists every entry under root: path, type, size and content hash of regular files.
func treeSums(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := e.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v %d", rel, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// vmdkmount of an NBD export (qemu-nbd serving a qcow2 image) shows the tree that mounting the same disk
// as a file shows; a server killed mid-read gives EIO with the cause in the log, and the mount stays up.
func TestMountNBD(t *testing.T) {
	bin := buildBinary(t)
	for _, tool := range []string{"qemu-nbd", "qemu-img", "mkfs.ext4", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello over nbd\n"), 0o644)
	big := make([]byte, 24<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	os.WriteFile(filepath.Join(src, "sub", "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "sub", "other.bin"), big[:8<<20], 0o644)
	fsImg := filepath.Join(dir, "fs.img")
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, fsImg, "48M").CombinedOutput()
	if err != nil {
		t.Skipf("mkfs.ext4 -d: %v %s", err, out)
	}
	// A disk with a partition table: partition 1 at 1 MiB holds the filesystem.
	raw := filepath.Join(dir, "disk.raw")
	f, _ := os.Create(raw)
	f.Truncate(50 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "-q", raw)
	cmd.Stdin = strings.NewReader("start=2048, size=98304, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	if out, err := exec.Command("dd", "if="+fsImg, "of="+raw, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	qcow := filepath.Join(dir, "disk.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	sock := filepath.Join(dir, "nbd.sock")
	stop := startQemuNBD(t, sock, "qcow2", qcow)

	os.Mkdir(filepath.Join(dir, "a"), 0o755)
	os.Mkdir(filepath.Join(dir, "b"), 0o755)
	// vmdkmount list of the export: the volumes of the file.
	listFile, err1 := exec.Command(bin, "list", raw).Output()
	listNBD, err2 := exec.Command(bin, "list", "nbd+unix:///?socket="+sock).Output()
	if err1 != nil || err2 != nil || string(listFile) != string(listNBD) || !strings.Contains(string(listNBD), "p1") {
		t.Errorf("vmdkmount list: of the file (%v):\n%s\nof the export (%v):\n%s", err1, listFile, err2, listNBD)
	}
	fileMnt := mountPoint(t, bin, filepath.Join(dir, "a"))
	nbdMnt := mountPoint(t, bin, filepath.Join(dir, "b"))
	if out, err := exec.Command(bin, raw, fileMnt).CombinedOutput(); err != nil {
		t.Fatalf("mount of the file: %v\n%s", err, out)
	}
	defer exec.Command(bin, "umount", fileMnt).Run()
	logFile := filepath.Join(dir, "nbd.log")
	if out, err := exec.Command(bin, "--log", logFile, "nbd+unix:///?socket="+sock, nbdMnt).CombinedOutput(); err != nil {
		t.Fatalf("mount of the export: %v\n%s", err, out)
	}
	defer exec.Command(bin, "umount", nbdMnt).Run()
	want, got := treeSums(t, fileMnt), treeSums(t, nbdMnt)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("trees differ:\nfile:\n%s\nnbd:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	if !strings.Contains(strings.Join(got, "\n"), "p1/sub/big.bin") {
		t.Fatalf("no p1/sub/big.bin in the tree:\n%s", strings.Join(got, "\n"))
	}

	// Kill the server in the middle of reading raw/disk, on a fresh mount (nothing in its page cache).
	os.Mkdir(filepath.Join(dir, "c"), 0o755)
	nbdMnt = mountPoint(t, bin, filepath.Join(dir, "c"))
	if out, err := exec.Command(bin, "--log", logFile, "nbd+unix:///?socket="+sock, nbdMnt).CombinedOutput(); err != nil {
		t.Fatalf("mount of the export: %v\n%s", err, out)
	}
	defer exec.Command(bin, "umount", nbdMnt).Run()
	disk, err := os.Open(filepath.Join(nbdMnt, "raw", "disk"))
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	buf := make([]byte, 1<<20)
	if _, err := disk.ReadAt(buf, 40<<20); err != nil {
		t.Fatalf("first half: %v", err)
	}
	stop()
	start := time.Now()
	_, err = disk.ReadAt(buf, 45<<20)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read after the server died: %v, want EIO", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("the EIO took %v", time.Since(start))
	}
	if !isMounted(nbdMnt) {
		t.Fatal("the mount went away with the server")
	}
	if _, err := os.ReadDir(nbdMnt); err != nil {
		t.Errorf("the mount does not answer: %v", err)
	}
	var logged []byte
	for range 50 {
		if logged, _ = os.ReadFile(logFile); strings.Contains(string(logged), "nbd connection lost") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(logged), "reconnecting failed") {
		t.Errorf("the cause is not in the log:\n%s", logged)
	}
	if strings.Contains(string(logged), sock) {
		t.Errorf("the log names the socket:\n%s", logged)
	}
	// The server back: the next read reconnects.
	startQemuNBD(t, sock, "qcow2", qcow)
	if _, err := disk.ReadAt(buf, 46<<20); err != nil {
		t.Errorf("read once the server is back: %v", err)
	}
}
