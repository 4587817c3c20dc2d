package fat

import (
	"bytes"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

var fixtures = []string{"fat12", "fat16", "fat32", "fat16-4k"}

// mcopyMangled is the fixture's surrogate-pair name as mcopy writes it on the host.
const mcopyMangled = "emoji-__-__.txt"

// nonBMP reports names mtools 4.0.32 cannot show: it keeps only the low 16 bits of such characters.
func nonBMP(name string) bool {
	if name == mcopyMangled {
		return true
	}
	for _, r := range name {
		if r > 0xFFFF {
			return true
		}
	}
	return false
}

// TestTreeAgainstMcopy extracts each fixture with mcopy -s -m and compares names, types, sizes,
// contents (sequential, ReadAt and Seek) and mtimes with treecmp.
func TestTreeAgainstMcopy(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, b := openFixture(t, name)
			img := tempImage(t, b)
			out := scratchDir(t)
			tool(t, "mcopy", "-s", "-m", "-i", img, "::/", out)
			diffs := treecmp.Compare(v, out, treecmp.Options{
				Ignore:     treecmp.Perm | treecmp.Uid | treecmp.Gid | treecmp.Nlink | treecmp.Atime | treecmp.Ctime | treecmp.Btime | treecmp.Blocks | treecmp.DirSize | treecmp.Links,
				IgnorePath: nonBMP,
			})
			for _, d := range diffs {
				if d.Path == "." && d.Field == treecmp.Mtime {
					continue // FAT's root has no times; mcopy stamps the extraction directory
				}
				t.Error(d)
			}
			all := walk(t, v)
			if len(all) < 27 {
				t.Fatalf("only %d entries walked", len(all))
			}
		})
	}
}

var flsLine = regexp.MustCompile(`^([-a-zA-Z])/([-a-zA-Z]) (\* )?(\d+):\t(.*)$`)

// flsEntry is one line of sleuthkit's fls -l: type letter, address and, with long output, times.
type flsEntry struct {
	typ, addr string
	fields    []string // written, accessed, changed, created, size, uid, gid
}

// flsEntries runs fls -r -p -l and returns live paths. Virtual entries, deleted ones and the volume
// label are left out.
func flsEntries(t *testing.T, img string) map[string]flsEntry {
	out := map[string]flsEntry{}
	for _, line := range strings.Split(strings.TrimRight(tool(t, "fls", "-r", "-p", "-l", img), "\n"), "\n") {
		m := flsLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsed fls line %q", line)
		}
		fields := strings.Split(m[5], "\t")
		if m[3] != "" || m[1] == "v" || m[1] == "V" || strings.HasSuffix(fields[0], "(Volume Label Entry)") {
			continue
		}
		if len(fields) != 8 {
			t.Fatalf("fls -l line with %d fields: %q", len(fields), line)
		}
		out[fields[0]] = flsEntry{typ: m[2], addr: m[4], fields: fields[1:]}
	}
	return out
}

// TestNamesAgainstFls compares every path (including names with surrogate pairs that mtools cannot
// show), its type, size, mtime, access date and creation time with sleuthkit's fls -l.
func TestNamesAgainstFls(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, b := openFixture(t, name)
			img := tempImage(t, b)
			want := flsEntries(t, img)
			got := walk(t, v)
			for p, st := range got {
				w, ok := want[p]
				if !ok {
					t.Errorf("%q: ours only", p)
					continue
				}
				isDir := st.Mode&fsys.S_IFMT == fsys.S_IFDIR
				if isDir != (w.typ == "d") {
					t.Errorf("%q: dir=%v, fls type %s", p, isDir, w.typ)
				}
				if !isDir && strconv.FormatInt(st.Size, 10) != w.fields[4] {
					t.Errorf("%q: size %d, fls %s", p, st.Size, w.fields[4])
				}
				checkTimes(t, p, w.fields, st)
			}
			for p := range want {
				if _, ok := got[p]; !ok {
					t.Errorf("%q: fls only", p)
				}
			}
			if !hasName(got, "emoji-😀-𝄞.txt") {
				t.Error("surrogate-pair name missing")
			}
		})
	}
}

