package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/memlimit"
	"github.com/vmdkmount/vmdkmount/internal/testfix"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/internal/hostile"
)

// Bounds every hostile case must stay within.
const (
	hostileCaseTimeout = 15 * time.Second // wall time for Open, OpenTree and the whole walk
	hostileCaseAlloc   = 32 << 20         // bytes allocated (TotalAlloc) by one case: the largest takes 8 MiB
	hostileMaxEntries  = 20000            // entries one walk may visit: the images hold about twenty
	hostileMaxDepth    = 64               // directory depth: the images are three levels deep
	hostileReadCap     = 1 << 20          // bytes read from one file
)

// hostileImage loads testdata/hostile/<name>.img.gz (made by testdata/hostile/make.sh).
func hostileImage(t testing.TB, name string) []byte {
	t.Helper()
	return testfix.Gunzip(t, "hostile", name+".img.gz")
}

// hostileFilesystems are the images of testdata/hostile: the same tree in every format.
var hostileFilesystems = []string{"ext4", "xfs", "ntfs", "fat", "exfat", "iso", "squashfs", "btrfs"}

// hostileFamilies lists the case families: each filesystem damaged field by field, partition tables,
// LVM metadata and LDM databases damaged likewise. A family's images are loaded only when it runs, so
// the suite holds one family's images at a time.
func hostileFamilies(t *testing.T) []func() []hostile.Case {
	check := func(cs []hostile.Case, err error) []hostile.Case {
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	var fams []func() []hostile.Case
	for _, kind := range hostileFilesystems {
		fams = append(fams, func() []hostile.Case { return check(hostile.FilesystemCases(kind, hostileImage(t, kind))) })
	}
	fams = append(fams,
		func() []hostile.Case {
			cs := check(hostile.MBRCases("ebrtiny.img", testfix.Image(t, "ebrtiny.img")))
			return append(cs, hostileCase("ebrloop.img/unchanged", testfix.Image(t, "ebrloop.img")))
		},
		func() []hostile.Case {
			return check(hostile.GPTCases("gpttiny.img", testfix.Image(t, "gpttiny.img"), 512))
		},
		func() []hostile.Case {
			return check(hostile.GPTCases("gpt4k.img", testfix.Image(t, "gpt4k.img"), 4096))
		},
		func() []hostile.Case {
			var lvm [][]byte
			for _, n := range []string{"lvm-d0.img", "lvm-d1.img", "lvm-d2.img"} {
				lvm = append(lvm, testfix.Image(t, n))
			}
			return check(hostile.LVMCases("lvm", lvm))
		},
		func() []hostile.Case { return ldmCases(t) })
	// Live snapshots with fsync'd files only in the ext4 journal or the XFS log, the journal damaged.
	for _, kind := range []string{"ext4-dirty", "xfs-dirty"} {
		fams = append(fams, func() []hostile.Case { return check(hostile.JournalCases(kind, hostileImage(t, kind))) })
	}
	return fams
}

// ldmCases damages a Windows simple volume's disk from the acceptance corpus, when present.
func ldmCases(t *testing.T) []hostile.Case {
	if _, err := exec.LookPath("xz"); err != nil || testfix.Corpus(t) == "" {
		t.Log("no LDM cases: the acceptance corpus or xz is absent")
		return nil
	}
	f, err := os.Open(filepath.Join(ldmDir(t), "ldm-2003r2-simple-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	disk, err := hostile.NewSparse(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := hostile.LDMCases("ldm-simple", disk)
	if err != nil {
		t.Fatal(err)
	}
	return append([]hostile.Case{{Name: "ldm-simple/unchanged", Disks: []*hostile.Image{disk}}}, cs...)
}

func hostileCase(name string, b []byte) hostile.Case {
	return hostile.Case{Name: name, Disks: []*hostile.Image{hostile.New(b)}}
}

// TestHostileVolumes opens every hostile case as a set of in-memory disks, opens every volume's tree and
// walks it reading every file: each case must end within its time and allocation bounds with errors,
// never a panic, a hang or a host file's content. Every case is a subtest, so -v names them all.
func TestHostileVolumes(t *testing.T) {
	defer memlimit.ReportChildPeak()
	host, _ := os.ReadFile("/etc/passwd")
	// Readers warn about every damaged structure they work around; thousands of cases would flood the log.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	var stats hostileStats
	start := time.Now()
	for _, family := range hostileFamilies(t) {
		for _, c := range family() {
			if stats.hung.Load() {
				t.Fatal("stopping after a hang: the cases after it were not tried")
			}
			t.Run(c.Name, func(t *testing.T) { runHostileCase(t, c, host, &stats) })
		}
	}
	t.Logf("%d hostile cases in %v: %d volumes opened, %d trees opened, %d entries walked; most allocated by one case: %d MiB (%s)",
		stats.tried, time.Since(start).Round(time.Millisecond), stats.volumes, stats.trees, stats.entries,
		stats.maxAlloc>>20, stats.maxAllocCase)
	if stats.trees < 100 {
		t.Errorf("only %d trees opened: the damage stops everything at the first check", stats.trees)
	}
}

type hostileStats struct {
	tried, volumes, trees, entries int
	maxAlloc                       uint64
	maxAllocCase                   string
	hung                           atomic.Bool
}

func runHostileCase(t *testing.T, c hostile.Case, host []byte, stats *hostileStats) {
	stats.tried++
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	type result struct {
		volumes, trees, entries int
		problems                []string
		panicked                any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panicked = fmt.Sprintf("%v\n%s", p, stack())
			}
			done <- r
		}()
		var disks []Disk
		for _, d := range c.Disks {
			disks = append(disks, d)
		}
		set, err := Open(disks, Options{})
		if err != nil {
			checkError(&r.problems, "Open", err)
			return
		}
		for _, v := range set.All() {
			for _, e := range v.Extents {
				if e.Disk == -1 && v.Incomplete {
					continue // a member disk not in the set
				}
				if e.Offset < 0 || e.Size < 0 || e.Disk < 0 || e.Disk >= len(disks) || e.Offset+e.Size > disks[e.Disk].Size() {
					r.problems = append(r.problems, fmt.Sprintf("volume %s: extent %+v outside its disk", v.ID, e))
				}
			}
		}
		for _, v := range set.Volumes() {
			r.volumes++
			if !v.HasTree() {
				continue
			}
			tree, err := v.OpenTree(TreeOptions{})
			if err != nil {
				checkError(&r.problems, "OpenTree "+v.ID, err)
				continue
			}
			r.trees++
			if st := State(tree); c.States != nil && !slices.Contains(c.States, st.State) {
				r.problems = append(r.problems, fmt.Sprintf("volume %s: state %q (%s), want one of %q", v.ID, st.State, st.Detail, c.States))
			}
			n, probs := walkHostile(tree, c, host)
			r.entries += n
			r.problems = append(r.problems, probs...)
			tree.Close()
		}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(hostileCaseTimeout):
		stats.hung.Store(true)
		t.Fatalf("%s: no result after %v (a hang or a loop)", c.Name, hostileCaseTimeout)
	}
	runtime.ReadMemStats(&after)
	if r.panicked != nil {
		t.Fatalf("%s: panic: %v", c.Name, r.panicked)
	}
	for _, p := range r.problems {
		t.Errorf("%s: %s", c.Name, p)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > hostileCaseAlloc {
		t.Errorf("%s: allocated %d MiB (bound %d MiB)", c.Name, alloc>>20, hostileCaseAlloc>>20)
	}
	if alloc > stats.maxAlloc {
		stats.maxAlloc, stats.maxAllocCase = alloc, c.Name
	}
	stats.volumes += r.volumes
	stats.trees += r.trees
	stats.entries += r.entries
}

func stack() string {
	b := make([]byte, 16<<10)
	return string(b[:runtime.Stack(b, false)])
}

// checkError accepts an error that says something: a nil-wrapped or empty error is a problem.
func checkError(problems *[]string, op string, err error) {
	if strings.TrimSpace(err.Error()) == "" {
		*problems = append(*problems, op+": error without a message")
	}
}

// bigContent is big.bin as make.sh writes it: `yes "a line of the big file" | head -c 77777`.
var bigContent = func() []byte {
	line := []byte("a line of the big file\n")
	return bytes.Repeat(line, hostile.BigFileSize/len(line)+1)[:hostile.BigFileSize]
}()

const guestPasswd = "guest passwd: not the host file\n"

// walkHostile walks tree reading every file and following every link, and returns the entries it saw
// and what went wrong that is not an error return: host content, unbounded walks, wrong bytes.
func walkHostile(tree fsys.FS, c hostile.Case, host []byte) (int, []string) {
	var probs []string
	hostMark := host[:min(len(host), 48)]
	checkContent := func(p string, b []byte) {
		if len(hostMark) >= 16 && bytes.Contains(b, hostMark) {
			probs = append(probs, fmt.Sprintf("%s: returned the host's /etc/passwd", p))
		}
	}
	entries := 0
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		entries++
		if entries > hostileMaxEntries {
			return fmt.Errorf("more than %d entries: the walk does not end", hostileMaxEntries)
		}
		if strings.Count(p, "/") >= hostileMaxDepth {
			return fmt.Errorf("%s: deeper than %d levels: a directory loop was not detected", p, hostileMaxDepth)
		}
		if err != nil || d == nil {
			return nil // a damaged entry: its error is the expected outcome
		}
		if fi, err := d.Info(); err == nil && fi.Size() < 0 {
			probs = append(probs, fmt.Sprintf("%s: negative size %d", p, fi.Size()))
		}
		if fi, err := tree.Lstat(p); err == nil && fi.Size() < 0 {
			probs = append(probs, fmt.Sprintf("Lstat %s: negative size %d", p, fi.Size()))
		}
		// What a FUSE layer also asks of every entry: its extended attributes.
		if names, err := tree.ListXattr(p); err == nil {
			for _, n := range names[:min(len(names), 64)] {
				tree.GetXattr(p, n)
			}
		}
		tree.GetXattr(p, "user.absent")
		switch {
		case d.IsDir():
			probs = append(probs, readDirPaged(tree, p)...)
		case d.Type()&fs.ModeSymlink != 0:
			tree.ReadLink(p)
			tree.Stat(p)
			if r, err := fsys.Resolve(tree, p, true); err == nil && strings.HasPrefix(r, "/") {
				probs = append(probs, fmt.Sprintf("%s resolved outside the tree: %s", p, r))
			}
			b, err := readCapped(tree, p)
			checkContent(p, b)
			if errors.Is(err, errNegativeSize) {
				probs = append(probs, err.Error())
			}
		case d.Type().IsRegular():
			b, err := readCapped(tree, p)
			checkContent(p, b)
			if errors.Is(err, errNegativeSize) {
				probs = append(probs, err.Error())
			}
			base := path.Base(p)
			if c.BigSize && (base == "big.bin" || base == "big.lnk") {
				if n := min(len(b), len(bigContent)); !bytes.Equal(b[:n], bigContent[:n]) {
					probs = append(probs, fmt.Sprintf("%s: the first %d bytes differ from the file's content", p, n))
				}
			}
		}
		return nil
	})
	if err != nil {
		probs = append(probs, "walk: "+err.Error())
	}
	if u := tree.Usage(); u.Blocks < u.FreeBlocks || u.Files < u.FreeFiles && u.Files != 0 || u.BlockSize == 0 && u.Blocks != 0 {
		probs = append(probs, fmt.Sprintf("usage: %d of %d blocks of %d bytes and %d of %d files free",
			u.FreeBlocks, u.Blocks, u.BlockSize, u.FreeFiles, u.Files))
	}
	if strings.HasSuffix(c.Name, "/unchanged") {
		probs = append(probs, checkUnchanged(tree)...)
	}
	return entries, probs
}

