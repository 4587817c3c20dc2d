package vddk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// MaxDescriptorSize bounds a text descriptor (qemu reads at most 1 MiB; real ones are under 2 KiB).
const MaxDescriptorSize = 1 << 20

// maxExtents bounds the extent lines of one descriptor (VirtualBox allows 1100 lines in all).
const maxExtents = 4096

// maxCapacitySectors bounds a disk's capacity: 2^40 sectors = 512 TiB, well above VMFS's 62 TB.
const maxCapacitySectors = int64(1) << 40

// CID values with a special meaning: a base disk's parentCID, and VMware's "never written" marker.
const (
	CIDNone  uint32 = 0xffffffff
	CIDFresh uint32 = 0xfffffffe
)

// ExtentLine is one `ACCESS SIZE TYPE ["FILENAME" [OFFSET]]` line of a descriptor.
type ExtentLine struct {
	Access    string `json:"access"`             // RW, RDONLY or NOACCESS
	Sectors   int64  `json:"sectors"`            // extent length in 512-byte sectors
	Type      string `json:"type"`               // FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, SESPARSE, VMFSRDM, VMFSRAW
	Filename  string `json:"filename,omitempty"` // as written in the descriptor
	Offset    int64  `json:"offset,omitempty"`   // start sector inside the file (FLAT)
	HasOffset bool   `json:"-"`
}

// Descriptor is a parsed disk descriptor. Lines keeps the text line by line so that a rewrite can keep
// unknown keys, comments and order verbatim.
type Descriptor struct {
	Version            int
	Encoding           string
	CID                uint32
	ParentCID          uint32
	CreateType         string
	ParentFileNameHint string
	IsNativeSnapshot   string
	ChangeTrackPath    string
	Extents            []ExtentLine
	DDB                map[string]string // disk database, keys without the "ddb." prefix
	DDBOrder           []string
	Other              map[string]string // header keys not listed above, lower-cased
	Lines              []string
}

// Capacity returns the sum of the extent sizes in sectors.
func (d *Descriptor) Capacity() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Sectors
	}
	return n
}

// ParseDescriptor parses descriptor text. Text after the first NUL is ignored (embedded descriptors and
// qemu-rewritten files are NUL-padded); LF and CRLF line ends are accepted; keys are matched
// case-insensitively.
func ParseDescriptor(text []byte) (*Descriptor, error) {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	if len(text) > MaxDescriptorSize {
		return nil, fmt.Errorf("descriptor is %d bytes, more than the %d a descriptor may have", len(text), MaxDescriptorSize)
	}
	d := &Descriptor{CID: CIDNone, ParentCID: CIDNone, DDB: map[string]string{}, Other: map[string]string{}}
	var total int64
	sawVersion := false
	for no, raw := range strings.Split(string(text), "\n") {
		line := strings.TrimRight(raw, "\r")
		d.Lines = append(d.Lines, line)
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		if isExtentLine(s) {
			e, err := parseExtentLine(s)
			if err != nil {
				return nil, fmt.Errorf("descriptor line %d: %w", no+1, err)
			}
			if len(d.Extents) >= maxExtents {
				return nil, fmt.Errorf("descriptor has more than %d extents", maxExtents)
			}
			total += e.Sectors
			if total > maxCapacitySectors {
				return nil, fmt.Errorf("descriptor line %d: disk capacity exceeds %d sectors", no+1, maxCapacitySectors)
			}
			d.Extents = append(d.Extents, e)
			continue
		}
		key, val, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("descriptor line %d: %q is neither key=value nor an extent", no+1, truncate(s, 60))
		}
		key = strings.TrimSpace(key)
		val = unquote(strings.TrimSpace(val))
		lk := strings.ToLower(key)
		switch {
		case lk == "version":
			v, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("descriptor line %d: version %q is not a number", no+1, val)
			}
			d.Version, sawVersion = v, true
		case lk == "encoding":
			d.Encoding = val
		case lk == "cid":
			c, err := parseCID(val)
			if err != nil {
				return nil, fmt.Errorf("descriptor line %d: CID: %w", no+1, err)
			}
			d.CID = c
		case lk == "parentcid":
			c, err := parseCID(val)
			if err != nil {
				return nil, fmt.Errorf("descriptor line %d: parentCID: %w", no+1, err)
			}
			d.ParentCID = c
		case lk == "createtype":
			d.CreateType = val
		case lk == "parentfilenamehint":
			d.ParentFileNameHint = val
		case lk == "isnativesnapshot":
			d.IsNativeSnapshot = val
		case lk == "changetrackpath":
			d.ChangeTrackPath = val
		case strings.HasPrefix(lk, "ddb."):
			name := key[len("ddb."):]
			if _, seen := d.DDB[name]; !seen {
				d.DDBOrder = append(d.DDBOrder, name)
			}
			d.DDB[name] = val
		default:
			d.Other[lk] = val
		}
	}
	if len(d.Extents) == 0 {
		return nil, fmt.Errorf("invalid descriptor: no extent lines")
	}
	if sawVersion && (d.Version < 1 || d.Version > 3) {
		return nil, fmt.Errorf("descriptor version %d is not supported (1 to 3 are)", d.Version)
	}
	return d, nil
}

func isExtentLine(s string) bool {
	for _, a := range []string{"RW", "RDONLY", "NOACCESS"} {
		if len(s) > len(a) && strings.EqualFold(s[:len(a)], a) && (s[len(a)] == ' ' || s[len(a)] == '\t') {
			return true
		}
	}
	return false
}

func parseExtentLine(s string) (ExtentLine, error) {
	var e ExtentLine
	rest := s
	next := func() string {
		rest = strings.TrimLeft(rest, " \t")
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			tok := rest
			rest = ""
			return tok
		}
		tok := rest[:i]
		rest = rest[i:]
		return tok
	}
	e.Access = strings.ToUpper(next())
	sz := next()
	n, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || n < 0 || n > maxCapacitySectors {
		return e, fmt.Errorf("extent size %q is not a sector count between 0 and %d", sz, maxCapacitySectors)
	}
	e.Sectors = n
	e.Type = strings.ToUpper(next())
	switch e.Type {
	case "FLAT", "SPARSE", "ZERO", "VMFS", "VMFSSPARSE", "SESPARSE", "VMFSRDM", "VMFSRAW":
	case "":
		return e, fmt.Errorf("extent line has no type")
	default:
		return e, fmt.Errorf("extent type %q is unknown", e.Type)
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" {
		if e.Type != "ZERO" {
			return e, fmt.Errorf("%s extent has no file name", e.Type)
		}
		return e, nil
	}
	if rest[0] == '"' {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return e, fmt.Errorf("extent file name has no closing quote")
		}
		e.Filename = rest[1 : 1+end]
		rest = rest[2+end:]
	} else {
		e.Filename = next()
	}
	if off := strings.TrimSpace(rest); off != "" {
		o, err := strconv.ParseInt(off, 10, 64)
		if err != nil || o < 0 || o > maxCapacitySectors {
			return e, fmt.Errorf("extent offset %q is not a sector number", off)
		}
		e.Offset, e.HasOffset = o, true
	}
	if e.Filename == "" && e.Type != "ZERO" {
		return e, fmt.Errorf("%s extent has an empty file name", e.Type)
	}
	return e, nil
}

func parseCID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not 8 hex digits", s)
	}
	return uint32(v), nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
