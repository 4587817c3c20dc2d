package testfix

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// The swapper is the attacker of the confinement race tests: a process of another user, owning the
// disk's folder, that swaps one file name in a loop between a regular file, a symlink to a file it may
// not read, and a FIFO, with atomic renames.
const swapEnv = "TESTFIX_SWAP" // the folder; _NAME, _GOOD and _TARGET the files

// SwapUID is the user the swapper runs as when the test runs as root (nobody).
const SwapUID = 65534

// RunSwapperIfAsked turns a test binary re-run by StartSwapper into the swapper; call it from TestMain
// before m.Run. It returns when the variable is not set.
func RunSwapperIfAsked() {
	dir := os.Getenv(swapEnv)
	if dir == "" {
		return
	}
	name, good, target := os.Getenv(swapEnv+"_NAME"), os.Getenv(swapEnv+"_GOOD"), os.Getenv(swapEnv+"_TARGET")
	var stop atomic.Bool
	go func() { io.Copy(io.Discard, os.Stdin); stop.Store(true) }()
	at := func(n string) string { return filepath.Join(dir, n) }
	swaps := 0
	for i := 0; !stop.Load(); i++ {
		var tmp string
		var err error
		switch i % 3 {
		case 0:
			tmp = at(".swap-link")
			os.Remove(tmp)
			err = os.Symlink(target, tmp)
		case 1:
			tmp = at(".swap-good")
			os.Remove(tmp)
			err = os.Link(at(good), tmp)
		case 2:
			tmp = at(".swap-fifo")
			os.Remove(tmp)
			err = syscall.Mkfifo(tmp, 0o644)
		}
		if err == nil && os.Rename(tmp, at(name)) == nil {
			swaps++
		}
	}
	fmt.Println(swaps)
	os.Exit(0)
}

// StartSwapper runs the swapper on dir/name (between dir/good, a symlink to target and a FIFO) as
// SwapUID when the test runs as root, so the folder's owner is not the one reading. dir is handed to
// that user. stop ends it and returns how many swaps it made.
func StartSwapper(tb testing.TB, dir, name, good, target string) (stop func() int) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	// The test binary lies in a private build folder: the other user runs a copy.
	bin := filepath.Join(dir, ".swapper")
	data, err := os.ReadFile(exe)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), swapEnv+"="+dir, swapEnv+"_NAME="+name, swapEnv+"_GOOD="+good, swapEnv+"_TARGET="+target)
	if os.Getuid() == 0 {
		// The user must reach the folder: open up the private test folders above it, up to the
		// temporary directory and never beyond.
		tmp := filepath.Clean(os.TempDir())
		for p := filepath.Dir(dir); strings.HasPrefix(p, tmp+string(filepath.Separator)); p = filepath.Dir(p) {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o005 != 0o005 {
				os.Chmod(p, st.Mode().Perm()|0o055)
			}
		}
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				os.Lchown(p, SwapUID, SwapUID)
			}
			return nil
		})
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: SwapUID, Gid: SwapUID}}
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := false
	n := 0
	stop = func() int {
		if !done {
			done = true
			in.Close()
			line, _ := bufio.NewReader(out).ReadString('\n')
			cmd.Wait()
			n, _ = strconv.Atoi(line[:max(len(line)-1, 0)])
		}
		return n
	}
	tb.Cleanup(func() { stop() })
	return stop
}