func hasName(m map[string]*fsys.Stat, n string) bool { _, ok := m[n]; return ok }

// parseTSKTime reads sleuthkit's "2006-01-02 15:04:05 (UTC)" (whole seconds).
func parseTSKTime(t *testing.T, s string) time.Time {
	t.Helper()
	s = strings.TrimSuffix(s, " (UTC)")
	if s == "0000-00-00 00:00:00" {
		// A zero date field: the kernel's conversion clamps month and day to 1, giving 1980-01-01.
		s = "1980-01-01 00:00:00"
	}
	tm, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		t.Fatalf("sleuthkit time %q: %v", s, err)
	}
	return tm
}

// checkTimes compares mtime, access date and creation time with fls -l (written, accessed, created),
// at sleuthkit's whole-second resolution.
func checkTimes(t *testing.T, p string, f []string, st *fsys.Stat) {
	t.Helper()
	for _, c := range []struct {
		what string
		ours time.Time
		tsk  string
	}{{"mtime", st.Mtime, f[0]}, {"atime", st.Atime, f[1]}, {"btime", st.Btime, f[3]}} {
		tm := parseTSKTime(t, c.tsk)
		if c.ours.After(time.Unix(1<<31-1, 0)) && tm.Year() == 1980 {
			continue // sleuthkit 4.11 turns dates past 2038-01-19 into 1980; mcopy checks this mtime
		}
		if !c.ours.Truncate(time.Second).Equal(tm) {
			t.Errorf("%s: %s ours %v, sleuthkit %v", p, c.what, c.ours, tm)
		}
	}
	if !st.Ctime.Equal(st.Mtime) {
		t.Errorf("%s: ctime %v != mtime %v", p, st.Ctime, st.Mtime)
	}
}

var mdirLine = regexp.MustCompile(`^(.{8}) (.{3}) +(<DIR>|\d+) +(\d{4}-\d\d-\d\d) +(\d+):(\d\d) *(?:  (.+))?$`)

// TestShortNamesAgainstMdir checks every directory's 8.3 aliases, NT lowercase display and long names
// against mdir -a, and the volume label, serial and free space against mdir's header and footer.
func TestShortNamesAgainstMdir(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, b := openFixture(t, name)
			img := tempImage(t, b)
			dirs := []string{"."}
			for p, st := range walk(t, v) {
				if st.Mode&fsys.S_IFMT == fsys.S_IFDIR {
					dirs = append(dirs, p)
				}
			}
			for _, d := range dirs {
				target := "::/"
				if d != "." {
					target += d
				}
				out := tool(t, "mdir", "-a", "-i", img, target)
				ents, err := v.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				byName := map[string]bool{}
				for _, e := range ents {
					byName[e.Name()] = true
				}
				seen := 0
				for _, line := range strings.Split(out, "\n") {
					m := mdirLine.FindStringSubmatch(line)
					if m == nil || strings.HasPrefix(m[1], ".") {
						continue
					}
					base, ext := strings.TrimRight(m[1], " "), strings.TrimRight(m[2], " ")
					display := base
					if ext != "" {
						display += "." + ext
					}
					long := m[7]
					if long == "" {
						long = display // no long name: mdir shows the alias with the NT case flags applied
					}
					full := path.Join(d, long)
					if nonBMP(long) || strings.ContainsRune(long, '\uFFFD') {
						continue
					}
					if !byName[long] {
						t.Errorf("%s: mdir lists %q, ours does not", d, long)
						continue
					}
					seen++
					short, err := v.ShortName(full)
					if err != nil {
						t.Fatal(err)
					}
					if short != strings.ToUpper(display) {
						t.Errorf("%s: short name %q, mdir %q", full, short, strings.ToUpper(display))
					}
					// Opening by the alias reaches the same entry.
					fi, err := v.Stat(path.Join(d, short))
					if err != nil || fi.Name() != long {
						t.Errorf("Stat by alias %s: %v %v", path.Join(d, short), fi, err)
					}
					if st, _ := v.Stat(full); st != nil && !st.IsDir() {
						if sz, _ := strconv.ParseInt(m[3], 10, 64); sz != st.Size() {
							t.Errorf("%s: size %d, mdir %d", full, st.Size(), sz)
						}
					}
				}
				if want := len(ents) - countNonBMP(ents); seen != want {
					t.Errorf("%s: mdir matched %d entries, ours lists %d", d, seen, want)
				}
				if d == "." {
					checkMdirVolume(t, v, out)
				}
			}
		})
	}
}

