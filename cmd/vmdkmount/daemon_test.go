package main

import (
	"bytes"
	"flag"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

var long = flag.Bool("long", false, "run the kill tests for many rounds (minutes) instead of a few")

// daemon is a foreground vmdkmount started by a test, so the test knows its pid and can kill it.
type daemon struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer // its standard error, readable once done is closed
	done chan struct{}
}

// startDaemon runs `vmdkmount -f ARGS…` and returns once mnt is mounted. When the test ends, a daemon
// still running is killed and its mount cleared.
func startDaemon(t *testing.T, bin, mnt string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, append([]string{"-f"}, args...)...), out: &bytes.Buffer{}, done: make(chan struct{})}
	d.cmd.Stderr = d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.kill()
		if isMounted(mnt) {
			exec.Command(bin, "umount", mnt).Run()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !isMounted(mnt) {
		select {
		case <-d.done:
			t.Fatalf("vmdkmount %v stopped before mounting: %s", args, d.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vmdkmount %v did not mount within 10 s", args)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

// kill sends SIGKILL to the daemon (by its pid) and waits until it is gone.
func (d *daemon) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}
