package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestOpsSIGHUPReopensLog: logrotate's way (rename the log, send SIGHUP)
// gives a new file at the original path, 0600, and never stops the daemon;
// systemd's notify socket hears READY=1 once the mount is live.
func TestOpsSIGHUPReopensLog(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	mnt := newMountpoint(t)
	logFile := filepath.Join(t.TempDir(), "bucketfs.log")

	sock := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	d := startOpsDaemon(t, srv, bucket, mnt, []string{"NOTIFY_SOCKET=" + sock}, "--log-file", logFile)
	buf := make([]byte, 256)
	_ = notify.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := notify.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notify socket: %q, %v", buf[:n], err)
	}

	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	waitFor(t, 10*time.Second, "a new log file", func() bool { return strings.Contains(readFileOrEmpty(logFile), "reopened the log file") })
	st, err := os.Stat(logFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new log file: %v, %v; want mode 0600", st, err)
	}
	if old := readFileOrEmpty(logFile + ".1"); !strings.Contains(old, "msg=starting") || strings.Contains(old, "reopened") {
		t.Fatalf("rotated log:\n%s", old)
	}
	for i := 0; i < 3; i++ {
		d.signal(t, syscall.SIGHUP)
	}
	time.Sleep(200 * time.Millisecond)
	if d.exited() || !isMounted(t, mnt) {
		t.Fatalf("SIGHUP stopped the daemon: %s", d.out.String())
	}
	if err := os.WriteFile(filepath.Join(mnt, "after-hup.txt"), []byte("still here"), 0o644); err != nil {
		t.Fatalf("write after SIGHUP: %v", err)
	}

	d.signal(t, syscall.SIGTERM)
	if code := d.waitExit(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if isMounted(t, mnt) {
		t.Fatal("still mounted after SIGTERM")
	}
	if !strings.Contains(readFileOrEmpty(logFile), "msg=unmounted") {
		t.Fatalf("new log file lacks the end:\n%s", readFileOrEmpty(logFile))
	}
}

// ddWriter is a dd writing into the mount from a pipe the test feeds at
// its own pace, so that a signal can be sent while it writes.
type ddWriter struct {
	cmd   *exec.Cmd
	feed  io.WriteCloser
	out   bytes.Buffer
	done  chan struct{}
	total int64
}

// startDD starts dd of=path with bs=1M count=total/1MiB, reading a pipe.
func startDD(t *testing.T, path string, total int64) *ddWriter {
	t.Helper()
	w := &ddWriter{done: make(chan struct{}), total: total}
	w.cmd = exec.Command("dd", "of="+path, "bs=1M", fmt.Sprintf("count=%d", total>>20), "iflag=fullblock")
	feed, err := w.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.feed = feed
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		w.feed.Close()
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// feedData writes the whole content: at full speed when pace is 0, else
// one MiB per pace. It stops early when dd has exited.
func (w *ddWriter) feedData(data []byte, pace time.Duration) {
	defer w.feed.Close()
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := w.feed.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			return
		}
		if pace > 0 {
			select {
			case <-w.done:
				return
			case <-time.After(pace):
			}
		}
	}
}

func (w *ddWriter) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-w.done:
		return exitErrorOf(w.cmd.ProcessState)
	case <-time.After(within):
		t.Fatalf("dd did not end within %v", within)
		return nil
	}
}

// written is how many bytes dd has written so far (wchar of
// /proc/PID/io: its writes to the mount, as it writes nothing else).
func (w *ddWriter) written(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", w.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("dd's I/O counts: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no wchar in /proc/%d/io", w.cmd.Process.Pid)
	return 0
}

// exitError is ProcessState's error form: nil for exit 0.
func exitErrorOf(ps *os.ProcessState) error {
	if ps.Success() {
		return nil
	}
	return errors.New(ps.String())
}

// sizeAtLeast waits until the file being written shows n bytes.
func sizeAtLeast(t *testing.T, path string, n int64, w *ddWriter) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%s to reach %d bytes", path, n), func() bool {
		st, err := os.Stat(path)
		select {
		case <-w.done:
			return true
		default:
		}
		return err == nil && st.Size() >= n
	})
}

// checkWholeOrNothing: a key holds the whole content or nothing, never a part.
func checkWholeOrNothing(t *testing.T, c *s3client.Client, key string, data []byte, ddErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := c.Head(ctx, key)
	switch {
	case errors.Is(err, s3client.ErrNotFound):
		if ddErr == nil {
			t.Fatalf("dd succeeded but %s is not in S3", key)
		}
		t.Logf("dd failed (%v) and %s is not in S3", ddErr, key)
	case err != nil:
		t.Fatal(err)
	case info.Size != int64(len(data)):
		t.Fatalf("%s in S3 has %d bytes, not %d: a partial object", key, info.Size, len(data))
	default:
		if got := s3test.GetObject(t, c, key); sha(got) != sha(data) {
			t.Fatalf("%s in S3 has other bytes than were written", key)
		}
		if ddErr != nil {
			t.Logf("dd reported %v, yet the whole object is in S3", ddErr)
		}
	}
}

