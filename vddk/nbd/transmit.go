package nbd

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

type request struct {
	flags, typ uint16
	handle     uint64
	off        uint64
	length     uint32
}

func parseRequest(h []byte) (request, error) {
	if be.Uint32(h) != requestMagic {
		return request{}, protoErr("bad request magic %#x", be.Uint32(h))
	}
	return request{be.Uint16(h[4:]), be.Uint16(h[6:]), be.Uint64(h[8:]), be.Uint64(h[16:]), be.Uint32(h[24:])}, nil
}

// transmit serves requests until the client disconnects or breaks the protocol. Requests run
// concurrently, at most InFlight of them, with their buffers drawn from the server's memory budget.
func (s *session) transmit() {
	var wmu sync.Mutex // one reply at a time on the wire
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.srv.InFlight)
	defer wg.Wait()
	send := func(write func() error) {
		wmu.Lock()
		defer wmu.Unlock()
		s.conn.SetWriteDeadline(time.Now().Add(s.srv.WriteTimeout))
		if err := write(); err == nil {
			err = s.bw.Flush()
			if err != nil {
				s.conn.Close()
			}
		} else {
			s.conn.Close()
		}
	}
	hdr := make([]byte, 28)
	for {
		if idle := s.srv.IdleTimeout; idle > 0 {
			s.conn.SetReadDeadline(time.Now().Add(idle))
		}
		if n, err := io.ReadFull(s.br, hdr); err != nil {
			var ne net.Error
			if n == 0 && errors.As(err, &ne) && ne.Timeout() {
				if len(slots) > 0 {
					continue // waiting for our replies is not idleness
				}
				s.srv.Log.Info("nbd connection closed after being idle", "export", s.exp.Name, "idle", s.srv.IdleTimeout)
			}
			return
		}
		r, err := parseRequest(hdr)
		if err != nil {
			s.srv.Log.Debug("nbd request refused", "export", s.exp.Name, "err", err)
			return
		}
		if r.typ == cmdDisc {
			return
		}
		errno, fatal := s.check(r)
		var payload []byte
		if r.typ == cmdWrite && !fatal {
			// The payload follows the header whatever the answer: read it (bounded by check) to stay in step.
			tokens := s.acquire(int(r.length))
			payload = make([]byte, r.length)
			if idle := s.srv.IdleTimeout; idle > 0 {
				s.conn.SetReadDeadline(time.Now().Add(idle)) // the payload's own time, not what is left of the header's
			}
			_, err := io.ReadFull(s.br, payload)
			if err != nil {
				s.release(tokens)
				return
			}
			if errno != 0 {
				s.release(tokens)
				payload = nil
			} else {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-slots }()
					defer s.release(tokens)
					e := s.write(r, payload)
					send(func() error { return s.replyStatus(r, e, "write") })
				}()
				continue
			}
		}
		if errno != 0 {
			send(func() error { return s.replyStatus(r, errno, "") })
			if fatal {
				return
			}
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			switch r.typ {
			case cmdRead:
				tokens := s.acquire(int(r.length))
				defer s.release(tokens)
				buf := make([]byte, r.length)
				s.exp.mu.RLock()
				_, err := s.exp.R.ReadAt(buf, int64(r.off))
				s.exp.mu.RUnlock()
				if err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
					s.srv.Log.Warn("nbd read failed", "export", s.exp.Name, "offset", r.off, "length", r.length, "err", err)
					send(func() error { return s.replyStatus(r, errIO, "read failed") })
					return
				}
				send(func() error { return s.replyRead(r, buf) })
			case cmdFlush:
				s.exp.mu.Lock()
				err := s.exp.W.Flush()
				s.exp.mu.Unlock()
				e := uint32(0)
				if err != nil {
					s.srv.Log.Warn("nbd flush failed", "export", s.exp.Name, "err", err)
					e = errIO
				}
				send(func() error { return s.replyStatus(r, e, "flush failed") })
			case cmdBlockStatus:
				ext, err := s.blockStatus(r)
				if err != nil {
					s.srv.Log.Warn("nbd block status failed", "export", s.exp.Name, "err", err)
					send(func() error { return s.replyStatus(r, errIO, "block status failed") })
					return
				}
				send(func() error { return s.replyBlockStatus(r, ext) })
			}
		}()
	}
}

// check validates a request: an errno to answer with, and whether the connection must end (a write
// payload too large to skip).
func (s *session) check(r request) (errno uint32, fatal bool) {
	size := uint64(s.exp.Size)
	inRange := r.off <= size && uint64(r.length) <= size-r.off
	switch r.typ {
	case cmdRead:
		if int64(r.length) > int64(s.srv.MaxRequest) {
			return errOverflow, false
		}
		if !inRange {
			return errInval, false
		}
	case cmdWrite:
		if int64(r.length) > int64(s.srv.MaxRequest) {
			return errOverflow, true
		}
		if s.exp.W == nil {
			return errPerm, false
		}
		if !inRange {
			return errNoSpc, false
		}
	case cmdFlush:
		if s.exp.W == nil {
			return errInval, false
		}
	case cmdBlockStatus:
		if !s.metaCtx || r.length == 0 || !inRange {
			return errInval, false
		}
	default:
		return errInval, false
	}
	return 0, false
}

