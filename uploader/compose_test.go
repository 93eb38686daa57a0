package uploader

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// noise returns n pseudo-random bytes of seed, quickly even under -race
// (randomData draws byte by byte).
func noise(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// stage is a Layout's Data for tests: the new object's bytes, with a
// record of what was read and an optional failure.
type stage struct {
	data []byte
	read atomic.Int64 // bytes returned by ReadAt
	// failAt, when not negative, makes a read of that offset fail.
	failAt int64

	mu     sync.Mutex // guards ranges
	ranges []Range    // every ReadAt, in order
}

func newStage(data []byte) *stage { return &stage{data: data, failAt: -1} }

func (s *stage) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if s.failAt >= off && s.failAt < end {
		return 0, errors.New("the stage cannot fetch the bytes")
	}
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	s.read.Add(int64(n))
	s.mu.Lock()
	s.ranges = append(s.ranges, Range{off, off + int64(n)})
	s.mu.Unlock()
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readOutside returns the first byte read from the stage that no data part
// of parts holds, or -1.
func (s *stage) readOutside(parts []composePart) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.ranges {
		for off := r.Off; off < r.End; {
			i := slices.IndexFunc(parts, func(p composePart) bool { return !p.copied && p.off <= off && off < p.end })
			if i < 0 {
				return off
			}
			off = parts[i].end
		}
	}
	return -1
}

// edit is a write of n bytes at off (the bytes come from a seed).
type edit struct{ off, n int64 }

// edited returns the object base becomes after truncating or extending it
// to size (with zeros) and applying the writes, and the ranges it still
// shares with base.
func edited(base []byte, size int64, seed uint64, writes ...edit) ([]byte, []Range) {
	out := make([]byte, size)
	copy(out, base)
	for i, w := range writes {
		copy(out[w.off:w.off+w.n], noise(seed+uint64(i), int(w.n)))
	}
	// The shared ranges: [0, min(size, len(base))) less the writes.
	writes = slices.Clone(writes)
	slices.SortFunc(writes, func(a, b edit) int { return cmp.Compare(a.off, b.off) })
	var same []Range
	off, limit := int64(0), min(size, int64(len(base)))
	for _, w := range append(writes, edit{limit, 0}) {
		if end := min(w.off, limit); end > off {
			same = append(same, Range{off, end})
		}
		off = max(off, w.off+w.n)
	}
	return out, same
}

// composeBed is an s3fake bucket and an Uploader on it.
type composeBed struct {
	fake *s3fake.Fake
	u    *Uploader
}

func newComposeBed(t *testing.T, cfg Config) *composeBed {
	t.Helper()
	fake := s3fake.New()
	if cfg.PartSize == 0 {
		cfg.PartSize = MinPartSize
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = 32 << 20
	}
	return &composeBed{fake: fake, u: newUploader(t, fake, cfg)}
}

// base stores data at key and returns it as a Base.
func (b *composeBed) base(key string, data []byte) Base {
	b.fake.SetObject(key, data, nil)
	_, info, _ := b.fake.Object(key)
	return Base{Key: key, ETag: info.ETag, Size: info.Size}
}

