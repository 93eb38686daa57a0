package s3client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

func TestObjectRoundTrip(t *testing.T) {
	srv := s3test.StartMinIO(t)
	_, c := srv.Bucket(t)
	ctx := context.Background()

	if _, err := c.Put(ctx, "a/b.txt", strings.NewReader("hello"), 5, s3client.PutOptions{Metadata: map[string]string{"mode": "33188"}}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Head(ctx, "a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 5 || info.Metadata["mode"] != "33188" {
		t.Fatalf("head = %+v", info)
	}
	if _, err := c.Head(ctx, "missing"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("head missing: %v", err)
	}
	rc, err := c.GetRange(ctx, "a/b.txt", 1, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "ell" {
		t.Fatalf("range = %q", b)
	}
	if _, err := c.GetRange(ctx, "a/b.txt", 5, 10, ""); !errors.Is(err, s3client.ErrInvalidRange) {
		t.Fatalf("range at EOF: %v", err)
	}
	page, err := c.List(ctx, "", "/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.CommonPrefixes) != 1 || page.CommonPrefixes[0] != "a/" {
		t.Fatalf("list = %+v", page)
	}
	if _, err := c.Put(ctx, "a/b.txt", strings.NewReader("x"), 1, s3client.PutOptions{IfNoneMatch: true}); !errors.Is(err, s3client.ErrPreconditionFailed) {
		t.Fatalf("conditional put over existing key: %v", err)
	}
}

func TestMultipartWithChecksums(t *testing.T) {
	srv := s3test.StartMinIO(t)
	_, c := srv.Bucket(t)
	ctx := context.Background()
	id, err := c.CreateMultipartUpload(ctx, "big", s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p1 := bytes.Repeat([]byte("a"), 5<<20)
	p2 := []byte("tail")
	cp1, err := c.UploadPart(ctx, "big", id, 1, bytes.NewReader(p1), int64(len(p1)))
	if err != nil {
		t.Fatal(err)
	}
	cp2, err := c.UploadPart(ctx, "big", id, 2, bytes.NewReader(p2), int64(len(p2)))
	if err != nil {
		t.Fatal(err)
	}
	if cp1.ChecksumCRC32C == "" {
		t.Fatalf("part without checksum: %+v", cp1)
	}
	etag, err := c.CompleteMultipartUpload(ctx, "big", id, []s3client.CompletedPart{cp1, cp2}, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.Trim(etag, `"`), "-2") {
		t.Fatalf("etag %s", etag)
	}
	got := s3test.GetObject(t, c, "big")
	if len(got) != len(p1)+len(p2) {
		t.Fatalf("size %d", len(got))
	}
}

func TestCompleteErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
	}{
		{"error after whitespace", "\n  \n   " + s3test.ErrorBody("InternalError", "We encountered an internal error.")},
		{"empty body", ""},
		{"truncated result", `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Loca`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ft := faultClient(t, 1)
			ctx := context.Background()
			id, p := onePartUpload(t, c, "k")
			f := s3test.Fault{Body: tc.body}
			if tc.body == "" {
				f = s3test.Fault{Empty: true}
			}
			ft.Add(s3test.Rule{Op: "CompleteMultipartUpload", Fault: f})
			_, err := c.CompleteMultipartUpload(ctx, "k", id, []s3client.CompletedPart{p}, s3client.PutOptions{})
			if err == nil {
				t.Fatal("Complete succeeded on a bad 200 answer")
			}
			t.Logf("error: %v (code %q)", err, s3client.Code(err))
		})
	}
}

// TestExclusiveWriteFallback: on a store that answers conditional writes
// with NotImplemented, exclusive writes fall back to a HEAD check: a missing
// key is written, an existing one answers ErrPreconditionFailed, and later
// exclusive writes skip the condition.
func TestExclusiveWriteFallback(t *testing.T) {
	c, ft := faultClient(t, 0)
	ctx := context.Background()
	conditional := ft.Add(s3test.Rule{
		Match: func(r *http.Request) bool { return r.Header.Get("If-None-Match") != "" },
		Fault: s3test.Fault{Status: 501, Code: "NotImplemented"},
	})

	if !c.ConditionalWrites() {
		t.Fatal("a new client should try conditional writes")
	}
	if _, err := c.Put(ctx, "lock", strings.NewReader("one"), 3, s3client.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("exclusive put of a new key: %v", err)
	}
	if c.ConditionalWrites() {
		t.Fatal("after NotImplemented the client should use the HEAD check")
	}
	if got := string(s3test.GetObject(t, c, "lock")); got != "one" {
		t.Fatalf("lock = %q", got)
	}
	if _, err := c.Put(ctx, "lock", strings.NewReader("two"), 3, s3client.PutOptions{IfNoneMatch: true}); !errors.Is(err, s3client.ErrPreconditionFailed) {
		t.Fatalf("exclusive put over an existing key: %v, want ErrPreconditionFailed", err)
	}
	id, p := onePartUpload(t, c, "big")
	if _, err := c.CompleteMultipartUpload(ctx, "big", id, []s3client.CompletedPart{p}, s3client.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("exclusive complete of a new key: %v", err)
	}
	if hits := ft.Hits(conditional); hits != 1 {
		t.Fatalf("%d conditional requests refused; want 1 (later writes skip the condition)", hits)
	}
}

// onePartUpload starts a multipart upload of key with one 1-byte part.
func onePartUpload(t *testing.T, c *s3client.Client, key string) (string, s3client.CompletedPart) {
	t.Helper()
	ctx := context.Background()
	id, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.UploadPart(ctx, key, id, 1, strings.NewReader("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	return id, p
}

// faultClient starts MinIO with a bucket for the test and returns a client
// whose transport injects the faults added to ft; maxAttempts 0 keeps the
// client's default retries.
func faultClient(t *testing.T, maxAttempts int) (*s3client.Client, *s3test.FaultTransport) {
	t.Helper()
	srv := s3test.StartMinIO(t)
	name := s3test.BucketName(t.Name())
	srv.CreateBucket(t, name)
	ft := s3test.NewFaultTransport(nil)
	cfg := srv.Config(name)
	cfg.WrapTransport = ft.Wrap
	cfg.MaxAttempts = maxAttempts
	return srv.Client(t, cfg), ft
}
