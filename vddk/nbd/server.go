package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Writer is what a writable export needs: writes and a flush that makes them durable.
type Writer interface {
	io.WriterAt
	Flush() error
}

// Export is one disk served under a name.
type Export struct {
	Name        string
	Description string
	Size        int64
	R           io.ReaderAt
	W           Writer // nil: read-only, writes are refused with EPERM
	// Allocated lists the ranges of [off, off+n) that hold data, in order; the rest reads as zeros.
	// Nil reports the whole export as data.
	Allocated func(off, n int64) ([]Extent, error)

	mu sync.RWMutex // writes exclusive against reads: a grain being allocated is not read half-made
}

// Server serves exports over NBD. The zero value of each limit picks a default.
type Server struct {
	Exports          []*Export
	TLS              *tls.Config // non-nil: clients must STARTTLS before anything else
	MaxRequest       int         // largest read or write payload (default 32 MiB)
	MaxConns         int         // connections served at once (default 64); more wait in the kernel's backlog
	InFlight         int         // requests of one connection processed at once (default 16)
	MemBudget        int64       // bytes of request buffers held across all connections (default 256 MiB)
	HandshakeTimeout time.Duration
	WriteTimeout     time.Duration // a reply not taken by the client in this time closes the connection
	// IdleTimeout closes a connection that sends no request for this long while none of its requests is
	// in progress (0: never). Its slot goes to another client; a client that reconnects (ours, qemu's
	// with reconnect-delay) does not notice, the kernel's nbd client does not reconnect.
	IdleTimeout time.Duration
	Log         *slog.Logger

	once  sync.Once
	mem   chan struct{} // one token per MiB of MemBudget
	memMu sync.Mutex
	conns chan struct{}
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.MaxRequest <= 0 {
			s.MaxRequest = defaultMaxRequest
		}
		if s.MaxConns <= 0 {
			s.MaxConns = 64
		}
		if s.InFlight <= 0 {
			s.InFlight = 16
		}
		if s.MemBudget <= 0 {
			s.MemBudget = 256 << 20
		}
		if s.HandshakeTimeout <= 0 {
			s.HandshakeTimeout = 30 * time.Second
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = 60 * time.Second
		}
		if s.Log == nil {
			s.Log = slog.Default()
		}
		tokens := max(int(s.MemBudget>>20), (s.MaxRequest+1<<20-1)>>20)
		s.mem = make(chan struct{}, tokens)
		s.conns = make(chan struct{}, s.MaxConns)
	})
}

