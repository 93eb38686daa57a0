package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Helpers of commit_test.go: shell scripts with deadlines in process groups
// of their own, a check that nothing they started is left behind (in D
// state above all), requests counted by key, and a bucketfs daemon in a pid
// namespace of its own.

// killGrace is how long a killed process may take to go away. Longer, it is
// stuck in the kernel: a FUSE request the daemon read but never answered
// keeps its caller in D state even through SIGKILL.
const killGrace = 5 * time.Second

// commitCase is one case of the write-commit contract: a bucket of its own,
// mounted in this process, and the requests the mount sent, by key.
type commitCase struct {
	m    *mount
	keys *keyRequests
}

func newCommitCase(t *testing.T, srv *s3test.Server) *commitCase {
	t.Helper()
	bucket, _ := srv.Bucket(t)
	m := mountBucket(t, srv, bucket)
	return &commitCase{m: m, keys: watchKeys(m)}
}

// sh runs script in the mount's root and returns how it ended.
func (c *commitCase) sh(t testing.TB, limit time.Duration, script string) shellResult {
	t.Helper()
	return runShell(t, c.m.Dir, limit, script)
}

// start starts script in the mount's root.
func (c *commitCase) start(t testing.TB, limit time.Duration, script string) *shellRun {
	t.Helper()
	return startShell(t, c.m.Dir, limit, script)
}

// keyIs matches the requests for one key of the case's bucket.
func (c *commitCase) keyIs(key string) func(*http.Request) bool {
	path := "/" + c.m.Bucket + "/" + key
	return func(r *http.Request) bool { return r.URL.Path == path }
}

// ls lists the mount's root (ls -a) through the kernel.
func (c *commitCase) ls(t testing.TB) []string {
	t.Helper()
	res := c.sh(t, quickLimit, "ls -a")
	if res.code != 0 {
		t.Fatalf("ls -a: exit %d, output %q; want exit 0", res.code, res.out)
	}
	return strings.Fields(res.out)
}

// keyRequests counts the requests a mount sends by key and operation, as its
// fault transport sees them: each attempt, as m.Counter counts them.
type keyRequests struct {
	mu  sync.Mutex                // guards ops
	ops map[string]map[string]int // key -> S3 operation -> requests
}

// watchKeys starts counting m's requests by key. Its rule never matches, so
// it injects nothing; added before any fault, it sees every request.
func watchKeys(m *mount) *keyRequests {
	k := &keyRequests{ops: map[string]map[string]int{}}
	prefix := "/" + m.Bucket + "/"
	m.Faults.Add(s3test.Rule{Match: func(r *http.Request) bool {
		if key, ok := strings.CutPrefix(r.URL.Path, prefix); ok && key != "" {
			k.add(key, s3test.Op(r))
		}
		return false
	}})
	return k
}

func (k *keyRequests) add(key, op string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ops[key] == nil {
		k.ops[key] = map[string]int{}
	}
	k.ops[key][op]++
}

// count returns how many requests of op were sent for key.
func (k *keyRequests) count(key, op string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ops[key][op]
}

// of returns the requests sent for key, by operation.
func (k *keyRequests) of(key string) map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]int{}
	for op, n := range k.ops[key] {
		out[op] = n
	}
	return out
}

// delayTransport holds back the requests it matches for a while, then sends
// them on untouched. (s3test.Fault's Delay drains a request's body before
// sending it on, which breaks requests that have one, such as
// CompleteMultipartUpload.)
type delayTransport struct {
	next    http.RoundTripper
	match   func(*http.Request) bool
	delay   time.Duration
	delayed atomic.Int64 // requests held back so far
}

// delayRequests makes every request of m that match accepts wait delay
// before it is sent. It sits below m.Faults, which still sees and counts
// every request.
func delayRequests(m *mount, match func(*http.Request) bool, delay time.Duration) *delayTransport {
	d := &delayTransport{next: m.Faults.Next, match: match, delay: delay}
	m.Faults.Wrap(d)
	return d
}

