package ext4

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
)

// TestFixtureFeatures guards the fixtures' coverage: each image must really exercise the on-disk
// structures it was made for, or the kernel comparison would pass without testing them.
func TestFixtureFeatures(t *testing.T) {
	le := binary.LittleEndian
	checks := map[string]func(t *testing.T, v *FS){
		"ext2-1k": func(t *testing.T, v *FS) {
			if in := in0(t, v, "sparse_far"); in.flags&flagExtents != 0 || le.Uint32(in.block[56:]) == 0 {
				t.Error("sparse_far does not use the triple-indirect block")
			}
			if in := in0(t, v, "sparse_lead"); le.Uint32(in.block[52:]) == 0 {
				t.Error("sparse_lead does not use the double-indirect block")
			}
		},
		"ext2-rev0": func(t *testing.T, v *FS) {
			if v.sb.revLevel != 0 || v.sb.has(incompatFiletype) || v.sb.inodeSize != 128 {
				t.Errorf("not a revision 0 filesystem: rev %d, incompat %#x", v.sb.revLevel, v.sb.incompat)
			}
		},
		"ext3-2k": func(t *testing.T, v *FS) {
			if v.sb.blockSize != 2048 || v.sb.compat&0x4 == 0 {
				t.Error("not a 2 KiB-block filesystem with a journal")
			}
		},
		"ext4-4k": func(t *testing.T, v *FS) {
			if h, err := parseExtentHeader(in0(t, v, "sparse_many").block[:]); err != nil || h.depth < 1 {
				t.Errorf("sparse_many has no extent index (%v)", err)
			}
			d, err := v.dataOf(in0(t, v, "prealloc"))
			if err != nil || !hasUnwritten(d.runs) {
				t.Errorf("prealloc has no unwritten extent (%v)", err)
			}
			if !v.sb.has(incompat64bit) || v.sb.roCompat&0x400 == 0 {
				t.Error("not 64bit with metadata_csum")
			}
		},
		"ext4-1k-32bit": func(t *testing.T, v *FS) {
			if v.sb.has(incompat64bit) || v.sb.roCompat&0x400 != 0 || v.sb.blockSize != 1024 {
				t.Error("not a 1 KiB-block 32-bit filesystem without metadata_csum")
			}
		},
		"ext4-inline": func(t *testing.T, v *FS) {
			for _, p := range []string{"dir/small.txt", "dir/hundred.txt", "empty_dir", "dir/sub/deeper"} {
				if in0(t, v, p).flags&flagInlineData == 0 {
					t.Errorf("%s is not inline", p)
				}
			}
			if tail, err := v.inlineTail(in0(t, v, "dir/hundred.txt")); err != nil || len(tail) != 40 {
				t.Errorf("hundred.txt keeps %d bytes in system.data (%v)", len(tail), err)
			}
			raw, err := v.inodeXattrs(in0(t, v, "empty"))
			if err != nil {
				t.Fatal(err)
			}
			blk, err := v.blockXattrs(in0(t, v, "empty"))
			if err != nil {
				t.Fatal(err)
			}
			if len(raw)+len(blk) == 0 {
				t.Error("empty has no xattrs")
			}
			if x, err := v.GetXattr("empty", "user.huge"); err != nil || len(x) != 10000 || !v.sb.has(incompatEAInode) {
				t.Errorf("user.huge: %d bytes, %v", len(x), err)
			}
		},
		"ext4-metabg": func(t *testing.T, v *FS) {
			sb := v.sb
			if !sb.has(incompatMetaBG) || sb.groupCount <= sb.descPerBlock || sb.descBlock(1) == uint64(sb.firstDataBlock)+2 {
				t.Fatalf("descriptors do not span meta groups: %d groups, %d per block", sb.groupCount, sb.descPerBlock)
			}
			high := 0
			for _, e := range mustDir(t, v, "many").entries {
				if (e.ino-1)/sb.inodesPerGroup >= sb.descPerBlock {
					high++
				}
			}
			if high < 100 {
				t.Errorf("only %d inodes are in groups described by the second meta group", high)
			}
		},
		"ext4-bigalloc": func(t *testing.T, v *FS) {
			if v.sb.roCompat&0x200 == 0 || v.sb.clusterSize != 4096 || v.sb.blockSize != 1024 || v.sb.firstDataBlock != 0 {
				t.Errorf("not bigalloc with 4 KiB clusters of 1 KiB blocks: ro_compat %#x, cluster %d", v.sb.roCompat, v.sb.clusterSize)
			}
		},
		"ext4-128inode": func(t *testing.T, v *FS) {
			if v.sb.inodeSize != 128 {
				t.Errorf("inode size %d", v.sb.inodeSize)
			}
		},
	}
	for _, gz := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(gz), ".img.gz")
		check, ok := checks[name]
		if !ok {
			t.Errorf("fixture %s has no coverage check", name)
			continue
		}
		t.Run(name, func(t *testing.T) { check(t, openImage(t, gunzipTemp(t, gz))) })
	}
}

func hasUnwritten(runs []run) bool {
	for _, r := range runs {
		if r.unwritten {
			return true
		}
	}
	return false
}

func mustDir(t *testing.T, v *FS, p string) *dirIndex {
	t.Helper()
	d, err := v.directory(in0(t, v, p))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
