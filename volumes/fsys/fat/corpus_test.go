package fat

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// TestCorpusRustFatfs checks the rust-fatfs images against what the acceptance notes record.
func TestCorpusRustFatfs(t *testing.T) {
	dir := filepath.Join(testfix.RepoRoot(t), "..", "shared", "acceptance", "corpus", "rust-fatfs")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("acceptance corpus absent")
	}
	for _, c := range []struct {
		file           string
		typ            Type
		clusters, free uint64
	}{{"fat12.img", FAT12, 1955, 1920}, {"fat16.img", FAT16, 4927, 4892}} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			v, err := Open(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			f := v.(*FS)
			ents, err := f.ReadDir(".")
			if err != nil {
				t.Fatal(err)
			}
			var names, shorts []string
			for _, e := range ents {
				names = append(names, e.Name())
				s, err := f.ShortName(e.Name())
				if err != nil {
					t.Fatal(err)
				}
				shorts = append(shorts, s)
			}
			if got := strings.Join(names, ","); got != "long.txt,short.txt,very,very-long-dir-name" {
				t.Errorf("root names %s", got)
			}
			if got := strings.Join(shorts, ","); got != "LONG.TXT,SHORT.TXT,VERY,VERY-L~1" {
				t.Errorf("short names %s", got)
			}
			line := "Rust is cool!\n"
			for p, want := range map[string]string{
				"short.txt":               line,
				"long.txt":                strings.Repeat(line, 1000),
				"very/long/path/test.txt": line,
				"very-long-dir-name/very-long-file-name.txt": line,
				"VERY-L~1/VERY-L~1.TXT":                      line,
			} {
				got, err := fs.ReadFile(v, p)
				if err != nil || string(got) != want {
					t.Errorf("%s: %d bytes, err %v", p, len(got), err)
				}
			}
			lf, err := v.Open("long.txt")
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			if _, err := lf.(io.ReaderAt).ReadAt(buf, 2017); err != nil || string(buf) != strings.Repeat(line, 1000)[2017:2027] {
				t.Errorf("long.txt[2017:2027] = %q, %v", buf, err)
			}
			if fi, _ := lf.Stat(); fi.ModTime().Format("2006-01-02 15:04") != "2017-09-24 19:59" {
				t.Errorf("mtime %v", fi.ModTime())
			}
			sub, err := v.ReadDir("very/long/path")
			if err != nil || len(sub) != 1 || sub[0].Name() != "test.txt" {
				t.Errorf("very/long/path: %v %v", sub, err)
			}
			// A directory opened as a file cannot be read; a file cannot be listed or walked through.
			d, err := v.Open("very")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Read(buf); err == nil {
				t.Error("reading a directory succeeded")
			}
			if _, err := v.ReadDir("short.txt"); err == nil || !strings.Contains(err.Error(), "not a directory") {
				t.Errorf("ReadDir of a file: %v", err)
			}
			if _, err := v.Open("short.txt/x"); err == nil {
				t.Error("opening below a file succeeded")
			}
			if _, err := v.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing: %v", err)
			}
			info := f.Info()
			if info.Type != c.typ || info.VolumeID != 0x12345678 || info.Label != "Test!" || info.BPBLabel != "Test!" || info.Dirty || info.ClusterSize != 512 {
				t.Errorf("info %+v", info)
			}
			u := v.Usage()
			if u.Blocks != c.clusters || u.FreeBlocks != c.free || u.BlockSize != 512 || u.Label != "Test!" || u.UUID != "1234-5678" {
				t.Errorf("usage %+v", u)
			}
		})
	}
}
