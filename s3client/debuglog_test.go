package s3client_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// syncBuffer is a log sink shared by the SDK's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDebugLogHasNoSecrets: with DebugLog set, a workload of every kind of
// request (a retried one and a refused one included) logs one entry per
// attempt with its operation, key, status, bytes, latency and request ID,
// and neither the secret key nor any part of a signature.
func TestDebugLogHasNoSecrets(t *testing.T) {
	srv := s3test.StartMinIO(t)
	name := s3test.BucketName(t.Name())
	srv.CreateBucket(t, name)
	var out syncBuffer
	log := logrus.New()
	log.SetOutput(&out)
	log.SetLevel(logrus.DebugLevel)
	ft := s3test.NewFaultTransport(nil)
	cfg := srv.Config(name)
	cfg.DebugLog = log
	cfg.WrapTransport = ft.Wrap
	cfg.RetryBaseDelay = 1e6
	c := srv.Client(t, cfg)
	ctx := context.Background()

	ft.Add(s3test.Rule{Op: "PutObject", Times: 1, Fault: s3test.Fault{Status: 503, Code: "SlowDown"}})
	if _, err := c.Put(ctx, "dir/small", strings.NewReader("hello"), 5, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	id, p := onePartUpload(t, c, "dir/big")
	if _, err := c.CompleteMultipartUpload(ctx, "dir/big", id, []s3client.CompletedPart{p}, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = s3test.GetObject(t, c, "dir/small")
	if _, err := c.List(ctx, "dir/", "/", "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(ctx, "dir/small", "dir/copy", s3client.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "dir/copy"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, "dir/missing"); err == nil {
		t.Fatal("Head of a missing key succeeded")
	}
	// A request signed with a wrong secret: S3 refuses the signature.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-"+s3test.SecretKey)
	bad, err := s3client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Head(ctx, "dir/small"); err == nil {
		t.Fatal("Head with a wrong secret succeeded")
	}
	if _, err := bad.List(ctx, "dir/", "/", "", 0); err == nil {
		t.Fatal("List with a wrong secret succeeded")
	}

	text := out.String()
	for _, secret := range []string{s3test.SecretKey, "Authorization", "authorization", "Signature=", "X-Amz-Signature", "signature=",
		"AWS4-HMAC-SHA256", "Credential=", "X-Amz-Security-Token", "x-amz-content-sha256"} {
		if strings.Contains(text, secret) {
			t.Errorf("the debug log holds %q", secret)
		}
	}
	for _, want := range []string{
		"op=PutObject", "attempt=2", "status=503", "op=CreateMultipartUpload", "op=UploadPart", "op=CompleteMultipartUpload",
		"op=GetObject", "op=ListObjectsV2", "op=CopyObject", "op=DeleteObject", "op=HeadObject", "status=404", "status=403", "SignatureDoesNotMatch",
		"key=dir/small", "bytes_out=5", "bytes_in=5", "latency_ms=", "request_id=",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the debug log lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("debug log:\n%s", text)
	}
	if n := strings.Count(text, `msg="s3 request"`); n < 10 {
		t.Errorf("%d request entries, want one per attempt", n)
	}
}