// RoundTrip implements http.RoundTripper.
func (d *delayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.match(r) {
		d.delayed.Add(1)
		select {
		case <-time.After(d.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return d.next.RoundTrip(r)
}

// shellRun is a bash script a test started, in a process group of its own,
// with a deadline: past it, the whole group is killed.
type shellRun struct {
	script  string
	mnt     string // the mount the script works in, aborted to free a process stuck on it
	limit   time.Duration
	started time.Time
	pgid    int
	out     *lockedWriter
	killed  atomic.Bool   // the deadline passed and the group was killed
	done    chan struct{} // closed once the script has exited and been reaped
	err     error         // Wait's result; set before done is closed
	ended   time.Time     // set before done is closed

	reportOnce sync.Once // leftovers are checked once
}

// shellResult is how a script ended.
type shellResult struct {
	script string
	code   int    // exit status; -1 when killed by a signal
	out    string // stdout and stderr, interleaved as written
	took   time.Duration
}

// expectClean fails the test unless the script exited 0 and printed nothing.
func (r shellResult) expectClean(t testing.TB) {
	t.Helper()
	if r.code != 0 || r.out != "" {
		t.Errorf("%q: exit %d, output %q; want exit 0 and no output", r.script, r.code, r.out)
	}
}

// runShell runs script with bash in dir and waits for it (see shellRun.wait).
func runShell(t testing.TB, dir string, limit time.Duration, script string) shellResult {
	t.Helper()
	return startShell(t, dir, limit, script).wait(t)
}

// startShell starts script with bash in dir. It is killed (with everything
// it started) at its deadline or when the test ends, whichever comes first.
func startShell(t testing.TB, dir string, limit time.Duration, script string) *shellRun {
	t.Helper()
	p := &shellRun{script: script, mnt: mountpointOf(t, dir), limit: limit,
		out: &lockedWriter{w: &bytes.Buffer{}}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	// bash enters dir itself: a chdir by the forked child into a stuck
	// mount would block Start, which has no deadline.
	cmd := exec.CommandContext(ctx, "bash", "-c", "cd \"$COMMIT_DIR\" || exit 97\n"+script)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "COMMIT_DIR="+dir, "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		p.killed.Store(true)
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %q: %v", script, err)
	}
	p.pgid = cmd.Process.Pid
	go func() {
		err := cmd.Wait()
		cancel()
		p.err, p.ended = err, time.Now()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// running says whether the script has not exited yet.
func (p *shellRun) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// output returns what the script printed so far.
func (p *shellRun) output() string { return p.out.String() }

// wait waits for the script to end and returns how it ended. A script that
// passed its deadline fails the test as hung; one that SIGKILL cannot end is
// reported with the state of its processes, which the test then frees by
// aborting the mount's FUSE connection.
func (p *shellRun) wait(t testing.TB) shellResult {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Until(p.started.Add(p.limit)) + killGrace):
		stuck := describe(processGroup(p.pgid))
		p.rescue(t)
		t.Fatalf("%q hung: still running %v after its %v deadline and a SIGKILL, stuck in the kernel: %s",
			p.script, killGrace, p.limit, stuck)
	}
	res := shellResult{script: p.script, code: exitCode(p.err), out: p.out.String(), took: p.ended.Sub(p.started)}
	p.checkLeftovers(t)
	if p.killed.Load() {
		t.Fatalf("%q hung: no exit within %v, killed; output so far %q", p.script, p.limit, res.out)
	}
	return res
}

// stop ends the script and its group at cleanup, however the test ended.
func (p *shellRun) stop(t testing.TB) {
	if p.running() {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(killGrace):
			t.Errorf("%q could not be killed at cleanup, stuck in the kernel: %s", p.script, describe(processGroup(p.pgid)))
			p.rescue(t)
			select {
			case <-p.done:
			case <-time.After(killGrace):
				t.Errorf("%q still there after its mount was aborted", p.script)
			}
		}
	}
	p.checkLeftovers(t)
}

// checkLeftovers kills what the script left running in its process group
// and fails the test for every process stuck in D state.
func (p *shellRun) checkLeftovers(t testing.TB) {
	p.reportOnce.Do(func() {
		left := processGroup(p.pgid)
		if len(left) == 0 {
			return
		}
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		for deadline := time.Now().Add(killGrace); len(left) > 0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			left = processGroup(p.pgid)
		}
		var stuck []procStat
		for _, ps := range left {
			if ps.state == 'D' {
				stuck = append(stuck, ps)
			}
		}
		if len(stuck) > 0 {
			t.Errorf("%q left processes in D state (uninterruptible, waiting on the mount) %v after SIGKILL: %s; want none",
				p.script, killGrace, describe(stuck))
			p.rescue(t)
		}
	})
}

// rescue aborts the FUSE connection of the script's mount: every request a
// process is stuck on then fails, and the process can exit.
func (p *shellRun) rescue(t testing.TB) {
	if p.mnt != "" {
		forceUnmount(t, p.mnt)
	}
}

// forceUnmount aborts the FUSE connection of the mount at mnt (MNT_FORCE
// does, before it even tries to unmount), so every request a process is
// stuck on fails, then detaches the mount. Detached, its server's own
// cleanup cannot wait forever on handlers that may be deadlocked: go-fuse's
// Unmount waits for every handler once an unmount succeeds.
func forceUnmount(t testing.TB, mnt string) {
	errForce := syscall.Unmount(mnt, syscall.MNT_FORCE)
	errDetach := syscall.Unmount(mnt, syscall.MNT_DETACH)
	t.Logf("aborted and detached the mount at %s to free processes stuck on it (force: %v, detach: %v)", mnt, errForce, errDetach)
}

// mountpointOf returns the mountpoint dir is in, from the mount table (never
// from the file system, which may be stuck).
func mountpointOf(t testing.TB, dir string) string {
	t.Helper()
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if isMounted(t, d) {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil || errors.Is(err, exec.ErrWaitDelay):
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// procStat is what /proc/PID/stat says of a process.
type procStat struct {
	pid, ppid, pgrp int
	comm            string
	state           byte // R, S, D, Z, ...
}

func (ps procStat) String() string {
	return fmt.Sprintf("%d (%s) state %c", ps.pid, ps.comm, ps.state)
}

// readProcStat reads /proc/PID/stat; ok is false when the process is gone.
func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return procStat{}, false
	}
	ps := procStat{pid: pid, comm: s[open+1 : end], state: fields[0][0]}
	ps.ppid, _ = strconv.Atoi(fields[1])
	ps.pgrp, _ = strconv.Atoi(fields[2])
	return ps, true
}

// processGroup returns the live processes of a process group (zombies,
// which only wait to be reaped, left out).
func processGroup(pgid int) []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ps, ok := readProcStat(pid); ok && ps.pgrp == pgid && ps.state != 'Z' {
			out = append(out, ps)
		}
	}
	return out
}

