package core_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
	"github.com/bucketfs/bucketfs/uploader"
)

// bed is one core over an in-memory S3.
type bed struct {
	t    *testing.T
	s3   *s3fake.Fake
	up   *uploader.Uploader
	core *core.Core
}

func newBed(t *testing.T, configure ...func(*uploader.Config)) *bed {
	t.Helper()
	fake := s3fake.New()
	ucfg := uploader.Config{PartSize: 5 << 20, MemoryLimit: 64 << 20}
	for _, f := range configure {
		f(&ucfg)
	}
	up, err := uploader.New(fake, ucfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBed(t, up, fake) })
	c := core.New(core.Config{Client: fake, Uploader: up, WriterWait: 100 * time.Millisecond, OutOfOrderWait: 200 * time.Millisecond})
	return &bed{t: t, s3: fake, up: up, core: c}
}

// closeBed closes the uploader and fails t if it left an upload behind.
func closeBed(t *testing.T, up *uploader.Uploader, fake *s3fake.Fake) {
	if err := up.Close(); err != nil {
		t.Errorf("uploader: %v", err)
	}
	if u := fake.Uploads(); len(u) != 0 {
		t.Errorf("multipart uploads left behind: %v", u)
	}
}

// file is a core.File with what the filesystem layer would know of it.
type file struct {
	*core.File
	b         *bed
	mu        sync.Mutex
	committed []core.Version
	failures  int
}

func (b *bed) file() *file {
	f := &file{b: b}
	f.File = b.core.NewFile(core.Hooks{
		Committed: func(v core.Version) { f.mu.Lock(); f.committed = append(f.committed, v); f.mu.Unlock() },
		Failed:    func(string, error) { f.mu.Lock(); f.failures++; f.mu.Unlock() },
	})
	return f
}

// existing tells the core what the fake holds at key.
func (b *bed) existing(key string) func(bool) core.Existing {
	return func(bool) core.Existing {
		data, _, ok := b.s3.Object(key)
		return core.Existing{Exists: ok, Size: int64(len(data))}
	}
}

func (b *bed) open(f *file, pid uint32, key string, mode core.OpenMode) *core.Handle {
	b.t.Helper()
	h, err := f.OpenWrite(context.Background(), pid, key, mode, b.existing(key))
	if err != nil {
		b.t.Fatalf("open %s: %v", key, err)
	}
	return h
}

// object returns key's bytes, failing when it does not exist.
func (b *bed) object(key string) string {
	b.t.Helper()
	data, _, ok := b.s3.Object(key)
	if !ok {
		b.t.Fatalf("%s does not exist", key)
	}
	return string(data)
}

func (b *bed) absent(key string) {
	b.t.Helper()
	if _, _, ok := b.s3.Object(key); ok {
		b.t.Fatalf("%s exists", key)
	}
}

func write(t *testing.T, h *core.Handle, off int64, s string) int64 {
	t.Helper()
	n, err := h.Write(context.Background(), off, []byte(s))
	if err != nil || n != len(s) {
		t.Fatalf("write at %d: %d, %v", off, n, err)
	}
	return off + int64(n)
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if got := core.Errno(err); got != want {
		t.Fatalf("%s: errno %v (%v), want %v", what, got, err, want)
	}
}

var ctx = context.Background()

// `for i in 1 2 3; do /bin/echo "line $i"; done > f`: the shell opens,
// children write and close, the shell's close commits once.
func TestOpenerCloseCommits(t *testing.T) {
	b := newBed(t)
	f := b.file()
	h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
	var off int64
	for i, child := range []uint32{201, 202, 203} {
		off = write(t, h, off, "line "+string(rune('1'+i))+"\n")
		wantErrno(t, "child's close", h.Flush(ctx, child), 0)
		if n := b.s3.Count(s3fake.OpPutObject); n != 0 {
			t.Fatalf("a child's close sent %d PutObject", n)
		}
	}
	wantErrno(t, "opener's close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("f"); got != "line 1\nline 2\nline 3\n" {
		t.Fatalf("object %q", got)
	}
	if n := b.s3.Count(s3fake.OpPutObject); n != 1 {
		t.Fatalf("%d PutObject, want 1", n)
	}
}

