package ntfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const (
	recLogFile        = 2
	attrVolumeInfo    = 0x70
	volumeIsDirty     = 0x0001
	restartIsClean    = 0x0002 // RESTART_AREA flags: the log needs no replay
	logNoClient       = 0xFFFF
	maxLogPageSize    = 64 << 10
	hibernationHeader = 4
)

var _ fsys.StateReporter = (*FS)(nil)

// VolumeState reports what Windows left behind (fsys.StateReporter): a hibernation image in
// hiberfil.sys (hibernated or Fast Startup), the dirty bit of $Volume, or a $LogFile whose restart
// area says it still holds operations to replay. This reader never replays $LogFile: a dirty or
// hibernated volume is shown as its clusters are.
func (f *FS) VolumeState() fsys.VolumeState {
	f.stateOnce.Do(func() { f.state = f.volumeState() })
	return f.state
}

func (f *FS) volumeState() fsys.VolumeState {
	const notReplayed = "; $LogFile is not replayed, the tree shows the volume as last written"
	if magic := f.hibernation(); magic != "" {
		return fsys.VolumeState{State: fsys.StateHibernated, Detail: fmt.Sprintf("hiberfil.sys holds a hibernation image (%q: hibernated or Fast Startup)%s", magic, notReplayed)}
	}
	var why []string
	if f.dirtyBit() {
		why = append(why, "the volume's dirty flag is set")
	}
	if err := f.logUnclean(); err != "" {
		why = append(why, err)
	}
	if len(why) > 0 {
		return fsys.VolumeState{State: fsys.StateDirty, Detail: strings.Join(why, ", ") + notReplayed}
	}
	return fsys.VolumeState{State: fsys.StateClean}
}

// hibernation returns the signature at the start of /hiberfil.sys when it holds an image ("hibr"
// or "wake" in either case), or "".
func (f *FS) hibernation() string {
	root, err := f.inode(recRoot)
	if err != nil {
		return ""
	}
	e, err := f.lookupCase(root, "hiberfil.sys", true)
	if err != nil {
		return ""
	}
	n, err := f.child(root, e)
	if err != nil {
		return ""
	}
	a := n.find(attrData, "")
	if a == nil || a.dataSize < hibernationHeader {
		return ""
	}
	s, err := f.newStream(n.num, a)
	if err != nil {
		return ""
	}
	b := make([]byte, hibernationHeader)
	if _, err := s.ReadAt(b, 0); err != nil && err != io.EOF {
		return ""
	}
	if m := strings.ToLower(string(b)); m == "hibr" || m == "wake" {
		return string(b)
	}
	return ""
}

// dirtyBit reads the flags of $Volume's $VOLUME_INFORMATION.
func (f *FS) dirtyBit() bool {
	n, err := f.inode(recVolume)
	if err != nil {
		return false
	}
	a := n.find(attrVolumeInfo, "")
	return a != nil && a.resident && len(a.value) >= 12 && binary.LittleEndian.Uint16(a.value[10:])&volumeIsDirty != 0
}

// logUnclean reads the newer of $LogFile's two restart pages and says why the log needs a replay
// ("" when it does not, or when there is no valid restart page, as after mkntfs or ntfsfix).
func (f *FS) logUnclean() string {
	n, err := f.inode(recLogFile)
	if err != nil {
		return ""
	}
	a := n.find(attrData, "")
	if a == nil {
		return ""
	}
	s, err := f.newStream(recLogFile, a)
	if err != nil {
		return ""
	}
	// Two copies: the first page, then one page further; the one with the later LSN is current.
	var best []byte
	for i, off := 0, int64(0); i < 2; i++ {
		area, size, chkdsk := restartPage(s, off)
		if chkdsk {
			return "chkdsk was interrupted ($LogFile restart page CHKD)"
		}
		if size == 0 {
			break
		}
		if best == nil || binary.LittleEndian.Uint64(area) > binary.LittleEndian.Uint64(best) {
			best = area
		}
		off = size
	}
	if best == nil {
		return ""
	}
	inUse := binary.LittleEndian.Uint16(best[0x0C:])
	flags := binary.LittleEndian.Uint16(best[0x0E:])
	if inUse != logNoClient && flags&restartIsClean == 0 {
		return "$LogFile's restart area is not clean (operations not checkpointed)"
	}
	return ""
}

// restartPage reads the restart page at off and returns its restart area, the page's size, and
// whether it is a CHKD page; size 0 when there is no valid page there.
func restartPage(s *stream, off int64) (area []byte, size int64, chkdsk bool) {
	hdr := make([]byte, 0x1E)
	if _, err := s.ReadAt(hdr, off); err != nil {
		return nil, 0, false
	}
	magic := string(hdr[:4])
	if magic != "RSTR" && magic != "CHKD" {
		return nil, 0, false
	}
	size = int64(binary.LittleEndian.Uint32(hdr[0x10:]))
	if size < 512 || size > maxLogPageSize || size&(size-1) != 0 {
		return nil, 0, false
	}
	if magic == "CHKD" {
		return nil, size, true
	}
	page := make([]byte, size)
	if _, err := s.ReadAt(page, off); err != nil || applyFixups(page, "RSTR") != nil {
		return nil, 0, false
	}
	at := int(binary.LittleEndian.Uint16(page[0x18:]))
	if at < 0x1E || at+0x30 > len(page) {
		return nil, 0, false
	}
	return page[at : at+0x30], size, false
}
