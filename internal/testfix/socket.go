package testfix

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// WaitUnixSocket waits until a server accepts connections on the Unix socket sock. The socket file
// appears at bind(2), before listen(2), so its presence alone lets a client get "connection refused".
func WaitUnixSocket(tb testing.TB, sock string, what func() string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no server on %s after 10 s: %v %s", sock, err, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// QemuNBD runs qemu-nbd serving file (of format) read-only and persistent on the Unix socket sock until
// the test ends; stop kills it (SIGKILL, as a crashed server) and removes the socket.
func QemuNBD(tb testing.TB, sock, format, file string) (stop func()) {
	tb.Helper()
	cmd := exec.Command("qemu-nbd", "-r", "-t", "-e", "8", "-k", sock, "-f", format, file)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			os.Remove(sock)
		}
	}
	tb.Cleanup(stop)
	WaitUnixSocket(tb, sock, func() string { return "(qemu-nbd)" })
	return stop
}
