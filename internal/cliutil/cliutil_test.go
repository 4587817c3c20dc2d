package cliutil

import (
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestReorder(t *testing.T) {
	app := &cli.App{
		Name:     "x",
		Flags:    []cli.Flag{&cli.StringSliceFlag{Name: "o"}, &cli.BoolFlag{Name: "rw"}, &cli.StringFlag{Name: "volume"}},
		Commands: []*cli.Command{{Name: "info", Flags: []cli.Flag{&cli.BoolFlag{Name: "json"}, &cli.StringFlag{Name: "output"}}}},
	}
	for _, c := range []struct{ in, want []string }{
		{[]string{"x", "info", "d.vmdk", "--json"}, []string{"x", "info", "--json", "d.vmdk"}},
		{[]string{"x", "info", "d.vmdk", "--output", "json"}, []string{"x", "info", "--output", "json", "d.vmdk"}},
		{[]string{"x", "info", "d.vmdk", "--output=json"}, []string{"x", "info", "--output=json", "d.vmdk"}},
		{[]string{"x", "info", "--", "-d.vmdk", "--json"}, []string{"x", "info", "--", "-d.vmdk", "--json"}},
		{[]string{"x", "d.vmdk", "mnt", "-o", "ro,allow_other"}, []string{"x", "-o", "ro,allow_other", "d.vmdk", "mnt"}},
		{[]string{"x", "d.vmdk", "--rw", "mnt", "--volume", "p2"}, []string{"x", "--rw", "--volume", "p2", "d.vmdk", "mnt"}},
		{[]string{"x", "-o", "ro", "info", "d.vmdk", "--json"}, []string{"x", "-o", "ro", "info", "--json", "d.vmdk"}},
		{[]string{"x", "-", "mnt", "--bogus"}, []string{"x", "--bogus", "-", "mnt"}},
		{[]string{"x"}, []string{"x"}},
	} {
		if got := Reorder(app, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Reorder(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
