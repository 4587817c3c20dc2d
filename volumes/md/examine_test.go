package md

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/mdfix"
	"github.com/vmdkmount/vmdkmount/volumes/layout"
)

type memDev struct{ *bytes.Reader }

func (m memDev) Size() int64 { return m.Reader.Size() }

func dev(b []byte) layout.Dev { return memDev{bytes.NewReader(b)} }

// shapes are the arrays every test lays out: each level, each layout, each metadata version.
var shapes = []mdfix.Array{
	{Version: "1.2", Level: 1, Members: 2},
	{Version: "1.0", Level: 0, Members: 2},
	{Version: "0.90", Level: 0, Members: 3},
	{Version: "1.1", Level: -1, Members: 3},
	{Version: "0.90", Level: 1, Members: 3},
	{Version: "1.2", Level: 4, Members: 3},
	{Version: "1.2", Level: 5, Layout: 0, Members: 4},
	{Version: "1.1", Level: 5, Layout: 1, Members: 4},
	{Version: "1.0", Level: 5, Layout: 2, Members: 3},
	{Version: "0.90", Level: 5, Layout: 3, Members: 5},
	{Version: "1.2", Level: 5, Layout: 4, Members: 3},
	{Version: "1.2", Level: 5, Layout: 5, Members: 3},
	{Version: "1.2", Level: 6, Layout: 2, Members: 4},
	{Version: "1.2", Level: 6, Layout: 0, Members: 5},
	{Version: "1.0", Level: 6, Layout: 1, Members: 6},
	{Version: "0.90", Level: 6, Layout: 3, Members: 5},
	{Version: "1.2", Level: 10, Layout: 0x102, Members: 4},   // near=2
	{Version: "1.2", Level: 10, Layout: 0x102, Members: 3},   // near=2 over an odd count
	{Version: "1.1", Level: 10, Layout: 0x201, Members: 4},   // far=2
	{Version: "1.0", Level: 10, Layout: 0x201, Members: 3},   // far=2 over an odd count
	{Version: "1.2", Level: 10, Layout: 0x10201, Members: 4}, // offset=2
	{Version: "1.2", Level: 10, Layout: 0x10301, Members: 5}, // offset=3
}

func shapeName(a mdfix.Array) string {
	return strings.NewReplacer(".", "").Replace(a.Version) + "-" + LevelName(a.Level) + "-" + strconv.FormatUint(uint64(a.Layout), 16) + "-" + strconv.Itoa(a.Members)
}

// build lays out random data over a shape's members and returns both.
func build(t *testing.T, a mdfix.Array, seed uint64) ([]byte, [][]byte, mdfix.Array) {
	t.Helper()
	a.Chunk = 64 << 10
	a.DevSize = 24 * a.Chunk
	a.Events = 42
	a.Name = "testhost:" + strconv.Itoa(int(seed))
	a.Minor = int(seed)
	var key [32]byte
	key[0] = byte(seed)
	r := rand.NewChaCha8(key)
	r.Read(a.UUID[:])
	data := make([]byte, a.ArraySize())
	r.Read(data)
	members, err := a.Build(data)
	if err != nil {
		t.Fatal(err)
	}
	return data, members, a
}

var examineField = regexp.MustCompile(`(?m)^\s*([A-Za-z ]+?) : (.*)$`)

// TestExamineAgrees writes each shape's members to files and checks that mdadm --examine accepts
// every superblock (checksum included) and reads the same geometry we do.
func TestExamineAgrees(t *testing.T) {
	if _, err := exec.LookPath("mdadm"); err != nil {
		t.Skip("mdadm not installed")
	}
	dir := t.TempDir()
	for i, shape := range shapes {
		t.Run(shapeName(shape), func(t *testing.T) {
			_, members, a := build(t, shape, uint64(i))
			var arrays []Member
			var availSum int64
			for role, img := range members {
				p := filepath.Join(dir, shapeName(shape)+"-"+strconv.Itoa(role))
				if err := os.WriteFile(p, img, 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command("mdadm", "--examine", p).CombinedOutput()
				if err != nil {
					t.Fatalf("mdadm --examine member %d: %v\n%s", role, err, out)
				}
				f := map[string]string{}
				for _, m := range examineField.FindAllStringSubmatch(string(out), -1) {
					f[m[1]] = strings.TrimSpace(m[2])
				}
				sb, err := Read(dev(img), int64(len(img)))
				if err != nil {
					t.Fatalf("member %d: %v\nmdadm:\n%s", role, err, out)
				}
				arrays = append(arrays, Member{SB: sb, Dev: dev(img)})
				if avail, _, ok := strings.Cut(f["Avail Dev Size"], " "); ok {
					n, _ := strconv.ParseInt(avail, 10, 64)
					availSum += n * 512 / a.Chunk * a.Chunk
				}
				check := func(what, ours, theirs string) {
					if ours != theirs {
						t.Errorf("member %d %s: ours %q, mdadm %q", role, what, ours, theirs)
					}
				}
				version := f["Version"]
				check("version", sb.Version, strings.TrimSuffix(version, ".00"))
				check("level", LevelName(sb.Level), f["Raid Level"])
				check("raid devices", strconv.Itoa(sb.RaidDisks), f["Raid Devices"])
				uuid := f["Array UUID"]
				if uuid == "" {
					uuid = f["UUID"]
				}
				check("uuid", sb.UUIDString(), uuid)
				if sb.Level == 5 || sb.Level == 6 || sb.Level == 10 {
					check("layout", LayoutName(sb.Level, sb.Layout), f["Layout"])
				}
				if sb.Version != "0.90" {
					check("role", "Active device "+strconv.Itoa(sb.Role), f["Device Role"])
					if sb.DataOffset != 0 || f["Data Offset"] != "" { // mdadm leaves a zero offset out
						check("data offset", strconv.FormatInt(sb.DataOffset/512, 10)+" sectors", f["Data Offset"])
					}
				}
				if role == 0 && os.Getenv("MDDUMP") != "" {
					t.Logf("%s", out)
				}
				if role == len(members)-1 {
					arr, problems := Assemble(arrays)
					if len(arr) != 1 || len(problems) != 0 || arr[0].Err != nil {
						t.Fatalf("assembled %d arrays, problems %v", len(arr), problems)
					}
					kib, _, _ := strings.Cut(f["Array Size"], " ")
					if kib == "" && sb.Level <= 0 && sb.Version != "0.90" {
						// mdadm prints no array size for linear and RAID 0: they use each member's
						// available size, rounded down to the chunk.
						kib = strconv.FormatInt(availSum/1024, 10)
					}
					if kib != "" || sb.Version != "0.90" {
						check("array size", strconv.FormatInt(arr[0].Size/1024, 10), kib)
					}
					if arr[0].Size != a.ArraySize() {
						t.Errorf("array size %d, laid out %d", arr[0].Size, a.ArraySize())
					}
				}
			}
		})
	}
}
