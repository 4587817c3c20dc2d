package volumes_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes"
)

// Every Windows dynamic volume of the libldm images assembles and holds an NTFS whose test.txt reads
// "Filesystem test", read as a file through the volume's tree (libldm's own check, test/checkmount.pl).
func TestLDMVolumeTrees(t *testing.T) {
	c := testfix.Corpus(t)
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-SJxf", filepath.Join(c, "libldm", "ldm-data.tar.xz"), "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	sets := []struct {
		group, set, volume, label string
		n                         int
	}{
		{"2003r2", "simple", "Volume1", "Simple", 1},
		{"2003r2", "spanned", "Volume2", "Spanned", 2},
		{"2003r2", "striped", "Stripe1", "Striped", 2},
		{"2003r2", "mirrored", "Volume3", "Mirrored", 2},
		{"2003r2", "raid5", "Raid1", "", 3},
		{"2008r2", "spanned", "Volume1", "Spanned", 2},
		{"2008r2", "striped", "Volume2", "Striped", 2},
		{"2008r2", "mirrored", "Volume3", "Mirrored", 2},
		{"2008r2", "raid5", "Volume4", "", 3},
	}
	for _, s := range sets {
		t.Run(s.group+"-"+s.set, func(t *testing.T) {
			var disks []volumes.Disk
			for i := 1; i <= s.n; i++ {
				m, _ := filepath.Glob(filepath.Join(dir, "*", "ldm-"+s.group+"-"+s.set+"-"+string(rune('0'+i))+".img"))
				if len(m) == 0 {
					m, _ = filepath.Glob(filepath.Join(dir, "ldm-"+s.group+"-"+s.set+"-"+string(rune('0'+i))+".img"))
				}
				if len(m) == 0 {
					t.Fatalf("image %d of %s-%s not found", i, s.group, s.set)
				}
				f, err := os.Open(m[0])
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				st, _ := f.Stat()
				disks = append(disks, sizedFile{f, st.Size()})
			}
			set, err := volumes.Open(disks, volumes.Options{})
			if err != nil {
				t.Fatal(err)
			}
			v, ok := set.Volume(s.volume)
			if !ok || v.Incomplete || !v.HasTree() {
				t.Fatalf("volume %s: %+v", s.volume, v)
			}
			tree, err := v.OpenTree(volumes.TreeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			f, err := tree.Open("test.txt")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(f)
			f.Close()
			if string(b) != "Filesystem test" {
				t.Errorf("test.txt = %q", b)
			}
			if s.label != "" && tree.Usage().Label != s.label {
				t.Errorf("label %q, want %q", tree.Usage().Label, s.label)
			}
		})
	}
}

type sizedFile struct {
	*os.File
	size int64
}

func (s sizedFile) Size() int64 { return s.size }