// `(sleep 3; echo new) > existing`: nothing replaces the old object before
// the new bytes are complete, and a flush before any write publishes nothing.
func TestExistingObjectReplacedOnlyByCompleteUpload(t *testing.T) {
	b := newBed(t)
	b.s3.SetObject("existing", []byte("old content\n"), nil)
	f := b.file()
	h := b.open(f, 100, "existing", core.OpenMode{Truncate: true})
	wantErrno(t, "sleep's close", h.Flush(ctx, 300), 0)
	wantErrno(t, "opener's close before writing (dd's dup2)", h.Flush(ctx, 100), 0)
	if got := b.object("existing"); got != "old content\n" {
		t.Fatalf("object replaced before any write: %q", got)
	}
	write(t, h, 0, "new\n")
	if got := b.object("existing"); got != "old content\n" {
		t.Fatalf("object replaced before close: %q", got)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("existing"); got != "new\n" {
		t.Fatalf("object %q", got)
	}
	if n := b.s3.Count(s3fake.OpPutObject); n != 1 {
		t.Fatalf("%d PutObject, want 1", n)
	}
}

// `: > existing` truncates: published at the last close (RELEASE), or at fsync.
func TestTruncationPublishedAtReleaseOrFsync(t *testing.T) {
	b := newBed(t)
	b.s3.SetObject("a", []byte("old"), nil)
	b.s3.SetObject("b", []byte("old"), nil)
	fa := b.file()
	h := b.open(fa, 100, "a", core.OpenMode{Truncate: true})
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("a"); got != "" {
		t.Fatalf("a = %q after truncation", got)
	}
	fb := b.file()
	h = b.open(fb, 100, "b", core.OpenMode{Truncate: true})
	wantErrno(t, "fsync", h.Fsync(ctx), 0)
	if got := b.object("b"); got != "" {
		t.Fatalf("b = %q after fsync of a truncation", got)
	}
	h.Release(ctx)
	// Opening a non-empty object without O_TRUNC is for the staged mode.
	_, err := fb.OpenWrite(ctx, 100, "b", core.OpenMode{}, func(bool) core.Existing { return core.Existing{Exists: true, Size: 3} })
	wantErrno(t, "open without O_TRUNC", err, syscall.ENOTSUP)
}

// `sync FILE` (File.Sync, fsync through a read-only descriptor) commits what
// a writer holding the file open wrote, and reports its session's failure.
func TestSyncThroughAnotherDescriptor(t *testing.T) {
	b := newBed(t)
	f := b.file()
	wantErrno(t, "sync with no session", f.Sync(ctx), 0)
	h := b.open(f, 100, "log", core.OpenMode{Create: true, Truncate: true})
	if _, err := h.Write(ctx, 0, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	b.absent("log")
	wantErrno(t, "sync", f.Sync(ctx), 0)
	if got := b.object("log"); got != "one\n" {
		t.Fatalf("log = %q after sync, want %q", got, "one\n")
	}
	wantErrno(t, "sync with nothing new", f.Sync(ctx), 0)
	if _, err := h.Write(ctx, 4, []byte("two\n")); err != nil {
		t.Fatal(err)
	}
	b.s3.SetHook(func(op, key string) s3fake.Fault {
		return s3fake.Fault{Err: s3fake.APIError(op, key, "InternalError", 500)}
	})
	wantErrno(t, "sync of a failing commit", f.Sync(ctx), syscall.EIO)
	wantErrno(t, "sync after the failure", f.Sync(ctx), syscall.EIO)
	b.s3.SetHook(nil)
	h.Release(ctx)
	if got := b.object("log"); got != "one\n" {
		t.Fatalf("log = %q after a failed commit, want the last commit's %q", got, "one\n")
	}
	wantErrno(t, "sync once the session ended", f.Sync(ctx), 0)

	// A detached (unlinked) writer's bytes go nowhere, synced or not.
	g := b.file()
	h = b.open(g, 100, "gone", core.OpenMode{Create: true, Truncate: true})
	write(t, h, 0, "mine\n")
	if !g.Detach(ctx) {
		t.Fatal("Detach found no session")
	}
	puts := b.s3.Count(s3fake.OpPutObject)
	wantErrno(t, "sync of a detached writer", g.Sync(ctx), 0)
	h.Release(ctx)
	b.absent("gone")
	if n := b.s3.Count(s3fake.OpPutObject) - puts; n != 0 {
		t.Fatalf("%d PutObject from syncing a detached writer", n)
	}
}

// Sync of a file edited in place (staged) composes the new object, and an
// interrupted caller does not fail the writers' session.
func TestSyncOfStagedFile(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("log", []byte("one\n"), nil)
	f := b.file()
	h := b.openEdit(f, 100, "log", core.OpenMode{})
	write(t, h, 4, "two\n")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	wantErrno(t, "sync by an interrupted caller", f.Sync(cancelled), 0)
	if got := b.object("log"); got != "one\ntwo\n" {
		t.Fatalf("log = %q after sync, want %q", got, "one\ntwo\n")
	}
	write(t, h, 8, "three\n")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("log"); got != "one\ntwo\nthree\n" {
		t.Fatalf("log = %q after close, want %q", got, "one\ntwo\nthree\n")
	}
}

// touch: a new file closed empty is created at its last close (RELEASE),
// not at the flush, which the shell's redirection also sends before writing;
// `echo hi > newfile` (open, dup2, close, write, close) is one PutObject.
func TestNewFiles(t *testing.T) {
	b := newBed(t)
	f := b.file()
	h := b.open(f, 100, "touched", core.OpenMode{Create: true, Truncate: true})
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	b.absent("touched")
	if err := f.OpenRead(ctx); core.Errno(err) != syscall.EBUSY {
		t.Fatalf("read open before the empty file is published: %v, want EBUSY", err)
	}
	h.Release(ctx)
	if got := b.object("touched"); got != "" {
		t.Fatalf("object %q", got)
	}
	g := b.file()
	h = b.open(g, 100, "newfile", core.OpenMode{Create: true, Truncate: true})
	wantErrno(t, "redirection's close of the original", h.Flush(ctx, 100), 0)
	write(t, h, 0, "hi\n")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("newfile"); got != "hi\n" {
		t.Fatalf("newfile = %q", got)
	}
	if n := b.s3.Count(s3fake.OpPutObject); n != 2 {
		t.Fatalf("%d PutObject for touched and newfile, want 2", n)
	}
}

// `exec 3>f; echo first >&3; echo second >&3; exec 3>&-`: the builtin's
// dup-restore commits "first"; "second" reopens the object and lands too.
func TestWriteAfterCommitReopens(t *testing.T) {
	for _, tc := range []struct {
		name      string
		first     int
		wantCopy  int // UploadPartCopy requests of the reopen
		wantRange int // GetObject requests of the reopen
	}{
		{"small", 6, 0, 1},
		{"large", 6 << 20, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t)
			f := b.file()
			h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
			first := strings.Repeat("1", tc.first)
			off := write(t, h, 0, first)
			wantErrno(t, "dup-restore close", h.Flush(ctx, 100), 0)
			if got := b.object("f"); got != first {
				t.Fatalf("after the first close: %d bytes", len(got))
			}
			off = write(t, h, off, "second\n")
			if size, _, ok := f.Writing(); !ok || size != int64(tc.first+7) {
				t.Fatalf("Writing() = %d, %v", size, ok)
			}
			wantErrno(t, "last close", h.Flush(ctx, 100), 0)
			h.Release(ctx)
			if got := b.object("f"); got != first+"second\n" {
				t.Fatalf("object of %d bytes, want %d", len(got), off)
			}
			if n := b.s3.Count(s3fake.OpUploadPartCopy); n != tc.wantCopy {
				t.Fatalf("%d UploadPartCopy, want %d", n, tc.wantCopy)
			}
			if n := b.s3.Count(s3fake.OpGetObject); n != tc.wantRange {
				t.Fatalf("%d GetObject, want %d", n, tc.wantRange)
			}
		})
	}
}

