// Package memlimit runs a test again in a child process held to a memory limit, for the hostile-image
// suites of vddk and volumes. For tests only.
package memlimit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ChildEnv marks a test binary re-executed by RunUnderMemoryLimit.
const ChildEnv = "VMDKMOUNT_MEMLIMIT_CHILD"

// cgroupRoot is where a cgroup v2 hierarchy is mounted on a unified system.
const cgroupRoot = "/sys/fs/cgroup"

// RunUnderMemoryLimit re-executes the running test binary for the one test named run, with limit bytes
// of memory: a hard limit through a fresh cgroup v2 (memory.max, no swap) when one can be made (as root
// on a unified hierarchy), or else the child's peak RSS measured against the limit (the race detector's
// shadow mappings make RLIMIT_AS useless). It fails t when the child fails, is killed, or goes over,
// and logs the peak. In the child itself it skips t.
func RunUnderMemoryLimit(t *testing.T, run string, limit int64, timeout time.Duration) {
	t.Helper()
	if os.Getenv(ChildEnv) != "" {
		t.Skip("this is the memory-limited child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1", "-test.v",
		"-test.timeout="+timeout.String())
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cg, err := newCgroup(limit)
	how := "peak RSS (VmHWM) measured against the bound; no writable cgroup v2: " + fmt.Sprint(err)
	if err == nil {
		defer cg.remove()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.fd.Fd())}
		how = "hard limit by cgroup v2 memory.max"
	}
	start := time.Now()
	runErr := cmd.Start()
	if runErr != nil && cg != nil {
		// Starting straight into a cgroup needs clone3 (Linux 5.7); without it, measure instead.
		how = "peak RSS (VmHWM) measured against the bound; starting in the cgroup failed: " + runErr.Error()
		cg.remove()
		cg = nil
		cmd = exec.Command(cmd.Path, cmd.Args[1:]...)
		cmd.Env = append(os.Environ(), ChildEnv+"=1")
		cmd.Stdout, cmd.Stderr = &out, &out
		runErr = cmd.Start()
	}
	if runErr == nil {
		runErr = cmd.Wait()
	}
	elapsed := time.Since(start)
	// Not the rusage Maxrss: Linux carries the high-water mark of the mm the child had before exec (the
	// parent's, shared by vfork) into it, so it reports the parent's size. The child reports its own.
	peak := reportedPeak(out.String())
	if cg != nil {
		if p := cg.read("memory.peak"); p > 0 {
			peak = p
		}
		if n := cg.event("oom_kill"); n > 0 {
			t.Errorf("the child was killed %d times by the %d MiB memory limit", n, limit>>20)
		}
	}
	if peak == 0 {
		t.Errorf("child %s reported no peak memory", run)
	}
	cases := strings.Count(out.String(), "=== RUN")
	t.Logf("%s in a child: %d tests and subtests in %v, peak memory %d MiB of %d MiB (%s)",
		run, cases, elapsed.Round(time.Millisecond), peak>>20, limit>>20, how)
	if runErr != nil {
		t.Errorf("child %s: %v\n%s", run, runErr, tail(out.String(), 60))
	}
	if peak > limit {
		t.Errorf("child %s peaked at %d MiB, over the %d MiB bound", run, peak>>20, limit>>20)
	}
	if !strings.Contains(out.String(), "--- PASS: "+run) {
		t.Errorf("child %s did not pass:\n%s", run, tail(out.String(), 60))
	}
}

type cgroup struct {
	dir string
	fd  *os.File
}

// newCgroup makes a child cgroup of the root with memory.max = limit and no swap.
func newCgroup(limit int64) (*cgroup, error) {
	ctl, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"))
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(ctl), "memory") {
		return nil, errors.New("the memory controller is not enabled for child cgroups")
	}
	dir := filepath.Join(cgroupRoot, fmt.Sprintf("vmdkmount-memlimit-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	cg := &cgroup{dir: dir}
	for _, kv := range [][2]string{{"memory.max", strconv.FormatInt(limit, 10)}, {"memory.swap.max", "0"}} {
		if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0o644); err != nil && kv[0] == "memory.max" {
			cg.remove()
			return nil, err
		}
	}
	if cg.fd, err = os.Open(dir); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

func (c *cgroup) read(name string) int64 {
	b, _ := os.ReadFile(filepath.Join(c.dir, name))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func (c *cgroup) event(name string) int64 {
	b, _ := os.ReadFile(filepath.Join(c.dir, "memory.events"))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func (c *cgroup) remove() {
	if c.dir == "" {
		return
	}
	if c.fd != nil {
		c.fd.Close()
	}
	// The child has exited, so the cgroup is empty and can go.
	for i := 0; i < 50 && os.Remove(c.dir) != nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	c.dir, c.fd = "", nil
}

// peakTag starts the line on which a child reports its peak resident size.
const peakTag = "memlimit-child-peak-bytes "

// ReportChildPeak prints the process's peak resident size (VmHWM) for RunUnderMemoryLimit to read; it
// does nothing outside the child. Defer it at the start of the test the child runs.
func ReportChildPeak() {
	if os.Getenv(ChildEnv) == "" {
		return
	}
	if peak, err := PeakRSS(os.Getpid()); err == nil {
		fmt.Printf("\n%s%d\n", peakTag, peak)
	}
}

// PeakRSS is the peak resident size (VmHWM) of process pid, in bytes.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func reportedPeak(out string) int64 {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, peakTag); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
