package s3client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// stampTransport records when each request starts, outside any fault.
type stampTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	at   []time.Time
}

func (s *stampTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.next.RoundTrip(r)
}

func (s *stampTransport) take() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.at
	s.at = nil
	return at
}

// TestRetryBackoff: a request that fails every attempt is retried
// cfg.MaxAttempts times, and the waits between attempts grow (each in
// [d/2, d], d doubling from RetryBaseDelay) and vary between requests
// (jitter). Both for an error answer (503) and for a refused connection,
// which fails at once and so showed the SDK's default backoff (50 ms base,
// full jitter: six attempts within about a second).
func TestRetryBackoff(t *testing.T) {
	const base = 40 * time.Millisecond
	const attempts = 5
	check := func(t *testing.T, gaps [][]time.Duration) {
		t.Helper()
		for _, g := range gaps {
			if len(g) != attempts-1 {
				t.Fatalf("%d retries, want %d", len(g), attempts-1)
			}
			for i, gap := range g {
				d := base << i
				// The upper side has slack for a loaded machine (-race,
				// MinIO on the same cores); the lower side has none.
				if gap < d/2-2*time.Millisecond || gap > d+400*time.Millisecond {
					t.Errorf("wait %d = %s, want within [%s, %s] (+400ms slack)", i+1, gap, d/2, d)
				}
			}
			t.Logf("waits between attempts: %v", g)
		}
		// Jitter: the same wait differs between requests.
		for i := range gaps[0] {
			same := true
			for _, g := range gaps[1:] {
				if diff := g[i] - gaps[0][i]; diff > time.Millisecond || diff < -time.Millisecond {
					same = false
				}
			}
			if same {
				t.Errorf("wait %d is the same in every request: no jitter", i+1)
			}
		}
	}
	gapsOf := func(at []time.Time) []time.Duration {
		var g []time.Duration
		for i := 1; i < len(at); i++ {
			g = append(g, at[i].Sub(at[i-1]))
		}
		return g
	}

	t.Run("503", func(t *testing.T) {
		srv := s3test.StartMinIO(t)
		name := s3test.BucketName(t.Name())
		srv.CreateBucket(t, name)
		ft := s3test.NewFaultTransport(nil)
		stamps := &stampTransport{}
		cfg := srv.Config(name)
		cfg.MaxAttempts, cfg.RetryBaseDelay, cfg.RetryMaxDelay = attempts, base, time.Second
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { stamps.next = ft.Wrap(rt); return stamps }
		c := srv.Client(t, cfg)
		ft.Add(s3test.Rule{Op: "HeadObject", Fault: s3test.Fault{Status: 503, Code: "ServiceUnavailable"}})
		var gaps [][]time.Duration
		for range 4 {
			if _, err := c.Head(context.Background(), "k"); err == nil {
				t.Fatal("Head succeeded against 503")
			}
			gaps = append(gaps, gapsOf(stamps.take()))
		}
		check(t, gaps)
	})

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now: every dial is refused
		stamps := &stampTransport{}
		cfg := s3client.Config{Bucket: "b", Endpoint: "http://" + addr, Region: "us-east-1", ForcePathStyle: true,
			MaxAttempts: attempts, RetryBaseDelay: base, RetryMaxDelay: time.Second,
			WrapTransport: func(rt http.RoundTripper) http.RoundTripper { stamps.next = rt; return stamps }}
		setEnv(t)
		c, err := s3client.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		var gaps [][]time.Duration
		for range 4 {
			_, err := c.Head(context.Background(), "k")
			if err == nil {
				t.Fatal("Head succeeded with nothing listening")
			}
			var errno syscall.Errno
			if errors.As(err, &errno) {
				t.Errorf("the error exposes errno %v (an application would see it instead of EIO): %v", errno, err)
			}
			gaps = append(gaps, gapsOf(stamps.take()))
		}
		check(t, gaps)
	})
}

