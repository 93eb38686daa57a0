package uploader

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
)

// putBase writes an object directly and returns it as a Base.
func (tb *testBed) putBase(t *testing.T, key string, data []byte) Base {
	t.Helper()
	ctx := context.Background()
	if _, err := tb.direct.Put(ctx, key, bytes.NewReader(data), int64(len(data)), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := tb.direct.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return Base{Key: key, ETag: info.ETag, Size: info.Size}
}

// checkRequests compares request counts through the fault transport.
func (tb *testBed) checkRequests(t *testing.T, want map[string]int) {
	t.Helper()
	for op, n := range want {
		if got := tb.faults.Count(op); got != n {
			t.Fatalf("%d %s requests, want %d (all: %v)", got, op, n, tb.faults.Ops())
		}
	}
}

// TestSeedSmallBase: a base below a part is read (one conditional GET)
// into the first part; appended bytes follow it, and a small result is
// still one PutObject. With enough appended bytes, the base travels in
// the first uploaded part.
func TestSeedSmallBase(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	ctx := context.Background()

	base := tb.putBase(t, "log", []byte("abc"))
	up := u.Start("log", s3client.PutOptions{})
	if err := up.Seed(ctx, base); err != nil {
		t.Fatal(err)
	}
	if up.Size() != 3 {
		t.Fatalf("size after Seed %d, want 3", up.Size())
	}
	writeAll(t, up, []byte("defg"), 2)
	res, err := up.Complete(ctx)
	if err != nil || res.Multipart || res.Size != 7 {
		t.Fatalf("complete: %+v, %v", res, err)
	}
	tb.checkObject(t, "log", []byte("abcdefg"))
	tb.checkRequests(t, map[string]int{"GetObject": 1, "PutObject": 1, "UploadPartCopy": 0, "CreateMultipartUpload": 0})

	// A small base, then enough bytes for a multipart upload.
	base = tb.putBase(t, "grown", []byte("xyz"))
	up = u.Start("grown", s3client.PutOptions{})
	if err := up.Seed(ctx, base); err != nil {
		t.Fatal(err)
	}
	more := randomData(70, 2*MinPartSize)
	writeAll(t, up, more, 1<<20)
	res, err = up.Complete(ctx)
	if err != nil || !res.Multipart || res.Parts != 3 || res.Size != int64(3+len(more)) {
		t.Fatalf("complete: %+v, %v", res, err)
	}
	tb.checkObject(t, "grown", append([]byte("xyz"), more...))
	tb.checkRequests(t, map[string]int{"GetObject": 2, "UploadPartCopy": 0, "UploadPart": 3})
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestSeedLargeBase: a base of a part or more is copied on the server
// (one UploadPartCopy for 12 MiB), no byte of it is read or sent again, and
// written parts follow it; with nothing written the object is the base.
func TestSeedLargeBase(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	ctx := context.Background()
	data := randomData(71, 12<<20)
	base := tb.putBase(t, "big", data)

	up := u.Start("big", s3client.PutOptions{})
	if err := up.Seed(ctx, base); err != nil {
		t.Fatal(err)
	}
	if up.Size() != int64(len(data)) {
		t.Fatalf("size after Seed %d, want %d", up.Size(), len(data))
	}
	tb.checkRequests(t, map[string]int{"CreateMultipartUpload": 1, "UploadPartCopy": 1})
	more := randomData(72, 2*MinPartSize+1<<20+7) // parts 2 and 3 full, part 4 short
	writeAll(t, up, more, 1<<20)
	res, err := up.Complete(ctx)
	if err != nil || !res.Multipart || res.Parts != 4 || res.Size != int64(len(data)+len(more)) {
		t.Fatalf("complete: %+v, %v", res, err)
	}
	tb.checkObject(t, "big", append(append([]byte(nil), data...), more...))
	tb.checkRequests(t, map[string]int{"GetObject": 0, "PutObject": 0, "UploadPartCopy": 1, "UploadPart": 3, "CompleteMultipartUpload": 1})

	// Seeded, nothing written: the object is the base again.
	base = tb.putBase(t, "same", data)
	up = u.Start("same", s3client.PutOptions{})
	if err := up.Seed(ctx, base); err != nil {
		t.Fatal(err)
	}
	if res, err := up.Complete(ctx); err != nil || res.Parts != 1 || res.Size != int64(len(data)) {
		t.Fatalf("complete: %+v, %v", res, err)
	}
	tb.checkObject(t, "same", data)
	tb.checkNoUploads(t)
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestSeedChangedBase: a base replaced after its ETag was taken is refused
// by S3 (ErrPreconditionFailed): the upload is failed, Complete returns the
// failure, and the object is not changed.
func TestSeedChangedBase(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{{"small", 3}, {"large", 12 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTestBed(t)
			u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
			ctx := context.Background()
			base := tb.putBase(t, "moving", randomData(73, tc.size))
			theirs := randomData(74, tc.size) // same size, other bytes
			tb.putBase(t, "moving", theirs)

			up := u.Start("moving", s3client.PutOptions{})
			err := up.Seed(ctx, base)
			if !errors.Is(err, s3client.ErrPreconditionFailed) {
				t.Fatalf("Seed from a replaced object: %v, want ErrPreconditionFailed", err)
			}
			if !strings.Contains(err.Error(), `"moving"`) || !strings.Contains(err.Error(), "PreconditionFailed") {
				t.Fatalf("Seed's error %q lacks the key or the S3 code", err)
			}
			if !errors.Is(up.Err(), s3client.ErrPreconditionFailed) {
				t.Fatalf("the upload is not failed: %v", up.Err())
			}
			if _, err := up.Write(ctx, []byte("more")); !errors.Is(err, ErrUploadFailed) {
				t.Fatalf("write after a failed Seed: %v", err)
			}
			if _, err := up.Complete(ctx); !errors.Is(err, s3client.ErrPreconditionFailed) {
				t.Fatalf("Complete after a failed Seed: %v", err)
			}
			tb.checkObject(t, "moving", theirs)
			tb.checkNoUploads(t)
			tb.checkRequests(t, map[string]int{"PutObject": 0, "CompleteMultipartUpload": 0})
			if r := u.memory.reserved(); r != 0 {
				t.Fatalf("%d bytes still reserved", r)
			}
		})
	}
}

// TestSeedOnlyFirst: Seed after a write is refused and leaves the upload
// usable; a zero-size base changes nothing.
func TestSeedOnlyFirst(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	ctx := context.Background()
	up := u.Start("f", s3client.PutOptions{})
	if err := up.Seed(ctx, Base{Key: "f", Size: 0}); err != nil || up.Size() != 0 {
		t.Fatalf("empty base: %v, size %d", err, up.Size())
	}
	writeAll(t, up, []byte("x"), 1)
	if _, err := c.Put(ctx, "f0", bytes.NewReader([]byte("base")), 4, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := up.Seed(ctx, Base{Key: "f0", ETag: fakeETag([]byte("base")), Size: 4}); err == nil {
		t.Fatal("Seed after a write succeeded")
	}
	if up.Err() != nil {
		t.Fatalf("a refused Seed failed the upload: %v", up.Err())
	}
	if _, err := up.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.object("f"); string(got) != "x" {
		t.Fatalf("object %q, want %q", got, "x")
	}
	if c.Count("GetObject") != 0 {
		t.Fatal("a refused Seed read the base")
	}
}

// TestSeedContinuesTheSchedule: written parts after copied ones are
// numbered after them and sized by the schedule for their numbers.
func TestSeedContinuesTheSchedule(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: 64 << 20})
	ctx := context.Background()
	base := randomData(75, MinPartSize+3)
	if _, err := c.Put(ctx, "b", bytes.NewReader(base), int64(len(base)), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	up := u.Start("b", s3client.PutOptions{})
	if err := up.Seed(ctx, Base{Key: "b", ETag: fakeETag(base), Size: int64(len(base))}); err != nil {
		t.Fatal(err)
	}
	if up.nextNumber != 2 {
		t.Fatalf("next part %d after one copied part, want 2", up.nextNumber)
	}
	up.nextNumber = 901 // as if 900 parts were copied: the next size doubles
	part, err := up.newPart()
	if err != nil || part.capacity != 2*MinPartSize || part.firstChunk != 0 {
		t.Fatalf("part 901: %+v, %v; want %d bytes of 1 MiB chunks", part, err, 2*MinPartSize)
	}
	up.nextNumber = 2
	more := randomData(76, MinPartSize+1)
	writeAll(t, up, more, 1<<20)
	res, err := up.Complete(ctx)
	if err != nil || res.Parts != 3 {
		t.Fatalf("complete: %+v, %v", res, err)
	}
	if res.Copied != int64(len(base)) || res.Sent != int64(len(more)) {
		t.Fatalf("complete: sent %d, copied %d; want %d and %d", res.Sent, res.Copied, len(more), len(base))
	}
	if got, _ := c.object("b"); !bytes.Equal(got, append(append([]byte(nil), base...), more...)) {
		t.Fatal("wrong bytes")
	}
}

// TestResultCounts: Result.Sent counts the bytes of a PutObject and of
// the uploaded parts, a small seeded base included (it travels again);
// Copied stays 0 without a copied base.
func TestResultCounts(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		base, n   int
		multipart bool
	}{{"put", 0, 3, false}, {"empty", 0, 0, false}, {"multipart", 0, 2*MinPartSize + 5, true}, {"small base", 4, 7, false}} {
		key := "counts/" + tc.name
		up := u.Start(key, s3client.PutOptions{})
		if tc.base > 0 {
			b := randomData(77, tc.base)
			if _, err := c.Put(ctx, key+".base", bytes.NewReader(b), int64(len(b)), s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := up.Seed(ctx, Base{Key: key + ".base", ETag: fakeETag(b), Size: int64(len(b))}); err != nil {
				t.Fatal(err)
			}
		}
		writeAll(t, up, randomData(78, tc.n), 1<<20)
		res, err := up.Complete(ctx)
		want := int64(tc.base + tc.n)
		if err != nil || res.Multipart != tc.multipart || res.Size != want || res.Sent != want || res.Copied != 0 {
			t.Fatalf("%s: %+v, %v; want %d bytes sent", tc.name, res, err, want)
		}
	}
}

// TestBaseRanges: a base is cut into as few parts as S3 allows, each
// within 5 MiB to 5 GiB, contiguous and covering it.
func TestBaseRanges(t *testing.T) {
	for _, tc := range []struct {
		size  int64
		parts int
	}{
		{MinPartSize, 1}, {12 << 20, 1}, {MaxPartSize, 1}, {MaxPartSize + 1, 2},
		{12 << 30, 3}, {MaxObjectSize, 1024},
	} {
		rs := baseRanges(tc.size)
		if len(rs) != tc.parts {
			t.Fatalf("size %d: %d parts, want %d", tc.size, len(rs), tc.parts)
		}
		next := int64(0)
		for i, r := range rs {
			n := r[1] - r[0] + 1
			if r[0] != next || n < MinPartSize || n > MaxPartSize {
				t.Fatalf("size %d: part %d is %v (%d bytes)", tc.size, i+1, r, n)
			}
			next = r[1] + 1
		}
		if next != tc.size {
			t.Fatalf("size %d: parts cover %d bytes", tc.size, next)
		}
	}
}
