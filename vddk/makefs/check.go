package makefs

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// fat32MaxFile is the largest file FAT32 holds: its size field is 32 bits.
const fat32MaxFile = 1<<32 - 1

// isoMaxFile: go-diskfs writes one extent per file, whose length field is 32 bits.
const isoMaxFile = 1<<32 - 1

// sqMaxFile: go-diskfs v1.9.4 writes an inode larger than one 8 KiB metadata block into a block of its
// own size, which no reader accepts. An extended file inode is 56 bytes plus 4 per 128 KiB data block.
const sqMaxFile = (sqMeta - 56) / 4 * 128 << 10

// sqMaxListing: go-diskfs v1.9.4 may give a folder a basic inode, whose listing size is 16 bits, and
// truncates a larger size into it; keep a margin for the headers it adds.
const sqMaxListing = 60000

// unsupported says why fsType cannot hold e ("" when it can). seen holds the names already kept in
// each folder, folded as the filesystem compares them.
func unsupported(fsType string, e entry, seen map[string]bool) string {
	name := path.Base(e.rel)
	t := e.mode.Type()
	switch {
	case t&fs.ModeSymlink != 0:
		if fsType == "fat32" {
			return "FAT32 has no symbolic links"
		}
		if fsType == "squashfs" && e.dangling {
			// go-diskfs v1.9.4 lists the xattrs of a symlink's target and fails when there is none.
			return "dangling symbolic link (its target is not in the tree), which the squashfs writer cannot store"
		}
	case t == 0, t == fs.ModeDir:
	default:
		return fmt.Sprintf("special file (%s) the %s writer does not create", t, fsType)
	}
	key := path.Dir(e.rel) + "/" + name
	switch fsType {
	case "fat32":
		if n := utf16Len(name); n > 255 {
			return fmt.Sprintf("name of %d UTF-16 units, FAT32 holds 255", n)
		}
		if i := strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) }); i >= 0 {
			return fmt.Sprintf("character %q is not allowed in a FAT32 name", name[i:i+1])
		}
		if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
			return "FAT32 names cannot end in a dot or a space"
		}
		if e.mode.IsRegular() && e.size > fat32MaxFile {
			return fmt.Sprintf("%d bytes, FAT32 holds files up to 4 GiB - 1", e.size)
		}
		key = strings.ToUpper(key) // FAT compares names without case
	case "iso9660":
		if len(name) > 255 {
			return fmt.Sprintf("name of %d bytes, Rock Ridge holds 255", len(name))
		}
		if e.mode.IsRegular() && e.size > isoMaxFile {
			return fmt.Sprintf("%d bytes, the ISO9660 writer holds files up to 4 GiB - 1", e.size)
		}
	case "squashfs":
		if len(name) > 256 {
			return fmt.Sprintf("name of %d bytes, squashfs holds 256", len(name))
		}
		if e.mode.IsRegular() && e.size > sqMaxFile {
			return fmt.Sprintf("%d bytes, the squashfs writer (go-diskfs v1.9.4) holds files up to %d", e.size, int64(sqMaxFile))
		}
	}
	if seen[key] {
		return "another name in the folder differs from it only in case"
	}
	seen[key] = true
	return ""
}

// filter splits entries into those fsType holds and those it cannot; without skip the first it cannot
// hold is an error naming it. Everything under a left-out folder is left out with it.
func filter(fsType string, entries []entry, skip bool) (kept []entry, skipped []Skipped, err error) {
	seen := map[string]bool{}
	big := map[string]int{}     // squashfs: folders whose listing passes what go-diskfs can store
	slots := map[string]int64{} // fat32: folders with more entries than FAT counts
	switch fsType {
	case "squashfs":
		for _, e := range entries {
			big[path.Dir(e.rel)] += 8 + 2 + len(path.Base(e.rel)) // entry, name, and room for headers
		}
	case "fat32":
		for _, e := range entries {
			_, short := fatExactShort(path.Base(e.rel))
			slots[path.Dir(e.rel)] += fatSlots(path.Base(e.rel), !short)
		}
	}
	var gone []string // left-out folders, as "rel/" prefixes
	for _, e := range entries {
		under := false
		for _, g := range gone {
			if strings.HasPrefix(e.rel, g) {
				under = true
				break
			}
		}
		if under {
			continue
		}
		why := unsupported(fsType, e, seen)
		if n := big[e.rel]; why == "" && e.mode.IsDir() && n > sqMaxListing {
			why = fmt.Sprintf("folder whose listing takes about %d bytes; the squashfs writer (go-diskfs v1.9.4) "+
				"stores %d (about 2,000 names)", n, sqMaxListing)
		}
		if n := slots[e.rel] + 2; why == "" && e.mode.IsDir() && n > fatMaxSlots { // with "." and ".."
			why = fmt.Sprintf("folder whose names take %d entries, FAT32 holds %d in a folder", n, fatMaxSlots)
		}
		if why == "" {
			kept = append(kept, e)
			continue
		}
		if !skip {
			return nil, nil, fmt.Errorf("%s: %s: %w", e.rel, why, ErrUnsupported)
		}
		skipped = append(skipped, Skipped{Path: e.rel, Reason: why})
		if e.mode.IsDir() {
			gone = append(gone, e.rel+"/")
		}
	}
	if fsType == "squashfs" {
		return dropBrokenLinks(kept, skipped, skip)
	}
	return kept, skipped, nil
}

// dropBrokenLinks: go-diskfs follows each symlink in its workspace, so one whose relative target was
// left out (or is a link that is) cannot be stored either. Repeats until no link changes.
func dropBrokenLinks(kept []entry, skipped []Skipped, skip bool) ([]entry, []Skipped, error) {
	for changed := true; changed; {
		changed = false
		byPath := make(map[string]*entry, len(kept))
		for i := range kept {
			byPath[kept[i].rel] = &kept[i]
		}
		ok := func(e entry) bool {
			for range 40 {
				if e.mode&fs.ModeSymlink == 0 || strings.HasPrefix(e.target, "/") {
					return true
				}
				p := path.Join(path.Dir(e.rel), e.target)
				t, found := byPath[p]
				if !found {
					return false
				}
				e = *t
			}
			return false
		}
		out := kept[:0:0]
		for _, e := range kept {
			if ok(e) {
				out = append(out, e)
				continue
			}
			if !skip {
				return nil, nil, fmt.Errorf("%s: symbolic link to %s, which is not in the image: %w", e.rel, e.target, ErrUnsupported)
			}
			skipped = append(skipped, Skipped{Path: e.rel, Reason: "symbolic link to " + e.target + ", which is not in the image"})
			changed = true
		}
		kept = out
	}
	return kept, skipped, nil
}
