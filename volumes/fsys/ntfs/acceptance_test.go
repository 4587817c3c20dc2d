package ntfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// windowsVolume converts the dfvfs Windows volume (qcow2) to a raw image in a temporary directory.
func windowsVolume(t *testing.T) string {
	t.Helper()
	src := filepath.Join(sharedAcceptance(t), "corpus", "dfvfs", "windows_volume.qcow2")
	if _, err := os.Stat(src); err != nil {
		t.Skip("windows_volume.qcow2 not in the corpus")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed")
	}
	raw := filepath.Join(t.TempDir(), "windows_volume.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", src, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	return raw
}

// TestWindowsVolumeFacts checks what EXPECTED.md records for the Windows-written dfvfs volume.
func TestWindowsVolumeFacts(t *testing.T) {
	raw := windowsVolume(t)
	v := openImage(t, raw, Options{})
	const syslog = "Windows/System32/config/syslog"
	fi, err := v.Stat(syslog)
	if err != nil {
		t.Fatal(err)
	}
	st := fsys.StatOf(fi)
	if st.Ino != 67 || fi.Size() != 1247 || !fi.Mode().IsRegular() {
		t.Errorf("syslog: ino %d size %d mode %v, want MFT entry 67, 1247 bytes, regular", st.Ino, fi.Size(), fi.Mode())
	}
	data, err := fs.ReadFile(v, syslog)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != "0420b023f8dc1b71ff25191ce4ce88d10028f99f99f7c21532611f4c273aeae9" {
		t.Errorf("syslog SHA-256 %s", got)
	}
	f, err := v.Open(syslog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := "Jan 22 07:53:01 myhostname.myhost.com CRON[31051]: (root) CMD (touch /var/run/crond.somecheck)\n"
	buf := make([]byte, len(line))
	if _, err := f.(io.ReaderAt).ReadAt(buf, 167); err != nil || string(buf) != line {
		t.Errorf("syslog at 167: %q, %v", buf, err)
	}
	if _, err := f.(io.ReaderAt).ReadAt(buf[:5], 177); err != nil || string(buf[:5]) != "53:01" {
		t.Errorf("syslog 177-181: %q, %v", buf[:5], err)
	}
	if _, err := v.Stat("bogus"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bogus: %v, want not-exist", err)
	}
	if fi, err := v.Stat("Windows/System32/config"); err != nil || !fi.IsDir() {
		t.Errorf("config: %v, %v; want a directory", fi, err)
	}
	// Lookups are case-sensitive by default, as in ntfs-3g; IgnoreCase finds the on-disk names.
	if _, err := v.Stat("WINDOWS/system32/CONFIG/SysLog"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("case-sensitive lookup of a differently cased name: %v", err)
	}
	nocase := openImage(t, raw, Options{IgnoreCase: true})
	if fi, err := nocase.Stat("WINDOWS/system32/CONFIG/SysLog"); err != nil || fi.Size() != 1247 || fi.Name() != "SysLog" {
		t.Errorf("case-insensitive lookup: %v, %v", fi, err)
	}
	var names []string
	err = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Windows", "Windows/System32", "Windows/System32/config", syslog}
	if len(names) != len(want) {
		t.Fatalf("non-system objects %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("object %d: %q, want %q", i, names[i], want[i])
		}
	}
}

// TestWindowsVolumeMatchesNTFS3g compares the whole Windows-written volume with ntfs-3g's view.
func TestWindowsVolumeMatchesNTFS3g(t *testing.T) {
	raw := windowsVolume(t)
	compareWithNTFS3g(t, raw, Options{})
	compareWithNTFS3g(t, raw, Options{ShowSystemFiles: true}, "show_sys_files")
}

// ldmSimpleVolume extracts the libldm images and returns the NTFS volume of the simple 2003R2
// volume, found by scanning for the NTFS boot sector at sector-aligned offsets.
func ldmSimpleVolume(t *testing.T) (*os.File, int64, int64) {
	t.Helper()
	tarball := filepath.Join(sharedAcceptance(t), "corpus", "libldm", "ldm-data.tar.xz")
	if _, err := os.Stat(tarball); err != nil {
		t.Skip("ldm-data.tar.xz not in the corpus")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-SJxf", tarball, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	var img string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "ldm-2003r2-simple-1.img" {
			img = p
		}
		return nil
	})
	if img == "" {
		t.Fatal("ldm-2003r2-simple-1.img not in the tarball")
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	sector := make([]byte, 512)
	for off := int64(0); off+512 <= st.Size(); off += 512 {
		if _, err := f.ReadAt(sector, off); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(sector[3:11], []byte("NTFS    ")) && sector[510] == 0x55 && sector[511] == 0xAA {
			bs, err := parseBoot(sector)
			if err != nil {
				continue
			}
			return f, off, int64(bs.totalSectors+1) * int64(bs.sectorSize)
		}
	}
	t.Fatal("no NTFS boot sector in ldm-2003r2-simple-1.img")
	return nil, 0, 0
}

// TestLDMSimpleVolume reads test.txt from the NTFS inside the libldm simple volume.
func TestLDMSimpleVolume(t *testing.T) {
	f, off, size := ldmSimpleVolume(t)
	v, err := Open(io.NewSectionReader(f, off, size), size, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(v, "test.txt")
	if err != nil || string(data) != "Filesystem test" {
		t.Errorf("test.txt = %q, %v", data, err)
	}
	if u := v.Usage(); u.Label != "Simple" {
		t.Errorf("label %q, want Simple", u.Label)
	}
	// Windows wrote test.txt as a Win32 name: found ignoring case only when asked to.
	if _, err := v.Stat("TEST.TXT"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("TEST.TXT without IgnoreCase: %v", err)
	}
	nocase, err := Open(io.NewSectionReader(f, off, size), size, Options{IgnoreCase: true})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := fs.ReadFile(nocase, "TEST.TXT"); err != nil || string(data) != "Filesystem test" {
		t.Errorf("TEST.TXT with IgnoreCase: %q, %v", data, err)
	}
	// The whole Windows-written volume against ntfs-3g reading the same bytes through a loop device.
	host := mountNTFS3g(t, loopDevice(t, f.Name(), off, size))
	compareTrees(t, v, host)
	compareUsage(t, v, host)
}

// TestFTKImagerDisk reads both NTFS partitions of the sleuthkit FTK Imager disk (EWF, exported to
// raw with ewfexport): labels, the only non-system files, and the whole tree against ntfs-3g.
func TestFTKImagerDisk(t *testing.T) {
	src := filepath.Join(sharedAcceptance(t), "corpus", "sleuthkit", "imageformat_mmls_1.E01")
	if _, err := os.Stat(src); err != nil {
		t.Skip("imageformat_mmls_1.E01 not in the corpus")
	}
	if _, err := exec.LookPath("ewfexport"); err != nil {
		t.Skip("ewfexport (ewf-tools) is not installed")
	}
	target := filepath.Join(t.TempDir(), "disk")
	if out, err := exec.Command("ewfexport", "-q", "-u", "-t", target, "-f", "raw", src).CombinedOutput(); err != nil {
		t.Fatalf("ewfexport: %v: %s", err, out)
	}
	raw := target + ".raw"
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	for i, label := range []string{"Part 1", "Part 2"} {
		e := mbr[446+16*i:]
		if e[4] != 0x07 {
			t.Fatalf("partition %d type %#x, want NTFS", i+1, e[4])
		}
		off := int64(binary.LittleEndian.Uint32(e[8:])) * 512
		size := int64(binary.LittleEndian.Uint32(e[12:])) * 512
		t.Run(label, func(t *testing.T) {
			v, err := Open(io.NewSectionReader(f, off, size), size, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if u := v.Usage(); u.Label != label {
				t.Errorf("label %q", u.Label)
			}
			var files []string
			fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					files = append(files, p)
				}
				return err
			})
			want := []string{"System Volume Information/IndexerVolumeGuid", "System Volume Information/WPSettings.dat"}
			if len(files) != 2 || files[0] != want[0] || files[1] != want[1] {
				t.Errorf("files %q, want %q", files, want)
			}
			host := mountNTFS3g(t, loopDevice(t, raw, off, size))
			compareTrees(t, v, host)
			compareUsage(t, v, host)
			withSys, err := Open(io.NewSectionReader(f, off, size), size, Options{ShowSystemFiles: true})
			if err != nil {
				t.Fatal(err)
			}
			compareTrees(t, withSys, mountNTFS3g(t, loopDevice(t, raw, off, size), "show_sys_files"))
		})
	}
}
