package nbd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeServer negotiates like a real server (structured replies, base:allocation as context 7, a 1 MiB
// export) and then answers each request with misbehave, on every connection (reconnections included).
func fakeServer(t *testing.T, misbehave func(w io.Writer, r request)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fake")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go fakeConn(c, misbehave)
		}
	}()
	return sock
}

func fakeConn(c net.Conn, misbehave func(w io.Writer, r request)) {
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write(be.AppendUint16(be.AppendUint64(be.AppendUint64(nil, nbdMagic), optMagic), flagFixedNewstyle|flagNoZeroes))
	if _, err := readFull(br, 4); err != nil {
		return
	}
	reply := func(opt, typ uint32, p []byte) {
		b := be.AppendUint64(nil, optReplyMagic)
		b = be.AppendUint32(be.AppendUint32(be.AppendUint32(b, opt), typ), uint32(len(p)))
		c.Write(append(b, p...))
	}
	for {
		h, err := readFull(br, 16)
		if err != nil {
			return
		}
		opt := be.Uint32(h[8:])
		if _, err := readFull(br, int(be.Uint32(h[12:]))); err != nil {
			return
		}
		switch opt {
		case optSetMetaCtx:
			reply(opt, repMetaContext, append(be.AppendUint32(nil, 7), allocationContext...))
			reply(opt, repAck, nil)
		case optGo:
			reply(opt, repInfo, be.AppendUint16(be.AppendUint64(be.AppendUint16(nil, infoExport), 1<<20), tflagHasFlags|tflagReadOnly))
			reply(opt, repAck, nil)
			for {
				h, err := readFull(br, 28)
				if err != nil {
					return
				}
				r, err := parseRequest(h)
				if err != nil || r.typ == cmdDisc {
					return
				}
				misbehave(c, r)
			}
		default:
			reply(opt, repAck, nil)
		}
	}
}

func chunk(w io.Writer, r request, handle uint64, typ uint16, p []byte) {
	b := be.AppendUint32(nil, structReplyMagic)
	b = be.AppendUint16(be.AppendUint16(b, replyFlagDone), typ)
	b = be.AppendUint32(be.AppendUint64(b, handle), uint32(len(p)))
	w.Write(append(b, p...))
}

// Hostile servers: each misbehaviour ends in an error (or, for a block status past the end, a clipped
// answer) within the timeout, never a panic, a hang or an allocation the size of a lie.
func TestHostileServers(t *testing.T) {
	for _, c := range []struct {
		name      string
		misbehave func(w io.Writer, r request)
		status    bool // ask block status instead of reading
		want      string
	}{
		{"wrong handle", func(w io.Writer, r request) {
			chunk(w, r, r.handle+1, replyOffsetData, append(be.AppendUint64(nil, r.off), make([]byte, r.length)...))
		}, false, "unknown handle"},
		{"oversized data", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off), make([]byte, r.length+4096)...))
		}, false, "data chunk"},
		{"data outside the request", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off+1), make([]byte, r.length)...))
		}, false, "outside the request"},
		{"claims 4 GiB", func(w io.Writer, r request) {
			b := be.AppendUint32(nil, structReplyMagic)
			b = be.AppendUint16(be.AppendUint16(b, replyFlagDone), replyBlockStatus)
			w.Write(be.AppendUint32(be.AppendUint64(b, r.handle), 0xffffffff))
		}, true, "reply chunk of 4294967295 bytes"},
		{"short read", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyOffsetData, append(be.AppendUint64(nil, r.off), make([]byte, r.length/2)...))
		}, false, "covered"},
		{"simple reply with bad magic", func(w io.Writer, r request) {
			w.Write(make([]byte, 16))
		}, false, "bad reply magic"},
		{"stalls", func(w io.Writer, r request) {}, false, "no reply in"},
		{"block status of another context", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyBlockStatus, be.AppendUint32(be.AppendUint32(be.AppendUint32(nil, 9), r.length), 0))
		}, true, "context 9"},
		{"block status past the end", func(w io.Writer, r request) {
			p := be.AppendUint32(nil, 7)
			for range 3 {
				p = be.AppendUint32(be.AppendUint32(p, 1<<30), stateHole)
			}
			chunk(w, r, r.handle, replyBlockStatus, p)
		}, true, ""},
		{"error reply", func(w io.Writer, r request) {
			chunk(w, r, r.handle, replyError, append(be.AppendUint16(be.AppendUint32(nil, errIO), 4), "bad!"...))
		}, false, "EIO: bad!"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			sock := fakeServer(t, c.misbehave)
			d, err := Dial(unixURI(sock, ""), Options{Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			start := time.Now()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			if c.status {
				var ext []Extent
				ext, err = d.Extents(0, 1<<20)
				if err == nil && (len(ext) != 1 || ext[0] != (Extent{0, 1 << 20, true})) {
					t.Errorf("extents %v", ext)
				}
			} else {
				_, err = d.ReadAt(make([]byte, 64<<10), 4096)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if c.want == "" && err != nil {
				t.Errorf("error %v", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("error %v, want one with %q", err, c.want)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v", el)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("allocated %d MiB", grew>>20)
			}
		})
	}
}

// rawClient speaks to our server byte by byte, for requests no well-behaved client sends.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, sock string) *rawClient {
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	if _, err := readFull(r.br, 18); err != nil {
		t.Fatal(err)
	}
	c.Write(be.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes))
	return r
}

func (r *rawClient) option(opt uint32, data []byte) {
	b := be.AppendUint32(be.AppendUint32(be.AppendUint64(nil, optMagic), opt), uint32(len(data)))
	r.c.Write(append(b, data...))
}

