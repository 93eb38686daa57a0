package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// The write-commit contract, driven through a kernel mount by real shell
// commands: which close completes an upload when descriptors are forked,
// dup'd and inherited; what readers of the bucket see meanwhile; whether
// stat and ls answer while a close waits on S3; and which errno a failure
// gives. Subtests are numbered as the contract's cases. Every command runs
// with a deadline (commit_helpers_test.go): a hang fails the test instead of
// stalling it, and no process is left behind, in D state or otherwise.

// Deadlines of the commands the cases run. A command that passes its
// deadline is killed and reported as hung.
const (
	quickLimit = 15 * time.Second // a command that should be done at once
	// statLatency is how fast stat and ls must answer while a close waits
	// on a slow CompleteMultipartUpload.
	statLatency = time.Second
)

// forkedWriterCases are contract cases 1 and 2: a file f written through
// descriptors that forked children inherit and close, or that the shell
// opens with exec. TestWriteCommitPidZero runs them again with pid 0.
var forkedWriterCases = []struct {
	name   string
	script string // run in the case's directory; writes f
	want   string // f's bytes afterwards
	onePut bool   // exactly one PutObject for f (case 1)
}{
	{"1-for-loop", `for i in 1 2 3; do /bin/echo "line $i"; done > f`, "line 1\nline 2\nline 3\n", true},
	{"2-subshell", `(echo a; /bin/echo b; echo c) > f`, "a\nb\nc\n", false},
	{"2-exec-fd", `exec 3>f; echo first >&3; echo second >&3; exec 3>&-`, "first\nsecond\n", false},
	// A chmod between two commits waits for the file's release: applied
	// 2 s later as a self-copy, it would change the ETag the reopen copies.
	// (9 MiB: a multipart object, whose ETag a self-copy changes.)
	{"2-exec-fd-chmod-between", `exec 3>f; head -c 9437184 /dev/zero >&3; echo first >&3; chmod 600 f; sleep 2.5; echo second >&3; exec 3>&-; stat -c %a f | grep -qx 600`,
		strings.Repeat("\x00", 9437184) + "first\nsecond\n", false},
}

