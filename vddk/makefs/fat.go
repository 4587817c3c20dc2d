package makefs

// Our own FAT32 writer. go-diskfs v1.9.4's writer re-reads the parent folder for every file it adds,
// scans the FAT from cluster 2 for every allocation and writes both whole FATs after each one, so a
// tree of N files costs O(N x folder size + N x FAT size): /usr/share/zoneinfo took ~16x longer than
// mkfs.vfat + mcopy. The whole tree is known before the first byte is written, so everything is laid out
// at once: every folder and file gets one contiguous run of clusters in walk order, the FATs are those
// runs' chains, and the data region is written front to back as one stream.

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

const (
	fatSector   = 512
	fatReserved = 32 // reserved sectors before the FATs, as mkfs.fat leaves
	fatBackup   = 6  // sector of the boot sector's copy (the FSInfo copy follows it)
	// fatMaxSlots bounds a folder's 32-byte entries: FAT numbers them in 16 bits.
	fatMaxSlots = 65536
	fatMinClus  = 65525 // fewer clusters and readers take the volume for FAT16
	fatMaxClus  = 0x0ffffff5 - 2
	fatEOC      = 0x0fffffff
)

// fatMin keeps a FAT32 above fatMinClus clusters at the smallest cluster size.
const fatMin = 64 * mib

// fatCluster is the cluster size for a FAT32 of size bytes, as mkfs.fat picks it.
func fatCluster(size int64) int64 {
	switch {
	case size <= 260*1000*1000:
		return 512
	case size <= 8<<30:
		return 4096
	case size <= 16<<30:
		return 8192
	case size <= 32<<30:
		return 16384
	}
	return 32768
}

// fatGeom is the layout of a FAT32 of a given size.
type fatGeom struct {
	size     int64 // bytes the filesystem spans (whole sectors)
	cluster  int64 // bytes a cluster
	reserved int64 // sectors before the first FAT
	fatSecs  int64 // sectors a FAT
	clusters int64 // data clusters, numbered from 2
}

func (g fatGeom) fatOff(i int64) int64 { return (g.reserved + i*g.fatSecs) * fatSector }
func (g fatGeom) dataOff() int64       { return g.fatOff(2) }

// fatGeometry lays out a FAT32 of size bytes: two FATs sized for every cluster, the data region
// aligned to a cluster; a smaller cluster when the default one leaves too few clusters for FAT32.
func fatGeometry(size int64) (fatGeom, error) {
	if size < fatMin {
		return fatGeom{}, fmt.Errorf("a FAT32 needs at least %d bytes, it has %d", fatMin, size)
	}
	total := size / fatSector
	for c := fatCluster(size); c >= fatSector; c /= 2 {
		spc := c / fatSector
		g := fatGeom{size: total * fatSector, cluster: c, reserved: fatReserved}
		// An upper bound: the FAT is sized as if the FATs took no room.
		g.fatSecs = ((total-g.reserved)/spc + 2 + fatSector/4 - 1) / (fatSector / 4)
		if r := (g.reserved + 2*g.fatSecs) % spc; r != 0 {
			g.reserved += spc - r
		}
		g.clusters = (total - g.reserved - 2*g.fatSecs) / spc
		if g.clusters >= fatMinClus {
			if g.clusters > fatMaxClus {
				return fatGeom{}, fmt.Errorf("a FAT32 of %d bytes needs more than %d clusters", size, fatMaxClus)
			}
			return g, nil
		}
	}
	return fatGeom{}, fmt.Errorf("a FAT32 of %d bytes has fewer than %d clusters", size, fatMinClus)
}

