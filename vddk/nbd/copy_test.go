package nbd

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// copyOut runs CopyTo of the disk's data runs into a new file of the disk's size and returns the file's
// bytes, with the bytes progress counted.
func copyOut(t *testing.T, d *Disk) ([]byte, string, error) {
	t.Helper()
	ext, err := d.Extents(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reported atomic.Int64
	err = d.CopyTo(f, dataRuns(ext), func(n int64) { reported.Add(n) })
	if err != nil {
		return nil, out, err
	}
	if err := f.Truncate(d.Size()); err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, e := range dataRuns(ext) {
		want += e.Length
	}
	if reported.Load() != want {
		t.Errorf("progress reported %d bytes, the data runs hold %d", reported.Load(), want)
	}
	return must(os.ReadFile(out)), out, nil
}

// dataAt says whether the file has data (not a hole) anywhere in [off, off+n).
func dataAt(t *testing.T, file string, off, n int64) bool {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return next < off+n
}

// CopyTo against qemu-nbd serving raw, qcow2 and streamOptimized VMDK (with a hole in the middle and
// zeros written as data): the file equals the source, spliced over the Unix socket, and the source's
// hole stays a hole.
func TestCopyToAgainstQemuNBD(t *testing.T) {
	needTool(t, "qemu-nbd", "qemu-img", "qemu-io")
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	run(t, "qemu-img", "create", "-q", "-f", "raw", raw, "24M")
	run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x33 1000k 3M", "-c", "write -P 0 5M 1M", "-c", "write -P 0x55 20M 4M", raw)
	src := must(os.ReadFile(raw))
	images := map[string][2]string{"raw": {"raw", raw}}
	for _, f := range []string{"qcow2", "vmdk"} {
		p := filepath.Join(dir, "src."+f)
		args := []string{"convert", "-f", "raw", "-O", f}
		if f == "vmdk" {
			args = append(args, "-o", "subformat=streamOptimized")
		}
		run(t, "qemu-img", append(args, raw, p)...)
		images[f] = [2]string{f, p}
	}
	for name, im := range images {
		sock := filepath.Join(dir, name+".sock")
		qemuNBD(t, sock, im[0], im[1])
		d, err := Dial(unixURI(sock, ""), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d.reqSize = 256 << 10 // many pieces, several per connection in flight
		got, out, err := copyOut(t, d)
		// Only the first reply's header may have brought data along (its read began before the copy).
		if c := d.slots[0].c; c != nil && c.viaMem > 16<<10 {
			t.Errorf("%s: %d bytes went through memory, not spliced", name, c.viaMem)
		}
		d.Close()
		if err != nil {
			t.Fatalf("%s: CopyTo: %v", name, err)
		}
		if sha256.Sum256(got) != sha256.Sum256(src) {
			t.Errorf("%s: the copy differs from the source", name)
		}
		if dataAt(t, out, 8<<20, 12<<20) {
			t.Errorf("%s: the source's hole at 8-20 MiB holds data in the copy", name)
		}
	}
}

// CopyTo against our server, plain (spliced) and over TLS (through memory, where all-zero data is not
// written): the file holds what is served.
func TestCopyToAgainstServer(t *testing.T) {
	img, data := testImage(2<<20 + 512)
	zeros := Extent{Offset: 1<<20 + 64<<10, Length: 128 << 10} // served as data, all zeros
	data = append(data[:2], zeros, data[2])
	for _, useTLS := range []bool{false, true} {
		_, uri, opts := serveMaybeTLS(t, &Server{Exports: []*Export{memExport("a", img, data)}, MaxRequest: 64 << 10}, "a", useTLS)
		d, err := Dial(uri, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, out, err := copyOut(t, d)
		d.Close()
		if err != nil {
			t.Fatalf("TLS %v: CopyTo: %v", useTLS, err)
		}
		if !bytes.Equal(got, img) {
			t.Errorf("TLS %v: the copy differs from the export", useTLS)
		}
		if useTLS && dataAt(t, out, zeros.Offset, zeros.Length) {
			t.Error("all-zero data read through memory was written")
		}
	}
}

// pattern is the fake export's content: every byte different from its neighbours, none zero.
func pattern(off uint64, n uint32) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off+uint64(i))%251) + 1
	}
	return b
}

