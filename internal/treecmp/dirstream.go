package treecmp

import (
	"fmt"
	"io/fs"
	"slices"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// StreamNames lists directory name through s in batches of n, resuming at each batch's last cookie,
// and fails when a cookie does not grow.
func StreamNames(s fsys.DirStreamer, name string, n int) ([]string, error) {
	ds, err := s.OpenDirStream(name)
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	var names []string
	for cookie := uint64(0); ; {
		batch, err := ds.ReadDirAt(cookie, n)
		if err != nil {
			return names, err
		}
		if len(batch) == 0 {
			return names, nil
		}
		for _, e := range batch {
			if e.Next <= cookie {
				return names, fmt.Errorf("%s: cookie %d after %d", name, e.Next, cookie)
			}
			cookie = e.Next
			names = append(names, e.Name())
		}
	}
}

// CompareStreams checks a streaming reader against its own ReadDir: every directory of tree, streamed
// in batches of 1, 7 and 1000, gives ReadDir's names, and a stream resumed at any entry's cookie gives
// the entries after it. It returns how many directories it checked and the differences.
func CompareStreams(tree fsys.FS) (int, []string) {
	s, ok := tree.(fsys.DirStreamer)
	if !ok {
		return 0, []string{"the tree does not stream its directories"}
	}
	var diffs []string
	dirs := 0
	fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		ents, err := tree.ReadDir(p)
		if err != nil {
			return nil
		}
		dirs++
		var want []string
		for _, e := range ents {
			want = append(want, e.Name())
		}
		for _, n := range []int{1, 7, 1000} {
			got, err := StreamNames(s, p, n)
			slices.Sort(got)
			if err != nil || !slices.Equal(got, want) {
				diffs = append(diffs, fmt.Sprintf("%s, batches of %d: streamed %d names (%v), ReadDir %d", p, n, len(got), err, len(want)))
			}
		}
		ds, err := s.OpenDirStream(p)
		if err != nil {
			return nil
		}
		defer ds.Close()
		all, _ := ds.ReadDirAt(0, 1<<20)
		for i, e := range all {
			rest, err := ds.ReadDirAt(e.Next, 1<<20)
			if err != nil || len(rest) != len(all)-i-1 || len(rest) > 0 && rest[0].Name() != all[i+1].Name() {
				diffs = append(diffs, fmt.Sprintf("%s: resuming after entry %d gives %d entries (%v)", p, i, len(rest), err))
				break
			}
		}
		return nil
	})
	return dirs, diffs
}
