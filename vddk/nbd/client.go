package nbd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// IsURI says whether a DISK argument names an NBD export rather than a file.
func IsURI(s string) bool {
	for _, p := range []string{"nbd://", "nbds://", "nbd+unix://", "nbds+unix://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Options tune Dial. Zero values pick defaults.
type Options struct {
	TLS      *tls.Config   // for nbds: URIs (default: the system's roots, the URI's host name)
	Timeout  time.Duration // connecting, and waiting for any one reply (default 30 s)
	InFlight int           // requests on the wire at once per connection (default 16, qemu-nbd's own limit)
	// Conns is how many connections to open when the server advertises multi-conn (default 4); requests are
	// spread across them. One connection when the server does not advertise it.
	Conns int
	Log   *slog.Logger
}

// ErrConnection marks a request lost with its connection (after the one reconnection attempt). The
// socket's own error is in the message only, so that callers mapping errors to errnos see EIO-worthy damage.
var ErrConnection = errors.New("nbd connection lost")

// Disk is an NBD export opened as a read-only disk: an io.ReaderAt safe for concurrent use, with the
// allocation map the server gives (base:allocation) when it gives one.
type Disk struct {
	network, addr string
	export        string
	useTLS        bool
	name          string // the URI without host, port or socket: for messages and logs
	opts          Options

	size     int64
	minBlock int64
	maxReq   int64
	reqSize  int64 // the size ReadAt cuts large reads into, so that they spread over requests and connections
	alloc    bool  // the first connection negotiated base:allocation
	readOnly bool
	sem      chan struct{}

	slots []*slot
	next  atomic.Uint32 // round robin over slots
}

// slot is one connection of the disk, remade when it dies.
type slot struct {
	mu     sync.Mutex
	c      *conn
	closed bool
}

// Dial connects to the export a URI names (nbd://host[:port]/export, nbds://…, nbd+unix:///export?socket=PATH,
// nbds+unix://…) and negotiates structured replies and base:allocation when the server offers them.
func Dial(uri string, opts Options) (*Disk, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 16
	}
	if opts.Conns <= 0 {
		opts.Conns = 4
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	d := &Disk{opts: opts}
	if err := d.parse(uri); err != nil {
		return nil, err
	}
	c, err := d.connect()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	d.size = c.size
	d.alloc = c.metaCtx
	d.readOnly = c.flags&tflagReadOnly != 0
	d.minBlock = max(1, int64(c.minBlock))
	d.maxReq = defaultMaxRequest
	if c.maxBlock > 0 {
		d.maxReq = min(d.maxReq, int64(c.maxBlock)/d.minBlock*d.minBlock)
	}
	d.reqSize = max(d.minBlock, min(d.maxReq, readRequest/d.minBlock*d.minBlock))
	d.slots = []*slot{{c: c}}
	if c.flags&tflagCanMultiConn != 0 {
		d.slots = append(d.slots, d.more(opts.Conns-1)...)
	}
	d.sem = make(chan struct{}, opts.InFlight*len(d.slots))
	return d, nil
}

// readRequest is the request size ReadAt cuts big reads into: large enough that per-request costs vanish,
// small enough that one ReadAt of a few MiB keeps every connection busy.
const readRequest = 1 << 20

// extraConnTimeout bounds the handshake of the connections past the first.
const extraConnTimeout = time.Second

// more opens up to n further connections to a multi-conn export, at once; those that fail, differ from
// the first or are not greeted within a second are dropped (the disk works on fewer): qemu-nbd serving
// one client at a time still advertises multi-conn, and leaves the others waiting in its backlog.
func (d *Disk) more(n int) []*slot {
	got := make([]*conn, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			c, err := d.connectWithin(min(d.opts.Timeout, extraConnTimeout))
			if err != nil {
				d.opts.Log.Debug("nbd: an extra connection failed", "export", d.name, "err", err)
				return
			}
			if d.sameExport(c) != nil {
				c.disconnect()
				return
			}
			got[i] = c
		})
	}
	wg.Wait()
	var out []*slot
	for _, c := range got {
		if c != nil {
			out = append(out, &slot{c: c})
		}
	}
	return out
}

