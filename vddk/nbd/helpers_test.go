package nbd

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// testImage is a disk image with data runs and holes between them, and its allocation.
func testImage(size int64) ([]byte, []Extent) {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	var data []Extent
	for _, e := range []Extent{{Offset: 64 << 10, Length: 192 << 10}, {Offset: 1 << 20, Length: 4096}, {Offset: size - 512, Length: 512}} {
		for i := e.Offset; i < e.Offset+e.Length; i++ {
			b[i] = byte(r.Uint32() | 1)
		}
		data = append(data, e)
	}
	return b, data
}

// memExport serves b with the given data ranges as its allocation.
func memExport(name string, b []byte, data []Extent) *Export {
	return &Export{Name: name, Size: int64(len(b)), R: bytes.NewReader(b), Allocated: func(off, n int64) ([]Extent, error) {
		var out []Extent
		for _, d := range data {
			if d.Offset < off+n && d.Offset+d.Length > off {
				out = append(out, d)
			}
		}
		return out, nil
	}}
}

// startServer serves exports on a Unix socket in a temporary folder until the test ends.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return sock
}

func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

func unixURI(sock, export string) string { return "nbd+unix:///" + export + "?socket=" + sock }
