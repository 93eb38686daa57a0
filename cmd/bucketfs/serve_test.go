package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// fakeServer is a mount that ends when end is closed.
type fakeServer struct {
	end chan struct{}
}

func (s *fakeServer) Wait() { <-s.end }

// drainingServer also has the Drain hook fs.Server is to get.
type drainingServer struct {
	fakeServer
	drained chan time.Duration // the time Drain was given
}

func (s *drainingServer) Drain(ctx context.Context) []string {
	dl, _ := ctx.Deadline()
	s.drained <- time.Until(dl)
	<-ctx.Done()
	return []string{"big.bin"}
}

// lockedBuffer is a log sink safe for the goroutines of a test.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type daemonRun struct {
	d        *daemon
	signals  chan os.Signal
	gone     chan struct{}
	logs     *lockedBuffer
	result   chan error
	unmounts chan string
}

// startDaemonLoop runs daemon.run on server with an unmount that reports
// detached (files open) or not.
func startDaemonLoop(t *testing.T, server mountServer, timeout time.Duration, detached bool) *daemonRun {
	t.Helper()
	r := &daemonRun{
		signals:  make(chan os.Signal, 4),
		gone:     make(chan struct{}),
		logs:     &lockedBuffer{},
		result:   make(chan error, 1),
		unmounts: make(chan string, 4),
	}
	log := logrus.New()
	log.SetOutput(r.logs)
	r.d = &daemon{
		server:     server,
		mountpoint: "/m",
		timeout:    timeout,
		log:        log,
		unmount: func(path string) (bool, error) {
			r.unmounts <- path
			return detached, nil
		},
	}
	go func() { r.result <- r.d.run(r.signals, r.gone) }()
	return r
}

func (r *daemonRun) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.result:
		return err
	case <-time.After(within):
		t.Fatalf("the daemon did not end within %v; log:\n%s", within, r.logs.String())
		return nil
	}
}

func (r *daemonRun) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.result:
		t.Fatalf("the daemon ended (%v); log:\n%s", err, r.logs.String())
	case <-time.After(100 * time.Millisecond):
	}
}

// TestDaemonSIGTERMUnmounts: SIGTERM unmounts; the daemon ends with the mount.
func TestDaemonSIGTERMUnmounts(t *testing.T) {
	s := &fakeServer{end: make(chan struct{})}
	r := startDaemonLoop(t, s, time.Minute, false)
	r.signals <- syscall.SIGTERM
	if p := <-r.unmounts; p != "/m" {
		t.Fatalf("unmounted %q", p)
	}
	close(s.end) // the kernel ends the mount
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonSIGHUPNeverStops: SIGHUP without a log file is logged and
// ignored; the daemon keeps serving.
func TestDaemonSIGHUPNeverStops(t *testing.T) {
	s := &fakeServer{end: make(chan struct{})}
	r := startDaemonLoop(t, s, time.Minute, false)
	for i := 0; i < 3; i++ {
		r.signals <- syscall.SIGHUP
	}
	r.running(t)
	if len(r.unmounts) != 0 {
		t.Fatal("SIGHUP unmounted")
	}
	if !strings.Contains(r.logs.String(), "no --log-file to reopen") {
		t.Fatalf("log: %s", r.logs.String())
	}
	close(s.end)
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonDeadline: files that stay open past --shutdown-timeout do not
// keep the daemon: it ends at the deadline, reporting them not committed.
func TestDaemonDeadline(t *testing.T) {
	s := &fakeServer{end: make(chan struct{})}
	defer close(s.end)
	r := startDaemonLoop(t, s, 300*time.Millisecond, true)
	start := time.Now()
	r.signals <- syscall.SIGINT
	err := r.wait(t, 5*time.Second)
	if !errors.Is(err, errNotCommitted) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("ended after %v, want the 300ms deadline", d)
	}
	if !strings.Contains(r.logs.String(), "files are still open") {
		t.Fatalf("log: %s", r.logs.String())
	}
}

// TestDaemonFilesCloseInTime: when the open files close before the
// deadline, the daemon ends cleanly at that moment.
func TestDaemonFilesCloseInTime(t *testing.T) {
	s := &fakeServer{end: make(chan struct{})}
	r := startDaemonLoop(t, s, time.Minute, true)
	r.signals <- syscall.SIGTERM
	<-r.unmounts
	r.running(t)
	close(s.end)
	if err := r.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonSecondSignal: a second SIGINT stops waiting for open files.
func TestDaemonSecondSignal(t *testing.T) {
	s := &fakeServer{end: make(chan struct{})}
	defer close(s.end)
	r := startDaemonLoop(t, s, time.Hour, true)
	r.signals <- syscall.SIGINT
	<-r.unmounts
	r.running(t)
	r.signals <- syscall.SIGINT
	if err := r.wait(t, 5*time.Second); !errors.Is(err, errNotCommitted) {
		t.Fatalf("err = %v", err)
	}
}

// TestDaemonExternalUnmount: umount -l by someone else starts the same
// deadline as SIGTERM.
func TestDaemonExternalUnmount(t *testing.T) {
	s := &fakeServer{end: make(chan struct{})}
	defer close(s.end)
	r := startDaemonLoop(t, s, 200*time.Millisecond, true)
	r.running(t)
	close(r.gone)
	if err := r.wait(t, 5*time.Second); !errors.Is(err, errNotCommitted) {
		t.Fatalf("err = %v", err)
	}
	if len(r.unmounts) != 0 {
		t.Fatal("unmounted what was already unmounted")
	}
}

// TestDaemonDrainHook: a mount with Drain gets the deadline minus a
// reserve for its aborts, and the keys it returns are logged.
func TestDaemonDrainHook(t *testing.T) {
	s := &drainingServer{fakeServer: fakeServer{end: make(chan struct{})}, drained: make(chan time.Duration, 1)}
	defer close(s.end)
	r := startDaemonLoop(t, s, time.Second, true)
	r.signals <- syscall.SIGTERM
	if got := <-s.drained; got > 800*time.Millisecond || got < 500*time.Millisecond {
		t.Fatalf("Drain was given %v of a 1s timeout", got)
	}
	if err := r.wait(t, 5*time.Second); !errors.Is(err, errNotCommitted) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(r.logs.String(), "key=big.bin") {
		t.Fatalf("log: %s", r.logs.String())
	}
}

// TestLogFileReopen: after the file is renamed away, Reopen starts a new
// one at the path, mode 0600; lines written before stay in the old one.
func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bucketfs.log")
	l, err := openLogFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "before\n" || string(cur) != "after\n" {
		t.Fatalf("old %q, new %q", old, cur)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new log file mode %v, %v; want 0600", st.Mode(), err)
	}
	// A path that cannot be opened keeps the current file.
	l.path = filepath.Join(dir, "missing", "x.log")
	if err := l.Reopen(); err == nil {
		t.Fatal("reopening in a missing directory succeeded")
	}
	if _, err := l.Write([]byte("still\n")); err != nil {
		t.Fatal(err)
	}
	if cur, _ := os.ReadFile(path); string(cur) != "after\nstill\n" {
		t.Fatalf("log %q", cur)
	}
}

// TestSdNotify: READY=1 reaches the socket named by NOTIFY_SOCKET.
func TestSdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without a socket: %v", err)
	}
}

