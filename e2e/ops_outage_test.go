package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// The outage tests mount with a short request timeout and two retries, so
// that the bounds README documents for the defaults (30s, five retries)
// are checked at a scale a test can wait for.
const (
	outageTimeout = 2 * time.Second
	outageRetries = 2
)

// outageBound is the documented bound on one operation during an outage
// (README, "S3 outages") with the flags above: a small S3 call (HEAD, LIST)
// ends within the request timeout, retries included; a stat, ls or open
// makes up to three in a row, a read one HEAD and up to three ranged GETs
// (the read-ahead retries its block), so four request timeouts; the upload
// of a small file at close ends within (retries+1) request timeouts plus
// the backoff between them. Two seconds are added for scheduling.
func outageBound() time.Duration {
	cfg := s3client.Config{MaxAttempts: outageRetries + 1}
	upload := (outageRetries+1)*outageTimeout + cfg.MaxBackoffTotal()
	return max(4*outageTimeout, upload) + 2*time.Second
}

// TestOpsOutageFrozen: MinIO frozen by SIGSTOP (it accepts connections and
// never answers). ls, stat, cat and a write+close on the mount end with
// EIO within the bound, and once MinIO resumes the same mount lists,
// reads and writes again.
func TestOpsOutageFrozen(t *testing.T) {
	srv, d, bucket := startOutageMount(t)
	f := openForWrite(t, d.mnt, "frozen")
	alone := openForWrite(t, d.mnt, "frozen-alone")
	r := openForRead(t, d.mnt)
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozen := true
	t.Cleanup(func() {
		if frozen {
			_ = srv.Thaw()
		}
	})
	runOutage(t, d.mnt, f, "frozen")
	runOutageAlone(t, d.mnt, alone, r, "frozen")
	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	frozen = false
	checkRecovery(t, srv, bucket, d.mnt, time.Now(), "thawed")
}

// TestOpsOutageKilled: MinIO killed (connections reset, new ones refused)
// and then restarted on the same port and data: the same bounds, and the
// same mount works after the restart.
func TestOpsOutageKilled(t *testing.T) {
	srv, d, bucket := startOutageMount(t)
	f := openForWrite(t, d.mnt, "killed")
	alone := openForWrite(t, d.mnt, "killed-alone")
	r := openForRead(t, d.mnt)
	srv.Kill()
	runOutage(t, d.mnt, f, "killed")
	runOutageAlone(t, d.mnt, alone, r, "killed")
	if err := srv.Restart(30 * time.Second); err != nil {
		t.Fatalf("restarting MinIO: %v", err)
	}
	checkRecovery(t, srv, bucket, d.mnt, time.Now(), "restarted")
}

