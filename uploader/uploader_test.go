package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// testBed is a MinIO bucket with a client whose transport injects faults.
type testBed struct {
	client *s3client.Client // through the fault transport
	direct *s3client.Client // bypassing it, for checks
	faults *s3test.FaultTransport
}

func newTestBed(t *testing.T) *testBed {
	t.Helper()
	srv := s3test.StartMinIO(t)
	bucket, direct := srv.Bucket(t)
	ft := s3test.NewFaultTransport(nil)
	cfg := srv.Config(bucket)
	cfg.WrapTransport = ft.Wrap
	cfg.MaxAttempts = 3
	return &testBed{client: srv.Client(t, cfg), direct: direct, faults: ft}
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeAll writes data in writes of step bytes.
func writeAll(t *testing.T, up *Upload, data []byte, step int) {
	t.Helper()
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		n, err := up.Write(context.Background(), data[off:end])
		if err != nil || n != end-off {
			t.Fatalf("write at %d: %d, %v", off, n, err)
		}
	}
}

func (tb *testBed) checkObject(t *testing.T, key string, want []byte) {
	t.Helper()
	got := s3test.GetObject(t, tb.direct, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("object %s: %d bytes, want %d (equal prefix: %v)", key, len(got), len(want), len(got) > 0 && bytes.Equal(got[:min(len(got), len(want))], want[:min(len(got), len(want))]))
	}
}

func (tb *testBed) checkNoUploads(t *testing.T) {
	t.Helper()
	ids, err := tb.direct.ListMultipartUploads(context.Background(), "")
	if err != nil || len(ids) != 0 {
		t.Fatalf("multipart uploads left: %v, %v", ids, err)
	}
}

func newUploader(t *testing.T, c s3client.API, cfg Config) *Uploader {
	t.Helper()
	u, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return u
}

// TestPartsInOrderUnderConcurrency: many parts in flight at once complete
// in ascending order with their ETags; the short last part is fine.
func TestPartsInOrderUnderConcurrency(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 64 << 20, Concurrency: 4})
	data := randomData(1, 9*MinPartSize+12345) // 9 full parts and a short one
	up := u.Start("ordered", s3client.PutOptions{})
	writeAll(t, up, data, 128<<10+7)
	res, err := up.Complete(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Multipart || res.Parts != 10 || res.Size != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	tb.checkObject(t, "ordered", data)
	if n := tb.faults.Count("UploadPart"); n != 10 {
		t.Fatalf("%d UploadPart requests, want 10", n)
	}
}

// TestSmallFileIsOnePut: a file under one part is one PutObject, no
// multipart upload; an empty file is an empty object.
func TestSmallFileIsOnePut(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	data := randomData(2, 3<<20)
	up := u.Start("small", s3client.PutOptions{Metadata: map[string]string{"mode": "33188"}})
	writeAll(t, up, data, 4096)
	if res, err := up.Complete(context.Background()); err != nil || res.Multipart {
		t.Fatalf("complete: %+v, %v", res, err)
	}
	tb.checkObject(t, "small", data)
	empty := u.Start("empty", s3client.PutOptions{})
	if _, err := empty.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.checkObject(t, "empty", nil)
	if tb.faults.Count("CreateMultipartUpload") != 0 || tb.faults.Count("PutObject") != 2 {
		t.Fatalf("requests %v", tb.faults.Ops())
	}
	info, err := tb.direct.Head(context.Background(), "small")
	if err != nil || info.Metadata["mode"] != "33188" {
		t.Fatalf("metadata: %+v, %v", info, err)
	}
}

// TestCompleteErrorInBody: a 200 whose body is an <Error> after whitespace
// fails the upload, which is aborted; no object is left.
func TestCompleteErrorInBody(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	rule := tb.faults.Add(s3test.Rule{Op: "CompleteMultipartUpload", Fault: s3test.Fault{
		Body: "\n  \n    \n" + s3test.ErrorBody("InternalError", "We encountered an internal error. Please try again."),
	}})
	up := u.Start("doomed", s3client.PutOptions{})
	writeAll(t, up, randomData(3, 2*MinPartSize+1), 1<<20)
	_, err := up.Complete(context.Background())
	if err == nil {
		t.Fatal("Complete succeeded on a 200 with an <Error> body")
	}
	if s3client.Code(err) != "InternalError" {
		t.Fatalf("error %v: want the S3 code InternalError", err)
	}
	if tb.faults.Hits(rule) != 3 {
		t.Fatalf("Complete tried %d times, want 3 (the SDK retries it)", tb.faults.Hits(rule))
	}
	if _, err := tb.direct.Head(context.Background(), "doomed"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("object after failure: %v", err)
	}
	tb.checkNoUploads(t)
	if tb.faults.Count("AbortMultipartUpload") != 1 {
		t.Fatal("the failed upload was not aborted")
	}
}

