package makefs

// Our own squashfs 4.0 writer (format: the kernel's fs/squashfs and its documentation). go-diskfs
// v1.9.4's writer needed a staged copy of the tree, wrote the data raw for us to compress in a second
// pass, and refused files over ~254 MiB and folders over ~60 KB of names. Here the tree is read once,
// straight from the source: the data blocks are compressed over all cores and written in order as they
// come back, file tails packed into fragment blocks; then the metadata (inodes, folders with their
// lookup index, fragment, export and id tables) and the superblock.
//
// Layout, as mksquashfs writes it: superblock, data and fragment blocks, inode table, directory table,
// fragment table, export table, id table, each table's index after its blocks.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zlib"
	"github.com/vmdkmount/vmdkmount/vddk"
	"golang.org/x/sys/unix"
)

const (
	sqBlockLog = 17
	sqBlock    = 1 << sqBlockLog // data block size, mksquashfs's default
	sqMeta     = 8192            // data bytes of a metadata block
	// sqGzipLevel is the zlib level of data and metadata: gzip's default.
	sqGzipLevel = 6
	// sqRaw marks a data or fragment block's size as stored uncompressed.
	sqRaw = 1 << 24
	// sqWhole: files up to this size are read whole ahead of the writer by several readers, and
	// folded into an earlier file holding the same bytes. Larger ones are streamed block by block.
	sqWhole = 1 << 20
	sqNone  = 0xffffffff // no fragment, no xattr
	sqSB    = 96         // superblock bytes
)

// Inode types (the basic ones are also the types folder entries carry).
const (
	sqDir, sqFile, sqLink                   = 1, 2, 3
	sqBlockDev, sqCharDev, sqFIFO, sqSocket = 4, 5, 6, 7
	sqLDir, sqLFile                         = 8, 9
)

// sqNode is the root, a folder, a file or a symlink of the image.
type sqNode struct {
	name   string
	mode   fs.FileMode
	mtime  time.Time
	uid    uint32
	gid    uint32
	target string // symlink
	rdev   uint64 // device
	size   int64
	rel    string
	kids   []int32 // a folder's children, in name order
	subs   uint32  // a folder's child folders
	parent int32
	file   int32 // index into files for a regular file
	num    uint32
	ref    uint64 // inode reference: metadata block offset << 16 | offset
}

// sqData is where a regular file's bytes went.
type sqData struct {
	node    int32
	start   int64    // first data block, from the superblock
	sizes   []uint32 // one per whole block: 0 for a hole, sqRaw set when stored uncompressed
	frag    uint32   // fragment block holding the tail, or sqNone
	fragOff uint32
	sparse  int64 // bytes in holes
	same    int32 // an earlier file holding the same bytes, or -1
}

type sqFrag struct {
	start int64
	size  uint32
}

type sqBuilder struct {
	f      *os.File
	start  int64 // where the filesystem begins in f
	root   string
	nodes  []sqNode
	files  []sqData
	frags  []sqFrag
	pos    int64 // end of what is written, from the superblock
	dups   bool
	report func(int64)
}

// buildSquashfs writes a squashfs of the kept entries (from root) at start of f and returns the bytes
// it spans (padded to 4 KiB, as mksquashfs pads). report is told every source byte consumed.
func buildSquashfs(f *os.File, start int64, root string, kept []entry, report func(int64)) (int64, error) {
	b := &sqBuilder{f: f, start: start, root: root, pos: sqSB, report: report}
	if err := b.tree(kept); err != nil {
		return 0, err
	}
	if err := b.data(); err != nil {
		return 0, err
	}
	used, err := b.tables()
	if err != nil {
		return 0, err
	}
	return roundUp(used, 4096), nil
}

