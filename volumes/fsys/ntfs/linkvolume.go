package ntfs

import (
	"encoding/binary"
	"path"
	"strings"
)

// LinkVolume gives the volume a junction or absolute symlink points to, as Windows names it (a
// drive "D:" or "Volume{GUID}"), and the path on it (fsys.LinkVolumer).
func (f *FS) LinkVolume(name string) (volume, rel string, ok bool) {
	defer func() {
		if recover() != nil {
			volume, rel, ok = "", "", false
		}
	}()
	nd, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", "", false
	}
	rp := nd.ino.find(attrReparsePoint, "")
	if rp == nil {
		return "", "", false
	}
	v, err := f.attrValue(nd.ino.num, rp, 1<<16)
	if err != nil || len(v) < 16 {
		return "", "", false
	}
	hdr := 16
	switch binary.LittleEndian.Uint32(v) {
	case tagMountPoint:
	case tagSymlink:
		if len(v) < 20 || binary.LittleEndian.Uint32(v[16:])&1 != 0 {
			return "", "", false
		}
		hdr = 20
	default:
		return "", "", false
	}
	subOff, subLen := int(binary.LittleEndian.Uint16(v[8:])), int(binary.LittleEndian.Uint16(v[10:]))
	if buf := v[hdr:]; subOff+subLen <= len(buf) && subLen%2 == 0 {
		return splitVolume(utf16Path(buf[subOff : subOff+subLen]))
	}
	return "", "", false
}

// splitVolume splits a Windows absolute target (\??\D:\x, \??\Volume{GUID}\x) into its volume and
// the path on it.
func splitVolume(target string) (volume, rel string, ok bool) {
	t, ok := strings.CutPrefix(target, `\??\`)
	if !ok {
		return "", "", false
	}
	volume, rest, _ := strings.Cut(t, `\`)
	isDrive := len(volume) == 2 && volume[1] == ':' && (volume[0]|0x20) >= 'a' && (volume[0]|0x20) <= 'z'
	isGUID := len(volume) == len("Volume{00000000-0000-0000-0000-000000000000}") &&
		strings.EqualFold(volume[:7], "Volume{") && volume[len(volume)-1] == '}'
	if !isDrive && !isGUID {
		return "", "", false
	}
	rel = path.Clean("/" + strings.ReplaceAll(rest, `\`, "/"))[1:]
	if rel == "" {
		rel = "."
	}
	return volume, rel, true
}

// FoldPath finds p ignoring case through $UpCase, as Windows does when it follows a link
// (fsys.PathFolder).
func (f *FS) FoldPath(p string) (_ string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	nd, err := f.walkCase("lookup", p, true)
	if err != nil {
		return "", false
	}
	return path.Join(nd.dir, nd.name), true
}
