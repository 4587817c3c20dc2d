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

// readFailed logs why a read of file failed (the error names the disk file, the grain or block, and
// why), once per distinct cause, and returns the errno the reader gets. Without it a reader would see
// only EIO, and the daemon, detached from any terminal, would say nothing.
func readFailed(file string, err error) syscall.Errno {
	en := errno(err)
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
		slog.Error("read failed", "file", file, "errno", en.Error(), "err", err)
	}
	if full {
		slog.Error("read failures keep coming: no further causes are logged")
	}
	return en
}
