package vddk

import (
	"errors"
	"fmt"
)

// Code is a VixDiskLib error code (the VIX_E_* values of vixDiskLib.h / vix.h).
type Code uint32

// VixDiskLib error codes used by this package. The values are VMware's, so tools that log or map them
// keep working.
const (
	OK                         Code = 0
	ErrFail                    Code = 1     // VIX_E_FAIL
	ErrOutOfMemory             Code = 2     // VIX_E_OUT_OF_MEMORY
	ErrInvalidArg              Code = 3     // VIX_E_INVALID_ARG
	ErrFileNotFound            Code = 4     // VIX_E_FILE_NOT_FOUND
	ErrObjectIsBusy            Code = 5     // VIX_E_OBJECT_IS_BUSY
	ErrNotSupported            Code = 6     // VIX_E_NOT_SUPPORTED
	ErrFileError               Code = 7     // VIX_E_FILE_ERROR
	ErrDiskFull                Code = 8     // VIX_E_DISK_FULL
	ErrIncorrectFileType       Code = 9     // VIX_E_INCORRECT_FILE_TYPE
	ErrCancelled               Code = 10    // VIX_E_CANCELLED
	ErrFileReadOnly            Code = 11    // VIX_E_FILE_READ_ONLY
	ErrFileAlreadyExists       Code = 12    // VIX_E_FILE_ALREADY_EXISTS
	ErrFileAccessError         Code = 13    // VIX_E_FILE_ACCESS_ERROR
	ErrFileAlreadyLocked       Code = 15    // VIX_E_FILE_ALREADY_LOCKED
	ErrDiskInval               Code = 16000 // VIX_E_DISK_INVAL
	ErrDiskNoInit              Code = 16001 // VIX_E_DISK_NOINIT
	ErrDiskNoIO                Code = 16002 // VIX_E_DISK_NOIO
	ErrDiskPartialChain        Code = 16003 // VIX_E_DISK_PARTIALCHAIN
	ErrDiskNeedsRepair         Code = 16006 // VIX_E_DISK_NEEDSREPAIR
	ErrDiskOutOfRange          Code = 16007 // VIX_E_DISK_OUTOFRANGE
	ErrDiskCIDMismatch         Code = 16008 // VIX_E_DISK_CID_MISMATCH
	ErrDiskCantShrink          Code = 16009 // VIX_E_DISK_CANTSHRINK
	ErrDiskPartMismatch        Code = 16010 // VIX_E_DISK_PARTMISMATCH
	ErrDiskUnsupportedVersion  Code = 16011 // VIX_E_DISK_UNSUPPORTEDDISKVERSION
	ErrDiskOpenParent          Code = 16012 // VIX_E_DISK_OPENPARENT
	ErrDiskNotSupported        Code = 16013 // VIX_E_DISK_NOTSUPPORTED
	ErrDiskNeedKey             Code = 16014 // VIX_E_DISK_NEEDKEY
	ErrDiskInvalidPartitionTbl Code = 16018 // VIX_E_DISK_INVALIDPARTITIONTABLE
	ErrDiskNotNormal           Code = 16019 // VIX_E_DISK_NOTNORMAL
	ErrDiskNeedVMFS            Code = 16022 // VIX_E_DISK_NEEDVMFS
	ErrDiskRawTooBig           Code = 16024 // VIX_E_DISK_RAWTOOBIG
	ErrDiskTooManyOpenFiles    Code = 16027 // VIX_E_DISK_TOOMANYOPENFILES
	ErrDiskTooManyRedo         Code = 16028 // VIX_E_DISK_TOOMANYREDO
	ErrDiskRawTooSmall         Code = 16029 // VIX_E_DISK_RAWTOOSMALL
	ErrDiskInvalidChain        Code = 16030 // VIX_E_DISK_INVALIDCHAIN
	ErrDiskEncoding            Code = 16061 // VIX_E_DISK_ENCODING
	ErrDiskCantRepair          Code = 16062 // VIX_E_DISK_CANTREPAIR
	ErrDiskInvalidDisk         Code = 16063 // VIX_E_DISK_INVALIDDISK
	ErrDiskCapacityMismatch    Code = 16067 // VIX_E_DISK_CAPACITY_MISMATCH
)