// TestWriteCommit: contract cases 1 to 5 and 7 to 9, each on a bucket and a
// mount of its own.
func TestWriteCommit(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)

	for _, tc := range forkedWriterCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCommitCase(t, srv)
			res := c.sh(t, quickLimit, tc.script)
			checkObject(t, c.m.Client, "f", tc.want, tc.script, res)
			res.expectClean(t)
			if tc.onePut {
				if n := c.keys.count("f", "PutObject"); n != 1 {
					t.Errorf("%s: %d PutObject requests for f, want exactly 1 (requests for f: %v; all the mount's: %v)",
						tc.script, n, c.keys.of("f"), c.m.Counter.Snapshot())
				}
			}
		})
	}

	t.Run("3-slow-overwrite-keeps-old-object", func(t *testing.T) {
		c := newCommitCase(t, srv)
		const old = "old content\n"
		s3test.PutObjects(t, c.m.Client, map[string][]byte{"existing": []byte(old)})
		const script = `(sleep 3; echo new) > existing`
		p := c.start(t, quickLimit, script)
		// Poll the bucket while the subshell sleeps: the overwrite has not
		// completed, so readers of the bucket see the old object whole.
		var polls, wrong []string
		for deadline := p.started.Add(2500 * time.Millisecond); time.Now().Before(deadline) && p.running(); {
			time.Sleep(400 * time.Millisecond)
			got, err := getObject(c.m.Client, "existing")
			seen := fmt.Sprintf("%v: %q", time.Since(p.started).Round(time.Millisecond), got)
			if err != nil {
				seen = fmt.Sprintf("%v: %v", time.Since(p.started).Round(time.Millisecond), err)
			}
			polls = append(polls, seen)
			if err != nil || string(got) != old {
				wrong = append(wrong, seen)
			}
		}
		if len(wrong) > 0 {
			t.Errorf("GetObject existing during the sleep of %q saw %s; want the old %q until the overwrite completes",
				script, strings.Join(wrong, ", "), old)
		}
		if len(polls) < 4 {
			t.Errorf("%q ended %v after it started, after %d polls of the bucket; want it still sleeping for at least 4",
				script, time.Since(p.started).Round(time.Millisecond), len(polls))
		}
		res := p.wait(t)
		checkObject(t, c.m.Client, "existing", "new\n", script, res)
		res.expectClean(t)
	})

	t.Run("3-echo-new-file-is-one-put", func(t *testing.T) {
		c := newCommitCase(t, srv)
		const script = `echo hi > newfile`
		res := c.sh(t, quickLimit, script)
		checkObject(t, c.m.Client, "newfile", "hi\n", script, res)
		res.expectClean(t)
		ops := c.keys.of("newfile")
		if ops["PutObject"] != 1 || ops["CreateMultipartUpload"] != 0 {
			t.Errorf("%s: requests for newfile %v; want exactly one PutObject and no CreateMultipartUpload (all the mount's: %v)",
				script, ops, c.m.Counter.Snapshot())
		}
	})

	t.Run("3-sync-file-commits-another-descriptors-writes", func(t *testing.T) {
		// `sync FILE` fsyncs a read-only descriptor: as on a disk, what a
		// writer still holding the file open wrote is in S3 when it
		// returns. The writes are by child processes (env printf), whose
		// exits close no descriptor of the opener's; the shell's own
		// builtin with a redirection would (a flush by the opener commits).
		c := newCommitCase(t, srv)
		tmp := t.TempDir()
		synced, checked := filepath.Join(tmp, "synced"), filepath.Join(tmp, "checked")
		// The writer waits, holding the file open, until the test has
		// looked at the bucket.
		script := fmt.Sprintf(`exec 3>log; env printf 'one\n' >&3; sync log && touch %s; while [ ! -e %s ]; do sleep 0.05; done; env printf 'two\n' >&3; exec 3>&-`, synced, checked)
		p := c.start(t, quickLimit, script)
		deadline := time.Now().Add(quickLimit)
		for p.running() && time.Now().Before(deadline) {
			if _, err := os.Stat(synced); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		running := p.running()
		got, err := getObject(c.m.Client, "log")
		if !running || string(got) != "one\n" {
			t.Errorf("once `sync log` of %q returned (still running: %v), GetObject log = %q, %v; want \"one\\n\" while the writer holds it open (requests for log: %v)",
				script, running, got, err, c.keys.of("log"))
		}
		if err := os.WriteFile(checked, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		res := p.wait(t)
		checkObject(t, c.m.Client, "log", "one\ntwo\n", script, res)
		res.expectClean(t)
	})

	t.Run("3-touch-creates-empty-object", func(t *testing.T) {
		c := newCommitCase(t, srv)
		const script = `touch newfile2`
		res := c.sh(t, quickLimit, script)
		res.expectClean(t)
		// The empty object is created at touch's last close (RELEASE,
		// which the kernel sends after close() returned): within moments.
		var info *s3client.ObjectInfo
		var err error
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if info, err = headObject(c.m.Client, "newfile2"); err == nil {
				break
			}
		}
		if err != nil || info.Size != 0 {
			t.Errorf("HeadObject newfile2 within 2 s after %q exited: %+v, %v; want an empty object", script, info, err)
		}
		if n := c.keys.count("newfile2", "PutObject"); n != 1 {
			t.Errorf("%s: %d PutObject requests for newfile2, want exactly 1 (requests for newfile2: %v; all the mount's: %v)",
				script, n, c.keys.of("newfile2"), c.m.Counter.Snapshot())
		}
	})

	t.Run("4-stat-and-ls-while-close-waits", func(t *testing.T) {
		c := newCommitCase(t, srv)
		const delay = 2 * time.Second
		isComplete := func(r *http.Request) bool { return s3test.Op(r) == "CompleteMultipartUpload" && c.keyIs("big")(r) }
		slow := delayRequests(c.m, isComplete, delay)
		const script = `dd if=/dev/zero of=big bs=1M count=20`
		dd := c.start(t, 60*time.Second, script)
		// dd's close waits once its CompleteMultipartUpload reached the transport.
		waitUntil(t, 30*time.Second, "dd's CompleteMultipartUpload for big to be sent", func() bool {
			if !dd.running() {
				res := dd.wait(t)
				t.Fatalf("%s ended (exit %d, output %q) before any CompleteMultipartUpload for big was sent; want a multipart upload whose Complete the test delays (requests for big: %v)",
					script, res.code, res.out, c.keys.of("big"))
			}
			return slow.delayed.Load() > 0
		})
		completeSent := time.Now()
		var statsDuring, listsDuring int
		var slowest time.Duration
		for range 3 {
			for _, probe := range []string{`stat big`, `ls -l .`} {
				during := dd.running()
				res := c.sh(t, 5*time.Second, probe)
				if res.code != 0 {
					t.Errorf("%q while dd's close waited: exit %d, output %q; want exit 0", probe, res.code, res.out)
				}
				slowest = max(slowest, res.took)
				if res.took > statLatency {
					t.Errorf("%q while dd's close waited: answered in %v, want within %v", probe, res.took.Round(time.Millisecond), statLatency)
				}
				if during && dd.running() {
					if probe == `stat big` {
						statsDuring++
					} else {
						listsDuring++
					}
				}
			}
		}
		t.Logf("%d stat and %d ls ran while dd's close waited; the slowest answered in %v", statsDuring, listsDuring, slowest.Round(time.Millisecond))
		if statsDuring == 0 || listsDuring == 0 {
			t.Errorf("only %d stat and %d ls ran entirely while dd's close waited (%v after its Complete was sent, with a %v delay); want at least one of each",
				statsDuring, listsDuring, time.Since(completeSent).Round(time.Millisecond), delay)
		}
		res := dd.wait(t)
		if res.code != 0 {
			t.Errorf("%s: exit %d, output %q; want exit 0", script, res.code, res.out)
		}
		got, err := getObject(c.m.Client, "big")
		if err != nil || len(got) != 20<<20 || !allZero(got) {
			t.Errorf("object big after %s: %d bytes (all zero: %v), %v; want 20 MiB of zeros", script, len(got), allZero(got), err)
		}
	})

	t.Run("5-failed-overwrite-keeps-old-object", func(t *testing.T) {
		c := newCommitCase(t, srv)
		old := randomBytes(55, 2<<20)
		s3test.PutObjects(t, c.m.Client, map[string][]byte{"over": old})
		rule := c.m.Faults.Add(s3test.Rule{Op: "CreateMultipartUpload", Match: c.keyIs("over"),
			Fault: s3test.Fault{Status: 500, Code: "InternalError"}})
		const script = `dd if=/dev/zero of=over bs=1M count=40`
		res := c.sh(t, 60*time.Second, script)
		if res.code == 0 || !strings.Contains(res.out, "Input/output error") {
			t.Errorf("%s with CreateMultipartUpload failing: exit %d, output %q; want a non-zero exit and an Input/output error on write or close",
				script, res.code, res.out)
		}
		if c.m.Faults.Hits(rule) == 0 {
			t.Errorf("%s: no CreateMultipartUpload for over was sent, so none failed (requests for over: %v); want the 40 MiB to need a multipart upload",
				script, c.keys.of("over"))
		}
		got, err := getObject(c.m.Client, "over")
		if err != nil || !bytes.Equal(got, old) {
			t.Errorf("object over after the failed overwrite: %d bytes (sha %.12s), %v; want the old 2 MiB object byte-identical (sha %.12s)",
				len(got), sha(got), err, sha(old))
		}
		if n := c.keys.count("over", "PutObject"); n != 0 {
			t.Errorf("%s: %d PutObject requests for over, want none (requests for over: %v; all the mount's: %v)",
				script, n, c.keys.of("over"), c.m.Counter.Snapshot())
		}
		if uploads := listUploads(t, c.m.Client, "over"); len(uploads) != 0 {
			t.Errorf("multipart uploads left for over after the failure: %v; want none", uploads)
		}
	})

	t.Run("7a-logrotate", func(t *testing.T) {
		c := newCommitCase(t, srv)
		s3test.PutObjects(t, c.m.Client, map[string][]byte{"app.log": []byte("old\n")})
		const script = `exec 3>app.log; echo new1 >&3; mv app.log app.log.1; echo new2 >&3; exec 3>&-`
		res := c.sh(t, quickLimit, script)
		res.expectClean(t)
		if info, err := headObject(c.m.Client, "app.log"); !errors.Is(err, s3client.ErrNotFound) {
			t.Errorf("HeadObject app.log after %q: %+v, %v; want not found (the writer's data followed the rename)", script, info, err)
		}
		checkObject(t, c.m.Client, "app.log.1", "new1\nnew2\n", script, res)
		names := c.ls(t)
		if contains(names, "app.log") || !contains(names, "app.log.1") {
			t.Errorf("ls -a after %q: %q; want app.log.1 and no app.log", script, names)
		}
	})

	t.Run("7b-rename-over-file-being-written", func(t *testing.T) {
		c := newCommitCase(t, srv)
		const script = `exec 3>x; echo mine >&3; echo other > y; mv y x; echo more >&3; exec 3>&-`
		res := c.sh(t, quickLimit, script)
		// The stale writer's late write and close may fail; only the outcome is fixed.
		t.Logf("%s: exit %d, output %q", script, res.code, res.out)
		checkObject(t, c.m.Client, "x", "other\n", script, res)
		if info, err := headObject(c.m.Client, "y"); !errors.Is(err, s3client.ErrNotFound) {
			t.Errorf("HeadObject y after %q: %+v, %v; want not found", script, info, err)
		}
	})

	t.Run("8-hundred-files-open-at-once", func(t *testing.T) {
		c := newCommitCase(t, srv)
		const n = 100
		script := fmt.Sprintf(`fds=()
for i in $(seq 1 %[1]d); do exec {fd}>file$i || exit 1; fds+=($fd); done
for i in $(seq 1 %[1]d); do printf %%d $((i %% 10)) >&${fds[i-1]} || exit 2; done
for fd in "${fds[@]}"; do exec {fd}>&- || exit 3; done`, n)
		res := c.sh(t, 60*time.Second, script)
		res.expectClean(t)
		var wrong []string
		for i := 1; i <= n; i++ {
			key := fmt.Sprintf("file%d", i)
			want := fmt.Sprint(i % 10)
			if got, err := getObject(c.m.Client, key); err != nil || string(got) != want {
				wrong = append(wrong, fmt.Sprintf("%s=%q (%v), want %q", key, got, err, want))
			}
		}
		if len(wrong) > 0 {
			t.Errorf("%d of %d objects wrong after writing them all open at once (took %v): %s",
				len(wrong), n, res.took.Round(time.Millisecond), strings.Join(wrong[:min(len(wrong), 5)], "; "))
		}
	})

	t.Run("9a-second-writer-shares-the-file", func(t *testing.T) {
		// Two processes writing one file see one file, as on a local disk:
		// the second one's O_TRUNC and write land under the first one's
		// descriptor, whose next write goes at its own offset.
		c := newCommitCase(t, srv)
		const holder = `exec 3>f; echo first >&3; echo ready; sleep 3; echo third >&3; exec 3>&-`
		first := c.start(t, 30*time.Second, holder)
		waitUntil(t, 10*time.Second, "the first writer to write f", func() bool {
			if !first.running() {
				res := first.wait(t)
				t.Fatalf("%q ended early: exit %d, output %q; want it to hold f open for 3 s", holder, res.code, res.out)
			}
			return strings.Contains(first.output(), "ready")
		})
		const second = `echo second > f && cat f`
		res := c.sh(t, 5*time.Second, second)
		if res.code != 0 || res.out != "second\n" {
			t.Errorf("%q while another process writes f: exit %d, output %q after %v; want exit 0 and second",
				second, res.code, res.out, res.took.Round(time.Millisecond))
		}
		if !first.running() {
			t.Errorf("%q ended before %q had its answer; want it still holding f open, else the case proves nothing", holder, second)
		}
		checkObject(t, c.m.Client, "f", "second\n", second, res)
		res = first.wait(t)
		if res.code != 0 || res.out != "ready\n" {
			t.Errorf("%q: exit %d, output %q; want exit 0 and only ready", holder, res.code, res.out)
		}
		checkObject(t, c.m.Client, "f", "secondthird\n", holder, res)
	})

	t.Run("9b-sync-file-not-being-written", func(t *testing.T) {
		c := newCommitCase(t, srv)
		s3test.PutObjects(t, c.m.Client, map[string][]byte{"f": []byte("data\n")})
		for _, script := range []string{`sync f`, `echo hi > g && sync g`} {
			if res := c.sh(t, quickLimit, script); res.code != 0 {
				t.Errorf("%q: exit %d, output %q; want exit 0 (fsync on a read-only descriptor of a file no one writes)", script, res.code, res.out)
			}
		}
	})

	t.Run("9c-failed-put-is-eio-at-every-later-flush", func(t *testing.T) {
		c := newCommitCase(t, srv)
		rule := c.m.Faults.Add(s3test.Rule{Op: "PutObject", Fault: s3test.Fault{Status: 500, Code: "InternalError"},
			Match: func(r *http.Request) bool { return c.keyIs("k")(r) || c.keyIs("k2")(r) }})
		// The contract's sequence, with markers between its closes: bash
		// reports a failed close on stderr, but not in $?.
		const script = `exec 3>k; echo data >&3; exec 4>&3
echo @close4; exec 4>&-
echo @close3; exec 3>&-
echo @end`
		res := c.sh(t, 60*time.Second, script)
		t.Logf("%s\n-> exit %d, output %q", script, res.code, res.out)
		if s := between(res.out, "@close4\n", "@close3\n"); notErrno(s) {
			t.Errorf("exec 4>&- (a dup's close, not the last): %q; it may succeed, but never with ENOENT or EACCES", s)
		}
		if s := between(res.out, "@close3\n", "@end\n"); !strings.Contains(s, "Input/output error") || notErrno(s) {
			t.Errorf("exec 3>&- (the last close, whose PutObject fails): %q; want Input/output error (EIO), never ENOENT or EACCES", s)
		}
		// A later flush: a forked subshell closes its copy of the
		// descriptor only after the opener's last close has failed.
		mark := filepath.Join(t.TempDir(), "opener-closed")
		later := fmt.Sprintf(`exec 3>k2; echo data >&3
(while [ ! -e '%[1]s' ]; do sleep 0.1; done; echo @child-close; exec 3>&-; echo @child-end) &
echo @close3; exec 3>&-
echo @opener-closed; touch '%[1]s'; wait`, mark)
		res2 := c.sh(t, 60*time.Second, later)
		t.Logf("%s\n-> exit %d, output %q", later, res2.code, res2.out)
		if s := between(res2.out, "@close3\n", "@opener-closed\n"); !strings.Contains(s, "Input/output error") || notErrno(s) {
			t.Errorf("the opener's exec 3>&- (PutObject fails): %q; want Input/output error (EIO), never ENOENT or EACCES", s)
		}
		if s := between(res2.out, "@child-close\n", "@child-end\n"); !strings.Contains(s, "Input/output error") || notErrno(s) {
			t.Errorf("a later flush (a subshell closing its copy after the opener's close failed): %q; want Input/output error (EIO), never ENOENT or EACCES", s)
		}
		if c.m.Faults.Hits(rule) == 0 {
			t.Errorf("no PutObject for k or k2 was sent, so none failed (requests for k: %v, k2: %v)", c.keys.of("k"), c.keys.of("k2"))
		}
		for _, key := range []string{"k", "k2"} {
			if info, err := headObject(c.m.Client, key); !errors.Is(err, s3client.ErrNotFound) {
				t.Errorf("HeadObject %s after its PutObject failed: %+v, %v; want not found", key, info, err)
			}
		}
	})
}