func countNonBMP[E interface{ Name() string }](ents []E) int {
	n := 0
	for _, e := range ents {
		if nonBMP(e.Name()) {
			n++
		}
	}
	return n
}

var (
	mdirLabel  = regexp.MustCompile(`Volume in drive : is (.*?) *\n`)
	mdirSerial = regexp.MustCompile(`Volume Serial Number is (\S+)`)
	mdirFree   = regexp.MustCompile(`([\d ]+) bytes free`)
)

func checkMdirVolume(t *testing.T, v *FS, out string) {
	t.Helper()
	u := v.Usage()
	if m := mdirLabel.FindStringSubmatch(out); m == nil || m[1] != u.Label {
		t.Errorf("label %q, mdir %q", u.Label, m)
	}
	if m := mdirSerial.FindStringSubmatch(out); m == nil || m[1] != u.UUID {
		t.Errorf("serial %q, mdir %q", u.UUID, m)
	}
	m := mdirFree.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no free space in mdir output")
	}
	free, _ := strconv.ParseUint(strings.ReplaceAll(strings.TrimSpace(m[1]), " ", ""), 10, 64)
	if u.FreeBlocks*uint64(u.BlockSize) != free {
		t.Errorf("free %d×%d, mdir %d bytes", u.FreeBlocks, u.BlockSize, free)
	}
}

var mattribLine = regexp.MustCompile(`^(.*?)::/(.*)$`)

// TestAttributesAgainstMattrib compares read-only, hidden, system and archive bits with mattrib -/, and
// checks the read-only bit clears the write permissions as a vfat mount does.
func TestAttributesAgainstMattrib(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, b := openFixture(t, name)
			img := tempImage(t, b)
			n := 0
			for _, line := range strings.Split(tool(t, "mattrib", "-i", img, "-/", "::/"), "\n") {
				m := mattribLine.FindStringSubmatch(line)
				if m == nil || m[2] == "" || nonBMP(m[2]) || strings.ContainsRune(m[2], '\uFFFD') {
					continue
				}
				var want byte
				for _, c := range m[1] {
					switch c {
					case 'A':
						want |= AttrArchive
					case 'S':
						want |= AttrSystem
					case 'H':
						want |= AttrHidden
					case 'R':
						want |= AttrReadOnly
					}
				}
				got, err := v.Attributes(m[2])
				if err != nil {
					t.Fatal(err)
				}
				if got&0x27 != want {
					t.Errorf("%s: attributes %#x, mattrib %#x (%q)", m[2], got&0x27, want, m[1])
				}
				fi, err := v.Stat(m[2])
				if err != nil {
					t.Fatal(err)
				}
				st := fsys.StatOf(fi)
				wantMode := uint32(fsys.S_IFREG | 0o755)
				if fi.IsDir() {
					wantMode = fsys.S_IFDIR | 0o755
				} else if want&AttrReadOnly != 0 {
					wantMode = fsys.S_IFREG | 0o555
				}
				if st.Mode != wantMode || st.Uid != 0 || st.Gid != 0 {
					t.Errorf("%s: mode %o uid %d gid %d, want %o 0 0", m[2], st.Mode, st.Uid, st.Gid, wantMode)
				}
				n++
			}
			if n < 25 {
				t.Fatalf("only %d mattrib lines matched", n)
			}
			for _, p := range []string{"readonly.txt", "hidden.txt", "system.sys", "Hidden Dir"} {
				if a, _ := v.Attributes(p); a&(AttrReadOnly|AttrHidden|AttrSystem) == 0 {
					t.Errorf("%s: fixture lost its attribute (%#x)", p, a)
				}
			}
		})
	}
}

