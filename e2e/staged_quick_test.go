package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestStagedQuick covers the edits a shell user makes first: an append to
// an existing object, dd conv=notrunc into its middle, truncate -s, and a
// read of a file while it is written.
func TestStagedQuick(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	c := newCommitCase(t, srv)
	big := randomBytes(1, 12<<20)
	s3test.PutObjects(t, c.m.Client, map[string][]byte{"log": []byte("one\n"), "big": big})

	res := c.sh(t, quickLimit, `echo two >> log && cat log`)
	expectOutput(t, res, "one\ntwo\n")
	checkObject(t, c.m.Client, "log", "one\ntwo\n", "append", res)

	res = c.sh(t, quickLimit, `printf XYZ | dd of=big bs=1 seek=6291456 conv=notrunc status=none`)
	res.expectClean(t)
	want := append([]byte(nil), big...)
	copy(want[6<<20:], "XYZ")
	got := s3test.GetObject(t, c.m.Client, "big")
	if !bytes.Equal(got, want) {
		t.Fatalf("dd conv=notrunc: object differs (len %d, want %d)", len(got), len(want))
	}
	t.Logf("requests for big: %v", c.keys.of("big"))

	res = c.sh(t, quickLimit, `truncate -s 1024 small && truncate -s 10 log && stat -c %s small log`)
	expectOutput(t, res, "1024\n10\n")
	if g := s3test.GetObject(t, c.m.Client, "small"); len(g) != 1024 || !bytes.Equal(g, make([]byte, 1024)) {
		t.Fatalf("truncate -s 1024 of a new file: %d bytes", len(g))
	}
	if g := s3test.GetObject(t, c.m.Client, "log"); string(g) != "one\ntwo\n\x00\x00" {
		t.Fatalf("truncate -s 10: %q", g)
	}

	res = c.sh(t, quickLimit, `exec 3>rw; echo hello >&3; cat rw; echo world >&3; cat rw; exec 3>&-`)
	expectOutput(t, res, "hello\nhello\nworld\n")
	checkObject(t, c.m.Client, "rw", "hello\nworld\n", "read while writing", res)
}

// expectOutput fails t unless the script exited 0 printing want.
func expectOutput(t testing.TB, res shellResult, want string) {
	t.Helper()
	if res.code != 0 || res.out != want {
		t.Fatalf("%q: exit %d, output %q; want exit 0 and %q", res.script, res.code, res.out, want)
	}
}

// TestStagedCrashKeepsEditsLocal: a daemon killed with an edit in place
// staged leaves the object as it was; the next mount with the same
// --cache-dir moves the staged file to lost+found, named by its key, and
// never uploads it; bucketfs cleanup removes it.
func TestStagedCrashKeepsEditsLocal(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, client := srv.Bucket(t)
	s3test.PutObjects(t, client, map[string][]byte{"log": []byte("one\n")})
	cacheDir := filepath.Join(t.TempDir(), "cache")
	mnt := newMountpoint(t)
	d := startOpsDaemon(t, srv, bucket, mnt, nil, "--cache-dir", cacheDir)
	// An edit in place held open: staged, not committed.
	// A child writes: only the opener's close commits (SEMANTICS.md).
	holder := startShell(t, mnt, 30*time.Second, `exec 3<>log; /bin/sh -c "echo two >&3"; echo ready; sleep 20`)
	waitFor(t, 10*time.Second, "the edit to be staged", func() bool { return strings.Contains(holder.output(), "ready") })
	staged, _ := filepath.Glob(filepath.Join(cacheDir, "mount-*", "*.data"))
	if len(staged) != 1 {
		t.Fatalf("stage files while the edit is open: %v, want one", staged)
	}
	d.kill(t)
	holder.stop(t)
	unmountIfMounted(t, mnt)
	if got := s3test.GetObject(t, client, "log"); string(got) != "one\n" {
		t.Fatalf("after the crash the object holds %q; want it untouched", got)
	}
	startOpsDaemon(t, srv, bucket, mnt, nil, "--cache-dir", cacheDir)
	lost, _ := filepath.Glob(filepath.Join(cacheDir, "lost+found", "*.data"))
	if len(lost) != 1 {
		t.Fatalf("lost+found after the next mount: %v, want the staged edit", lost)
	}
	key, _ := os.ReadFile(strings.TrimSuffix(lost[0], ".data") + ".key")
	if string(key) != "log" {
		t.Fatalf("the kept edit names key %q, want log", key)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "log")); err != nil || string(b) != "one\n" {
		t.Fatalf("through the new mount: %q, %v; want the untouched object", b, err)
	}
	if fi, err := os.Stat(cacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the cache directory: %v, %v; want mode 0700", fi, err)
	}
	// bucketfs cleanup removes it, and leaves the running mount's stage alone.
	out, code := cli(t, srv, "cleanup", "--older-than", "0s", "--cache-dir", cacheDir, "--endpoint-url", srv.Endpoint, "--force-path-style", bucket)
	if code != 0 || !strings.Contains(out, `removed staged edit of "log"`) {
		t.Fatalf("bucketfs cleanup: exit %d:\n%s", code, out)
	}
	if left, _ := filepath.Glob(filepath.Join(cacheDir, "lost+found", "*.data")); len(left) != 0 {
		t.Fatalf("lost+found after cleanup: %v", left)
	}
	if live, _ := filepath.Glob(filepath.Join(cacheDir, "mount-*", "lock")); len(live) != 1 {
		t.Fatalf("the running mount's stage directory: %v, want it kept", live)
	}
}

// TestFallocateIsNotSupported: fallocate answers EOPNOTSUPP (documented).
func TestFallocateIsNotSupported(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	c := newCommitCase(t, srv)
	res := c.sh(t, quickLimit, `fallocate -l 1M f`)
	if res.code == 0 || !strings.Contains(res.out, "Operation not supported") {
		t.Fatalf("%q: exit %d, output %q; want Operation not supported", res.script, res.code, res.out)
	}
}