// Serve accepts connections on l until ctx ends, then closes them all and returns once they are done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.init()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	var err error
	for {
		select {
		case s.conns <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		var c net.Conn
		c, err = l.Accept()
		if err != nil {
			<-s.conns
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			break
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.conns }()
			s.serveConn(c)
			mu.Lock()
			delete(open, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// ServeConn runs the protocol on one connection (a listener's, or a socket pair's) and closes it.
func (s *Server) ServeConn(c net.Conn) {
	s.init()
	s.serveConn(c)
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	sess := &session{srv: s, conn: c}
	if err := sess.handshake(); err != nil {
		if !errors.Is(err, errAbort) {
			// The peer's address is a host name's stand-in: debug level only.
			s.Log.Debug("nbd handshake ended", "peer", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	sess.transmit()
}

var errAbort = errors.New("client aborted")

type session struct {
	srv        *Server
	conn       net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	noZeroes   bool
	structured bool
	metaCtx    bool
	tlsDone    bool
	exp        *Export
}

func (s *session) handshake() error {
	s.conn.SetDeadline(time.Now().Add(s.srv.HandshakeTimeout))
	s.br = bufio.NewReader(s.conn)
	s.bw = bufio.NewWriter(s.conn)
	var hello [18]byte
	be.PutUint64(hello[0:], nbdMagic)
	be.PutUint64(hello[8:], optMagic)
	be.PutUint16(hello[16:], flagFixedNewstyle|flagNoZeroes)
	s.bw.Write(hello[:])
	if err := s.bw.Flush(); err != nil {
		return err
	}
	cf, err := readFull(s.br, 4)
	if err != nil {
		return err
	}
	flags := be.Uint32(cf)
	if flags&flagFixedNewstyle == 0 {
		return protoErr("client does not speak fixed newstyle")
	}
	if flags&^uint32(flagFixedNewstyle|flagNoZeroes) != 0 {
		return protoErr("unknown client flags %#x", flags)
	}
	s.noZeroes = flags&flagNoZeroes != 0
	for range maxOptionsPerHello {
		done, err := s.option()
		if err != nil || done {
			if err == nil {
				s.conn.SetDeadline(time.Time{})
			}
			return err
		}
	}
	return protoErr("more than %d options", maxOptionsPerHello)
}

func (s *session) optReply(opt, typ uint32, data []byte) error {
	var h [20]byte
	be.PutUint64(h[0:], optReplyMagic)
	be.PutUint32(h[8:], opt)
	be.PutUint32(h[12:], typ)
	be.PutUint32(h[16:], uint32(len(data)))
	s.bw.Write(h[:])
	s.bw.Write(data)
	return s.bw.Flush()
}

// option reads and answers one option; done means transmission starts.
func (s *session) option() (done bool, err error) {
	h, err := readFull(s.br, 16)
	if err != nil {
		return false, err
	}
	if be.Uint64(h) != optMagic {
		return false, protoErr("bad option magic %#x", be.Uint64(h))
	}
	opt, n := be.Uint32(h[8:]), be.Uint32(h[12:])
	if n > maxOptionLength {
		// Too big to read into memory: say so, skip it if it is small enough to skip, else hang up.
		if n > 4*maxOptionLength {
			return false, protoErr("option %d of %d bytes", opt, n)
		}
		if _, err := io.CopyN(io.Discard, s.br, int64(n)); err != nil {
			return false, err
		}
		return false, s.optReply(opt, repErrTooBig, nil)
	}
	data, err := readFull(s.br, int(n))
	if err != nil {
		return false, err
	}
	if s.srv.TLS != nil && !s.tlsDone {
		switch opt {
		case optStartTLS, optAbort:
		case optExportName:
			return false, protoErr("export name before STARTTLS")
		default:
			return false, s.optReply(opt, repErrTLSReqd, nil)
		}
	}
	switch opt {
	case optAbort:
		s.optReply(opt, repAck, nil)
		return false, errAbort
	case optStartTLS:
		if len(data) != 0 {
			return false, s.optReply(opt, repErrInvalid, nil)
		}
		if s.srv.TLS == nil {
			return false, s.optReply(opt, repErrPolicy, nil)
		}
		if s.tlsDone {
			return false, s.optReply(opt, repErrInvalid, nil)
		}
		if err := s.optReply(opt, repAck, nil); err != nil {
			return false, err
		}
		tc := tls.Server(s.conn, s.srv.TLS)
		if err := tc.Handshake(); err != nil {
			return false, fmt.Errorf("tls: %w", err)
		}
		s.conn, s.tlsDone = tc, true
		s.br, s.bw = bufio.NewReader(tc), bufio.NewWriter(tc)
		return false, nil
	case optList:
		if len(data) != 0 {
			return false, s.optReply(opt, repErrInvalid, nil)
		}
		for _, e := range s.srv.Exports {
			b := be.AppendUint32(nil, uint32(len(e.Name)))
			b = append(append(b, e.Name...), e.Description...)
			if err := s.optReply(opt, repServer, b); err != nil {
				return false, err
			}
		}
		return false, s.optReply(opt, repAck, nil)
	case optStructured:
		if len(data) != 0 {
			return false, s.optReply(opt, repErrInvalid, nil)
		}
		s.structured = true
		return false, s.optReply(opt, repAck, nil)
	case optSetMetaCtx, optListMetaCtx:
		return false, s.metaContext(opt, data)
	case optInfo, optGo:
		name, infos, ok := parseInfoRequest(data)
		if !ok {
			return false, s.optReply(opt, repErrInvalid, nil)
		}
		e := s.lookup(name)
		if e == nil {
			return false, s.optReply(opt, repErrUnknown, []byte("no such export"))
		}
		b := be.AppendUint16(nil, infoExport)
		b = be.AppendUint64(b, uint64(e.Size))
		b = be.AppendUint16(b, s.transmissionFlags(e))
		if err := s.optReply(opt, repInfo, b); err != nil {
			return false, err
		}
		for _, i := range infos {
			if i == infoBlockSize {
				b := be.AppendUint16(nil, infoBlockSize)
				b = be.AppendUint32(b, 1)
				b = be.AppendUint32(b, 4096)
				b = be.AppendUint32(b, uint32(s.srv.MaxRequest))
				if err := s.optReply(opt, repInfo, b); err != nil {
					return false, err
				}
			}
		}
		if err := s.optReply(opt, repAck, nil); err != nil {
			return false, err
		}
		if opt == optGo {
			s.exp = e
			return true, nil
		}
		return false, nil
	case optExportName:
		e := s.lookup(string(data))
		if e == nil {
			return false, protoErr("no such export")
		}
		b := be.AppendUint64(nil, uint64(e.Size))
		b = be.AppendUint16(b, s.transmissionFlags(e))
		if !s.noZeroes {
			b = append(b, make([]byte, 124)...)
		}
		s.bw.Write(b)
		s.exp = e
		return true, s.bw.Flush()
	}
	return false, s.optReply(opt, repErrUnsup, nil)
}

// parseInfoRequest splits NBD_OPT_INFO/GO data: export name, then the information types asked for.
func parseInfoRequest(data []byte) (string, []uint16, bool) {
	if len(data) < 4 {
		return "", nil, false
	}
	n := be.Uint32(data)
	if uint64(n)+6 > uint64(len(data)) {
		return "", nil, false
	}
	name := string(data[4 : 4+n])
	rest := data[4+n:]
	k := int(be.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*k {
		return "", nil, false
	}
	infos := make([]uint16, k)
	for i := range infos {
		infos[i] = be.Uint16(rest[2*i:])
	}
	return name, infos, true
}

// parseMetaRequest splits NBD_OPT_SET/LIST_META_CONTEXT data: export name and the queries.
func parseMetaRequest(data []byte) (string, []string, bool) {
	if len(data) < 8 {
		return "", nil, false
	}
	n := be.Uint32(data)
	if uint64(n)+8 > uint64(len(data)) {
		return "", nil, false
	}
	name := string(data[4 : 4+n])
	rest := data[4+n:]
	k := be.Uint32(rest)
	rest = rest[4:]
	if uint64(k)*4 > uint64(len(rest)) {
		return "", nil, false
	}
	var qs []string
	for range k {
		if len(rest) < 4 {
			return "", nil, false
		}
		l := be.Uint32(rest)
		if uint64(l)+4 > uint64(len(rest)) {
			return "", nil, false
		}
		qs = append(qs, string(rest[4:4+l]))
		rest = rest[4+l:]
	}
	if len(rest) != 0 {
		return "", nil, false
	}
	return name, qs, true
}

func (s *session) metaContext(opt uint32, data []byte) error {
	name, qs, ok := parseMetaRequest(data)
	if !ok {
		return s.optReply(opt, repErrInvalid, nil)
	}
	if opt == optSetMetaCtx && !s.structured {
		return s.optReply(opt, repErrInvalid, []byte("structured replies not negotiated"))
	}
	if s.lookup(name) == nil {
		return s.optReply(opt, repErrUnknown, []byte("no such export"))
	}
	match := false
	for _, q := range qs {
		match = match || q == allocationContext || (opt == optListMetaCtx && q == "base:")
	}
	if opt == optListMetaCtx && len(qs) == 0 {
		match = true
	}
	if opt == optSetMetaCtx {
		s.metaCtx = match
	}
	if match {
		id := uint32(0)
		if opt == optSetMetaCtx {
			id = allocationCtxID
		}
		b := append(be.AppendUint32(nil, id), allocationContext...)
		if err := s.optReply(opt, repMetaContext, b); err != nil {
			return err
		}
	}
	return s.optReply(opt, repAck, nil)
}

// lookup finds an export by name; the empty name is the first export (qemu's default).
func (s *session) lookup(name string) *Export {
	for _, e := range s.srv.Exports {
		if e.Name == name {
			return e
		}
	}
	if name == "" && len(s.srv.Exports) > 0 {
		return s.srv.Exports[0]
	}
	return nil
}

func (s *session) transmissionFlags(e *Export) uint16 {
	f := uint16(tflagHasFlags | tflagSendDF)
	if e.W == nil {
		f |= tflagReadOnly | tflagCanMultiConn
	} else {
		f |= tflagSendFlush | tflagSendFUA
	}
	return f
}