// TestOpsOutageLargeWrite: dd writes 256 MiB at full speed when MinIO is
// frozen (SIGSTOP: parts in flight hang, the writer fills the upload
// budget and waits), then killed (connections reset, new ones refused).
// dd fails with EIO within the outage bound of the kill, the key holds
// nothing (never a partial object), and after MinIO restarts the same
// mount lists, reads and writes.
func TestOpsOutageLargeWrite(t *testing.T) {
	const frozenFor = 3 * time.Second
	logFile := filepath.Join(t.TempDir(), "bucketfs.log")
	srv, d, bucket := startOutageMount(t, "--upload-memory", "64MiB", "--log-file", logFile)
	data := randomBytes(13, 256<<20)
	path := filepath.Join(d.mnt, "dir", "large.bin")
	w := startDD(t, path, int64(len(data)))
	go w.feedData(data, 0)
	sizeAtLeast(t, path, 32<<20, w)
	select {
	case <-w.done:
		t.Fatalf("dd ended before the outage: %s", w.out.String())
	default:
	}
	before := w.written(t)
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozenAt := time.Now()
	t.Cleanup(func() { _ = srv.Thaw() }) // a no-op once it is killed
	time.Sleep(frozenFor)
	after := w.written(t)
	srv.Kill()
	killedAt := time.Now()
	bound := outageBound()
	ddErr := w.wait(t, bound+30*time.Second)
	ended := time.Now()
	t.Logf("MinIO frozen with %d MiB written, killed %s later at %d MiB; dd ended %s after the kill (%s after the freeze): %v %s",
		before>>20, frozenFor, after>>20, ended.Sub(killedAt).Round(10*time.Millisecond), ended.Sub(frozenAt).Round(10*time.Millisecond),
		ddErr, strings.TrimSpace(w.out.String()))
	if ddErr == nil {
		t.Fatal("dd succeeded with MinIO killed")
	}
	if !strings.Contains(w.out.String(), "Input/output error") {
		t.Errorf("dd failed with %q, want EIO", w.out.String())
	}
	if took := ended.Sub(killedAt); took > bound {
		t.Errorf("dd ended %s after the kill, bound %s", took, bound)
	}
	if d.exited() {
		t.Fatalf("the daemon exited: %s", d.out.String())
	}
	if err := srv.Restart(30 * time.Second); err != nil {
		t.Fatalf("restarting MinIO: %v", err)
	}
	checkRecovery(t, srv, bucket, d.mnt, time.Now(), "restarted after the large write failed")
	c := srv.Client(t, srv.Config(bucket))
	checkWholeOrNothing(t, c, "dir/large.bin", data, ddErr)
	ids, err := c.ListMultipartUploads(context.Background(), "dir/large.bin")
	if err != nil {
		t.Fatal(err)
	}
	// The abort found MinIO dead: bucketfs cleanup is for what is left.
	t.Logf("multipart uploads left for dir/large.bin: %d", len(ids))
	if !regexp.MustCompile(`msg="writing the file failed; its object was left as it was".* key=dir/large.bin`).MatchString(readFileOrEmpty(logFile)) {
		t.Errorf("the log does not name the file that was not stored:\n%s", tail(readFileOrEmpty(logFile), 3000))
	}
}

// startOutageMount starts MinIO with a bucket holding dir/a and mounts it
// with a bucketfs daemon whose S3 bounds are short and whose metadata is
// never cached (every stat and ls asks S3), with extra flags.
func startOutageMount(t *testing.T, extra ...string) (*s3test.Server, *opsDaemon, string) {
	t.Helper()
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{"dir/a": bytes.Repeat([]byte("a"), 1<<20)})
	mnt := newMountpoint(t)
	d := startOpsDaemon(t, srv, bucket, mnt, nil, append([]string{
		"--request-timeout", outageTimeout.String(), "-o", fmt.Sprintf("max_retries=%d", outageRetries),
		"--metadata-ttl", "0s", "--negative-ttl", "0s"}, extra...)...)
	if out, err := runWithin(t, 20*time.Second, "ls", filepath.Join(mnt, "dir")); err != nil || !strings.Contains(out, "a") {
		t.Fatalf("ls before the outage: %v %s", err, out)
	}
	return srv, d, bucket
}

// outageResult is one operation run during the outage.
type outageResult struct {
	name string
	took time.Duration
	err  error
	out  string
}