// check fails the test unless key holds want and no upload is left.
func (b *composeBed) check(t *testing.T, key string, want []byte) *s3client.ObjectInfo {
	t.Helper()
	got, info, ok := b.fake.Object(key)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("object %q: %d bytes (exists: %v), want %d; equal prefix %d", key, len(got), ok, len(want), commonPrefix(got, want))
	}
	if ups := b.fake.Uploads(); len(ups) != 0 {
		t.Fatalf("uploads left: %v", ups)
	}
	if n := b.u.PartsInFlight(); n != 0 {
		t.Fatalf("%d parts still in flight", n)
	}
	return info
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestComposeContent: edits of every kind produce the edited bytes, read
// from the stage only the bytes the plan sends, and copy the rest.
func TestComposeContent(t *testing.T) {
	b := newComposeBed(t, Config{})
	old := noise(100, 24<<20)
	for _, tc := range []struct {
		name   string
		size   int64
		writes []edit
	}{
		{"append", 24<<20 + 1<<20, []edit{{24 << 20, 1 << 20}}},
		{"overwrite in the middle", 24 << 20, []edit{{10 << 20, 4 << 10}}},
		{"overwrite near the end", 24 << 20, []edit{{21 << 20, 4 << 10}}},
		{"overwrite at the start", 24 << 20, []edit{{0, 100}}},
		{"scattered writes", 24 << 20, []edit{{1 << 20, 10}, {3 << 20, 10}, {12 << 20, 1 << 20}, {23 << 20, 1}}},
		{"truncate", 13<<20 + 5, nil},
		{"truncate and append", 20 << 20, []edit{{13 << 20, 7 << 20}}},
		{"extend with a hole", 40 << 20, []edit{{39 << 20, 1 << 20}}},
		{"rewrite all", 24 << 20, []edit{{0, 24 << 20}}},
		{"unchanged", 24 << 20, nil},
		{"small", 3 << 20, []edit{{1 << 20, 10}}},
		{"empty", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := b.base("content", old)
			want, same := edited(old, tc.size, 101, tc.writes...)
			checkCompose(t, b, "content", Layout{Size: tc.size, Data: newStage(want), Base: base, Same: same}, want)
		})
	}
	// Random edits, with fixed seeds.
	for seed := uint64(1); seed <= 12; seed++ {
		r := rand.New(rand.NewPCG(seed, 101))
		size := r.Int64N(36 << 20)
		var writes []edit
		for range r.IntN(6) {
			if size == 0 {
				break
			}
			off := r.Int64N(size)
			writes = append(writes, edit{off, 1 + r.Int64N(min(size-off, []int64{4 << 10, 1 << 20, 6 << 20}[r.IntN(3)]))})
		}
		base := b.base("content", old)
		want, same := edited(old, size, 200+seed, writes...)
		t.Run(fmt.Sprintf("random %d", seed), func(t *testing.T) {
			checkCompose(t, b, "content", Layout{Size: size, Data: newStage(want), Base: base, Same: same}, want)
		})
	}
}

// checkCompose composes l at key and checks the object, the result, the
// requests and the stage's reads against l's plan.
func checkCompose(t *testing.T, b *composeBed, key string, l Layout, want []byte) {
	t.Helper()
	plan, err := planCompose(l, b.u.cfg.PartSize)
	if err != nil {
		t.Fatal(err)
	}
	b.fake.ResetCounts()
	res, err := b.u.Compose(context.Background(), key, s3client.PutOptions{}, l)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	info := b.check(t, key, want)
	st := l.Data.(*stage)
	copies := 0
	for _, p := range plan.parts {
		if p.copied {
			copies++
		}
	}
	sent := sentBytes(plan.parts)
	if whole := l.Size > 0 && l.Size == l.Base.Size && sent == 0; whole {
		// The base unchanged: one CopyObject, nothing read or uploaded.
		if res.ETag != info.ETag || res.Copied != l.Size || res.Multipart || st.read.Load() != 0 ||
			b.fake.Count(s3fake.OpCopyObject) != 1 || len(b.fake.Counts()) != 1 {
			t.Fatalf("one CopyObject expected: %+v, %d bytes read, requests %v", res, st.read.Load(), b.fake.Counts())
		}
		return
	}
	switch {
	case res.ETag != info.ETag || res.Size != l.Size:
		t.Fatalf("result %+v, object %+v", res, info)
	case res.Sent != sent || res.Copied != l.Size-sent:
		t.Fatalf("sent %d, copied %d; the plan sends %d of %d", res.Sent, res.Copied, sent, l.Size)
	case st.read.Load() != sent:
		t.Fatalf("%d bytes read from the stage, %d sent", st.read.Load(), sent)
	case st.readOutside(plan.parts) >= 0:
		t.Fatalf("byte %d read from the stage is in no data part", st.readOutside(plan.parts))
	case plan.put() && (res.Multipart || res.Parts != 0 || b.fake.Count(s3fake.OpPutObject) != 1 || b.fake.Count(s3fake.OpCreateMultipartUpload) != 0):
		t.Fatalf("one PutObject expected: %+v, requests %v", res, b.fake.Counts())
	case !plan.put() && (!res.Multipart || res.Parts != len(plan.parts) ||
		b.fake.Count(s3fake.OpUploadPartCopy) != copies || b.fake.Count(s3fake.OpUploadPart) != len(plan.parts)-copies ||
		b.fake.Count(s3fake.OpCreateMultipartUpload) != 1 || b.fake.Count(s3fake.OpCompleteMultipartUpload) != 1 ||
		b.fake.Count(s3fake.OpPutObject) != 0):
		t.Fatalf("%d parts (%d copied) expected: %+v, requests %v", len(plan.parts), copies, res, b.fake.Counts())
	case b.fake.Count(s3fake.OpAbortMultipartUpload) != 0 || b.fake.Count(s3fake.OpGetObject) != 0:
		t.Fatalf("requests %v", b.fake.Counts())
	case b.u.MemoryInUse() != 0:
		t.Fatalf("%d bytes of part memory in use", b.u.MemoryInUse())
	}
}

