package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Benchmarks of the write hot path: copying a write into a part buffer,
// the SDK reading a part back, and a whole upload through the part cycle
// (reserve, fill, send, upload, release), first against a client that only
// reads the bodies (the uploader's own cost), then against MinIO (skipped
// with -short or without MinIO).
//
//	go test -run xxx -bench . -benchtime 100x ./uploader/

// benchWriteSizes are the write sizes of the kernel (128 KiB without
// big_writes, 1 MiB with MaxWrite 1 MiB) and of small application writes.
var benchWriteSizes = []int{4 << 10, 128 << 10, 1 << 20}

// BenchmarkPartBufferWrite measures copying writes into a part's pooled
// chunks (after the first part, which grows from small chunks): the
// per-write cost of Upload.Write without the upload.
func BenchmarkPartBufferWrite(b *testing.B) {
	for _, size := range benchWriteSizes {
		b.Run(fmt.Sprintf("write=%dKiB", size>>10), func(b *testing.B) {
			limiter := newMemoryLimiter(DefaultPartSize)
			p := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			var part *partBuffer
			for i := 0; i < b.N; i++ {
				if part == nil || part.full() {
					if part != nil {
						part.release()
					}
					part = &partBuffer{number: 2, capacity: DefaultPartSize, limiter: limiter}
				}
				// As Upload.Write does: reserve what the write needs, then copy.
				if err := limiter.reserve(context.Background(), part.growth(int64(len(p))), time.Minute); err != nil {
					b.Fatal(err)
				}
				if _, err := part.write(p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			part.release()
		})
	}
}

// BenchmarkChunkReader measures the SDK's read of a full part's body
// (checksum and send read it through chunkReader).
func BenchmarkChunkReader(b *testing.B) {
	limiter := newMemoryLimiter(DefaultPartSize)
	part := &partBuffer{number: 2, capacity: DefaultPartSize, limiter: limiter}
	if err := limiter.reserve(context.Background(), part.growth(DefaultPartSize), time.Minute); err != nil {
		b.Fatal(err)
	}
	if _, err := part.write(make([]byte, DefaultPartSize)); err != nil {
		b.Fatal(err)
	}
	defer part.release()
	buf := make([]byte, 32<<10) // what io.Copy and the SDK's hashers use
	b.ReportAllocs()
	b.SetBytes(DefaultPartSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := part.reader()
		for {
			_, err := r.Read(buf)
			if err == io.EOF {
				break
			}
		}
	}
}

// discardClient is an s3client.API that reads every body and stores
// nothing: uploads through it cost only the uploader's own work.
type discardClient struct {
	uploads atomic.Int64
	parts   atomic.Int64
}

var _ s3client.API = (*discardClient)(nil)

func (c *discardClient) HeadBucket(ctx context.Context) error { return nil }
func (c *discardClient) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*s3client.ListPage, error) {
	return &s3client.ListPage{}, nil
}
func (c *discardClient) Head(ctx context.Context, key string) (*s3client.ObjectInfo, error) {
	return nil, s3client.ErrNotFound
}
func (c *discardClient) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}
func (c *discardClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts s3client.PutOptions) (string, error) {
	_, err := io.Copy(io.Discard, body)
	return `"put"`, err
}
func (c *discardClient) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	return fmt.Sprintf("upload-%d", c.uploads.Add(1)), nil
}
func (c *discardClient) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (s3client.CompletedPart, error) {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return s3client.CompletedPart{}, err
	}
	c.parts.Add(1)
	return s3client.CompletedPart{Number: number, ETag: `"0123456789abcdef0123456789abcdef"`, Size: size}, nil
}
func (c *discardClient) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.CompletedPart, opts s3client.PutOptions) (string, error) {
	return `"done"`, nil
}
func (c *discardClient) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	return nil
}
func (c *discardClient) ListMultipartUploads(ctx context.Context, prefix string) ([]string, error) {
	return nil, nil
}
func (c *discardClient) Copy(ctx context.Context, src, dst string, opts s3client.CopyOptions) (string, error) {
	return `"copy"`, nil
}
func (c *discardClient) UploadPartCopy(ctx context.Context, src, srcETag, key, uploadID string, number int32, first, last int64) (s3client.CompletedPart, error) {
	return s3client.CompletedPart{Number: number, ETag: `"copy"`, Size: last - first + 1}, nil
}
func (c *discardClient) Tags(ctx context.Context, key string) (map[string]string, error) {
	return map[string]string{}, nil
}
func (c *discardClient) Delete(ctx context.Context, key string) error        { return nil }
func (c *discardClient) DeleteMany(ctx context.Context, keys []string) error { return nil }