// Callers the daemon cannot see (pid 0): every close looks like the
// opener's and commits; no byte is lost, none becomes a zero.
func TestPidZeroKeepsEveryByte(t *testing.T) {
	b := newBed(t)
	f := b.file()
	h := b.open(f, 0, "f", core.OpenMode{Create: true, Truncate: true})
	var off int64
	want := ""
	for i := 0; i < 5; i++ {
		s := strings.Repeat(string(rune('a'+i)), 1+i*1000)
		off = write(t, h, off, s)
		want += s
		wantErrno(t, "child's close", h.Flush(ctx, 0), 0)
		if got := b.object("f"); got != want {
			t.Fatalf("after close %d: %d bytes, want %d", i, len(got), len(want))
		}
	}
	h.Release(ctx)
	if got := b.object("f"); got != want {
		t.Fatalf("final: %d bytes, want %d", len(got), len(want))
	}
}

// Every failure point: close and fsync answer EIO, every later flush too,
// the old object is untouched, nothing is left behind.
func TestFailuresAreEIOAndKeepTheOldObject(t *testing.T) {
	old := bytes.Repeat([]byte("o"), 2<<20)
	for _, tc := range []struct {
		op   string
		size int
	}{
		{s3fake.OpPutObject, 100},
		{s3fake.OpCreateMultipartUpload, 40 << 20},
		{s3fake.OpUploadPart, 12 << 20},
		{s3fake.OpCompleteMultipartUpload, 12 << 20},
	} {
		t.Run(tc.op, func(t *testing.T) {
			b := newBed(t)
			b.s3.SetObject("k", old, nil)
			b.s3.SetHook(func(op, key string) s3fake.Fault {
				if op == tc.op {
					return s3fake.Fault{Err: s3fake.APIError(op, key, "InternalError", 500)}
				}
				return s3fake.Fault{}
			})
			f := b.file()
			h := b.open(f, 100, "k", core.OpenMode{Truncate: true})
			data := bytes.Repeat([]byte("n"), 1<<20)
			var werr error
			for off := 0; off < tc.size && werr == nil; off += len(data) {
				chunk := data[:min(len(data), tc.size-off)]
				_, werr = h.Write(ctx, int64(off), chunk)
			}
			if werr != nil {
				wantErrno(t, "failed write", werr, syscall.EIO)
			}
			wantErrno(t, "close", h.Flush(ctx, 100), syscall.EIO)
			wantErrno(t, "a dup'd copy's close", h.Flush(ctx, 200), syscall.EIO)
			wantErrno(t, "fsync", h.Fsync(ctx), syscall.EIO)
			if _, err := h.Write(ctx, int64(tc.size), []byte("x")); core.Errno(err) != syscall.EIO {
				t.Fatalf("write after failure: %v", err)
			}
			h.Release(ctx)
			if got := b.object("k"); !bytes.Equal([]byte(got), old) {
				t.Fatalf("old object changed: %d bytes", len(got))
			}
			if f.failures != 1 {
				t.Fatalf("Failed hook called %d times", f.failures)
			}
			b.s3.SetHook(nil)
		})
	}
}

