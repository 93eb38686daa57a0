package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// opsDaemon is a bucketfs -f process started by a test.
type opsDaemon struct {
	cmd  *exec.Cmd
	mnt  string
	out  *lockedWriter // its stdout and stderr
	done chan struct{} // closed when it has exited
}

// newMountpoint makes an empty directory to mount on.
func newMountpoint(t testing.TB) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return mnt
}

// startOpsDaemon runs bucketfs -f on bucket of srv at mnt with extra
// arguments and environment, and waits until the mount is live. Cleanup
// stops it (SIGTERM, then SIGKILL, by its PID) and unmounts what it left.
func startOpsDaemon(t testing.TB, srv *s3test.Server, bucket, mnt string, env []string, args ...string) *opsDaemon {
	t.Helper()
	return startOpsDaemonVia(t, srv.Endpoint, srv, bucket, mnt, env, args...)
}

// startOpsDaemonVia is startOpsDaemon with the daemon sent to endpoint (a
// proxy in front of srv) instead of srv itself.
func startOpsDaemonVia(t testing.TB, endpoint string, srv *s3test.Server, bucket, mnt string, env []string, args ...string) *opsDaemon {
	t.Helper()
	return startOpsDaemonIn(t, "", endpoint, srv, bucket, mnt, env, args...)
}

// startOpsDaemonIn is startOpsDaemonVia run in the directory cwd, with mnt
// named relative to it ("" runs in the test's directory, with mnt as it is).
func startOpsDaemonIn(t testing.TB, cwd, endpoint string, srv *s3test.Server, bucket, mnt string, env []string, args ...string) *opsDaemon {
	t.Helper()
	all := append([]string{"-f", "--endpoint-url", endpoint, "--force-path-style"}, args...)
	mntArg := mnt
	if cwd != "" {
		rel, err := filepath.Rel(cwd, mnt)
		if err != nil {
			t.Fatal(err)
		}
		mntArg = rel
	}
	d := &opsDaemon{
		cmd:  exec.Command(bucketfsBinary(t), append(all, bucket, mntArg)...),
		mnt:  mnt,
		out:  &lockedWriter{w: &bytes.Buffer{}},
		done: make(chan struct{}),
	}
	d.cmd.Dir = cwd
	d.cmd.Env = append(append(os.Environ(), srv.Env()...), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	// Killed with the test binary, so that no daemon outlives a crash.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if !d.exited() {
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				t.Errorf("bucketfs did not exit within 20s of SIGTERM")
				d.kill(t)
			}
		}
		unmountIfMounted(t, mnt)
		if t.Failed() {
			t.Logf("bucketfs output (tail):\n%s", tail(d.out.String(), 4000))
		}
	})
	// Ready once it logged "mounted": go-fuse's Mount returns only after
	// its start-up probe of the mount, a file it opens on the mount itself.
	// A daemon killed while it holds that file cannot exit (the kernel's
	// flush of the file waits for the daemon), so no test signals it before.
	logFile := ""
	for i, a := range args {
		if a == "--log-file" && i+1 < len(args) {
			logFile = args[i+1]
		}
	}
	waitFor(t, 20*time.Second, "the mount at "+mnt, func() bool {
		text := d.out.String()
		if logFile != "" {
			text = readFileOrEmpty(logFile)
		}
		return d.exited() || strings.Contains(text, "msg=mounted") && isMounted(t, mnt)
	})
	if d.exited() {
		t.Fatalf("bucketfs exited before mounting: %s", d.out.String())
	}
	return d
}

// kill sends SIGKILL and waits a bounded time for the exit; a daemon
// stuck in the kernel on its own mount is freed by umount -f, which aborts
// the FUSE connection of the test's own mountpoint.
func (d *opsDaemon) kill(t testing.TB) {
	t.Helper()
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
		return
	case <-time.After(10 * time.Second):
	}
	t.Errorf("bucketfs did not exit within 10s of SIGKILL; aborting its FUSE connection (umount -f %s)", d.mnt)
	_ = exec.Command("umount", "-f", d.mnt).Run()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Errorf("bucketfs (pid %d) is still stuck", d.cmd.Process.Pid)
	}
}

func (d *opsDaemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the daemon by its PID.
func (d *opsDaemon) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the daemon to exit and returns its exit code (-1 when
// a signal killed it).
func (d *opsDaemon) waitExit(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(within):
		t.Fatalf("bucketfs did not exit within %v; output:\n%s", within, tail(d.out.String(), 3000))
	}
	return d.cmd.ProcessState.ExitCode()
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unmountIfMounted unmounts mnt if something is mounted there (lazily if
// it is busy): only the tests' own mountpoints are passed to it.
func unmountIfMounted(t testing.TB, mnt string) {
	t.Helper()
	if ok, _ := isMountpointQuiet(mnt); !ok {
		return
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Logf("umount %s: %v %s; detaching", mnt, err, out)
		_ = exec.Command("umount", "-l", mnt).Run()
	}
}

func isMountpointQuiet(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ ` + regexp.QuoteMeta(dir) + ` `).Match(b), nil
}

// logPID is the pid a bucketfs log's "starting" line names, 0 when none.
func logPID(log string) int {
	m := regexp.MustCompile(`msg=starting.* pid=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		return 0
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// readFileOrEmpty is the file's text, "" while it does not exist.
func readFileOrEmpty(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ""
	}
	return string(b)
}