func (d *Disk) parse(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("nbd URI: %w", err)
	}
	d.export = strings.TrimPrefix(u.Path, "/")
	d.useTLS = strings.HasPrefix(u.Scheme, "nbds")
	d.name = u.Scheme + ":///" + d.export
	switch u.Scheme {
	case "nbd", "nbds":
		host := u.Host
		if host == "" {
			return fmt.Errorf("%s: no host", d.name)
		}
		if u.Port() == "" {
			host = net.JoinHostPort(strings.Trim(host, "[]"), "10809")
		}
		d.network, d.addr = "tcp", host
	case "nbd+unix", "nbds+unix":
		d.network, d.addr = "unix", u.Query().Get("socket")
		if d.addr == "" || u.Host != "" {
			return fmt.Errorf("%s: a unix URI needs ?socket=PATH and no host", d.name)
		}
	default:
		return fmt.Errorf("%q is not an NBD URI", u.Scheme)
	}
	return nil
}

// String names the export without its host or socket (those stay out of logs).
func (d *Disk) String() string { return d.name }

// Size is the export's size in bytes.
func (d *Disk) Size() int64 { return d.size }

// HasAllocation says whether the server reports base:allocation.
func (d *Disk) HasAllocation() bool { return d.alloc }

// ReadOnly says whether the server refuses writes to the export.
func (d *Disk) ReadOnly() bool { return d.readOnly }

// Conns is the number of connections the disk spreads its requests over.
func (d *Disk) Conns() int { return len(d.slots) }

// Close ends the connections.
func (d *Disk) Close() error {
	for _, s := range d.slots {
		s.mu.Lock()
		s.closed = true
		if s.c != nil {
			s.c.disconnect()
			s.c = nil
		}
		s.mu.Unlock()
	}
	return nil
}

// current returns the slot's live connection, making a new one when the last one (dead) died.
func (d *Disk) current(s *slot, dead *conn) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: %w", d.name, net.ErrClosed)
	}
	if s.c != nil && s.c != dead && s.c.alive() {
		return s.c, nil
	}
	why := errors.New("no connection")
	if s.c != nil {
		why = s.c.why()
	}
	d.opts.Log.Warn("nbd connection lost, reconnecting", "export", d.name, "err", why)
	c, err := d.connect()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v; reconnecting failed: %v", d.name, ErrConnection, why, err)
	}
	if err := d.sameExport(c); err != nil {
		c.disconnect()
		return nil, err
	}
	s.c = c
	return c, nil
}

// sameExport checks that a later connection (an extra one or a reconnection) reached the export the
// disk was opened on: same size, and block status offered as before.
func (d *Disk) sameExport(c *conn) error {
	if c.size != d.size {
		return fmt.Errorf("%s: %w: the export's size changed from %d to %d on reconnection", d.name, ErrConnection, d.size, c.size)
	}
	if c.metaCtx != d.alloc {
		return fmt.Errorf("%s: %w: base:allocation changed on reconnection", d.name, ErrConnection)
	}
	return nil
}

// do runs one request, reconnecting once when its connection dies under it.
func (d *Disk) do(cl *call) error {
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	s := d.slots[int(d.next.Add(1))%len(d.slots)]
	var last *conn
	for attempt := 0; ; attempt++ {
		c, err := d.current(s, last)
		if err != nil {
			return err
		}
		err = c.roundTrip(cl, d.opts.Timeout)
		var re *RemoteError
		if err == nil || errors.As(err, &re) || attempt == 1 {
			if err != nil && !errors.As(err, &re) {
				// %v: a socket's errno (ENOENT, EPIPE) must not pass for the read's own.
				err = fmt.Errorf("%s: %w: %v", d.name, ErrConnection, err)
			}
			return err
		}
		last = c
		c.fail(err) // whatever failed the call, the connection is not trusted again
		<-c.exited  // its reader may still be filling cl.buf
		cl.reset()
	}
}