// tree lists the root and the kept entries (walk order: a folder before its children, names sorted
// as squashfs wants them) as nodes.
func (b *sqBuilder) tree(kept []entry) error {
	fi, err := os.Stat(b.root)
	if err != nil {
		return err
	}
	rootNode := sqNode{mode: fi.Mode(), mtime: fi.ModTime(), parent: -1, file: -1}
	rootNode.uid, rootNode.gid, _ = owner(fi)
	b.nodes = make([]sqNode, 1, len(kept)+1)
	b.nodes[0] = rootNode
	dirs := map[string]int32{".": 0}
	for i := range kept {
		e := &kept[i]
		p, ok := dirs[path.Dir(e.rel)]
		if !ok {
			return fmt.Errorf("%s: its folder was not listed before it", e.rel)
		}
		idx := int32(len(b.nodes))
		n := sqNode{name: path.Base(e.rel), mode: e.mode, mtime: e.mtime, uid: e.uid, gid: e.gid,
			target: e.target, rdev: e.rdev, size: e.size, rel: e.rel, parent: p, file: -1}
		if n.mode.IsRegular() {
			n.file = int32(len(b.files))
			b.files = append(b.files, sqData{node: idx, frag: sqNone, same: -1})
		}
		if len(b.nodes[p].kids) > 0 && b.nodes[b.nodes[p].kids[len(b.nodes[p].kids)-1]].name >= n.name {
			return fmt.Errorf("%s: names are not in order", e.rel)
		}
		b.nodes = append(b.nodes, n)
		b.nodes[p].kids = append(b.nodes[p].kids, idx)
		if e.mode.IsDir() {
			dirs[e.rel] = idx
			b.nodes[p].subs++
		}
	}
	return nil
}

func owner(fi fs.FileInfo) (uid, gid uint32, rdev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid, st.Rdev
	}
	return 0, 0, 0
}

// sqSpecial is the inode type of a device, FIFO or socket, 0 for other types.
func sqSpecial(t fs.FileMode) uint16 {
	switch t {
	case fs.ModeDevice:
		return sqBlockDev
	case fs.ModeDevice | fs.ModeCharDevice:
		return sqCharDev
	case fs.ModeNamedPipe:
		return sqFIFO
	case fs.ModeSocket:
		return sqSocket
	}
	return 0
}

// sqDevNumber encodes a device number as squashfs stores it (the kernel's new_encode_dev).
func sqDevNumber(rdev uint64) uint32 {
	major, minor := unix.Major(rdev), unix.Minor(rdev)
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// sqJob is one data or fragment block on its way through the compressors to the writer.
type sqJob struct {
	raw    []byte // nil for a hole found by SEEK_DATA
	out    []byte // what is written: compressed, or raw
	size   uint32 // the size field
	file   int32  // -1: a fragment block
	first  bool   // the file's first block
	pooled bool   // raw comes from the block pool
	done   chan struct{}
}

// sqRead is a file read whole ahead of the writer.
type sqRead struct {
	file int32
	data []byte
	sum  uint64
	err  error
	done chan struct{}
}

// data reads every regular file once, in walk order, and writes its blocks: whole blocks compressed
// over all cores (a block of zeros becomes a hole), tails packed into fragment blocks. Memory in
// flight is bounded by the channels: at most ~64 files read ahead (each up to sqWhole) and a few
// blocks per core.
func (b *sqBuilder) data() error {
	workers := runtime.GOMAXPROCS(0)
	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	defer halt()
	var wg sync.WaitGroup
	defer wg.Wait()

	// Readers: small files whole, in parallel (a tree of small files costs mostly opens).
	seed := maphash.MakeSeed()
	ahead := make(chan *sqRead, 64)
	work := make(chan *sqRead, 64)
	wg.Go(func() {
		defer close(work)
		defer close(ahead)
		for i := range b.files {
			r := &sqRead{file: int32(i), done: make(chan struct{})}
			select {
			case ahead <- r:
			case <-stop:
				return
			}
			work <- r
		}
	})
	for range max(4, workers) {
		wg.Go(func() {
			for r := range work {
				n := &b.nodes[b.files[r.file].node]
				if n.size <= sqWhole && n.size > 0 {
					r.data, r.err = b.readWhole(n)
					r.sum = maphash.Bytes(seed, r.data)
				}
				close(r.done)
			}
		})
	}

	// Compressors.
	todo := make(chan *sqJob, workers)
	ordered := make(chan *sqJob, 4*workers)
	pool := &bufPool{size: sqBlock}
	outPool := &bufPool{size: sqBlock + sqBlock/8}
	var cwg sync.WaitGroup
	for range workers {
		cwg.Go(func() {
			var zw *zlib.Writer
			for j := range todo {
				if j.raw == nil || j.file >= 0 && vddk.IsZero(j.raw) {
					j.out, j.size = nil, 0 // a hole; j.raw goes back to its pool
					close(j.done)
					continue
				}
				w := &sliceWriter{b: outPool.get()[:0]}
				if zw == nil {
					zw, _ = zlib.NewWriterLevel(w, sqGzipLevel)
				} else {
					zw.Reset(w)
				}
				_, err := zw.Write(j.raw)
				if err == nil {
					err = zw.Close()
				}
				if err == nil && len(w.b) < len(j.raw) {
					j.out, j.size = w.b, uint32(len(w.b))
				} else {
					outPool.put(w.b)
					j.out, j.size = j.raw, uint32(len(j.raw))|sqRaw
				}
				close(j.done)
			}
		})
	}

	// The assembler: files in order, split into jobs.
	var asmErr error
	wg.Go(func() {
		defer close(ordered)
		defer close(todo)
		asmErr = b.assemble(ahead, todo, ordered, stop, pool)
		if asmErr != nil {
			halt()
		}
	})

	// The writer: blocks in order, into large writes.
	wbuf := make([]byte, 0, 1<<20)
	flushed := b.pos
	flush := func() error {
		_, err := b.f.WriteAt(wbuf, b.start+flushed)
		flushed += int64(len(wbuf))
		wbuf = wbuf[:0]
		return err
	}
	var werr error
	for j := range ordered {
		<-j.done
		if werr == nil {
			if j.file < 0 {
				b.frags = append(b.frags, sqFrag{start: b.pos, size: j.size})
			} else {
				d := &b.files[j.file]
				if j.first {
					d.start = b.pos
				}
				d.sizes = append(d.sizes, j.size)
				if j.size == 0 {
					d.sparse += sqBlock
				}
			}
			wbuf = append(wbuf, j.out...)
			b.pos += int64(len(j.out))
			if len(wbuf) >= 1<<20 {
				if werr = flush(); werr != nil {
					halt()
				}
			}
		}
		if j.size&sqRaw == 0 && j.out != nil {
			outPool.put(j.out)
		}
		if j.pooled {
			pool.put(j.raw)
		}
	}
	cwg.Wait()
	wg.Wait()
	if werr == nil && asmErr == nil {
		werr = flush()
	}
	if werr != nil { // the assembler then only says it was stopped
		return werr
	}
	return asmErr
}

// bufPool recycles byte slices of one capacity.
type bufPool struct {
	p    sync.Pool
	size int
}

// get returns a slice of length size.
func (b *bufPool) get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return (*v)[:b.size]
	}
	return make([]byte, b.size)
}

