package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

// runBin runs the real binary and returns its standard output, standard error and exit code.
func runBin(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	return testfix.Run(t, bin, args...)
}

const mountUsage = "usage: vmdkmount [options] DISK [DISK...] MOUNTPOINT\n"

// Wrong command lines: one line saying what is wrong, the usage line, exit status 2, nothing on
// standard output, an unknown flag reported once.
func TestUsageErrors(t *testing.T) {
	bin := binary(t)
	listUsage := "usage: vmdkmount list [options] DISK [DISK...] | --mounts\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "vmdkmount: missing DISK and MOUNTPOINT\n" + mountUsage},
		{[]string{"disk.vmdk"}, "vmdkmount: missing MOUNTPOINT after disk.vmdk\n" + mountUsage},
		{[]string{"help"}, "vmdkmount: no command \"help\": for help, vmdkmount --help\n" + mountUsage},
		{[]string{"help", "list"}, "vmdkmount: no command \"help\": for help, vmdkmount list --help\n" + mountUsage},
		{[]string{"--bogus", "a.vmdk", "mnt"}, "vmdkmount: flag provided but not defined: -bogus\n" + mountUsage},
		{[]string{"a.vmdk", "mnt", "--bogus"}, "vmdkmount: flag provided but not defined: -bogus\n" + mountUsage},
		{[]string{"list"}, "vmdkmount: list needs at least one DISK (or --mounts)\n" + listUsage},
		{[]string{"list", "--bogus", "a.vmdk"}, "vmdkmount: flag provided but not defined: -bogus\n" + listUsage},
		{[]string{"list", "--output", "yaml", "a.vmdk"}, "vmdkmount: --output yaml: want json or human\n" + listUsage},
		{[]string{"umount"}, "vmdkmount: umount needs one MOUNTPOINT\nusage: vmdkmount umount MOUNTPOINT\n"},
	} {
		out, errOut, code := runBin(t, bin, c.args...)
		if code != 2 || errOut != c.want || out != "" {
			t.Errorf("vmdkmount %q: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, errOut, out, c.want)
		}
	}
	// A wrong mount option is an error of its own (exit 1), named.
	dir := t.TempDir()
	if _, errOut, code := runBin(t, bin, "-o", "ro,frobnicate", filepath.Join(dir, "x.vmdk"), dir); code != 1 || errOut != "vmdkmount: -o frobnicate: unknown option\n" {
		t.Errorf("unknown -o: exit %d, %q", code, errOut)
	}
}

// --version names the build: the module version, the Go release, and the VCS revision when the build
// recorded one.
func TestVersion(t *testing.T) {
	bin := binary(t)
	out, errOut, code := runBin(t, bin, "--version")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "vmdkmount ") || !strings.HasSuffix(out, " "+runtime.Version()+"\n") {
		t.Errorf("--version: exit %d, %q, %q", code, out, errOut)
	}
	info, _ := exec.Command("go", "version", "-m", bin).Output()
	if m := regexp.MustCompile(`vcs.revision=([0-9a-f]{12})`).FindSubmatch(info); m != nil && !strings.Contains(out, "rev "+string(m[1])) {
		t.Errorf("--version %q lacks the revision %s", out, m[1])
	}
}

