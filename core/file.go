package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/stage"
	"github.com/bucketfs/bucketfs/uploader"
)

// Version is an object as a commit left it.
type Version struct {
	Key  string
	ETag string
	Size int64
	// Written is when the session last changed the file's bytes (its
	// mtime until S3's LastModified is read); zero if unknown.
	Written time.Time
}

// Existing describes what S3 holds at a file's key when it is opened for writing.
type Existing struct {
	Exists bool
	Size   int64
	ETag   string // the version opened: an edit in place (staged) starts from it
}

// OpenMode says how a file is opened for writing.
type OpenMode struct {
	Create    bool // a new file: O_CREAT made it, no object is at its key
	Truncate  bool // O_TRUNC
	Exclusive bool // O_EXCL: the first commit fails if another client created the key meanwhile
}

// Hooks connect a File to its owner in the filesystem layer. They run with
// File.mu held (lock order in doc.go) and must not call back into the File.
type Hooks struct {
	// Options returns the settings (metadata, Content-Type) of a new
	// upload of the file; nil: none.
	Options func() s3client.PutOptions
	// Committed is told of each version a session publishes.
	Committed func(v Version)
	// Failed is told when a session fails: the key holds what it held before.
	Failed func(key string, err error)
}

// File is one regular file's write state. The filesystem layer keeps one per
// inode and asks it for every open for writing, every write, flush, fsync
// and release of a write handle, for an fsync through any other descriptor
// (Sync), and before renaming or unlinking the file.
type File struct {
	c     *Core
	hooks Hooks

	mu   sync.Mutex // guards s and the session's fields; first in the lock order (doc.go); held across the S3 calls of commits
	cond *sync.Cond // on mu: broadcast when a write lands, a commit ends, a session ends, or a wait's deadline passes
	s    *session   // the open write session; nil when none

	// Written with mu held, read without it (Stat, SetMetadata).
	open   atomic.Bool                     // a session is open
	dirty  atomic.Bool                     // the session holds bytes, or a truncation, not yet in S3
	size   atomic.Int64                    // the file's size as written, while open
	mtime  atomic.Int64                    // unix nanoseconds of the last write, while open
	upload atomic.Pointer[uploader.Upload] // the session's current upload, nil when clean
}

// session is the writing of a file by its open descriptions (Handles):
// the state machine of the commit rule (doc.go). Its states:
//
//	writing:   up != nil           streaming: bytes (or an owed empty object) not yet in S3
//	staged:    st != nil           edited in place on the stage (stage.go); changed or not
//	clean:     up == nil, st == nil, published   everything written is in S3
//	failed:    err != nil          sticky EIO until release; the old object is untouched
//	orphaned:  orphaned            unlinked or replaced: nothing is published any more
//
// A write at the end in the clean state reopens (writing again, seeded with
// the published bytes); any other edit stages the file. Once staged, a file
// stays staged until its last handle is released, which ends every state.
type session struct {
	handles   int              // open Handles sharing the session (more than one only when staged)
	key       string           // the file's current key
	st        *stage.File      // the staged content; nil while streaming or clean
	up        *uploader.Upload // the bytes since the last commit; nil when clean
	seeded    int64            // bytes of up that are the last commit's (uploader.Upload.Seed)
	published *Version         // what the last commit put at key; nil before the first
	owesEmpty bool             // publish even with nothing written: a new file, or the truncation of a non-empty object
	replacing bool             // key holds an object this session did not write (a rename deletes it: the truncation moves with the name)
	exclusive bool             // the next upload is conditional (O_EXCL)
	copied    bool             // staged on another object as its base (CopyFrom): published at the next commit, changed or not
	err       error            // the failure; sticky
	orphaned  bool
}