func (b *bufPool) put(x []byte) {
	if cap(x) >= b.size {
		b.p.Put(&x)
	}
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// assemble turns the files, in order, into block jobs: each goes to the compressors, then in the same
// order to the writer.
func (b *sqBuilder) assemble(ahead <-chan *sqRead, todo, ordered chan<- *sqJob, stop <-chan struct{}, pool *bufPool) error {
	send := func(j *sqJob) bool {
		j.done = make(chan struct{})
		select {
		case todo <- j:
		case <-stop:
			return false
		}
		ordered <- j // the compressors finish every job they took, so the writer never waits in vain
		return true
	}
	errStop := errors.New("stopped")
	frag := pool.get()[:0]
	nfrag := uint32(0)
	seal := func() bool {
		if len(frag) == 0 {
			return true
		}
		ok := send(&sqJob{raw: frag, file: -1, pooled: true})
		frag = pool.get()[:0]
		nfrag++
		return ok
	}
	tail := func(d *sqData, t []byte) bool {
		if len(t) == 0 {
			return true
		}
		if len(frag)+len(t) > sqBlock && !seal() {
			return false
		}
		d.frag, d.fragOff = nfrag, uint32(len(frag))
		frag = append(frag, t...)
		return true
	}
	type key struct {
		size int64
		sum  uint64
	}
	seen := map[key][]int32{}
	for r := range ahead {
		<-r.done
		if r.err != nil {
			return r.err
		}
		d := &b.files[r.file]
		n := &b.nodes[d.node]
		if n.size == 0 {
			continue
		}
		if r.data != nil {
			k := key{n.size, r.sum}
			if orig, err := b.same(seen[k], r.data); err != nil {
				return err
			} else if orig >= 0 {
				d.same = orig
				b.dups = true
				b.report(n.size)
				continue
			}
			seen[k] = append(seen[k], r.file)
			full := len(r.data) / sqBlock
			d.sizes = make([]uint32, 0, full)
			for i := range full {
				if !send(&sqJob{raw: r.data[i*sqBlock : (i+1)*sqBlock], file: r.file, first: i == 0}) {
					return errStop
				}
			}
			if !tail(d, r.data[full*sqBlock:]) {
				return errStop
			}
			b.report(n.size)
			continue
		}
		if err := b.stream(n, d, r.file, send, tail, pool); err != nil {
			return err
		}
	}
	if !seal() {
		return errStop
	}
	return nil
}

// same returns the earlier file among cands whose bytes equal data (read again to compare: the
// hash only picks the candidates), or -1.
func (b *sqBuilder) same(cands []int32, data []byte) (int32, error) {
	for _, c := range cands {
		other, err := b.readWhole(&b.nodes[b.files[c].node])
		if err != nil {
			return -1, err
		}
		if bytes.Equal(other, data) {
			return c, nil
		}
	}
	return -1, nil
}

// stream sends a large file's blocks, read one at a time; holes (SEEK_DATA) are not read.
func (b *sqBuilder) stream(n *sqNode, d *sqData, file int32, send func(*sqJob) bool, tail func(*sqData, []byte) bool, pool *bufPool) error {
	p := filepath.Join(b.root, filepath.FromSlash(n.rel))
	f, err := openSource(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// A file that shrank reads as holes past its new end (SEEK_DATA finds no data there): refuse it.
	sized := func() error {
		fi, err := f.Stat()
		if err == nil && fi.Size() != n.size {
			err = fmt.Errorf("%s holds %d bytes, %d when listed: it changed during the build", p, fi.Size(), n.size)
		}
		return err
	}
	if err := sized(); err != nil {
		return err
	}
	full := n.size / sqBlock
	d.sizes = make([]uint32, 0, full)
	for i := range full {
		off := i * sqBlock
		j := &sqJob{file: file, first: i == 0}
		if dat, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA); !(errors.Is(err, unix.ENXIO) || err == nil && dat >= off+sqBlock) {
			j.raw, j.pooled = pool.get(), true
			if _, err := f.ReadAt(j.raw, off); err != nil {
				return fmt.Errorf("read %s at %d: %w", p, off, err)
			}
		}
		if !send(j) {
			return errors.New("stopped")
		}
		b.report(sqBlock)
	}
	if rest := n.size - full*sqBlock; rest > 0 {
		t := make([]byte, rest)
		if _, err := f.ReadAt(t, full*sqBlock); err != nil {
			return fmt.Errorf("read %s at %d: %w", p, full*sqBlock, err)
		}
		if !tail(d, t) {
			return errors.New("stopped")
		}
		b.report(rest)
	}
	return sized()
}

// readWhole reads a file that holds n.size bytes.
func (b *sqBuilder) readWhole(n *sqNode) ([]byte, error) {
	p := filepath.Join(b.root, filepath.FromSlash(n.rel))
	f, err := openSource(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n.size)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("read %s (%d bytes when listed): %w", p, n.size, err)
	}
	return buf, nil
}