// TestPartRetries: UploadPart answered 503 SlowDown, or reset, is retried
// from the kept buffer and the upload succeeds.
func TestPartRetries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault s3test.Fault
	}{
		{"503 SlowDown", s3test.Fault{Status: 503, Code: "SlowDown"}},
		{"500", s3test.Fault{Status: 500, Code: "InternalError"}},
		{"connection reset", s3test.Fault{Reset: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTestBed(t)
			u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20, Concurrency: 2})
			rule := tb.faults.Add(s3test.Rule{Op: "UploadPart", Skip: 1, Times: 2, Fault: tc.fault})
			data := randomData(4, 3*MinPartSize)
			up := u.Start("retried", s3client.PutOptions{})
			writeAll(t, up, data, 1<<20)
			if _, err := up.Complete(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tb.faults.Hits(rule) != 2 {
				t.Fatalf("%d faults injected, want 2", tb.faults.Hits(rule))
			}
			tb.checkObject(t, "retried", data)
		})
	}
}

// TestCompleteLostAnswer: the first Complete succeeds on the server but its
// answer is lost; the retry meets NoSuchUpload, and a HEAD proves the
// object is ours (size and multipart ETag).
func TestCompleteLostAnswer(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	tb.faults.Add(s3test.Rule{Op: "CompleteMultipartUpload", Times: 1, Fault: s3test.Fault{AfterSend: true, Reset: true}})
	data := randomData(5, 2*MinPartSize+99)
	up := u.Start("lost", s3client.PutOptions{})
	writeAll(t, up, data, 1<<20)
	res, err := up.Complete(context.Background())
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if tb.faults.Count("CompleteMultipartUpload") != 2 || tb.faults.Count("HeadObject") != 1 {
		t.Fatalf("requests %v: want the retried Complete and one HEAD", tb.faults.Ops())
	}
	tb.checkObject(t, "lost", data)
	info, _ := tb.direct.Head(context.Background(), "lost")
	if res.ETag != info.ETag {
		t.Fatalf("etag %s, object has %s", res.ETag, info.ETag)
	}
}

// TestCompleteLostAnswerOtherObject: after NoSuchUpload, an object that is
// not ours (another writer replaced it) is a failure.
func TestCompleteLostAnswerOtherObject(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	tb.faults.Add(s3test.Rule{Op: "CompleteMultipartUpload", Times: 1, Fault: s3test.Fault{AfterSend: true, Reset: true}})
	// Between the lost answer and the retry, another client overwrites the key.
	tb.faults.Add(s3test.Rule{Op: "CompleteMultipartUpload", Skip: 1, Times: 1, Fault: s3test.Fault{Delay: time.Millisecond},
		Match: func(*http.Request) bool {
			_, _ = tb.direct.Put(context.Background(), "contested", bytes.NewReader([]byte("theirs")), 6, s3client.PutOptions{})
			return true
		}})
	up := u.Start("contested", s3client.PutOptions{})
	writeAll(t, up, randomData(6, 2*MinPartSize), 1<<20)
	if _, err := up.Complete(context.Background()); !errors.Is(err, s3client.ErrNoSuchUpload) {
		t.Fatalf("Complete: %v, want a NoSuchUpload failure", err)
	}
	tb.checkObject(t, "contested", []byte("theirs"))
}

// TestFailEarlyAndAbort: once a part failed for good, writes fail at once,
// Complete fails, and the upload is aborted.
func TestFailEarlyAndAbort(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	tb.faults.Add(s3test.Rule{Op: "UploadPart", Fault: s3test.Fault{Status: 403, Code: "AccessDenied"}})
	up := u.Start("dead", s3client.PutOptions{})
	ctx := context.Background()
	chunk := randomData(7, 1<<20)
	var werr error
	for i := 0; i < 40 && werr == nil; i++ {
		_, werr = up.Write(ctx, chunk)
		time.Sleep(5 * time.Millisecond)
	}
	if !errors.Is(werr, ErrUploadFailed) {
		t.Fatalf("writes kept succeeding into a dead upload: %v", werr)
	}
	if up.Size() >= 40<<20 {
		t.Fatal("all 40 MiB were accepted")
	}
	if _, err := up.Complete(ctx); err == nil {
		t.Fatal("Complete succeeded")
	}
	tb.checkNoUploads(t)
}

