package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/inspecttest"
)

// linuxVMDK is inspecttest's GPT Linux disk (/boot, /, /home, /srv) converted to a VMDK by qemu-img.
func linuxVMDK(t *testing.T) string {
	dir := t.TempDir()
	raw := inspecttest.LinuxDisk(t, dir)
	inspecttest.NeedTools(t, "qemu-img")
	vmdk := filepath.Join(dir, "linux.vmdk")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, vmdk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	return vmdk
}

func TestInspectCommand(t *testing.T) {
	vmdk := linuxVMDK(t)
	out, _, err := run(t, "inspect", "--json", vmdk)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OS []map[string]any `json:"os"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(got.OS) != 1 {
		t.Fatalf("%d OSes: %s", len(got.OS), out)
	}
	o := got.OS[0]
	for k, want := range map[string]any{"root": "p2", "type": "linux", "distro": "debian", "major_version": 12.0,
		"minor_version": 5.0, "hostname": "debby", "product_name": "Debian GNU/Linux 12 (bookworm)"} {
		if o[k] != want {
			t.Errorf("%s = %v, want %v", k, o[k], want)
		}
	}
	wantMounts := map[string]any{"/": "p2", "/boot": "p1", "/home": "p3", "/srv": "p4"}
	if !reflect.DeepEqual(o["mountpoints"], wantMounts) {
		t.Errorf("mountpoints %v", o["mountpoints"])
	}
	text, _, err := run(t, "inspect", vmdk)
	if err != nil || !strings.Contains(text, "Debian GNU/Linux 12 (bookworm)") || !strings.Contains(text, "/srv p4") {
		t.Errorf("text form: %v\n%s", err, text)
	}
	// list --json gives each volume its mount points.
	for _, v := range listJSON(t, vmdk) {
		var want []string
		for mp, id := range wantMounts {
			if id == v.ID {
				want = append(want, mp)
			}
		}
		if !reflect.DeepEqual(v.Mountpoints, want) {
			t.Errorf("list: %s mountpoints %q, want %q", v.ID, v.Mountpoints, want)
		}
	}
}
