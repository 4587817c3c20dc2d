package ntfs

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// rawOffset maps byte off of a non-resident stream to its byte offset on the volume.
func rawOffset(t *testing.T, s *stream, off int64) int64 {
	t.Helper()
	cs := int64(s.f.boot.clusterSize)
	i := s.findRun(off / cs)
	if i < 0 || s.a.runs[i].lcn < 0 {
		t.Fatalf("no cluster for offset %d", off)
	}
	r := s.a.runs[i]
	return r.lcn*cs + off - r.vcn*cs
}

// patch writes b at off of the image file.
func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// setDirtyBit sets VOLUME_IS_DIRTY in $Volume's $VOLUME_INFORMATION, in place in the image.
func setDirtyBit(t *testing.T, img string) {
	v := openImage(t, img, Options{})
	rs := int64(v.boot.recordSize)
	at := rawOffset(t, v.mft, recVolume*rs)
	rec := make([]byte, rs)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(rec, at); err != nil {
		t.Fatal(err)
	}
	for a := int64(binary.LittleEndian.Uint16(rec[0x14:])); a+24 < rs; a += int64(binary.LittleEndian.Uint32(rec[a+4:])) {
		if binary.LittleEndian.Uint32(rec[a:]) != attrVolumeInfo {
			continue
		}
		flags := a + int64(binary.LittleEndian.Uint16(rec[a+0x14:])) + 10
		if flags%512 >= 510 {
			t.Fatal("the flags sit under an update sequence slot")
		}
		patch(t, img, at+flags, []byte{rec[flags] | volumeIsDirty})
		return
	}
	t.Fatal("no $VOLUME_INFORMATION in $Volume")
}