// TestBackoffTotal: the documented worst case of the default policy.
func TestBackoffTotal(t *testing.T) {
	if got := (s3client.Config{}).MaxBackoffTotal(); got != 15500*time.Millisecond {
		t.Fatalf("default MaxBackoffTotal = %s, want 15.5s (0.5+1+2+4+8)", got)
	}
	if got := (s3client.Config{MaxAttempts: 8}).MaxBackoffTotal(); got != 51500*time.Millisecond {
		t.Fatalf("MaxBackoffTotal with 8 attempts = %s, want 51.5s (0.5+...+16+20)", got)
	}
}

// TestUploadPartRetriesBrokenTransfers: a part still in memory is sent
// again after the transfer broke (IncompleteBody, ClientDisconnected,
// RequestTimeout, a reset before or after the server handled it), and the
// object assembled from it is whole.
func TestUploadPartRetriesBrokenTransfers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault s3test.Fault
	}{
		{"IncompleteBody", s3test.Fault{Status: 400, Code: "IncompleteBody"}},
		{"ClientDisconnected", s3test.Fault{Status: 400, Code: "ClientDisconnected"}},
		{"RequestTimeout", s3test.Fault{Status: 400, Code: "RequestTimeout"}},
		{"reset", s3test.Fault{Reset: true}},
		{"reset after send", s3test.Fault{Reset: true, AfterSend: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ft := faultClientWith(t, func(cfg *s3client.Config) {
				cfg.MaxAttempts, cfg.RetryBaseDelay = 3, 10*time.Millisecond
			})
			ctx := context.Background()
			id, err := c.CreateMultipartUpload(ctx, "k", s3client.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rule := ft.Add(s3test.Rule{Op: "UploadPart", Times: 2, Fault: tc.fault})
			part := bytes.Repeat([]byte("0123456789abcdef"), 6<<16) // 6 MiB
			cp, err := c.UploadPart(ctx, "k", id, 1, bytes.NewReader(part), int64(len(part)))
			if err != nil {
				t.Fatalf("UploadPart after %d faults: %v", ft.Hits(rule), err)
			}
			if ft.Hits(rule) != 2 || ft.Count("UploadPart") != 3 {
				t.Fatalf("%d faults, %d attempts; want 2 and 3", ft.Hits(rule), ft.Count("UploadPart"))
			}
			if _, err := c.CompleteMultipartUpload(ctx, "k", id, []s3client.CompletedPart{cp}, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := s3test.GetObject(t, c, "k"); !bytes.Equal(got, part) {
				t.Fatalf("object of %d bytes differs from the part (%d bytes)", len(got), len(part))
			}
		})
	}
}

// TestResetIsNotErrno: a reset that outlasts the retries reaches the
// caller as an S3 error, not as ECONNRESET (which core.Errno would pass on).
func TestResetIsNotErrno(t *testing.T) {
	c, ft := faultClientWith(t, func(cfg *s3client.Config) { cfg.MaxAttempts, cfg.RetryBaseDelay = 2, time.Millisecond })
	ft.Add(s3test.Rule{Op: "HeadObject", Fault: s3test.Fault{Reset: true}})
	_, err := c.Head(context.Background(), "k")
	var errno syscall.Errno
	if err == nil || errors.As(err, &errno) {
		t.Fatalf("Head over resets: %v (errno %v)", err, errno)
	}
	var e *s3client.Error
	if !errors.As(err, &e) || e.Op != "HeadObject" {
		t.Fatalf("Head over resets: %v is not an *s3client.Error", err)
	}
}

// TestHungServer: a server that accepts connections and never answers
// (a frozen process) fails every call within its bound: small calls and a
// GetObject's headers within RequestTimeout, retries included; a part
// upload within MaxAttempts request timeouts plus the backoff.
func TestHungServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never read or answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	const timeout = 500 * time.Millisecond
	setEnv(t)
	c, err := s3client.New(context.Background(), s3client.Config{Bucket: "b", Endpoint: "http://" + l.Addr().String(),
		Region: "us-east-1", ForcePathStyle: true, MaxAttempts: 3, RequestTimeout: timeout, RetryBaseDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		limit time.Duration
		call  func() error
	}{
		{"Head", timeout, func() error { _, err := c.Head(ctx, "k"); return err }},
		{"List", timeout, func() error { _, err := c.List(ctx, "", "/", "", 0); return err }},
		{"Delete", timeout, func() error { return c.Delete(ctx, "k") }},
		{"GetRange", timeout, func() error { _, err := c.GetRange(ctx, "k", 0, 10, ""); return err }},
		{"UploadPart", 3*timeout + 200*time.Millisecond, func() error {
			_, err := c.UploadPart(ctx, "k", "id", 1, bytes.NewReader(make([]byte, 1<<20)), 1<<20)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call()
			took := time.Since(start)
			t.Logf("%s failed after %s: %v", tc.name, took.Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("succeeded against a server that never answers")
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("a timeout reads as a cancellation (EINTR): %v", err)
			}
			if took > tc.limit+300*time.Millisecond {
				t.Errorf("took %s, bound %s", took, tc.limit)
			}
		})
	}
}

// faultClientWith is faultClient with the configuration adjusted by set.
func faultClientWith(t *testing.T, set func(*s3client.Config)) (*s3client.Client, *s3test.FaultTransport) {
	t.Helper()
	srv := s3test.StartMinIO(t)
	name := s3test.BucketName(t.Name())
	srv.CreateBucket(t, name)
	ft := s3test.NewFaultTransport(nil)
	cfg := srv.Config(name)
	cfg.WrapTransport = ft.Wrap
	set(&cfg)
	return srv.Client(t, cfg), ft
}

// setEnv gives the SDK test credentials without a MinIO.
func setEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
}

