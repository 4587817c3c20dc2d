package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// Value is one metadata value: an integer, a string or a list of values.
type Value struct {
	IsInt  bool
	IsList bool
	Int    int64
	Str    string
	List   []Value
}

// Section is a `name { … }` block of LVM text metadata.
type Section struct {
	Name     string
	Values   map[string]Value
	Children []*Section // in file order
}

// Child returns the sub-section called name, or nil.
func (s *Section) Child(name string) *Section {
	for _, c := range s.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Int returns an integer value and whether it was there and an integer.
func (s *Section) Int(key string) (int64, bool) {
	v, ok := s.Values[key]
	return v.Int, ok && v.IsInt
}

// String returns a string value, or "".
func (s *Section) String(key string) string {
	v := s.Values[key]
	if v.IsInt || v.IsList {
		return ""
	}
	return v.Str
}

// Strings returns the string members of a list value (e.g. status flags).
func (s *Section) Strings(key string) []string {
	var out []string
	for _, v := range s.Values[key].List {
		if !v.IsInt && !v.IsList {
			out = append(out, v.Str)
		}
	}
	return out
}

// maxDepth bounds section nesting; real metadata nests four levels deep.
const maxDepth = 16

// Parse bounds: a parsed value takes tens of times the bytes of its text, so a hostile area full of
// "1," would cost gigabytes. Real lists are stripe pairs and flags; a VG with thousands of LVs has
// well under maxItems values.
const (
	maxListItems = 4096
	maxItems     = 1 << 18
)

// ParseText parses LVM2 text metadata into a root section.
func ParseText(text string) (*Section, error) {
	p := &parser{s: text}
	root := &Section{Name: "", Values: map[string]Value{}}
	if err := p.body(root, 0); err != nil {
		return nil, err
	}
	if p.peek() != 0 {
		return nil, p.errorf("unexpected %q", p.s[p.pos])
	}
	return root, nil
}

type parser struct {
	s     string
	pos   int
	items int // values and sections parsed so far, bounded by maxItems
}

func (p *parser) count() error {
	if p.items++; p.items > maxItems {
		return p.errorf("more than %d values and sections", maxItems)
	}
	return nil
}

func (p *parser) errorf(format string, args ...any) error {
	line := 1 + strings.Count(p.s[:p.pos], "\n")
	return fmt.Errorf("metadata line %d: %s", line, fmt.Sprintf(format, args...))
}

// peek skips blanks and comments and returns the next byte (0 at the end; NUL also ends the text).
func (p *parser) peek() byte {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == 0:
			return 0
		default:
			return c
		}
	}
	return 0
}

func isIdent(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c == '+' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (p *parser) ident() string {
	start := p.pos
	for p.pos < len(p.s) && isIdent(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// body reads items until '}' (depth > 0) or the end (depth 0).
func (p *parser) body(sec *Section, depth int) error {
	if depth > maxDepth {
		return p.errorf("sections nested deeper than %d", maxDepth)
	}
	for {
		c := p.peek()
		if c == 0 {
			if depth > 0 {
				return p.errorf("section %q not closed", sec.Name)
			}
			return nil
		}
		if c == '}' {
			if depth == 0 {
				return p.errorf("unmatched '}'")
			}
			p.pos++
			return nil
		}
		name := p.ident()
		if name == "" {
			return p.errorf("expected a name, found %q", c)
		}
		if err := p.count(); err != nil {
			return err
		}
		switch p.peek() {
		case '{':
			p.pos++
			child := &Section{Name: name, Values: map[string]Value{}}
			if err := p.body(child, depth+1); err != nil {
				return err
			}
			sec.Children = append(sec.Children, child)
		case '=':
			p.pos++
			v, err := p.value(0)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			sec.Values[name] = v
		default:
			return p.errorf("expected '=' or '{' after %q", name)
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	switch c := p.peek(); {
	case c == '"':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.s) {
				return Value{}, p.errorf("string not closed")
			}
			c := p.s[p.pos]
			p.pos++
			if c == '"' {
				return Value{Str: b.String()}, nil
			}
			if c == '\\' && p.pos < len(p.s) {
				c = p.s[p.pos]
				p.pos++
			}
			b.WriteByte(c)
		}
	case c == '[':
		if depth > maxDepth {
			return Value{}, p.errorf("lists nested deeper than %d", maxDepth)
		}
		p.pos++
		v := Value{IsList: true}
		for {
			if p.peek() == ']' {
				p.pos++
				return v, nil
			}
			if len(v.List) == maxListItems {
				return Value{}, p.errorf("list longer than %d items", maxListItems)
			}
			if err := p.count(); err != nil {
				return Value{}, err
			}
			item, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			v.List = append(v.List, item)
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
			default:
				return Value{}, p.errorf("expected ',' or ']' in list")
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		word := p.ident()
		n, err := strconv.ParseInt(word, 10, 64)
		if err != nil {
			// lvm2 also writes floats for a few keys (e.g. creation times in some versions): keep as text.
			if _, ferr := strconv.ParseFloat(word, 64); ferr == nil {
				return Value{Str: word}, nil
			}
			return Value{}, p.errorf("bad number %q", word)
		}
		return Value{IsInt: true, Int: n}, nil
	default:
		return Value{}, p.errorf("expected a value, found %q", c)
	}
}