var codeText = map[Code]string{
	OK:                         "The operation was successful",
	ErrFail:                    "Unknown error",
	ErrOutOfMemory:             "Memory allocation failed. Out of memory",
	ErrInvalidArg:              "One of the parameters was invalid",
	ErrFileNotFound:            "A file was not found",
	ErrObjectIsBusy:            "This function cannot be performed because the handle is executing another function",
	ErrNotSupported:            "The operation is not supported",
	ErrFileError:               "A file access error occurred on the host or guest operating system",
	ErrDiskFull:                "An error occurred while writing a file; the disk is full",
	ErrIncorrectFileType:       "An error occurred while accessing a file: wrong file type",
	ErrCancelled:               "The operation was cancelled",
	ErrFileReadOnly:            "The file is write-protected",
	ErrFileAlreadyExists:       "The file already exists",
	ErrFileAccessError:         "You do not have access rights to this file",
	ErrFileAlreadyLocked:       "The file is already in use",
	ErrDiskInval:               "One of the parameters supplied is invalid",
	ErrDiskNoInit:              "The disk library has not been initialized",
	ErrDiskNoIO:                "The called function requires the virtual disk to be opened for I/O",
	ErrDiskPartialChain:        "The called function cannot be performed on partial chains. Open the parent virtual disk",
	ErrDiskNeedsRepair:         "The specified virtual disk needs repair",
	ErrDiskOutOfRange:          "You have requested access to an area of the virtual disk that is out of bounds",
	ErrDiskCIDMismatch:         "The parent virtual disk has been modified since the child was created",
	ErrDiskCantShrink:          "The specified virtual disk cannot be shrunk because it is not the parent disk",
	ErrDiskPartMismatch:        "The partition table on the physical disk has changed since the disk was created",
	ErrDiskUnsupportedVersion:  "The version of the virtual disk is newer than the version supported by this program",
	ErrDiskOpenParent:          "The parent of this virtual disk could not be opened",
	ErrDiskNotSupported:        "The specified feature isn't supported by this version",
	ErrDiskNeedKey:             "One or more required keys were not provided",
	ErrDiskInvalidPartitionTbl: "The partition table is invalid",
	ErrDiskNotNormal:           "Only sparse extents with embedded descriptors may be encrypted",
	ErrDiskNeedVMFS:            "The operation is only supported on VMFS disks",
	ErrDiskRawTooBig:           "The physical disk is too big",
	ErrDiskTooManyOpenFiles:    "The host's limit for open files has been exceeded",
	ErrDiskTooManyRedo:         "Too many levels of redo logs",
	ErrDiskRawTooSmall:         "The physical disk is too small",
	ErrDiskInvalidChain:        "Invalid disk chain: cannot mix hosted and managed style disks in the same chain",
	ErrDiskEncoding:            "The disk descriptor's text encoding is not valid",
	ErrDiskCantRepair:          "The specified virtual disk cannot be repaired",
	ErrDiskInvalidDisk:         "The specified file is not a virtual disk",
	ErrDiskCapacityMismatch:    "The capacity of the parent virtual disk and the capacity of the child disk are different",
}

// ErrorText returns VixDiskLib's description of a code, as VixDiskLib_GetErrorText does.
func ErrorText(c Code) string {
	if t, ok := codeText[c]; ok {
		return t
	}
	return fmt.Sprintf("Unknown error %d", uint32(c))
}

func (c Code) String() string { return ErrorText(c) }

// Error is every error this package returns: a VixDiskLib code, the file it concerns, what is wrong, and
// the cause. errors.Is(err, vddk.ErrCIDMismatch-style Code) works through Is.
type Error struct {
	Code Code
	Path string // the file concerned, as the user or the descriptor named it
	Msg  string // what is wrong, in words
	Err  error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	s := e.Msg
	if s == "" {
		s = ErrorText(e.Code)
	}
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, code) true when err carries that VixDiskLib code.
func (e *Error) Is(target error) bool {
	if c, ok := target.(Code); ok {
		return e.Code == c
	}
	return false
}

// Error lets a Code be used as an errors.Is target.
func (c Code) Error() string { return ErrorText(c) }

// CodeOf returns the VixDiskLib code carried by err, ErrFail for other non-nil errors, OK for nil.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrFail
}

func newErr(code Code, path, format string, args ...any) *Error {
	return &Error{Code: code, Path: path, Msg: fmt.Sprintf(format, args...)}
}

func wrapErr(code Code, path string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Path: path, Msg: fmt.Sprintf(format, args...), Err: err}
}
