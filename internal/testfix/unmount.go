package testfix

import (
	"os/exec"
	"testing"
	"time"
)

// Unmount unmounts a test's mount point. A short-lived opener elsewhere on the machine (a scanner, a
// concurrent test walking /tmp) can make umount report "target is busy" for a moment: retry for a few
// seconds, then detach lazily so the test's folder can still be removed, and report that as an error.
func Unmount(tb testing.TB, dir string) {
	tb.Helper()
	var out []byte
	var err error
	for range 25 {
		if out, err = exec.Command("umount", dir).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	exec.Command("umount", "-l", dir).Run()
	tb.Errorf("umount %s: %v: %s", dir, err, out)
}
