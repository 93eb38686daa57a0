package s3fake_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// etagOf is the ETag S3 gives a single-part object of data.
func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// multipartETag is the ETag S3 gives an object assembled from parts.
func multipartETag(parts ...[]byte) string {
	var sums []byte
	for _, p := range parts {
		s := md5.Sum(p)
		sums = append(sums, s[:]...)
	}
	s := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(s[:]), len(parts))
}

func put(t *testing.T, f *s3fake.Fake, key, data string, opts s3client.PutOptions) string {
	t.Helper()
	etag, err := f.Put(context.Background(), key, strings.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return etag
}

// text returns what a GetRange returned: the bytes read, or the error.
func text(rc io.ReadCloser, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// wantError checks that err is an *s3client.Error of op, key, code and status.
func wantError(t *testing.T, err error, op, key, code string, status int) *s3client.Error {
	t.Helper()
	var e *s3client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *s3client.Error", err, err)
	}
	if e.Op != op || e.Key != key || e.Code != code || e.Status != status {
		t.Fatalf("error = {Op:%q Key:%q Code:%q Status:%d}, want {%q %q %q %d}", e.Op, e.Key, e.Code, e.Status, op, key, code, status)
	}
	return e
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// bigPart returns a part of the smallest size S3 accepts before the last.
func bigPart() []byte { return bytes.Repeat([]byte{'x'}, s3fake.MinPartSize) }

func TestObjectAttributes(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	clock := time.Date(2024, 5, 6, 7, 8, 9, 987654321, time.FixedZone("X", 3600))
	f.SetClock(fixedClock(clock))

	etag := put(t, f, "dir/file", "hello", s3client.PutOptions{
		Metadata: map[string]string{"Mode": "33188", "MTIME": "12"},
		Headers:  s3client.ObjectHeaders{ContentType: "text/plain", CacheControl: "no-cache", StorageClass: "REDUCED_REDUNDANCY"},
		Tags:     map[string]string{"team": "a"},
	})
	if etag != etagOf([]byte("hello")) {
		t.Fatalf("etag = %s", etag)
	}
	info, err := f.Head(ctx, "dir/file")
	if err != nil {
		t.Fatal(err)
	}
	want := &s3client.ObjectInfo{
		Key: "dir/file", Size: 5, ETag: etag,
		LastModified: time.Date(2024, 5, 6, 6, 8, 9, 0, time.UTC),
		Metadata:     map[string]string{"mode": "33188", "mtime": "12"},
		Headers: s3client.ObjectHeaders{ContentType: "text/plain", CacheControl: "no-cache",
			StorageClass: "REDUCED_REDUNDANCY", TagCount: 1},
	}
	if !infoEqual(info, want) {
		t.Fatalf("head = %+v, want %+v", info, want)
	}

	put(t, f, "plain", "", s3client.PutOptions{})
	info, err = f.Head(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if info.Headers != (s3client.ObjectHeaders{ContentType: s3fake.DefaultContentType, StorageClass: "STANDARD"}) || info.Metadata == nil || len(info.Metadata) != 0 || info.ETag != etagOf(nil) {
		t.Fatalf("head of a plain empty object = %+v", info)
	}

	// Seeded objects look like written ones; Object returns copies.
	f.SetObject("seed", []byte("abc"), map[string]string{"UID": "7"})
	data, info, ok := f.Object("seed")
	if !ok || string(data) != "abc" || info.ETag != etagOf(data) || info.Metadata["uid"] != "7" || info.Size != 3 {
		t.Fatalf("Object(seed) = %q %+v %v", data, info, ok)
	}
	data[0] = 'X'
	info.Metadata["uid"] = "0"
	if got := text(f.GetRange(ctx, "seed", 0, -1, "")); got != "abc" {
		t.Fatalf("seed changed through Object's copy: %q", got)
	}
	if info, _ := f.Head(ctx, "seed"); info.Metadata["uid"] != "7" {
		t.Fatalf("metadata changed through Object's copy: %v", info.Metadata)
	}
	if _, _, ok := f.Object("missing"); ok {
		t.Fatal("Object(missing) found something")
	}
	if got := f.Keys(); !slices.Equal(got, []string{"dir/file", "plain", "seed"}) {
		t.Fatalf("keys = %q", got)
	}

	// The body is copied: reusing the caller's buffer changes nothing.
	buf := []byte("12345")
	if _, err := f.Put(ctx, "buf", bytes.NewReader(buf), 5, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	if got := text(f.GetRange(ctx, "buf", 0, -1, "")); got != "12345" {
		t.Fatalf("stored body follows the caller's buffer: %q", got)
	}
	// A reader keeps the version it was opened on.
	rc, err := f.GetRange(ctx, "buf", 0, -1, "")
	put(t, f, "buf", "other", s3client.PutOptions{})
	if got := text(rc, err); got != "12345" {
		t.Fatalf("open reader sees the new version: %q", got)
	}
}

func infoEqual(a, b *s3client.ObjectInfo) bool {
	return a.Key == b.Key && a.Size == b.Size && a.ETag == b.ETag && a.LastModified.Equal(b.LastModified) &&
		a.LastModified.Location() == b.LastModified.Location() &&
		maps.Equal(a.Metadata, b.Metadata) && a.Headers == b.Headers
}

func TestPutBody(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	// Put reads from the start, as the real client rewinds the body.
	r := strings.NewReader("abcdef")
	r.Seek(3, io.SeekStart)
	if _, err := f.Put(ctx, "k", r, 6, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if data, _, _ := f.Object("k"); string(data) != "abcdef" {
		t.Fatalf("put stored %q", data)
	}
	_, err := f.Put(ctx, "short", strings.NewReader("abc"), 4, s3client.PutOptions{})
	wantError(t, err, "PutObject", "short", "IncompleteBody", 400)
	_, err = f.Put(ctx, "long", strings.NewReader("abcde"), 4, s3client.PutOptions{})
	wantError(t, err, "PutObject", "long", "", 0)
	if keys := f.Keys(); !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("failed puts stored something: %q", keys)
	}
}

func TestGetRange(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	etag := put(t, f, "k", "hello world", s3client.PutOptions{})
	put(t, f, "empty", "", s3client.PutOptions{})
	tests := []struct {
		key            string
		offset, length int64
		ifMatch        string
		want           string
		requests       int
	}{
		{"k", 0, -1, "", "hello world", 1},
		{"k", 0, 5, "", "hello", 1},
		{"k", 6, 100, "", "world", 1},
		{"k", 10, 1, "", "d", 1},
		{"k", 3, -1, "", "lo world", 1},
		{"k", 2, 3, etag, "llo", 1},
		{"k", 100, 0, "", "", 0}, // no request, as the real client
		{"missing", 0, 0, "", "", 0},
		{"empty", 0, -1, "", "", 1},
		{"empty", 0, 10, "", "", 1},
		{"empty", 5, -1, "", "", 1},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s@%d+%d", tt.key, tt.offset, tt.length)
		t.Run(name, func(t *testing.T) {
			f.ResetCounts()
			got := text(f.GetRange(ctx, tt.key, tt.offset, tt.length, tt.ifMatch))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if n := f.Count(s3fake.OpGetObject); n != tt.requests {
				t.Fatalf("%d GetObject requests, want %d", n, tt.requests)
			}
		})
	}
}

// TestErrors checks each S3 error the fake answers with: op, key, code,
// status, and the sentinel it maps to, as with the real client.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	none := s3client.PutOptions{}
	longKey := strings.Repeat("k", s3fake.MaxKeyLength+1)
	big := bigPart()
	tests := []struct {
		name     string
		call     func(f *s3fake.Fake) error
		op, key  string
		code     string
		status   int
		sentinel error // nil: none of them
	}{
		{"head missing", func(f *s3fake.Fake) error { _, err := f.Head(ctx, "missing"); return err },
			"HeadObject", "missing", "NotFound", 404, s3client.ErrNotFound},
		{"get missing", func(f *s3fake.Fake) error { _, err := f.GetRange(ctx, "missing", 0, -1, ""); return err },
			"GetObject", "missing", "NoSuchKey", 404, s3client.ErrNotFound},
		{"get at EOF", func(f *s3fake.Fake) error { _, err := f.GetRange(ctx, "obj", 11, 1, ""); return err },
			"GetObject", "obj", "InvalidRange", 416, s3client.ErrInvalidRange},
		{"get past EOF to the end", func(f *s3fake.Fake) error { _, err := f.GetRange(ctx, "obj", 20, -1, ""); return err },
			"GetObject", "obj", "InvalidRange", 416, s3client.ErrInvalidRange},
		{"get if-match changed", func(f *s3fake.Fake) error { _, err := f.GetRange(ctx, "obj", 0, 4, `"0"`); return err },
			"GetObject", "obj", "PreconditionFailed", 412, s3client.ErrPreconditionFailed},
		{"put if-none-match existing", func(f *s3fake.Fake) error {
			_, err := f.Put(ctx, "obj", strings.NewReader("x"), 1, s3client.PutOptions{IfNoneMatch: true})
			return err
		}, "PutObject", "obj", "PreconditionFailed", 412, s3client.ErrPreconditionFailed},
		{"put key too long", func(f *s3fake.Fake) error { _, err := f.Put(ctx, longKey, strings.NewReader(""), 0, none); return err },
			"PutObject", longKey, "KeyTooLongError", 400, nil},
		{"put metadata too large", func(f *s3fake.Fake) error {
			meta := map[string]string{"big": strings.Repeat("v", s3fake.MaxMetadataSize)}
			_, err := f.Put(ctx, "m", strings.NewReader(""), 0, s3client.PutOptions{Metadata: meta})
			return err
		}, "PutObject", "m", "MetadataTooLarge", 400, nil},
		{"put empty key", func(f *s3fake.Fake) error { _, err := f.Put(ctx, "", strings.NewReader(""), 0, none); return err },
			"PutObject", "", "", 0, nil},
		{"list bad token", func(f *s3fake.Fake) error { _, err := f.List(ctx, "p/", "/", "garbage!", 0); return err },
			"ListObjectsV2", "p/", "InvalidArgument", 400, nil},
		{"upload part unknown upload", func(f *s3fake.Fake) error {
			_, err := f.UploadPart(ctx, "new", "nope", 1, strings.NewReader("x"), 1)
			return err
		}, "UploadPart", "new", "NoSuchUpload", 404, s3client.ErrNoSuchUpload},
		{"upload part other key", func(f *s3fake.Fake) error {
			_, err := f.UploadPart(ctx, "other", upload(f, "new"), 1, strings.NewReader("x"), 1)
			return err
		}, "UploadPart", "other", "NoSuchUpload", 404, s3client.ErrNoSuchUpload},
		{"upload part number 0", func(f *s3fake.Fake) error {
			_, err := f.UploadPart(ctx, "new", upload(f, "new"), 0, strings.NewReader("x"), 1)
			return err
		}, "UploadPart", "new", "InvalidArgument", 400, nil},
		{"upload part number 10001", func(f *s3fake.Fake) error {
			_, err := f.UploadPart(ctx, "new", upload(f, "new"), 10001, strings.NewReader("x"), 1)
			return err
		}, "UploadPart", "new", "InvalidArgument", 400, nil},
		{"part copy source changed", func(f *s3fake.Fake) error {
			_, err := f.UploadPartCopy(ctx, "obj", `"0"`, "new", upload(f, "new"), 1, 0, 3)
			return err
		}, "UploadPartCopy", "new", "PreconditionFailed", 412, s3client.ErrPreconditionFailed},
		{"part copy source missing", func(f *s3fake.Fake) error {
			_, err := f.UploadPartCopy(ctx, "missing", "", "new", upload(f, "new"), 1, 0, 3)
			return err
		}, "UploadPartCopy", "new", "NoSuchKey", 404, s3client.ErrNotFound},
		{"part copy past the end", func(f *s3fake.Fake) error {
			_, err := f.UploadPartCopy(ctx, "obj", "", "new", upload(f, "new"), 1, 0, 11)
			return err
		}, "UploadPartCopy", "new", "InvalidRange", 416, s3client.ErrInvalidRange},
		{"part copy reversed range", func(f *s3fake.Fake) error {
			_, err := f.UploadPartCopy(ctx, "obj", "", "new", upload(f, "new"), 1, 5, 4)
			return err
		}, "UploadPartCopy", "new", "InvalidRange", 416, s3client.ErrInvalidRange},
		{"part copy unknown upload", func(f *s3fake.Fake) error {
			_, err := f.UploadPartCopy(ctx, "obj", "", "new", "nope", 1, 0, 3)
			return err
		}, "UploadPartCopy", "new", "NoSuchUpload", 404, s3client.ErrNoSuchUpload},
		{"complete descending", func(f *s3fake.Fake) error {
			id, parts := uploadParts(t, f, "new", big, []byte("b"))
			_, err := f.CompleteMultipartUpload(ctx, "new", id, []s3client.CompletedPart{parts[1], parts[0]}, none)
			return err
		}, "CompleteMultipartUpload", "new", "InvalidPartOrder", 400, s3client.ErrMultipartContract},
		{"complete repeated number", func(f *s3fake.Fake) error {
			id, parts := uploadParts(t, f, "new", big)
			_, err := f.CompleteMultipartUpload(ctx, "new", id, []s3client.CompletedPart{parts[0], parts[0]}, none)
			return err
		}, "CompleteMultipartUpload", "new", "InvalidPartOrder", 400, s3client.ErrMultipartContract},
		{"complete unquoted etag", func(f *s3fake.Fake) error {
			id, parts := uploadParts(t, f, "new", []byte("a"))
			parts[0].ETag = strings.Trim(parts[0].ETag, `"`)
			_, err := f.CompleteMultipartUpload(ctx, "new", id, parts, none)
			return err
		}, "CompleteMultipartUpload", "new", "InvalidPart", 400, s3client.ErrMultipartContract},
		{"complete part never uploaded", func(f *s3fake.Fake) error {
			id, parts := uploadParts(t, f, "new", big)
			parts = append(parts, s3client.CompletedPart{Number: 2, ETag: etagOf(nil)})
			_, err := f.CompleteMultipartUpload(ctx, "new", id, parts, none)
			return err
		}, "CompleteMultipartUpload", "new", "InvalidPart", 400, s3client.ErrMultipartContract},
		{"complete small middle part", func(f *s3fake.Fake) error {
			id, parts := uploadParts(t, f, "new", big, big[1:], big)
			_, err := f.CompleteMultipartUpload(ctx, "new", id, parts, none)
			return err
		}, "CompleteMultipartUpload", "new", "EntityTooSmall", 400, s3client.ErrMultipartContract},
		{"complete no parts", func(f *s3fake.Fake) error {
			_, err := f.CompleteMultipartUpload(ctx, "new", upload(f, "new"), nil, none)
			return err
		}, "CompleteMultipartUpload", "new", "MalformedXML", 400, nil},
		{"complete unknown upload", func(f *s3fake.Fake) error {
			_, err := f.CompleteMultipartUpload(ctx, "new", "nope", []s3client.CompletedPart{{Number: 1, ETag: etagOf(nil)}}, none)
			return err
		}, "CompleteMultipartUpload", "new", "NoSuchUpload", 404, s3client.ErrNoSuchUpload},
		{"complete if-none-match existing", func(f *s3fake.Fake) error {
			id, parts := uploadParts(t, f, "obj", []byte("a"))
			_, err := f.CompleteMultipartUpload(ctx, "obj", id, parts, s3client.PutOptions{IfNoneMatch: true})
			return err
		}, "CompleteMultipartUpload", "obj", "PreconditionFailed", 412, s3client.ErrPreconditionFailed},
		{"abort unknown upload", func(f *s3fake.Fake) error { return f.AbortMultipartUpload(ctx, "new", "nope") },
			"AbortMultipartUpload", "new", "NoSuchUpload", 404, s3client.ErrNoSuchUpload},
		{"abort other key", func(f *s3fake.Fake) error { return f.AbortMultipartUpload(ctx, "other", upload(f, "new")) },
			"AbortMultipartUpload", "other", "NoSuchUpload", 404, s3client.ErrNoSuchUpload},
		{"copy missing source", func(f *s3fake.Fake) error {
			_, err := f.Copy(ctx, "missing", "dst", s3client.CopyOptions{})
			return err
		},
			"CopyObject", "dst", "NoSuchKey", 404, s3client.ErrNotFound},
		{"copy onto itself unchanged", func(f *s3fake.Fake) error { _, err := f.Copy(ctx, "obj", "obj", s3client.CopyOptions{}); return err },
			"CopyObject", "obj", "InvalidRequest", 400, nil},
		{"delete too many", func(f *s3fake.Fake) error {
			keys := make([]string, s3fake.MaxDeleteKeys+1)
			for i := range keys {
				keys[i] = fmt.Sprint("k", i)
			}
			return f.DeleteMany(ctx, keys)
		}, "DeleteObjects", "k0", "MalformedXML", 400, nil},
	}
	sentinels := []error{s3client.ErrNotFound, s3client.ErrNoSuchBucket, s3client.ErrPreconditionFailed,
		s3client.ErrAccessDenied, s3client.ErrNoSuchUpload, s3client.ErrInvalidRange, s3client.ErrMultipartContract,
		s3client.ErrEmptyResult, s3client.ErrNotImplemented}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := s3fake.New()
			put(t, f, "obj", "hello world", none)
			before, _, _ := f.Object("obj")
			err := tt.call(f)
			wantError(t, err, tt.op, tt.key, tt.code, tt.status)
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.sentinel; got != want {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			if keys := f.Keys(); !slices.Equal(keys, []string{"obj"}) {
				t.Errorf("a failed request changed the keys: %q", keys)
			}
			if after, _, _ := f.Object("obj"); !bytes.Equal(before, after) {
				t.Errorf("a failed request changed obj")
			}
		})
	}
}

// upload starts a multipart upload of key.
func upload(f *s3fake.Fake, key string) string {
	id, err := f.CreateMultipartUpload(context.Background(), key, s3client.PutOptions{})
	if err != nil {
		panic(err)
	}
	return id
}

// uploadParts starts an upload of key and uploads parts, numbered from 1.
func uploadParts(t *testing.T, f *s3fake.Fake, key string, parts ...[]byte) (string, []s3client.CompletedPart) {
	t.Helper()
	id := upload(f, key)
	var done []s3client.CompletedPart
	for i, p := range parts {
		cp, err := f.UploadPart(context.Background(), key, id, int32(i+1), bytes.NewReader(p), int64(len(p)))
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, cp)
	}
	return id, done
}

