package s3client_test

import (
	"bytes"
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// captureHeaders runs every operation of the client built from cfg through
// a transport that records each request's headers and answers 400 without
// sending it anywhere: what the client sends does not depend on a server.
func captureHeaders(t *testing.T, set func(*s3client.Config)) map[string]http.Header {
	t.Helper()
	setEnv(t)
	var mu sync.Mutex
	seen := map[string]http.Header{}
	ft := s3test.NewFaultTransport(nil)
	ft.Add(s3test.Rule{
		Match: func(r *http.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := seen[s3test.Op(r)]; !ok {
				seen[s3test.Op(r)] = r.Header.Clone()
			}
			return true
		},
		Fault: s3test.Fault{Status: http.StatusBadRequest, Code: "InvalidRequest"},
	})
	cfg := s3client.Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", Region: "us-east-1", ForcePathStyle: true,
		MaxAttempts: 1, WrapTransport: ft.Wrap}
	set(&cfg)
	c, err := s3client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := func() *bytes.Reader { return bytes.NewReader([]byte("data")) }
	_ = c.HeadBucket(ctx)
	_, _ = c.List(ctx, "", "/", "", 0)
	_, _ = c.Head(ctx, "k")
	_, _ = c.GetRange(ctx, "k", 0, 4, "")
	_, _ = c.Put(ctx, "k", body(), 4, s3client.PutOptions{})
	_, _ = c.CreateMultipartUpload(ctx, "k", s3client.PutOptions{})
	_, _ = c.UploadPart(ctx, "k", "id", 1, body(), 4)
	_, _ = c.UploadPartCopy(ctx, "src", "", "k", "id", 2, 0, 3)
	_, _ = c.CompleteMultipartUpload(ctx, "k", "id", []s3client.CompletedPart{{Number: 1, ETag: `"e"`}}, s3client.PutOptions{})
	_ = c.AbortMultipartUpload(ctx, "k", "id")
	_, _ = c.ListMultipartUploads(ctx, "")
	_, _ = c.Copy(ctx, "src", "k", s3client.CopyOptions{})
	_ = c.Delete(ctx, "k")
	_ = c.DeleteMany(ctx, []string{"k", "l"})
	mu.Lock()
	defer mu.Unlock()
	for _, op := range []string{"HeadBucket", "ListObjectsV2", "HeadObject", "GetObject", "PutObject", "CreateMultipartUpload",
		"UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload", "ListMultipartUploads",
		"CopyObject", "DeleteObject", "DeleteObjects"} {
		if seen[op] == nil {
			t.Fatalf("no %s request was sent (saw %v)", op, ft.Ops())
		}
	}
	return seen
}

// newObjectOps are the requests that make an object: they carry its
// encryption and storage class (a copy's apply to the destination).
var newObjectOps = map[string]bool{"PutObject": true, "CreateMultipartUpload": true, "CopyObject": true}

