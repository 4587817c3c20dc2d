package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// sh runs a command and fails the test with its output if it fails.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// startServe runs `vmdk serve --socket S ARGS...` until the test ends (SIGTERM) and returns S.
func startServe(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	cmd := exec.Command(testfix.Binary(t, "vmdk"), append([]string{"serve", "--socket", sock}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if strings.Contains(stderr.String(), "panic") {
			t.Errorf("vmdk serve: %s", stderr.String())
		}
	})
	testfix.WaitUnixSocket(t, sock, stderr.String)
	return sock, cmd
}

func nbdURI(sock, export string) string { return "nbd+unix:///" + export + "?socket=" + sock }

// makeDisks writes a raw image with data, holes and an odd-sized run, and VMDKs of it in several kinds.
func makeDisks(t *testing.T) (dir string, disks []string) {
	dir = t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	sh(t, "qemu-img", "create", "-q", "-f", "raw", raw, "48M")
	sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x33 1M 3M", "-c", "write -P 0x44 20M 65k", "-c", "write -P 0x55 47M 512", raw)
	for _, sub := range []string{"streamOptimized", "monolithicSparse", "monolithicFlat"} {
		p := filepath.Join(dir, sub+".vmdk")
		sh(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, raw, p)
		disks = append(disks, p)
	}
	child := filepath.Join(dir, "child.vmdk")
	sh(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", "monolithicSparse.vmdk", "-F", "vmdk", child)
	sh(t, "qemu-io", "-f", "vmdk", "-c", "write -P 0x66 30M 1M", child)
	return dir, append(disks, child)
}

type qemuMapEntry struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	Data   bool  `json:"data"`
}

// dataRanges merges the data runs of a qemu-img map.
func dataRanges(m []qemuMapEntry) [][2]int64 {
	var out [][2]int64
	for _, e := range m {
		if !e.Data {
			continue
		}
		if k := len(out); k > 0 && out[k-1][1] == e.Start {
			out[k-1][1] += e.Length
			continue
		}
		out = append(out, [2]int64{e.Start, e.Start + e.Length})
	}
	return out
}

// Our server against real clients: qemu-img convert and map, nbdinfo --map and --list, nbdcopy, over
// four exports at once, each equal to what vmdk cat and vmdk blocks say of the file.
func TestServeRealClients(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "nbdinfo", "nbdcopy")
	dir, disks := makeDisks(t)
	sock, _ := startServe(t, disks...)
	list := sh(t, "nbdinfo", "--list", "--json", nbdURI(sock, ""))
	for _, d := range disks {
		name := strings.TrimSuffix(filepath.Base(d), ".vmdk")
		if !strings.Contains(list, `"export-name": "`+name+`"`) {
			t.Errorf("nbdinfo --list lacks %s:\n%s", name, list)
		}
		uri := nbdURI(sock, name)
		want := filepath.Join(dir, name+".cat")
		f, err := os.Create(want)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, f, "cat", d); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got := filepath.Join(dir, name+".qemu")
		sh(t, "qemu-img", "convert", "-O", "raw", uri, got)
		sameFiles(t, "qemu-img convert of "+name, want, got)
		copied := filepath.Join(dir, name+".nbdcopy")
		sh(t, "truncate", "-s", "0", copied)
		sh(t, "nbdcopy", uri, copied)
		sameFiles(t, "nbdcopy of "+name, want, copied)

		var m []qemuMapEntry
		if err := json.Unmarshal([]byte(sh(t, "qemu-img", "map", "--output=json", uri)), &m); err != nil {
			t.Fatal(err)
		}
		var blocks []struct {
			OffsetBytes int64 `json:"offset_bytes"`
			LengthBytes int64 `json:"length_bytes"`
		}
		out, err := run(t, nil, "blocks", "--chunk", "1", "--json", d)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &blocks); err != nil {
			t.Fatal(err)
		}
		var want2 [][2]int64
		for _, b := range blocks {
			want2 = append(want2, [2]int64{b.OffsetBytes, b.OffsetBytes + b.LengthBytes})
		}
		if got := dataRanges(m); fmt.Sprint(got) != fmt.Sprint(want2) {
			t.Errorf("%s: qemu-img map data %v, vmdk blocks %v", name, got, want2)
		}
		// nbdinfo --map: the same runs, as "data" lines.
		var nm [][2]int64
		for _, line := range strings.Split(strings.TrimSpace(sh(t, "nbdinfo", "--map", uri)), "\n") {
			var off, n int64
			var typ int
			if _, err := fmt.Sscan(line, &off, &n, &typ); err != nil {
				t.Fatalf("nbdinfo --map line %q: %v", line, err)
			}
			if typ == 0 {
				nm = append(nm, [2]int64{off, off + n})
			}
		}
		if fmt.Sprint(nm) != fmt.Sprint(want2) {
			t.Errorf("%s: nbdinfo --map data %v, vmdk blocks %v", name, nm, want2)
		}
		// Our client on our server: cat, blocks and info of the URI say what they say of the file.
		viaURI := filepath.Join(dir, name+".uri")
		f, err = os.Create(viaURI)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, f, "cat", uri); err != nil {
			t.Fatal(err)
		}
		f.Close()
		sameFiles(t, "vmdk cat of the URI of "+name, want, viaURI)
		if piped, err := run(t, nil, "cat", uri); err != nil || sha256.Sum256([]byte(piped)) != fileHash(t, want) {
			t.Errorf("%s: vmdk cat of the URI into a pipe: %v, or content differs", name, err)
		}
		if b, err := run(t, nil, "blocks", "--chunk", "1", "--json", uri); err != nil || b != out {
			t.Errorf("%s: vmdk blocks of the URI: %v\n%s\nof the file:\n%s", name, err, b, out)
		}
		if inf, err := run(t, nil, "info", uri); err != nil || !strings.Contains(inf, "(50331648 bytes, 98304 sectors)") || !regexp.MustCompile(`allocation map: +true`).MatchString(inf) {
			t.Errorf("%s: vmdk info of the URI: %v\n%s", name, err, inf)
		}
	}
}

