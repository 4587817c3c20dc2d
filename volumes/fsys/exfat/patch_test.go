package exfat

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// patchSet edits the entry set of name in a copy of img and re-seals its checksum; exfat-fuse, which
// verifies set checksums itself, then judges the result.
func patchSet(t *testing.T, img []byte, name string, edit func(set []byte)) []byte {
	t.Helper()
	v := open(t, img)
	n, err := v.lookup("patch", name)
	if err != nil || n.ent == nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	b := append([]byte(nil), img...)
	set := b[n.ent.pos : n.ent.pos+32*int64(b[n.ent.pos+1]+1)]
	edit(set)
	binary.LittleEndian.PutUint16(set[2:], setChecksum(set))
	return b
}

func compareWithFuse(t *testing.T, img []byte) *FS {
	t.Helper()
	v := open(t, img)
	dir := mountFuse(t, img)
	for _, d := range treecmp.Compare(v, dir, treecmp.Options{TimeGranularity: time.Second, Ignore: treecmp.Nlink}) {
		if d.Path == "." && d.Field&treecmp.Times != 0 {
			continue
		}
		t.Error(d)
	}
	return v
}

// TestValidDataLength shortens the valid data length of two files (one contiguous, one on a FAT
// chain). Below it the bytes must equal exfat-fuse's; past it the exFAT specification (§7.6.4) makes
// them read as zeros. exfat-fuse 1.3 and sleuthkit 4.11 both ignore the field, so the zeros are checked
// against the rule, not against a tool.
func TestValidDataLength(t *testing.T) {
	img := fixture(t)
	img = patchSet(t, img, "big.txt", func(set []byte) { binary.LittleEndian.PutUint64(set[32+8:], 5000) })
	img = patchSet(t, img, "grown.bin", func(set []byte) { binary.LittleEndian.PutUint64(set[32+8:], 3) })
	v := open(t, img)
	dir := mountFuse(t, img)
	for name, valid := range map[string]int{"big.txt": 5000, "grown.bin": 3} {
		ours, err := fs.ReadFile(v, name)
		if err != nil {
			t.Fatal(err)
		}
		host, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(host) || string(ours[:valid]) != string(host[:valid]) {
			t.Errorf("%s: valid part differs from exfat-fuse (%d/%d bytes)", name, len(ours), len(host))
		}
		if strings.Trim(string(ours[valid:]), "\x00") != "" || strings.Trim(string(host[valid:]), "\x00") == "" {
			t.Errorf("%s: bytes past the valid length are not zeros (or the test patched nothing)", name)
		}
		f, _ := v.Open(name)
		buf := make([]byte, 10)
		if n, err := f.(io.ReaderAt).ReadAt(buf, int64(valid)-2); n != 10 || err != nil || string(buf[:2]) != string(host[valid-2:valid]) || buf[2] != 0 {
			t.Errorf("%s: ReadAt across the valid length: %q %v", name, buf[:n], err)
		}
	}
}

// TestNoFatChain clears the FAT entries behind a contiguous file: a reader honouring the NoFatChain
// flag never looks at them, and exfat-fuse agrees on the content.
func TestNoFatChain(t *testing.T) {
	img := fixture(t)
	v := open(t, img)
	n, _ := v.lookup("t", "zeros.bin")
	if !n.ent.contiguous {
		t.Fatal("fixture's zeros.bin is not contiguous")
	}
	clusters := (int64(n.ent.dataLen) + v.g.clusterSize - 1) / v.g.clusterSize
	for c := int64(n.ent.first); c < int64(n.ent.first)+clusters; c++ {
		binary.LittleEndian.PutUint32(img[v.g.fatOffset+c*4:], 0)
	}
	w := compareWithFuse(t, img)
	b, err := fs.ReadFile(w, "zeros.bin")
	if err != nil || !strings.HasPrefix(string(b), "start") || !strings.HasSuffix(string(b), "end") {
		t.Errorf("zeros.bin: %v", err)
	}
	// A FAT-chained file whose chain is cut must fail with a named error.
	m, _ := v.lookup("t", "grown.bin")
	if m.ent.contiguous {
		t.Fatal("fixture's grown.bin is contiguous")
	}
	binary.LittleEndian.PutUint32(img[v.g.fatOffset+int64(m.ent.first)*4:], 0)
	if _, err := fs.ReadFile(open(t, img), "grown.bin"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "free cluster") {
		t.Errorf("cut chain: %v", err)
	}
}

