// Package nbd speaks the Network Block Device protocol (fixed newstyle handshake, structured replies,
// base:allocation block status, STARTTLS) as described in the NBD project's proto.md: a server that
// exports the kit's disks to qemu, libnbd and the kernel, and a client that opens an NBD export as a disk.
//
// It has its own implementation rather than a library: the Go NBD packages found (pojntfx/go-nbd and
// kin) serve only simple replies with no block status or TLS, and the client side is not covered at all.
package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire constants from the NBD protocol.
const (
	nbdMagic          = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic          = 0x49484156454f5054 // "IHAVEOPT"
	optReplyMagic     = 0x3e889045565a9
	requestMagic      = 0x25609513
	simpleReplyMagic  = 0x67446698
	structReplyMagic  = 0x668e33ef
	flagFixedNewstyle = 1
	flagNoZeroes      = 2

	optExportName     = 1
	optAbort          = 2
	optList           = 3
	optStartTLS       = 5
	optInfo           = 6
	optGo             = 7
	optStructured     = 8
	optListMetaCtx    = 9
	optSetMetaCtx     = 10
	repAck            = 1
	repServer         = 2
	repInfo           = 3
	repMetaContext    = 4
	repFlagError      = 1 << 31
	repErrUnsup       = repFlagError | 1
	repErrPolicy      = repFlagError | 2
	repErrInvalid     = repFlagError | 3
	repErrTLSReqd     = repFlagError | 5
	repErrUnknown     = repFlagError | 6
	repErrTooBig      = repFlagError | 9
	infoExport        = 0
	infoBlockSize     = 3
	tflagHasFlags     = 1
	tflagReadOnly     = 2
	tflagSendFlush    = 4
	tflagSendFUA      = 8
	tflagSendDF       = 128
	tflagCanMultiConn = 256

	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdBlockStatus = 7
	cmdFlagFUA     = 1
	cmdFlagDF      = 4
	cmdFlagReqOne  = 8

	replyFlagDone      = 1
	replyNone          = 0
	replyOffsetData    = 1
	replyOffsetHole    = 2
	replyBlockStatus   = 5
	replyError         = 1<<15 | 1
	replyErrorOffset   = 1<<15 | 2
	stateHole          = 1
	stateZero          = 2
	errPerm            = 1
	errIO              = 5
	errNoMem           = 12
	errInval           = 22
	errNoSpc           = 28
	errOverflow        = 75
	errNotSup          = 95
	errShutdown        = 108
	allocationContext  = "base:allocation"
	allocationCtxID    = 1
	defaultMaxRequest  = 32 << 20
	maxOptionLength    = 64 << 10
	maxOptionsPerHello = 256
)

// errorNames gives NBD error numbers the names clients print.
var errorNames = map[uint32]string{errPerm: "EPERM", errIO: "EIO", errNoMem: "ENOMEM", errInval: "EINVAL",
	errNoSpc: "ENOSPC", errOverflow: "EOVERFLOW", errNotSup: "ENOTSUP", errShutdown: "ESHUTDOWN"}

// RemoteError is an error number a peer sent for one request.
type RemoteError struct {
	Code    uint32
	Message string
}

func (e *RemoteError) Error() string {
	name := errorNames[e.Code]
	if name == "" {
		name = fmt.Sprintf("error %d", e.Code)
	}
	if e.Message != "" {
		return "nbd server: " + name + ": " + e.Message
	}
	return "nbd server: " + name
}

// ErrProtocol marks a peer that broke the protocol.
var ErrProtocol = errors.New("nbd protocol violation")

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

var be = binary.BigEndian

// readFull reads exactly n bytes (n is bounded by the callers).
func readFull(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// Extent is a run of the disk with one allocation state (base:allocation).
type Extent struct {
	Offset, Length int64
	Hole           bool // not allocated: reads as zeros
}
