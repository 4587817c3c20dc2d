package testfix

import (
	"net"
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