// A failed reopen (the committed object changed under us) fails the
// session: nothing is spliced.
func TestReopenOfChangedObjectFails(t *testing.T) {
	b := newBed(t)
	f := b.file()
	h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
	off := write(t, h, 0, "mine\n")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	b.s3.SetObject("f", []byte("another client's\n"), nil)
	if _, err := h.Write(ctx, off, []byte("more\n")); core.Errno(err) != syscall.EIO {
		t.Fatalf("write after the object changed: %v, want EIO", err)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), syscall.EIO)
	h.Release(ctx)
	if got := b.object("f"); got != "another client's\n" {
		t.Fatalf("object %q", got)
	}
}

// Stat never waits for S3: Writing answers while a close waits on a
// stalled CompleteMultipartUpload.
func TestStatDuringSlowClose(t *testing.T) {
	b := newBed(t)
	gate := make(chan struct{})
	b.s3.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpCompleteMultipartUpload {
			return s3fake.Fault{Gate: gate}
		}
		return s3fake.Fault{}
	})
	f := b.file()
	h := b.open(f, 100, "big", core.OpenMode{Create: true, Truncate: true})
	write(t, h, 0, strings.Repeat("x", 11<<20))
	closed := make(chan error, 1)
	go func() { closed <- h.Flush(ctx, 100) }()
	for i := 0; i < 20; i++ {
		done := make(chan struct{})
		go func() {
			f.Writing()
			f.Dirty()
			f.SetMetadata(map[string]string{"mode": "420"})
			close(done)
		}()
		// Complete answers only once gate is closed, after this loop:
		// a call that waited for it would never return. The bound is
		// generous because under -race and a loaded machine a goroutine
		// may wait tens of milliseconds to run (50 ms flaked in a full
		// make test).
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("Writing waited for the close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-closed:
		t.Fatalf("close returned %v before Complete answered", err)
	default:
	}
	close(gate)
	select {
	case err := <-closed:
		wantErrno(t, "close", err, 0)
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
	h.Release(ctx)
	if got := b.object("big"); len(got) != 11<<20 {
		t.Fatalf("object of %d bytes", len(got))
	}
}

// logrotate: `exec 3>app.log; echo new1 >&3; mv app.log app.log.1;
// echo new2 >&3; exec 3>&-` leaves no app.log and all bytes in app.log.1.
func TestRenameWhileWriting(t *testing.T) {
	for _, committedFirst := range []bool{true, false} {
		name := map[bool]string{true: "after a commit", false: "before any commit"}[committedFirst]
		t.Run(name, func(t *testing.T) {
			b := newBed(t)
			b.s3.SetObject("app.log", []byte("old\n"), nil)
			b.s3.SetObject("app.log.1", []byte("older\n"), nil)
			f := b.file()
			h := b.open(f, 100, "app.log", core.OpenMode{Truncate: true})
			off := write(t, h, 0, "new1\n")
			if committedFirst {
				wantErrno(t, "dup-restore close", h.Flush(ctx, 100), 0)
			}
			handled, _, err := f.Rename(ctx, "app.log.1", s3client.CopyOptions{})
			if err != nil || !handled {
				t.Fatalf("rename: %v, %v", handled, err)
			}
			b.absent("app.log")
			write(t, h, off, "new2\n")
			wantErrno(t, "close", h.Flush(ctx, 100), 0)
			h.Release(ctx)
			b.absent("app.log")
			if got := b.object("app.log.1"); got != "new1\nnew2\n" {
				t.Fatalf("app.log.1 = %q", got)
			}
		})
	}
	t.Run("after the upload reached S3", func(t *testing.T) {
		b := newBed(t)
		f := b.file()
		h := b.open(f, 100, "a", core.OpenMode{Create: true, Truncate: true})
		body := strings.Repeat("z", 11<<20)
		off := write(t, h, 0, body)
		if handled, _, err := f.Rename(ctx, "b", s3client.CopyOptions{}); err != nil || !handled {
			t.Fatalf("rename: %v, %v", handled, err)
		}
		// A new file takes the old name: nothing of the renamed one may
		// land on it later.
		g := b.file()
		hg := b.open(g, 300, "a", core.OpenMode{Create: true, Truncate: true})
		write(t, hg, 0, "new a")
		wantErrno(t, "new a's close", hg.Flush(ctx, 300), 0)
		hg.Release(ctx)
		write(t, h, off, "tail")
		body += "tail"
		wantErrno(t, "close", h.Flush(ctx, 100), 0)
		h.Release(ctx)
		if got := b.object("a"); got != "new a" {
			t.Fatalf("a = %q: the renamed file's upload landed on the new file of its old name", got)
		}
		if got := b.object("b"); got != body {
			t.Fatalf("b has %d bytes", len(got))
		}
	})
}

// A file unlinked or replaced while written: its writer's bytes go nowhere.
func TestDetachedWriterPublishesNothing(t *testing.T) {
	b := newBed(t)
	f := b.file()
	h := b.open(f, 100, "x", core.OpenMode{Create: true, Truncate: true})
	off := write(t, h, 0, "mine\n")
	b.s3.SetObject("x", []byte("other\n"), nil) // mv y x
	if !f.Detach(ctx) {
		t.Fatal("Detach found no session")
	}
	write(t, h, off, "more\n")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	wantErrno(t, "fsync", h.Fsync(ctx), 0)
	h.Release(ctx)
	if got := b.object("x"); got != "other\n" {
		t.Fatalf("x = %q", got)
	}
	if n := b.s3.Count(s3fake.OpPutObject); n != 0 {
		t.Fatalf("%d PutObject from a detached writer", n)
	}
}

// Two racing O_TRUNC opens give one writer; the second waits, then EBUSY,
// and succeeds once the first is released.
func TestOneWriterPerFile(t *testing.T) {
	b := newBed(t)
	f := b.file()
	var wg sync.WaitGroup
	results := make(chan error, 2)
	handles := make(chan *core.Handle, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(pid uint32) {
			defer wg.Done()
			h, err := f.OpenWrite(ctx, pid, "f", core.OpenMode{Truncate: true}, b.existing("f"))
			results <- err
			if err == nil {
				handles <- h
			}
		}(uint32(100 + i))
	}
	wg.Wait()
	close(results)
	close(handles)
	var busy, ok int
	for err := range results {
		switch core.Errno(err) {
		case 0:
			ok++
		case syscall.EBUSY:
			busy++
		default:
			t.Fatalf("open: %v", err)
		}
	}
	if ok != 1 || busy != 1 {
		t.Fatalf("%d opens succeeded, %d busy", ok, busy)
	}
	h := <-handles
	write(t, h, 0, "first\n")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	released := make(chan struct{})
	go func() { time.Sleep(30 * time.Millisecond); h.Release(ctx); close(released) }()
	// RELEASE follows the last close: a new open waits for it.
	h2 := b.open(f, 101, "f", core.OpenMode{Truncate: true})
	<-released
	write(t, h2, 0, "second\n")
	wantErrno(t, "close", h2.Flush(ctx, 101), 0)
	h2.Release(ctx)
	if got := b.object("f"); got != "second\n" {
		t.Fatalf("f = %q", got)
	}
	if err := f.OpenRead(ctx); err != nil {
		t.Fatalf("read open after release: %v", err)
	}
}

// Writes the kernel delivers out of order land in order.
func TestOutOfOrderWrites(t *testing.T) {
	b := newBed(t)
	f := b.file()
	h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
	second := make(chan error, 1)
	go func() { _, err := h.Write(ctx, 3, []byte("def")); second <- err }()
	time.Sleep(20 * time.Millisecond)
	write(t, h, 0, "abc")
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("f"); got != "abcdef" {
		t.Fatalf("f = %q", got)
	}
	// A gap that never fills is a hole of zeros; a rewrite is ENOTSUP.
	f2 := b.file()
	h = b.open(f2, 100, "g", core.OpenMode{Create: true, Truncate: true})
	write(t, h, 2, "x")
	if _, err := h.Write(ctx, 0, []byte("y")); core.Errno(err) != syscall.ENOTSUP {
		t.Fatalf("rewrite: %v", err)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("g"); got != "\x00\x00x" {
		t.Fatalf("g = %q", got)
	}
}

// When the memory budget is spent a write waits, then accepts no byte:
// EINTR when interrupted, ENOBUFS when the budget stayed spent; the retry
// at the same offset works once memory is free.
func TestMemoryWaitIsBoundedAndAtomic(t *testing.T) {
	b := newBed(t, func(c *uploader.Config) {
		c.MemoryLimit = 5 << 20
		c.MemoryWait = 200 * time.Millisecond
	})
	holder := b.file()
	hh := b.open(holder, 100, "holder", core.OpenMode{Create: true, Truncate: true})
	write(t, hh, 0, strings.Repeat("h", 4<<20))
	f := b.file()
	h := b.open(f, 101, "f", core.OpenMode{Create: true, Truncate: true})
	big := strings.Repeat("f", 2<<20)
	start := time.Now()
	n, err := h.Write(ctx, 0, []byte(big))
	if n != 0 || core.Errno(err) != syscall.ENOBUFS {
		t.Fatalf("write with the budget spent: %d, %v; want 0, ENOBUFS", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the wait took %v", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	n, err = h.Write(cctx, 0, []byte(big))
	if n != 0 || core.Errno(err) != syscall.EINTR {
		t.Fatalf("interrupted write: %d, %v; want 0, EINTR", n, err)
	}
	if size, _, _ := f.Writing(); size != 0 {
		t.Fatalf("refused writes left %d bytes", size)
	}
	wantErrno(t, "holder close", hh.Flush(ctx, 100), 0)
	hh.Release(ctx)
	write(t, h, 0, big) // the application's retry
	wantErrno(t, "close", h.Flush(ctx, 101), 0)
	h.Release(ctx)
	if got := b.object("f"); got != big {
		t.Fatalf("f has %d bytes", len(got))
	}
}

// The errno mapping: ENOENT only for a missing key.
func TestErrno(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{s3fake.APIError("HeadObject", "k", "NotFound", 404), syscall.ENOENT},
		{s3fake.APIError("GetObject", "k", "NoSuchKey", 404), syscall.ENOENT},
		{s3fake.APIError("CompleteMultipartUpload", "k", "NoSuchUpload", 404), syscall.EIO},
		{s3fake.APIError("PutObject", "k", "NoSuchBucket", 404), syscall.EIO},
		{s3fake.APIError("PutObject", "k", "AccessDenied", 403), syscall.EACCES},
		{s3fake.APIError("PutObject", "k", "SlowDown", 503), syscall.EIO},
		{uploader.ErrNoMemory, syscall.ENOBUFS},
		{context.Canceled, syscall.EINTR},
		{errors.New("anything"), syscall.EIO},
		{nil, 0},
	} {
		if got := core.Errno(tc.err); got != tc.want {
			t.Errorf("Errno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	var _ s3client.API = s3fake.New()
}

// A rename of a file whose multipart upload exists under the old name
// completes it there and moves it: when the move fails, the rename answers
// EIO and the file stays what it was, complete under the old name.
func TestFailedMoveOfRenamedUpload(t *testing.T) {
	b := newBed(t)
	b.s3.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpCopyObject {
			return s3fake.Fault{Err: s3fake.APIError(op, key, "InternalError", 500)}
		}
		return s3fake.Fault{}
	})
	f := b.file()
	h := b.open(f, 100, "a", core.OpenMode{Create: true, Truncate: true})
	body := strings.Repeat("z", 11<<20)
	write(t, h, 0, body) // the multipart upload starts under "a"
	if handled, _, err := f.Rename(ctx, "b", s3client.CopyOptions{}); !handled || core.Errno(err) != syscall.EIO {
		t.Fatalf("rename: %v, %v; want handled, EIO", handled, err)
	}
	b.s3.SetHook(nil)
	write(t, h, int64(len(body)), "more")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	b.absent("b")
	body += "more"
	if got := b.object("a"); got != body {
		t.Fatalf("a holds %d bytes", len(got))
	}
}

// A rename that fails leaves the file where it was: its upload still goes
// to the old name, and the destination keeps its own file (found by the
// model test: the upload used to stay aimed at the destination).
func TestFailedRenameKeepsTheUploadsKey(t *testing.T) {
	b := newBed(t)
	b.s3.SetObject("b", []byte("b's own file"), nil)
	f := b.file()
	h := b.open(f, 100, "a", core.OpenMode{Create: true, Truncate: true})
	off := write(t, h, 0, "one\n")
	wantErrno(t, "fsync", h.Fsync(ctx), 0)
	write(t, h, off, "two\n") // reopens: a small seed, the key can still move
	b.s3.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpCopyObject {
			return s3fake.Fault{Err: s3fake.APIError(op, key, "InternalError", 500)}
		}
		return s3fake.Fault{}
	})
	if handled, _, err := f.Rename(ctx, "b", s3client.CopyOptions{}); !handled || core.Errno(err) != syscall.EIO {
		t.Fatalf("rename: %v, %v; want handled, EIO", handled, err)
	}
	b.s3.SetHook(nil)
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("a"); got != "one\ntwo\n" {
		t.Fatalf("a = %q", got)
	}
	if got := b.object("b"); got != "b's own file" {
		t.Fatalf("b = %q", got)
	}
}
