// Command wofimage builds the NTFS image bench/wof-read.sh reads: the source file three times, as
// plain.bin (uncompressed) and as xpress4k.bin and lzx.bin, compressed the way Windows' WOF
// provider (CompactOS) stores files, with wimlib's compressors. Each compressed stream is also
// written beside the image, as IMAGE.xpress4k.res and IMAGE.lzx.res. It needs root, mkntfs,
// ntfs-3g and wimcapture.
//
//	wofimage SRC IMAGE
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wofimage SRC IMAGE")
		os.Exit(2)
	}
	if err := build(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "wofimage:", err)
		os.Exit(1)
	}
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, out)
	}
	return nil
}

func build(src, img string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(img), "wofimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := []struct {
		name, compress string
		chunk          int
		alg            uint32
	}{{"xpress4k.bin", "xpress", 4096, 0}, {"lzx.bin", "lzx", 32768, 1}}
	res := make([][]byte, len(files))
	for i, f := range files {
		if res[i], err = wimres.CaptureFile(src, tmp, f.compress, f.chunk); err != nil {
			return err
		}
		// The bare resource too, beside the image, for the decoder-only comparison.
		if err := os.WriteFile(img+"."+strings.TrimSuffix(f.name, ".bin")+".res", res[i], 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(img, 3*st.Size()+64<<20); err != nil {
		return err
	}
	if err := run("mkntfs", "-F", "-f", "-q", img); err != nil {
		return err
	}
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}
	if err := run("ntfs-3g", "-o", "streams_interface=windows", img, mnt); err != nil {
		return err
	}
	err = fill(src, mnt, st.Size(), res, func(i int) (string, uint32) { return files[i].name, files[i].alg })
	if uerr := run("umount", mnt); err == nil {
		err = uerr
	}
	return err
}

// fill copies src as plain.bin and writes each WOF file: its compressed stream, an empty unnamed
// stream of the real size, and the WOF reparse point (file provider, algorithm).
func fill(src, mnt string, size int64, res [][]byte, file func(int) (string, uint32)) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(mnt, "plain.bin"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	for i, r := range res {
		name, alg := file(i)
		p := filepath.Join(mnt, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(p+":WofCompressedData", r, 0o644); err != nil {
			return err
		}
		if err := os.Truncate(p, size); err != nil {
			return err
		}
		rp := binary.LittleEndian.AppendUint32(nil, 0x80000017)
		rp = binary.LittleEndian.AppendUint16(rp, 16)
		rp = append(rp, 0, 0)
		for _, v := range []uint32{1, 2, 1, alg} { // WOF v1, file provider; file provider v1, algorithm
			rp = binary.LittleEndian.AppendUint32(rp, v)
		}
		if err := unix.Setxattr(p, "system.ntfs_reparse_data", rp, 0); err != nil {
			return fmt.Errorf("%s: reparse point: %w", name, err)
		}
	}
	return nil
}
