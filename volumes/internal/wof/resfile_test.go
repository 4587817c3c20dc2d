package wof_test

import (
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/wimres"
	"github.com/vmdkmount/vmdkmount/volumes/internal/lzx"
	"github.com/vmdkmount/vmdkmount/volumes/internal/wof"
	"github.com/vmdkmount/vmdkmount/volumes/internal/xpress"
)

// BenchmarkResourceFile decodes the resource WOF_BENCH_RES (WOF_BENCH_SIZE bytes uncompressed,
// algorithm WOF_BENCH_ALG: 0 XPRESS4K, 1 LZX) chunk by chunk with our decoders on one goroutine,
// copying stored chunks, and reports the process's CPU seconds per pass: bench/wof-read.sh sets
// them to compare our decoders with wimlib's (bench/wofdecode, the same loop in C) on the same
// chunks, a ratio the machine's load hardly moves.
func BenchmarkResourceFile(b *testing.B) {
	path := os.Getenv("WOF_BENCH_RES")
	if path == "" {
		b.Skip("WOF_BENCH_RES is not set")
	}
	res, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	size, err1 := strconv.ParseInt(os.Getenv("WOF_BENCH_SIZE"), 10, 64)
	alg, err2 := strconv.Atoi(os.Getenv("WOF_BENCH_ALG"))
	if err1 != nil || err2 != nil {
		b.Fatal("WOF_BENCH_SIZE and WOF_BENCH_ALG must be numbers")
	}
	cs := wof.Algorithm(alg).ChunkSize()
	var x xpress.Decoder
	var l lzx.Decoder
	decode := x.Decompress
	if wof.Algorithm(alg) == wof.LZX {
		decode = l.Decompress
	}
	chunks := wimres.Chunks(b, res, size, cs)
	out := make([]byte, cs)
	b.SetBytes(size)
	start := cpu()
	for b.Loop() {
		for i, c := range chunks {
			ulen := min(int64(cs), size-int64(i)*int64(cs))
			if int64(len(c)) == ulen {
				copy(out, c) // stored as is
			} else if err := decode(out[:ulen], c); err != nil {
				b.Fatalf("chunk %d: %v", i, err)
			}
		}
	}
	b.ReportMetric((cpu()-start)/float64(b.N), "cpu-s/op")
}

// cpu is the process's user and system CPU time in seconds.
func cpu() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}