// NewFile returns the write state of a file whose owner is told of commits through hooks.
func (c *Core) NewFile(hooks Hooks) *File {
	f := &File{c: c, hooks: hooks}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// Handle is one open file description for writing.
type Handle struct {
	f      *File
	s      *session
	opener uint32 // the process that opened it; 0 when unknown
}

// lastWrite returns when the file's bytes last changed through a session;
// zero if they have not.
func (f *File) lastWrite() time.Time {
	if ns := f.mtime.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Writing reports the size and mtime of a file while a write session is
// open (mtime is zero while a staged file is unchanged); ok is false when
// none is. It never waits.
func (f *File) Writing() (size int64, mtime time.Time, ok bool) {
	if !f.open.Load() {
		return 0, time.Time{}, false
	}
	if ns := f.mtime.Load(); ns != 0 {
		mtime = time.Unix(0, ns)
	}
	return f.size.Load(), mtime, true
}

// Dirty reports whether an open session holds bytes not yet in S3. It never waits.
func (f *File) Dirty() bool { return f.dirty.Load() }

// SetMetadata puts m into the upload under way, when it has not reached S3
// yet, and reports whether it did. It never waits.
func (f *File) SetMetadata(m map[string]string) bool {
	up := f.upload.Load()
	return up != nil && up.SetMetadata(m)
}

// wake broadcasts on cond, for timers and cancelled contexts.
func (f *File) wake() {
	f.mu.Lock()
	f.cond.Broadcast()
	f.mu.Unlock()
}

// waitLocked waits (mu held) until done() holds, ctx ends (EINTR) or limit
// passes (timedOut).
func (f *File) waitLocked(ctx context.Context, limit time.Duration, done func() bool) (timedOut bool, err error) {
	if done() {
		return false, nil
	}
	deadline := time.Now().Add(limit)
	t := time.AfterFunc(limit, f.wake)
	defer t.Stop()
	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	for !done() {
		if ctx.Err() != nil {
			return false, syscall.EINTR
		}
		if !time.Now().Before(deadline) {
			return true, nil
		}
		f.cond.Wait()
	}
	return false, nil
}

// OpenWrite starts a write session of the file at key for process pid. An
// open while another session is open waits Config.WriterWait for it to end
// (its RELEASE usually follows its last close at once), then answers EBUSY:
// two writers never race on one object. Writing into an existing non-empty
// object without O_TRUNC answers ENOTSUP (S3 objects cannot be changed in
// place). existing is asked, once no other session is open, what S3 holds
// at key (it runs with File.mu held, as the Hooks do); nil: nothing.
func (f *File) OpenWrite(ctx context.Context, pid uint32, key string, mode OpenMode, existing func(trunc bool) Existing) (*Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, err := f.joinLocked(ctx, pid, mode); h != nil || err != nil {
		return h, err
	}
	timedOut, err := f.waitLocked(ctx, f.c.cfg.WriterWait, func() bool { return f.s == nil })
	if err != nil {
		return nil, err
	}
	if timedOut {
		return nil, syscall.EBUSY
	}
	var ex Existing
	if existing != nil && !mode.Create {
		ex = existing(mode.Truncate)
	}
	if !mode.Truncate && ex.Size > 0 {
		return f.openStagedLocked(ctx, pid, key, ex)
	}
	s := &session{handles: 1, key: key, exclusive: mode.Exclusive}
	s.owesEmpty = mode.Create || !ex.Exists || ex.Size > 0
	s.replacing = ex.Exists && !mode.Create
	h := &Handle{f: f, s: s, opener: pid}
	f.s = s
	f.startLocked(s)
	f.open.Store(true)
	f.size.Store(0)
	f.mtime.Store(time.Now().UnixNano())
	f.c.log.WithFields(logrus.Fields{"op": "open-write", "key": key, "pid": pid}).Debug("write session opened")
	return h, nil
}

// OpenRead waits until the file holds no bytes that are not in S3, so that a
// reader sees what was written through this mount (close-to-open), for at
// most Config.WriterWait; then EBUSY. It is for a Core without a Stage:
// with one, a reader reads through the open session instead (File.ReadAt).
func (f *File) OpenRead(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	timedOut, err := f.waitLocked(ctx, f.c.cfg.WriterWait, func() bool { return f.s == nil || !f.dirtyLocked(f.s) })
	if err != nil {
		return err
	}
	if timedOut {
		return syscall.EBUSY
	}
	return nil
}

// optionsLocked returns the settings of the session's next upload (mu held).
func (f *File) optionsLocked(s *session) s3client.PutOptions {
	var opts s3client.PutOptions
	if f.hooks.Options != nil {
		opts = f.hooks.Options()
	}
	opts.IfNoneMatch = s.exclusive
	return opts
}

// startLocked begins the session's next upload (mu held).
func (f *File) startLocked(s *session) {
	s.up = f.c.cfg.Uploader.Start(s.key, f.optionsLocked(s))
	s.seeded = 0
	f.upload.Store(s.up)
	f.dirty.Store(true)
}

// dirtyLocked says whether s holds something S3 does not have yet (mu held).
func (f *File) dirtyLocked(s *session) bool {
	switch {
	case s.err != nil || s.orphaned:
		return false
	case s.st != nil:
		return s.owesEmpty || s.copied || s.st.Changed()
	}
	return s.up != nil && (s.up.Size() > s.seeded || s.owesEmpty)
}

func (f *File) setDirtyLocked(s *session) { f.dirty.Store(f.dirtyLocked(s)) }

func (f *File) fields(s *session) logrus.Fields {
	return logrus.Fields{"key": s.key}
}

// failLocked fails the session (mu held): the upload is aborted, so the key
// keeps what it held, and every later call answers EIO.
func (f *File) failLocked(ctx context.Context, s *session, op string, err error) {
	if s.err != nil {
		return
	}
	s.err = err
	if s.st != nil {
		s.st.Close() // the edit cannot be committed any more
		s.st = nil
	}
	if s.up != nil {
		_ = s.up.Abort(ctx) // logged by the uploader
		s.up = nil
		f.upload.Store(nil)
	}
	f.dirty.Store(false)
	f.c.log.WithError(err).WithFields(f.fields(s)).WithFields(logrus.Fields{"op": op, "code": s3client.Code(err), "request_id": s3client.RequestID(err)}).
		Error("writing the file failed; its object was left as it was")
	if f.hooks.Failed != nil {
		f.hooks.Failed(s.key, err)
	}
	f.cond.Broadcast()
}

// reopenLocked starts a new upload after a commit (mu held): it begins with
// the committed bytes, copied on the server or read back (uploader Seed),
// conditioned on the committed ETag so another client's change is never
// spliced in.
func (f *File) reopenLocked(ctx context.Context, s *session) error {
	f.startLocked(s)
	if p := s.published; p != nil && p.Size > 0 {
		sctx, cancel := f.c.own(ctx)
		defer cancel()
		if err := s.up.Seed(sctx, uploader.Base{Key: p.Key, ETag: p.ETag, Size: p.Size}); err != nil {
			f.failLocked(sctx, s, "reopen", err)
			return err
		}
		s.seeded = p.Size
	}
	f.c.log.WithFields(f.fields(s)).WithField("op", "reopen").Debug("write after commit: the object is reopened")
	return nil
}

// commitLocked completes the session's upload (mu held) and publishes it at
// the file's current key.
func (f *File) commitLocked(ctx context.Context, s *session, op string) error {
	if s.st != nil {
		return f.commitStagedLocked(ctx, s, op)
	}
	up := s.up
	res, err := up.Complete(ctx)
	s.up = nil
	f.upload.Store(nil)
	if err != nil {
		f.failLocked(ctx, s, op, err)
		return syscall.EIO
	}
	// The upload's key is always s.key: Rename moves an upload that has not
	// reached S3, and completes one that has before it moves the file.
	v := Version{Key: up.Key(), ETag: res.ETag, Size: res.Size, Written: f.lastWrite()}
	s.published = &v
	s.owesEmpty, s.replacing, s.exclusive, s.seeded = false, false, false, 0
	f.size.Store(v.Size)
	f.dirty.Store(false)
	f.c.log.WithFields(f.fields(s)).WithFields(logrus.Fields{"op": op, "size": v.Size, "parts": res.Parts}).Debug("committed")
	if f.hooks.Committed != nil {
		f.hooks.Committed(v)
	}
	f.cond.Broadcast()
	return nil
}

// Write writes data at off. Writes append: one past the end waits (bounded)
// for the writes before it, then the gap is a hole of zeros; one before the
// end answers ENOTSUP. A write after a commit reopens the object. A write
// that could not get memory (EINTR when interrupted, ENOBUFS when the
// upload budget stayed spent, ENOSPC when a part to spill did not fit the
// stage) accepts no byte and leaves the session as it was, so the
// application may retry it; any other failure fails the session.
func (h *Handle) Write(ctx context.Context, off int64, data []byte) (int, error) {
	f, s := h.f, h.s
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.c.cfg.Stage != nil {
		if done, err := f.editLocked(ctx, s, off, data); done {
			return len(data), err
		} else if err != nil {
			return 0, err
		}
	}
	waited := false
	for {
		switch {
		case s.err != nil:
			return 0, syscall.EIO
		case s.orphaned:
			if end := off + int64(len(data)); end > f.size.Load() {
				f.size.Store(end)
			}
			return len(data), nil
		case s.up == nil:
			if err := f.reopenLocked(ctx, s); err != nil {
				return 0, syscall.EIO
			}
		}
		if off <= s.up.Size() || waited {
			break
		}
		// Out of order: wait for the writes before this one.
		waited = true
		up := s.up
		if _, err := f.waitLocked(ctx, f.c.cfg.OutOfOrderWait, func() bool {
			return s.up != up || s.err != nil || s.orphaned || up.Size() >= off
		}); err != nil {
			return 0, err
		}
	}
	size := s.up.Size()
	if off < size {
		return 0, syscall.ENOTSUP
	}
	for off > size {
		n := min(off-size, int64(len(zeros)))
		if err := h.appendLocked(ctx, zeros[:n]); err != nil {
			return 0, err
		}
		size += n
	}
	if err := h.appendLocked(ctx, data); err != nil {
		return 0, err
	}
	return len(data), nil
}

// zeros fills holes; it is only ever read.
var zeros = make([]byte, 1<<20)

// appendLocked appends p to the session's upload (f.mu held).
func (h *Handle) appendLocked(ctx context.Context, p []byte) error {
	f, s := h.f, h.s
	n, err := s.up.Write(ctx, p)
	if err != nil && n == 0 && (errors.Is(err, uploader.ErrNoMemory) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if errors.Is(err, syscall.ENOSPC) {
			f.c.log.WithFields(f.fields(s)).WithField("op", "write").Warn("no room in the stage (--cache-max-size) to spill a part; the write was refused")
			return syscall.ENOSPC
		}
		if errors.Is(err, uploader.ErrNoMemory) {
			f.c.log.WithFields(f.fields(s)).WithField("op", "write").Warn("the upload memory budget stayed spent; the write was refused")
			return syscall.ENOBUFS
		}
		return syscall.EINTR
	}
	if err != nil {
		if errors.Is(err, uploader.ErrTooLarge) {
			return syscall.EFBIG
		}
		f.failLocked(ctx, s, "write", err)
		return syscall.EIO
	}
	f.size.Store(s.up.Size())
	f.mtime.Store(time.Now().UnixNano())
	f.dirty.Store(true)
	f.cond.Broadcast()
	return nil
}

// Flush is one close() of a descriptor of the handle by process pid. It
// commits only when pid opened the handle and bytes were written since the
// last commit. A flush never publishes an empty file: the shell's own
// redirection (open, dup2, close the original) and dd close a descriptor
// before writing, and that close must neither replace an existing object
// nor cost `cmd > newfile` a second PutObject; an empty file (touch, or a
// truncation) is published by fsync or at RELEASE. After a failure every
// flush answers EIO.
func (h *Handle) Flush(ctx context.Context, pid uint32) error {
	f, s := h.f, h.s
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case s.err != nil:
		return syscall.EIO
	case s.orphaned, pid != h.opener:
		return nil
	case s.st != nil:
		if s.copied || s.st.Changed() {
			return f.commitLocked(ctx, s, "flush")
		}
		return nil
	case s.up == nil:
		return nil
	case s.up.Size() > s.seeded:
		return f.commitLocked(ctx, s, "flush")
	}
	return nil
}

// Fsync commits whatever is not in S3 yet, and reports.
func (h *Handle) Fsync(ctx context.Context) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.fsyncLocked(ctx, h.s)
}