// sqMetaWriter cuts a stream into metadata blocks, each compressed when that makes it smaller.
type sqMetaWriter struct {
	out    []byte // sealed blocks
	cur    []byte // the open block's bytes
	starts []int64
	zw     *zlib.Writer
	zb     bytes.Buffer
}

// ref is the reference of the next byte written: its block's offset << 16 | offset in it.
func (m *sqMetaWriter) ref() uint64 { return uint64(len(m.out))<<16 | uint64(len(m.cur)) }

// logical is the count of bytes written.
func (m *sqMetaWriter) logical() int64 { return int64(len(m.starts))*sqMeta + int64(len(m.cur)) }

func (m *sqMetaWriter) write(p []byte) {
	for len(p) > 0 {
		k := min(len(p), sqMeta-len(m.cur))
		m.cur = append(m.cur, p[:k]...)
		p = p[k:]
		if len(m.cur) == sqMeta {
			m.seal()
		}
	}
}

func (m *sqMetaWriter) seal() {
	le := binary.LittleEndian
	m.starts = append(m.starts, int64(len(m.out)))
	m.zb.Reset()
	if m.zw == nil {
		m.zw, _ = zlib.NewWriterLevel(&m.zb, sqGzipLevel)
	} else {
		m.zw.Reset(&m.zb)
	}
	m.zw.Write(m.cur) // into a bytes.Buffer: no error
	m.zw.Close()
	if m.zb.Len() < len(m.cur) {
		m.out = le.AppendUint16(m.out, uint16(m.zb.Len()))
		m.out = append(m.out, m.zb.Bytes()...)
	} else {
		m.out = le.AppendUint16(m.out, 0x8000|uint16(len(m.cur)))
		m.out = append(m.out, m.cur...)
	}
	m.cur = m.cur[:0]
}