// fatSlots is the 32-byte entries a name takes in its folder: its short entry, and long-name entries
// of 13 UTF-16 units each when it needs them.
func fatSlots(name string, long bool) int64 {
	if !long {
		return 1
	}
	return 1 + (int64(utf16Len(name))+12)/13
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// fatNeed bounds what the entries take on a FAT32 with clusters of c bytes (every name counted with
// its long-name entries).
func fatNeed(entries []entry, c int64) int64 {
	slots := map[string]int64{".": 1} // the root's volume label
	var n int64
	for _, e := range entries {
		if e.mode.IsDir() {
			slots[e.rel] += 2
		} else {
			n += roundUp(e.size, c)
		}
		slots[path.Dir(e.rel)] += fatSlots(path.Base(e.rel), true)
	}
	for _, s := range slots {
		n += roundUp(max(s*32, 1), c)
	}
	return n
}

// fatSize is the default FAT32 size: what the content needs plus 10% and the tables, as virt-make-fs
// leaves a margin for the guest to write into.
func fatSize(entries []entry) int64 {
	size := int64(fatMin)
	for range 3 { // the cluster size depends on the size: settle it
		c := fatCluster(size)
		need := fatNeed(entries, c)
		fats := 2 * 4 * (need/c + 2)
		size = max(roundUp(need+need/10+fats+mib, mib), fatMin)
	}
	return size
}

// fatObj is one folder or file of the FAT32 being built.
type fatObj struct {
	e      *entry // nil for the root
	first  uint32 // first cluster; 0 for an empty file
	nclus  int64
	kids   []int32 // a folder's children, indexes into the object list
	parent int32
	short  [11]byte
	long   bool // a long name goes with the short one
}

// buildFAT writes a FAT32 of the kept entries at start (size bytes, or the default when 0) and returns
// the bytes it spans.
func buildFAT(w io.WriterAt, start, size int64, o Options, root string, kept []entry) (int64, error) {
	if size == 0 {
		size = fatSize(kept)
	}
	if o.Grow {
		size += roundUp(o.Size, mib)
	}
	label, err := fatLabel(o.Label)
	if err != nil {
		return 0, err
	}
	g, err := fatGeometry(size)
	if err != nil {
		return 0, err
	}
	objs, err := fatLayout(kept, label != "")
	if err != nil {
		return 0, err
	}
	rootInfo, err := os.Stat(root)
	if err != nil {
		return 0, err
	}
	// Allocate: one contiguous run per object, in walk order (the root first, at cluster 2).
	next := int64(2)
	for i := range objs {
		ob := &objs[i]
		if ob.e == nil || ob.e.mode.IsDir() {
			ob.nclus = max(1, (fatDirBytes(objs, i, label != "")+g.cluster-1)/g.cluster)
		} else {
			ob.nclus = (ob.e.size + g.cluster - 1) / g.cluster
		}
		if ob.nclus > 0 {
			ob.first = uint32(next)
			next += ob.nclus
		}
	}
	if used := next - 2; used > g.clusters {
		return 0, fmt.Errorf("the files need %d bytes, more than the FAT32 of %d bytes holds (%d)", used*g.cluster, size, g.clusters*g.cluster)
	}
	if err := fatWriteBoot(w, start, g, label, next); err != nil {
		return 0, err
	}
	for i := range int64(2) {
		if err := fatWriteTable(w, start+g.fatOff(i), objs); err != nil {
			return 0, err
		}
	}
	s := newStream(w, start+g.dataOff())
	buf := make([]byte, 0, 64<<10)
	for i := range objs {
		ob := &objs[i]
		if ob.nclus == 0 {
			continue
		}
		if err := s.seek(start + g.dataOff() + int64(ob.first-2)*g.cluster); err != nil {
			return 0, err
		}
		if ob.e == nil || ob.e.mode.IsDir() {
			buf = fatListing(buf[:0], objs, i, label, rootInfo.ModTime())
			if err := s.write(buf); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.copyFile(root, *ob.e); err != nil {
			return 0, fmt.Errorf("%s: %w", ob.e.rel, err)
		}
	}
	if err := s.flush(); err != nil {
		return 0, err
	}
	return g.size, nil
}

// fatLayout lists the root and the kept entries as objects, each folder with its children, and gives
// every child its short name (unique in its folder).
func fatLayout(kept []entry, hasLabel bool) ([]fatObj, error) {
	objs := make([]fatObj, 1, len(kept)+1)
	dirs := map[string]int32{".": 0}
	for i := range kept {
		e := &kept[i]
		p, ok := dirs[path.Dir(e.rel)]
		if !ok {
			return nil, fmt.Errorf("%s: its folder was not listed before it", e.rel)
		}
		idx := int32(len(objs))
		objs = append(objs, fatObj{e: e, parent: p})
		objs[p].kids = append(objs[p].kids, idx)
		if e.mode.IsDir() {
			dirs[e.rel] = idx
		}
	}
	for i := range objs {
		kids := objs[i].kids
		if len(kids) == 0 {
			continue
		}
		used := make(map[[11]byte]bool, len(kids))
		// Names that are short names already keep them; the others get one with a numeric tail.
		for _, k := range kids {
			if sn, ok := fatExactShort(path.Base(objs[k].e.rel)); ok {
				objs[k].short = sn
				used[sn] = true
			}
		}
		tails := map[string]int{}
		for _, k := range kids {
			ob := &objs[k]
			name := path.Base(ob.e.rel)
			if _, ok := fatExactShort(name); ok {
				continue
			}
			sn, err := fatShortName(name, used, tails)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ob.e.rel, err)
			}
			ob.short, ob.long = sn, true
			used[sn] = true
		}
		if n := fatDirBytes(objs, i, hasLabel) / 32; n > fatMaxSlots {
			rel := "the root folder"
			if objs[i].e != nil {
				rel = objs[i].e.rel
			}
			return nil, fmt.Errorf("%s: %d names take %d folder entries, FAT32 holds %d: %w", rel, len(kids), n, fatMaxSlots, ErrUnsupported)
		}
	}
	return objs, nil
}

