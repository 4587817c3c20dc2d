package vddk

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"path/filepath"
	"strings"
	"testing"
)

// The acceptance corpus (real images from public test suites): whole-disk hashes as EXPECTED.md and
// corpus/SOURCES.md record them, and the images that must be refused are refused clearly.
func TestAcceptanceCorpus(t *testing.T) {
	dir := corpus(t)
	zeros := func(n int) string { s := sha256.Sum256(make([]byte, n)); return hex.EncodeToString(s[:]) }
	pattern := make([]byte, 65536) // compressed_stream_opt.vmdk holds bytes(i % 64)
	for i := range pattern {
		pattern[i] = byte(i % 64)
	}
	patSum := sha256.Sum256(pattern)
	cases := []struct {
		file       string
		size       int64
		createType string
		sha256     string
		sha1       string
	}{
		{"dfvfs/ext2.vmdk", 4194304, "monolithicSparse", "a6c2f0e39afe6c6ab432ca5465349fcefe8dc944398e97b2d957d3f89dbb5d80", ""},
		{"dfvfs/image.vmdk", 102400, "monolithicSparse", "854c3db1c4a07a241e2ed9fbd8892adf2adc662c7862a75deed26f3483f414c9", ""},
		{"vmdk-forensic/compressed_stream_opt.vmdk", 65536, "streamOptimized", hex.EncodeToString(patSum[:]), ""},
		{"vmdk-forensic/stream_opt.vmdk", 1048576, "streamOptimized", zeros(1048576), ""},
		{"vmdk-forensic/minimal.vmdk", 1048576, "monolithicSparse", zeros(1048576), ""},
		{"vmdk-forensic/flat.vmdk", 1048576, "twoGbMaxExtentFlat", zeros(1048576), ""},
		{"vmdk-forensic/mono_flat.vmdk", 1048576, "monolithicFlat", zeros(1048576), ""},
		{"vmdk-forensic/tw_sparse.vmdk", 4194304, "twoGbMaxExtentSparse", zeros(4194304), ""},
		{"go-vmdk-parser/vmdk-monolith.img", 65536, "monolithicSparse", zeros(65536), ""},
		{"go-vmdk-parser/vmdk-streamoptimized.img", 65536, "streamOptimized", zeros(65536), ""},
		{"vmdk-rs/monolithicSparse.vmdk", 10485760, "monolithicSparse", "", "dd2fade471d68658b2ebbff7474f5d0a99da8989"},
		{"vmdk-rs/streamOptimized.vmdk", 10485760, "streamOptimized", "", "dd2fade471d68658b2ebbff7474f5d0a99da8989"},
		{"vmdk-rs/twoGbMaxExtentSparse.vmdk", 10485760, "twoGbMaxExtentSparse", "", "dd2fade471d68658b2ebbff7474f5d0a99da8989"},
		{"vmdk-rs/streamOptimizedWithMarkers.vmdk", 1048576, "streamOptimized", "", "b6fd01dd1b93b3589e6d76f7507af55c589ef69d"},
		{"vmdk-rs/vmfs_thick.vmdk", 2097152, "vmfs", "", "17eaf058191c5f2639d8f983ca7633e4f47087d1"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			d, err := Open(filepath.Join(dir, c.file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != c.size || d.Info().CreateType != c.createType {
				t.Errorf("size %d type %q, want %d %q", d.Size(), d.Info().CreateType, c.size, c.createType)
			}
			var h hash.Hash
			want := c.sha256
			if c.sha1 != "" {
				h, want = sha1.New(), c.sha1
			} else {
				h = sha256.New()
			}
			if err := d.CopyRaw(h); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				t.Errorf("disk hash %s, want %s", got, want)
			}
		})
	}

	// Facts the source repositories assert about particular bytes.
	d, err := Open(filepath.Join(dir, "dfvfs/image.vmdk"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	sb := make([]byte, 16)
	d.ReadAt(sb, 1024)
	if !bytes.Equal(sb, []byte{0x10, 0, 0, 0, 0x64, 0, 0, 0, 5, 0, 0, 0, 0x4a, 0, 0, 0}) {
		t.Errorf("image.vmdk bytes at 1024: % x", sb)
	}
	inf := d.Info()
	if inf.CID != "53554ac6" || inf.ParentCID != "ffffffff" || inf.HWVersion != 4 || inf.AdapterType != "ide" {
		t.Errorf("image.vmdk info %+v", inf)
	}
	d.Close()

	refused := []struct {
		file string
		code Code
		says string
	}{
		{"vmdk-forensic/ms3-win.vmdk", ErrFileNotFound, "disk-s001.vmdk"},
		{"go-vmdk-parser/vmdk-invalid.img", ErrDiskInvalidDisk, "invalid descriptor"},
		{"vmdk-forensic/flat-f001.vmdk", ErrDiskInvalidDisk, "not a VMDK"},
	}
	for _, c := range refused {
		_, err := Open(filepath.Join(dir, c.file), Options{})
		if !errors.Is(err, c.code) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), filepath.Base(c.file)) {
			t.Errorf("%s: got %v, want code %d saying %q", c.file, err, c.code, c.says)
		}
	}
}
