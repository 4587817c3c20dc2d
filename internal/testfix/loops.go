package testfix

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LoopDevices makes n sparse size-byte images in dir and attaches each to a loop device, detached at
// cleanup. It skips without root or losetup.
func LoopDevices(tb testing.TB, dir string, n int, size int64) (imgs, loops []string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("loop devices need root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		tb.Skip("losetup not installed")
	}
	for i := 0; i < n; i++ {
		img := filepath.Join(dir, fmt.Sprintf("dev%d.img", i))
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Truncate(img, size); err != nil {
			tb.Fatal(err)
		}
		out, err := exec.Command("losetup", "-f", "--show", img).Output()
		if err != nil {
			tb.Skipf("losetup: %v", err)
		}
		loop := strings.TrimSpace(string(out))
		tb.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
		imgs, loops = append(imgs, img), append(loops, loop)
	}
	return imgs, loops
}
