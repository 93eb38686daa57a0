package core_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/internal/fsx"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// The randomized file exerciser (package internal/fsx) on the core with a
// stage over s3fake: the same generator and model as e2e's TestStagedFSX,
// without a kernel, so that a failing sequence replays in a second and
// under the race detector, and with failing S3 requests (TestFSXFaults),
// which a real mount cannot inject precisely. The file grows to 12 MiB
// (e2e's to 24 MiB, so a seed's sequence differs from e2e's): still two
// parts and more, at half the cost under the race detector.

// The seeds of go test's runs (BUCKETFS_FSX_SEED, BUCKETFS_FSX_SEEDS and
// BUCKETFS_FSX_OPS run others, as in e2e), two each to stay within a few
// seconds under the race detector: 2 creates the file with one part sent
// and keeps it open (a streaming upload staged on top of a commit),
// 987654321 keeps a small one open (staged from memory), 9 fails the
// upload of its first part while creating it, 20260214 closes it.
var (
	fsxSeeds      = []uint64{2, 987654321}
	fsxFaultSeeds = []uint64{9, 20260214}
)

// TestFSX runs the exerciser on the core: every step checked against the
// model, every commit checked to hold the file as it was, and after the
// run, with every descriptor closed, the object must hold the model's
// final bytes (what a remount would read), with no session open, no
// multipart upload, no part memory and no stage byte left (stagedBed's
// cleanup checks the last three).
func TestFSX(t *testing.T) { testFSX(t, fsxSeeds, false) }

// TestFSXFaults is TestFSX with slow S3 requests and some failing ones
// (UploadPart, PutObject, GetObject): a failed commit answers EIO and the
// file then holds its last commit; a failed read of the stage answers EIO
// and changes nothing.
func TestFSXFaults(t *testing.T) { testFSX(t, fsxFaultSeeds, true) }

func testFSX(t *testing.T, fixed []uint64, faults bool) {
	seeds, ops, err := fsx.Plan(fixed, 300)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			b, _ := stagedBed(t, 64<<20)
			cfg := fsx.Defaults(seed, ops)
			cfg.MaxSize, cfg.MaxLen = 12<<20, 2<<20
			cfg.Logf = t.Logf
			cfg.Faults = faults
			c := newFSXCore(b, cfg.Name, seed, faults)
			start := time.Now()
			final, err := fsx.Run(c, cfg)
			if err != nil {
				t.Fatalf("%v\n(S3 requests: %v)", err, b.s3.Counts())
			}
			if _, _, open := c.f.Writing(); open {
				t.Error("a write session is still open after every descriptor was closed")
			}
			b.s3.SetHook(nil)
			if got, _, ok := b.s3.Object(cfg.Name); !ok || !bytes.Equal(got, final) {
				t.Errorf("the object holds %d bytes (exists: %v); the model's final bytes are %d", len(got), ok, len(final))
			}
			c.mu.Lock()
			injected := c.injected
			c.mu.Unlock()
			t.Logf("seed %d: %d operations in %v; %d failures injected; S3 %v", seed, ops, time.Since(start).Round(time.Millisecond), injected, b.s3.Counts())
		})
	}
}

// fsxCore is an fsx.FS of one file over the core: what the filesystem
// layer (package fs) does with the kernel's requests, as plain calls.
//   - An open for writing is an OpenWrite (O_CREAT of a file that does not
//     exist: Create and Truncate, as fs's Create; else Truncate for
//     O_TRUNC) by a process of its own, sometimes by the process of
//     another open descriptor or by pid 0 (a caller outside the daemon's
//     pid namespace). A close is Flush by the opener, sometimes after a
//     Flush by another process (a forked child closing its copy, which
//     must not commit), then Release; the last write descriptor's close is
//     sometimes another process's Flush alone, so that Release commits.
//   - An O_RDONLY descriptor reads through File.ReadAt while a write
//     session is open, else the object, as fs's read handles do; its
//     fsync and close do nothing.
//   - O_APPEND writes at the size File.Writing reports (what the kernel
//     takes from Getattr); Size is that, or the object's size when no
//     session is open.
//   - A mapping is a copy of its pages read at map time, whose changed
//     pages are written back through Write at msync and munmap, as the
//     kernel's writeback sends WRITE requests. Whether a mapping sees
//     later writes, and others see its stores before msync, is the page
//     cache's business: e2e's TestStagedFSX covers it on a real mount.
//
// It is a Committer: the Committed hook reads the object each commit made.
// With faults, it marks the failures it injected: ErrLost when the write
// session failed (the Failed hook ran; the core must answer EIO, and
// nothing may fail silently but a Release, which the kernel could not
// report and which is reported here instead), ErrTransient when the call
// answered EIO without failing the session (a read of the stage).
type fsxCore struct {
	b   *bed
	f   *core.File
	key string
	r   *rand.Rand // pids, forked closes, faults: driven by the exerciser's calls, in order

	lastPid uint32
	writers []*fsxWriter // the open write descriptors
	failed  bool         // the session failed: its descriptors' EIOs are ErrLost until the last is released
	wbuf    []byte       // what writes pass to the core, scribbled over once they return

	mu        sync.Mutex // guards what the hooks set: they run with File.mu held, part uploads on the uploader's goroutines
	commits   [][]byte   // since the exerciser last asked
	failures  int        // Failed hook calls
	armed     string     // the S3 operation whose next request fails
	armedFor  int        // calls left before armed is dropped
	injected  int        // requests failed on purpose
	faultRand *rand.Rand // the hook's delays
}

