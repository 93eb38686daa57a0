package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/bench/s3proxy"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Helpers of the staged-write tests (staged_tools_test.go,
// staged_fsx_test.go): a bucketfs daemon behind a counting proxy, with its
// stage under a --cache-dir of the test's own; tools run with deadlines in
// process groups of their own; Go system calls on the mount guarded by a
// watchdog that aborts the mount rather than let a test hang.
//
// BUCKETFS_E2E_STAGED_TARGET=local runs every "mount" side of these tests
// on a plain directory instead: no MinIO, no FUSE, and the checks of S3
// (requests, bytes, objects) left out. It shows that the tests themselves
// are right while the feature they wait for is missing.

// stagedLocal says whether the staged tests run on plain directories.
func stagedLocal() bool { return os.Getenv("BUCKETFS_E2E_STAGED_TARGET") == "local" }

// stagedServer starts MinIO for a staged test; nil on plain directories.
func stagedServer(t *testing.T) *s3test.Server {
	t.Helper()
	if stagedLocal() {
		return nil
	}
	requireFUSE(t)
	return s3test.StartMinIO(t)
}

// stagedMount is the directory a staged test works in: a bucketfs daemon's
// mount of a bucket of its own, or a plain directory.
type stagedMount struct {
	Dir    string
	Bucket string
	Client *s3client.Client // a direct client, bypassing the mount and the proxy
	// Proxy sits between the daemon and MinIO and counts the daemon's
	// requests and bytes by S3 operation.
	Proxy *s3proxy.Proxy
	// CacheDir is the daemon's --cache-dir, where its stage files live; ""
	// when the binary has no such flag yet.
	CacheDir string

	srv         *s3test.Server
	args        []string
	daemon      *opsDaemon
	metricsAddr string
	stage       *stageSampler
}