// TestStalledTransfers: the idle timeout ends a transfer that stops moving
// in either direction: a part whose body the server stops reading, and a
// GetObject body that stops arriving after its headers. The read error is
// an *s3client.Error, not a bare ECONNRESET or timeout.
func TestStalledTransfers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go func() {
				// Read the request's head only; answer a GET with a
				// promise of 1 MiB and 10 bytes of it; never read a body.
				buf := make([]byte, 4096)
				n, _ := conn.Read(buf)
				if bytes.HasPrefix(buf[:n], []byte("GET ")) {
					_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nETag: \"x\"\r\n\r\n0123456789"))
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	const idle = 500 * time.Millisecond
	setEnv(t)
	c, err := s3client.New(context.Background(), s3client.Config{Bucket: "b", Endpoint: "http://" + l.Addr().String(),
		Region: "us-east-1", ForcePathStyle: true, MaxAttempts: 2, RequestTimeout: 5 * time.Second, IdleTimeout: idle,
		RetryBaseDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("UploadPart body not read", func(t *testing.T) {
		start := time.Now()
		body := make([]byte, 64<<20) // more than the socket buffers take
		_, err := c.UploadPart(ctx, "k", "id", 1, bytes.NewReader(body), int64(len(body)))
		took := time.Since(start)
		t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
		if err == nil {
			t.Fatal("succeeded")
		}
		if limit := 2*idle + time.Second; took > limit {
			t.Errorf("took %s, bound %s (two attempts of one idle timeout, and a backoff)", took, limit)
		}
	})
	t.Run("GetObject body stalls", func(t *testing.T) {
		rc, err := c.GetRange(ctx, "k", 0, -1, "")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		start := time.Now()
		buf := make([]byte, 1<<20)
		var readErr error
		for readErr == nil {
			_, readErr = rc.Read(buf)
		}
		took := time.Since(start)
		t.Logf("read failed after %s: %v", took.Round(time.Millisecond), readErr)
		if took > idle+500*time.Millisecond {
			t.Errorf("took %s, idle timeout %s", took, idle)
		}
		var e *s3client.Error
		var errno syscall.Errno
		if !errors.As(readErr, &e) || errors.As(readErr, &errno) {
			t.Errorf("read error %v: want an *s3client.Error without errno", readErr)
		}
	})
}