// TestComposeAppend: 1 MiB appended to 64 MiB (the 1 GiB case, scaled
// down for the in-memory fake; TestPlanExamples plans the 1 GiB one) is
// one copy, one uploaded part and 1 MiB read from the stage.
func TestComposeAppend(t *testing.T) {
	b := newComposeBed(t, Config{})
	old := noise(102, 64<<20)
	base := b.base("log", old)
	want := append(slices.Clone(old), noise(103, 1<<20)...)
	st := newStage(want)
	res, err := b.u.Compose(context.Background(), "log", s3client.PutOptions{}, Layout{
		Size: int64(len(want)), Data: st, Base: base, Same: []Range{{0, 64 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	b.check(t, "log", want)
	wantCounts := map[string]int{
		s3fake.OpCreateMultipartUpload: 1, s3fake.OpUploadPartCopy: 1, s3fake.OpUploadPart: 1, s3fake.OpCompleteMultipartUpload: 1,
	}
	if got := b.fake.Counts(); !mapsEqual(got, wantCounts) {
		t.Fatalf("requests %v, want %v", got, wantCounts)
	}
	if res.Sent != 1<<20 || res.Copied != 64<<20 || res.Parts != 2 || st.read.Load() != 1<<20 {
		t.Fatalf("result %+v, %d bytes read from the stage", res, st.read.Load())
	}
	t.Logf("append 1 MiB to 64 MiB: sent %d, copied %d, requests %v", res.Sent, res.Copied, b.fake.Counts())
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// TestComposeOptions: metadata, headers (Content-Type, storage class, ...)
// and tags reach the object, in one PutObject and in a multipart upload; IfNoneMatch refuses an existing
// key in both, and the refused multipart upload is aborted.
func TestComposeOptions(t *testing.T) {
	b := newComposeBed(t, Config{})
	old := noise(104, 12<<20)
	headers := s3client.ObjectHeaders{ContentType: "text/plain", CacheControl: "no-cache", StorageClass: "REDUCED_REDUNDANCY"}
	opts := s3client.PutOptions{Metadata: map[string]string{"mode": "33188"}, Headers: headers, Tags: map[string]string{"t": "1"}}
	headers.TagCount = 1
	for _, size := range []int64{3 << 20, 13 << 20} {
		key := fmt.Sprintf("opts/%d", size)
		base := b.base(key+".old", old)
		want, same := edited(old, size, 105, edit{size - 1, 1})
		if _, err := b.u.Compose(context.Background(), key, opts, Layout{Size: size, Data: newStage(want), Base: base, Same: same}); err != nil {
			t.Fatal(err)
		}
		info := b.check(t, key, want)
		if info.Metadata["mode"] != "33188" || info.Headers != headers {
			t.Fatalf("size %d: metadata %v, headers %+v", size, info.Metadata, info.Headers)
		}
		excl := opts
		excl.IfNoneMatch = true
		_, err := b.u.Compose(context.Background(), key, excl, Layout{Size: size, Data: newStage(want), Base: base, Same: same})
		if !errors.Is(err, s3client.ErrPreconditionFailed) || !strings.Contains(err.Error(), key) {
			t.Fatalf("size %d: exclusive Compose over an object: %v", size, err)
		}
		b.check(t, key, want)
	}
}

// failOn makes the nth request of op (1-based) fail with code.
func failOn(op string, nth int32, code string, status int) func(string, string) s3fake.Fault {
	var seen atomic.Int32
	return func(o, key string) s3fake.Fault {
		if o == op && seen.Add(1) == nth {
			return s3fake.Fault{Err: s3fake.APIError(o, key, code, status)}
		}
		return s3fake.Fault{}
	}
}

// TestComposeFailurePublishesNothing: a part, the stage or the
// completion failing fails Compose with the key and S3's code; the upload
// is aborted, no object is published, the old one is intact, and (one part
// at a time) no part after the failed one is sent.
func TestComposeFailurePublishesNothing(t *testing.T) {
	old := noise(106, 40<<20)
	// Parts: copy [0,10), data [10,15), copy [15,25), data [25,30), copy [30,40) MiB.
	want, same := edited(old, 40<<20, 107, edit{10 << 20, 4 << 10}, edit{25 << 20, 4 << 10})
	for _, tc := range []struct {
		name    string
		hook    func(string, string) s3fake.Fault
		failAt  int64 // of the stage; -1: none
		code    string
		partsTo int // part requests sent, the failed one included
		aborts  int
	}{
		{"a copy fails", failOn(s3fake.OpUploadPartCopy, 2, "InternalError", 500), -1, "InternalError", 3, 1},
		{"an upload fails", failOn(s3fake.OpUploadPart, 1, "SlowDown", 503), -1, "SlowDown", 2, 1},
		{"the stage fails", nil, 26 << 20, "", 4, 1},
		{"the completion fails", failOn(s3fake.OpCompleteMultipartUpload, 1, "InternalError", 500), -1, "InternalError", 5, 1},
		{"the creation fails", failOn(s3fake.OpCreateMultipartUpload, 1, "AccessDenied", 403), -1, "AccessDenied", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newComposeBed(t, Config{Concurrency: 1})
			base := b.base("f", old)
			b.fake.SetHook(tc.hook)
			st := newStage(want)
			st.failAt = tc.failAt
			res, err := b.u.Compose(context.Background(), "f", s3client.PutOptions{}, Layout{Size: int64(len(want)), Data: st, Base: base, Same: same})
			if err == nil || s3client.Code(err) != tc.code || !strings.Contains(err.Error(), `"f"`) {
				t.Fatalf("Compose: %+v, %v; want an error with the key and code %q", res, err, tc.code)
			}
			b.check(t, "f", old)
			c := b.fake.Counts()
			if sent := c[s3fake.OpUploadPart] + c[s3fake.OpUploadPartCopy]; sent != tc.partsTo {
				t.Fatalf("%d part requests, want %d (%v)", sent, tc.partsTo, c)
			}
			if c[s3fake.OpAbortMultipartUpload] != tc.aborts || c[s3fake.OpCompleteMultipartUpload] > 1 {
				t.Fatalf("requests %v, want %d aborts", c, tc.aborts)
			}
		})
	}
}

// TestComposeChangedBase: a base replaced before Compose, or while its
// parts are copied, makes Compose fail with ErrPreconditionFailed; the
// object that replaced it stays, and nothing is left behind.
func TestComposeChangedBase(t *testing.T) {
	old := noise(108, 40<<20)
	theirs := noise(109, 40<<20)
	want, same := edited(old, 40<<20, 110, edit{10 << 20, 4 << 10}, edit{25 << 20, 4 << 10})
	for _, when := range []string{"before", "during"} {
		t.Run(when, func(t *testing.T) {
			b := newComposeBed(t, Config{Concurrency: 1})
			base := b.base("f", old)
			if when == "before" {
				b.fake.SetObject("f", theirs, nil)
			} else {
				var copies atomic.Int32
				b.fake.SetHook(func(op, key string) s3fake.Fault {
					if op == s3fake.OpUploadPartCopy && copies.Add(1) == 2 {
						b.fake.SetObject("f", theirs, nil) // between the first copy and the second
					}
					return s3fake.Fault{}
				})
			}
			_, err := b.u.Compose(context.Background(), "f", s3client.PutOptions{}, Layout{Size: int64(len(want)), Data: newStage(want), Base: base, Same: same})
			if !errors.Is(err, s3client.ErrPreconditionFailed) || !strings.Contains(err.Error(), "PreconditionFailed") || !strings.Contains(err.Error(), base.ETag) {
				t.Fatalf("Compose from a replaced base: %v; want ErrPreconditionFailed naming the ETag", err)
			}
			b.check(t, "f", theirs)
			if n := b.fake.Count(s3fake.OpCompleteMultipartUpload); n != 0 {
				t.Fatalf("%d CompleteMultipartUpload requests", n)
			}
		})
	}
}

// TestComposeCancel: cancelling ctx while parts are in flight fails
// Compose with context.Canceled once they ended; the upload is still
// aborted (on a context of its own) and the tokens are given back.
func TestComposeCancel(t *testing.T) {
	b := newComposeBed(t, Config{Concurrency: 2})
	old := noise(111, 40<<20)
	base := b.base("f", old)
	want, same := edited(old, 40<<20, 112, edit{10 << 20, 4 << 10}, edit{25 << 20, 4 << 10})
	gate := make(chan struct{}) // never closed: parts wait until cancelled
	var waiting atomic.Int32
	b.fake.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpUploadPart || op == s3fake.OpUploadPartCopy {
			waiting.Add(1)
			return s3fake.Fault{Gate: gate}
		}
		return s3fake.Fault{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.u.Compose(ctx, "f", s3client.PutOptions{}, Layout{Size: int64(len(want)), Data: newStage(want), Base: base, Same: same})
		errc <- err
	}()
	for waiting.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	if n := b.u.PartsInFlight(); n != 2 {
		t.Fatalf("%d parts in flight, want the 2 Concurrency allows", n)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `"f"`) {
		t.Fatalf("Compose after cancel: %v", err)
	}
	b.check(t, "f", old)
	if c := b.fake.Counts(); c[s3fake.OpAbortMultipartUpload] != 1 || c[s3fake.OpUploadPart]+c[s3fake.OpUploadPartCopy] != 2 || c[s3fake.OpCompleteMultipartUpload] != 0 {
		t.Fatalf("requests %v", c)
	}

	// Cancelled before it starts: nothing at all.
	b.fake.ResetCounts()
	if _, err := b.u.Compose(ctx, "f", s3client.PutOptions{}, Layout{Size: int64(len(want)), Data: newStage(want), Base: base, Same: same}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Compose with a cancelled context: %v", err)
	}
	if _, err := b.u.Compose(ctx, "small", s3client.PutOptions{}, Layout{Size: 3, Data: newStage([]byte("abc"))}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a small Compose with a cancelled context: %v", err)
	}
	if _, _, ok := b.fake.Object("small"); ok {
		t.Fatal("a cancelled Compose published an object")
	}
	b.check(t, "f", old)
}

// limitedAPI counts the part requests in flight at once. Until limit of
// them are in flight together, each waits (up to 10 s) for the others, so
// that the count reaches the bound however slow the machine is.
type limitedAPI struct {
	s3client.API
	limit     int32
	now, most atomic.Int32
	full      chan struct{} // closed once limit parts were in flight together
	once      sync.Once
}

func (a *limitedAPI) enter() func() {
	n := a.now.Add(1)
	for {
		m := a.most.Load()
		if n <= m || a.most.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= a.limit {
		a.once.Do(func() { close(a.full) })
	}
	select {
	case <-a.full:
	case <-time.After(10 * time.Second):
	}
	return func() { a.now.Add(-1) }
}

func (a *limitedAPI) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64) (s3client.CompletedPart, error) {
	defer a.enter()()
	return a.API.UploadPart(ctx, key, id, n, body, size)
}

func (a *limitedAPI) UploadPartCopy(ctx context.Context, src, etag, key, id string, n int32, first, last int64) (s3client.CompletedPart, error) {
	defer a.enter()()
	return a.API.UploadPartCopy(ctx, src, etag, key, id, n, first, last)
}

// TestComposeSharesTheConcurrencyBound: Compose's parts take the tokens
// that bound the streaming uploads' parts: with the tokens held elsewhere
// nothing is sent, and at most Concurrency parts are ever in flight.
func TestComposeSharesTheConcurrencyBound(t *testing.T) {
	fake := s3fake.New()
	api := &limitedAPI{API: fake, limit: 3, full: make(chan struct{})}
	u := newUploader(t, api, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20, Concurrency: 3})
	old := noise(113, 60<<20)
	fake.SetObject("f", old, nil)
	_, info, _ := fake.Object("f")
	want, same := edited(old, 80<<20, 114, edit{10 << 20, 1}, edit{25 << 20, 1}, edit{40 << 20, 1}, edit{62 << 20, 18 << 20})
	l := Layout{Size: int64(len(want)), Data: newStage(want), Base: Base{Key: "f", ETag: info.ETag, Size: info.Size}, Same: same}

	for range cap(u.inFlight) { // as if streaming uploads held every token
		u.inFlight <- struct{}{}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := u.Compose(context.Background(), "f", s3client.PutOptions{}, l)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if n := fake.Count(s3fake.OpUploadPart) + fake.Count(s3fake.OpUploadPartCopy); n != 0 {
		t.Fatalf("%d parts sent while the streaming uploads held every token", n)
	}
	for range cap(u.inFlight) {
		<-u.inFlight
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got, _, _ := fake.Object("f"); !bytes.Equal(got, want) {
		t.Fatal("wrong bytes")
	}
	if m := api.most.Load(); m != 3 {
		t.Fatalf("at most %d parts in flight, want 3", m)
	}
}

// retriedCompleteAPI completes an upload, lets then replace the object,
// and answers NoSuchUpload, as a retried CompleteMultipartUpload meets
// after the first attempt succeeded and its answer was lost.
type retriedCompleteAPI struct {
	*s3fake.Fake
	then func()
}

func (a *retriedCompleteAPI) CompleteMultipartUpload(ctx context.Context, key, id string, parts []s3client.CompletedPart, opts s3client.PutOptions) (string, error) {
	if _, err := a.Fake.CompleteMultipartUpload(ctx, key, id, parts, opts); err != nil {
		return "", err
	}
	if a.then != nil {
		a.then()
	}
	return "", s3fake.APIError(s3fake.OpCompleteMultipartUpload, key, "NoSuchUpload", 404)
}

// TestComposeCompleteRetried: a completion that succeeded but answered
// NoSuchUpload is accepted when the object is the one composed (size and
// multipart ETag), refused when another took its place.
func TestComposeCompleteRetried(t *testing.T) {
	fake := s3fake.New()
	api := &retriedCompleteAPI{Fake: fake}
	u := newUploader(t, api, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	old := noise(115, 20<<20)
	want, same := edited(old, 20<<20, 116, edit{10 << 20, 4 << 10})
	for _, replaced := range []bool{false, true} {
		fake.SetObject("f", old, nil)
		_, info, _ := fake.Object("f")
		l := Layout{Size: int64(len(want)), Data: newStage(want), Base: Base{Key: "f", ETag: info.ETag, Size: info.Size}, Same: same}
		api.then = nil
		if replaced {
			api.then = func() { fake.SetObject("f", []byte("theirs"), nil) }
		}
		res, err := u.Compose(context.Background(), "f", s3client.PutOptions{}, l)
		got, info, _ := fake.Object("f")
		switch {
		case !replaced && (err != nil || res.ETag != info.ETag || !bytes.Equal(got, want)):
			t.Fatalf("verified completion: %+v, %v", res, err)
		case replaced && !errors.Is(err, s3client.ErrNoSuchUpload):
			t.Fatalf("completion answered NoSuchUpload and another object is there: %+v, %v", res, err)
		}
	}
}

// TestComposeRefusesBadLayouts: a layout breaking its contract is refused
// before any request.
func TestComposeRefusesBadLayouts(t *testing.T) {
	b := newComposeBed(t, Config{})
	for _, l := range []Layout{
		{Size: 10},
		{Size: 10 << 20, Data: newStage(nil), Base: Base{Key: "old", ETag: `"e"`, Size: 4 << 20}, Same: []Range{{0, 5 << 20}}},
		{Size: 10 << 20, Data: newStage(nil), Base: Base{Key: "old", Size: 10 << 20}, Same: []Range{{0, 5 << 20}}},
	} {
		if _, err := b.u.Compose(context.Background(), "f", s3client.PutOptions{}, l); !errors.Is(err, errLayout) || !strings.Contains(err.Error(), `"f"`) {
			t.Fatalf("Compose of %+v: %v", l, err)
		}
	}
	if c := b.fake.Counts(); len(c) != 0 {
		t.Fatalf("requests %v", c)
	}
}

// TestComposeCopyOfAnotherObject: a layout that is another object unchanged
// (a file copied whole, cp) is one CopyObject with the new object's own
// metadata, refused when the source changed; with IfNoneMatch it is a
// multipart upload of one copied part whose Complete is conditional, and
// refused when the key exists.
func TestComposeCopyOfAnotherObject(t *testing.T) {
	b := newComposeBed(t, Config{})
	src := noise(120, 9<<20)
	base := b.base("src", src)
	whole := func() Layout {
		return Layout{Size: base.Size, Data: newStage(src), Base: base, Same: []Range{{0, base.Size}}}
	}
	opts := s3client.PutOptions{Metadata: map[string]string{"mode": "33184"}}

	b.fake.ResetCounts()
	if _, err := b.u.Compose(context.Background(), "copy", opts, whole()); err != nil {
		t.Fatal(err)
	}
	b.check(t, "copy", src)
	if _, info, _ := b.fake.Object("copy"); info.Metadata["mode"] != "33184" || b.fake.Count(s3fake.OpCopyObject) != 1 || len(b.fake.Counts()) != 1 {
		t.Fatalf("copy: metadata %v, requests %v; want the new metadata and one CopyObject", info.Metadata, b.fake.Counts())
	}

	b.fake.ResetCounts()
	excl := opts
	excl.IfNoneMatch = true
	if _, err := b.u.Compose(context.Background(), "excl", excl, whole()); err != nil {
		t.Fatal(err)
	}
	b.check(t, "excl", src)
	if c := b.fake.Counts(); c[s3fake.OpUploadPartCopy] != 1 || c[s3fake.OpCompleteMultipartUpload] != 1 || c[s3fake.OpCopyObject] != 0 || c[s3fake.OpUploadPart] != 0 {
		t.Fatalf("exclusive copy: requests %v; want one copied part, completed", c)
	}
	if _, err := b.u.Compose(context.Background(), "excl", excl, whole()); !errors.Is(err, s3client.ErrPreconditionFailed) {
		t.Fatalf("exclusive copy onto an existing key: %v; want ErrPreconditionFailed", err)
	}

	b.fake.SetObject("src", noise(121, 9<<20), nil)
	if _, err := b.u.Compose(context.Background(), "copy2", opts, whole()); !errors.Is(err, s3client.ErrPreconditionFailed) {
		t.Fatalf("copy of a replaced source: %v; want ErrPreconditionFailed", err)
	}
	if _, _, ok := b.fake.Object("copy2"); ok {
		t.Fatal("copy2 exists after a refused copy")
	}
}