var (
	_ fsx.FS        = (*fsxCore)(nil)
	_ fsx.Committer = (*fsxCore)(nil)
)

func newFSXCore(b *bed, key string, seed uint64, faults bool) *fsxCore {
	c := &fsxCore{b: b, key: key, r: rand.New(rand.NewPCG(seed, 0x636f7265)), lastPid: 1000}
	c.f = b.core.NewFile(core.Hooks{
		Committed: func(v core.Version) {
			data, _, _ := b.s3.Object(v.Key)
			c.mu.Lock()
			c.commits = append(c.commits, data)
			c.mu.Unlock()
		},
		Failed: func(string, error) {
			c.mu.Lock()
			c.failures++
			c.mu.Unlock()
		},
	})
	if faults {
		c.faultRand = rand.New(rand.NewPCG(seed, 0x66617574))
		b.s3.SetHook(c.fault)
	}
	return c
}

// fault is the fake's hook: the armed operation's next request fails, and
// one request in eight is slowed down, so that part uploads finish in
// another order.
func (c *fsxCore) fault(op, key string) s3fake.Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	var f s3fake.Fault
	if c.faultRand.IntN(8) == 0 {
		f.Delay = time.Duration(c.faultRand.IntN(2000)) * time.Microsecond
	}
	if op == c.armed {
		c.armed = ""
		c.injected++
		f.Err = s3fake.APIError(op, key, "InternalError", 500)
	}
	return f
}

// Commits implements fsx.Committer.
func (c *fsxCore) Commits() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.commits
	c.commits = nil
	return cs
}

// call is what happened before one call into the core.
type call struct{ failures, injected int }

// begin starts a call into the core: with faults, one call in twenty
// makes the next request of UploadPart, PutObject or GetObject fail, when
// it comes within ten calls (part uploads run on the uploader's
// goroutines: the failure may come to light a call later).
func (c *fsxCore) begin() call {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faultRand != nil {
		if c.armedFor--; c.armedFor <= 0 {
			c.armed = ""
		}
		if c.armed == "" && c.r.IntN(20) == 0 {
			c.armed = []string{s3fake.OpUploadPart, s3fake.OpPutObject, s3fake.OpGetObject}[c.r.IntN(3)]
			c.armedFor = 10
		}
	}
	return call{c.failures, c.injected}
}

// end finishes a call begun with before: it marks an injected failure
// (see fsxCore).
func (c *fsxCore) end(before call, err error) error {
	c.mu.Lock()
	failed, injected := c.failures > before.failures, c.injected > before.injected
	c.mu.Unlock()
	if failed {
		c.failed = true
		if err == nil {
			return errors.New("the write session failed, yet the call answered without an error")
		}
	}
	if err != nil && core.Errno(err) == syscall.EIO {
		switch {
		case c.failed:
			return fmt.Errorf("%w (%w)", err, fsx.ErrLost)
		case injected:
			return fmt.Errorf("%w (%w)", err, fsx.ErrTransient)
		}
	}
	return err
}

// head is what the object is (a HeadObject, which the hook may slow down
// but never fails).
func (c *fsxCore) head() (*s3client.ObjectInfo, bool) {
	info, err := c.b.s3.Head(ctx, c.key)
	return info, err == nil
}

// existing is what fs's node tells OpenWrite.
func (c *fsxCore) existing(bool) core.Existing {
	info, ok := c.head()
	if !ok {
		return core.Existing{}
	}
	return core.Existing{Exists: true, Size: info.Size, ETag: info.ETag}
}

// size is what fstat says: the session's size while one is open.
func (c *fsxCore) size() (int64, error) {
	if size, _, ok := c.f.Writing(); ok {
		return size, nil
	}
	info, ok := c.head()
	if !ok {
		return 0, syscall.ENOENT
	}
	return info.Size, nil
}

