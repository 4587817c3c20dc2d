package fusefs_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/fusefs"
	"golang.org/x/sys/unix"
)

// TestNTFSStreams reads alternate data streams as FILE:STREAM through the mount: one of 300 KiB
// (past the 64 KiB the xattr interface can carry), one on a directory, compared with what ntfs-3g
// (streams_interface=windows) reads; --list-streams lists them beside their file, and without it
// they still open by name. Small streams stay readable as user.* xattrs.
func TestNTFSStreams(t *testing.T) {
	big := make([]byte, 300<<10+17)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	img, vmdk := ntfs3gImage(t, func(rw string) error {
		f := filepath.Join(rw, "payload.txt")
		return errors.Join(
			os.WriteFile(f, []byte("innocent"), 0o644),
			os.WriteFile(f+":hidden", big, 0o644),
			os.WriteFile(f+":small", []byte("tiny"), 0o644),
			os.Mkdir(filepath.Join(rw, "dir"), 0o755),
			os.WriteFile(filepath.Join(rw, "dir")+":dstream", []byte("on a directory"), 0o644))
	})
	ref := mountNTFS3g(t, img, ",streams_interface=windows")
	listing, _ := mountVolume(t, vmdk, "", func(l *fusefs.Layout) { l.ListStreams = true })
	plain, _ := mountVolume(t, vmdk, "")

	for _, mnt := range []string{listing, plain} {
		for _, s := range []string{"payload.txt:hidden", "payload.txt:small", "dir:dstream"} {
			want, err := os.ReadFile(filepath.Join(ref, s))
			if err != nil {
				t.Fatalf("ntfs-3g %s: %v", s, err)
			}
			got, err := os.ReadFile(filepath.Join(mnt, s))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes (%v), ntfs-3g reads %d", s, len(got), err, len(want))
			}
		}
		if _, err := os.Stat(filepath.Join(mnt, "payload.txt:absent")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a missing stream: %v", err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(listing, "payload.txt:hidden")); err != nil || !bytes.Equal(got, big) {
		t.Errorf("the big stream differs from what was written (%v)", err)
	}
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(listing); !slices.Contains(got, "payload.txt:hidden") || !slices.Contains(got, "dir:dstream") || !slices.Contains(got, "payload.txt") {
		t.Errorf("--list-streams listing: %q", got)
	}
	if got := names(plain); slices.Contains(got, "payload.txt:hidden") {
		t.Errorf("listing without --list-streams: %q", got)
	}
	st, err := os.Stat(filepath.Join(listing, "payload.txt:hidden"))
	if err != nil || st.Size() != int64(len(big)) || !st.Mode().IsRegular() {
		t.Errorf("stat of a stream: %v %v", st, err)
	}
	small := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(plain, "payload.txt"), "user.small", small); err != nil || string(small[:n]) != "tiny" {
		t.Errorf("user.small xattr: %q %v", small[:max(n, 0)], err)
	}
}

// TestNTFSDataElsewhere: a cloud placeholder (data not on the volume) fails to read through the
// mount with EOPNOTSUPP, not EIO and not as an empty file, and names its tag in an xattr.
func TestNTFSDataElsewhere(t *testing.T) {
	_, vmdk := ntfs3gImage(t, func(rw string) error {
		p := filepath.Join(rw, "cloud.docx")
		rp := binary.LittleEndian.AppendUint32(nil, 0x9000701A)
		rp = binary.LittleEndian.AppendUint16(rp, 8)
		rp = append(rp, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
		return errors.Join(os.WriteFile(p, nil, 0o644), os.Truncate(p, 50000),
			unix.Setxattr(p, "system.ntfs_reparse_data", rp, 0))
	})
	mnt, _ := mountVolume(t, vmdk, "")
	p := filepath.Join(mnt, "cloud.docx")
	if _, err := os.ReadFile(p); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("reading a cloud placeholder: %v, want EOPNOTSUPP", err)
	}
	v := make([]byte, 256)
	n, err := unix.Getxattr(p, "user.vmdkmount.reparse", v)
	if err != nil || !strings.HasPrefix(string(v[:n]), "0x9000701a") {
		t.Errorf("user.vmdkmount.reparse = %q, %v", v[:max(n, 0)], err)
	}
}