// fatDirBytes is the size of folder i's listing.
func fatDirBytes(objs []fatObj, i int, hasLabel bool) int64 {
	n := int64(2) // "." and ".."
	if i == 0 {
		n = 0
		if hasLabel {
			n = 1
		}
	}
	for _, k := range objs[i].kids {
		n += fatSlots(path.Base(objs[k].e.rel), objs[k].long)
	}
	return n * 32
}

// fatShortChars are the characters a short name may hold besides A-Z and 0-9.
const fatShortChars = "!#$%&'()-@^_`{}~"

func fatShortChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(fatShortChars, c) >= 0
}

// fatExactShort: a name that is a valid upper-case 8.3 name is stored as that alone.
func fatExactShort(name string) ([11]byte, bool) {
	var sn [11]byte
	base, ext, dot := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || dot && ext == "" || strings.Contains(ext, ".") {
		return sn, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' && !fatShortChar(name[i]) {
			return sn, false
		}
	}
	copy(sn[:], "           ")
	copy(sn[:8], base)
	copy(sn[8:], ext)
	return sn, true
}

// fatShortName derives a short name for a long one as Windows does: upper case, characters a short
// name cannot hold as "_", spaces and inner dots dropped, then "~N" (tails remembers the last N per
// basis so a folder of similar names costs no search).
func fatShortName(name string, used map[[11]byte]bool, tails map[string]int) ([11]byte, error) {
	clean := func(s string, n int) string {
		var b []byte
		for _, r := range s {
			switch {
			case r == ' ' || r == '.':
				continue
			case r < 0x80 && fatShortChar(byte(unicodeUpper(r))):
				b = append(b, byte(unicodeUpper(r)))
			default:
				b = append(b, '_')
			}
			if len(b) == n {
				break
			}
		}
		return string(b)
	}
	trimmed := strings.TrimLeft(name, ". ")
	base, ext := trimmed, ""
	if i := strings.LastIndexByte(trimmed, '.'); i > 0 {
		base, ext = trimmed[:i], trimmed[i+1:]
	}
	b, x := clean(base, 8), clean(ext, 3)
	if b == "" {
		b = "_"
	}
	key := b + "." + x
	for n := tails[key] + 1; n < 1000000; n++ {
		tail := "~" + strconv.Itoa(n)
		var sn [11]byte
		copy(sn[:], "           ")
		copy(sn[:8], b[:min(len(b), 8-len(tail))]+tail)
		copy(sn[8:], x)
		if !used[sn] {
			tails[key] = n
			return sn, nil
		}
	}
	return [11]byte{}, fmt.Errorf("no free short name for %q", name)
}

func unicodeUpper(r rune) rune {
	if r >= 'a' && r <= 'z' {
		return r - 'a' + 'A'
	}
	return r
}

// fatChecksum is the short name's checksum each long-name entry carries.
func fatChecksum(sn [11]byte) byte {
	var s byte
	for _, c := range sn {
		s = (s&1)<<7 + s>>1 + c
	}
	return s
}

