package testfix

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BigDirEntries is how many empty files the directory big of BigDirImage holds.
const BigDirEntries = 100000

// BigDirName is the name of the i-th file of BigDirImage's directory big.
func BigDirName(i int) string { return fmt.Sprintf("file-%06d-%x", i, i*2654435761%1000003) }

// BigDirImage builds a 64 MiB ext4 image holding one directory, big, of BigDirEntries empty files,
// and GoodFile at the root. The files are made through a loop mount so the kernel builds the htree
// index as it goes (mke2fs -d is quadratic here). It skips without root.
func BigDirImage(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("building the image needs a loop mount, which needs root")
	}
	dir := tb.TempDir()
	img := filepath.Join(dir, "big.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-N", "110000", img, "64M").CombinedOutput(); err != nil {
		tb.Fatalf("mke2fs: %v: %s", err, out)
	}
	mnt := filepath.Join(dir, "rw")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		tb.Fatalf("mount: %v: %s", err, out)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				tb.Fatalf("umount: %v: %s", err, out)
			}
		}
	}
	defer unmount()
	big := filepath.Join(mnt, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, GoodFile), []byte(GoodText), 0o644); err != nil {
		tb.Fatal(err)
	}
	// touch via xargs: far quicker than creating the files from race-instrumented Go code.
	var names strings.Builder
	for i := range BigDirEntries {
		names.WriteString(BigDirName(i))
		names.WriteByte(0)
	}
	touch := exec.Command("xargs", "-0", "touch")
	touch.Dir = big
	touch.Stdin = strings.NewReader(names.String())
	if out, err := touch.CombinedOutput(); err != nil {
		tb.Fatalf("creating the entries: %v: %s", err, out)
	}
	unmount()
	return img
}