// writeUncleanLog writes both restart pages of $LogFile with a restart area whose client 0 is in
// use and whose clean flag is clear, as Windows leaves it when it did not shut down cleanly.
func writeUncleanLog(t *testing.T, img string) {
	v := openImage(t, img, Options{})
	n, err := v.inode(recLogFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.newStream(recLogFile, n.find(attrData, ""))
	if err != nil {
		t.Fatal(err)
	}
	const size = 4096
	page := make([]byte, size)
	le16 := binary.LittleEndian.PutUint16
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	copy(page, "RSTR")
	le16(page[4:], 0x1E)       // update sequence offset
	le16(page[6:], size/512+1) // update sequence count
	le32(page[0x10:], size)    // system page size
	le32(page[0x14:], size)    // log page size
	le16(page[0x18:], 0x30)    // restart area offset
	le16(page[0x1A:], 1)       // minor version
	le16(page[0x1C:], 1)       // major version
	ra := page[0x30:]
	le64(ra[0:], 0x12345)        // current LSN
	le16(ra[8:], 1)              // log clients
	le16(ra[0x0A:], logNoClient) // free list
	le16(ra[0x0C:], 0)           // client 0 in use
	le16(ra[0x0E:], 0)           // not clean
	fileSize := s.size
	bits := 0
	for x := fileSize; x > 0; x >>= 1 {
		bits++
	}
	le32(ra[0x10:], uint32(67-bits)) // sequence number bits
	le16(ra[0x14:], 0x30+0xA0)       // restart area length
	le16(ra[0x16:], 0x30)            // client array offset
	le64(ra[0x18:], uint64(fileSize))
	le16(ra[0x24:], 0x30) // log record header length
	le16(ra[0x26:], 0x40) // log page data offset
	cl := ra[0x30:]
	le64(cl[0:], 0x12345)        // oldest LSN
	le64(cl[8:], 0x12345)        // client restart LSN
	le16(cl[0x10:], logNoClient) // prev
	le16(cl[0x12:], logNoClient) // next
	le32(cl[0x1C:], 8)           // name length
	copy(cl[0x20:], "N\x00T\x00F\x00S\x00")
	// Update sequence: the number 1 at every sector end, the real bytes in the array.
	le16(page[0x1E:], 1)
	for i := 1; i <= size/512; i++ {
		end := i*512 - 2
		copy(page[0x1E+2*i:], page[end:end+2])
		le16(page[end:], 1)
	}
	for _, off := range []int64{0, size} {
		patch(t, img, rawOffset(t, s, off), page)
	}
}

// TestVolumeState checks the four states against the judges: ntfsinfo's volume flags for the
// dirty bit, and ntfs-3g's refusal to mount read-write a hibernated or unclean volume.
func TestVolumeState(t *testing.T) {
	base := makeWOFImage(t, wimres.Sample(t, 5000))
	copyOf := func(src, name string) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		img := base + "." + name
		if err := os.WriteFile(img, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return img
	}
	fresh := func(name string) string { return copyOf(base, name) }
	// ntfs-3g's read-write attempt may write to the image (it falls back to read-only): use a copy.
	rwMount := func(img string) string {
		dir := t.TempDir()
		out, _ := exec.Command("ntfs-3g", copyOf(img, "rw"), dir).CombinedOutput()
		exec.Command("umount", dir).Run()
		return string(out)
	}
	state := func(img string) fsys.VolumeState { return openImage(t, img, Options{}).VolumeState() }

	if st := state(base); st.State != fsys.StateClean {
		t.Errorf("fresh volume: %+v", st)
	}

	dirty := fresh("dirty")
	setDirtyBit(t, dirty)
	if out, err := exec.Command("ntfsinfo", "-m", dirty).CombinedOutput(); err == nil && !strings.Contains(string(out), "Volume Flags: 0x0001") {
		t.Fatalf("ntfsinfo does not see the dirty bit: %s", out)
	}
	if st := state(dirty); st.State != fsys.StateDirty || !strings.Contains(st.Detail, "dirty flag") {
		t.Errorf("dirty bit: %+v", st)
	}

	log := fresh("log")
	writeUncleanLog(t, log)
	if out := rwMount(log); !strings.Contains(out, "unclean") {
		t.Fatalf("ntfs-3g mounted the unclean-log volume read-write: %s", out)
	}
	if st := state(log); st.State != fsys.StateDirty || !strings.Contains(st.Detail, "$LogFile") {
		t.Errorf("unclean $LogFile: %+v", st)
	}

	hib := fresh("hib")
	dir := t.TempDir()
	if out, err := exec.Command("ntfs-3g", hib, dir).CombinedOutput(); err != nil {
		t.Fatalf("ntfs-3g: %v: %s", err, out)
	}
	werr := os.WriteFile(dir+"/hiberfil.sys", append([]byte("HIBR"), make([]byte, 8192)...), 0o644)
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil || werr != nil {
		t.Fatalf("writing hiberfil.sys: %v %v: %s", werr, err, out)
	}
	if out := rwMount(hib); !strings.Contains(out, "hibernated") {
		t.Fatalf("ntfs-3g mounted the hibernated volume read-write: %s", out)
	}
	if st := state(hib); st.State != fsys.StateHibernated || !strings.Contains(st.Detail, "not replayed") {
		t.Errorf("hibernated: %+v", st)
	}
}

// FuzzRestartPage parses fuzzed $LogFile starts (two restart pages) as the volume state does.
func FuzzRestartPage(f *testing.F) {
	page := make([]byte, 8192)
	copy(page, "RSTR\x1e\x00\x09\x00")
	binary.LittleEndian.PutUint32(page[0x10:], 4096)
	binary.LittleEndian.PutUint16(page[0x18:], 0x30)
	f.Add(page)
	f.Add([]byte("CHKD"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &stream{a: &attribute{resident: true, value: b, dataSize: int64(len(b))}, size: int64(len(b))}
		for off := int64(0); off < 2*maxLogPageSize; off += 4096 {
			area, size, _ := restartPage(s, off)
			if size != 0 && (size < 512 || size > maxLogPageSize) || len(area) > 0x30 {
				t.Fatalf("page size %d, area %d bytes", size, len(area))
			}
		}
	})
}
