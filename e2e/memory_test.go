package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// memoryOverhead is the documented fixed overhead of the bucketfs process
// beyond --upload-memory: Go runtime, SDK, FUSE request buffers, HTTP
// connections. README "Limits" states it.
const memoryOverhead = 96 << 20

// peakRSS reads a process's high-water resident set size.
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// startBinaryMount runs bin/bucketfs -f on a fresh mountpoint and returns
// the mountpoint and the process; cleanup unmounts and waits for it.
func startBinaryMount(t testing.TB, srv *s3test.Server, bucket string, flags ...string) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-f", "--endpoint-url", srv.Endpoint, "--force-path-style", "--log-level", "warn"}, flags...)
	cmd := exec.Command(bucketfsBinary(t), append(args, bucket, mnt)...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if isMounted(t, mnt) {
			if err := exec.Command("umount", mnt).Run(); err != nil {
				_ = exec.Command("umount", "-l", mnt).Run()
			}
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !isMounted(t, mnt) {
		if time.Now().After(deadline) {
			t.Fatalf("bucketfs did not mount: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return mnt, cmd, logs
}

// TestMemoryBound: 8 concurrent writers of 300 MiB each under a 64 MiB
// budget all finish and verify, and the process's peak RSS stays within the
// budget plus the documented fixed overhead.
func TestMemoryBound(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	const budget = 64 << 20
	mnt, cmd, logs := startBinaryMount(t, srv, bucket, "--upload-memory", "64MiB", "--part-size", "8MiB", "--upload-concurrency", "8")
	src, want := writeSource(t, 42, 300<<20)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := exec.Command("dd", "if="+src, fmt.Sprintf("of=%s/w%d", mnt, i), "bs=1M").CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("writer %d: %v: %s", i, err, out)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\nbucketfs log:\n%s", err, tail(logs.String(), 3000))
	}
	elapsed := time.Since(start)
	rss := peakRSS(t, cmd.Process.Pid)
	t.Logf("8 x 300 MiB in %.1fs (%.0f MB/s), peak RSS %d MiB (budget %d MiB + overhead %d MiB)",
		elapsed.Seconds(), 8*300*1.048576/elapsed.Seconds(), rss>>20, budget>>20, memoryOverhead>>20)
	for i := 0; i < 8; i++ {
		if got := objectSHA(t, c, fmt.Sprintf("w%d", i)); got != want {
			t.Fatalf("w%d differs", i)
		}
	}
	if rss > budget+memoryOverhead {
		t.Fatalf("peak RSS %d MiB exceeds budget %d MiB + overhead %d MiB", rss>>20, budget>>20, memoryOverhead>>20)
	}
}
