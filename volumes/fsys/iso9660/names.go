package iso9660

import (
	"strings"
	"unicode/utf16"
)

// plainName maps an ISO9660 file identifier the way Linux does with map=normal: lower case, a trailing
// ".;1" or ";1" dropped, any other ';' turned into '.'.
func plainName(id []byte) string {
	var sb strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c == 0 {
			break
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '.' && i == len(id)-3 && id[i+1] == ';' && id[i+2] == '1' {
			break
		}
		if c == ';' && i == len(id)-2 && id[i+1] == '1' {
			break
		}
		if c == ';' || c == '/' {
			c = '.'
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// decodeUTF16BE turns big-endian UTF-16 (Joliet) into UTF-8.
func decodeUTF16BE(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(u))
}

// decodeUCS2 decodes a Joliet descriptor field, trimming its padding.
func decodeUCS2(b []byte) string {
	return strings.TrimRight(decodeUTF16BE(b), " \x00")
}

// jolietName decodes a Joliet identifier as the kernel does: ";1" and trailing dots dropped.
func jolietName(id []byte) string {
	n := decodeUTF16BE(id)
	n = strings.TrimSuffix(n, ";1")
	for len(n) >= 2 && strings.HasSuffix(n, ".") {
		n = n[:len(n)-1]
	}
	return n
}
