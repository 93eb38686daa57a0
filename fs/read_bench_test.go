package fs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
)

// Benchmarks of the read path without a kernel or a server: copying from
// blocks already fetched (what most sequential reads cost), and
// readHandle.Read over an object held in memory (block bookkeeping,
// prefetch goroutines, one GET per random read).
//
//	go test -run xxx -bench . -benchtime 100x ./fs/

const benchObjectSize = 64 << 20

// memoryObjectClient is an s3client.API holding one object in memory; only
// GetRange and Head do anything. It counts GetRange calls.
type memoryObjectClient struct {
	data []byte
	gets atomic.Int64
}

var _ s3client.API = (*memoryObjectClient)(nil)

func (c *memoryObjectClient) HeadBucket(ctx context.Context) error { return nil }
func (c *memoryObjectClient) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*s3client.ListPage, error) {
	return &s3client.ListPage{}, nil
}
func (c *memoryObjectClient) Head(ctx context.Context, key string) (*s3client.ObjectInfo, error) {
	return &s3client.ObjectInfo{Key: key, Size: int64(len(c.data))}, nil
}
func (c *memoryObjectClient) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	c.gets.Add(1)
	end := int64(len(c.data))
	if length >= 0 && offset+length < end {
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(c.data[offset:end])), nil
}
func (c *memoryObjectClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts s3client.PutOptions) (string, error) {
	return `"put"`, nil
}
func (c *memoryObjectClient) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	return "upload", nil
}
func (c *memoryObjectClient) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (s3client.CompletedPart, error) {
	return s3client.CompletedPart{Number: number, ETag: `"part"`, Size: size}, nil
}
func (c *memoryObjectClient) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.CompletedPart, opts s3client.PutOptions) (string, error) {
	return `"done"`, nil
}
func (c *memoryObjectClient) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	return nil
}
func (c *memoryObjectClient) ListMultipartUploads(ctx context.Context, prefix string) ([]string, error) {
	return nil, nil
}
func (c *memoryObjectClient) Copy(ctx context.Context, src, dst string, opts s3client.CopyOptions) (string, error) {
	return `"copy"`, nil
}
func (c *memoryObjectClient) UploadPartCopy(ctx context.Context, src, srcETag, key, uploadID string, number int32, first, last int64) (s3client.CompletedPart, error) {
	return s3client.CompletedPart{Number: number, ETag: `"copy"`, Size: last - first + 1}, nil
}
func (c *memoryObjectClient) Tags(ctx context.Context, key string) (map[string]string, error) {
	return map[string]string{}, nil
}
func (c *memoryObjectClient) Delete(ctx context.Context, key string) error        { return nil }
func (c *memoryObjectClient) DeleteMany(ctx context.Context, keys []string) error { return nil }

// newBenchFS returns a bucketFS over one in-memory object of size bytes.
func newBenchFS(b testing.TB, size int) *bucketFS {
	b.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	bfs, err := newBucketFS(Config{Client: &memoryObjectClient{data: data}, Bucket: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bfs.close)
	return bfs
}

// BenchmarkCopyFromBlocks measures serving sequential reads from blocks
// already fetched: the copy out of the read-ahead buffers.
func BenchmarkCopyFromBlocks(b *testing.B) {
	for _, size := range []int{128 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("read=%dKiB", size>>10), func(b *testing.B) {
			bfs := newBenchFS(b, 0)
			h := newReadHandle(bfs, "obj", benchObjectSize)
			defer h.Release(context.Background())
			for off := int64(0); off < benchObjectSize; off += readBlockSize {
				blk := &readBlock{off: off, n: readBlockSize, buf: bfs.reads.get(readBlockSize), full: true, done: make(chan struct{}), cancel: func() {}}
				close(blk.done)
				if h.held == 0 {
					bfs.reads.join()
				}
				h.held++
				h.blocks = append(h.blocks, blk)
			}
			h.nextFetch = benchObjectSize
			dest := make([]byte, size)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			var off int64
			for i := 0; i < b.N; i++ {
				if n, err := h.copyFromBlocks(ctx, dest, off); err != nil || n != size {
					b.Fatalf("copy at %d: %d, %v", off, n, err)
				}
				off = (off + int64(size)) % benchObjectSize
			}
		})
	}
}

// BenchmarkSequentialRead measures readHandle.Read over a whole 64 MiB
// object in the kernel's 128 KiB reads, read-ahead included, from memory.
func BenchmarkSequentialRead(b *testing.B) {
	bfs := newBenchFS(b, benchObjectSize)
	dest := make([]byte, 128<<10)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(benchObjectSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := newReadHandle(bfs, "obj", benchObjectSize)
		for off := int64(0); off < benchObjectSize; off += int64(len(dest)) {
			res, errno := h.Read(ctx, dest, off)
			if errno != 0 || res.Size() != len(dest) {
				b.Fatalf("read at %d: errno %v", off, errno)
			}
		}
		h.Release(ctx)
	}
}

// BenchmarkRandomRead measures 4 KiB reads at random offsets: each is one
// GET (here from memory) plus the handle's bookkeeping.
func BenchmarkRandomRead(b *testing.B) {
	bfs := newBenchFS(b, benchObjectSize)
	h := newReadHandle(bfs, "obj", benchObjectSize)
	defer h.Release(context.Background())
	dest := make([]byte, 4<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(dest)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := rng.Int64N(benchObjectSize/4096-1) * 4096
		res, errno := h.Read(ctx, dest, off)
		if errno != 0 || res.Size() != len(dest) {
			b.Fatalf("read at %d: errno %v", off, errno)
		}
	}
}
