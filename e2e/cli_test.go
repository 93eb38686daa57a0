package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// cli runs the bucketfs binary with the test server's credentials.
func cli(t testing.TB, srv *s3test.Server, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bucketfsBinary(t), args...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("bucketfs %v hung", args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func isMounted(t testing.TB, dir string) bool {
	t.Helper()
	ok, err := bfs.IsMountpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestCLIBadInput: every bad input gets its message and exit code before
// anything is mounted.
func TestCLIBadInput(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	file := filepath.Join(dir, "file")
	busy := filepath.Join(dir, "busy")
	for _, d := range []string{mnt, busy} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", busy).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", busy).Run() })
	ep := []string{"--endpoint-url", srv.Endpoint, "--force-path-style"}

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
		within   time.Duration
	}{
		{"unknown flag", []string{"--no-such-flag", bucket, mnt}, 2, "Usage: bucketfs", 0},
		{"bad size", append([]string{"--upload-memory", "huge", bucket, mnt}, ep...), 2, "not a size", 0},
		{"missing mountpoint", append([]string{bucket, filepath.Join(dir, "nope")}, ep...), 1, "does not exist", 0},
		{"mountpoint is a file", append([]string{bucket, file}, ep...), 1, "not a directory", 0},
		{"mountpoint already a mount", append([]string{bucket, busy}, ep...), 1, "already a mount", 0},
		{"no such bucket", append([]string{"no-such-bucket-here", mnt}, ep...), 1, `bucket "no-such-bucket-here" does not exist`, 0},
		{"endpoint does not answer", []string{"--endpoint-url", "http://127.0.0.1:1", "--force-path-style", bucket, mnt}, 1, "does not answer", 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, code := cli(t, srv, tc.args...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantMsg) {
				t.Fatalf("exit %d, output %q; want exit %d and %q", code, out, tc.wantCode, tc.wantMsg)
			}
			if tc.within > 0 && time.Since(start) > tc.within {
				t.Fatalf("took %v", time.Since(start))
			}
			if isMounted(t, mnt) {
				t.Fatal("something was mounted")
			}
		})
	}
}

// TestCLIBackgroundAndForeground: the default mode returns once the mount
// answers and umount ends it; -f unmounts cleanly on SIGTERM.
func TestCLIBackgroundAndForeground(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{"hello.txt": []byte("hi")})
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(t, mnt) {
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})
	ep := []string{"--endpoint-url", srv.Endpoint, "--force-path-style"}

	out, code := cli(t, srv, append([]string{bucket, mnt}, ep...)...)
	if code != 0 {
		t.Fatalf("background mount: exit %d: %s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != "hi" {
		t.Fatalf("read through the background mount: %q, %v", b, err)
	}
	run(t, "umount", mnt)
	deadline := time.Now().Add(10 * time.Second)
	for isMounted(t, mnt) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	cmd := exec.Command(bucketfsBinary(t), append([]string{"-f", bucket, mnt}, ep...)...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline = time.Now().Add(20 * time.Second)
	for !isMounted(t, mnt) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !isMounted(t, mnt) {
		t.Fatalf("foreground mount did not appear: %s", logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("foreground bucketfs exited with %v: %s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SIGTERM did not end the foreground mount")
	}
	if isMounted(t, mnt) {
		t.Fatal("still mounted after SIGTERM")
	}
}
