package makefs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// sqRaw marks a data or fragment block's size as stored uncompressed.
const sqRaw = 1 << 24

// sqRun is a run of data blocks as the metadata names it: a file's blocks (start in its inode, one
// size per block after it) or one fragment block (start and size in its fragment table entry). The
// fields are views into the decoded tables, rewritten in place.
type sqRun struct {
	start []byte // the start field: u64 when wide, else u32
	wide  bool
	sizes []byte // u32 sizes, one per block
}

func (r sqRun) at() int64 {
	if r.wide {
		return int64(binary.LittleEndian.Uint64(r.start))
	}
	return int64(binary.LittleEndian.Uint32(r.start))
}

func (r sqRun) setAt(p int64) {
	if r.wide {
		binary.LittleEndian.PutUint64(r.start, uint64(p))
	} else {
		binary.LittleEndian.PutUint32(r.start, uint32(p))
	}
}

// sqCompress compresses the data and fragment blocks go-diskfs wrote uncompressed in [from, to) of
// the squashfs at start, over all cores, and lays them out anew from the first one on, each stored
// raw when zlib does not shrink it; the runs' starts and sizes are updated. It returns where the
// data now ends. go-diskfs compresses on one thread with a new zlib writer per block, which made
// make-fs several times slower than mksquashfs.
//
// The blocks move only towards the start (a block never grows), in their on-disk order, and each is
// read before any block ahead of it is written, so rewriting in place never clobbers unread data.
func sqCompress(f *os.File, start, from, to int64, blockSize, level int, runs []sqRun) (int64, error) {
	le := binary.LittleEndian
	slices.SortFunc(runs, func(a, b sqRun) int { return cmp.Compare(a.at(), b.at()) })
	// The data begins at its first block (after the compressor's options, if any).
	first := to
	for _, r := range runs {
		if slices.ContainsFunc(r.sizes, func(b byte) bool { return b != 0 }) {
			first = min(first, r.at())
		}
	}
	if first < from {
		return 0, fmt.Errorf("data blocks at %d lie before the data (from %d)", first, from)
	}
	from = first
	// Check the runs lie in the data region one after the other, before moving anything.
	pos := from
	for _, r := range runs {
		at := r.at()
		if at < pos && len(r.sizes) > 0 {
			return 0, fmt.Errorf("data blocks at %d overlap others or lie before the data (from %d)", at, pos)
		}
		end := at
		for i := 0; i < len(r.sizes); i += 4 {
			s := le.Uint32(r.sizes[i:])
			if s != 0 && s&sqRaw == 0 {
				return 0, fmt.Errorf("data block at %d is compressed already", end)
			}
			if n := int64(s &^ sqRaw); n > int64(blockSize) {
				return 0, fmt.Errorf("data block at %d holds %d bytes, more than the block size %d", end, n, blockSize)
			} else {
				end += n
			}
		}
		if end > to {
			return 0, fmt.Errorf("data blocks at %d run past the data (to %d)", at, to)
		}
		pos = max(pos, end)
	}

	type job struct {
		raw, out []byte
		size     uint32 // the new size field
		done     chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	todo := make(chan *job, workers)
	inOrder := make(chan *job, 2*workers) // bounds the blocks in flight
	pool := sync.Pool{New: func() any { return &job{raw: make([]byte, blockSize), done: make(chan struct{}, 1)} }}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&buf, level)
			for j := range todo {
				buf.Reset()
				zw.Reset(&buf)
				_, err := zw.Write(j.raw)
				if err == nil {
					err = zw.Close()
				}
				if err == nil && buf.Len() < len(j.raw) {
					j.out, j.size = append(j.out[:0], buf.Bytes()...), uint32(buf.Len())
				} else {
					j.out, j.size = append(j.out[:0], j.raw...), uint32(len(j.raw))|sqRaw
				}
				j.done <- struct{}{}
			}
		}()
	}
	// The writer rewrites the starts while the reader is behind it: the reader keeps the old ones.
	olds := make([]int64, len(runs))
	for k, r := range runs {
		olds[k] = r.at()
	}
	// The reader: every block in on-disk order, to the workers and, in the same order, to the writer.
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		defer close(inOrder)
		defer close(todo)
		for k, r := range runs {
			at := olds[k]
			for i := 0; i < len(r.sizes); i += 4 {
				n := int(le.Uint32(r.sizes[i:]) &^ sqRaw)
				if n == 0 {
					continue // a hole: no bytes
				}
				j := pool.Get().(*job)
				j.raw = j.raw[:n]
				if _, err := f.ReadAt(j.raw, start+at); err != nil {
					readErr <- fmt.Errorf("read the data block at %d: %w", at, err)
					return
				}
				at += int64(n)
				select {
				case inOrder <- j:
				case <-stop:
					return
				}
				todo <- j
			}
		}
	}()
	// The writer: sizes and starts rewritten as the blocks come back, bytes gathered into large writes.
	out := make([]byte, 0, 1<<20)
	pos = from
	flushed := from
	flush := func() error {
		_, err := f.WriteAt(out, start+flushed)
		flushed += int64(len(out))
		out = out[:0]
		return err
	}
	var err error
	for _, r := range runs {
		if err != nil {
			break
		}
		r.setAt(pos)
		for i := 0; i < len(r.sizes) && err == nil; i += 4 {
			if le.Uint32(r.sizes[i:])&^sqRaw == 0 {
				continue
			}
			j, ok := <-inOrder
			if !ok {
				err = <-readErr
				break
			}
			<-j.done
			le.PutUint32(r.sizes[i:], j.size)
			out = append(out, j.out...)
			pos += int64(len(j.out))
			pool.Put(j)
			if len(out) >= 1<<20 {
				err = flush()
			}
		}
	}
	if err == nil {
		err = flush()
	}
	close(stop)
	for j := range inOrder { // let the reader finish
		<-j.done
	}
	wg.Wait()
	if err != nil {
		return 0, err
	}
	return pos, nil
}