// pid is the process of a new open.
func (c *fsxCore) pid() uint32 {
	switch n := c.r.IntN(10); {
	case n == 0:
		return 0 // a caller the daemon cannot see
	case n <= 2 && len(c.writers) > 0:
		return c.writers[c.r.IntN(len(c.writers))].pid // a process opening the file again
	}
	c.lastPid++
	return c.lastPid
}

func (c *fsxCore) OpenFile(name string, flag int, perm os.FileMode) (fsx.File, error) {
	if name != c.key {
		return nil, syscall.ENOENT
	}
	_, exists := c.head()
	_, _, writing := c.f.Writing()
	exists = exists || writing
	if !exists && flag&os.O_CREATE == 0 {
		return nil, syscall.ENOENT
	}
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return &fsxReader{c: c}, nil
	}
	w := &fsxWriter{c: c, pid: c.pid(), flag: flag}
	before := c.begin()
	var err error
	if exists {
		w.h, err = c.f.OpenWrite(ctx, w.pid, c.key, core.OpenMode{Truncate: flag&os.O_TRUNC != 0}, c.existing)
	} else {
		w.h, err = c.f.OpenWrite(ctx, w.pid, c.key, core.OpenMode{Create: true, Truncate: true, Exclusive: flag&os.O_EXCL != 0}, nil)
	}
	if err := c.end(before, err); err != nil {
		return nil, err
	}
	c.writers = append(c.writers, w)
	return w, nil
}

// fsxWriter is a descriptor open for writing: a core.Handle.
type fsxWriter struct {
	c      *fsxCore
	h      *core.Handle
	pid    uint32
	flag   int
	off    int64 // the descriptor's offset, for Write
	closed bool
}

