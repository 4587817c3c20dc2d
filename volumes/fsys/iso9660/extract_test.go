package iso9660

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// TestMatchesXorrisoExtraction compares every fixture with what libisofs (through xorriso) extracts
// from it: names (Rock Ridge, Joliet or plain, whichever xorriso picks), types, permissions, owners,
// sizes, mtimes, symlink targets, device numbers and contents.
func TestMatchesXorrisoExtraction(t *testing.T) {
	needTool(t, "xorriso")
	for _, tc := range []struct {
		name   string
		rock   bool
		ignore treecmp.Field
		skip   func(string) bool
		// hostWrong names diffs where xorriso's side is known to be wrong; TestMatchesSourceTree checks
		// those entries against the source tree instead.
		hostWrong func(treecmp.Diff) bool
		// noDevices: xorriso cannot restore this image's devices (it rejects the PN entries genisoimage
		// writes), so extract without them; TestMatchesSourceTree covers them.
		noDevices bool
	}{
		{name: "tree-xorriso", rock: true},
		// zisofs-compressed files: xorriso inflates them on extraction, as the kernel does on reading.
		{name: "small-zisofs", rock: true},
		// An El Torito image with one relocated directory.
		{name: "small-rr", rock: true, noDevices: true, skip: func(p string) bool { return p == "rr_moved" }},
		// libisofs drops genisoimage's rr_moved folder after resolving the relocations.
		// libisofs reads genisoimage's 7-byte date for 2038-01-19 one day late.
		{name: "tree-genisoimage", rock: true, noDevices: true, skip: func(p string) bool { return p == "rr_moved" },
			hostWrong: func(d treecmp.Diff) bool { return d.Path == "modes/owned" && d.Field == treecmp.Mtime }},
		// (tree-rrip112 comes from the same writer as tree-xorriso; TestMatchesSourceTree covers it.)
		// Without Rock Ridge, the kernel (and we) give r-x for everyone; xorriso extracts r-x for the
		// user only, so permissions are not compared here.
		{name: "small-joliet", ignore: treecmp.Perm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ours, file := openFixture(t, tc.name)
			out := filepath.Join(t.TempDir(), "x")
			mode := "device_files:o_excl_off"
			if tc.noDevices {
				mode = "on:o_excl_off"
			}
			args := []string{"-report_about", "SORRY", "-indev", file, "-osirrox", mode, "-extract", "/", out}
			if !tc.rock {
				args = append([]string{"-read_fs", "norock"}, args...)
			}
			if b, err := exec.Command("xorriso", args...).CombinedOutput(); err != nil {
				t.Fatalf("xorriso extract: %v: %s", err, b)
			}
			ignore := tc.ignore | treecmp.Blocks | treecmp.DirSize | treecmp.Xattr | treecmp.Atime |
				treecmp.Ctime | treecmp.Btime | treecmp.Nlink | treecmp.Links
			if !tc.rock {
				ignore |= treecmp.Uid | treecmp.Gid // extraction gives files to the extracting user
			}
			diffs := treecmp.Compare(ours, out, treecmp.Options{Ignore: ignore, TimeGranularity: time.Second,
				IgnorePath: tc.skip})
			for _, d := range diffs {
				if tc.hostWrong != nil && tc.hostWrong(d) || extractionLimit(t, ours, d, tc.noDevices) {
					continue
				}
				t.Error(d)
			}
		})
	}
}

// extractionLimit reports differences that come from what extraction can restore, not from reading:
// xorriso sets no times on symlinks it creates and does not create sockets.
func extractionLimit(t *testing.T, ours fsys.FS, d treecmp.Diff, noDevices bool) bool {
	fi, err := ours.Lstat(d.Path)
	if err != nil {
		return false
	}
	mode := fsys.StatOf(fi).Mode & fsys.S_IFMT
	switch {
	case d.Field == treecmp.Mtime && mode == fsys.S_IFLNK:
		return true
	case d.Field == treecmp.Presence && mode == fsys.S_IFSOCK && d.Host == "absent":
		t.Logf("%s: socket not extracted by xorriso", d.Path)
		return true
	case d.Field == treecmp.Presence && noDevices && (mode == fsys.S_IFCHR || mode == fsys.S_IFBLK) && d.Host == "absent":
		return true
	}
	return false
}