// newStagedMount mounts a new bucket of srv through the bucketfs binary
// (a daemon of its own: the test may map files of the mount without
// deadlocking against a server in its own process), or makes a plain
// directory when srv is nil.
func newStagedMount(t *testing.T, srv *s3test.Server) *stagedMount {
	t.Helper()
	if srv == nil {
		dir := filepath.Join(t.TempDir(), "local")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return &stagedMount{Dir: dir}
	}
	bucket, client := srv.Bucket(t)
	proxy, err := s3proxy.Start(s3proxy.Config{Upstream: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	m := &stagedMount{Dir: newMountpoint(t), Bucket: bucket, Client: client, Proxy: proxy, srv: srv, metricsAddr: freeAddr(t)}
	m.args = []string{"--endpoint-url", proxy.URL, "--metrics-addr", m.metricsAddr}
	if stageFlagsKnown(t) {
		m.CacheDir = filepath.Join(t.TempDir(), "cache")
		if err := os.Mkdir(m.CacheDir, 0o700); err != nil {
			t.Fatal(err)
		}
		m.args = append(m.args, "--cache-dir", m.CacheDir)
		m.stage = startStageSampler(t, m.CacheDir)
	}
	m.start(t)
	return m
}

func (m *stagedMount) start(t *testing.T) {
	t.Helper()
	m.daemon = startOpsDaemon(t, m.srv, m.Bucket, m.Dir, nil, m.args...)
}

// local says whether m is a plain directory.
func (m *stagedMount) local() bool { return m.srv == nil }

// Path is the path of name in the directory.
func (m *stagedMount) Path(name string) string { return filepath.Join(m.Dir, name) }

// Remount stops the daemon (SIGTERM: it unmounts once its uploads are
// done) and mounts the bucket again at the same place: what the test reads
// then comes from S3, not from the daemon's memory or stage. Nothing on a
// plain directory.
func (m *stagedMount) Remount(t *testing.T) {
	t.Helper()
	if m.local() {
		return
	}
	m.daemon.signal(t, syscall.SIGTERM)
	if code := m.daemon.waitExit(t, 90*time.Second); code != 0 {
		t.Errorf("bucketfs exited %d on SIGTERM; want 0. Output:\n%s", code, tail(m.daemon.out.String(), 3000))
	}
	if isMounted(t, m.Dir) {
		t.Fatalf("%s is still mounted after bucketfs exited", m.Dir)
	}
	m.start(t)
}

// Counts is what the proxy saw of the daemon's requests so far (nothing
// on a plain directory).
func (m *stagedMount) Counts() s3proxy.Counts {
	if m.local() {
		return s3proxy.Counts{}
	}
	return m.Proxy.Snapshot()
}

// settle waits until the daemon has sent no request for a moment (at most
// 10 s), so that counts taken after a command include what it caused
// after it exited: a commit at the last release, which the kernel sends
// after close returned.
func (m *stagedMount) settle(t *testing.T) {
	t.Helper()
	if m.local() {
		return
	}
	const quiet = 500 * time.Millisecond
	last, lastChange := m.Counts().Total(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if now := m.Counts().Total(); now != last {
			last, lastChange = now, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
	}
	t.Logf("the daemon was still sending requests 10 s after the command ended")
}

// object reads key directly from S3.
func (m *stagedMount) object(t testing.TB, key string) []byte {
	t.Helper()
	b, err := getObject(m.Client, key)
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	return b
}

// figures describes what the daemon used: its peak resident memory, the
// peak size of its stage, and the stage metrics it exports.
func (m *stagedMount) figures(t *testing.T) string {
	t.Helper()
	if m.local() {
		return "plain directory"
	}
	parts := []string{"daemon peak RSS " + mib(peakRSS(t, m.daemon.cmd.Process.Pid))}
	if m.stage != nil {
		parts = append(parts, fmt.Sprintf("stage peak %s on disk (sampled every %v)", mib(m.stage.peak.Load()), stageSampleEvery))
	} else {
		parts = append(parts, "no --cache-dir in this binary")
	}
	metrics := scrape(t, m.metricsAddr)
	var names []string
	for k := range metrics {
		if strings.Contains(k, "stage") || strings.Contains(k, "cache_dir") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%g", k, metrics[k]))
	}
	return strings.Join(parts, "; ")
}

// mib formats a byte count.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// describeCounts says how many requests and bytes each operation took.
func describeCounts(c s3proxy.Counts) string {
	if len(c) == 0 {
		return "none"
	}
	var parts []string
	for _, op := range c.Ops() {
		v := c[op]
		s := fmt.Sprintf("%s×%d", op, v.Requests)
		if v.BytesUp > 0 {
			s += " up " + mib(v.BytesUp)
		}
		if v.BytesDown > 0 {
			s += " down " + mib(v.BytesDown)
		}
		parts = append(parts, s)
	}
	tot := c.Total()
	return fmt.Sprintf("%d requests, %s up, %s down: %s", tot.Requests, mib(tot.BytesUp), mib(tot.BytesDown), strings.Join(parts, ", "))
}

var (
	stageFlagsOnce sync.Once
	stageFlags     bool
)

// stageFlagsKnown says whether the bucketfs binary under test has
// --cache-dir. The staged tests give it a cache directory of their own
// when it has; until the flag exists they mount without one, and fail
// where the feature is missing rather than at the mount.
func stageFlagsKnown(t testing.TB) bool {
	t.Helper()
	bin := bucketfsBinary(t)
	stageFlagsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
		stageFlags = bytes.Contains(out, []byte("--cache-dir"))
	})
	return stageFlags
}

const stageSampleEvery = 50 * time.Millisecond

// stageSampler records the most disk space the files under a directory
// took at once (allocated blocks, so holes do not count).
type stageSampler struct {
	peak atomic.Int64
}

func startStageSampler(t testing.TB, dir string) *stageSampler {
	s := &stageSampler{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(stageSampleEvery)
		defer tick.Stop()
		for {
			if n := diskUsage(dir); n > s.peak.Load() {
				s.peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return s
}

// diskUsage sums the allocated size of the files under dir.
func diskUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// watchdog bounds the Go system calls a test makes on m: past limit it
// aborts the mount's FUSE connection, so that every call stuck on it fails
// at once, and the test fails as hung when it calls the returned stop (or
// at its end, when it failed before calling it).
func (m *stagedMount) watchdog(t *testing.T, limit time.Duration, what string) (stop func()) {
	t.Helper()
	if m.local() {
		return func() {}
	}
	fired := make(chan string, 1) // what the abort did, once it is done
	timer := time.AfterFunc(limit, func() {
		errForce := syscall.Unmount(m.Dir, syscall.MNT_FORCE)
		errDetach := syscall.Unmount(m.Dir, syscall.MNT_DETACH)
		fired <- fmt.Sprintf("force: %v, detach: %v", errForce, errDetach)
	})
	var once sync.Once
	check := func() {
		once.Do(func() {
			if timer.Stop() {
				return
			}
			t.Errorf("%s hung: not done within %v, so the watchdog aborted and detached the mount (%s)", what, limit, <-fired)
		})
	}
	t.Cleanup(check)
	return func() {
		t.Helper()
		check()
		if t.Failed() {
			t.FailNow()
		}
	}
}

// toolStep is one command of a tool's scenario, a bash script run in the
// scenario's directory.
type toolStep struct {
	name   string
	script string
	// same: its output must be the same on the mount as on the local
	// directory (the directory's path replaced by $DIR first).
	same bool
	// ignore, when set, leaves the lines holding it out of the output.
	ignore string
}

// stepResult is how a step went.
type stepResult struct {
	step toolStep
	out  string
	took time.Duration
}

// runSteps runs the steps in order in dir, each with limit as its
// deadline, and fails the test at the first that fails. env is added to
// the environment; $DIR is dir.
func (m *stagedMount) runSteps(t *testing.T, dir string, limit time.Duration, env []string, steps []toolStep) []stepResult {
	t.Helper()
	var out []stepResult
	for _, s := range steps {
		res, err := m.sh(t, dir, limit, env, s.script)
		if err != nil {
			t.Fatalf("%s (%s) in %s: %v\nscript:\n%s\noutput:\n%s", s.name, m.kind(dir), dir, err, s.script, tail(res.out, 4000))
		}
		res.step = s
		res.out = strings.ReplaceAll(res.out, dir, "$DIR")
		if s.ignore != "" {
			var kept []string
			for _, line := range strings.SplitAfter(res.out, "\n") {
				if !strings.Contains(line, s.ignore) {
					kept = append(kept, line)
				}
			}
			if left := strings.Join(kept, ""); left != res.out {
				t.Logf("%s %s: left out of the comparison: the lines holding %q", s.name, m.kind(dir), s.ignore)
				res.out = left
			}
		}
		out = append(out, res)
	}
	return out
}

// kind names where dir is, for messages.
func (m *stagedMount) kind(dir string) string {
	if !m.local() && strings.HasPrefix(dir, m.Dir) {
		return "on the mount"
	}
	return "on a local directory"
}

// sh runs script with bash in dir, in a process group of its own, with a
// deadline. Past it the group is killed; a process SIGKILL cannot end is
// stuck on the mount, which is then aborted (only when dir is on it) and
// the test fails as hung. Processes the script left behind are killed.
// (startShell rescues a stuck script by aborting whatever mount its
// directory is on, which for a local directory is not the test's own.)
func (m *stagedMount) sh(t *testing.T, dir string, limit time.Duration, env []string, script string) (stepResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// bash enters dir itself: a chdir by the forked child into a stuck
	// mount would block Start, which has no deadline.
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -eo pipefail\ncd \"$DIR\" || exit 97\n"+script)
	cmd.Dir = "/"
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "DIR="+dir), env...)
	out := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var killed atomic.Bool
	cmd.Cancel = func() error {
		killed.Store(true)
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting bash: %v", err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit + killGrace):
		stuck := describe(processGroup(pgid))
		onMount := !m.local() && strings.HasPrefix(dir, m.Dir)
		if onMount {
			forceUnmount(t, m.Dir)
		}
		select {
		case <-done:
		case <-time.After(killGrace):
		}
		t.Fatalf("%q hung: still running %v after its %v deadline and a SIGKILL, stuck in the kernel: %s (mount aborted: %v)",
			script, killGrace, limit, stuck, onMount)
	}
	res := stepResult{out: out.String(), took: time.Since(start)}
	if left := processGroup(pgid); len(left) > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		t.Errorf("%q left processes behind: %s; killed", script, describe(left))
	}
	if killed.Load() {
		return res, fmt.Errorf("no exit within %v: killed (hung)", limit)
	}
	return res, err
}

// compareSteps fails the test for every step whose output differs between
// the local directory and the mount, and logs the time each took on both.
func compareSteps(t *testing.T, tool string, local, mounted []stepResult) {
	t.Helper()
	var lt, mt time.Duration
	var lines []string
	for i := range local {
		if i >= len(mounted) {
			break
		}
		l, m := local[i], mounted[i]
		lt += l.took
		mt += m.took
		lines = append(lines, fmt.Sprintf("%-22s local %8v  mount %8v  ×%.1f", l.step.name, l.took.Round(time.Millisecond), m.took.Round(time.Millisecond), ratio(m.took, l.took)))
		if l.step.same && l.out != m.out {
			t.Errorf("%s: %s printed on the mount:\n%s\nand on a local directory:\n%s", tool, l.step.name, tail(m.out, 3000), tail(l.out, 3000))
		}
	}
	t.Logf("%s: local %v, mount %v (×%.1f)\n%s", tool, lt.Round(time.Millisecond), mt.Round(time.Millisecond), ratio(mt, lt), strings.Join(lines, "\n"))
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// writeFile writes data at path, failing the test on error.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
