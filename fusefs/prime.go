package fusefs

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// primer pushes the first bytes of the files of a directory being listed into the kernel's page cache
// (FUSE_NOTIFY_STORE), so that a walker reading them finds them there and waits for no round trip.
// A walk that reads every file (a scanner, find | xargs cat) otherwise pays one READ per file, one after
// the other: the walker and this process take turns, and each file costs both of them a wake-up.
// Priming runs only while files are being read, so a walk that only lists (ls -lR, find) stores nothing.
type primer struct {
	queue    chan *treeNode
	workers  atomic.Int32
	lastRead atomic.Int64 // time (UnixNano) of the latest READ of a tree file
}

const (
	primeBytes   = 128 << 10       // of each file: the first read of a walker (cat, a scanner) is about this
	primeQueue   = 1024            // files waiting; beyond that, a listing is read the usual way
	primeWorkers = 2               // files read and stored at once
	primeWindow  = 2 * time.Second // priming stays on this long after the latest READ
)

var primeBufs = sync.Pool{New: func() any { b := make([]byte, primeBytes); return &b }}

func newPrimer() *primer { return &primer{queue: make(chan *treeNode, primeQueue)} }

// reading notes a READ of a tree file: reads are going on, so listings are worth priming.
func (p *primer) reading() {
	if p != nil {
		p.lastRead.Store(time.Now().UnixNano())
	}
}

// add queues a regular file just listed; it is stored once, and only while files are being read.
func (p *primer) add(n *treeNode) {
	if p == nil || n.st.Mode&syscall.S_IFMT != syscall.S_IFREG || n.st.Size == 0 ||
		time.Now().UnixNano()-p.lastRead.Load() > int64(primeWindow) || !n.primed.CompareAndSwap(false, true) {
		return
	}
	select {
	case p.queue <- n:
	default:
		return
	}
	if p.claimWorker() {
		go p.work()
	}
}

func (p *primer) claimWorker() bool {
	for {
		w := p.workers.Load()
		if w >= primeWorkers {
			return false
		}
		if p.workers.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// work stores queued files until the queue is empty.
func (p *primer) work() {
	bp := primeBufs.Get().(*[]byte)
	defer primeBufs.Put(bp)
	for {
		select {
		case n := <-p.queue:
			p.store(n, *bp)
		default:
			p.workers.Add(-1)
			// A file queued between the empty check and the decrement found every worker busy: take it.
			if len(p.queue) == 0 || !p.claimWorker() {
				return
			}
		}
	}
}

// store reads the first bytes of n's file and hands them to the kernel. Nothing is stored when a reader
// already has the file open (its own READ fills the cache), or when the read falls short: only whole
// pages, or the whole file, become valid page-cache pages.
func (p *primer) store(n *treeNode, buf []byte) {
	n.mu.Lock()
	busy := n.file != nil
	n.mu.Unlock()
	if busy {
		return
	}
	want := min(n.st.Size, int64(len(buf)))
	f, en := n.open()
	if en != 0 {
		return
	}
	k, _ := f.ReadAt(buf[:want], 0)
	f.Close()
	if int64(k) != want {
		return
	}
	// ENOENT: the kernel has forgotten the file already; its reader, if any, will ask.
	n.WriteCache(0, buf[:k])
}
