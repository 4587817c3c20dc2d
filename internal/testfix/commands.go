package testfix

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// binDir holds the commands a package's tests build, once per run (see MainWithBinaries).
var binDir string

// MainWithBinaries is a TestMain for tests that run the real command: a temporary folder holds what
// Binary builds, and goes with the run.
func MainWithBinaries(m *testing.M) {
	RunSwapperIfAsked() // a test binary re-run as the attacker of a confinement race
	dir, err := os.MkdirTemp("", "vmdkmount-test-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // name → *build

type build struct {
	once sync.Once
	out  []byte
	err  error
}

// Binary builds the command of the test's own folder as name, once per run, and returns its path.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	if binDir == "" {
		tb.Fatal("testfix.Binary needs testfix.MainWithBinaries as the package's TestMain")
	}
	bin := filepath.Join(binDir, name)
	v, _ := builds.LoadOrStore(name, &build{})
	b := v.(*build)
	b.once.Do(func() { b.out, b.err = exec.Command("go", "build", "-o", bin, ".").CombinedOutput() })
	if b.err != nil {
		tb.Fatalf("build %s: %v\n%s", name, b.err, b.out)
	}
	return bin
}

// Run runs bin and returns its standard output, standard error and exit code.
func Run(tb testing.TB, bin string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// CheckSnakeCase fails on every key of the decoded JSON v that is not snake_case and returns how many
// keys it saw.
func CheckSnakeCase(tb testing.TB, what string, v any) int {
	tb.Helper()
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			n++
			if !snake.MatchString(k) {
				tb.Errorf("%s: JSON key %q is not snake_case", what, k)
			}
			n += CheckSnakeCase(tb, what, sub)
		}
	case []any:
		for _, sub := range v {
			n += CheckSnakeCase(tb, what, sub)
		}
	}
	return n
}

// CheckHelp fails on urfave/cli's placeholder "value" in a flag's line, on a default given twice and on
// a switch's "(default: false)".
func CheckHelp(tb testing.TB, what, help string) {
	tb.Helper()
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(line, "   -") && strings.Contains(line, " value") ||
			strings.Count(line, "(default:") > 1 || strings.Contains(line, "(default: false)") {
			tb.Errorf("%s: help line %q", what, line)
		}
	}
}
