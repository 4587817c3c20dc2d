package lzx

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/vmdkmount/vmdkmount/volumes/internal/lzcopy"
)

// TestUndoE8 compares undoE8 with the translation written plainly, on chunks full of E8 bytes
// whose targets fall in both translated ranges (0 to the file size, and -i to 0) and around them.
// wimlib's chunks in the other tests rarely hold a negative target.
func TestUndoE8(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 5, 10, 11, 15, 100, 4096, WindowSize} {
		var w lzcopy.Window
		for i := 0; i < n; i++ {
			w[i] = byte(rng.IntN(256))
			if rng.IntN(8) == 0 && i+5 <= n {
				w[i] = 0xE8
				var abs int32
				switch rng.IntN(5) {
				case 0:
					abs = int32(rng.IntN(e8FileSize))
				case 1:
					abs = -int32(rng.IntN(i + 1))
				case 2:
					abs = -int32(i) - 1 - int32(rng.IntN(3))
				case 3:
					abs = e8FileSize - 1 + int32(rng.IntN(3))
				default:
					abs = int32(rng.Uint32())
				}
				binary.LittleEndian.PutUint32(w[i+1:], uint32(abs))
				i += 4
			}
		}
		want := bytes.Clone(w[:n])
		for i := 0; i < n-10; i++ {
			if want[i] != 0xE8 {
				continue
			}
			abs := int32(binary.LittleEndian.Uint32(want[i+1:]))
			if abs >= 0 && abs < e8FileSize {
				binary.LittleEndian.PutUint32(want[i+1:], uint32(abs-int32(i)))
			} else if abs < 0 && abs >= -int32(i) {
				binary.LittleEndian.PutUint32(want[i+1:], uint32(abs+e8FileSize))
			}
			i += 4
		}
		undoE8(&w, n)
		if !bytes.Equal(w[:n], want) {
			t.Fatalf("chunk of %d bytes: translated differently", n)
		}
	}
}