// readDirPaged lists directory p through an open handle two entries at a time, as a FUSE readdir does,
// and reports a listing that does not end.
func readDirPaged(tree fsys.FS, p string) []string {
	f, err := tree.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		return []string{p + ": an opened directory cannot be listed"}
	}
	for n := 0; n <= hostileMaxEntries; n += 2 {
		if _, err := d.ReadDir(2); err != nil {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: paged listing did not end after %d entries", p, hostileMaxEntries)}
}

var errNegativeSize = errors.New("an open file's size is negative")

// readCapped reads name (following links) through Read and ReadAt, at most hostileReadCap bytes, and
// probes offsets at and past the stated size.
func readCapped(tree fsys.FS, name string) ([]byte, error) {
	f, err := tree.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, nil
	} else if err == nil && fi.Size() < 0 {
		return nil, fmt.Errorf("%s: %w (%d)", name, errNegativeSize, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, hostileReadCap))
	if ra, ok := f.(io.ReaderAt); ok {
		buf := make([]byte, 4096)
		if fi, err := f.Stat(); err == nil {
			for _, off := range []int64{fi.Size() - 1, fi.Size() / 2, fi.Size(), 1 << 62, 1<<63 - 1} {
				if off >= 0 {
					ra.ReadAt(buf, off)
				}
			}
		}
	}
	return b, err
}