// TestAWSOptionHeaders: --sse, --sse-kms-key-id, --storage-class,
// --requester-pays and --no-sign-request are on every request that needs
// them, and on no other.
func TestAWSOptionHeaders(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*s3client.Config)
		header string
		want   func(op string) string // "" for absent
	}{
		{"sse kms", func(c *s3client.Config) { c.SSE = s3client.SSEKMS; c.SSEKMSKeyID = "arn:aws:kms:us-east-1:1:key/k" },
			"X-Amz-Server-Side-Encryption", func(op string) string { return pick(newObjectOps[op], "aws:kms") }},
		{"sse kms key", func(c *s3client.Config) { c.SSE = s3client.SSEKMS; c.SSEKMSKeyID = "arn:aws:kms:us-east-1:1:key/k" },
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", func(op string) string { return pick(newObjectOps[op], "arn:aws:kms:us-east-1:1:key/k") }},
		{"sse aes256", func(c *s3client.Config) { c.SSE = s3client.SSEAES256 },
			"X-Amz-Server-Side-Encryption", func(op string) string { return pick(newObjectOps[op], "AES256") }},
		{"sse aes256 no key", func(c *s3client.Config) { c.SSE = s3client.SSEAES256 },
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", func(string) string { return "" }},
		{"no sse", func(*s3client.Config) {},
			"X-Amz-Server-Side-Encryption", func(string) string { return "" }},
		{"storage class", func(c *s3client.Config) { c.StorageClass = "STANDARD_IA" },
			"X-Amz-Storage-Class", func(op string) string { return pick(newObjectOps[op], "STANDARD_IA") }},
		{"requester pays", func(c *s3client.Config) { c.RequesterPays = true },
			"X-Amz-Request-Payer", func(op string) string { return pick(op != "HeadBucket", "requester") }},
		{"no requester pays", func(*s3client.Config) {},
			"X-Amz-Request-Payer", func(string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for op, h := range captureHeaders(t, tc.set) {
				if got, want := h.Get(tc.header), tc.want(op); got != want {
					t.Errorf("%s: %s = %q, want %q", op, tc.header, got, want)
				}
			}
		})
	}
}

func pick(cond bool, v string) string {
	if cond {
		return v
	}
	return ""
}

// TestNoSignRequest: an anonymous client signs nothing; a default one signs
// everything.
func TestNoSignRequest(t *testing.T) {
	for op, h := range captureHeaders(t, func(c *s3client.Config) { c.Anonymous = true }) {
		if a := h.Get("Authorization"); a != "" {
			t.Errorf("%s is signed with --no-sign-request: %.30s...", op, a)
		}
	}
	for op, h := range captureHeaders(t, func(*s3client.Config) {}) {
		if !strings.HasPrefix(h.Get("Authorization"), "AWS4-HMAC-SHA256") {
			t.Errorf("%s is not signed by default", op)
		}
	}
}

// checksumHeaders lists the checksum headers of h, names in lower case.
func checksumHeaders(h http.Header) []string {
	var names []string
	for name := range h {
		n := strings.ToLower(name)
		if strings.HasPrefix(n, "x-amz-checksum-") || n == "x-amz-sdk-checksum-algorithm" || n == "x-amz-trailer" {
			names = append(names, n+"="+h.Get(name))
		}
	}
	return names
}

// TestChecksumHeaders: --checksum picks the checksum of every upload;
// none sends none, except on DeleteObjects, where S3 requires one.
func TestChecksumHeaders(t *testing.T) {
	for _, tc := range []struct {
		checksum string
		header   string // of PutObject, UploadPart and DeleteObjects
		algo     string // CreateMultipartUpload's x-amz-checksum-algorithm
	}{
		{"", "x-amz-checksum-crc32c", "CRC32C"},
		{s3client.ChecksumCRC32C, "x-amz-checksum-crc32c", "CRC32C"},
		{s3client.ChecksumCRC64NVME, "x-amz-checksum-crc64nvme", "CRC64NVME"},
		{s3client.ChecksumNone, "", ""},
	} {
		t.Run("checksum="+tc.checksum, func(t *testing.T) {
			seen := captureHeaders(t, func(c *s3client.Config) { c.Checksum = tc.checksum })
			for _, op := range []string{"PutObject", "UploadPart"} {
				got := checksumHeaders(seen[op])
				want := []string{}
				if tc.header != "" {
					want = []string{tc.header, "x-amz-sdk-checksum-algorithm=" + tc.algo}
				}
				if len(got) != len(want) || !hasAll(got, want) {
					t.Errorf("%s: checksum headers %v, want %v", op, got, want)
				}
			}
			if got := seen["CreateMultipartUpload"].Get("X-Amz-Checksum-Algorithm"); got != tc.algo {
				t.Errorf("CreateMultipartUpload: x-amz-checksum-algorithm %q, want %q", got, tc.algo)
			}
			got := checksumHeaders(seen["DeleteObjects"])
			if !hasAll(got, []string{"x-amz-checksum-"}) || tc.header != "" && !hasAll(got, []string{tc.header}) {
				t.Errorf("DeleteObjects: checksum headers %v, want %q (one is required)", got, tc.header)
			}
		})
	}
}

// hasAll says whether every prefix in want starts one of got.
func hasAll(got, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			return false
		}
	}
	return true
}

// TestBadAWSOptions: New refuses values S3 would refuse on every write.
func TestBadAWSOptions(t *testing.T) {
	setEnv(t)
	for _, set := range []func(*s3client.Config){
		func(c *s3client.Config) { c.Checksum = "md5" },
		func(c *s3client.Config) { c.SSE = "aws:kms:dsse" },
		func(c *s3client.Config) { c.SSEKMSKeyID = "k" },
		func(c *s3client.Config) { c.CABundle = "/nonexistent/ca.pem" },
	} {
		cfg := s3client.Config{Bucket: "b", Endpoint: "http://127.0.0.1:1"}
		set(&cfg)
		if _, err := s3client.New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestProxyFromEnvironment: HTTP(S)_PROXY and NO_PROXY are honoured.
func TestProxyFromEnvironment(t *testing.T) {
	var proxy any
	cfg := s3client.Config{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		if tr, ok := rt.(*http.Transport); ok {
			proxy = tr.Proxy
		}
		return rt
	}}
	setEnv(t)
	if _, err := s3client.New(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if proxy == nil || reflect.ValueOf(proxy).Pointer() != reflect.ValueOf(http.ProxyFromEnvironment).Pointer() {
		t.Fatalf("the transport's proxy is not http.ProxyFromEnvironment")
	}
}
