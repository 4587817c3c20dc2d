package regf

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/vmdkmount/vmdkmount/volumes/inspect/regf/regftest"
)

// utf16Hex is s as UTF-16LE in hivexsh's hex notation, NUL-terminated when term is set.
func utf16Hex(s string, term bool) string {
	u := utf16.Encode([]rune(s))
	if term {
		u = append(u, 0)
	}
	var parts []string
	for _, c := range u {
		parts = append(parts, fmt.Sprintf("%02x,%02x", byte(c), byte(c>>8)))
	}
	return strings.Join(parts, ",")
}

func hexBytes(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ",")
}

// populate is a hivexsh script that fills a hive with every value type, UTF-16 names, a key with
// hundreds of subkeys (so hivex grows its lh list over several cells) and a deep chain of keys.
func populate() string {
	var s strings.Builder
	w := func(lines ...string) {
		for _, l := range lines {
			s.WriteString(l + "\n")
		}
	}
	w("add Microsoft", "cd Microsoft", "add Windows NT", "cd Windows NT", "add CurrentVersion", "cd CurrentVersion")
	w("setval 6",
		"ProductName", "string:Windows Server 2019 Standard",
		"CurrentMajorVersionNumber", "dword:10",
		"CurrentMinorVersionNumber", "dword:0",
		"CurrentBuildNumber", "string:17763",
		"EditionID", "string:ServerStandard",
		"InstallationType", "string:Server")
	w(`cd \`, "add Types", "cd Types", "setval 17",
		"@", "string:the default",
		"sz", "hex:1:"+utf16Hex(`q"uo\te é☃ 日本`, true),
		"expand", "hex:2:"+utf16Hex(`%SystemRoot%\system32`, true),
		"binary", "hex:3:"+hexBytes([]byte(strings.Repeat("\x00\x01\xfe\xff", 500))),
		"dword", "dword:0xdeadbeef",
		"dwordbe", "hex:5:12,34,56,78",
		"link", "hex:6:"+utf16Hex(`\Registry\Machine\Software`, false),
		"multi", "hex:7:"+utf16Hex("one\x00two\x00thrée", true)+",00,00",
		"reslist", "hex:8:01,00,00,00,02",
		"fullres", "hex:9:aa,bb",
		"resreq", "hex:10:cc",
		"qword", "qword:0x0123456789abcdef",
		"none", "none",
		"empty", "hex:3:",
		"unknown", "hex:4660:01,02,03,04,05",
		"Ünïcödé ☃", "string:utf-16 name",
		"small", "hex:3:07")
	w(`cd \`, "add Many", "cd Many")
	for i := 0; i < 700; i++ {
		w(fmt.Sprintf("add Key%04d", (i*7919)%700))
	}
	w("add 日本語", "add Ärger", "add zebra")
	w(`cd \`)
	for i := 0; i < 40; i++ {
		w(fmt.Sprintf("add Level%d", i), fmt.Sprintf("cd Level%d", i))
	}
	w("setval 1", "deep", "dword:40")
	return s.String()
}

// renderLsval prints a key's values as hivexsh's lsval does.
func renderLsval(t *testing.T, k *Key) string {
	vs, err := k.Values()
	if err != nil {
		t.Fatalf("%s values: %v", k.Name, err)
	}
	var s strings.Builder
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	for _, v := range vs {
		if v.Name == "" {
			s.WriteString(`"@"=`)
		} else {
			s.WriteString(`"` + esc.Replace(v.Name) + `"=`)
		}
		switch v.Type {
		case String, ExpandString, Link:
			str, err := v.String()
			if err != nil {
				t.Fatalf("%s\\%s: %v", k.Name, v.Name, err)
			}
			if v.Type != String {
				fmt.Fprintf(&s, "str(%d):", v.Type)
			}
			fmt.Fprintf(&s, "\"%s\"\n", esc.Replace(str))
		case Dword, DwordBigEndian:
			n, err := v.Uint()
			if err != nil {
				t.Fatalf("%s\\%s: %v", k.Name, v.Name, err)
			}
			fmt.Fprintf(&s, "dword:%08x\n", n)
		default:
			b, err := v.Data()
			if err != nil {
				t.Fatalf("%s\\%s: %v", k.Name, v.Name, err)
			}
			fmt.Fprintf(&s, "hex(%d):%s\n", v.Type, hexBytes(b))
		}
	}
	return s.String()
}

// compareWithHivex walks the hive at path and checks it against hivex: the key tree with hivexml,
// every key's values (types and bytes) with hivexsh's lsval.
func compareWithHivex(t *testing.T, path string) (keys, values int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	h, err := Open(f, fi.Size(), filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	root, err := h.Root()
	if err != nil {
		t.Fatal(err)
	}
	var ours strings.Builder
	var script strings.Builder
	var tree []string
	err = root.Walk(func(p string, k *Key) error {
		tree = append(tree, p)
		keys++
		vs, err := k.Values()
		if err != nil {
			return err
		}
		values += len(vs)
		if len(vs) > 0 {
			ours.WriteString(renderLsval(t, k))
			fmt.Fprintf(&script, "cd \\%s\nlsval\n", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := hivexsh(t, path, script.String(), false); out != ours.String() {
		diffLines(t, "values", out, ours.String())
	}
	if want := hivexmlTree(t, path); strings.Join(want, "\n") != strings.Join(tree, "\n") {
		diffLines(t, "key tree", strings.Join(want, "\n"), strings.Join(tree, "\n"))
	}
	return keys, values
}

// diffLines reports the first line where hivex and we differ.
func diffLines(t *testing.T, what, want, got string) {
	t.Helper()
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			t.Fatalf("%s differ at line %d:\nhivex: %.200q\nours:  %.200q", what, i+1, a, b)
		}
	}
}

// hivexmlTree lists the key paths of hivexml's dump in document order, the root as "".
func hivexmlTree(t *testing.T, path string) []string {
	out, err := exec.Command("hivexml", path).Output()
	if err != nil {
		t.Fatalf("hivexml: %v", err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(out)))
	var stack, paths []string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Local != "node" {
				continue
			}
			name := ""
			for _, a := range e.Attr {
				if a.Name.Local == "name" {
					name = a.Value
				}
			}
			stack = append(stack, name)
			paths = append(paths, strings.Join(stack[1:], `\`))
		case xml.EndElement:
			if e.Name.Local == "node" {
				stack = stack[:len(stack)-1]
			}
		}
	}
	return paths
}

func TestHivexPopulated(t *testing.T) {
	needHivex(t)
	path := writeHive(t, regftest.MinimalHive("ROOT"))
	hivexsh(t, path, populate()+"commit\n", true)
	keys, values := compareWithHivex(t, path)
	if keys < 700+40 || values < 20 {
		t.Fatalf("only %d keys and %d values walked", keys, values)
	}
	// Lookups: case-insensitive, through the lh hashes, and misses.
	f, _ := os.Open(path)
	defer f.Close()
	fi, _ := f.Stat()
	h, err := Open(f, fi.Size(), "hive")
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.Open(`microsoft\WINDOWS NT\currentversion`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value("productname")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.String(); s != "Windows Server 2019 Standard" {
		t.Errorf("ProductName %q", s)
	}
	for _, name := range []string{`Many\key0699`, `Many\KEY0000`, `Many\日本語`, `Many\ärger`} {
		if _, err := h.Open(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// hivex writes lh lists: its hashes must be ours, or lookups would fall back to reading every key.
	many, _ := h.Open("Many")
	es, err := many.subkeyEntries()
	if err != nil {
		t.Fatal(err)
	}
	hashed := 0
	for _, e := range es {
		k, _ := h.key(e.off)
		if want, ascii := nameHash(k.Name); e.hashed && ascii {
			hashed++
			if e.hash != want {
				t.Errorf("%s: hivex's hash %#x, ours %#x", k.Name, e.hash, want)
			}
		}
	}
	if hashed < 700 {
		t.Errorf("only %d lh entries", hashed)
	}
	if _, err := h.Open(`Many\Key0700`); err == nil {
		t.Error("Many\\Key0700 found")
	}
	if _, err := k.Value("nope"); err == nil {
		t.Error("value nope found")
	}
}