// checkUnchanged holds an undamaged image to what make.sh put in it: the guest's links resolve inside
// the guest (to its own /etc/passwd), and big.bin reads whole.
func checkUnchanged(tree fsys.FS) []string {
	var probs []string
	if b, err := fs.ReadFile(tree, "big.bin"); err == nil && !bytes.Equal(b, bigContent) {
		probs = append(probs, fmt.Sprintf("big.bin: %d bytes that are not the file's", len(b)))
	}
	// The dirty images' fsync'd files, only in the journal or log: the replay must show them all.
	if _, err := tree.Lstat("journal"); err == nil {
		for i := range 8 {
			name, want := fmt.Sprintf("journal/f%d", i), fmt.Sprintf("journalled file %d\n", i)
			if b, err := fs.ReadFile(tree, name); err != nil || string(b) != want {
				probs = append(probs, fmt.Sprintf("%s: read %q, %v; want %q as the kernel's replay shows it", name, b, err, want))
			}
		}
	}
	if _, err := tree.Lstat("passwd-abs"); err != nil {
		return probs // a format without symlinks (FAT, exFAT), or not this kind of image
	}
	for _, link := range []string{"passwd-abs", "passwd-rel", "etc-abs/passwd"} {
		b, err := fs.ReadFile(tree, link)
		if err != nil || string(b) != guestPasswd {
			probs = append(probs, fmt.Sprintf("%s: read %q, %v; want the guest's /etc/passwd", link, b, err))
		}
		if r, err := fsys.Resolve(tree, link, true); err != nil || r != "etc/passwd" {
			probs = append(probs, fmt.Sprintf("%s resolves to %q, %v; want etc/passwd", link, r, err))
		}
		if fi, err := tree.Stat(link); err != nil || fi.Size() != int64(len(guestPasswd)) {
			probs = append(probs, fmt.Sprintf("Stat %s: %v", link, err))
		}
	}
	if _, err := tree.Open("dev-sda"); !errors.Is(err, fs.ErrNotExist) {
		probs = append(probs, fmt.Sprintf("dev-sda (a link to /dev/sda, absent in the guest): %v, want not-exist", err))
	}
	if _, err := tree.Open("loop-a"); !errors.Is(err, fsys.ErrLoop) {
		probs = append(probs, fmt.Sprintf("loop-a (a two-link loop): %v, want %v", err, fsys.ErrLoop))
	}
	return probs
}