// Sync is fsync through a descriptor that does not write (`sync FILE` opens
// the file read-only): as on a disk, it commits what the file's open
// session holds that S3 does not have yet, and reports that session's
// failure; nil when no session is open.
func (f *File) Sync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s == nil {
		return nil
	}
	return f.fsyncLocked(ctx, f.s)
}

func (f *File) fsyncLocked(ctx context.Context, s *session) error {
	switch {
	case s.err != nil:
		return syscall.EIO
	case f.dirtyLocked(s):
		return f.commitLocked(ctx, s, "fsync")
	}
	return nil
}

// Release ends the session: what is still uncommitted is committed (a
// failure can only be logged: RELEASE has no caller to tell), and waiting
// opens may proceed.
func (h *Handle) Release(ctx context.Context) {
	f, s := h.f, h.s
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s != s {
		return
	}
	if s.handles--; s.handles > 0 {
		return // another description still writes: the last release commits
	}
	switch {
	case f.dirtyLocked(s):
		if err := f.commitLocked(ctx, s, "release"); err != nil {
			f.c.log.WithFields(f.fields(s)).WithField("op", "release").Error("the file's last close could not be committed; its object was left as it was")
		}
	case s.up != nil:
		_ = s.up.Abort(ctx)
		s.up = nil
	}
	if s.st != nil {
		s.st.Close()
		s.st = nil
	}
	f.s = nil
	f.upload.Store(nil)
	f.open.Store(false)
	f.dirty.Store(false)
	f.cond.Broadcast()
}

