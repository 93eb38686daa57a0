package s3client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStorageClassOnMinIO: objects written by Put, a multipart upload
// and a copy are stored in the configured class (MinIO knows STANDARD and
// REDUCED_REDUNDANCY), as HeadObject reports it.
func TestStorageClassOnMinIO(t *testing.T) {
	srv := s3test.StartMinIO(t)
	for _, class := range []string{"STANDARD", "REDUCED_REDUNDANCY"} {
		t.Run(class, func(t *testing.T) {
			name := s3test.BucketName(t.Name())
			srv.CreateBucket(t, name)
			var mu sync.Mutex
			stored := map[string]string{} // key: x-amz-storage-class of its HEAD
			cfg := srv.Config(name)
			cfg.StorageClass = class
			cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(r *http.Request) (*http.Response, error) {
					resp, err := next.RoundTrip(r)
					if err == nil && s3test.Op(r) == "HeadObject" {
						mu.Lock()
						stored[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] = resp.Header.Get("X-Amz-Storage-Class")
						mu.Unlock()
					}
					return resp, err
				})
			}
			c := srv.Client(t, cfg)
			ctx := context.Background()
			if _, err := c.Put(ctx, "put", strings.NewReader("x"), 1, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			id, p := onePartUpload(t, c, "mpu")
			if _, err := c.CompleteMultipartUpload(ctx, "mpu", id, []s3client.CompletedPart{p}, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Copy(ctx, "put", "copy", s3client.CopyOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"put", "mpu", "copy"} {
				if _, err := c.Head(ctx, key); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				got := stored[key]
				mu.Unlock()
				// S3 and MinIO leave out the header for STANDARD.
				if got != class && !(class == "STANDARD" && got == "") {
					t.Errorf("%s is stored as %q, want %s", key, got, class)
				}
			}
		})
	}
}

// TestMultipartChecksumsOnMinIO: a two-part upload, one mixing a copied
// and an uploaded part, a Put and a DeleteMany work with every --checksum.
func TestMultipartChecksumsOnMinIO(t *testing.T) {
	srv := s3test.StartMinIO(t)
	for _, sum := range []string{s3client.ChecksumCRC32C, s3client.ChecksumCRC64NVME, s3client.ChecksumNone} {
		t.Run(sum, func(t *testing.T) {
			name := s3test.BucketName(t.Name())
			srv.CreateBucket(t, name)
			cfg := srv.Config(name)
			cfg.Checksum = sum
			ft := s3test.NewFaultTransport(nil)
			cfg.WrapTransport = ft.Wrap
			var mu sync.Mutex
			var sent []string
			ft.Add(s3test.Rule{Match: func(r *http.Request) bool {
				mu.Lock()
				defer mu.Unlock()
				for _, h := range checksumHeaders(r.Header) {
					sent = append(sent, s3test.Op(r)+":"+h[:strings.Index(h, "=")])
				}
				return false
			}})
			c := srv.Client(t, cfg)
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
			if _, err := c.CompleteMultipartUpload(ctx, "big", id, []s3client.CompletedPart{cp1, cp2}, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := s3test.GetObject(t, c, "big"); !bytes.Equal(got, append(p1, p2...)) {
				t.Fatalf("read back %d bytes, not what was written", len(got))
			}
			// An upload mixing a copied part and an uploaded one (a write
			// into the middle of an existing object).
			cid, err := c.CreateMultipartUpload(ctx, "mixed", s3client.PutOptions{CopiedParts: true})
			if err != nil {
				t.Fatal(err)
			}
			cp1, err = c.UploadPartCopy(ctx, "big", "", "mixed", cid, 1, 0, int64(len(p1))-1)
			if err != nil {
				t.Fatal(err)
			}
			if cp2, err = c.UploadPart(ctx, "mixed", cid, 2, bytes.NewReader(p2), int64(len(p2))); err != nil {
				t.Fatal(err)
			}
			cp1.ChecksumCRC32C, cp2.ChecksumCRC32C = "", "" // as the uploader does for copied uploads
			if _, err := c.CompleteMultipartUpload(ctx, "mixed", cid, []s3client.CompletedPart{cp1, cp2}, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := s3test.GetObject(t, c, "mixed"); !bytes.Equal(got, append(p1, p2...)) {
				t.Fatalf("read back %d bytes of the mixed upload, not what was written", len(got))
			}
			if _, err := c.Put(ctx, "small", strings.NewReader("x"), 1, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteMany(ctx, []string{"big", "mixed", "small"}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range sent {
				if sum == s3client.ChecksumNone && !strings.HasPrefix(s, "DeleteObjects:") {
					t.Errorf("checksum none sent %s", s)
				}
			}
			if sum != s3client.ChecksumNone && !strings.Contains(strings.Join(sent, " "), "UploadPart:x-amz-checksum-"+sum) {
				t.Errorf("no %s checksum on UploadPart: %v", sum, sent)
			}
		})
	}
}

// selfSignedCA writes a PEM certificate for 127.0.0.1 to dir and returns
// its path and the TLS certificate to serve.
func selfSignedCA(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bucketfs test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestCABundle: behind a TLS proxy with a private CA, the client connects
// with --ca-bundle or AWS_CA_BUNDLE (or without verification), and fails
// without them.
func TestCABundle(t *testing.T) {
	srv := s3test.StartMinIO(t)
	name := s3test.BucketName(t.Name())
	srv.CreateBucket(t, name)
	bundle, cert := selfSignedCA(t, t.TempDir())
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	proxy.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	proxy.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	proxy.StartTLS()
	t.Cleanup(proxy.Close)

	for _, tc := range []struct {
		name   string
		set    func(*s3client.Config)
		env    string // AWS_CA_BUNDLE
		wantOK bool
	}{
		{"no bundle", func(*s3client.Config) {}, "", false},
		{"ca-bundle", func(c *s3client.Config) { c.CABundle = bundle }, "", true},
		{"AWS_CA_BUNDLE", func(*s3client.Config) {}, bundle, true},
		{"no-verify-ssl", func(c *s3client.Config) { c.InsecureSkipVerify = true }, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetEnv(t)
			t.Setenv("AWS_CA_BUNDLE", tc.env)
			if tc.env == "" {
				os.Unsetenv("AWS_CA_BUNDLE")
			}
			cfg := srv.Config(name)
			cfg.Endpoint = proxy.URL
			cfg.MaxAttempts = 1
			tc.set(&cfg)
			c, err := s3client.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, err = c.Put(ctx, "k", strings.NewReader("over tls"), 8, s3client.PutOptions{})
			switch {
			case tc.wantOK && err != nil:
				t.Fatalf("put through the TLS proxy: %v", err)
			case !tc.wantOK && err == nil:
				t.Fatal("put through the TLS proxy succeeded without trusting its CA")
			case !tc.wantOK && !strings.Contains(err.Error(), "certificate"):
				t.Fatalf("err = %v, want a certificate error", err)
			}
			if tc.wantOK {
				if got := s3test.GetObject(t, c, "k"); string(got) != "over tls" {
					t.Fatalf("read back %q", got)
				}
			}
		})
	}
}