// TestWriteCommitPidZero: contract case 6. The daemon runs in a pid
// namespace of its own, so FUSE tells it pid 0 for every caller the test
// starts; cases 1 and 2 must keep every byte all the same.
func TestWriteCommitPidZero(t *testing.T) {
	requireFUSE(t)
	_, err := exec.LookPath("unshare")
	s3test.Require(t, err == nil, "unshare (util-linux)")
	srv := s3test.StartMinIO(t)
	bucket, client := srv.Bucket(t)
	mnt := startPidZeroMount(t, srv, bucket)
	for _, tc := range forkedWriterCases {
		t.Run(tc.name, func(t *testing.T) {
			// One directory, so one key prefix, per case.
			if res := runShell(t, mnt, quickLimit, "mkdir "+tc.name); res.code != 0 {
				t.Fatalf("mkdir %s: exit %d, output %q; want exit 0", tc.name, res.code, res.out)
			}
			res := runShell(t, filepath.Join(mnt, tc.name), quickLimit, tc.script)
			checkObject(t, client, tc.name+"/f", tc.want, tc.script, res)
			res.expectClean(t)
		})
	}
}

// checkObject fails the test unless key holds want, read directly from S3
// after script ran.
func checkObject(t testing.TB, c s3client.API, key, want, script string, res shellResult) {
	t.Helper()
	got, err := getObject(c, key)
	switch {
	case err != nil:
		t.Errorf("GetObject %s after %q: %v; want %q (script exit %d, output %q)", key, script, err, want, res.code, res.out)
	case string(got) != want:
		zeros := ""
		if bytes.IndexByte(got, 0) >= 0 {
			zeros = " (it holds zero bytes)"
		}
		t.Errorf("object %s after %q = %s%s; want %s (script exit %d, output %q)", key, script, shown(got), zeros, shown([]byte(want)), res.code, res.out)
	}
}

// shown quotes b, or says its size and the ends of it when it is large.
func shown(b []byte) string {
	if len(b) <= 200 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %q…%q", len(b), b[:40], b[len(b)-40:])
}

// notErrno says whether a shell's messages name ENOENT or EACCES, which no
// close or flush of a file being written may answer.
func notErrno(s string) bool {
	return strings.Contains(s, "No such file or directory") || strings.Contains(s, "Permission denied")
}

// between returns the text of s between the markers from and to (to the
// end when to is missing; "" when from is missing).
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		s = s[:j]
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// getObject reads a whole object directly, with a deadline.
func getObject(c s3client.API, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := c.GetRange(ctx, key, 0, -1, "")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// headObject asks S3 directly for an object's attributes, with a deadline.
func headObject(c s3client.API, key string) (*s3client.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Head(ctx, key)
}

func listUploads(t testing.TB, c s3client.API, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uploads, err := c.ListMultipartUploads(ctx, prefix)
	if err != nil {
		t.Fatalf("ListMultipartUploads %s: %v", prefix, err)
	}
	return uploads
}

// waitUntil polls cond every 20 ms and fails the test when it is still
// false after limit.
func waitUntil(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; it did not happen", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
