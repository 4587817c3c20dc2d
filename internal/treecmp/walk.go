package treecmp

import (
	"io/fs"
	"os"
	"path"
	"sort"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// entry compares one path present on both sides and, for directories, everything below it.
func (c *comparer) entry(name string) {
	if c.full() {
		return
	}
	var hst unix.Stat_t
	if err := unix.Lstat(c.hostPath(name), &hst); err != nil {
		c.add(name, Error, "-", "host lstat: "+err.Error())
		return
	}
	fi, err := c.ours.Lstat(name)
	if err != nil {
		c.add(name, Error, "lstat: "+err.Error(), "ok")
		return
	}
	st := fsys.StatOf(fi)
	if st == nil {
		c.add(name, Error, "Sys() is not *fsys.Stat", "ok")
		return
	}
	c.hostIno[name] = inodeKey{hst.Dev, hst.Ino}
	c.oursIno[name] = st.Ino
	c.metadata(name, fi, st, &hst)
	c.xattrs(name)
	switch hst.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		c.symlink(name)
	case unix.S_IFREG:
		if st.Mode&fsys.S_IFMT == fsys.S_IFREG {
			c.content(name, hst.Size)
		}
	case unix.S_IFDIR:
		if st.Mode&fsys.S_IFMT == fsys.S_IFDIR {
			c.directory(name)
		}
	}
}

// directory compares the two listings and recurses into names both sides have.
func (c *comparer) directory(name string) {
	hostEnts, err := os.ReadDir(c.hostPath(name))
	if err != nil {
		c.add(name, Error, "-", "host readdir: "+err.Error())
		return
	}
	ourEnts, err := c.ours.ReadDir(name)
	if err != nil {
		c.add(name, Error, "readdir: "+err.Error(), "ok")
		return
	}
	ourNames := map[string]fs.DirEntry{}
	for i, e := range ourEnts {
		child := path.Join(name, e.Name())
		if i > 0 && ourEnts[i-1].Name() >= e.Name() {
			c.add(child, Listing, "ReadDir not sorted or has a duplicate after "+ourEnts[i-1].Name(), "sorted")
		}
		ourNames[e.Name()] = e
	}
	hostNames := map[string]bool{}
	for _, e := range hostEnts {
		hostNames[e.Name()] = true
	}
	var both []string
	for _, e := range hostEnts {
		child := path.Join(name, e.Name())
		if c.ignored(child) {
			continue
		}
		if _, ok := ourNames[e.Name()]; !ok {
			c.add(child, Presence, "absent", "present")
			continue
		}
		both = append(both, e.Name())
	}
	for _, e := range ourEnts {
		child := path.Join(name, e.Name())
		if !hostNames[e.Name()] && !c.ignored(child) {
			c.add(child, Presence, "present", "absent")
		}
	}
	sort.Strings(both)
	for _, n := range both {
		child := path.Join(name, n)
		c.entryType(child, ourNames[n])
		c.entry(child)
	}
}

// entryType checks that a DirEntry's type agrees with Lstat on our side.
func (c *comparer) entryType(name string, e fs.DirEntry) {
	fi, err := c.ours.Lstat(name)
	if err != nil {
		return // reported by entry
	}
	if e.Type() != fi.Mode().Type() {
		c.add(name, Listing, "DirEntry type "+e.Type().String(), "Lstat type "+fi.Mode().Type().String())
	}
	if e.IsDir() != fi.IsDir() {
		c.add(name, Listing, "DirEntry IsDir mismatch", "Lstat IsDir")
	}
}

func (c *comparer) symlink(name string) {
	host, err := os.Readlink(c.hostPath(name))
	if err != nil {
		c.add(name, Error, "-", "host readlink: "+err.Error())
		return
	}
	ours, err := c.ours.ReadLink(name)
	if err != nil {
		c.add(name, Error, "readlink: "+err.Error(), "ok")
		return
	}
	if ours != host {
		c.add(name, Target, quote(ours), quote(host))
	}
}

// checkLinks verifies that paths sharing an inode on one side share one on the other.
func (c *comparer) checkLinks() {
	if c.opt.Ignore&Links != 0 {
		return
	}
	hostGroups := map[inodeKey][]string{}
	ourGroups := map[uint64][]string{}
	for p, k := range c.hostIno {
		hostGroups[k] = append(hostGroups[k], p)
	}
	for p, k := range c.oursIno {
		ourGroups[k] = append(ourGroups[k], p)
	}
	// Sort each group once, and compare each pair of groups once: a file with thousands of links must not
	// cost thousands of sorts.
	for _, g := range hostGroups {
		sort.Strings(g)
	}
	for _, g := range ourGroups {
		sort.Strings(g)
	}
	var paths []string
	for p := range c.hostIno {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	same := map[[2]string]bool{}
	for _, p := range paths {
		hg := hostGroups[c.hostIno[p]]
		og := ourGroups[c.oursIno[p]]
		var key [2]string
		if len(hg) > 0 && len(og) > 0 {
			key = [2]string{hg[0], og[0]}
		}
		eq, known := same[key]
		if !known {
			eq = equalStrings(hg, og)
			same[key] = eq
		}
		if !eq {
			c.add(p, Links, og, hg)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
