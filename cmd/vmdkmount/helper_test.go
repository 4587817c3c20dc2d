package main

import (
	"reflect"
	"testing"
)

// mount(8)'s calls of the helper become vmdkmount command lines.
func TestHelperArgs(t *testing.T) {
	for _, c := range []struct {
		in, want []string
		err      string
	}{
		{in: []string{"/sbin/mount.vmdk", "/vm/d.vmdk", "/mnt/x", "-o", "rw"},
			want: []string{"vmdkmount", "--mount-helper", "-o", "rw", "--", "/vm/d.vmdk", "/mnt/x"}},
		{in: []string{"/sbin/mount.vmdk", "/vm/d.vmdk", "/mnt/x", "-s", "-n", "-v", "-o", "ro,allow_other,nofail", "-t", "vmdk"},
			want: []string{"vmdkmount", "--mount-helper", "-o", "ro,allow_other,nofail", "--", "/vm/d.vmdk", "/mnt/x"}},
		{in: []string{"/sbin/mount.vmdk", "/vm/d.vmdk", "/mnt/x", "-f", "-o", "ro"}}, // fake: nothing to run
		{in: []string{"/sbin/mount.vmdk", "/vm/d.vmdk"}, err: "mount.vmdk: want SPEC DIR, got [\"/vm/d.vmdk\"]\nusage: mount.vmdk DISK MOUNTPOINT [-o OPTIONS]"},
		{in: []string{"/sbin/mount.vmdk", "a", "b", "-N", "1234"}, err: "mount.vmdk: -N (another mount namespace) is not supported"},
		{in: []string{"/sbin/mount.vmdk", "a", "b", "-o"}, err: "mount.vmdk: -o needs a value"},
		{in: []string{"/sbin/mount.vmdk", "a", "b", "-x"}, err: "mount.vmdk: unknown mount option -x"},
	} {
		got, err := helperArgs(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %q %v, want %q", c.in, got, err, c.want)
		}
	}
	if !isMountHelper("/sbin/mount.vmdk") || isMountHelper("/usr/local/bin/vmdkmount") {
		t.Error("isMountHelper")
	}
}