func TestMultipart(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	big := bigPart()
	f.SetClock(fixedClock(time.Unix(1000, 0)))
	src := put(t, f, "src", "0123456789", s3client.PutOptions{})

	opts := s3client.PutOptions{Metadata: map[string]string{"Mode": "420"}, Headers: s3client.ObjectHeaders{ContentType: "text/x"},
		Tags: map[string]string{"k": "v"}}
	id, err := f.CreateMultipartUpload(ctx, "dst", opts)
	if err != nil {
		t.Fatal(err)
	}
	id2 := upload(f, "dst")
	if id == id2 || id == "" {
		t.Fatalf("upload IDs %q and %q", id, id2)
	}
	if got := f.Uploads(); !slices.Equal(got, []string{id, id2}) {
		t.Fatalf("uploads = %q", got)
	}

	// Part 1 is uploaded twice: the second replaces the first.
	if _, err := f.UploadPart(ctx, "dst", id, 1, bytes.NewReader([]byte("first try")), 9); err != nil {
		t.Fatal(err)
	}
	p1, err := f.UploadPart(ctx, "dst", id, 1, bytes.NewReader(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	if want := (s3client.CompletedPart{Number: 1, ETag: etagOf(big), Size: int64(len(big))}); p1 != want {
		t.Fatalf("part 1 = %+v, want %+v", p1, want)
	}
	// UploadPart reads the body from where it stands.
	r := strings.NewReader("..tail")
	r.Seek(2, io.SeekStart)
	p3, err := f.UploadPart(ctx, "dst", id, 3, r, 4)
	if err != nil {
		t.Fatal(err)
	}
	// An uploaded part that Complete does not name is discarded.
	if _, err := f.UploadPart(ctx, "dst", id, 4, strings.NewReader("unused"), 6); err != nil {
		t.Fatal(err)
	}
	// Part 2 is copied from bytes [2, 5] of src, then from the whole of big.
	p2, err := f.UploadPartCopy(ctx, "src", src, "dst", id, 2, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if p2.ETag != etagOf([]byte("2345")) || p2.Size != 4 || p2.Number != 2 {
		t.Fatalf("copied part = %+v", p2)
	}
	f.SetObject("big", big, nil)
	p2, err = f.UploadPartCopy(ctx, "big", "", "dst", id, 2, 0, int64(len(big))-1)
	if err != nil {
		t.Fatal(err)
	}

	f.SetClock(fixedClock(time.Unix(2000, 0)))
	etag, err := f.CompleteMultipartUpload(ctx, "dst", id, []s3client.CompletedPart{p1, p2, p3}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := multipartETag(big, big, []byte("tail")); etag != want {
		t.Fatalf("etag = %s, want %s", etag, want)
	}
	data, _, _ := f.Object("dst")
	if want := string(big) + string(big) + "tail"; string(data) != want {
		t.Fatalf("assembled %d bytes, want %d", len(data), len(want))
	}
	info, err := f.Head(ctx, "dst")
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag != etag || info.Size != int64(len(data)) || info.Headers.ContentType != "text/x" || info.Headers.TagCount != 1 ||
		!maps.Equal(info.Metadata, map[string]string{"mode": "420"}) || !info.LastModified.Equal(time.Unix(2000, 0)) {
		t.Fatalf("head = %+v", info)
	}
	if got := f.Uploads(); !slices.Equal(got, []string{id2}) {
		t.Fatalf("uploads after complete = %q", got)
	}

	// A completed upload is unknown from then on.
	_, err = f.CompleteMultipartUpload(ctx, "dst", id, []s3client.CompletedPart{p1, p2, p3}, opts)
	wantError(t, err, "CompleteMultipartUpload", "dst", "NoSuchUpload", 404)
	_, err = f.UploadPart(ctx, "dst", id, 5, strings.NewReader(""), 0)
	wantError(t, err, "UploadPart", "dst", "NoSuchUpload", 404)
	err = f.AbortMultipartUpload(ctx, "dst", id)
	wantError(t, err, "AbortMultipartUpload", "dst", "NoSuchUpload", 404)

	// An aborted one too.
	if err := f.AbortMultipartUpload(ctx, "dst", id2); err != nil {
		t.Fatal(err)
	}
	if got := f.Uploads(); len(got) != 0 {
		t.Fatalf("uploads after abort = %q", got)
	}
	err = f.AbortMultipartUpload(ctx, "dst", id2)
	wantError(t, err, "AbortMultipartUpload", "dst", "NoSuchUpload", 404)
	_, err = f.UploadPart(ctx, "dst", id2, 1, strings.NewReader(""), 0)
	wantError(t, err, "UploadPart", "dst", "NoSuchUpload", 404)
}

func TestMultipartRefusalKeepsUpload(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	id, parts := uploadParts(t, f, "k", []byte("small"), []byte("last"))
	_, err := f.CompleteMultipartUpload(ctx, "k", id, parts, s3client.PutOptions{})
	wantError(t, err, "CompleteMultipartUpload", "k", "EntityTooSmall", 400)
	// The caller can still complete with a part list S3 accepts.
	etag, err := f.CompleteMultipartUpload(ctx, "k", id, parts[1:], s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if etag != multipartETag([]byte("last")) {
		t.Fatalf("etag = %s", etag)
	}
	if data, _, _ := f.Object("k"); string(data) != "last" {
		t.Fatalf("data = %q", data)
	}
}

func TestCompleteIfNoneMatch(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	exclusive := s3client.PutOptions{IfNoneMatch: true}
	id, parts := uploadParts(t, f, "k", []byte("one"))
	if _, err := f.CompleteMultipartUpload(ctx, "k", id, parts, exclusive); err != nil {
		t.Fatal(err)
	}
	id, parts = uploadParts(t, f, "k", []byte("two"))
	_, err := f.CompleteMultipartUpload(ctx, "k", id, parts, exclusive)
	wantError(t, err, "CompleteMultipartUpload", "k", "PreconditionFailed", 412)
	if got := f.Uploads(); !slices.Equal(got, []string{id}) {
		t.Fatalf("a refused completion removed the upload: %q", got)
	}
	if data, _, _ := f.Object("k"); string(data) != "one" {
		t.Fatalf("data = %q", data)
	}
	// Without the condition, the same upload replaces the object.
	if _, err := f.CompleteMultipartUpload(ctx, "k", id, parts, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if data, _, _ := f.Object("k"); string(data) != "two" {
		t.Fatalf("data = %q", data)
	}
}

func TestListMultipartUploads(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	b1 := upload(f, "dir/b")
	a1 := upload(f, "dir/a")
	other := upload(f, "other")
	b2 := upload(f, "dir/b")
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{a1, b1, b2, other}},
		{"dir/", []string{a1, b1, b2}},
		{"dir/b", []string{b1, b2}},
		{"none", nil},
	}
	for _, tt := range tests {
		got, err := f.ListMultipartUploads(ctx, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListMultipartUploads(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	keys := []string{"a", "a-b", "a/b", "a/c/d", "a/c/e", "a/d", "B", "b", "b/", "c/x/y", "d"}
	for _, k := range keys {
		put(t, f, k, k, s3client.PutOptions{Metadata: map[string]string{"m": "1"}})
	}
	upload(f, "a/pending") // uploads in progress are not listed

	tests := []struct {
		prefix, delimiter string
		objects, prefixes []string
	}{
		{"", "", []string{"B", "a", "a-b", "a/b", "a/c/d", "a/c/e", "a/d", "b", "b/", "c/x/y", "d"}, nil},
		{"", "/", []string{"B", "a", "a-b", "b", "d"}, []string{"a/", "b/", "c/"}},
		{"a/", "/", []string{"a/b", "a/d"}, []string{"a/c/"}},
		{"a/c/", "/", []string{"a/c/d", "a/c/e"}, nil},
		{"b/", "/", []string{"b/"}, nil},
		{"a", "/", []string{"a", "a-b"}, []string{"a/"}},
		{"c/", "/", nil, []string{"c/x/"}},
		{"a/", "", []string{"a/b", "a/c/d", "a/c/e", "a/d"}, nil},
		{"zz", "/", nil, nil},
		// Keys holding a "c" roll up at their first "c".
		{"", "c", []string{"B", "a", "a-b", "a/b", "a/d", "b", "b/", "d"}, []string{"a/c", "c"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%q", tt.prefix, tt.delimiter), func(t *testing.T) {
			for _, maxKeys := range []int32{0, 1, 2, 3, 1000} {
				var objects, prefixes []string
				token := ""
				for pages := 0; ; pages++ {
					if pages > len(keys) {
						t.Fatal("listing does not end")
					}
					page, err := f.List(ctx, tt.prefix, tt.delimiter, token, maxKeys)
					if err != nil {
						t.Fatal(err)
					}
					n := len(page.Objects) + len(page.CommonPrefixes)
					if page.NextToken != "" && maxKeys > 0 && n != int(maxKeys) {
						t.Fatalf("maxKeys %d: truncated page of %d entries", maxKeys, n)
					}
					if maxKeys > 0 && n > int(maxKeys) {
						t.Fatalf("maxKeys %d: page of %d entries", maxKeys, n)
					}
					for _, o := range page.Objects {
						if o.Metadata != nil || o.Headers != (s3client.ObjectHeaders{}) || o.ETag != etagOf([]byte(o.Key)) || o.Size != int64(len(o.Key)) {
							t.Fatalf("listed %+v", o)
						}
						objects = append(objects, o.Key)
					}
					prefixes = append(prefixes, page.CommonPrefixes...)
					if token = page.NextToken; token == "" {
						break
					}
				}
				if !slices.Equal(objects, tt.objects) || !slices.Equal(prefixes, tt.prefixes) {
					t.Fatalf("maxKeys %d: objects %q prefixes %q, want %q %q", maxKeys, objects, prefixes, tt.objects, tt.prefixes)
				}
			}
		})
	}
}

func TestListPageLimit(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	for i := range 1500 {
		f.SetObject(fmt.Sprintf("k%04d", i), nil, nil)
	}
	page, err := f.List(ctx, "", "", "", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1000 || page.NextToken == "" || page.Objects[999].Key != "k0999" {
		t.Fatalf("first page: %d objects, token %q", len(page.Objects), page.NextToken)
	}
	page, err = f.List(ctx, "", "", page.NextToken, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 500 || page.NextToken != "" || page.Objects[0].Key != "k1000" {
		t.Fatalf("second page: %d objects, token %q", len(page.Objects), page.NextToken)
	}
	// A page that ends exactly at the last entry has no token.
	page, err = f.List(ctx, "k14", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 100 || page.NextToken != "" {
		t.Fatalf("exact page: %d objects, token %q", len(page.Objects), page.NextToken)
	}
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	f.SetClock(fixedClock(time.Unix(100, 0)))
	srcHeaders := s3client.ObjectHeaders{ContentType: "text/a", CacheControl: "max-age=60", ContentEncoding: "gzip",
		ContentDisposition: "inline", ContentLanguage: "fr", Expires: "Thu, 01 Jan 2037 00:00:00 GMT",
		StorageClass: "REDUCED_REDUNDANCY", SSE: s3client.SSEKMS, SSEKMSKeyID: "key-1"}
	put(t, f, "src", "data", s3client.PutOptions{Metadata: map[string]string{"mode": "1"}, Headers: srcHeaders,
		Tags: map[string]string{"a": "1", "b": "2"}})
	headed, tagged := srcHeaders, srcHeaders
	tagged.TagCount = 2
	plain := s3client.ObjectHeaders{ContentType: s3fake.DefaultContentType, StorageClass: "STANDARD"}
	// Without the source's headers a copy keeps the Content-* ones (COPY)
	// but, as in S3, becomes STANDARD and unencrypted.
	copied := tagged
	copied.StorageClass, copied.SSE, copied.SSEKMSKeyID = "STANDARD", "", ""
	replaced := plain
	replaced.TagCount = 2
	id, parts := uploadParts(t, f, "multi", []byte("abc"))
	if _, err := f.CompleteMultipartUpload(ctx, "multi", id, parts, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	f.SetClock(fixedClock(time.Unix(200, 0)))

	tests := []struct {
		name, src, dst string
		opts           s3client.CopyOptions
		data           string
		meta           map[string]string
		headers        s3client.ObjectHeaders
	}{
		{"keep", "src", "dst", s3client.CopyOptions{Headers: &headed}, "data", map[string]string{"mode": "1"}, tagged},
		{"keep without the source's headers", "src", "dst1", s3client.CopyOptions{}, "data", map[string]string{"mode": "1"}, copied},
		{"replace", "src", "dst2", s3client.CopyOptions{ReplaceMetadata: map[string]string{"UID": "5"}, Headers: &headed},
			"data", map[string]string{"uid": "5"}, tagged},
		{"replace empty", "src", "dst3", s3client.CopyOptions{ReplaceMetadata: map[string]string{}},
			"data", map[string]string{}, replaced},
		{"onto itself replacing", "src", "src", s3client.CopyOptions{ReplaceMetadata: map[string]string{"mode": "2"}, Headers: &headed},
			"data", map[string]string{"mode": "2"}, tagged},
		{"multipart source", "multi", "dst4", s3client.CopyOptions{}, "abc", map[string]string{}, plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etag, err := f.Copy(ctx, tt.src, tt.dst, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if etag != etagOf([]byte(tt.data)) {
				t.Fatalf("etag = %s", etag)
			}
			data, info, _ := f.Object(tt.dst)
			if string(data) != tt.data || info.ETag != etag || !maps.Equal(info.Metadata, tt.meta) ||
				info.Headers != tt.headers || !info.LastModified.Equal(time.Unix(200, 0)) {
				t.Fatalf("copy = %q %+v", data, info)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	for _, k := range []string{"a", "b", "c", "d"} {
		f.SetObject(k, []byte(k), nil)
	}
	if err := f.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, "missing"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if err := f.DeleteMany(ctx, []string{"b", "missing", "d"}); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteMany(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.Keys(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("keys = %q", got)
	}
	if _, err := f.Head(ctx, "a"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("head of a deleted key: %v", err)
	}
	want := map[string]int{"DeleteObject": 2, "DeleteObjects": 1, "HeadObject": 1}
	if got := f.Counts(); !maps.Equal(got, want) {
		t.Fatalf("counts = %v, want %v (an empty DeleteMany makes no request)", got, want)
	}
	if err := f.HeadBucket(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCounts(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	put(t, f, "k", "v", s3client.PutOptions{})
	put(t, f, "k", "w", s3client.PutOptions{})
	f.Head(ctx, "k")
	f.Head(ctx, "missing") // failed requests count too
	f.GetRange(ctx, "k", 0, 0, "")
	f.List(ctx, "", "/", "", 0)
	want := map[string]int{"PutObject": 2, "HeadObject": 2, "ListObjectsV2": 1}
	got := f.Counts()
	if !maps.Equal(got, want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	got["PutObject"] = 100
	if f.Count(s3fake.OpPutObject) != 2 || f.Count(s3fake.OpGetObject) != 0 {
		t.Fatal("Counts is not a copy, or Count is wrong")
	}
	f.ResetCounts()
	if got := f.Counts(); len(got) != 0 {
		t.Fatalf("counts after reset = %v", got)
	}
}

func TestHookSeesOpAndKey(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	var mu sync.Mutex // guards seen
	var seen []string
	f.SetHook(func(op, key string) s3fake.Fault {
		f.Keys() // the hook runs without the fake's lock
		mu.Lock()
		seen = append(seen, op+" "+key)
		mu.Unlock()
		return s3fake.Fault{}
	})
	put(t, f, "src", "x", s3client.PutOptions{})
	f.Copy(ctx, "src", "dst", s3client.CopyOptions{})
	f.List(ctx, "pre/", "/", "", 0)
	f.DeleteMany(ctx, []string{"src", "dst"})
	f.HeadBucket(ctx)
	id := upload(f, "up")
	f.UploadPartCopy(ctx, "missing", "", "up", id, 1, 0, 0)
	f.GetRange(ctx, "src", 0, 0, "")
	f.SetHook(nil)
	f.Head(ctx, "after")
	want := []string{"PutObject src", "CopyObject dst", "ListObjectsV2 pre/", "DeleteObjects src",
		"HeadBucket ", "CreateMultipartUpload up", "UploadPartCopy up"}
	if !slices.Equal(seen, want) {
		t.Fatalf("hook saw %q, want %q", seen, want)
	}
}

func TestFaultDelay(t *testing.T) {
	f := s3fake.New()
	f.SetHook(func(op, key string) s3fake.Fault {
		if key == "slow" {
			return s3fake.Fault{Delay: time.Hour}
		}
		return s3fake.Fault{Delay: time.Millisecond}
	})
	put(t, f, "fast", "x", s3client.PutOptions{}) // a short delay passes

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Put(ctx, "slow", strings.NewReader("x"), 1, s3client.PutOptions{})
	if time.Since(start) > 10*time.Second {
		t.Fatal("the delay ignored the context")
	}
	wantError(t, err, "PutObject", "slow", "", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	if _, _, ok := f.Object("slow"); ok {
		t.Fatal("a request cancelled during its delay was applied")
	}

	// A context that ended before the request fails it at once, hook or not.
	f.SetHook(nil)
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = f.Put(done, "k", strings.NewReader("x"), 1, s3client.PutOptions{})
	wantError(t, err, "PutObject", "k", "", 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, _, ok := f.Object("k"); ok {
		t.Fatal("a request with an ended context was applied")
	}
}

func TestFaultGate(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	f.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpPutObject && key == "gated" {
			entered <- struct{}{}
			return s3fake.Fault{Gate: gate}
		}
		return s3fake.Fault{}
	})
	result := make(chan error, 1)
	go func() {
		_, err := f.Put(ctx, "gated", strings.NewReader("x"), 1, s3client.PutOptions{})
		result <- err
	}()
	<-entered
	// Other requests proceed while one waits at its gate.
	put(t, f, "other", "y", s3client.PutOptions{})
	if _, _, ok := f.Object("gated"); ok {
		t.Fatal("a gated request was applied before its gate opened")
	}
	close(gate)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f.Object("gated"); !ok {
		t.Fatal("the gated request was not applied")
	}

	// A cancelled context releases a request waiting at a gate that never opens.
	cctx, cancel := context.WithCancel(ctx)
	f.SetHook(func(op, key string) s3fake.Fault {
		cancel()
		return s3fake.Fault{Gate: make(chan struct{})}
	})
	err := f.Delete(cctx, "gated")
	wantError(t, err, "DeleteObject", "gated", "", 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, _, ok := f.Object("gated"); !ok {
		t.Fatal("a cancelled delete was applied")
	}
}

func TestFaultErr(t *testing.T) {
	ctx := context.Background()
	plain := errors.New("connection reset")
	tests := []struct {
		name   string
		err    error
		code   string
		status int
		is     error
	}{
		{"api error", s3fake.APIError(s3fake.OpPutObject, "k", "SlowDown", 503), "SlowDown", 503, nil},
		{"without op and key", &s3client.Error{Code: "AccessDenied", Status: 403}, "AccessDenied", 403, s3client.ErrAccessDenied},
		{"plain error", plain, "", 0, plain},
		{"empty result", s3fake.APIError(s3fake.OpPutObject, "k", "EmptyResult", 200), "EmptyResult", 200, s3client.ErrEmptyResult},
		{"not implemented", s3fake.APIError(s3fake.OpPutObject, "k", "NotImplemented", 501), "NotImplemented", 501, s3client.ErrNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := s3fake.New()
			f.SetHook(func(op, key string) s3fake.Fault { return s3fake.Fault{Err: tt.err, LoseAnswer: true} })
			_, err := f.Put(ctx, "k", strings.NewReader("x"), 1, s3client.PutOptions{})
			wantError(t, err, "PutObject", "k", tt.code, tt.status)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) is false", err, tt.is)
			}
			if _, _, ok := f.Object("k"); ok {
				t.Fatal("a failed request was applied")
			}
			if f.Count(s3fake.OpPutObject) != 1 {
				t.Fatal("a failed request was not counted")
			}
		})
	}
}

func TestFaultLoseAnswer(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	id, parts := uploadParts(t, f, "k", []byte("data"))
	f.SetHook(func(op, key string) s3fake.Fault {
		return s3fake.Fault{LoseAnswer: op == s3fake.OpCompleteMultipartUpload || op == s3fake.OpGetObject}
	})
	_, err := f.CompleteMultipartUpload(ctx, "k", id, parts, s3client.PutOptions{})
	wantError(t, err, "CompleteMultipartUpload", "k", "InternalError", 500)
	// The request took effect: the object exists, the upload is gone, and a
	// retry meets NoSuchUpload.
	if data, _, ok := f.Object("k"); !ok || string(data) != "data" {
		t.Fatalf("object after a lost answer: %q %v", data, ok)
	}
	if got := f.Uploads(); len(got) != 0 {
		t.Fatalf("uploads after a lost answer: %q", got)
	}
	f.SetHook(nil)
	_, err = f.CompleteMultipartUpload(ctx, "k", id, parts, s3client.PutOptions{})
	wantError(t, err, "CompleteMultipartUpload", "k", "NoSuchUpload", 404)

	// A lost answer hides the request's own failure too.
	f.SetHook(func(op, key string) s3fake.Fault { return s3fake.Fault{LoseAnswer: true} })
	_, err = f.GetRange(ctx, "missing", 0, -1, "")
	wantError(t, err, "GetObject", "missing", "InternalError", 500)
	if _, err := f.Put(ctx, "p", strings.NewReader("x"), 1, s3client.PutOptions{}); err == nil {
		t.Fatal("a lost answer did not fail the put")
	}
	if _, _, ok := f.Object("p"); !ok {
		t.Fatal("a put whose answer was lost was not applied")
	}
}

// TestConcurrent runs many clients at once (meant for -race): exclusive
// writes of one key have one winner, and every object holds a whole
// version with the ETag of its content.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	f.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpUploadPart {
			return s3fake.Fault{Delay: time.Microsecond}
		}
		return s3fake.Fault{}
	})
	f.SetObject("seed", []byte("seed data"), nil)
	_, seedInfo, _ := f.Object("seed")
	seedETag := seedInfo.ETag
	const workers, rounds = 16, 40
	var wg sync.WaitGroup
	var mu sync.Mutex // guards winners and failures
	winners := map[string]int{}
	var failures []error
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				key := fmt.Sprintf("dir/k%d", (w+r)%5)
				body := fmt.Sprintf("w%d-r%d", w, r)
				switch r % 6 {
				case 0:
					if _, err := f.Put(ctx, key, strings.NewReader(body), int64(len(body)), s3client.PutOptions{}); err != nil {
						fail(err)
					}
				case 1:
					ekey := fmt.Sprintf("excl/%d", r)
					_, err := f.Put(ctx, ekey, strings.NewReader(body), int64(len(body)), s3client.PutOptions{IfNoneMatch: true})
					switch {
					case err == nil:
						mu.Lock()
						winners[ekey]++
						mu.Unlock()
					case !errors.Is(err, s3client.ErrPreconditionFailed):
						fail(err)
					}
				case 2:
					id, err := f.CreateMultipartUpload(ctx, key, s3client.PutOptions{})
					if err != nil {
						fail(err)
						continue
					}
					p, err := f.UploadPart(ctx, key, id, 1, strings.NewReader(body), int64(len(body)))
					if err != nil {
						fail(err)
						continue
					}
					if r%4 == 0 {
						if err := f.AbortMultipartUpload(ctx, key, id); err != nil {
							fail(err)
						}
					} else if _, err := f.CompleteMultipartUpload(ctx, key, id, []s3client.CompletedPart{p}, s3client.PutOptions{}); err != nil {
						fail(err)
					}
					// An exclusive multipart write of a part copied from seed.
					ekey := fmt.Sprintf("excl/mp%d", r)
					id, err = f.CreateMultipartUpload(ctx, ekey, s3client.PutOptions{})
					if err != nil {
						fail(err)
						continue
					}
					p, err = f.UploadPartCopy(ctx, "seed", seedETag, ekey, id, 1, 0, 3)
					if err != nil {
						fail(err)
						continue
					}
					_, err = f.CompleteMultipartUpload(ctx, ekey, id, []s3client.CompletedPart{p}, s3client.PutOptions{IfNoneMatch: true})
					switch {
					case err == nil:
						mu.Lock()
						winners[ekey]++
						mu.Unlock()
					case errors.Is(err, s3client.ErrPreconditionFailed):
						if err := f.AbortMultipartUpload(ctx, ekey, id); err != nil {
							fail(err)
						}
					default:
						fail(err)
					}
				case 3:
					rc, err := f.GetRange(ctx, key, 0, -1, "")
					if err == nil {
						io.Copy(io.Discard, rc)
						rc.Close()
					} else if !errors.Is(err, s3client.ErrNotFound) {
						fail(err)
					}
					if _, err := f.Head(ctx, key); err != nil && !errors.Is(err, s3client.ErrNotFound) {
						fail(err)
					}
				case 4:
					token := ""
					for {
						page, err := f.List(ctx, "dir/", "/", token, 2)
						if err != nil {
							fail(err)
							break
						}
						if token = page.NextToken; token == "" {
							break
						}
					}
					f.ListMultipartUploads(ctx, "dir/")
					f.Counts()
					f.Uploads()
				case 5:
					if r%2 == 0 {
						if err := f.Delete(ctx, key); err != nil {
							fail(err)
						}
					} else if _, err := f.Copy(ctx, key, key+"-copy", s3client.CopyOptions{}); err != nil && !errors.Is(err, s3client.ErrNotFound) {
						fail(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	for k, n := range winners {
		if n != 1 {
			t.Errorf("%s: %d exclusive writes won", k, n)
		}
	}
	for _, k := range f.Keys() {
		data, info, _ := f.Object(k)
		if info.ETag != etagOf(data) && info.ETag != multipartETag(data) {
			t.Errorf("%s: ETag %s does not match its content %q", k, info.ETag, data)
		}
	}
	if left := f.Uploads(); len(left) != 0 {
		t.Errorf("uploads left: %q", left)
	}
	exclusiveKeys := 0
	for r := range rounds {
		if r%6 == 1 || r%6 == 2 {
			exclusiveKeys++
		}
	}
	if len(winners) != exclusiveKeys {
		t.Errorf("%d keys written exclusively, want %d", len(winners), exclusiveKeys)
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	f := s3fake.New()
	put(t, f, "tagged", "x", s3client.PutOptions{Tags: map[string]string{"a": "1"}})
	put(t, f, "plain", "x", s3client.PutOptions{})
	if tags, err := f.Tags(ctx, "tagged"); err != nil || !maps.Equal(tags, map[string]string{"a": "1"}) {
		t.Fatalf("tags of tagged = %v, %v", tags, err)
	}
	if tags, err := f.Tags(ctx, "plain"); err != nil || tags == nil || len(tags) != 0 {
		t.Fatalf("tags of plain = %v, %v", tags, err)
	}
	if _, err := f.Tags(ctx, "missing"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("tags of missing: %v", err)
	}
	f.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpGetObjectTagging {
			return s3fake.Fault{Err: s3fake.APIError(op, key, "AccessDenied", 403)}
		}
		return s3fake.Fault{}
	})
	if _, err := f.Tags(ctx, "tagged"); !errors.Is(err, s3client.ErrAccessDenied) || s3client.Code(err) != "AccessDenied" {
		t.Fatalf("denied tags: %v", err)
	}
	if n := f.Count(s3fake.OpGetObjectTagging); n != 4 {
		t.Fatalf("%d GetObjectTagging, want 4", n)
	}
}