// TestHostileFanOut re-points, on every level of a 16-deep chain of directories, an empty sibling at
// the next level's directory: no loop, but 2^16 paths out of 32 directories, and a walk that doubles
// with every level. The kernel shows a directory under one name only, and so must every reader: listed
// under both names, a fs.WalkDir at 16 levels allocated 62 MiB to 944 MiB.
func TestHostileFanOut(t *testing.T) {
	host, _ := os.ReadFile("/etc/passwd")
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	var stats hostileStats
	for _, kind := range hostileFilesystems {
		cases, err := hostile.FanCases(kind, hostileImage(t, "fan-"+kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) { runHostileCase(t, c, host, &stats) })
		}
	}
}

// hostileMemoryLimit bounds the whole suite's process: the images themselves take about 150 MiB.
const hostileMemoryLimit = 512 << 20

// TestHostileVolumesUnderMemoryLimit runs TestHostileVolumes again in a child process held to
// hostileMemoryLimit: no hostile image may drive an allocation that the per-case accounting misses
// (memory held across cases, or outside the Go heap).
func TestHostileVolumesUnderMemoryLimit(t *testing.T) {
	memlimit.RunUnderMemoryLimit(t, "TestHostileVolumes", hostileMemoryLimit, 5*time.Minute)
}

// FuzzHostileTree patches one of the hostile images (a few bytes at an offset, and a cut) and walks
// every tree of the result with the suite's checks: no panic, a walk that ends, no host file's
// content. The input is the patch, not the image, so each run mutates a real filesystem structure.
func FuzzHostileTree(f *testing.F) {
	var images [][]byte
	// The dirty images too: patches then land in live journals and logs that are replayed.
	for _, kind := range append(hostileFilesystems, "ext4-dirty", "xfs-dirty") {
		images = append(images, hostileImage(f, kind))
	}
	for i := range images {
		f.Add(uint8(i), uint32(1024), []byte{0xff, 0xff, 0xff, 0xff}, uint32(0))
		f.Add(uint8(i), uint32(32768+156), []byte{0}, uint32(len(images[i])/2))
	}
	host, _ := os.ReadFile("/etc/passwd")
	f.Fuzz(func(t *testing.T, which uint8, off uint32, patch []byte, cut uint32) {
		base := hostile.New(images[int(which)%len(images)])
		im := base.Clone()
		im.Put(int64(off)%base.Size(), patch[:min(len(patch), 64)])
		if cut != 0 {
			im = im.Truncated(int64(cut) % base.Size())
		}
		set, err := Open([]Disk{im}, Options{})
		if err != nil {
			return
		}
		for _, v := range set.Volumes() {
			if !v.HasTree() {
				continue
			}
			tree, err := v.OpenTree(TreeOptions{})
			if err != nil {
				continue
			}
			_, probs := walkHostile(tree, hostile.Case{Name: "fuzz"}, host)
			tree.Close()
			for _, p := range probs {
				t.Error(p)
			}
		}
	})
}
