package ntfs

import (
	"errors"
	"fmt"
	"io"
)

// ErrCorrupt is wrapped by every error that reports a damaged or unsupported on-disk structure.
var ErrCorrupt = errors.New("ntfs: corrupt structure")

// ErrNoStream reports a named data stream that the entry does not have.
var ErrNoStream = errors.New("ntfs: no such data stream")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// recoverPanics is switched off by the fuzz tests so that a panic reaches them instead of the guard.
var recoverPanics = true

// guard turns a panic inside the parser into an error at the API boundary. The parser bounds-checks
// everything it reads, so this is a last line of defence, not the plan.
func guard(err *error) {
	if !recoverPanics {
		return
	}
	if r := recover(); r != nil {
		*err = corrupt("internal error on malformed data: %v", r)
	}
}

// wrapAt names the MFT record an error came from.
func wrapAt(err error, rec uint64) error {
	return fmt.Errorf("MFT record %d: %w", rec, err)
}

// wrapIO reports a failed read of the underlying volume; a short read means the volume is truncated.
func wrapIO(err error, format string, args ...any) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: volume truncated", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("ntfs: reading %s: %w", fmt.Sprintf(format, args...), err)
}

// errSecondLink refuses a lookup through a second name of a directory: NTFS directories have one.
var errSecondLink = fmt.Errorf("%w: second index entry naming a directory already listed under another name", ErrCorrupt)
