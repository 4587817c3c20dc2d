package nbd

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// optConn is a connection during option haggling.
type optConn struct {
	nc net.Conn
	br *bufio.Reader
}

func (o *optConn) send(opt uint32, data []byte) error {
	b := be.AppendUint64(make([]byte, 0, 16+len(data)), optMagic)
	b = be.AppendUint32(b, opt)
	b = be.AppendUint32(b, uint32(len(data)))
	_, err := o.nc.Write(append(b, data...))
	return err
}

// reply reads one option reply to opt: its type and payload (bounded).
func (o *optConn) reply(opt uint32) (uint32, []byte, error) {
	h, err := readFull(o.br, 20)
	if err != nil {
		return 0, nil, err
	}
	typ, n, err := parseOptReplyHeader(h, opt)
	if err != nil {
		return 0, nil, err
	}
	p, err := readFull(o.br, int(n))
	return typ, p, err
}

// parseOptReplyHeader checks an option reply header: the magic, the option it answers, a bounded length.
func parseOptReplyHeader(h []byte, opt uint32) (typ, n uint32, err error) {
	if m := be.Uint64(h); m != optReplyMagic {
		return 0, 0, protoErr("bad option reply magic %#x", m)
	}
	if got := be.Uint32(h[8:]); got != opt {
		return 0, 0, protoErr("reply to option %d while option %d was asked", got, opt)
	}
	typ, n = be.Uint32(h[12:]), be.Uint32(h[16:])
	if n > maxOptionLength {
		return 0, 0, protoErr("option reply of %d bytes", n)
	}
	return typ, n, nil
}

func optError(opt, typ uint32, p []byte) error {
	names := map[uint32]string{repErrUnsup: "unsupported", repErrPolicy: "refused by policy", repErrInvalid: "invalid",
		repErrTLSReqd: "TLS required (use nbds:// or nbds+unix://)", repErrUnknown: "no such export", repErrTooBig: "too big"}
	what := names[typ]
	if what == "" {
		what = fmt.Sprintf("error %#x", typ)
	}
	if len(p) > 0 {
		what += ": " + string(p)
	}
	return fmt.Errorf("nbd option %d: %s", opt, what)
}

// connect dials and negotiates: TLS if asked, structured replies, base:allocation, then the export.
func (d *Disk) connect() (*conn, error) { return d.connectWithin(d.opts.Timeout) }

// connectWithin is connect with its own bound on dialling and negotiating.
func (d *Disk) connectWithin(timeout time.Duration) (*conn, error) {
	nc, err := net.DialTimeout(d.network, d.addr, timeout)
	if err != nil {
		// The dial error names the host or socket: keep it out and say what failed.
		return nil, fmt.Errorf("cannot connect to the nbd server: %w", unwrapOp(err))
	}
	c, err := d.negotiate(nc, timeout)
	if err != nil {
		nc.Close()
		return nil, unwrapAll(err)
	}
	c.raw = rawConn(c.nc)
	go c.readLoop()
	return c, nil
}

// unwrapOp drops net.OpError's addresses, keeping the reason (connection refused, no such file...).
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// unwrapAll keeps an error's message but drops any net.OpError (addresses) inside it.
func unwrapAll(err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Err == nil {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), oe.Error(), oe.Err.Error()), cause: err}
}