// ReadAt reads len(p) bytes at off, in requests of at most the server's maximum, several at once.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", d.name)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), d.size-off))
	var wg sync.WaitGroup
	var emu sync.Mutex
	var first error
	for done := 0; done < n; {
		k := int(min(int64(n-done), d.reqSize))
		q, o := p[done:done+k], off+int64(done)
		wg.Go(func() {
			if err := d.readAligned(q, o); err != nil {
				emu.Lock()
				if first == nil {
					first = err
				}
				emu.Unlock()
			}
		})
		done += k
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readAligned reads through a bounce buffer when the server wants larger aligned requests.
func (d *Disk) readAligned(p []byte, off int64) error {
	s := off / d.minBlock * d.minBlock
	e := min((off+int64(len(p))+d.minBlock-1)/d.minBlock*d.minBlock, d.size)
	if s == off && e == off+int64(len(p)) {
		return d.do(&call{typ: cmdRead, off: uint64(off), length: uint32(len(p)), buf: p})
	}
	buf := make([]byte, e-s)
	if err := d.do(&call{typ: cmdRead, off: uint64(s), length: uint32(len(buf)), buf: buf}); err != nil {
		return err
	}
	copy(p, buf[off-s:])
	return nil
}

// Extents describes [off, off+n) as data and hole runs, from base:allocation; all data when the server
// does not report allocation.
func (d *Disk) Extents(off, n int64) ([]Extent, error) {
	end := min(off+n, d.size)
	if !d.HasAllocation() {
		return []Extent{{off, end - off, false}}, nil
	}
	var out []Extent
	for pos := off; pos < end; {
		k := min(end-pos, 1<<30)
		cl := &call{typ: cmdBlockStatus, off: uint64(pos), length: uint32(k)}
		if err := d.do(cl); err != nil {
			return nil, err
		}
		if len(cl.extents) == 0 {
			return nil, fmt.Errorf("%s: %w: empty block status at %d", d.name, ErrProtocol, pos)
		}
		for _, e := range cl.extents {
			if k := len(out); k > 0 && out[k-1].Hole == e.Hole {
				out[k-1].Length += e.Length
			} else {
				out = append(out, e)
			}
			pos = e.Offset + e.Length
		}
	}
	return out, nil
}

// call is one request and what its replies brought.
type call struct {
	typ     uint16
	off     uint64
	length  uint32
	buf     []byte // read destination, length bytes
	extents []Extent
	got     uint64 // bytes of buf the replies covered
	err     error
	done    chan struct{}
	// after, when set, is called by the connection's reader when the call completes, instead of closing
	// done: Stream's pumps run there, without waking another goroutine per reply.
	after func(*call)
	to    *fileSink // read data goes to this file at the request's offsets, not to buf (CopyTo)
}

func (c *call) reset() { c.extents, c.got, c.err, c.done = nil, 0, nil, nil }

// conn is one negotiated connection: a reader goroutine matches replies to calls by handle.
type conn struct {
	nc                 net.Conn
	size               int64
	flags              uint16
	structured         bool
	metaCtx            bool
	ctxID              uint32
	minBlock, maxBlock uint32

	raw     syscall.RawConn // the socket, for splicing read data into files; nil under TLS
	hdr     *capReader      // under the reader's buffer: bounds its fills around headers during a copy
	copying atomic.Bool     // a CopyTo pumps on this connection
	viaMem  int64           // bytes of read data the reader wrote to files through memory, not spliced
	pipe    [2]int          // the reader's splice pipe, made on first use
	bounce  []byte          // the reader's buffer for data on its way to a file through memory

	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint64]*call
	next    uint64
	err     error // why it died
	dead    chan struct{}
	exited  chan struct{} // closed when readLoop returns
}