// benchUpload writes size bytes in writes of step through a fresh Upload
// of u and completes it.
func benchUpload(b *testing.B, u *Uploader, key string, data []byte, size int64, step int) Result {
	b.Helper()
	up := u.Start(key, s3client.PutOptions{})
	for written := int64(0); written < size; {
		n := min(int64(step), size-written)
		if _, err := up.Write(context.Background(), data[:n]); err != nil {
			b.Fatal(err)
		}
		written += n
	}
	res, err := up.Complete(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkUploadPartCycle measures a 64 MiB upload in 1 MiB writes through
// the whole part cycle, against a client that only reads the parts: the
// uploader's cost per byte, concurrency and memory budget included.
func BenchmarkUploadPartCycle(b *testing.B) {
	const size = 64 << 20
	client := &discardClient{}
	u, err := New(client, Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	data := make([]byte, 1<<20)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := benchUpload(b, u, "bench", data, size, len(data))
		if res.Parts != size/DefaultPartSize {
			b.Fatalf("%d parts, want %d", res.Parts, size/DefaultPartSize)
		}
	}
}

// BenchmarkUploadSmallFile measures a file below one part: one PutObject
// at Complete, through the discarding client.
func BenchmarkUploadSmallFile(b *testing.B) {
	client := &discardClient{}
	u, err := New(client, Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	data := make([]byte, 32<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := benchUpload(b, u, "small", data, int64(len(data)), len(data)); res.Multipart {
			b.Fatal("a 32 KiB file went multipart")
		}
	}
}

// BenchmarkUploadMinIO measures a 32 MiB multipart upload in 1 MiB writes
// against a real MinIO (checksums, signing, HTTP included).
func BenchmarkUploadMinIO(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MinIO; skipped with -short")
	}
	const size = 32 << 20
	srv := s3test.StartMinIO(b)
	_, client := srv.Bucket(b)
	u, err := New(client, Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	data := bytes.Repeat([]byte("bucketfs"), (1<<20)/8)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := benchUpload(b, u, fmt.Sprintf("bench-%d", i), data, size, len(data)); res.Size != size {
			b.Fatalf("uploaded %d bytes, want %d", res.Size, size)
		}
	}
}

// patternData is an object of generated bytes: no memory, whatever its size.
type patternData struct{ salt int64 }

func (d patternData) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		x := (off + int64(i)) ^ d.salt
		p[i] = byte(x ^ x>>8 ^ x>>16 ^ x>>24)
	}
	return len(p), nil
}

// appendedData is a base of patternData with a tail of other bytes from
// offset base on: a file appended to.
type appendedData struct{ base int64 }

func (d appendedData) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < d.base {
		n, _ = patternData{}.ReadAt(p[:min(int64(len(p)), d.base-off)], off)
	}
	m, _ := patternData{salt: 0x5a5a}.ReadAt(p[n:], off+int64(n))
	return n + m, nil
}

// wireCounter is an HTTP transport that counts the request bodies sent.
type wireCounter struct {
	next  http.RoundTripper
	bytes atomic.Int64
}

func (w *wireCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ContentLength > 0 {
		w.bytes.Add(r.ContentLength)
	}
	return w.next.RoundTrip(r)
}

// BenchmarkComposeAppendMinIO commits 1 MiB appended to a 1 GiB object
// against a real MinIO: four requests (create, one copied part, one
// uploaded part, complete) and about 1 MiB of request bodies (reported as
// requests/op and wire-B/op), whatever the object's size.
//
//	go test -run xxx -bench ComposeAppend -benchtime 3x ./uploader/
func BenchmarkComposeAppendMinIO(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MinIO; skipped with -short")
	}
	const base, tail = 1 << 30, 1 << 20
	srv := s3test.StartMinIO(b)
	bucket, direct := srv.Bucket(b)
	wire := &wireCounter{}
	cfg := srv.Config(bucket)
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper { wire.next = next; return wire }
	cfg.Counter = s3client.NewRequestCounter()
	u, err := New(srv.Client(b, cfg), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	ctx := context.Background()
	if _, err := direct.Put(ctx, "base", io.NewSectionReader(patternData{}, 0, base), base, s3client.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	info, err := direct.Head(ctx, "base")
	if err != nil {
		b.Fatal(err)
	}
	l := Layout{Size: base + tail, Data: appendedData{base: base}, Base: Base{Key: "base", ETag: info.ETag, Size: base}, Same: []Range{{0, base}}}
	var res Result
	wire.bytes.Store(0)
	cfg.Counter.Reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err = u.Compose(ctx, fmt.Sprintf("bench-%d", i), s3client.PutOptions{}, l); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(wire.bytes.Load())/float64(b.N), "wire-B/op")
	b.ReportMetric(float64(cfg.Counter.Total())/float64(b.N), "requests/op")
	if res.Sent != tail || res.Copied != base || res.Parts != 2 {
		b.Fatalf("result %+v: want 1 MiB sent and 1 GiB copied in 2 parts", res)
	}
	for op, n := range map[string]int64{"CreateMultipartUpload": 1, "UploadPartCopy": 1, "UploadPart": 1, "CompleteMultipartUpload": 1} {
		if got := cfg.Counter.Snapshot()[op]; got != n*int64(b.N) {
			b.Fatalf("%d %s requests for %d commits: %v", got, op, b.N, cfg.Counter.Snapshot())
		}
	}
	// The last object holds the appended bytes.
	got, err := direct.GetRange(ctx, fmt.Sprintf("bench-%d", b.N-1), 0, -1, "")
	if err != nil {
		b.Fatal(err)
	}
	defer got.Close()
	h, want := md5.New(), md5.New()
	if _, err := io.Copy(h, got); err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(want, io.NewSectionReader(l.Data, 0, l.Size)); err != nil {
		b.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		b.Fatal("the composed object does not hold the appended bytes")
	}
}