func sameFiles(t *testing.T, what, a, b string) {
	t.Helper()
	if ha, hb := fileHash(t, a), fileHash(t, b); ha != hb {
		t.Errorf("%s: content differs from vmdk cat", what)
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// A read-only export refuses qemu-io's writes; with --rw they land in the redo log, flushed, and the
// disk itself is not touched.
func TestServeWrites(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	dir, disks := makeDisks(t)
	base := disks[1] // monolithicSparse
	before := fileHash(t, base)
	sock, _ := startServe(t, base)
	out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write -P 0x77 0 64k", nbdURI(sock, "")).CombinedOutput()
	if err == nil && !strings.Contains(string(out), "ermission denied") {
		t.Errorf("write to a read-only export accepted: %s", out)
	}

	redo := filepath.Join(dir, "redo.vmdk")
	sock, srv := startServe(t, "--rw", "--redo", redo, "--keep-redo", base)
	sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x77 5M 64k", "-c", "flush", "-c", "write -f -P 0x78 6M 4k", nbdURI(sock, ""))
	// Flushed: the redo log reads back through qemu-img while the server still runs.
	sh(t, "qemu-io", "-r", "-f", "vmdk", "-U", "-c", "read -P 0x77 5M 64k", redo)
	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Fatalf("vmdk serve after SIGTERM: %v", err)
	}
	if fileHash(t, base) != before {
		t.Error("the base disk was written")
	}
	sh(t, "qemu-io", "-r", "-f", "vmdk", "-c", "read -P 0x77 5M 64k", "-c", "read -P 0x78 6M 4k", "-c", "read -P 0x33 1M 3M", redo)
	// A temporary redo log: writes read back over the connection, nothing is left behind in the disk's folder.
	sock, _ = startServe(t, "--rw", base)
	sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x79 7M 4k", "-c", "flush", "-c", "read -P 0x79 7M 4k", "-c", "read -P 0x33 1M 4k", nbdURI(sock, ""))
	if fileHash(t, base) != before {
		t.Error("the base disk was written through a temporary redo log")
	}
	own, err := run(t, nil, "blocks", "--single-link", "--chunk", "1", "--json", redo)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(own, `"offset_bytes":5242880`) || !strings.Contains(own, `"offset_bytes":6291456`) {
		t.Errorf("redo log's own blocks: %s", own)
	}
}