func describe(procs []procStat) string {
	if len(procs) == 0 {
		return "none left"
	}
	s := make([]string, len(procs))
	for i, ps := range procs {
		s[i] = ps.String()
	}
	return strings.Join(s, ", ")
}

// startPidZeroMount runs the bucketfs binary in the foreground in a pid
// namespace of its own (unshare --pid --fork): the daemon cannot see the
// test's processes, so FUSE gives it pid 0 for all their requests. Cleanup
// stops the daemon by PID (SIGTERM, on which it unmounts) and unmounts what
// remains.
func startPidZeroMount(t *testing.T, srv *s3test.Server, bucket string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	cmd := exec.CommandContext(ctx, "unshare", "--pid", "--fork", "--kill-child=SIGTERM",
		bucketfsBinary(t), "-f", "--endpoint-url", srv.Endpoint, "--force-path-style", "--log-level", "debug", bucket, mnt)
	cmd.Env = append(os.Environ(), srv.Env()...)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting bucketfs under unshare: %v", err)
	}
	unsharePid := cmd.Process.Pid
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	// The daemon is unshare's child, the first process of the new namespace.
	daemonPid := func() int {
		for _, ps := range processGroup(unsharePid) {
			if ps.ppid == unsharePid {
				return ps.pid
			}
		}
		return 0
	}
	t.Cleanup(func() {
		defer cancel()
		if pid := daemonPid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		select {
		case <-done:
			t.Logf("bucketfs under unshare exited: %v", waitErr)
		case <-time.After(20 * time.Second):
			t.Errorf("bucketfs did not exit within 20s of SIGTERM: %s", describe(processGroup(unsharePid)))
			_ = syscall.Kill(-unsharePid, syscall.SIGKILL)
			select {
			case <-done:
			case <-time.After(killGrace):
				forceUnmount(t, mnt)
				<-done
			}
		}
		if isMounted(t, mnt) {
			t.Errorf("%s is still mounted after bucketfs exited; want it unmounted on SIGTERM", mnt)
			if err := syscall.Unmount(mnt, syscall.MNT_FORCE|syscall.MNT_DETACH); err != nil {
				t.Errorf("unmounting %s: %v", mnt, err)
			}
		}
		if left := processGroup(unsharePid); len(left) > 0 {
			t.Errorf("processes of the bucketfs daemon left behind: %s", describe(left))
			_ = syscall.Kill(-unsharePid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("bucketfs log (tail):\n%s", tail(logs.String(), 4000))
		}
	})
	waitUntil(t, 20*time.Second, "bucketfs to mount "+mnt, func() bool {
		select {
		case <-done:
			t.Fatalf("bucketfs under unshare exited before mounting: %v\n%s", waitErr, logs.String())
		default:
		}
		return isMounted(t, mnt)
	})
	// Check the premise: the daemon is in another pid namespace than the
	// processes the test starts.
	pid := daemonPid()
	theirs, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	ours, err2 := os.Readlink("/proc/self/ns/pid")
	if pid == 0 || err1 != nil || err2 != nil || theirs == ours {
		t.Fatalf("bucketfs (pid %d) pid namespace %q (%v), ours %q (%v); want a namespace of its own", pid, theirs, err1, ours, err2)
	}
	return mnt
}