func (r *rawClient) optReply() (opt, typ uint32) {
	h, err := readFull(r.br, 20)
	if err != nil {
		r.t.Fatalf("no option reply: %v", err)
	}
	if _, err := readFull(r.br, int(be.Uint32(h[16:]))); err != nil {
		r.t.Fatal(err)
	}
	return be.Uint32(h[8:]), be.Uint32(h[12:])
}

// goExport negotiates the first export, with structured replies when asked.
func (r *rawClient) goExport(structured bool) {
	if structured {
		r.option(optStructured, nil)
		r.optReply()
	}
	r.option(optGo, []byte{0, 0, 0, 0, 0, 0})
	for {
		if _, typ := r.optReply(); typ == repAck {
			return
		} else if typ&repFlagError != 0 {
			r.t.Fatalf("GO refused: %#x", typ)
		}
	}
}

func (r *rawClient) request(typ uint16, handle, off uint64, length uint32, payload []byte) {
	b := be.AppendUint32(be.AppendUint16(be.AppendUint16(be.AppendUint32(nil, requestMagic), 0), typ), 0)
	b = be.AppendUint64(b[:8], handle)
	b = be.AppendUint32(be.AppendUint64(b, off), length)
	r.c.Write(append(b, payload...))
}

// simpleReply reads a simple reply: its error and handle (and length bytes of data on success).
func (r *rawClient) simpleReply(length int) (errno uint32, handle uint64) {
	h, err := readFull(r.br, 16)
	if err != nil {
		r.t.Fatalf("no reply: %v", err)
	}
	if be.Uint32(h) != simpleReplyMagic {
		r.t.Fatalf("reply magic %#x", be.Uint32(h))
	}
	if be.Uint32(h[4:]) == 0 && length > 0 {
		readFull(r.br, length)
	}
	return be.Uint32(h[4:]), be.Uint64(h[8:])
}

func (r *rawClient) closed() bool {
	r.c.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, err := io.Copy(io.Discard, r.br)
	return err == nil || errors.Is(err, net.ErrClosed)
}

// Hostile clients against our server: garbage options, huge lengths, out-of-range requests, writes to
// a read-only export, a stall: answered or cut off, never a panic, a hang or a huge allocation.
func TestHostileClients(t *testing.T) {
	img, data := testImage(1 << 21)
	srv := &Server{Exports: []*Export{memExport("", img, data)}, HandshakeTimeout: 500 * time.Millisecond, MaxRequest: 1 << 20}
	sock := startServer(t, srv)

	r := dialRaw(t, sock)
	r.option(999, []byte("garbage"))
	if _, typ := r.optReply(); typ != repErrUnsup {
		t.Errorf("unknown option: reply %#x", typ)
	}
	r.option(optGo, []byte{0, 0, 0, 9, 'x'}) // name length beyond the data
	if _, typ := r.optReply(); typ != repErrInvalid {
		t.Errorf("truncated GO: reply %#x", typ)
	}
	r.option(optSetMetaCtx, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}) // 4 G queries in 8 bytes
	if _, typ := r.optReply(); typ != repErrInvalid {
		t.Errorf("meta context count: reply %#x", typ)
	}
	r.option(optInfo, make([]byte, maxOptionLength+1))
	if _, typ := r.optReply(); typ != repErrTooBig {
		t.Errorf("long option: reply %#x", typ)
	}
	r.goExport(false)
	r.request(cmdRead, 1, 0, 0xffffffff, nil)
	if e, h := r.simpleReply(0); e != errOverflow || h != 1 {
		t.Errorf("4 GiB read: error %d handle %d", e, h)
	}
	r.request(cmdRead, 2, 1<<21-10, 20, nil)
	if e, _ := r.simpleReply(0); e != errInval {
		t.Errorf("read past the end: error %d", e)
	}
	r.request(cmdWrite, 3, 0, 512, make([]byte, 512))
	if e, _ := r.simpleReply(0); e != errPerm {
		t.Errorf("write to a read-only export: error %d", e)
	}
	r.request(cmdBlockStatus, 4, 0, 512, nil)
	if e, _ := r.simpleReply(0); e != errInval {
		t.Errorf("block status without a context: error %d", e)
	}
	r.request(99, 5, 0, 512, nil)
	if e, _ := r.simpleReply(0); e != errInval {
		t.Errorf("unknown command: error %d", e)
	}
	r.request(cmdRead, 6, 4096, 4096, nil)
	if e, h := r.simpleReply(4096); e != 0 || h != 6 {
		t.Errorf("read after the bad requests: error %d handle %d", e, h)
	}
	r.request(cmdWrite, 7, 0, 0xfffffff0, nil) // a payload too big to skip: the connection ends
	r.simpleReply(0)
	if !r.closed() {
		t.Error("connection still open after a 4 GiB write")
	}

	for name, hello := range map[string][]byte{
		"option length 4 GiB": be.AppendUint32(be.AppendUint32(be.AppendUint64(nil, optMagic), optGo), 0xffffffff),
		"bad option magic":    bytes.Repeat([]byte{0xee}, 16),
		"stall":               nil,
	} {
		r := dialRaw(t, sock)
		r.c.Write(hello)
		start := time.Now()
		if !r.closed() || time.Since(start) > 4*time.Second {
			t.Errorf("%s: connection not closed in time (%v)", name, time.Since(start))
		}
	}
	r = dialRaw(t, sock)
	for range maxOptionsPerHello + 1 {
		r.option(optList, nil)
	}
	if !r.closed() {
		t.Error("endless options accepted")
	}
	// Still serving.
	d, err := Dial(unixURI(sock, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// A server that accepts and says nothing: Dial gives up after its timeout, naming neither socket nor host.
func TestSilentServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = Dial(unixURI(sock, "x"), Options{Timeout: 200 * time.Millisecond})
	if err == nil || strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Dial of a silent server: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}