// Rename moves an open session to newKey, so that the old name is gone for
// good (logrotate: a writer's later close never brings it back): what the
// session published is moved on the server; an object it was replacing
// (O_TRUNC) is deleted, the truncation being owed to the new name; the
// upload under way targets newKey, or, when its multipart upload already
// exists under the old name, is completed first and moved. handled
// is false when no session is open or it failed: the filesystem layer then
// moves the object as for any file.
//
// opts are the copy's settings when what the session published is moved
// (a pending attribute change rides in it); moved is that copy's result, nil
// when nothing was copied (the caller then keeps its pending changes: the
// session's next commit carries the file's current attributes).
func (f *File) Rename(ctx context.Context, newKey string, opts s3client.CopyOptions) (handled bool, moved *Version, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	if s == nil || s.err != nil {
		return false, nil, nil
	}
	if s.orphaned {
		s.key = newKey
		return true, nil, nil
	}
	if s.st != nil && f.dirtyLocked(s) {
		// The stage's unchanged bytes are the old object's: commit the edit
		// under the old name, then move the object below.
		if err := f.commitLocked(ctx, s, "rename"); err != nil {
			return true, nil, err
		}
	}
	if s.up != nil {
		if keyErr := s.up.SetKey(newKey); keyErr != nil {
			// The multipart upload was created under the old name and
			// cannot move: complete it there now, while that name is still
			// the file's, and move the object below. Completing it later
			// under the old name would clobber whatever a new file of that
			// name holds by then. Later writes reopen it under newKey.
			if err := f.commitLocked(ctx, s, "rename"); err != nil {
				return true, nil, err
			}
		} else {
			defer func(old string) {
				if err != nil { // the named result: the rename failed below
					_ = s.up.SetKey(old)
				}
			}(s.key)
		}
	}
	rctx, cancel := f.c.own(ctx)
	defer cancel()
	switch {
	case s.published != nil && s.published.Key == s.key:
		p := s.published
		etag, err := f.c.cfg.Copy(rctx, s.key, newKey, p.Size, opts)
		if err != nil {
			return true, nil, err
		}
		if err := f.c.cfg.Client.Delete(rctx, s.key); err != nil {
			return true, nil, err
		}
		s.published = &Version{Key: newKey, ETag: etag, Size: p.Size}
		moved = s.published
		if s.st != nil {
			s.st.Rebase(stage.Base{Key: newKey, ETag: etag, Size: p.Size})
		}
	case s.replacing:
		if err := f.c.cfg.Client.Delete(rctx, s.key); err != nil {
			return true, nil, err
		}
		s.owesEmpty = true
	}
	s.key = newKey
	// What newKey holds (if anything) is no longer a file: the next commit
	// replaces it, and a later rename deletes it as it deleted the old one.
	s.replacing = true
	s.exclusive = false // O_EXCL was about the old name; a rename replaces what the new one holds
	f.c.log.WithFields(f.fields(s)).WithField("op", "rename").Debug("write session moved")
	return true, moved, nil
}

// Detach orphans the open session of a file that was unlinked or replaced
// by a rename: no close of it will publish anything. As in POSIX, its open
// descriptors keep reading and writing the file's bytes: they are moved to
// the stage first (all of them, before the object is deleted), when the
// mount has one and they are still to be had (a streaming upload whose
// parts were sent cannot be read back: its writes then go nowhere). It
// reports whether a session was open.
func (f *File) Detach(ctx context.Context) bool {
	return f.orphan(ctx, true)
}

// Abandon orphans the open session as Detach does, without keeping its
// bytes: the mount is shutting down.
func (f *File) Abandon(ctx context.Context) bool {
	return f.orphan(ctx, false)
}

func (f *File) orphan(ctx context.Context, keep bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	if s == nil {
		return false
	}
	if !s.orphaned {
		if keep {
			f.keepLocked(ctx, s)
		}
		s.orphaned = true
		if s.up != nil {
			_ = s.up.Abort(ctx)
			s.up = nil
			f.upload.Store(nil)
		}
		f.dirty.Store(false)
		f.cond.Broadcast()
	}
	return true
}
