package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/vddk"
)

// kill -9 of `vmdkmount --rw` at any moment of its start, the redo log's creation included, leaves
// nothing in the temporary folder: the redo log never has a name there (O_TMPFILE). The kills are
// spread over the time a start takes, measured first.
func TestTemporaryRedoKilledWhileStarting(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "base.vmdk")
	if err := vddk.Create(disk, vddk.CreateParams{Type: vddk.TypeMonolithicSparse, Capacity: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	mnt := mountPoint(t, bin, dir)
	tmp := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-f", "--rw", "--raw", disk, mnt)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	began := time.Now()
	for i := 0; i < 500 && !isMounted(mnt); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	up := time.Since(began)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if isMounted(mnt) {
		t.Fatal("still mounted after SIGTERM")
	}
	t.Logf("a start takes %v", up.Round(time.Millisecond))
	const rounds = 40
	for i := range rounds {
		cmd := start()
		time.Sleep(up * time.Duration(i) / rounds)
		cmd.Process.Signal(syscall.SIGKILL)
		waitKilled(t, cmd, mnt)
		if isMounted(mnt) {
			if out, err := exec.Command(bin, "umount", mnt).CombinedOutput(); err != nil {
				t.Fatalf("umount after kill: %v\n%s", err, out)
			}
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Fatalf("kill -9 after %v of a start of %v left %v in the temporary folder", up*time.Duration(i)/rounds, up, ents)
		}
	}
}

// waitKilled waits for a daemon killed with SIGKILL to go. Killed while the kernel waits on its answer
// to a request made on its own mount (go-fuse looks at the new mount once it is up), the daemon cannot
// exit: the kernel holds the request until the connection is aborted, which umount -f does.
func waitKilled(t *testing.T, cmd *exec.Cmd, mnt string) {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(3 * time.Second):
	}
	out, err := exec.Command("umount", "-f", mnt).CombinedOutput()
	t.Logf("the killed daemon waited on its own mount; umount -f: %v %s", err, out)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed daemon does not exit, even after umount -f")
	}
}