func (s *session) write(r request, p []byte) uint32 {
	s.exp.mu.Lock()
	defer s.exp.mu.Unlock()
	if _, err := s.exp.W.WriteAt(p, int64(r.off)); err != nil {
		s.srv.Log.Warn("nbd write failed", "export", s.exp.Name, "offset", r.off, "length", r.length, "err", err)
		if errors.Is(err, syscall.ENOSPC) {
			return errNoSpc
		}
		return errIO
	}
	if r.flags&cmdFlagFUA != 0 {
		if err := s.exp.W.Flush(); err != nil {
			s.srv.Log.Warn("nbd flush failed", "export", s.exp.Name, "err", err)
			return errIO
		}
	}
	return 0
}

// maxDescriptors bounds one block status reply (8 bytes each): the rest of the range is for the next query.
const maxDescriptors = 1 << 16

// blockStatus describes [off, off+length) as alternating data and hole runs.
func (s *session) blockStatus(r request) ([]Extent, error) {
	off, end := int64(r.off), int64(r.off)+int64(r.length)
	if s.exp.Allocated == nil {
		return []Extent{{off, end - off, false}}, nil
	}
	s.exp.mu.RLock()
	data, err := s.exp.Allocated(off, end-off)
	s.exp.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var out []Extent
	pos := off
	add := func(e Extent) {
		if e.Length <= 0 {
			return
		}
		if k := len(out); k > 0 && out[k-1].Hole == e.Hole {
			out[k-1].Length += e.Length
			return
		}
		out = append(out, e)
	}
	for _, d := range data {
		ds, de := max(d.Offset, pos), min(d.Offset+d.Length, end)
		if ds >= de {
			continue
		}
		add(Extent{pos, ds - pos, true})
		add(Extent{ds, de - ds, false})
		pos = de
		if len(out) >= maxDescriptors {
			return out, nil
		}
	}
	add(Extent{pos, end - pos, true})
	if r.flags&cmdFlagReqOne != 0 {
		out = out[:1]
	}
	return out, nil
}

func (s *session) simpleHeader(r request, errno uint32) {
	var h [16]byte
	be.PutUint32(h[0:], simpleReplyMagic)
	be.PutUint32(h[4:], errno)
	be.PutUint64(h[8:], r.handle)
	s.bw.Write(h[:])
}

func (s *session) chunkHeader(r request, flags, typ uint16, length int) {
	var h [20]byte
	be.PutUint32(h[0:], structReplyMagic)
	be.PutUint16(h[4:], flags)
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[8:], r.handle)
	be.PutUint32(h[16:], uint32(length))
	s.bw.Write(h[:])
}

// replyStatus answers a request that carries no data: success, or an error with a short message.
func (s *session) replyStatus(r request, errno uint32, msg string) error {
	if !s.structured {
		s.simpleHeader(r, errno)
		return nil
	}
	if errno == 0 {
		s.chunkHeader(r, replyFlagDone, replyNone, 0)
		return nil
	}
	b := be.AppendUint32(nil, errno)
	b = be.AppendUint16(b, uint16(len(msg)))
	b = append(b, msg...)
	s.chunkHeader(r, replyFlagDone, replyError, len(b))
	_, err := s.bw.Write(b)
	return err
}

func (s *session) replyRead(r request, buf []byte) error {
	if !s.structured {
		s.simpleHeader(r, 0)
		_, err := s.bw.Write(buf)
		return err
	}
	if len(buf) == 0 {
		s.chunkHeader(r, replyFlagDone, replyNone, 0)
		return nil
	}
	s.chunkHeader(r, replyFlagDone, replyOffsetData, 8+len(buf))
	s.bw.Write(be.AppendUint64(nil, r.off))
	_, err := s.bw.Write(buf)
	return err
}

func (s *session) replyBlockStatus(r request, ext []Extent) error {
	b := be.AppendUint32(make([]byte, 0, 4+8*len(ext)), allocationCtxID)
	for _, e := range ext {
		b = be.AppendUint32(b, uint32(e.Length))
		st := uint32(0)
		if e.Hole {
			st = stateHole | stateZero
		}
		b = be.AppendUint32(b, st)
	}
	s.chunkHeader(r, replyFlagDone, replyBlockStatus, len(b))
	_, err := s.bw.Write(b)
	return err
}

// acquire takes n bytes (rounded up to MiB) of the server's buffer budget, waiting while it is spent.
func (s *session) acquire(n int) int {
	tokens := max(1, (n+1<<20-1)>>20)
	// One taker at a time: two half-served takers could otherwise wait on each other forever.
	s.srv.memMu.Lock()
	defer s.srv.memMu.Unlock()
	for range tokens {
		s.srv.mem <- struct{}{}
	}
	return tokens
}

func (s *session) release(tokens int) {
	for range tokens {
		<-s.srv.mem
	}
}