// TestZerosAndEmpty reads the data-zeros-data file at odd offsets and the empty file.
func TestZerosAndEmpty(t *testing.T) {
	v, _ := openFixture(t, "fat16")
	f, err := v.Open("zeros.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra := f.(fsys.File)
	buf := make([]byte, 6)
	if _, err := ra.ReadAt(buf, 5+70000); err != nil || string(buf) != "middle" {
		t.Errorf("ReadAt middle: %q %v", buf, err)
	}
	if n, err := ra.ReadAt(buf, 110014-3); n != 3 || err != io.EOF || string(buf[:3]) != "end" {
		t.Errorf("ReadAt end: %d %q %v", n, buf[:n], err)
	}
	e, err := v.Open("empty.txt")
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(e)
	if err != nil || len(all) != 0 {
		t.Errorf("empty file: %q %v", all, err)
	}
	if _, err := e.(fsys.File).ReadAt(buf, 0); err != io.EOF {
		t.Errorf("ReadAt on empty file: %v", err)
	}
	if !bytes.Equal(nil, all) && len(all) != 0 {
		t.Error("unreachable")
	}
}

// TestCreationCentiseconds sets the 10 ms creation-time byte of short.txt; sleuthkit's istat shows
// the whole seconds it adds (23:59:58 + 1.57 s), ours keeps the 570 ms too.
func TestCreationCentiseconds(t *testing.T) {
	b := fixture(t, "fat12")
	v, err := reopen(t, b)
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := entryPos(t, v, "short.txt")
	b[pos+13] = 157
	v, _ = reopen(t, b)
	fi, err := v.Stat("short.txt")
	if err != nil {
		t.Fatal(err)
	}
	bt := fsys.StatOf(fi).Btime
	if want := time.Date(1999, 12, 31, 23, 59, 59, 570_000_000, time.UTC); !bt.Equal(want) {
		t.Errorf("btime %v, want %v", bt, want)
	}
	img := tempImage(t, b)
	addr := flsEntries(t, img)["short.txt"].addr
	out := tool(t, "istat", img, addr)
	m := regexp.MustCompile(`(?m)^Created:\t(\S+ \S+) \(UTC\)$`).FindStringSubmatch(out)
	if m == nil || m[1] != bt.Truncate(time.Second).Format("2006-01-02 15:04:05") {
		t.Errorf("istat Created %q, ours %v", m, bt)
	}
}

// TestLFNChecksumMismatch breaks the checksum in the long-name slot of MiXeD.Txt: like the kernel and
// mtools, the reader must drop the long name and show the 8.3 name.
func TestLFNChecksumMismatch(t *testing.T) {
	b := fixture(t, "fat12")
	v, err := reopen(t, b)
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := entryPos(t, v, "MiXeD.Txt")
	if b[pos-32+11] != attrLFN {
		t.Fatal("no long-name slot before MiXeD.Txt")
	}
	b[pos-32+13] ^= 0x55
	v, _ = reopen(t, b)
	ours := map[string]bool{}
	ents, err := v.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		ours[e.Name()] = true
	}
	mdir := map[string]bool{}
	for _, line := range strings.Split(tool(t, "mdir", "-a", "-i", tempImage(t, b), "::/"), "\n") {
		m := mdirLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], ".") {
			continue
		}
		name := m[7]
		if name == "" {
			name = strings.TrimRight(m[1], " ")
			if ext := strings.TrimRight(m[2], " "); ext != "" {
				name += "." + ext
			}
		}
		mdir[name] = true
	}
	if !ours["MIXED.TXT"] || ours["MiXeD.Txt"] || !mdir["MIXED.TXT"] {
		t.Errorf("ours %v, mdir %v", ours["MIXED.TXT"], mdir["MIXED.TXT"])
	}
	for n := range mdir {
		if !ours[n] && !nonBMP(n) && !strings.ContainsRune(n, '\uFFFD') {
			t.Errorf("mdir lists %q, ours does not", n)
		}
	}
}
