package squashfs

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// decompressor expands one compressed block into at most max bytes. Implementations are safe for
// concurrent use.
type decompressor interface {
	decompress(src []byte, max int) ([]byte, error)
}

func newDecompressor(id uint16, blockSize uint32) (decompressor, error) {
	switch id {
	case compGzip:
		return streamDecompressor(func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }), nil
	case compXz:
		return xzDecompressor{streamDecompressor(func(r io.Reader) (io.Reader, error) {
			return xz.ReaderConfig{SingleStream: true}.NewReader(r)
		})}, nil
	case compLz4:
		return lz4Decompressor{}, nil
	case compLzo:
		return lzoDecompressor{}, nil
	case compZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(uint64(blockSize)+metaBlockSize), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return nil, fmt.Errorf("squashfs: zstd: %w", err)
		}
		return zstdDecompressor{d}, nil
	case compLzma:
		return nil, fmt.Errorf("%w: legacy lzma compression (not mountable by Linux either)", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: compressor id %d", ErrUnsupported, id)
}

// streamDecompressor adapts a stream decoder (zlib, xz) and refuses output beyond max.
type streamDecompressor func(io.Reader) (io.Reader, error)

func (s streamDecompressor) decompress(src []byte, max int) ([]byte, error) {
	r, err := s(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	out := make([]byte, max+1)
	n, err := io.ReadFull(r, out)
	switch {
	case n > max:
		return nil, fmt.Errorf("%w: block expands beyond %d bytes", ErrCorrupt, max)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out[:n], nil
}

// xzDecompressor sends streams of several blocks, blocks with a filter chain (mksquashfs -Xbcj puts a
// branch converter before LZMA2), which the xz library cannot decode, and blocks whose header asks for
// a dictionary larger than any block, to our own decoder; the library, which also verifies the block's
// check, gets the usual single block.
type xzDecompressor struct{ streamDecompressor }

func (x xzDecompressor) decompress(src []byte, limit int) ([]byte, error) {
	blocks, err := parseXzBlocks(src, limit)
	if err != nil {
		return nil, err
	}
	// The library allocates the dictionary each block header asks for (up to 4 GiB), block after
	// block. A squashfs block is at most 1 MiB, so a larger dictionary is never needed: our decoder
	// bounds each block's by the output its chunks announce.
	if b := blocks[0]; len(blocks) > 1 || len(b.filters) > 1 || b.dictBytes() > max(uint64(limit)+1, maxBlockSize) {
		return decodeXzBlocks(src, blocks, limit)
	}
	return x.streamDecompressor.decompress(src, limit)
}

type lz4Decompressor struct{}

func (lz4Decompressor) decompress(src []byte, max int) ([]byte, error) {
	out := make([]byte, max)
	n, err := lz4.UncompressBlock(src, out)
	if err != nil {
		return nil, fmt.Errorf("%w: lz4: %w", ErrCorrupt, err)
	}
	return out[:n], nil
}

type lzoDecompressor struct{}

func (lzoDecompressor) decompress(src []byte, max int) (out []byte, err error) {
	defer func() {
		// The lzo library indexes its input directly; keep a hostile block from crashing the caller.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: lzo: %v", ErrCorrupt, r)
		}
	}()
	out = make([]byte, max)
	n, err := lzo.Decompress(src, out)
	if err != nil {
		return nil, fmt.Errorf("%w: lzo: %w", ErrCorrupt, err)
	}
	return out[:n], nil
}

type zstdDecompressor struct{ d *zstd.Decoder }

func (z zstdDecompressor) decompress(src []byte, max int) ([]byte, error) {
	out, err := z.d.DecodeAll(src, make([]byte, 0, max))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	return out, nil
}
