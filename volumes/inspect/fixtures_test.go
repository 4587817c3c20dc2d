package inspect

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/inspect/regf/regftest"
)

func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sparse makes an empty file of size bytes.
func sparse(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// hive writes a minimal hive, fills it with a hivexsh script and returns its path.
func hive(t testing.TB, dir, name, script string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, regftest.MinimalHive("ROOT"), 0o644); err != nil {
		t.Fatal(err)
	}
	sf := p + ".hivexsh"
	os.WriteFile(sf, []byte(script+"\ncommit\n"), 0o644)
	run(t, "hivexsh", "-w", "-f", sf, p)
	return p
}

// hivexget returns what hivexget prints for one value.
func hivexget(t testing.TB, hive, key, value string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "hivexget", hive, key, value))
}

// peFile is the start of a PE executable for machine (enough for an architecture check).
func peFile(machine uint16) []byte {
	b := make([]byte, 0x100)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3C:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x84:], machine)
	return b
}

// ntfsWithFiles makes an NTFS image with mkntfs and copies src's contents onto it through ntfs-3g
// (on a loop device, so that the unmount waits for ntfs-3g to finish writing).
func ntfsWithFiles(t testing.TB, dir, name string, size int64, label, src string) string {
	t.Helper()
	img := sparse(t, dir, name, size)
	run(t, "mkntfs", "-q", "-F", "-Q", "-L", label, img)
	if src == "" {
		return img
	}
	dev := strings.TrimSpace(run(t, "losetup", "-f", "--show", img))
	defer exec.Command("losetup", "-d", dev).Run()
	mnt := filepath.Join(dir, name+".mnt")
	os.Mkdir(mnt, 0o755)
	run(t, "ntfs-3g", "-o", "noatime", dev, mnt)
	if out, err := exec.Command("cp", "-r", src+"/.", mnt).CombinedOutput(); err != nil {
		testfix.Unmount(t, mnt)
		t.Fatalf("cp: %v %s", err, out)
	}
	testfix.Unmount(t, mnt)
	return img
}

// placePartitions copies each image onto disk at the start of partition n.
func placePartitions(t testing.TB, disk string, images map[int]string) {
	t.Helper()
	parts := sfdiskDump(t, disk)
	for n, img := range images {
		run(t, "dd", "if="+img, "of="+disk, "bs=512", "seek="+parts[n]["start"], "conv=notrunc,sparse", "status=none")
	}
}

// sfdiskDump reads util-linux sfdisk's dump of disk: per partition number its fields (start, size,
// uuid, name, type), and under 0 the table's own (label-id).
func sfdiskDump(t testing.TB, disk string) map[int]map[string]string {
	t.Helper()
	out := run(t, "sfdisk", "--dump", disk)
	parts := map[int]map[string]string{0: {}}
	for _, line := range strings.Split(out, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if !strings.HasPrefix(name, disk) {
			parts[0][strings.TrimSpace(name)] = strings.TrimSpace(rest)
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(name, disk)))
		parts[n] = map[string]string{}
		for _, f := range strings.Split(rest, ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok {
				parts[n][strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
	}
	return parts
}

// blkidPart returns util-linux blkid's tags (UUID, LABEL, TYPE) for the filesystem of partition n.
func blkidPart(t testing.TB, disk string, n int) map[string]string {
	t.Helper()
	p := sfdiskDump(t, disk)[n]
	start, _ := strconv.ParseInt(p["start"], 10, 64)
	size, _ := strconv.ParseInt(p["size"], 10, 64)
	out, _ := exec.Command("blkid", "-p", "-o", "export", "-O", strconv.FormatInt(start*512, 10),
		"-S", strconv.FormatInt(size*512, 10), disk).Output()
	tags := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			tags[k] = v
		}
	}
	return tags
}

// hexValue decodes hivexget's hex(N):aa,bb,… output.
func hexValue(t testing.TB, s string) []byte {
	_, h, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("not a hex value: %q", s)
	}
	var out []byte
	for _, x := range strings.Split(h, ",") {
		n, err := strconv.ParseUint(x, 16, 8)
		if err != nil {
			t.Fatalf("hex value %q: %v", s, err)
		}
		out = append(out, byte(n))
	}
	return out
}

func guidBytes(s string) string {
	var b []string
	g := strings.ReplaceAll(s, "-", "")
	raw := make([]byte, 16)
	for i := range raw {
		n, _ := strconv.ParseUint(g[2*i:2*i+2], 16, 8)
		raw[i] = byte(n)
	}
	// Microsoft's layout: the first three groups little-endian.
	le := append([]byte{raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]}, raw[8:]...)
	for _, c := range le {
		b = append(b, fmt.Sprintf("%02x", c))
	}
	return strings.Join(b, ",")
}

func hostArch(t testing.TB, path string) string {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_386:
		return "i386"
	}
	return f.Machine.String()
}

// ext4Image makes an ext4 image of src with mkfs.ext4 -d.
func ext4Image(t testing.TB, dir, name string, size int64, label, uuid, src string) string {
	img := sparse(t, dir, name, size)
	args := []string{"-q", "-F", "-L", label, "-U", uuid}
	if src != "" {
		args = append(args, "-d", src)
	}
	run(t, "mkfs.ext4", append(args, img)...)
	return img
}

func writeTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