func (w *fsxWriter) ReadAt(p []byte, off int64) (int, error) {
	if w.flag&os.O_WRONLY != 0 {
		return 0, syscall.EBADF
	}
	before := w.c.begin()
	n, err := w.h.ReadAt(ctx, p, off)
	if err := w.c.end(before, err); err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (w *fsxWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.flag&os.O_APPEND != 0 { // Linux's pwrite appends, whatever off says
		size, err := w.c.size()
		if err != nil {
			return 0, err
		}
		off = size
	}
	return w.write(p, off)
}

func (w *fsxWriter) Write(p []byte) (int, error) {
	off := w.off
	if w.flag&os.O_APPEND != 0 {
		size, err := w.c.size()
		if err != nil {
			return 0, err
		}
		off = size
	}
	n, err := w.write(p, off)
	w.off = off + int64(n)
	return n, err
}

// write hands p to the core in a buffer that is scribbled over once the
// call returns, as go-fuse reuses its request buffers.
func (w *fsxWriter) write(p []byte, off int64) (int, error) {
	c := w.c
	if cap(c.wbuf) < len(p) {
		c.wbuf = make([]byte, len(p))
	}
	buf := c.wbuf[:len(p)]
	copy(buf, p)
	before := c.begin()
	n, err := w.h.Write(ctx, off, buf)
	copy(buf, modelScribble())
	return n, c.end(before, err)
}

func (w *fsxWriter) Truncate(size int64) error {
	before := w.c.begin()
	return w.c.end(before, w.h.Truncate(ctx, size))
}

func (w *fsxWriter) Sync() error {
	before := w.c.begin()
	return w.c.end(before, w.h.Fsync(ctx))
}

func (w *fsxWriter) Size() (int64, error) { return w.c.size() }

func (w *fsxWriter) Mmap(off int64, length int, writable bool) (fsx.Mapping, error) {
	if writable && w.flag&os.O_RDWR == 0 {
		return nil, syscall.EACCES
	}
	return w.c.mmap(w, off, length, writable)
}

// Close is close(2) of the last copy of the descriptor. The kernel sends
// FLUSH for the close of every copy and RELEASE after the last: here the
// opener's close, sometimes after a forked child's (which must not
// commit); or, for the last write descriptor, sometimes only another
// process's (the descriptor was handed over), so that RELEASE commits.
func (w *fsxWriter) Close() error {
	c := w.c
	if w.closed {
		return syscall.EBADF
	}
	w.closed = true
	for i, o := range c.writers {
		if o == w {
			c.writers = append(c.writers[:i], c.writers[i+1:]...)
			break
		}
	}
	before := c.begin()
	opener := true
	var childErr error
	if n := c.r.IntN(8); n < 2 || n == 2 && len(c.writers) == 0 {
		opener = n < 2
		c.lastPid++
		err := w.h.Flush(ctx, c.lastPid)
		c.mu.Lock()
		committed := len(c.commits) > 0
		c.mu.Unlock()
		switch {
		case committed:
			childErr = fmt.Errorf("a close by process %d, which did not open the file, committed it", c.lastPid)
		case err != nil && !c.failed:
			childErr = fmt.Errorf("a close by process %d, which did not open the file: %w", c.lastPid, err)
		}
	}
	var err error
	if opener {
		err = w.h.Flush(ctx, w.pid)
	}
	w.h.Release(ctx)
	if childErr != nil {
		return childErr
	}
	c.mu.Lock()
	releaseFailed := err == nil && c.failures > before.failures
	c.mu.Unlock()
	if releaseFailed {
		// The commit of the last RELEASE failed: the kernel could not tell
		// (the close had returned); the exerciser must know.
		err = fmt.Errorf("the last release's commit: %w", syscall.EIO)
	}
	err = c.end(before, err)
	if len(c.writers) == 0 {
		c.failed = false // the failed session ended with its last handle
	}
	return err
}

// fsxReader is a descriptor open O_RDONLY.
type fsxReader struct{ c *fsxCore }

// ReadAt reads through the write session when one is open, else the
// object (fs's read handle).
func (r *fsxReader) ReadAt(p []byte, off int64) (int, error) {
	c := r.c
	before := c.begin()
	n, ok, err := c.f.ReadAt(ctx, p, off)
	if !ok {
		n, err = c.readObject(p, off)
	}
	if err := c.end(before, err); err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readObject reads the object at off into p; the count is short at its end.
func (c *fsxCore) readObject(p []byte, off int64) (int, error) {
	info, ok := c.head()
	if !ok {
		return 0, syscall.ENOENT
	}
	if off >= info.Size {
		return 0, nil
	}
	body, err := c.b.s3.GetRange(ctx, c.key, off, min(int64(len(p)), info.Size-off), info.ETag)
	if err != nil {
		return 0, core.Errno(err)
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:min(int64(len(p)), info.Size-off)])
	if err != nil {
		return n, core.Errno(err)
	}
	return n, nil
}

func (r *fsxReader) WriteAt(p []byte, off int64) (int, error) { return 0, syscall.EBADF }
func (r *fsxReader) Write(p []byte) (int, error)              { return 0, syscall.EBADF }
func (r *fsxReader) Truncate(size int64) error                { return syscall.EBADF }
func (r *fsxReader) Sync() error                              { return nil } // fs: a read handle has nothing to commit
func (r *fsxReader) Size() (int64, error)                     { return r.c.size() }
func (r *fsxReader) Close() error                             { return nil }

func (r *fsxReader) Mmap(off int64, length int, writable bool) (fsx.Mapping, error) {
	if writable {
		return nil, syscall.EACCES
	}
	return r.c.mmap(r, off, length, false)
}

// fsxMapping is a shared mapping, emulated (see fsxCore).
type fsxMapping struct {
	w        *fsxWriter // the descriptor, when the mapping is writable
	start    int64      // the first page's offset
	pages    []byte     // the mapped pages, from start
	clean    []byte     // pages as last read or written back (writable)
	from, to int        // the range asked for, within pages
}

const fsxPage = 4096

func (c *fsxCore) mmap(d fsx.File, off int64, length int, writable bool) (fsx.Mapping, error) {
	start := off / fsxPage * fsxPage
	end := (off + int64(length) + fsxPage - 1) / fsxPage * fsxPage
	m := &fsxMapping{start: start, pages: make([]byte, end-start), from: int(off - start), to: int(off-start) + length}
	// The pages are read at map time; past the end of the file they are zeros.
	if _, err := d.ReadAt(m.pages, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if writable {
		m.w = d.(*fsxWriter)
		m.clean = bytes.Clone(m.pages)
	}
	return m, nil
}

func (m *fsxMapping) Bytes() []byte { return m.pages[m.from:m.to] }

// Sync writes the changed pages back, each run of them in one write, up to
// the end of the file.
func (m *fsxMapping) Sync() error {
	if m.w == nil || m.w.closed {
		return nil
	}
	size, err := m.w.c.size()
	if err != nil {
		return err
	}
	for p := 0; p < len(m.pages); {
		if bytes.Equal(m.pages[p:p+fsxPage], m.clean[p:p+fsxPage]) {
			p += fsxPage
			continue
		}
		q := p + fsxPage
		for q < len(m.pages) && !bytes.Equal(m.pages[q:q+fsxPage], m.clean[q:q+fsxPage]) {
			q += fsxPage
		}
		end := min(int64(q), size-m.start)
		if end > int64(p) {
			if _, err := m.w.write(m.pages[p:end], m.start+int64(p)); err != nil {
				return err
			}
		}
		copy(m.clean[p:q], m.pages[p:q])
		p = q
	}
	return nil
}

// Unmap writes back what is still changed, as the kernel does later.
func (m *fsxMapping) Unmap() error {
	err := m.Sync()
	m.pages, m.clean = nil, nil
	return err
}