func (m *sqMetaWriter) finish() []byte {
	if len(m.cur) > 0 {
		m.seal()
	}
	return m.out
}

// tables writes the inode and directory tables, the fragment, export and id tables and the
// superblock after the data, and returns the bytes used.
func (b *sqBuilder) tables() (int64, error) {
	le := binary.LittleEndian
	// Inode numbers as the inodes are written: a folder's subfolders (depth first), then its other
	// children, then the folder itself; the root is the last.
	var num uint32
	var number func(i int32)
	number = func(i int32) {
		for _, k := range b.nodes[i].kids {
			if b.nodes[k].mode.IsDir() {
				number(k)
			}
		}
		for _, k := range b.nodes[i].kids {
			if !b.nodes[k].mode.IsDir() {
				num++
				b.nodes[k].num = num
			}
		}
		num++
		b.nodes[i].num = num
	}
	number(0)
	ids := map[uint32]uint16{}
	var idList []uint32
	id := func(v uint32) (uint16, error) {
		if x, ok := ids[v]; ok {
			return x, nil
		}
		if len(idList) == 1<<16 {
			return 0, fmt.Errorf("more than 65536 distinct owners and groups")
		}
		ids[v] = uint16(len(idList))
		idList = append(idList, v)
		return ids[v], nil
	}
	var inodes, dirs sqMetaWriter
	var buf []byte
	head := func(n *sqNode, typ uint16) error {
		u, err := id(n.uid)
		if err != nil {
			return err
		}
		g, err := id(n.gid)
		if err != nil {
			return err
		}
		mode := uint16(n.mode.Perm())
		if n.mode&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if n.mode&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if n.mode&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		buf = le.AppendUint16(buf[:0], typ)
		buf = le.AppendUint16(buf, mode)
		buf = le.AppendUint16(buf, u)
		buf = le.AppendUint16(buf, g)
		buf = le.AppendUint32(buf, uint32(min(max(n.mtime.Unix(), 0), 1<<32-1)))
		buf = le.AppendUint32(buf, n.num)
		return nil
	}
	leaf := func(n *sqNode) error {
		n.ref = inodes.ref()
		switch {
		case n.mode&fs.ModeSymlink != 0:
			if err := head(n, sqLink); err != nil {
				return err
			}
			buf = le.AppendUint32(buf, 1)
			buf = le.AppendUint32(buf, uint32(len(n.target)))
			buf = append(buf, n.target...)
		case n.mode.IsRegular():
			d := &b.files[n.file]
			if d.same >= 0 {
				d = &b.files[d.same]
			}
			if d.start < 1<<32 && n.size < 1<<32 && d.sparse == 0 {
				if err := head(n, sqFile); err != nil {
					return err
				}
				buf = le.AppendUint32(buf, uint32(d.start))
				buf = le.AppendUint32(buf, d.frag)
				buf = le.AppendUint32(buf, d.fragOff)
				buf = le.AppendUint32(buf, uint32(n.size))
			} else {
				if err := head(n, sqLFile); err != nil {
					return err
				}
				buf = le.AppendUint64(buf, uint64(d.start))
				buf = le.AppendUint64(buf, uint64(n.size))
				buf = le.AppendUint64(buf, uint64(d.sparse))
				buf = le.AppendUint32(buf, 1)
				buf = le.AppendUint32(buf, d.frag)
				buf = le.AppendUint32(buf, d.fragOff)
				buf = le.AppendUint32(buf, sqNone)
			}
			if int64(len(d.sizes)) != n.size/sqBlock {
				return fmt.Errorf("%s: %d blocks written for %d bytes", n.rel, len(d.sizes), n.size)
			}
			for _, s := range d.sizes {
				buf = le.AppendUint32(buf, s)
			}
		case sqSpecial(n.mode.Type()) != 0:
			typ := sqSpecial(n.mode.Type())
			if err := head(n, typ); err != nil {
				return err
			}
			buf = le.AppendUint32(buf, 1)
			if typ == sqBlockDev || typ == sqCharDev {
				buf = le.AppendUint32(buf, sqDevNumber(n.rdev))
			}
		default:
			return fmt.Errorf("%s: %v: %w", n.rel, n.mode.Type(), ErrUnsupported)
		}
		inodes.write(buf)
		return nil
	}
	var folder func(i int32) error
	folder = func(i int32) error {
		n := &b.nodes[i]
		for _, k := range n.kids {
			if b.nodes[k].mode.IsDir() {
				if err := folder(k); err != nil {
					return err
				}
			}
		}
		for _, k := range n.kids {
			if !b.nodes[k].mode.IsDir() {
				if err := leaf(&b.nodes[k]); err != nil {
					return err
				}
			}
		}
		listRef := dirs.ref()
		index, size := b.listing(&dirs, n)
		parent := uint32(len(b.nodes) + 1) // the root's, as mksquashfs writes it
		if n.parent >= 0 {
			parent = b.nodes[n.parent].num
		}
		n.ref = inodes.ref()
		if len(index) == 0 && size+3 <= 0xffff {
			if err := head(n, sqDir); err != nil {
				return err
			}
			buf = le.AppendUint32(buf, uint32(listRef>>16))
			buf = le.AppendUint32(buf, 2+n.subs)
			buf = le.AppendUint16(buf, uint16(size+3))
			buf = le.AppendUint16(buf, uint16(listRef))
			buf = le.AppendUint32(buf, parent)
		} else {
			if err := head(n, sqLDir); err != nil {
				return err
			}
			buf = le.AppendUint32(buf, 2+n.subs)
			buf = le.AppendUint32(buf, uint32(size+3))
			buf = le.AppendUint32(buf, uint32(listRef>>16))
			buf = le.AppendUint32(buf, parent)
			buf = le.AppendUint16(buf, uint16(len(index)))
			buf = le.AppendUint16(buf, uint16(listRef))
			buf = le.AppendUint32(buf, sqNone)
			for _, x := range index {
				buf = append(buf, x...)
			}
		}
		if size+3 > 1<<32-1 || len(index) > 0xffff {
			return fmt.Errorf("%s: folder listing of %d bytes is too large for squashfs", n.rel, size)
		}
		inodes.write(buf)
		return nil
	}
	if err := folder(0); err != nil {
		return 0, err
	}
	rootRef := b.nodes[0].ref
	inodeStart := b.pos
	inodeBytes := inodes.finish()
	dirStart := inodeStart + int64(len(inodeBytes))
	dirBytes := dirs.finish()
	tail := append(inodeBytes, dirBytes...)
	at := dirStart + int64(len(dirBytes))
	// table appends an indexed table (blocks, then their positions) and returns where its index is.
	table := func(data []byte) int64 {
		var m sqMetaWriter
		m.write(data)
		blocks := m.finish()
		first := at
		tail = append(tail, blocks...)
		at += int64(len(blocks))
		idx := at
		for _, s := range m.starts {
			tail = le.AppendUint64(tail, uint64(first+s))
			at += 8
		}
		return idx
	}
	var fragData []byte
	for _, fr := range b.frags {
		fragData = le.AppendUint64(fragData, uint64(fr.start))
		fragData = le.AppendUint32(fragData, fr.size)
		fragData = le.AppendUint32(fragData, 0)
	}
	fragTable := table(fragData)
	export := make([]byte, 8*len(b.nodes))
	for i := range b.nodes {
		le.PutUint64(export[8*(b.nodes[i].num-1):], b.nodes[i].ref)
	}
	exportTable := table(export)
	var idData []byte
	for _, v := range idList {
		idData = le.AppendUint32(idData, v)
	}
	idTable := table(idData)
	if _, err := b.f.WriteAt(tail, b.start+inodeStart); err != nil {
		return 0, err
	}
	if len(b.frags) > 1<<32-1 || len(b.nodes) > 1<<32-2 {
		return 0, fmt.Errorf("%d fragments and %d inodes: too many for squashfs", len(b.frags), len(b.nodes))
	}
	sb := make([]byte, 0, sqSB)
	sb = le.AppendUint32(sb, 0x73717368)
	sb = le.AppendUint32(sb, uint32(len(b.nodes)))
	sb = le.AppendUint32(sb, uint32(time.Now().Unix()))
	sb = le.AppendUint32(sb, sqBlock)
	sb = le.AppendUint32(sb, uint32(len(b.frags)))
	sb = le.AppendUint16(sb, 1) // zlib
	sb = le.AppendUint16(sb, sqBlockLog)
	flags := uint16(0x0200 | 0x0080 | 0x0020) // no xattrs, exportable, every tail in a fragment
	if b.dups {
		flags |= 0x0040
	}
	sb = le.AppendUint16(sb, flags)
	sb = le.AppendUint16(sb, uint16(len(idList)))
	sb = le.AppendUint16(sb, 4)
	sb = le.AppendUint16(sb, 0)
	sb = le.AppendUint64(sb, rootRef)
	sb = le.AppendUint64(sb, uint64(at))
	sb = le.AppendUint64(sb, uint64(idTable))
	sb = le.AppendUint64(sb, ^uint64(0)) // no xattr table
	sb = le.AppendUint64(sb, uint64(inodeStart))
	sb = le.AppendUint64(sb, uint64(dirStart))
	sb = le.AppendUint64(sb, uint64(fragTable))
	sb = le.AppendUint64(sb, uint64(exportTable))
	if _, err := b.f.WriteAt(sb, b.start); err != nil {
		return 0, err
	}
	return at, nil
}

