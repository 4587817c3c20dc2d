package treecmp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// absentXattr is a name no test image carries: GetXattr must report ErrNoXattr for it.
const absentXattr = "user.treecmp.absent"

func (c *comparer) xattrs(name string) {
	if c.opt.Ignore&Xattr != 0 {
		return
	}
	hostPath := c.hostPath(name)
	hostNames, err := hostListXattr(hostPath)
	if err != nil {
		c.add(name, Error, "-", "host listxattr: "+err.Error())
		return
	}
	hostVals := map[string][]byte{}
	for _, hn := range hostNames {
		on := hn
		if c.opt.MapXattr != nil {
			var keep bool
			if on, keep = c.opt.MapXattr(hn); !keep {
				continue
			}
		}
		v, err := hostGetXattr(hostPath, hn)
		if err != nil {
			c.add(name, Error, "-", "host getxattr "+hn+": "+err.Error())
			continue
		}
		hostVals[on] = v
	}
	ourNames, err := c.ours.ListXattr(name)
	if err != nil {
		c.add(name, Error, "listxattr: "+err.Error(), "ok")
		return
	}
	if !sort.StringsAreSorted(ourNames) {
		c.add(name, Xattr, fmt.Sprintf("ListXattr not sorted: %q", ourNames), "sorted")
	}
	seen := map[string]bool{}
	for _, on := range ourNames {
		seen[on] = true
		hv, ok := hostVals[on]
		if !ok {
			c.add(name, Xattr, on+" present", "absent")
			continue
		}
		ov, err := c.ours.GetXattr(name, on)
		if err != nil {
			c.add(name, Error, "getxattr "+on+": "+err.Error(), "ok")
			continue
		}
		if !bytes.Equal(ov, hv) {
			c.add(name, Xattr, fmt.Sprintf("%s=%q", on, ov), fmt.Sprintf("%s=%q", on, hv))
		}
	}
	var missing []string
	for hn := range hostVals {
		if !seen[hn] {
			missing = append(missing, hn)
		}
	}
	sort.Strings(missing)
	for _, hn := range missing {
		c.add(name, Xattr, hn+" absent", "present")
	}
	if _, ok := hostVals[absentXattr]; !ok {
		if _, err := c.ours.GetXattr(name, absentXattr); !errors.Is(err, fsys.ErrNoXattr) {
			c.add(name, Xattr, fmt.Sprintf("GetXattr(%s) error %v", absentXattr, err), "ErrNoXattr")
		}
	}
}

func hostListXattr(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	for {
		if err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				return nil, nil
			}
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		var n int
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) { // grew meanwhile
			size, err = unix.Llistxattr(p, nil)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		sort.Strings(names)
		return names, nil
	}
}

func hostGetXattr(p, attr string) ([]byte, error) {
	size, err := unix.Lgetxattr(p, attr, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Lgetxattr(p, attr, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// content compares a regular file's bytes: a sequential read, positional reads at chosen offsets
// (run concurrently, as a FUSE server would), and a Seek.
func (c *comparer) content(name string, size int64) {
	if c.opt.Ignore&Content != 0 {
		return
	}
	hf, err := os.Open(c.hostPath(name))
	if err != nil {
		c.add(name, Error, "-", "host open: "+err.Error())
		return
	}
	defer hf.Close()
	f, err := c.ours.Open(name)
	if err != nil {
		c.add(name, Error, "open: "+err.Error(), "ok")
		return
	}
	defer f.Close()
	hostSum, hostN, err := hashAll(hf)
	if err != nil {
		c.add(name, Error, "-", "host read: "+err.Error())
		return
	}
	ourSum, ourN, err := hashAll(f)
	if err != nil {
		c.add(name, Content, "read error after "+fmt.Sprint(ourN)+" bytes: "+err.Error(), "read ok")
		return
	}
	if ourSum != hostSum || ourN != hostN {
		c.add(name, Content, fmt.Sprintf("sha256 %s (%d bytes)", ourSum, ourN), fmt.Sprintf("sha256 %s (%d bytes)", hostSum, hostN))
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		c.add(name, Content, "file has no ReadAt", "ReadAt")
		return
	}
	c.positional(name, ra, hf, size)
	if sk, ok := f.(io.Seeker); ok {
		c.seekRead(name, f, sk, hf, size)
	} else {
		c.add(name, Content, "file has no Seek", "Seek")
	}
}

func hashAll(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// probeOffsets picks offsets around block and page boundaries, the middle, the end and past the end.
func probeOffsets(size int64) []int64 {
	cands := []int64{0, 1, 511, 1023, 4095, 4096, 65535, 65536, 1 << 20, size / 3, size / 2, size - 4097, size - 1, size, size + 100}
	seen := map[int64]bool{}
	var out []int64
	for _, o := range cands {
		if o >= 0 && o <= size+100 && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

func (c *comparer) positional(name string, ra io.ReaderAt, hf *os.File, size int64) {
	const probe = 9000 // spans at least two 4 KiB blocks
	offs := probeOffsets(size)
	results := make([]string, len(offs))
	var wg sync.WaitGroup
	for i, off := range offs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = compareAt(ra, hf, off, probe)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r != "" {
			c.add(name, Content, fmt.Sprintf("ReadAt(off=%d): %s", offs[i], r), "host pread")
		}
	}
}

// compareAt returns "" when a positional read agrees with the host, else what went wrong.
func compareAt(ra io.ReaderAt, hf *os.File, off int64, n int) string {
	want := make([]byte, n)
	wn, werr := hf.ReadAt(want, off)
	if werr != nil && werr != io.EOF {
		return "host: " + werr.Error()
	}
	got := make([]byte, n)
	gn, gerr := ra.ReadAt(got, off)
	if gn != wn {
		return fmt.Sprintf("%d bytes (err %v), host %d", gn, gerr, wn)
	}
	if gn < n && gerr == nil {
		return fmt.Sprintf("short read of %d bytes without an error", gn)
	}
	if gerr != nil && gerr != io.EOF {
		return "error " + gerr.Error()
	}
	if i := firstDiff(got[:gn], want[:wn]); i >= 0 {
		return fmt.Sprintf("bytes differ from offset %d", off+int64(i))
	}
	return ""
}

func (c *comparer) seekRead(name string, f io.Reader, sk io.Seeker, hf *os.File, size int64) {
	off := size / 2
	pos, err := sk.Seek(off, io.SeekStart)
	if err != nil || pos != off {
		c.add(name, Content, fmt.Sprintf("Seek(%d) = %d, %v", off, pos, err), off)
		return
	}
	got, err := io.ReadAll(io.LimitReader(f, 5000))
	if err != nil {
		c.add(name, Content, "read after Seek: "+err.Error(), "ok")
		return
	}
	want := make([]byte, 5000)
	wn, _ := hf.ReadAt(want, off)
	if i := firstDiff(got, want[:wn]); i >= 0 || len(got) != wn {
		c.add(name, Content, fmt.Sprintf("after Seek(%d): %d bytes, differ at %d", off, len(got), i), fmt.Sprintf("%d bytes", wn))
	}
	if _, err := sk.Seek(-1, io.SeekStart); err == nil {
		c.add(name, Content, "Seek(-1) accepted", "error")
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
