package vddk

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// memRemote is a network disk in memory for the remote hook's tests: data in the first half, a hole after.
type memRemote struct {
	b      []byte
	closed *bool
}

func (m *memRemote) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}
func (m *memRemote) Close() error   { *m.closed = true; return nil }
func (m *memRemote) Size() int64    { return int64(len(m.b)) }
func (m *memRemote) String() string { return "memdisk:///" }
func (m *memRemote) Allocated(off, n int64, emit func(off, n int64, data bool)) error {
	half := int64(len(m.b)) / 2
	if off < half {
		emit(off, min(half, off+n)-off, true)
	}
	if off+n > half {
		emit(max(off, half), off+n-max(off, half), false)
	}
	return nil
}

var remoteClosed bool

// remoteOpens counts the connections made to memdisk:// disks.
var remoteOpens atomic.Int32

func init() {
	RegisterRemote(func(s string) bool { return strings.HasPrefix(s, "memdisk://") }, func(uri string) (Remote, error) {
		if !strings.Contains(uri, "good") {
			return nil, fmt.Errorf("no such export")
		}
		remoteOpens.Add(1)
		b := make([]byte, 4<<20)
		for i := range 2 << 20 {
			b[i] = byte(i%251 + 1)
		}
		return &memRemote{b: b, closed: &remoteClosed}, nil
	})
}

// A registered network disk opens as a one-link raw disk: read, allocation map, refusal to be written;
// a redo log over it reopens its parent only when the caller names that URI.
func TestRemoteDisk(t *testing.T) {
	const uri = "memdisk://user:pw@host/good"
	d, err := Open(uri, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.Path(), "pw") || d.Size() != 4<<20 {
		t.Errorf("path %q (credentials shown?), size %d", d.Path(), d.Size())
	}
	buf := make([]byte, 8)
	if _, err := d.ReadAt(buf, 1); err != nil || buf[0] != 2 {
		t.Errorf("ReadAt: %v %v", buf, err)
	}
	blocks, err := d.AllocatedBlocks(0, uint64(d.Size())/SectorSize, 128)
	if err != nil || fmt.Sprint(blocks) != "[{0 4096}]" {
		t.Errorf("allocated blocks %v, %v; want the first 2 MiB", blocks, err)
	}
	d.Close()
	if !remoteClosed {
		t.Error("Close did not close the network disk")
	}
	if _, err := Open(uri, Options{Writable: true}); err == nil {
		t.Error("a network disk opened for writing")
	}
	if _, err := Open("memdisk:///bad", Options{}); err == nil || !strings.Contains(err.Error(), "no such export") {
		t.Errorf("a failing opener: %v", err)
	}

	child := filepath.Join(t.TempDir(), "redo.vmdk")
	if err := CreateChildWith(uri, child, "", Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(child, Options{}); !errors.Is(err, ErrRemoteParent) {
		t.Errorf("a redo log over a network disk opened without naming it: %v", err)
	}
	if _, err := Open(child, Options{RemoteParent: "memdisk:///good"}); !errors.Is(err, ErrRemoteParent) {
		t.Errorf("a redo log opened its parent under another name: %v", err)
	}
	w, err := Open(child, Options{Writable: true, RemoteParent: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("new"), 100); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 200)
	if _, err := w.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if string(got[100:103]) != "new" || got[0] != 1 || got[103] != 104 {
		t.Errorf("read through the redo log: %v", got[95:110])
	}
}