// A fake server's misbehaviour during CopyTo: an error within the timeout (never a hang or a panic), or
// for servers that only drop a connection or answer in other legal shapes, a copy equal to the export.
func TestCopyToHostileServers(t *testing.T) {
	var served atomic.Int32
	good := func(w io.Writer, r request) {
		chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off), pattern(r.off, r.length)...))
	}
	for _, c := range []struct {
		name      string
		misbehave func(w io.Writer, r request)
		want      string // "" (or "zeros") for a good copy
	}{
		{"good", good, ""},
		{"simple replies", func(w io.Writer, r request) {
			h := be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, simpleReplyMagic), 0), r.handle)
			w.Write(append(h, pattern(r.off, r.length)...))
		}, ""},
		{"data then a hole chunk", func(w io.Writer, r request) {
			half := r.length / 2
			b := be.AppendUint32(nil, structReplyMagic)
			b = be.AppendUint16(be.AppendUint16(b, 0), replyOffsetData)
			b = be.AppendUint32(be.AppendUint64(b, r.handle), 8+half)
			w.Write(append(be.AppendUint64(b, r.off), pattern(r.off, half)...))
			chunk(w, r, r.handle, replyOffsetHole, be.AppendUint32(be.AppendUint64(nil, r.off+uint64(half)), r.length-half))
		}, "zeros"}, // a good copy, with zeros where the hole chunks were
		{"drops a connection mid-copy", func(w io.Writer, r request) {
			if served.Add(1) == 5 {
				w.(net.Conn).Close()
				return
			}
			good(w, r)
		}, ""},
		{"drops every connection", func(w io.Writer, r request) { w.(net.Conn).Close() }, "connection lost"},
		{"wrong handle", func(w io.Writer, r request) {
			chunk(w, r, r.handle+1, replyOffsetData, append(be.AppendUint64(nil, r.off), pattern(r.off, r.length)...))
		}, "unknown handle"},
		{"short read", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off), pattern(r.off, r.length/2)...))
		}, "covered"},
		{"oversized data", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off), pattern(r.off, r.length+4096)...))
		}, "data chunk"},
		{"stalls", func(w io.Writer, r request) {}, "no reply in"},
		{"error reply", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyError, append(be.AppendUint16(be.AppendUint32(nil, errIO), 4), "bad!"...))
		}, "EIO: bad!"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			served.Store(0)
			var logs syncBuffer
			d, err := Dial(unixURI(fakeServer(t, c.misbehave), ""), Options{Timeout: 300 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			d.reqSize = 64 << 10
			start := time.Now()
			f, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = d.CopyTo(f, []Extent{{Offset: 4096, Length: 1<<20 - 4096}}, nil)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v", el)
			}
			if c.want == "" || c.want == "zeros" {
				if err != nil {
					t.Fatalf("CopyTo: %v", err)
				}
				got := make([]byte, 1<<20)
				f.ReadAt(got, 0)
				want := append(make([]byte, 4096), pattern(4096, 1<<20-4096)...)
				if c.want == "zeros" {
					for o := 4096; o < 1<<20; o += 64 << 10 {
						n := min(64<<10, 1<<20-o)
						clear(want[o+n/2 : o+n])
					}
				}
				if !bytes.Equal(got, want) {
					t.Error("the copy differs from the export")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one with %q", err, c.want)
			}
		})
	}
}

// A file CopyTo cannot write (opened read-only) ends the copy with the file's error, not as a lost
// connection.
func TestCopyToUnwritableFile(t *testing.T) {
	img, data := testImage(2 << 20)
	d, err := Dial(unixURI(startServer(t, &Server{Exports: []*Export{memExport("a", img, data)}}), "a"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = d.CopyTo(f, data, nil)
	if err == nil || errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), "bad file descriptor") {
		t.Errorf("CopyTo into a read-only file: %v", err)
	}
}

// A file the kernel will not splice into (EINVAL, as for a file system without splice support) gets
// the data through memory, the bytes already in the pipe included.
func TestCopyToFileWithoutSplice(t *testing.T) {
	var refused atomic.Int32
	defer func(f func(int, int, *int64, int) (int64, error)) { spliceOut = f }(spliceOut)
	spliceOut = func(int, int, *int64, int) (int64, error) { refused.Add(1); return 0, unix.EINVAL }
	sock := fakeServer(t, func(w io.Writer, r request) {
		chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off), pattern(r.off, r.length)...))
	})
	d, err := Dial(unixURI(sock, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.reqSize = 256 << 10
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := d.CopyTo(f, []Extent{{Offset: 0, Length: 1 << 20}}, nil); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if got := must(os.ReadFile(out)); !bytes.Equal(got, pattern(0, 1<<20)) {
		t.Errorf("the copy differs from the export (%d bytes)", len(got))
	}
	if refused.Load() != 1 {
		t.Errorf("%d splices into the file tried, want 1 (then memory)", refused.Load())
	}
}