// TestOpsSIGTERMDuringWrite: SIGTERM while dd writes 200 MiB. Either the
// write completes within --shutdown-timeout and the whole object is in
// S3, or the daemon exits at the deadline, dd fails, and the key holds
// nothing; never a partial object, and never a dead mount left behind.
func TestOpsSIGTERMDuringWrite(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	data := randomBytes(7, 200<<20)

	t.Run("the write finishes in time", func(t *testing.T) {
		mnt := newMountpoint(t)
		d := startOpsDaemon(t, srv, bucket, mnt, nil, "--shutdown-timeout", "60s")
		path := filepath.Join(mnt, "fast.bin")
		w := startDD(t, path, int64(len(data)))
		go w.feedData(data, 0)
		sizeAtLeast(t, path, 16<<20, w)
		start := time.Now()
		d.signal(t, syscall.SIGTERM)
		code := d.waitExit(t, 70*time.Second)
		ddErr := w.wait(t, 10*time.Second)
		t.Logf("bucketfs exited %d after %v; dd: %v %s", code, time.Since(start), ddErr, strings.TrimSpace(w.out.String()))
		if ddErr == nil && code != 0 {
			t.Fatalf("dd completed, yet bucketfs exited %d", code)
		}
		checkWholeOrNothing(t, c, "fast.bin", data, ddErr)
		if isMounted(t, mnt) {
			t.Fatal("a mount was left behind")
		}
	})

	t.Run("the deadline passes", func(t *testing.T) {
		mnt := newMountpoint(t)
		logFile := filepath.Join(t.TempDir(), "bucketfs.log")
		d := startOpsDaemon(t, srv, bucket, mnt, nil, "--shutdown-timeout", "2s", "--log-file", logFile)
		path := filepath.Join(mnt, "slow.bin")
		w := startDD(t, path, int64(len(data)))
		go w.feedData(data, 20*time.Millisecond) // 200 MiB would take 4 s
		sizeAtLeast(t, path, 16<<20, w)
		start := time.Now()
		d.signal(t, syscall.SIGTERM)
		code := d.waitExit(t, 10*time.Second)
		took := time.Since(start)
		ddErr := w.wait(t, 20*time.Second)
		t.Logf("bucketfs exited %d after %v; dd: %v %s", code, took, ddErr, strings.TrimSpace(w.out.String()))
		if took > 5*time.Second {
			t.Fatalf("bucketfs took %v to exit with --shutdown-timeout 2s", took)
		}
		if ddErr == nil {
			t.Fatal("dd succeeded although the daemon stopped before its end")
		}
		if code != 1 || !strings.Contains(readFileOrEmpty(logFile), "not in S3") {
			t.Fatalf("exit %d; log:\n%s", code, tail(readFileOrEmpty(logFile), 3000))
		}
		checkWholeOrNothing(t, c, "slow.bin", data, ddErr)
		if isMounted(t, mnt) {
			t.Fatal("a dead mount was left behind")
		}
	})

	t.Run("umount -l while writing", func(t *testing.T) {
		mnt := newMountpoint(t)
		logFile := filepath.Join(t.TempDir(), "bucketfs.log")
		d := startOpsDaemon(t, srv, bucket, mnt, nil, "--shutdown-timeout", "2s", "--log-file", logFile)
		path := filepath.Join(mnt, "detached.bin")
		w := startDD(t, path, int64(len(data)))
		go w.feedData(data, 20*time.Millisecond)
		sizeAtLeast(t, path, 8<<20, w)
		// A plain umount is refused while a file is open, and changes nothing.
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err == nil {
			t.Fatalf("umount of a busy mount succeeded: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
		if d.exited() || !isMounted(t, mnt) {
			t.Fatal("a refused umount stopped the daemon")
		}
		start := time.Now()
		run(t, "umount", "-l", mnt)
		code := d.waitExit(t, 10*time.Second)
		took := time.Since(start)
		ddErr := w.wait(t, 20*time.Second)
		t.Logf("bucketfs exited %d after %v; dd: %v", code, took, ddErr)
		if took > 5*time.Second {
			t.Fatalf("bucketfs took %v to exit after umount -l with --shutdown-timeout 2s", took)
		}
		checkWholeOrNothing(t, c, "detached.bin", data, ddErr)
	})
}

// TestOpsKill9ThenMount: after kill -9 the mount stays behind dead; the
// next mount attempt says so with the command to clear it, and after that
// command a mount works again.
func TestOpsKill9ThenMount(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	mnt := newMountpoint(t)
	d := startOpsDaemon(t, srv, bucket, mnt, nil)
	d.kill(t)
	if _, err := os.ReadDir(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("listing the dead mount: %v, want ENOTCONN", err)
	}
	ep := []string{"--endpoint-url", srv.Endpoint, "--force-path-style"}
	out, code := cli(t, srv, append([]string{bucket, mnt}, ep...)...)
	for _, want := range []string{"dead mount", "umount " + mnt, "fusermount3 -u " + mnt} {
		if code != 1 || !strings.Contains(out, want) {
			t.Fatalf("exit %d, %q; want exit 1 and %q", code, out, want)
		}
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("want one line: %q", out)
	}
	run(t, "umount", mnt)
	out, code = cli(t, srv, append([]string{bucket, mnt}, ep...)...)
	if code != 0 {
		t.Fatalf("mount after clearing: exit %d: %s", code, out)
	}
	t.Cleanup(func() { unmountIfMounted(t, mnt) })
	if _, err := os.ReadDir(mnt); err != nil {
		t.Fatalf("the new mount: %v", err)
	}
	run(t, "umount", mnt)
}
