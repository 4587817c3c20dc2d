package squashfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// unsquashfsLine matches `unsquashfs -lln` output: mode, uid/gid, size or "major, minor", mtime, path.
var unsquashfsLine = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+)\s+(\d+|\d+,\s*\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$`)

// TestMatchesUnsquashfs compares every entry of every fixture with squashfs-tools' own listing: mode
// string (type, permissions, setuid/setgid/sticky), numeric owner, size, mtime to the minute, symlink
// target and device numbers. It needs no root, unlike TestMatchesKernelMount.
func TestMatchesUnsquashfs(t *testing.T) {
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs not installed")
	}
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			img := fixtureBytes(t, name)
			file := filepath.Join(t.TempDir(), "image.sqfs")
			if err := os.WriteFile(file, img, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("unsquashfs", "-lln", "-d", "", file)
			cmd.Env = append(os.Environ(), "TZ=UTC")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("unsquashfs: %v", err)
			}
			ours, err := Open(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			compared := 0
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				m := unsquashfsLine.FindStringSubmatch(sc.Text())
				if m == nil {
					continue
				}
				compared++
				compareUnsquashfs(t, ours, m)
			}
			walked := 0
			if err := fs.WalkDir(ours, ".", func(string, fs.DirEntry, error) error { walked++; return nil }); err != nil {
				t.Fatal(err)
			}
			if compared != walked {
				t.Errorf("unsquashfs listed %d entries, ours %d", compared, walked)
			}
		})
	}
}

func compareUnsquashfs(t *testing.T, ours fsys.FS, m []string) {
	t.Helper()
	p, target, isLink := strings.Cut(strings.TrimPrefix(m[6], "/"), " -> ")
	if p == "" {
		p = "."
	}
	fi, err := ours.Lstat(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	st := fsys.StatOf(fi)
	if got := fi.Mode().String(); lsString(st.Mode) != m[1] {
		t.Errorf("%s: mode ours=%s (%s) unsquashfs=%s", p, lsString(st.Mode), got, m[1])
	}
	if fmt.Sprint(st.Uid) != m[2] || fmt.Sprint(st.Gid) != m[3] {
		t.Errorf("%s: owner ours=%d/%d unsquashfs=%s/%s", p, st.Uid, st.Gid, m[2], m[3])
	}
	if major, minor, isDev := strings.Cut(m[4], ","); isDev {
		// unsquashfs prints rdev>>8 and rdev&0xff, which is only the real pair for 8-bit minors and
		// 12-bit majors; TestMatchesKernelMount checks the others against the kernel.
		ma, _ := strconv.ParseUint(strings.TrimSpace(major), 10, 64)
		mi, _ := strconv.ParseUint(strings.TrimSpace(minor), 10, 64)
		if mi < 256 && ma < 4096 && st.Rdev != ma<<8|mi {
			t.Errorf("%s: rdev ours=%#x unsquashfs=%d,%d", p, st.Rdev, ma, mi)
		}
	} else if m[4] != fmt.Sprint(st.Size) {
		t.Errorf("%s: size ours=%d unsquashfs=%s", p, st.Size, m[4])
	}
	if got := st.Mtime.UTC().Format("2006-01-02 15:04"); got != m[5] {
		t.Errorf("%s: mtime ours=%s unsquashfs=%s", p, got, m[5])
	}
	if isLink {
		if got, err := ours.ReadLink(p); err != nil || got != target {
			t.Errorf("%s: target ours=%q (%v) unsquashfs=%q", p, got, err, target)
		}
	}
}

// lsString renders a mode the way ls and unsquashfs do.
func lsString(mode uint32) string {
	types := map[uint32]byte{fsys.S_IFDIR: 'd', fsys.S_IFREG: '-', fsys.S_IFLNK: 'l', fsys.S_IFCHR: 'c',
		fsys.S_IFBLK: 'b', fsys.S_IFIFO: 'p', fsys.S_IFSOCK: 's'}
	b := []byte{types[mode&fsys.S_IFMT]}
	for i, c := range "rwxrwxrwx" {
		if mode&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	for _, s := range []struct {
		bit      uint32
		at       int
		set, off byte
	}{{fsys.S_ISUID, 3, 's', 'S'}, {fsys.S_ISGID, 6, 's', 'S'}, {fsys.S_ISVTX, 9, 't', 'T'}} {
		if mode&s.bit != 0 {
			if b[s.at] == 'x' {
				b[s.at] = s.set
			} else {
				b[s.at] = s.off
			}
		}
	}
	return string(b)
}