// listing writes folder n's listing into dirs and returns its lookup index entries (one per
// metadata block the listing enters past its first, each naming the first entry of a header there)
// and its size. A header starts a run of at most 256 entries whose inodes share a metadata block
// and whose numbers lie within ±32767 of the header's; a new one also starts with each metadata
// block of the listing, so that the index can point at it.
func (b *sqBuilder) listing(dirs *sqMetaWriter, n *sqNode) (index [][]byte, size int64) {
	le := binary.LittleEndian
	type group struct{ from, to int }
	var groups []group
	startAt := dirs.logical()
	pos := int64(0)
	var hdrBlock, hdrBase uint32
	var hdrLogical int64
	for i, k := range n.kids {
		c := &b.nodes[k]
		g := len(groups) - 1
		d := int64(c.num) - int64(hdrBase)
		if g < 0 || groups[g].to-groups[g].from == 256 || uint32(c.ref>>16) != hdrBlock || d > 32767 || d < -32768 ||
			(startAt+pos)/sqMeta != hdrLogical {
			groups = append(groups, group{i, i})
			hdrBlock, hdrBase, hdrLogical = uint32(c.ref>>16), c.num, (startAt+pos)/sqMeta
			pos += 12
			g++
		}
		groups[g].to = i + 1
		pos += 8 + int64(len(c.name))
	}
	var buf []byte
	indexed := startAt / sqMeta // the block the inode's reference points into
	for gi, g := range groups {
		first := &b.nodes[n.kids[g.from]]
		if blk := (startAt + size) / sqMeta; gi > 0 && blk != indexed {
			indexed = blk
			x := le.AppendUint32(nil, uint32(size))
			x = le.AppendUint32(x, uint32(dirs.ref()>>16))
			x = le.AppendUint32(x, uint32(len(first.name)-1))
			x = append(x, first.name...)
			index = append(index, x)
		}
		buf = le.AppendUint32(buf[:0], uint32(g.to-g.from-1))
		buf = le.AppendUint32(buf, uint32(first.ref>>16))
		buf = le.AppendUint32(buf, first.num)
		for _, k := range n.kids[g.from:g.to] {
			c := &b.nodes[k]
			typ := uint16(sqFile)
			switch {
			case c.mode.IsDir():
				typ = sqDir
			case c.mode&fs.ModeSymlink != 0:
				typ = sqLink
			case sqSpecial(c.mode.Type()) != 0:
				typ = sqSpecial(c.mode.Type())
			}
			buf = le.AppendUint16(buf, uint16(c.ref))
			buf = le.AppendUint16(buf, uint16(int16(int64(c.num)-int64(first.num))))
			buf = le.AppendUint16(buf, typ)
			buf = le.AppendUint16(buf, uint16(len(c.name)-1))
			buf = append(buf, c.name...)
		}
		dirs.write(buf)
		size += int64(len(buf))
	}
	return index, size
}
