// Package s3test is the S3 test bed shared by every package's tests: it starts
// a real MinIO server on 127.0.0.1 and wraps the SDK's HTTP transport to
// inject faults. Anything that depends on the S3 contract is tested against
// MinIO, not a fake.
package s3test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
)

// Credentials of every MinIO started here. They are test-only values.
const (
	AccessKey = "bucketfs-test"
	SecretKey = "bucketfs-test-secret"
)

// Server is a running MinIO started by this process.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // data directory
	bin      string
	args     []string // the server's command line, addresses included
	logw     io.Writer
	detached bool
	env      []string // added to the server's environment

	mu       sync.Mutex    // guards cmd, done, stopped (Kill and Restart swap them)
	cmd      *exec.Cmd     // the running process
	done     chan struct{} // closed when cmd exits
	stopped  bool          // Stop was called: no restart
	stopOnce sync.Once
}

// MinIOPath finds the MinIO binary: $BUCKETFS_MINIO, else bin/minio at the
// module root, else minio on PATH. It returns "" when there is none.
func MinIOPath() string {
	if p := os.Getenv("BUCKETFS_MINIO"); p != "" {
		return p
	}
	if root := ModuleRoot(); root != "" {
		p := filepath.Join(root, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	return ""
}

// ModuleRoot returns the directory holding go.mod, found from this source file.
func ModuleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Require fails the test (with CI=true) or skips it when a prerequisite is missing.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true: a missing prerequisite fails the run; run `make test` to install it)", what)
	}
	t.Skipf("%s is missing; run `make test` to install it", what)
}

// StartMinIO starts MinIO for the test and stops it at cleanup.
func StartMinIO(t testing.TB) *Server {
	t.Helper()
	return startMinIO(t, nil)
}

// KMSKeyName is the KMS key of a server StartMinIOWithKMS started.
const KMSKeyName = "bucketfs-test-key"

// StartMinIOWithKMS starts MinIO with a static KMS key (KMSKeyName,
// MINIO_KMS_SECRET_KEY), so that it accepts SSE-KMS, and stops it at
// cleanup. The key is a fixed test value.
func StartMinIOWithKMS(t testing.TB) *Server {
	t.Helper()
	key := base64.StdEncoding.EncodeToString([]byte("bucketfs-test-kms-key-32-bytes!!"))
	return startMinIO(t, []string{"MINIO_KMS_SECRET_KEY=" + KMSKeyName + ":" + key})
}

func startMinIO(t testing.TB, env []string) *Server {
	t.Helper()
	bin := MinIOPath()
	Require(t, bin != "", "MinIO (bin/minio)")
	s, err := start(bin, t.TempDir(), io.Discard, false, env)
	if err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts MinIO from bin with its data in dir, logging to logw, and
// waits until it answers. It dies with this process; the caller must call Stop.
func Start(bin, dir string, logw io.Writer) (*Server, error) {
	return start(bin, dir, logw, false, nil)
}

// StartDetached is Start for a server that outlives this process (make
// demo): stop it later by its PID.
func StartDetached(bin, dir string, logw io.Writer) (*Server, error) {
	return start(bin, dir, logw, true, nil)
}

func start(bin, dir string, logw io.Writer, detached bool, env []string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		consolePort, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, bin: bin, logw: logw, detached: detached, env: env,
			args: []string{"server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
				"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort), dir}}
		if err := s.spawn(); err != nil {
			return nil, err
		}
		if err := s.waitReady(30 * time.Second); err != nil {
			s.Stop()
			lastErr = err
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

// spawn starts the server process with s's command line.
func (s *Server) spawn() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	cmd.Env = append(cmd.Env, s.env...)
	cmd.Stdout, cmd.Stderr = s.logw, s.logw
	// Its own process group, so a test's signal to us does not reach it
	// before we stop it ourselves.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// process returns the running process and its exit channel.
func (s *Server) process() (*exec.Cmd, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.done
}

// Freeze stops the server with SIGSTOP: connections stay open and nothing
// answers, as with a hung endpoint. Thaw resumes it.
func (s *Server) Freeze() error {
	cmd, _ := s.process()
	return cmd.Process.Signal(syscall.SIGSTOP)
}

// Thaw resumes a server stopped by Freeze (SIGCONT).
func (s *Server) Thaw() error {
	cmd, _ := s.process()
	return cmd.Process.Signal(syscall.SIGCONT)
}

// Kill kills the server (SIGKILL) and waits for it to exit: connections
// are reset and new ones refused until Restart.
func (s *Server) Kill() {
	cmd, done := s.process()
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again after Kill, on the same port with the
// same data, and waits until it answers (within limit).
func (s *Server) Restart(limit time.Duration) error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return fmt.Errorf("the server was stopped")
	}
	if err := s.spawn(); err != nil {
		return err
	}
	return s.waitReady(limit)
}

func (s *Server) waitReady(limit time.Duration) error {
	_, done := s.process()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("MinIO exited before it was ready")
		default:
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("MinIO at %s not ready after %s", s.Endpoint, limit)
}

// Stop stops the server it started (by PID) and waits for it to exit.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		cmd, done := s.cmd, s.done
		s.mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			return
		}
		select {
		case <-done:
			return // killed already
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen server cannot act on SIGTERM
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// PID returns the server's process ID.
func (s *Server) PID() int {
	cmd, _ := s.process()
	return cmd.Process.Pid
}

// SetEnv points the AWS SDK's default credential chain at this server's
// credentials for the rest of the test.
func (s *Server) SetEnv(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// Env returns the environment a child process needs to reach this server
// with the default credential chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Config returns a client configuration for bucket on this server.
func (s *Server) Config(bucket string) s3client.Config {
	return s3client.Config{Bucket: bucket, Endpoint: s.Endpoint, Region: "us-east-1", ForcePathStyle: true}
}

// Client returns a client for bucket with the test credentials (set with SetEnv).
func (s *Server) Client(t testing.TB, cfg s3client.Config) *s3client.Client {
	t.Helper()
	s.SetEnv(t)
	c, err := s3client.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("s3client.New: %v", err)
	}
	return c
}

// CreateBucket creates a bucket on this server.
func (s *Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	if err := s.Client(t, s.Config(bucket)).CreateBucket(context.Background()); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
}

// Bucket creates a fresh bucket with a name derived from the test and
// returns a client for it.
func (s *Server) Bucket(t testing.TB) (string, *s3client.Client) {
	t.Helper()
	name := BucketName(t.Name())
	s.CreateBucket(t, name)
	return name, s.Client(t, s.Config(name))
}

// BucketName makes a valid, unique bucket name from a test name.
func BucketName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%d", strings.Trim(name, "-"), time.Now().UnixNano()%1e9)
}

// PutObjects writes objects (key -> body) with bounded parallelism.
func PutObjects(t testing.TB, c s3client.API, objects map[string][]byte) {
	t.Helper()
	type kv struct {
		k string
		v []byte
	}
	work := make(chan kv)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if _, err := c.Put(context.Background(), o.k, bytes.NewReader(o.v), int64(len(o.v)), s3client.PutOptions{}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for k, v := range objects {
		work <- kv{k, v}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("loading objects: %v", err)
	default:
	}
}

// GetObject reads a whole object directly, bypassing any mount.
func GetObject(t testing.TB, c s3client.API, key string) []byte {
	t.Helper()
	rc, err := c.GetRange(context.Background(), key, 0, -1, "")
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return b
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
