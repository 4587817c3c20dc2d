package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/testfix"
)

func TestMain(m *testing.M) { testfix.MainWithBinaries(m) }

// runBin runs the real vmdk binary: standard output, standard error, exit code.
func runBin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return testfix.Run(t, testfix.Binary(t, "vmdk"), args...)
}

func needQemu(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "vmdk: missing COMMAND\nusage: vmdk COMMAND [options] ARGS... (vmdk COMMAND --help for each)\n"},
		{[]string{"frob"}, "vmdk: no command \"frob\"\nusage: vmdk COMMAND [options] ARGS... (vmdk COMMAND --help for each)\n"},
		{[]string{"help", "info"}, "vmdk: no command \"help\": for help, vmdk info --help\nusage: vmdk COMMAND [options] ARGS... (vmdk COMMAND --help for each)\n"},
		{[]string{"info"}, "vmdk: info needs exactly one DISK\nusage: vmdk info [options] DISK\n"},
		{[]string{"info", "a.vmdk", "--bogus"}, "vmdk: flag provided but not defined: -bogus\nusage: vmdk info [options] DISK\n"},
		{[]string{"create", "x.vmdk"}, "vmdk: create needs --size\nusage: vmdk create [options] DISK\n"},
		{[]string{"commit"}, "vmdk: commit needs CHILD\nusage: vmdk commit [options] CHILD\n"},
		{[]string{"rebase", "a"}, "vmdk: rebase needs CHILD and NEWPARENT\nusage: vmdk rebase CHILD NEWPARENT\n"},
		{[]string{"blocks", "--output=xml", "a.vmdk"}, "vmdk: --output xml: want json or human\nusage: vmdk blocks [options] DISK\n"},
	} {
		out, errOut, code := runBin(t, c.args...)
		if code != 2 || errOut != c.want || out != "" {
			t.Errorf("vmdk %q: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, errOut, out, c.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, _, code := runBin(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "vmdk ") || !strings.HasSuffix(out, " "+runtime.Version()+"\n") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	main, _, _ := runBin(t, "--help")
	for _, cmd := range newApp().Commands {
		main += cmd.Name + ":\n"
		out, errOut, code := runBin(t, cmd.Name, "--help")
		if code != 0 || errOut != "" {
			t.Errorf("%s --help: exit %d %s", cmd.Name, code, errOut)
		}
		main += out
	}
	testfix.CheckHelp(t, "vmdk", main)
}

// info and blocks: flags after the disk, --output=json, snake_case keys, each extent's actual_size as
// qemu-img's actual-size, blocks in bytes too.
func TestJSONOutputs(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.vmdk")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "vmdk", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("qemu-io", "-c", "write -P 7 1M 3M", disk).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	want, _, code := runBin(t, "info", "--json", disk)
	if code != 0 {
		t.Fatal("info --json failed")
	}
	for _, args := range [][]string{{"info", disk, "--json"}, {"info", disk, "--output=json"}, {"info", "--output", "json", disk}} {
		if out, errOut, code := runBin(t, args...); code != 0 || out != want {
			t.Errorf("%v: exit %d %s\n%s", args, code, errOut, out)
		}
	}
	var inf struct {
		ActualSize int64 `json:"actual_size"`
		Chain      []struct {
			Extents []struct {
				ActualSize int64 `json:"actual_size"`
			}
		}
	}
	var raw map[string]any
	json.Unmarshal([]byte(want), &inf)
	json.Unmarshal([]byte(want), &raw)
	delete(raw, "metadata") // the disk database's own keys (adapterType…), data rather than schema
	testfix.CheckSnakeCase(t, "info", raw)
	qi, err := exec.Command("qemu-img", "info", "--output=json", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		ActualSize int64 `json:"actual-size"`
	}
	json.Unmarshal(qi, &q)
	if q.ActualSize == 0 || inf.ActualSize != q.ActualSize || len(inf.Chain) != 1 || inf.Chain[0].Extents[0].ActualSize != q.ActualSize {
		t.Errorf("actual_size %d (extent %+v), qemu-img says %d", inf.ActualSize, inf.Chain, q.ActualSize)
	}

	out, _, code := runBin(t, "blocks", disk, "--json")
	var blocks []map[string]uint64
	if err := json.Unmarshal([]byte(out), &blocks); err != nil || code != 0 || len(blocks) != 1 {
		t.Fatalf("blocks --json: %v %s", err, out)
	}
	b := blocks[0]
	if b["offset"] != 1<<20/512 || b["length"] != 3<<20/512 || b["offset_bytes"] != 1<<20 || b["length_bytes"] != 3<<20 {
		t.Errorf("blocks: %v", b)
	}
	out, _, _ = runBin(t, "check", "--output=json", disk)
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("check --output=json: %q", out)
	}
}

// convert -t raw writes a sparse file with the bytes qemu-img writes; -p prints qemu-img's percentage
// lines when standard error is not a terminal, ending at 100.
func TestConvertRawSparseWithProgress(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.vmdk")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "vmdk", src, "256M").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("qemu-io", "-c", "write -P 9 100M 2M", src).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	dst := filepath.Join(dir, "dst.raw")
	out, errOut, code := runBin(t, "convert", "-t", "raw", src, dst, "-p")
	if code != 0 || out != "" {
		t.Fatalf("convert: exit %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	line := regexp.MustCompile(`^    \((\d+)\.00/100%\)$`)
	prev := -1
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("progress line %q", l)
		}
		n, _ := strconv.Atoi(m[1])
		if n <= prev {
			t.Errorf("progress went from %d to %d", prev, n)
		}
		prev = n
	}
	if prev != 100 || len(lines) < 3 {
		t.Errorf("progress: %q", errOut)
	}
	var st syscall.Stat_t
	syscall.Stat(dst, &st)
	if st.Size != 256<<20 || st.Blocks*512 > 8<<20 {
		t.Errorf("raw output: %d bytes, %d allocated; want 256 MiB with about 2 MiB allocated", st.Size, st.Blocks*512)
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "vmdk", "-F", "raw", src, dst).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare: %v %s", err, out)
	}
	// Without -p, nothing on standard error.
	if _, errOut, code := runBin(t, "convert", "-t", "raw", src, filepath.Join(dir, "quiet.raw")); code != 0 || errOut != "" {
		t.Errorf("convert without -p: exit %d, %q", code, errOut)
	}
	// Every long operation takes -p.
	for _, args := range [][]string{{"cat", "-p", src}, {"grow", src, "300M", "-p"}, {"shrink", "-p", src}, {"defrag", "-p", src}} {
		_, errOut, code := runBin(t, args...)
		if code != 0 || !strings.HasSuffix(errOut, "    (100.00/100%)\n") {
			t.Errorf("%v: exit %d, stderr ends %q", args, code, errOut[max(0, len(errOut)-60):])
		}
	}
	child := filepath.Join(dir, "child.vmdk")
	runBin(t, "child", src, child)
	if _, errOut, code := runBin(t, "commit", child, "-p"); code != 0 || !strings.HasSuffix(errOut, "    (100.00/100%)\n") {
		t.Errorf("commit -p: exit %d, %q", code, errOut)
	}
}

// Images of other formats are refused by name by info and convert.
func TestRefuseOtherFormats(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	q := filepath.Join(dir, "disk.qed") // a format vmdkmount does not read (qcow2, VHD, VHDX and VDI it reads)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qed", q, "8M").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	want := "vmdk: " + q + ": a QED image, which vmdkmount does not read\n"
	for _, args := range [][]string{{"info", q}, {"convert", q, filepath.Join(dir, "out.vmdk")}, {"cat", q}} {
		if _, errOut, code := runBin(t, args...); code != 1 || errOut != want {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.vmdk")); err == nil {
		t.Error("convert of a QED image wrote an output")
	}
}

// On a terminal (script(1) gives one) -p draws a bar that ends at 100%.
func TestProgressBarOnTerminal(t *testing.T) {
	needQemu(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.vmdk")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "vmdk", src, "64M").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	bin := testfix.Binary(t, "vmdk")
	out, err := exec.Command("script", "-qec", bin+" convert -p -t raw "+src+" "+filepath.Join(dir, "out.raw"), "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "convert 100% |") || strings.Contains(string(out), "/100%)") {
		t.Errorf("%v %q", err, out)
	}
}
