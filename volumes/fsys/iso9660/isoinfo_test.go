package iso9660

import (
	"bufio"
	"bytes"
	"io/fs"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// isoinfoEntry is one line of `isoinfo -l`.
type isoinfoEntry struct {
	mode   string
	nlink  int
	size   int64
	target string
	extent int64
}

// isoinfoLine matches "-rw-r--r--   3    0    0     7 Jun 15 2021 [    363 00]  name " (uid and gid
// columns can run together for large ids, so they are not captured).
var isoinfoLine = regexp.MustCompile(`^(\S{10})\s+(\d+)\s+.*?\s(\d+) \w{3} [ \d]\d \d{4} \[\s*(\d+) \d+\]  (.*?) ?$`)

// isoinfoListing runs isoinfo -l with extra flags and returns directory → name → entry.
func isoinfoListing(t *testing.T, file string, flags ...string) map[string]map[string]isoinfoEntry {
	t.Helper()
	out, err := exec.Command("isoinfo", append([]string{"-i", file, "-l"}, flags...)...).Output()
	if err != nil {
		t.Fatalf("isoinfo: %v", err)
	}
	dirs := map[string]map[string]isoinfoEntry{}
	if slices.Contains(flags, "iso8859-1") {
		out = latin1ToUTF8(out)
	}
	var cur string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "Directory listing of "); ok {
			cur = strings.Trim(d, "/")
			dirs[cur] = map[string]isoinfoEntry{}
			continue
		}
		m := isoinfoLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, target, _ := strings.Cut(m[5], " -> ")
		if name == "." || name == ".." || name == "" {
			continue
		}
		nlink, _ := strconv.Atoi(m[2])
		size, _ := strconv.ParseInt(m[3], 10, 64)
		extent, _ := strconv.ParseInt(m[4], 10, 64)
		dirs[cur][name] = isoinfoEntry{mode: m[1], nlink: nlink, size: size, target: target, extent: extent}
	}
	if len(dirs) == 0 {
		t.Fatal("isoinfo listed no directories")
	}
	return dirs
}

func latin1ToUTF8(b []byte) []byte {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return []byte(sb.String())
}

// lsMode renders a Stat mode the way isoinfo prints it (f for a fifo).
func lsMode(mode uint32) string {
	types := map[uint32]byte{fsys.S_IFDIR: 'd', fsys.S_IFREG: '-', fsys.S_IFLNK: 'l', fsys.S_IFCHR: 'c',
		fsys.S_IFBLK: 'b', fsys.S_IFIFO: 'f', fsys.S_IFSOCK: 's'}
	b := []byte{types[mode&fsys.S_IFMT]}
	for i, c := range "rwxrwxrwx" {
		if mode&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	special := func(bit uint32, at int, set, unset byte) {
		if mode&bit != 0 {
			if b[at] == 'x' {
				b[at] = set
			} else {
				b[at] = unset
			}
		}
	}
	special(fsys.S_ISUID, 3, 's', 'S')
	special(fsys.S_ISGID, 6, 's', 'S')
	special(fsys.S_ISVTX, 9, 't', 'T')
	return string(b)
}

// plainFromISO maps an ISO9660 identifier as isoinfo prints it to the name Linux shows.
func plainFromISO(id string) string {
	id = strings.ToLower(strings.TrimSuffix(id, ";1"))
	return strings.TrimSuffix(id, ".")
}

// TestMatchesIsoinfo compares names, sizes and directory inode numbers, and with Rock Ridge also modes,
// link counts and symlink targets as stored, with cdrkit's isoinfo, for every directory it lists.
func TestMatchesIsoinfo(t *testing.T) {
	needTool(t, "isoinfo")
	for _, tc := range []struct {
		fixture string
		flags   []string
		rock    bool
		mapName func(string) string
		// serials: the image has PX serial numbers; otherwise a directory's inode number must be
		// the kernel's, its extent's first block << 6 (the "." record's byte position / 32).
		serials bool
	}{
		{"tree-xorriso", []string{"-R"}, true, nil, false},
		{"tree-rrip112", []string{"-R"}, true, nil, true},
		// isoinfo knows no UTF-8 output; the Joliet names are Latin-1 only, so ask for that.
		{"small-joliet", []string{"-J", "-j", "iso8859-1"}, false, nil, false},
		{"small-plain", nil, false, plainFromISO, false},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			ours, file := openFixture(t, tc.fixture)
			compared := 0
			for dir, ents := range isoinfoListing(t, file, tc.flags...) {
				name := dir
				if tc.mapName != nil && dir != "" {
					parts := strings.Split(dir, "/")
					for i := range parts {
						parts[i] = tc.mapName(parts[i])
					}
					name = strings.Join(parts, "/")
				}
				if name == "" {
					name = "."
				}
				list, err := ours.ReadDir(name)
				if err != nil {
					t.Errorf("ReadDir(%q): %v", name, err)
					continue
				}
				seen := map[string]fs.DirEntry{}
				for _, e := range list {
					seen[e.Name()] = e
				}
				if len(list) != len(ents) {
					t.Errorf("%s: ours lists %d entries, isoinfo %d", name, len(list), len(ents))
				}
				for id, want := range ents {
					n := id
					if tc.mapName != nil {
						n = tc.mapName(id)
					}
					e, ok := seen[n]
					if !ok {
						t.Errorf("%s: isoinfo lists %q, ours does not", name, n)
						continue
					}
					compared++
					fi, _ := e.Info()
					st := fsys.StatOf(fi)
					if (st.Mode&fsys.S_IFMT == fsys.S_IFREG || st.Mode&fsys.S_IFMT == fsys.S_IFDIR) && st.Size != want.size {
						t.Errorf("%s: size ours=%d isoinfo=%d", path.Join(name, n), st.Size, want.size)
					}
					if st.Mode&fsys.S_IFMT == fsys.S_IFDIR && !tc.serials && st.Ino != uint64(want.extent)<<6 {
						t.Errorf("%s: ino ours=%d, extent %d gives %d", path.Join(name, n), st.Ino, want.extent, want.extent<<6)
					}
					if !tc.rock {
						continue
					}
					// isoinfo prints no setuid/setgid/sticky bits; TestMatchesSourceTree checks them.
					if got := lsMode(st.Mode &^ (fsys.S_ISUID | fsys.S_ISGID | fsys.S_ISVTX)); got != want.mode {
						t.Errorf("%s: mode ours=%s isoinfo=%s", path.Join(name, n), got, want.mode)
					}
					if int(st.Nlink) != want.nlink {
						t.Errorf("%s: nlink ours=%d isoinfo=%d", path.Join(name, n), st.Nlink, want.nlink)
					}
					if want.target != "" {
						if got, err := ours.ReadLink(path.Join(name, n)); err != nil || got != want.target {
							t.Errorf("%s: target ours=%q (%v) isoinfo=%q", path.Join(name, n), got, err, want.target)
						}
					}
				}
			}
			if compared == 0 {
				t.Fatal("nothing compared")
			}
		})
	}
}