func TestParseMountInfo(t *testing.T) {
	text := "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
		"120 25 0:61 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:70 - fuse.bucketfs bucketfs:bkt rw,user_id=0,group_id=0\n" +
		"garbage\n"
	got := parseMountInfo(text)
	want := []mountEntry{
		{device: "98:0", mountpoint: "/mnt2", fstype: "ext3", source: "/dev/root"},
		{device: "0:61", mountpoint: "/tmp/a b", fstype: "fuse.bucketfs", source: "bucketfs:bkt"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v", got)
	}
	if !hasDevice(got, "0:61") || hasDevice(got, "0:62") {
		t.Fatal("hasDevice")
	}
}

// TestDaemonFailure: the background child's report is completed with what
// fusermount3 printed, instead of go-fuse's exit code.
func TestDaemonFailure(t *testing.T) {
	for _, tc := range []struct{ report, stderr, want string }{
		{"mounting /m: fusermount exited with code 256", "fusermount3: user has no write access to mountpoint /m\n",
			"mounting /m: fusermount3: user has no write access to mountpoint /m"},
		{"mounting /m: fusermount exited with code 256",
			"/usr/bin/fusermount3: mount failed: Operation not permitted\nbucketfs: mounting /m: fusermount exited with code 256\n",
			"mounting /m: /usr/bin/fusermount3: mount failed: Operation not permitted"},
		{"", "", "the background process exited before mounting"},
		{"", "panic: boom\n\ngoroutine 1 [running]:\n", "the background process exited before mounting\n  panic: boom\n  goroutine 1 [running]:"},
		{"opening the log file: permission denied", "", "opening the log file: permission denied"},
	} {
		if got := daemonFailure(tc.report, tc.stderr).Error(); got != tc.want {
			t.Errorf("daemonFailure(%q, %q) = %q, want %q", tc.report, tc.stderr, got, tc.want)
		}
	}
}

// TestCheckMountpointDeadMount: a dead FUSE mount is named as such, with
// the commands that clear it.
func TestCheckMountpointDeadMount(t *testing.T) {
	err := deadMountError("/mnt/b")
	for _, want := range []string{"dead mount", "umount /mnt/b", "fusermount3 -u /mnt/b"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if !isDeadMount(&os.PathError{Op: "stat", Path: "/m", Err: syscall.ENOTCONN}) || isDeadMount(os.ErrNotExist) {
		t.Fatal("isDeadMount")
	}
}

func TestCheckFUSEDevice(t *testing.T) {
	if err := checkFUSEDevice(filepath.Join(t.TempDir(), "fuse")); err == nil || !strings.Contains(err.Error(), "does not exist: load the fuse kernel module") {
		t.Fatalf("missing device: %v", err)
	}
}

// TestNoCredentials: the SDK's failure to find credentials is said plainly.
func TestNoCredentials(t *testing.T) {
	sdk := errors.New("operation error S3: HeadBucket, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, request canceled")
	err := describeBucketError(sdk, "b", connection{})
	if !strings.HasPrefix(err.Error(), "no AWS credentials found") {
		t.Fatalf("%v", err)
	}
}
