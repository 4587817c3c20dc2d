package fsys

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
)

// mapLinker serves Lstat/ReadLink from a MapFS whose symlinks hold their target as Data.
type mapLinker struct{ m fstest.MapFS }

func (l mapLinker) Lstat(name string) (fs.FileInfo, error) {
	f, ok := l.m[name]
	if !ok {
		if name == "." {
			return fs.Stat(l.m, ".")
		}
		// implicit directories of MapFS
		return fs.Stat(l.m, name)
	}
	return &Info{EntryName: name, St: Stat{Mode: modeOf(f.Mode)}}, nil
}

func (l mapLinker) ReadLink(name string) (string, error) { return string(l.m[name].Data), nil }

func modeOf(m fs.FileMode) uint32 {
	switch {
	case m&fs.ModeSymlink != 0:
		return S_IFLNK | 0o777
	case m.IsDir():
		return S_IFDIR | 0o755
	}
	return S_IFREG | 0o644
}

func TestResolve(t *testing.T) {
	m := fstest.MapFS{
		"a/b/file":   {Data: []byte("x")},
		"a/rel":      {Mode: fs.ModeSymlink, Data: []byte("b/file")},
		"a/up":       {Mode: fs.ModeSymlink, Data: []byte("../../../../a/b")},
		"abs":        {Mode: fs.ModeSymlink, Data: []byte("/a/b/file")},
		"etc":        {Mode: fs.ModeSymlink, Data: []byte("/host/passwd")},
		"loop1":      {Mode: fs.ModeSymlink, Data: []byte("loop2")},
		"loop2":      {Mode: fs.ModeSymlink, Data: []byte("loop1")},
		"a/b/self":   {Mode: fs.ModeSymlink, Data: []byte(".")},
		"a/b/parent": {Mode: fs.ModeSymlink, Data: []byte("..")},
	}
	l := mapLinker{m}
	cases := []struct {
		in, want string
		follow   bool
		err      error
	}{
		{"a/rel", "a/b/file", true, nil},
		{"a/rel", "a/rel", false, nil},
		{"a/up/file", "a/b/file", true, nil},
		{"abs", "a/b/file", true, nil},
		{"a/b/self/self/file", "a/b/file", true, nil},
		{"a/b/parent/rel", "a/b/file", true, nil},
		{"etc", "", true, fs.ErrNotExist},
		{"loop1", "", true, ErrLoop},
		{"a/b/file/x", "", true, errNotDir},
		{".", ".", true, nil},
	}
	for _, c := range cases {
		got, err := Resolve(l, c.in, c.follow)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q) error = %v, want %v", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q, %v) = %q, %v; want %q", c.in, c.follow, got, err, c.want)
		}
	}
}
