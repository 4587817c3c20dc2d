package regf

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hivexsh runs a hivexsh script on the hive at path (with -w when it writes) and returns its output.
func hivexsh(t testing.TB, path, script string, write bool) string {
	t.Helper()
	sf := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(sf, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", sf, path}
	if write {
		args = append([]string{"-w"}, args...)
	}
	out, err := exec.Command("hivexsh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("hivexsh: %v\n%s", err, out)
	}
	return string(out)
}

// needHivex skips when the hivex tools are missing (Debian libhivex-bin).
func needHivex(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"hivexsh", "hivexml"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian libhivex-bin)", tool)
		}
	}
}

// writeHive writes b to a new file in a test folder.
func writeHive(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hive")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
