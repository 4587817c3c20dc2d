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
	case t == 0, t == fs.ModeDir:
	case fsType == "squashfs" && sqSpecial(t) != 0:
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
	slots := map[string]int64{} // fat32: folders with more entries than FAT counts
	if fsType == "fat32" {
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
	return kept, skipped, nil
}