// TestTimestampOffsets gives a file a UTC offset and 10 ms increments; exfat-fuse applies the
// offset too, at whole seconds.
func TestTimestampOffsets(t *testing.T) {
	img := fixture(t)
	img = patchSet(t, img, "short.txt", func(set []byte) {
		set[21] = 150         // modified +1.5 s
		set[23] = 0x80 | 6    // UTC+01:30
		set[20] = 199         // created +1.99 s
		set[22] = 0x80 | 0x7C // UTC-01:00
	})
	v := compareWithFuse(t, img)
	fi, err := v.Stat("short.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The fixture stores 05:06:06 in the 2-second field; the increment and offset come on top.
	want := time.Date(2021, 3, 4, 5, 6, 6, 0, time.UTC).Add(1500 * time.Millisecond).Add(-90 * time.Minute)
	if !fi.ModTime().Equal(want) {
		t.Errorf("ModTime %v, want %v", fi.ModTime(), want)
	}
	n, _ := v.lookup("t", "short.txt")
	if n.ent.created.Nanosecond() != 990_000_000 {
		t.Errorf("btime %v lacks the 10 ms part", n.ent.created)
	}
}

// TestReadOnlyAttribute sets the read-only and hidden bits: the write bits go as on a kernel mount.
func TestReadOnlyAttribute(t *testing.T) {
	img := patchSet(t, fixture(t), "readonly.txt", func(set []byte) { set[4] |= AttrReadOnly | AttrHidden })
	v := open(t, img)
	fi, err := v.Stat("readonly.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o555 {
		t.Errorf("mode %v", fi.Mode())
	}
	if a, _ := v.Attributes("READONLY.TXT"); a&(AttrReadOnly|AttrHidden) != AttrReadOnly|AttrHidden {
		t.Errorf("attributes %#x", a)
	}
	// exfat-fuse still opens the patched set (its checksum holds).
	dir := mountFuse(t, img)
	if _, err := os.Stat(filepath.Join(dir, "readonly.txt")); err != nil {
		t.Error(err)
	}
}

// TestBadChecksums breaks an entry set's checksum (ReadDir fails, as exfat-fuse's does) and the boot
// region's (the backup region is used).
func TestBadChecksums(t *testing.T) {
	img := fixture(t)
	v := open(t, img)
	n, _ := v.lookup("t", "deep/a")
	bad := append([]byte(nil), img...)
	bad[n.ent.pos+2] ^= 0xFF
	if _, err := open(t, bad).ReadDir("deep"); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("ReadDir with a bad set checksum: %v", err)
	}
	m, _ := v.lookup("t", "short.txt")
	badRoot := append([]byte(nil), img...)
	badRoot[m.ent.pos+2] ^= 0xFF
	w, err := Open(bytesReader(badRoot), int64(len(badRoot)))
	if err != nil {
		t.Fatalf("Open with a damaged root entry set: %v", err)
	}
	if _, err := w.ReadDir("."); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("ReadDir of a root with a bad set: %v", err)
	}
	if u := w.Usage(); u.Label != "exFAT Test" || u.FreeBlocks == 0 {
		t.Errorf("usage of a root with a bad set: %+v", u)
	}
	dir := mountFuse(t, bad)
	if _, err := os.ReadDir(filepath.Join(dir, "deep")); err == nil {
		t.Log("exfat-fuse listed a directory with a bad set checksum")
	}

	boot := append([]byte(nil), img...)
	boot[100] ^= 1 // serial number: covered by the checksum
	if !open(t, boot).Info().BackupBoot {
		t.Error("backup boot region not used")
	}
	copy(boot[12*512:], boot[:512])
	if _, err := Open(bytesReader(boot), int64(len(boot))); err == nil || !errors.Is(err, ErrNotExFAT) || !strings.Contains(err.Error(), "boot checksum") {
		t.Errorf("both boot regions bad: %v", err)
	}
}

var dumpField = regexp.MustCompile(`(?m)^(Cluster size|Total Clusters|Free Clusters|Volume Serial|Volume label):\s+(.*?)\s*$`)

// TestUsageAgainstDumpExfat compares label, serial, cluster size, count and free clusters with
// exfatprogs' dump.exfat.
func TestUsageAgainstDumpExfat(t *testing.T) {
	img := fixture(t)
	v := open(t, img)
	p := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range dumpField.FindAllStringSubmatch(run(t, "dump.exfat", p), -1) {
		got[m[1]] = m[2]
	}
	u := v.Usage()
	serial, _ := strconv.ParseUint(strings.TrimPrefix(got["Volume Serial"], "0x"), 16, 32)
	checks := []struct {
		what      string
		ours, dum string
	}{
		{"cluster size", strconv.Itoa(int(u.BlockSize)), got["Cluster size"]},
		{"clusters", strconv.FormatUint(u.Blocks, 10), got["Total Clusters"]},
		{"free", strconv.FormatUint(u.FreeBlocks, 10), got["Free Clusters"]},
		{"label", u.Label, got["Volume label"]},
		{"serial", u.UUID, strings.ToUpper(strconv.FormatUint(serial>>16, 16)) + "-" + strings.ToUpper(strconv.FormatUint(serial&0xFFFF, 16))},
	}
	for _, c := range checks {
		if c.ours != c.dum || c.dum == "" {
			t.Errorf("%s: ours %q, dump.exfat %q", c.what, c.ours, c.dum)
		}
	}
	if !v.Info().UpcaseOK {
		t.Error("up-case table rejected")
	}
	// Case-insensitive lookup through the up-case table, including non-ASCII letters.
	if _, err := v.Stat("ÜNÏCØDÉ — 日本語.TXT"); err != nil {
		t.Error(err)
	}
}