func (d *Disk) negotiate(nc net.Conn, timeout time.Duration) (*conn, error) {
	nc.SetDeadline(time.Now().Add(timeout))
	o := &optConn{nc: nc, br: bufio.NewReader(nc)}
	h, err := readFull(o.br, 18)
	if err != nil {
		return nil, fmt.Errorf("reading the server's greeting: %w", err)
	}
	if be.Uint64(h) != nbdMagic || be.Uint64(h[8:]) != optMagic {
		return nil, protoErr("not a newstyle NBD server")
	}
	sflags := be.Uint16(h[16:])
	if sflags&flagFixedNewstyle == 0 {
		return nil, protoErr("server lacks fixed newstyle")
	}
	cflags := uint32(flagFixedNewstyle)
	noZeroes := sflags&flagNoZeroes != 0
	if noZeroes {
		cflags |= flagNoZeroes
	}
	if _, err := nc.Write(be.AppendUint32(nil, cflags)); err != nil {
		return nil, err
	}
	if d.useTLS {
		if err := o.send(optStartTLS, nil); err != nil {
			return nil, err
		}
		typ, p, err := o.reply(optStartTLS)
		if err != nil {
			return nil, err
		}
		if typ != repAck {
			return nil, optError(optStartTLS, typ, p)
		}
		cfg := d.opts.TLS
		if cfg == nil {
			host, _, _ := net.SplitHostPort(d.addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
		o = &optConn{nc: tc, br: bufio.NewReader(tc)}
	}
	c := &conn{nc: nc, pending: map[uint64]*call{}, dead: make(chan struct{}), exited: make(chan struct{})}
	if err := o.send(optStructured, nil); err != nil {
		return nil, err
	}
	typ, _, err := o.reply(optStructured)
	if err != nil {
		return nil, err
	}
	c.structured = typ == repAck
	if c.structured {
		q := be.AppendUint32(nil, uint32(len(d.export)))
		q = append(q, d.export...)
		q = be.AppendUint32(q, 1)
		q = be.AppendUint32(q, uint32(len(allocationContext)))
		q = append(q, allocationContext...)
		if err := o.send(optSetMetaCtx, q); err != nil {
			return nil, err
		}
		for {
			typ, p, err := o.reply(optSetMetaCtx)
			if err != nil {
				return nil, err
			}
			if typ == repMetaContext && len(p) >= 4 && string(p[4:]) == allocationContext {
				c.metaCtx, c.ctxID = true, be.Uint32(p)
			}
			if typ != repMetaContext {
				break // ACK, or an error: go on without allocation
			}
		}
	}
	q := be.AppendUint32(nil, uint32(len(d.export)))
	q = append(q, d.export...)
	q = be.AppendUint16(q, 1)
	q = be.AppendUint16(q, infoBlockSize)
	if err := o.send(optGo, q); err != nil {
		return nil, err
	}
	gotExport := false
	for {
		typ, p, err := o.reply(optGo)
		if err != nil {
			return nil, err
		}
		if typ == repAck {
			break
		}
		if typ != repInfo {
			return nil, optError(optGo, typ, p)
		}
		if err := c.info(p); err != nil {
			return nil, err
		}
		gotExport = gotExport || (len(p) >= 2 && be.Uint16(p) == infoExport)
	}
	if !gotExport {
		return nil, protoErr("server sent no export size")
	}
	if c.flags&tflagHasFlags == 0 {
		c.flags = 0
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// info applies one NBD_REP_INFO payload.
func (c *conn) info(p []byte) error {
	if len(p) < 2 {
		return protoErr("short info reply")
	}
	switch be.Uint16(p) {
	case infoExport:
		if len(p) != 12 {
			return protoErr("export info of %d bytes", len(p))
		}
		size := be.Uint64(p[2:])
		if size > 1<<62 {
			return protoErr("export size %d", size)
		}
		c.size, c.flags = int64(size), be.Uint16(p[10:])
	case infoBlockSize:
		if len(p) != 14 {
			return protoErr("block size info of %d bytes", len(p))
		}
		minB, pref, maxB := be.Uint32(p[2:]), be.Uint32(p[6:]), be.Uint32(p[10:])
		if minB == 0 || minB > 64<<10 || minB&(minB-1) != 0 || maxB < minB || pref == 0 {
			return protoErr("block sizes %d/%d/%d", minB, pref, maxB)
		}
		c.minBlock, c.maxBlock = minB, maxB
	}
	return nil
}

var _ io.ReaderAt = (*Disk)(nil)

// redacted is an error whose message has no network addresses; errors.Is and As still see the cause.
type redacted struct {
	msg   string
	cause error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.cause }