func (c *conn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

func (c *conn) why() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection: every waiting call gets err (without the socket's addresses).
func (c *conn) fail(err error) {
	err = unwrapAll(err)
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		close(c.dead)
	}
	c.mu.Unlock()
	c.nc.Close()
}

func (c *conn) disconnect() {
	var h [28]byte
	be.PutUint32(h[0:], requestMagic)
	be.PutUint16(h[6:], cmdDisc)
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(h[:])
	c.wmu.Unlock()
	c.fail(net.ErrClosed)
}

func (c *conn) roundTrip(cl *call, timeout time.Duration) error {
	cl.done = make(chan struct{})
	if err := c.send(cl, timeout); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-cl.done:
		return cl.err
	case <-c.dead:
		return c.why()
	case <-t.C:
		c.fail(fmt.Errorf("no reply in %v", timeout))
		return c.why()
	}
}

// send registers cl under a new handle and writes its request. A failed write fails the connection
// (cl then fails with it); only a connection dead before the call returns its error.
func (c *conn) send(cl *call, timeout time.Duration) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.next++
	h := c.next
	c.pending[h] = cl
	c.mu.Unlock()
	var req [28]byte
	be.PutUint32(req[0:], requestMagic)
	be.PutUint16(req[6:], cl.typ)
	be.PutUint64(req[8:], h)
	be.PutUint64(req[16:], cl.off)
	be.PutUint32(req[24:], cl.length)
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.nc.Write(req[:])
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("sending a request: %w", err))
	}
	return nil
}

// complete hands a finished call back: to its after function, run by the reader itself, or to the
// goroutine waiting in roundTrip.
func complete(cl *call) {
	if cl.after != nil {
		cl.after(cl)
		return
	}
	close(cl.done)
}

// readLoop reads replies until the connection fails.
func (c *conn) readLoop() {
	defer close(c.exited)
	defer c.closePipe()
	c.hdr = &capReader{r: c.nc}
	br := bufio.NewReaderSize(c.hdr, 16<<10) // small: read data past it goes straight into the caller's buffer
	for {
		if err := c.readReply(br); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("server closed the connection: %w", err)
			}
			c.fail(err)
			return
		}
	}
}

func (c *conn) lookup(h uint64, remove bool) (*call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.pending[h]
	if cl == nil {
		return nil, protoErr("reply for unknown handle %#x", h)
	}
	if remove {
		delete(c.pending, h)
	}
	return cl, nil
}

func (c *conn) readReply(br *bufio.Reader) error {
	var h [20]byte
	c.capFills(20 + 8) // a structured reply header and a data chunk's offset
	if _, err := io.ReadFull(br, h[:4]); err != nil {
		return err
	}
	switch be.Uint32(h[:]) {
	case simpleReplyMagic:
		if _, err := io.ReadFull(br, h[4:16]); err != nil {
			return err
		}
		c.capFills(0)
		cl, err := c.lookup(be.Uint64(h[8:]), true)
		if err != nil {
			return err
		}
		if e := be.Uint32(h[4:]); e != 0 {
			cl.err = &RemoteError{Code: e}
		} else if cl.typ == cmdRead {
			if err := c.payload(br, cl, 0, uint64(cl.length)); err != nil {
				return err
			}
		} else if cl.typ == cmdBlockStatus {
			return protoErr("simple reply to a block status request")
		}
		complete(cl)
		return nil
	case structReplyMagic:
		if _, err := io.ReadFull(br, h[4:20]); err != nil {
			return err
		}
		c.capFills(0)
		flags, typ, handle, n := be.Uint16(h[4:]), be.Uint16(h[6:]), be.Uint64(h[8:]), be.Uint32(h[16:])
		cl, err := c.lookup(handle, false)
		if err != nil {
			return err
		}
		if err := c.chunk(br, cl, typ, n); err != nil {
			return err
		}
		if flags&replyFlagDone != 0 {
			c.lookup(handle, true)
			if cl.err == nil && cl.typ == cmdRead && cl.got != uint64(cl.length) {
				return protoErr("read reply covered %d of %d bytes", cl.got, cl.length)
			}
			complete(cl)
		}
		return nil
	default:
		return protoErr("bad reply magic %#x", be.Uint32(h[:]))
	}
}

