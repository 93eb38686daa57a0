// Package e2e holds bucketfs's end-to-end tests: a real MinIO, a real kernel
// mount, and real tools (dd, cp, rsync, tar) run on it.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// requireFUSE fails (CI=true) or skips the test without /dev/fuse and root.
func requireFUSE(t testing.TB) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	s3test.Require(t, err == nil, "/dev/fuse")
	s3test.Require(t, os.Geteuid() == 0, "root (to mount with go-fuse's DirectMount)")
}

// mount is a bucket mounted in this process through the kernel.
type mount struct {
	Dir     string                   // the mountpoint
	Bucket  string                   // the bucket's name
	Client  *s3client.Client         // a direct client, bypassing the mount
	Counter *s3client.RequestCounter // requests the mount sent, by operation
	Faults  *s3test.FaultTransport   // the mount's transport, for injecting faults
	Log     *lockedWriter            // the mount's log
	server  *bfs.Server
	done    chan struct{} // closed when the mount has ended
	conn    uint32        // the FUSE connection's number (the mount's minor device number)
}

// abortConnection ends FUSE connection conn (fusectl's abort): every request
// on it fails at once. fusectl is mounted for it when it is not.
func abortConnection(t testing.TB, conn uint32) {
	const ctl = "/sys/fs/fuse/connections"
	path := filepath.Join(ctl, strconv.FormatUint(uint64(conn), 10), "abort")
	if _, err := os.Stat(path); err != nil {
		if err := exec.Command("mount", "-t", "fusectl", "fusectl", ctl).Run(); err == nil {
			defer exec.Command("umount", ctl).Run()
		}
	}
	if err := os.WriteFile(path, []byte("1"), 0o200); err != nil {
		t.Logf("aborting FUSE connection %d: %v", conn, err)
	}
}

// mountBucket mounts bucket of srv at a fresh temporary directory and
// unmounts it when the test ends, however it ends.
func mountBucket(t testing.TB, srv *s3test.Server, bucket string, configure ...func(*bfs.Config)) *mount {
	t.Helper()
	requireFUSE(t)
	m := &mount{
		Dir:     filepath.Join(t.TempDir(), "mnt"),
		Bucket:  bucket,
		Counter: s3client.NewRequestCounter(),
		Faults:  s3test.NewFaultTransport(nil),
		Log:     &lockedWriter{w: &bytes.Buffer{}},
	}
	if err := os.Mkdir(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m.Client = srv.Client(t, srv.Config(bucket))
	ccfg := srv.Config(bucket)
	ccfg.Counter = m.Counter
	// Three attempts: retries are exercised, and tests of permanent failures
	// do not wait through six backoffs.
	ccfg.MaxAttempts = 3
	ccfg.WrapTransport = m.Faults.Wrap
	client, err := s3client.New(context.Background(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(m.Log)
	log.SetLevel(logrus.DebugLevel)
	cfg := bfs.Config{Client: client, Bucket: bucket, Log: log, CacheDir: filepath.Join(t.TempDir(), "cache")}
	for _, f := range configure {
		f(&cfg)
	}
	server, err := bfs.Mount(m.Dir, cfg)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	m.server = server
	var st syscall.Stat_t
	if err := syscall.Stat(m.Dir, &st); err == nil {
		m.conn = unix.Minor(st.Dev)
	}
	done := make(chan struct{})
	m.done = done
	go func() { server.Wait(); close(done) }()
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			_ = exec.Command("umount", "-l", m.Dir).Run()
			// A descriptor the failed test left open would make the
			// process's exit wait for ever on a FLUSH this process can no
			// longer answer: end the connection now.
			abortConnection(t, m.conn)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("mount at %s did not end", m.Dir)
		}
		if t.Failed() {
			t.Logf("mount log (tail):\n%s", tail(m.Log.String(), 4000))
		}
	})
	return m
}

// Unmount ends the mount now (for remount tests) and waits until it has
// written its pending changes; cleanup then does nothing.
func (m *mount) Unmount(t testing.TB) {
	t.Helper()
	if err := m.server.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("mount at %s did not end", m.Dir)
	}
}

// Path is the path of name inside the mount.
func (m *mount) Path(name string) string { return filepath.Join(m.Dir, name) }

// lockedWriter serialises writes to a buffer shared by logging goroutines.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// String returns what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// run runs a command (with a time limit) and returns its combined output,
// failing the test when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// randomBytes returns n pseudo-random bytes from seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func shaFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