// openForWrite creates a file on the mount before the outage, so that its
// write and close happen during it (an upload in flight).
func openForWrite(t *testing.T, mnt, what string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(mnt, "dir", "open-"+what))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// openForRead opens dir/a before the outage, so that its first read
// happens during it.
func openForRead(t *testing.T, mnt string) *os.File {
	t.Helper()
	r, err := os.Open(filepath.Join(mnt, "dir", "a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// runOutage runs ls, stat, cat, a create, and a write and close on f (open
// since before the outage) at once, and checks that each fails with EIO
// (or ETIMEDOUT) within twice outageBound (they queue behind each other).
func runOutage(t *testing.T, mnt string, f *os.File, what string) {
	t.Helper()
	// At once, they queue: the kernel sends one lookup of a name at a time
	// (every operation here looks up dir first), so an operation may wait
	// for the others' failures before its own.
	bound := 2 * outageBound()
	start := time.Now()
	var mu sync.Mutex
	var results []outageResult
	record := func(r outageResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, args := range [][]string{
		{"ls", filepath.Join(mnt, "dir")},
		{"stat", filepath.Join(mnt, "dir", "a")},
		{"cat", filepath.Join(mnt, "dir", "a")},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runWithin(t, bound+20*time.Second, args...)
			if len(out) > 300 {
				out = out[:300]
			}
			record(outageResult{name: args[0], took: time.Since(start), err: err, out: out})
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		// In this process: the daemon is another one, so no deadlock.
		_, err := f.Write(bytes.Repeat([]byte("w"), 64<<10))
		record(outageResult{name: "write", took: time.Since(start), err: err})
		err = f.Close()
		record(outageResult{name: "close", took: time.Since(start), err: err})
	}()
	go func() {
		defer wg.Done()
		f, err := os.Create(filepath.Join(mnt, "dir", "new-"+what))
		if err == nil {
			f.Close()
		}
		record(outageResult{name: "create", took: time.Since(start), err: err})
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound + 30*time.Second):
		t.Fatalf("operations on the mount still running %s after MinIO was %s", bound+30*time.Second, what)
	}
	for _, r := range results {
		t.Logf("MinIO %s: %-5s ended after %6s: %v %s", what, r.name, r.took.Round(10*time.Millisecond), r.err, strings.TrimSpace(r.out))
		switch {
		case r.name == "write" && r.err == nil:
			// A write is buffered for its part: the close reports the failure.
		case r.name == "stat" && r.err == nil && r.took < time.Second:
			// Answered from the attribute cache (--metadata-ttl 0s is the
			// 5 s default, and ls ran just before): no request was made.
		case r.err == nil:
			t.Errorf("%s succeeded with MinIO %s", r.name, what)
		case !errors.Is(r.err, syscall.EIO) && !errors.Is(r.err, syscall.ETIMEDOUT) &&
			!strings.Contains(r.out, "Input/output error") && !strings.Contains(r.out, "timed out"):
			t.Errorf("%s failed with %v %q, want EIO or ETIMEDOUT", r.name, r.err, r.out)
		}
		if r.took > bound {
			t.Errorf("%s took %s, documented bound %s", r.name, r.took, bound)
		}
	}
}

// runOutageAlone runs the operations of runOutage one after the other, so
// that each one's time is its own and not spent queued behind the others
// (the kernel serialises lookups in one directory).
func runOutageAlone(t *testing.T, mnt string, f, r *os.File, what string) {
	t.Helper()
	bound := outageBound()
	check := func(name string, took time.Duration, err error, out string) {
		t.Helper()
		t.Logf("MinIO %s, alone: %-5s ended after %6s: %v %s", what, name, took.Round(10*time.Millisecond), err, strings.TrimSpace(out))
		switch {
		case name == "write" && err == nil:
		case name == "stat" && err == nil && took < time.Second:
			// Answered from the attribute cache: no request was made.
		case err == nil:
			t.Errorf("%s succeeded with MinIO %s", name, what)
		case !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ETIMEDOUT) &&
			!strings.Contains(out, "Input/output error") && !strings.Contains(out, "timed out"):
			t.Errorf("%s failed with %v %q, want EIO or ETIMEDOUT", name, err, out)
		}
		if took > bound {
			t.Errorf("%s took %s, documented bound %s", name, took, bound)
		}
	}
	for _, args := range [][]string{
		{"ls", filepath.Join(mnt, "dir")},
		{"stat", filepath.Join(mnt, "dir", "a")},
		{"cat", filepath.Join(mnt, "dir", "a")},
	} {
		start := time.Now()
		out, err := runWithin(t, bound+20*time.Second, args...)
		if len(out) > 300 {
			out = out[:300]
		}
		check(args[0], time.Since(start), err, out)
	}
	start := time.Now()
	_, err := r.Read(make([]byte, 4096))
	check("read", time.Since(start), err, "")
	start = time.Now()
	_, err = f.Write(bytes.Repeat([]byte("w"), 64<<10))
	check("write", time.Since(start), err, "")
	start = time.Now()
	err = f.Close()
	check("close", time.Since(start), err, "")
}

// checkRecovery waits for the mount to list again after MinIO came back,
// then reads, writes and lists through it, and checks the write in S3.
func checkRecovery(t *testing.T, srv *s3test.Server, bucket, mnt string, back time.Time, what string) {
	t.Helper()
	dir := filepath.Join(mnt, "dir")
	var listed time.Duration
	deadline := back.Add(30 * time.Second)
	for {
		out, err := runWithin(t, 20*time.Second, "ls", dir)
		if err == nil && strings.Contains(out, "a") {
			listed = time.Since(back)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount does not list 30s after MinIO %s: %v %s", what, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := os.ReadFile(filepath.Join(dir, "a"))
	if err != nil || len(got) != 1<<20 {
		t.Fatalf("reading after MinIO %s: %d bytes, %v", what, len(got), err)
	}
	want := []byte("written after the outage\n")
	if err := os.WriteFile(filepath.Join(dir, "after"), want, 0o644); err != nil {
		t.Fatalf("writing after MinIO %s: %v", what, err)
	}
	ready := time.Since(back)
	if out, err := runWithin(t, 20*time.Second, "ls", dir); err != nil || !strings.Contains(out, "after") {
		t.Fatalf("ls after the write: %v %s", err, out)
	}
	c := srv.Client(t, srv.Config(bucket))
	if b := s3test.GetObject(t, c, "dir/after"); !bytes.Equal(b, want) {
		t.Fatalf("dir/after in S3 = %q", b)
	}
	t.Logf("MinIO %s: the mount listed again after %s; listed, read and wrote within %s",
		what, listed.Round(10*time.Millisecond), ready.Round(10*time.Millisecond))
}

// runWithin runs a command with a deadline (SIGKILL after it) and returns
// its combined output.
func runWithin(t testing.TB, limit time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s still running after %s (killed)", args[0], limit)
	}
	return string(out), err
}

// TestOpsDebugS3: a daemon run with --debug-s3 logs each S3 request of a
// workload (writes, a multipart upload, reads, listings, a rename, a
// removal) with its operation, status and request ID, and its log holds
// neither the secret key nor any part of a request's signature.
func TestOpsDebugS3(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	mnt := newMountpoint(t)
	logFile := filepath.Join(t.TempDir(), "bucketfs.log")
	d := startOpsDaemon(t, srv, bucket, mnt, nil, "--debug-s3", "--log-file", logFile, "--part-size", "5MiB")
	script := `set -e
cd "$1"
mkdir d
echo hello > d/small
head -c 12582912 /dev/zero > d/big
cat d/small d/big > /dev/null
ls -l d > /dev/null
mv d/small d/moved
rm d/moved
ls d`
	if out, err := runWithin(t, 60*time.Second, "sh", "-c", script, "sh", mnt); err != nil || strings.TrimSpace(out) != "big" {
		t.Fatalf("workload: %v %s", err, out)
	}
	d.signal(t, syscall.SIGTERM)
	d.waitExit(t, 30*time.Second)
	text := readFileOrEmpty(logFile)
	for _, secret := range []string{s3test.SecretKey, "Authorization", "authorization", "Signature=", "X-Amz-Signature",
		"AWS4-HMAC-SHA256", "Credential=", "X-Amz-Security-Token"} {
		if strings.Contains(text, secret) {
			t.Errorf("the debug log holds %q", secret)
		}
	}
	for _, op := range []string{"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
		"GetObject", "ListObjectsV2", "CopyObject", "DeleteObject"} {
		if !regexp.MustCompile(`msg="s3 request".* op=` + op + ` request_id=\S+ status=2\d\d`).MatchString(text) {
			t.Errorf("the debug log has no successful %s with its request ID", op)
		}
	}
	if t.Failed() {
		t.Logf("log (tail):\n%s", tail(text, 6000))
	}
}