// TestMemoryBudgetBlocksAndResumes: with a budget of two parts and slow
// uploads, a writer waits for memory, then resumes as parts finish; many
// concurrent uploads under a small budget all finish (no deadlock).
func TestMemoryBudgetBlocksAndResumes(t *testing.T) {
	tb := newTestBed(t)
	// A budget of four parts (parts over a quarter of it would spill).
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 4 * MinPartSize, Concurrency: 4})
	tb.faults.Add(s3test.Rule{Op: "UploadPart", Times: 4, Fault: s3test.Fault{Delay: 700 * time.Millisecond}})
	up := u.Start("slow", s3client.PutOptions{})
	data := randomData(8, 6*MinPartSize)
	start := time.Now()
	writeAll(t, up, data[:5*MinPartSize], 1<<20) // the fifth part needs a budget the first four hold
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Fatalf("the writer did not wait for memory (%v)", waited)
	}
	if r := u.memory.reserved(); r > 4*MinPartSize {
		t.Fatalf("%d bytes reserved, budget %d", r, 4*MinPartSize)
	}
	writeAll(t, up, data[5*MinPartSize:], 1<<20)
	if _, err := up.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.checkObject(t, "slow", data)

	// Eight writers, a budget of four parts, whole-part writes: each write
	// fills a part that is sent at once, so no writer holds a half-filled
	// part while it waits, and all finish. (Writers that do hold half-filled
	// parts can wait for each other: TestNoMemoryWhenWritersWaitForEachOther.)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			up := u.Start(fmt.Sprintf("many/%d", i), s3client.PutOptions{})
			d := randomData(uint64(100+i), 2*MinPartSize+i)
			for off := 0; off < len(d); off += MinPartSize {
				if _, err := up.Write(context.Background(), d[off:min(off+MinPartSize, len(d))]); err != nil {
					errs <- err
					return
				}
			}
			if _, err := up.Complete(context.Background()); err != nil {
				errs <- err
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("concurrent uploads under a small budget deadlocked")
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestWriterWaitHonoursContext: a writer waiting for memory gives up when
// its context ends, resumes when memory is released, and a reservation
// larger than the budget fails at once.
func TestWriterWaitHonoursContext(t *testing.T) {
	l := newMemoryLimiter(10)
	if err := l.reserve(context.Background(), 8, time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.reserve(ctx, 5, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve over budget: %v", err)
	}
	go func() { time.Sleep(20 * time.Millisecond); l.release(8, nil) }()
	if err := l.reserve(context.Background(), 5, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.reserve(context.Background(), 11, time.Minute); err == nil {
		t.Fatal("a reservation larger than the budget succeeded")
	}
}

// TestSpilledParts: parts after the first that are larger than a quarter
// of the budget are staged on disk and hold no memory; the first part is
// in memory all the same (the budget holds one part); the object is right
// and no spill file is left.
func TestSpilledParts(t *testing.T) {
	tb := newTestBed(t)
	dir := t.TempDir()
	u := newUploader(t, tb.client, Config{PartSize: 8 << 20, MemoryLimit: 16 << 20, SpillDir: dir})
	tb.faults.Add(s3test.Rule{Op: "UploadPart", Times: 1, Fault: s3test.Fault{Status: 503, Code: "SlowDown"}})
	data := randomData(9, 20<<20)
	up := u.Start("spilled", s3client.PutOptions{})
	writeAll(t, up, data[:4<<20], 1<<20)
	if r := u.memory.reserved(); r < 4<<20 {
		t.Fatalf("the first part holds %d bytes of memory, want its 4 MiB", r)
	}
	writeAll(t, up, data[4<<20:], 1<<20)
	up.running.Wait() // the first two parts are uploaded; the third is being filled
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("spilled parts reserved %d bytes of memory", r)
	}
	if spills, _ := filepathGlob(dir); len(spills) != 1 {
		t.Fatalf("spill files while the third part fills: %v, want one", spills)
	}
	if _, err := up.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.checkObject(t, "spilled", data)
	left, _ := filepathGlob(dir)
	if len(left) != 0 {
		t.Fatalf("spill files left: %v", left)
	}
}

// TestTooLarge: a write past 5 TiB answers ErrTooLarge and writes nothing.
func TestTooLarge(t *testing.T) {
	u := &Uploader{cfg: Config{PartSize: MinPartSize}, memory: newMemoryLimiter(1 << 30)}
	up := u.Start("huge", s3client.PutOptions{})
	up.size.Store(MaxObjectSize - 10)
	if n, err := up.Write(context.Background(), make([]byte, 11)); !errors.Is(err, ErrTooLarge) || n != 0 {
		t.Fatalf("write past 5 TiB: %d, %v", n, err)
	}
}

// TestSetKeyAndMetadata: the destination and metadata can change until the
// upload reaches S3.
func TestSetKeyAndMetadata(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	up := u.Start("first", s3client.PutOptions{})
	writeAll(t, up, []byte("abc"), 3)
	if err := up.SetKey("second"); err != nil {
		t.Fatal(err)
	}
	if !up.SetMetadata(map[string]string{"mtime": "1600000000"}) {
		t.Fatal("SetMetadata refused before the upload started")
	}
	if _, err := up.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.checkObject(t, "second", []byte("abc"))
	big := u.Start("big", s3client.PutOptions{})
	writeAll(t, big, randomData(10, MinPartSize+1), 1<<20)
	if err := big.SetKey("other"); !errors.Is(err, ErrKeyFixed) {
		t.Fatalf("SetKey after CreateMultipartUpload: %v", err)
	}
	if big.SetMetadata(map[string]string{"a": "b"}) {
		t.Fatal("SetMetadata accepted after CreateMultipartUpload")
	}
	if err := big.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.checkNoUploads(t)
}

// TestMultipartETag matches S3's computation.
func TestMultipartETag(t *testing.T) {
	// The parts "" and "a": S3's ETag is md5(md5("") || md5("a")) + "-2".
	got, ok := multipartETag([]s3client.CompletedPart{
		{ETag: `"d41d8cd98f00b204e9800998ecf8427e"`}, {ETag: `"0cc175b9c0f1b6a831c399e269772661"`},
	})
	e, a := md5.Sum(nil), md5.Sum([]byte("a"))
	want := fmt.Sprintf(`"%x-2"`, md5.Sum(append(e[:], a[:]...)))
	if !ok || got != want {
		t.Fatalf("etag %s, want %s", got, want)
	}
	if _, ok := multipartETag([]s3client.CompletedPart{{ETag: `"not-an-md5"`}}); ok {
		t.Fatal("a non-MD5 ETag was combined")
	}
}

// spillBound is a SpillBound of max bytes that records its peak.
type spillBound struct {
	mu        sync.Mutex
	max, used int64
	peak      int64
}

func (b *spillBound) Charge(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return syscall.ENOSPC
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

func (b *spillBound) Release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// TestSpillBound: spilled parts are charged to the bound while they exist;
// a part that does not fit fails its write with the bound's error, taking
// nothing, and a retry after room was made works.
func TestSpillBound(t *testing.T) {
	tb := newTestBed(t)
	bound := &spillBound{max: 4 << 20}
	u := newUploader(t, tb.client, Config{PartSize: 8 << 20, MemoryLimit: 16 << 20, SpillDir: t.TempDir(), SpillBound: bound})
	data := randomData(10, 12<<20)
	up := u.Start("bounded", s3client.PutOptions{})
	writeAll(t, up, data[:8<<20], 1<<20) // the first part, in memory
	if n, err := up.Write(context.Background(), data[8<<20:9<<20]); !errors.Is(err, syscall.ENOSPC) || n != 0 {
		t.Fatalf("a write needing a spill past the bound: %d, %v; want 0, ENOSPC", n, err)
	}
	bound.mu.Lock()
	bound.max = 64 << 20
	bound.mu.Unlock()
	writeAll(t, up, data[8<<20:], 1<<20)
	if _, err := up.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.checkObject(t, "bounded", data)
	if bound.used != 0 || bound.peak == 0 {
		t.Fatalf("after completion %d bytes charged (peak %d); want 0 and a peak", bound.used, bound.peak)
	}
}