// fatLabel checks and upper-cases a volume label ("" for none).
func fatLabel(l string) (string, error) {
	l = strings.ToUpper(l)
	if len(l) > 11 {
		return "", fmt.Errorf("FAT32 label %q is longer than 11 characters", l)
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c < 0x20 || c >= 0x7f || strings.IndexByte(`"*+,./:;<=>?[\]|`, c) >= 0 {
			return "", fmt.Errorf("FAT32 label %q holds %q, which a label cannot", l, c)
		}
	}
	return l, nil
}

// fatListing appends folder i's entries to b: ".", "..", or the volume label in the root, then each
// child's long-name entries and short entry. rootTime dates the first-level folders' "..".
func fatListing(b []byte, objs []fatObj, i int, label string, rootTime time.Time) []byte {
	le := binary.LittleEndian
	short := func(sn [11]byte, attr byte, clus uint32, size int64, mtime time.Time) {
		var d [32]byte
		copy(d[:11], sn[:])
		d[11] = attr
		if !mtime.IsZero() {
			date, tm := fatDateTime(mtime)
			le.PutUint16(d[14:], tm)
			le.PutUint16(d[16:], date)
			le.PutUint16(d[18:], date)
			le.PutUint16(d[22:], tm)
			le.PutUint16(d[24:], date)
		}
		le.PutUint16(d[20:], uint16(clus>>16))
		le.PutUint16(d[26:], uint16(clus))
		le.PutUint32(d[28:], uint32(size))
		b = append(b, d[:]...)
	}
	ob := &objs[i]
	if i == 0 {
		if label != "" {
			var sn [11]byte
			copy(sn[:], fmt.Sprintf("%-11s", label))
			short(sn, 0x08, 0, 0, time.Now())
		}
	} else {
		parent := objs[ob.parent].first
		if ob.parent == 0 {
			parent = 0 // ".." names the root as cluster 0
		}
		pt := rootTime
		if pe := objs[ob.parent].e; pe != nil {
			pt = pe.mtime
		}
		short([11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, 0x10, ob.first, 0, ob.e.mtime)
		short([11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, 0x10, parent, 0, pt)
	}
	for _, k := range ob.kids {
		kid := &objs[k]
		e := kid.e
		if kid.long {
			b = fatLongEntries(b, path.Base(e.rel), fatChecksum(kid.short))
		}
		attr, size := byte(0x20), e.size // archive: new since the last backup, as mcopy sets it
		if e.mode.IsDir() {
			attr, size = 0x10, 0
		}
		if e.mode.Perm()&0o200 == 0 {
			attr |= 0x01 // read-only
		}
		short(kid.short, attr, kid.first, size, e.mtime)
	}
	return b
}

// fatLongEntries appends name's long-name entries, last part first, each 13 UTF-16 units (the name
// ends with a 0 unit when it leaves room, then 0xFFFF padding).
func fatLongEntries(b []byte, name string, sum byte) []byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
	}
	for len(u) < n*13 {
		u = append(u, 0xffff)
	}
	offs := [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	for ord := n; ord >= 1; ord-- {
		var d [32]byte
		d[0] = byte(ord)
		if ord == n {
			d[0] |= 0x40
		}
		d[11] = 0x0f
		d[13] = sum
		for j, o := range offs {
			binary.LittleEndian.PutUint16(d[o:], u[(ord-1)*13+j])
		}
		b = append(b, d[:]...)
	}
	return b
}

// fatWriteBoot writes the boot sector, the FSInfo sector and their copies. next is the first free
// cluster.
func fatWriteBoot(w io.WriterAt, start int64, g fatGeom, label string, next int64) error {
	le := binary.LittleEndian
	bs := make([]byte, fatSector)
	copy(bs, []byte{0xeb, 0x58, 0x90})
	copy(bs[3:], "MSWIN4.1")
	le.PutUint16(bs[11:], fatSector)
	bs[13] = byte(g.cluster / fatSector)
	le.PutUint16(bs[14:], uint16(g.reserved))
	bs[16] = 2    // FATs
	bs[21] = 0xf8 // fixed disk
	le.PutUint16(bs[24:], 63)
	le.PutUint16(bs[26:], 255)
	le.PutUint32(bs[28:], uint32(start/fatSector)) // hidden sectors: where the partition starts
	le.PutUint32(bs[32:], uint32(g.size/fatSector))
	le.PutUint32(bs[36:], uint32(g.fatSecs))
	le.PutUint32(bs[44:], 2) // root folder cluster
	le.PutUint16(bs[48:], 1) // FSInfo sector
	le.PutUint16(bs[50:], fatBackup)
	bs[64] = 0x80
	bs[66] = 0x29
	le.PutUint32(bs[67:], uint32(time.Now().UnixNano()))
	if label == "" {
		label = "NO NAME"
	}
	copy(bs[71:], fmt.Sprintf("%-11s", label))
	copy(bs[82:], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xaa
	fi := make([]byte, fatSector)
	le.PutUint32(fi[0:], 0x41615252)
	le.PutUint32(fi[484:], 0x61417272)
	le.PutUint32(fi[488:], uint32(g.clusters+2-next))
	le.PutUint32(fi[492:], uint32(next))
	if next >= g.clusters+2 {
		le.PutUint32(fi[492:], 0xffffffff)
	}
	fi[510], fi[511] = 0x55, 0xaa
	for _, at := range []int64{0, fatBackup} {
		if _, err := w.WriteAt(append(bs, fi...), start+at*fatSector); err != nil {
			return err
		}
	}
	return nil
}

// fatWriteTable writes one FAT at off: the reserved entries, then each object's chain.
func fatWriteTable(w io.WriterAt, off int64, objs []fatObj) error {
	s := newStream(w, off)
	var b [4]byte
	put := func(v uint32) error {
		binary.LittleEndian.PutUint32(b[:], v)
		return s.write(b[:])
	}
	if err := put(0x0ffffff8); err != nil { // media byte
		return err
	}
	if err := put(fatEOC); err != nil {
		return err
	}
	for i := range objs {
		ob := &objs[i]
		for c := int64(ob.first); c < int64(ob.first)+ob.nclus; c++ {
			v := uint32(c + 1)
			if c == int64(ob.first)+ob.nclus-1 {
				v = fatEOC
			}
			if err := put(v); err != nil {
				return err
			}
		}
	}
	return s.flush()
}

// stream writes a region front to back through one buffer, so many small pieces cost few writes.
type stream struct {
	w   io.WriterAt
	off int64 // where buf[0] goes
	buf []byte
}

func newStream(w io.WriterAt, off int64) *stream {
	return &stream{w: w, off: off, buf: make([]byte, 0, copyBuf)}
}

// seek moves on to off (never back): the skipped bytes stay as they are (zeros in a new image).
func (s *stream) seek(off int64) error {
	if gap := off - s.off - int64(len(s.buf)); gap > 0 && gap <= int64(cap(s.buf)-len(s.buf)) {
		s.buf = append(s.buf, make([]byte, gap)...)
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.off = off
	return nil
}

func (s *stream) write(p []byte) error {
	for len(p) > 0 {
		n := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *stream) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if _, err := s.w.WriteAt(s.buf, s.off); err != nil {
		return err
	}
	s.off += int64(len(s.buf))
	s.buf = s.buf[:0]
	return nil
}

// copyFile reads e's bytes (as many as it had when listed) straight into the stream.
func (s *stream) copyFile(root string, e entry) error {
	f, err := openSource(filepath.Join(root, filepath.FromSlash(e.rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	left := e.size
	for left > 0 {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		room := s.buf[len(s.buf):min(cap(s.buf), len(s.buf)+int(min(left, int64(cap(s.buf)))))]
		n, err := f.Read(room)
		s.buf = s.buf[:len(s.buf)+n]
		left -= int64(n)
		if err == io.EOF || (err == nil && n == 0) {
			return fmt.Errorf("the file ended %d bytes short of the %d it had when listed", left, e.size)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// openSource opens a source file for reading without touching its access time where the kernel
// lets us (O_NOATIME needs the file's owner or CAP_FOWNER).
func openSource(p string) (*os.File, error) {
	if f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME|unix.O_NOFOLLOW, 0); err == nil {
		return f, nil
	}
	return os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
}

// fatDateTime encodes t in local time, as FAT stores it (2-second steps, 1980 to 2107).
func fatDateTime(t time.Time) (date, tm uint16) {
	t = t.Local()
	switch {
	case t.Year() < 1980:
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.Local)
	case t.Year() > 2107:
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.Local)
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tm
}
