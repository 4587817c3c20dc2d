package main

import (
	"bytes"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/vddk/nbd"
)

// startQemuNBD serves file read-only on a Unix socket until the test ends and returns the socket.
func startQemuNBD(t *testing.T, format, file string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "qemu.sock")
	testfix.QemuNBD(t, sock, format, file)
	return sock
}

// vmdk convert of an NBD URI (qemu-nbd serving a qcow2 chain's top) writes the disk qemu-img convert of
// the same export writes, in each target type, with -p progress to 100%.
func TestConvertFromURI(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-nbd")
	dir, disks := makeDisks(t)
	qcow := filepath.Join(dir, "top.qcow2")
	sh(t, "qemu-img", "convert", "-O", "qcow2", disks[3], qcow) // the child: data, holes and a write over its base
	uri := nbdURI(startQemuNBD(t, "qcow2", qcow), "")
	ref := filepath.Join(dir, "ref.raw")
	sh(t, "qemu-img", "convert", "-O", "raw", uri, ref)
	bin := testfix.Binary(t, "vmdk")
	for _, typ := range []string{"monolithicSparse", "streamOptimized", "raw"} {
		out := filepath.Join(dir, "out-"+typ)
		msg, err := exec.Command(bin, "convert", "-p", "-t", typ, uri, out).CombinedOutput()
		if err != nil {
			t.Fatalf("vmdk convert -t %s of the URI: %v\n%s", typ, err, msg)
		}
		if !strings.Contains(string(msg), "(100.00/100%)") {
			t.Errorf("-t %s: no progress to 100%%:\n%s", typ, msg)
		}
		if cmp := sh(t, "qemu-img", "compare", "-F", "raw", out, ref); !strings.Contains(cmp, "identical") {
			t.Errorf("-t %s: qemu-img compare: %s", typ, cmp)
		}
	}
}

// vmdk serve --rw of an NBD URI: qemu-io's writes land in a redo log over the export, read back over our
// server; the file behind the export is not written.
func TestServeWritesOverURI(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-nbd")
	_, disks := makeDisks(t)
	base := disks[1] // monolithicSparse
	before := fileHash(t, base)
	uri := nbdURI(startQemuNBD(t, "vmdk", base), "")
	sock, _ := startServe(t, "--rw", uri)
	sh(t, "qemu-io", "-f", "raw", "-c", "write -P 0x79 7M 4k", "-c", "flush", "-c", "read -P 0x79 7M 4k", "-c", "read -P 0x33 1M 3M",
		"-c", "read -P 0x44 20M 65k", nbdURI(sock, ""))
	if fileHash(t, base) != before {
		t.Error("the disk behind the export was written")
	}
}

// vmdk serve --idle-timeout: a client that sends nothing for longer is disconnected (ours reconnects
// and logs it); the default keeps it.
func TestServeIdleTimeout(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	_, disks := makeDisks(t)
	for _, idle := range []string{"300ms", ""} {
		args := []string{disks[1]}
		if idle != "" {
			args = append([]string{"--idle-timeout", idle}, args...)
		}
		sock, _ := startServe(t, args...)
		var logs bytes.Buffer
		d, err := nbd.Dial(nbdURI(sock, ""), nbd.Options{Conns: 1, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		buf := make([]byte, 512)
		if _, err := d.ReadAt(buf, 1<<20); err != nil || buf[0] != 0x33 {
			t.Errorf("--idle-timeout %q: read after a second: %v", idle, err)
		}
		d.Close()
		if lost := strings.Contains(logs.String(), "nbd connection lost"); lost != (idle != "") {
			t.Errorf("--idle-timeout %q: connection closed by the server: %v\n%s", idle, lost, logs.String())
		}
	}
}
