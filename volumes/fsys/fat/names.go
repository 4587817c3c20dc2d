package fat

import (
	"strings"
	"unicode"
	"unicode/utf16"
)

// cp437High maps OEM code page 437 bytes 0x80–0xFF to Unicode; the kernel's default codepage=437 does the
// same for short names.
var cp437High = [128]rune{
	'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
	'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ',
	'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»',
	'░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐',
	'└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧',
	'╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀',
	'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩',
	'≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u00a0',
}

// decodeOEM turns code page 437 bytes into a string.
func decodeOEM(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(cp437High[c-0x80])
		}
	}
	return sb.String()
}

// NT case flags in the reserved byte 12 of a short entry (Windows NT, honoured by Linux vfat).
const (
	lowerBase = 0x08
	lowerExt  = 0x10
)

// shortName renders an 8.3 entry: stored is the upper-case alias "NAME.EXT", display applies the NT
// lowercase flags as Linux's default shortname=mixed shows a name with no long name.
func shortName(raw []byte, ntCase byte) (stored, display string) {
	base := append([]byte(nil), raw[:8]...)
	if base[0] == 0x05 { // a real 0xE5 first byte, escaped because 0xE5 marks deleted entries
		base[0] = 0xE5
	}
	b := strings.TrimRight(decodeOEM(base), " ")
	e := strings.TrimRight(decodeOEM(raw[8:11]), " ")
	db, de := b, e
	if ntCase&lowerBase != 0 {
		db = strings.Map(unicode.ToLower, b)
	}
	if ntCase&lowerExt != 0 {
		de = strings.Map(unicode.ToLower, e)
	}
	if e == "" {
		return b, db
	}
	return b + "." + e, db + "." + de
}

// shortChecksum is the LFN checksum of an 11-byte short name.
func shortChecksum(raw []byte) byte {
	var s byte
	for _, c := range raw[:11] {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// lfnAssembler collects VFAT long-name slots, which precede their short entry in reverse order.
type lfnAssembler struct {
	units []uint16 // 13 UTF-16 units per slot, slot 1 first
	next  int      // ordinal expected in the next slot; 0 when no name is in progress
	sum   byte
}

// add takes one LFN slot; a slot out of sequence drops the name in progress as the kernel does.
func (a *lfnAssembler) add(e []byte) {
	ord := int(e[0] & 0x3F)
	if e[0]&0x40 != 0 {
		if ord == 0 || ord > 20 {
			a.next = 0
			return
		}
		a.units = make([]uint16, ord*13)
		a.next = ord
		a.sum = e[13]
	} else if a.next == 0 || ord != a.next || e[13] != a.sum {
		a.next = 0
		return
	}
	u := a.units[(ord-1)*13:]
	for i, off := range lfnOffsets {
		u[i] = uint16(e[off]) | uint16(e[off+1])<<8
	}
	a.next = ord - 1
	if ord == 1 {
		a.next = -1 // complete; waiting for the short entry
	}
}

var lfnOffsets = [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

// take returns the long name if a complete one with a matching checksum precedes the short entry raw.
func (a *lfnAssembler) take(raw []byte) (string, bool) {
	done := a.next == -1
	a.next = 0
	if !done || shortChecksum(raw) != a.sum {
		return "", false
	}
	u := a.units
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	if len(u) == 0 {
		return "", false
	}
	return string(utf16.Decode(u)), true
}
