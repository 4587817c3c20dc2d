package ntfs

import "testing"

// TestSplitVolume: the volume and path of Windows absolute targets; other forms name no volume.
func TestSplitVolume(t *testing.T) {
	for _, c := range []struct{ target, vol, rel string }{
		{`\??\D:\shared\x.txt`, "D:", "shared/x.txt"},
		{`\??\d:\`, "d:", "."},
		{`\??\D:`, "D:", "."},
		{`\??\D:\a\..\..\..\etc`, "D:", "etc"}, // never above the volume's root
		{`\??\Volume{b2b3b4b5-0000-0000-0000-200000000000}\Shared`, "Volume{b2b3b4b5-0000-0000-0000-200000000000}", "Shared"},
		{`\??\UNC\server\share`, "", ""},
		{`\??\Volume{short}\x`, "", ""},
		{`C:\x`, "", ""},
		{`\??\1:\x`, "", ""},
	} {
		vol, rel, ok := splitVolume(c.target)
		if vol != c.vol || rel != c.rel || ok != (c.vol != "") {
			t.Errorf("%s: %q %q %v, want %q %q", c.target, vol, rel, ok, c.vol, c.rel)
		}
	}
}