// maxChunk bounds a reply chunk's payload other than read data: block status descriptors, errors.
const maxChunk = 1<<20 + 4

// chunk reads one structured reply chunk of n bytes into cl.
func (c *conn) chunk(br *bufio.Reader, cl *call, typ uint16, n uint32) error {
	switch {
	case typ == replyOffsetData:
		if cl.typ != cmdRead || n < 8 || uint64(n)-8 > uint64(cl.length) {
			return protoErr("data chunk of %d bytes for a %d-byte request", n, cl.length)
		}
		var o [8]byte
		c.capFills(len(o))
		if _, err := io.ReadFull(br, o[:]); err != nil {
			return err
		}
		c.capFills(0)
		off, k := be.Uint64(o[:]), uint64(n-8)
		if off < cl.off || off-cl.off+k > uint64(cl.length) {
			return protoErr("data chunk at %d+%d outside the request %d+%d", off, k, cl.off, cl.length)
		}
		if err := c.payload(br, cl, off-cl.off, k); err != nil {
			return err
		}
		cl.got += k
		return nil
	case n > maxChunk:
		return protoErr("reply chunk of %d bytes", n)
	}
	p, err := readFull(br, int(n))
	if err != nil {
		return err
	}
	return c.parseChunk(cl, typ, p)
}

// parseChunk applies a structured reply chunk other than read data.
func (c *conn) parseChunk(cl *call, typ uint16, p []byte) error {
	switch typ {
	case replyNone:
		if len(p) != 0 {
			return protoErr("NONE chunk with %d bytes", len(p))
		}
	case replyOffsetHole:
		if cl.typ != cmdRead || len(p) != 12 {
			return protoErr("bad hole chunk")
		}
		off, k := be.Uint64(p), uint64(be.Uint32(p[8:]))
		if off < cl.off || off-cl.off+k > uint64(cl.length) || k == 0 {
			return protoErr("hole chunk at %d+%d outside the request %d+%d", off, k, cl.off, cl.length)
		}
		if cl.to == nil { // a file destination reads as zeros already
			clear(cl.buf[off-cl.off : off-cl.off+k])
		}
		cl.got += k
	case replyBlockStatus:
		if cl.typ != cmdBlockStatus || len(p) < 12 || (len(p)-4)%8 != 0 {
			return protoErr("bad block status chunk of %d bytes", len(p))
		}
		if id := be.Uint32(p); id != c.ctxID {
			return protoErr("block status for context %d, not %d", id, c.ctxID)
		}
		pos, end := int64(cl.off), int64(cl.off)+int64(cl.length)
		for q := p[4:]; len(q) >= 8 && pos < end; q = q[8:] {
			k := int64(be.Uint32(q))
			if k == 0 {
				return protoErr("empty block status extent")
			}
			k = min(k, end-pos) // a last extent may reach past the request: keep what was asked
			cl.extents = append(cl.extents, Extent{pos, k, be.Uint32(q[4:])&stateHole != 0})
			pos += k
		}
	case replyError, replyErrorOffset:
		if len(p) < 6 || int(be.Uint16(p[4:]))+6 > len(p) {
			return protoErr("bad error chunk")
		}
		code := be.Uint32(p)
		if code == 0 {
			code = errIO
		}
		cl.err = &RemoteError{Code: code, Message: string(p[6 : 6+be.Uint16(p[4:])])}
	default:
		if typ&0x8000 != 0 && len(p) >= 4 {
			cl.err = &RemoteError{Code: be.Uint32(p)}
			return nil
		}
		return protoErr("unknown reply chunk type %d", typ)
	}
	return nil
}
