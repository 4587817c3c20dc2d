package fusefs

import (
	"log/slog"
	"sync"
	"syscall"
)

// maxLoggedCauses bounds the memory kept to log each cause once: a disk damaged all over could fail
// every read with a different grain.
const maxLoggedCauses = 4096

// causes remembers the read failures already logged.
var causes struct {
	sync.Mutex
	seen map[string]bool
	full bool
}

// readFailed returns the errno for a failed read of file, logging the cause once (see logCause).
func readFailed(file string, err error) syscall.Errno {
	en := errno(err)
	if en != syscall.EIO { // EIO was logged by errno
		logCause(file, err, en)
	}
	return en
}

// logCause logs why an operation on file ("" when the error names it) failed: the error names the disk
// file, the grain or block and why. Each distinct cause is logged once. Without it a reader would see
// only EIO, and the daemon, detached from any terminal, would say nothing.
func logCause(file string, err error, en syscall.Errno) {
	key := file + "\x00" + err.Error()
	causes.Lock()
	if causes.seen == nil {
		causes.seen = map[string]bool{}
	}
	first := !causes.seen[key] && len(causes.seen) < maxLoggedCauses
	if first {
		causes.seen[key] = true
	}
	full := len(causes.seen) >= maxLoggedCauses && !causes.full
	if full {
		causes.full = true
	}
	causes.Unlock()
	if first {
		args := []any{"errno", en.Error(), "err", err}
		if file != "" {
			args = append([]any{"file", file}, args...)
		}
		slog.Error("operation failed", args...)
	}
	if full {
		slog.Error("failures keep coming: no further causes are logged")
	}
}
