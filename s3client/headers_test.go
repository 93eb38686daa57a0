package s3client_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// sentHeaders runs call on a client built from cfg (defaults: none) and
// returns the headers of its first request, which is answered 400 without
// reaching a server.
func sentHeaders(t *testing.T, storageClass, sse string, call func(ctx context.Context, c *s3client.Client)) http.Header {
	t.Helper()
	setEnv(t)
	var mu sync.Mutex
	var first http.Header
	ft := s3test.NewFaultTransport(nil)
	ft.Add(s3test.Rule{
		Match: func(r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = r.Header.Clone()
			}
			return true
		},
		Fault: s3test.Fault{Status: http.StatusBadRequest, Code: "InvalidRequest"},
	})
	c, err := s3client.New(context.Background(), s3client.Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", Region: "us-east-1",
		ForcePathStyle: true, MaxAttempts: 1, WrapTransport: ft.Wrap, StorageClass: storageClass, SSE: sse})
	if err != nil {
		t.Fatal(err)
	}
	call(context.Background(), c)
	mu.Lock()
	defer mu.Unlock()
	if first == nil {
		t.Fatal("no request was sent")
	}
	return first
}

// TestObjectHeadersSent: new objects carry the headers they are given and
// the mount's storage class and encryption where those name none; a copy
// sends the source's storage class and encryption (S3 would make it
// STANDARD with the bucket's encryption), and with REPLACE its Content-*
// headers and Expires too (S3 would drop them).
func TestObjectHeadersSent(t *testing.T) {
	const expires = "Thu, 01 Jan 2037 00:00:00 GMT"
	web := s3client.ObjectHeaders{ContentType: "text/html", CacheControl: "max-age=60", ContentEncoding: "gzip",
		ContentDisposition: "inline", ContentLanguage: "fr", Expires: expires}
	source := web
	source.StorageClass, source.SSE, source.SSEKMSKeyID = "REDUCED_REDUNDANCY", s3client.SSEKMS, "arn:aws:kms:us-east-1:1:key/k"
	standard := s3client.ObjectHeaders{StorageClass: "STANDARD"}
	webHeaders := map[string]string{"Content-Type": "text/html", "Cache-Control": "max-age=60", "Content-Encoding": "gzip",
		"Content-Disposition": "inline", "Content-Language": "fr", "Expires": expires}
	with := func(base map[string]string, extra ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	none := map[string]string{"Content-Type": "", "Cache-Control": "", "Expires": "", "X-Amz-Storage-Class": "",
		"X-Amz-Server-Side-Encryption": "", "X-Amz-Tagging": ""}
	for _, tc := range []struct {
		name              string
		storageClass, sse string // the mount's
		call              func(ctx context.Context, c *s3client.Client)
		want              map[string]string // "" for absent
	}{
		{"put with the mount's defaults", "STANDARD_IA", s3client.SSEAES256, func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Put(ctx, "k", bytes.NewReader([]byte("x")), 1, s3client.PutOptions{Headers: web, Tags: map[string]string{"b": "2 3", "a": "1"}})
		}, with(webHeaders, "X-Amz-Storage-Class", "STANDARD_IA", "X-Amz-Server-Side-Encryption", "AES256", "X-Amz-Tagging", "a=1&b=2+3")},
		{"put keeping an object's own", "STANDARD_IA", s3client.SSEAES256, func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Put(ctx, "k", bytes.NewReader([]byte("x")), 1, s3client.PutOptions{Headers: source})
		}, with(webHeaders, "X-Amz-Storage-Class", "REDUCED_REDUNDANCY", "X-Amz-Server-Side-Encryption", "aws:kms",
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "arn:aws:kms:us-east-1:1:key/k")},
		{"multipart upload", "", "", func(ctx context.Context, c *s3client.Client) {
			_, _ = c.CreateMultipartUpload(ctx, "k", s3client.PutOptions{Headers: source, Tags: map[string]string{"a": "1"}})
		}, with(webHeaders, "X-Amz-Storage-Class", "REDUCED_REDUNDANCY", "X-Amz-Server-Side-Encryption", "aws:kms", "X-Amz-Tagging", "a=1")},
		{"copy replacing metadata", "STANDARD_IA", s3client.SSEAES256, func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Copy(ctx, "src", "k", s3client.CopyOptions{ReplaceMetadata: map[string]string{"mode": "1"}, Headers: &source})
		}, with(webHeaders, "X-Amz-Metadata-Directive", "REPLACE", "X-Amz-Storage-Class", "REDUCED_REDUNDANCY",
			"X-Amz-Server-Side-Encryption", "aws:kms", "X-Amz-Tagging-Directive", "")},
		{"copy copying metadata", "STANDARD_IA", "", func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Copy(ctx, "src", "k", s3client.CopyOptions{Headers: &source})
		}, map[string]string{"X-Amz-Metadata-Directive": "", "Content-Type": "", "Cache-Control": "", "Expires": "",
			"X-Amz-Storage-Class": "REDUCED_REDUNDANCY", "X-Amz-Server-Side-Encryption": "aws:kms"}},
		{"copy of a STANDARD object, no mount class", "", "", func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Copy(ctx, "src", "k", s3client.CopyOptions{Headers: &standard})
		}, none},
		{"copy of a STANDARD object, mount class", "STANDARD_IA", "", func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Copy(ctx, "src", "k", s3client.CopyOptions{Headers: &standard})
		}, map[string]string{"X-Amz-Storage-Class": "STANDARD"}},
		{"copy without the source's headers", "STANDARD_IA", s3client.SSEAES256, func(ctx context.Context, c *s3client.Client) {
			_, _ = c.Copy(ctx, "src", "k", s3client.CopyOptions{})
		}, map[string]string{"X-Amz-Storage-Class": "STANDARD_IA", "X-Amz-Server-Side-Encryption": "AES256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sentHeaders(t, tc.storageClass, tc.sse, tc.call)
			for k, want := range tc.want {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}
