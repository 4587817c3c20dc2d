package nbd

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The option parsers of both sides: whatever the bytes, an answer or a refusal, never a panic.
func FuzzOptionParsers(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 'a', 0, 1, 0, 3})
	f.Add(append([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 15}, allocationContext...))
	f.Add(be.AppendUint16(be.AppendUint64(be.AppendUint16(nil, infoExport), 1<<20), 3))
	f.Add(be.AppendUint32(be.AppendUint32(be.AppendUint32(be.AppendUint16(nil, infoBlockSize), 512), 4096), 1<<25))
	f.Fuzz(func(t *testing.T, data []byte) {
		if name, infos, ok := parseInfoRequest(data); ok && 6+len(name)+2*len(infos) != len(data) {
			t.Fatalf("info request of %d bytes parsed as %q %v", len(data), name, infos)
		}
		if _, qs, ok := parseMetaRequest(data); ok && len(qs) > len(data)/4 {
			t.Fatalf("%d queries from %d bytes", len(qs), len(data))
		}
		c := &conn{}
		if c.info(data) == nil && c.minBlock != 0 && (c.maxBlock < c.minBlock || c.minBlock&(c.minBlock-1) != 0) {
			t.Fatalf("block sizes %d/%d accepted", c.minBlock, c.maxBlock)
		}
		if len(data) >= 20 {
			if _, n, err := parseOptReplyHeader(data, be.Uint32(data[8:])); err == nil && n > maxOptionLength {
				t.Fatalf("option reply of %d bytes accepted", n)
			}
		}
	})
}

// The client's reply parser over a stream of replies to a pending read, a read into a file (CopyTo's)
// and a block status: errors for anything out of place, never a panic, never a write outside the read's
// buffer or its range of the file.
func FuzzReplyParser(f *testing.F) {
	ok := be.AppendUint32(nil, structReplyMagic)
	ok = be.AppendUint16(be.AppendUint16(ok, replyFlagDone), replyOffsetData)
	ok = be.AppendUint32(be.AppendUint64(ok, 1), 8+16)
	ok = append(be.AppendUint64(ok, 4096), make([]byte, 16)...)
	f.Add(ok)
	bs := be.AppendUint32(nil, structReplyMagic)
	bs = be.AppendUint16(be.AppendUint16(bs, replyFlagDone), replyBlockStatus)
	bs = be.AppendUint32(be.AppendUint64(bs, 2), 12)
	bs = be.AppendUint32(be.AppendUint32(be.AppendUint32(bs, 1), 100), 3)
	f.Add(bs)
	f.Add(append(be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, simpleReplyMagic), 0), 1), make([]byte, 16)...))
	f.Add(append(be.AppendUint64(be.AppendUint32(be.AppendUint32(nil, simpleReplyMagic), 0), 3), bytes.Repeat([]byte{7}, 16)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := make([]byte, 16+64)
		read := &call{typ: cmdRead, off: 4096, length: 16, buf: buf[32:48], done: make(chan struct{})}
		status := &call{typ: cmdBlockStatus, off: 0, length: 1 << 20, done: make(chan struct{})}
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		toFile := &call{typ: cmdRead, off: 8192, length: 16, to: &fileSink{f: out, fd: int(out.Fd())}, done: make(chan struct{})}
		c := &conn{ctxID: 1, pending: map[uint64]*call{1: read, 2: status, 3: toFile}}
		br := bufio.NewReader(bytes.NewReader(data))
		for range 64 {
			if c.readReply(br) != nil {
				break
			}
		}
		if !bytes.Equal(buf[:32], make([]byte, 32)) || !bytes.Equal(buf[48:], make([]byte, 32)) {
			t.Fatal("wrote outside the read's buffer")
		}
		if fi, err := out.Stat(); err != nil || fi.Size() > 8192+16 {
			t.Fatalf("the file's read wrote past its range: %v, %v", fi.Size(), err)
		}
		head := make([]byte, 8192)
		if n, _ := out.ReadAt(head, 0); !bytes.Equal(head[:n], make([]byte, n)) {
			t.Fatal("the file's read wrote before its range")
		}
		var sum int64
		for _, e := range status.extents {
			if e.Length <= 0 || e.Offset != sum {
				t.Fatalf("extents %v", status.extents)
			}
			sum += e.Length
		}
		if sum > 1<<20 {
			t.Fatalf("extents past the request: %v", status.extents)
		}
	})
}

// The server over a whole session of client bytes (handshake and requests): it ends, without a panic.
func FuzzServerSession(f *testing.F) {
	hello := be.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)
	opt := func(b []byte, o uint32, data []byte) []byte {
		return append(be.AppendUint32(be.AppendUint32(be.AppendUint64(b, optMagic), o), uint32(len(data))), data...)
	}
	s := opt(hello, optStructured, nil)
	s = opt(s, optSetMetaCtx, append([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 15}, allocationContext...))
	s = opt(s, optGo, []byte{0, 0, 0, 0, 0, 0})
	req := func(b []byte, typ uint16, off uint64, n uint32) []byte {
		b = be.AppendUint32(be.AppendUint16(be.AppendUint16(be.AppendUint32(b, requestMagic), 0), typ), 0)
		return be.AppendUint32(be.AppendUint64(be.AppendUint32(b, 7), off), n)
	}
	f.Add(req(req(s, cmdRead, 0, 512), cmdBlockStatus, 0, 4096))
	f.Add(opt(opt(hello, optList, nil), optInfo, []byte{0, 0, 0, 1, 'x', 0, 0}))
	f.Add(opt(hello, optExportName, nil))
	img, data := testImage(2 << 20)
	f.Fuzz(func(t *testing.T, in []byte) {
		srv := &Server{Exports: []*Export{memExport("", img, data)}, HandshakeTimeout: time.Second, WriteTimeout: time.Second, MaxRequest: 1 << 20}
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			srv.ServeConn(a)
			close(done)
		}()
		go io.Copy(io.Discard, b)
		b.Write(in)
		b.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not end")
		}
	})
}