// Every --help renders: placeholders are named after what they stand for, and no default is given twice.
func TestHelpRenders(t *testing.T) {
	bin := binary(t)
	for _, args := range [][]string{{"--help"}, {"list", "--help"}, {"umount", "--help"}} {
		out, errOut, code := runBin(t, bin, args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
		testfix.CheckHelp(t, strings.Join(args, " "), out)
	}
}

// Flags after the positional arguments, --output=json as --json.
func TestFlagsAfterArguments(t *testing.T) {
	bin := binary(t)
	disk := filepath.Join(corpusDir(t), "dfvfs", "mbr.raw")
	want, _, code := runBin(t, bin, "list", "--json", disk)
	if code != 0 {
		t.Fatalf("list --json: exit %d", code)
	}
	for _, args := range [][]string{{"list", disk, "--json"}, {"list", disk, "--output=json"}, {"list", "--output", "json", disk}} {
		if out, errOut, code := runBin(t, bin, args...); code != 0 || out != want {
			t.Errorf("%v: exit %d %s\n%s", args, code, errOut, out)
		}
	}
}

// The JSON of list --all (partitions of MBR and GPT, LVM, LDM) names every key in snake_case.
func TestListJSONSnakeCase(t *testing.T) {
	bin := binary(t)
	c := corpusDir(t)
	disks := [][]string{{filepath.Join(c, "dfvfs", "mbr.raw")}, {filepath.Join(c, "dfvfs", "ext2.vmdk")}}
	for _, glob := range []string{"gptman/*", "libldm/*", "dfvfs/lvm*"} {
		m, _ := filepath.Glob(filepath.Join(c, glob))
		for _, p := range m {
			disks = append(disks, []string{p})
		}
	}
	seen := 0
	for _, d := range disks {
		out, _, code := runBin(t, bin, append([]string{"list", "--all", "--json"}, d...)...)
		if code != 0 {
			continue // not every corpus file is a disk we read
		}
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		seen += testfix.CheckSnakeCase(t, d[0], v)
	}
	if seen < 20 {
		t.Errorf("only %d keys checked: the corpus did not exercise the nested structures", seen)
	}
}

// Images of formats vmdkmount does not read, and files that are no disk, are refused by name, by list
// and by the mount (which mounts nothing); the formats it reads are listed.
func TestRefuseOtherFormats(t *testing.T) {
	bin := binary(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cases := map[string]string{}
	for _, f := range []struct{ fmt, opts, name, want string }{
		{"qed", "", "disk.qed", "a QED image, which vmdkmount does not read"},
		{"qcow", "", "disk.qcow", "a qcow (version 1) image, which vmdkmount does not read"},
		{"parallels", "", "disk.hdd", "a Parallels image, which vmdkmount does not read"},
		// The formats it reads are listed (a blank disk: no volume).
		{"qcow2", "", "disk.qcow2", ""}, {"vpc", "", "dynamic.vhd", ""}, {"vpc", "subformat=fixed", "fixed.vhd", ""},
		{"vhdx", "", "disk.vhdx", ""}, {"vdi", "", "disk.vdi", ""},
	} {
		p := filepath.Join(dir, f.name)
		args := []string{"create", "-q", "-f", f.fmt}
		if f.opts != "" {
			args = append(args, "-o", f.opts)
		}
		if out, err := exec.Command("qemu-img", append(args, p, "4M")...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v %s", args, err, out)
		}
		cases[p] = f.want
	}
	empty := filepath.Join(dir, "empty.img")
	os.WriteFile(empty, nil, 0o644)
	cases[empty] = "an empty file, not a disk image"
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("these are my notes\nnot a disk\n"), 0o644)
	cases[text] = "a text file, neither a disk image nor a VMDK descriptor"
	for p, want := range cases {
		if want == "" {
			if _, errOut, code := runBin(t, bin, "list", p); code != 0 {
				t.Errorf("list %s: exit %d, %q", filepath.Base(p), code, errOut)
			}
			continue
		}
		want = "vmdkmount: " + p + ": " + want + "\n"
		if _, errOut, code := runBin(t, bin, "list", p); code != 1 || errOut != want {
			t.Errorf("list %s: exit %d, %q; want %q", filepath.Base(p), code, errOut, want)
		}
		if _, err := os.Stat("/dev/fuse"); err != nil {
			continue
		}
		if _, errOut, code := runBin(t, bin, p, mnt); code != 1 || errOut != want || isMounted(mnt) {
			t.Errorf("mount %s: exit %d, %q; want %q", filepath.Base(p), code, errOut, want)
			exec.Command(bin, "umount", mnt).Run()
		}
	}
}

// The generic fstab options mount; nonsense is refused by name.
func TestMountOptions(t *testing.T) {
	o, err := parseO([]string{"ro,noatime,relatime,atime,fsname=/vm/x.vmdk,subtype=foo,default_permissions,nonempty,kernel_cache",
		"max_read=131072,x-systemd.automount,x-systemd.device-timeout=10,_netdev,nofail,noauto,user,users,user=alice,defaults,nosuid,nodev,volume=p2"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if o.rw || o.fsName != "/vm/x.vmdk" || o.volume != "p2" {
		t.Errorf("parsed %+v", o)
	}
	if o, err := parseO([]string{"rw"}, true); err != nil || o.rw {
		t.Errorf("mount(8)'s implicit rw asked for a redo log: %+v %v", o, err)
	}
	if o, err := parseO([]string{"rw"}, false); err != nil || !o.rw {
		t.Errorf("-o rw: %+v %v", o, err)
	}
	for opt, want := range map[string]string{
		"frobnicate":    "-o frobnicate: unknown option",
		"noatime=yes":   "-o noatime=yes: noatime takes no value",
		"uid=alice":     `-o uid="alice" is not a number`,
		"max_read=lots": `-o max_read="lots" is not a number`,
		"fsname=":       "-o fsname= needs a name",
		"volume=":       "-o volume= needs a volume id (see vmdkmount list)",
	} {
		if _, err := parseO([]string{"ro," + opt}, false); err == nil || err.Error() != want {
			t.Errorf("-o %s: %v, want %q", opt, err, want)
		}
	}
}

// vmware-mount's DISK NUMBER MOUNTPOINT mounts partition NUMBER; an unknown id lists the valid ones.
// The mount root lists "." and "..", and statfs of it reports the disk's size.
func TestVolumeNumberStatfsDots(t *testing.T) {
	bin := buildBinary(t)
	disk := filepath.Join(corpusDir(t), "dfvfs", "mbr.raw")
	dir := t.TempDir()
	mnt := mountPoint(t, bin, dir)
	if _, errOut, code := runBin(t, bin, disk, "9", mnt); code != 1 || errOut != "vmdkmount: no volume p9: the volumes with a file tree are p1, p5\n" {
		t.Errorf("unknown volume: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runBin(t, bin, disk, "5", mnt); code != 0 {
		t.Fatalf("mount of volume 5: exit %d %s", code, errOut)
	}
	var sfs syscall.Statfs_t
	syscall.Statfs(mnt, &sfs)
	names := lsA(t, mnt)
	exec.Command(bin, "umount", mnt).Run()
	// p5 is ext4 labelled ext4_test: its root holds lost+found, as the kernel shows it.
	if !strings.HasPrefix(names, ".\n..\n") || !strings.Contains(names, "lost+found\n") {
		t.Errorf("volume 5's root lists %q", names)
	}

	if _, errOut, code := runBin(t, bin, disk, mnt); code != 0 {
		t.Fatalf("mount: exit %d %s", code, errOut)
	}
	syscall.Statfs(mnt, &sfs)
	root, raw, tree := lsA(t, mnt), lsA(t, filepath.Join(mnt, "raw")), lsA(t, filepath.Join(mnt, "p1"))
	exec.Command(bin, "umount", mnt).Run()
	st, _ := os.Stat(disk)
	if got := int64(sfs.Blocks) * sfs.Bsize; got != (st.Size()+4095)/4096*4096 || sfs.Bfree != 0 {
		t.Errorf("statfs of the root: %d bytes, %d free blocks; the disk is %d bytes", got, sfs.Bfree, st.Size())
	}
	if root != ".\n..\np1\np5\nraw\n" || raw != ".\n..\ndisk\np1\np5\n" || !strings.HasPrefix(tree, ".\n..\n") {
		t.Errorf("listings: root %q, raw %q, p1 %q", root, raw, tree)
	}
}

// lsA lists a folder with ls -a, one name a line, as a user sees it.
func lsA(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("ls", "-a1", dir).Output()
	if err != nil {
		t.Errorf("ls -a %s: %v", dir, err)
	}
	return string(out)
}
