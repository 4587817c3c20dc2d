package nbd

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/vddk"
)

// qemuNBD runs qemu-nbd read-only and persistent on a Unix socket for file (format fmt); stop kills it.
func qemuNBD(t *testing.T, sock, format, file string) (stop func()) {
	t.Helper()
	return testfix.QemuNBD(t, sock, format, file)
}

type mapEntry struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	Data   bool  `json:"data"`
}

// dataRuns merges the data runs of a list of extents.
func dataRuns(ext []Extent) []Extent {
	var out []Extent
	for _, e := range ext {
		if e.Hole {
			continue
		}
		if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == e.Offset {
			out[k-1].Length += e.Length
			continue
		}
		out = append(out, Extent{Offset: e.Offset, Length: e.Length})
	}
	return out
}

// Our client against qemu-nbd serving qcow2, VMDK (sparse and streamOptimized) and raw: the bytes equal
// qemu-img convert of the file, the allocation equals qemu-img map of the file.
func TestClientAgainstQemuNBD(t *testing.T) {
	needTool(t, "qemu-nbd", "qemu-img", "qemu-io")
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	run(t, "qemu-img", "create", "-q", "-f", "raw", raw, "40M")
	run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x33 1M 3M", "-c", "write -P 0x44 20M 65k", "-c", "write -P 0x55 39M 1M", raw)
	want := sha256.Sum256(must(os.ReadFile(raw)))
	images := map[string][2]string{"raw": {"raw", raw}}
	for _, f := range []string{"qcow2", "vmdk:monolithicSparse", "vmdk:streamOptimized"} {
		format, sub, _ := strings.Cut(f, ":")
		p := filepath.Join(dir, strings.ReplaceAll(f, ":", "-"))
		args := []string{"convert", "-f", "raw", "-O", format}
		if sub != "" {
			args = append(args, "-o", "subformat="+sub)
		}
		run(t, "qemu-img", append(args, raw, p)...)
		images[f] = [2]string{format, p}
	}
	for name, im := range images {
		sock := filepath.Join(dir, strings.ReplaceAll(name, ":", "-")+".sock")
		qemuNBD(t, sock, im[0], im[1])
		d, err := Dial(unixURI(sock, ""), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		buf := make([]byte, d.Size())
		if n, err := d.ReadAt(buf, 0); err != nil || n != len(buf) {
			t.Fatalf("%s: ReadAt: %d, %v", name, n, err)
		}
		if sha256.Sum256(buf) != want {
			t.Errorf("%s: content differs from the source", name)
		}
		if !d.HasAllocation() {
			t.Errorf("%s: qemu-nbd offers base:allocation, not negotiated", name)
		}
		if d.Conns() != 4 {
			t.Errorf("%s: %d connections to a read-only qemu-nbd export (it advertises multi-conn), want 4", name, d.Conns())
		}
		ext, err := d.Extents(0, d.Size())
		if err != nil {
			t.Fatal(err)
		}
		var m []mapEntry
		if err := json.Unmarshal(run(t, "qemu-img", "map", "--output=json", "-f", im[0], im[1]), &m); err != nil {
			t.Fatal(err)
		}
		var qm []Extent
		for _, e := range m {
			qm = append(qm, Extent{Offset: e.Start, Length: e.Length, Hole: !e.Data})
		}
		if got, want := fmt.Sprint(dataRuns(ext)), fmt.Sprint(dataRuns(qm)); got != want {
			t.Errorf("%s: data runs %s, qemu-img map says %s", name, got, want)
		}
		d.Close()
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A server that goes away: the client reconnects once when it comes back, and gives a clear error
// (ErrConnection, the cause named) when it does not.
func TestClientReconnect(t *testing.T) {
	needTool(t, "qemu-nbd", "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	run(t, "qemu-img", "create", "-q", "-f", "raw", raw, "4M")
	sock := filepath.Join(dir, "s")
	stop := qemuNBD(t, sock, "raw", raw)
	d, err := Dial(unixURI(sock, ""), Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 4096)
	if _, err := d.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	stop()
	stop = qemuNBD(t, sock, "raw", raw)
	if _, err := d.ReadAt(buf, 8192); err != nil {
		t.Fatalf("read after the server came back: %v", err)
	}
	// Killed for good: one reconnection attempt, then an error saying so.
	stop()
	start := time.Now()
	_, err = d.ReadAt(buf, 0)
	if !errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), "reconnecting failed") {
		t.Errorf("read from a dead server: %v", err)
	}
	if strings.Contains(err.Error(), sock) {
		t.Errorf("the error names the socket: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the dead server took %v to report", time.Since(start))
	}
}

// qemu-nbd serving one client at a time (no -e) advertises multi-conn yet leaves a second connection
// waiting: the client goes on with one, soon, and a redo log over the export (which opens it twice in
// turn) is made and written.
func TestClientSingleClientServer(t *testing.T) {
	needTool(t, "qemu-nbd", "qemu-img", "qemu-io")
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	run(t, "qemu-img", "create", "-q", "-f", "raw", raw, "4M")
	run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x42 0 1M", raw)
	sock := filepath.Join(dir, "s")
	cmd := exec.Command("qemu-nbd", "-r", "-t", "-k", sock, "-f", "raw", raw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	testfix.WaitUnixSocket(t, sock, func() string { return "(qemu-nbd)" })
	start := time.Now()
	d, err := Dial(unixURI(sock, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Conns() != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("%d connections after %v, want 1 within seconds", d.Conns(), time.Since(start))
	}
	buf := make([]byte, 4096)
	if _, err := d.ReadAt(buf, 4096); err != nil || buf[0] != 0x42 {
		t.Errorf("ReadAt: %v", err)
	}
	d.Close()
	r, err := vddk.OpenRedo(unixURI(sock, ""), filepath.Join(dir, "redo.vmdk"), vddk.Options{})
	if err != nil {
		t.Fatalf("a redo log over a one-client export: %v", err)
	}
	defer r.Close()
	if _, err := r.WriteAt([]byte{7}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(buf[:2], 0); err != nil || buf[0] != 7 || buf[1] != 0x42 {
		t.Errorf("read through the redo log: %v %v", buf[:2], err)
	}
}
