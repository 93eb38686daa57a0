package core

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/stage"
	"github.com/bucketfs/bucketfs/uploader"
)

// Staged writing: what a program does to a file besides writing it front
// to back. A session moves from streaming to staged (stage package: a
// sparse local file holding only what was written or read) when
//   - an existing non-empty object is opened for writing without O_TRUNC,
//   - a write lands before the end of what left memory, or past the end,
//   - the file is truncated to another size, or read while it is written,
//   - a second description opens it for writing (they share the session),
//   - a write after a commit is not at the end (one at the end reopens a
//     streaming upload seeded with the commit, as before).
// Writes the kernel reorders within the part still in memory are patched
// there and stay streaming. A streaming session whose bytes are all still
// in memory moves to the stage for free; one whose parts were sent is
// committed first (the object then holds what was written so far, as after
// an fsync) and staged on top of that commit.
//
// A staged commit (the same rule decides when: opener's close, fsync, last
// release) composes the new object from the old one: unchanged ranges are
// copied on the server conditioned on the old ETag (an outside change fails
// the commit, never merges), changed ones are uploaded from the stage
// (uploader.Compose). Once staged, a session stays staged until its last
// handle is released; the stage file is removed then.

// joinLocked lets a second open for writing share the open session (f.mu
// held): the session is staged, so every description sees one file. It
// returns nil, nil when the open must wait instead (no stage, or the
// session failed or was orphaned: a new one follows it).
func (f *File) joinLocked(ctx context.Context, pid uint32, mode OpenMode) (*Handle, error) {
	s := f.s
	if s == nil || f.c.cfg.Stage == nil || s.err != nil || s.orphaned || mode.Create {
		return nil, nil
	}
	if err := f.stageLocked(ctx, s, true); err != nil {
		return nil, err
	}
	if mode.Truncate {
		if err := f.truncateLocked(ctx, s, 0); err != nil {
			return nil, err
		}
	}
	s.handles++
	f.c.log.WithFields(f.fields(s)).WithFields(logrus.Fields{"op": "open-write", "pid": pid, "handles": s.handles}).Debug("write session shared")
	return &Handle{f: f, s: s, opener: pid}, nil
}

// openStagedLocked opens an existing non-empty object for editing in place
// (f.mu held; no session is open).
func (f *File) openStagedLocked(ctx context.Context, pid uint32, key string, ex Existing) (*Handle, error) {
	if f.c.cfg.Stage == nil {
		return nil, syscall.ENOTSUP
	}
	v := Version{Key: key, ETag: ex.ETag, Size: ex.Size}
	s := &session{handles: 1, key: key, published: &v}
	st, err := f.c.cfg.Stage.Create(key, stage.Base{Key: key, ETag: ex.ETag, Size: ex.Size}, f.c.fetch)
	if err != nil {
		f.c.log.WithError(err).WithFields(logrus.Fields{"op": "open-write", "key": key}).Error("the file could not be staged")
		return nil, syscall.EIO
	}
	s.st = st
	f.s = s
	f.open.Store(true)
	f.size.Store(ex.Size)
	f.mtime.Store(0) // unchanged until written
	f.dirty.Store(false)
	f.c.log.WithFields(logrus.Fields{"op": "open-write", "key": key, "pid": pid, "size": ex.Size}).Debug("write session opened on the stage")
	return &Handle{f: f, s: s, opener: pid}, nil
}

// fetch reads a range of a stage's base object, conditioned on its ETag.
func (c *Core) fetch(ctx context.Context, base stage.Base, off, n int64) (io.ReadCloser, error) {
	return c.cfg.Client.GetRange(ctx, base.Key, off, n, base.ETag)
}

// stageLocked moves the session to the stage (f.mu held). mayCommit allows
// committing a streaming upload whose parts were sent (see above); without
// it such a session stays as it is and ENOTSUP is returned.
func (f *File) stageLocked(ctx context.Context, s *session, mayCommit bool) error {
	if s.st != nil {
		return nil
	}
	d := f.c.cfg.Stage
	if d == nil {
		return syscall.ENOTSUP
	}
	published := func() stage.Base {
		if p := s.published; p != nil {
			return stage.Base{Key: p.Key, ETag: p.ETag, Size: p.Size}
		}
		return stage.Base{}
	}
	var st *stage.File
	var err error
	switch {
	case s.up == nil || s.up.Size() == s.seeded:
		// Nothing written since the last commit (or since the open).
		if st, err = d.Create(s.key, published(), f.c.fetch); err != nil {
			break
		}
		if s.up != nil {
			_ = s.up.Abort(ctx)
		}
	default:
		if st, err = d.Create(s.key, stage.Base{}, f.c.fetch); err != nil {
			break
		}
		var moved bool
		if moved, err = s.up.Buffered(stageWriter{st}); err != nil || moved {
			if err == nil {
				_ = s.up.Abort(ctx)
			}
			break
		}
		st.Close()
		st = nil
		if !mayCommit {
			return syscall.ENOTSUP
		}
		if err := f.commitLocked(ctx, s, "stage"); err != nil {
			return err
		}
		st, err = d.Create(s.key, published(), f.c.fetch)
	}
	if err != nil {
		if st != nil {
			st.Close()
		}
		if errors.Is(err, stage.ErrNoSpace) {
			return syscall.ENOSPC
		}
		f.failLocked(ctx, s, "stage", err)
		return syscall.EIO
	}
	s.st, s.up, s.seeded = st, nil, 0
	f.upload.Store(nil)
	f.setDirtyLocked(s)
	f.c.log.WithFields(f.fields(s)).WithField("op", "stage").Debug("the file is staged")
	return nil
}

// stageWriter writes a streaming upload's buffered bytes into a stage file.
type stageWriter struct{ st *stage.File }

func (w stageWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := w.st.WriteAt(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// editLocked handles a write when the mount has a stage (f.mu held): done
// is true when the write was taken here (staged, or patched into the part
// in memory); false, nil leaves an append to the streaming path.
func (f *File) editLocked(ctx context.Context, s *session, off int64, data []byte) (done bool, err error) {
	if s.err != nil {
		return false, syscall.EIO
	}
	if s.st == nil && !s.orphaned {
		end := off + int64(len(data))
		switch {
		case s.up == nil:
			if p := s.published; p != nil && off == p.Size {
				return false, nil // an append after a commit: reopened seeded, streaming
			}
		case off == s.up.Size():
			return false, nil
		case off < s.up.Size() && end <= s.up.Size() && s.up.Patch(off, data):
			f.mtime.Store(time.Now().UnixNano())
			f.dirty.Store(true)
			return true, nil
		}
		if err := f.stageLocked(ctx, s, true); err != nil {
			return false, err
		}
	}
	if s.st == nil {
		return false, nil // orphaned while streaming: the old rule (writes go nowhere)
	}
	if err := s.st.WriteAt(data, off); err != nil {
		if errors.Is(err, stage.ErrNoSpace) {
			f.c.log.WithFields(f.fields(s)).WithField("op", "write").Warn("the stage is full (--cache-max-size): the write was refused")
			return false, syscall.ENOSPC
		}
		f.failLocked(ctx, s, "write", err)
		return false, syscall.EIO
	}
	f.size.Store(s.st.Size())
	f.mtime.Store(time.Now().UnixNano())
	f.setDirtyLocked(s)
	f.cond.Broadcast()
	return true, nil
}

// commitStagedLocked composes the staged file's new object (f.mu held).
func (f *File) commitStagedLocked(ctx context.Context, s *session, op string) error {
	size, base, same := s.st.Layout()
	opts := f.optionsLocked(s)
	// The commit runs to its end when the caller is interrupted (a ^C of
	// `sync FILE` must not fail the writers' session): the stage's reads of
	// the old object's bytes too.
	ctx = context.WithoutCancel(ctx)
	l := uploader.Layout{Size: size, Data: s.st.Reader(ctx)}
	if base.ETag != "" && base.Size > 0 {
		l.Base = uploader.Base{Key: base.Key, ETag: base.ETag, Size: base.Size}
		for _, r := range same {
			l.Same = append(l.Same, uploader.Range{Off: r.Off, End: r.End})
		}
	}
	res, err := f.c.cfg.Uploader.Compose(ctx, s.key, opts, l)
	if err != nil {
		f.failLocked(ctx, s, op, err)
		return syscall.EIO
	}
	v := Version{Key: s.key, ETag: res.ETag, Size: res.Size, Written: f.lastWrite()}
	s.published = &v
	s.owesEmpty, s.replacing, s.exclusive, s.copied = false, false, false, false
	s.st.Committed(stage.Base{Key: v.Key, ETag: v.ETag, Size: v.Size})
	f.size.Store(v.Size)
	f.dirty.Store(false)
	f.c.log.WithFields(f.fields(s)).WithFields(logrus.Fields{"op": op, "size": v.Size, "parts": res.Parts, "sent": res.Sent, "copied": res.Copied}).Debug("staged file committed")
	if f.hooks.Committed != nil {
		f.hooks.Committed(v)
	}
	f.cond.Broadcast()
	return nil
}

// keepLocked moves every byte of a session about to be orphaned onto the
// stage, when it can (Detach).
func (f *File) keepLocked(ctx context.Context, s *session) {
	if f.c.cfg.Stage == nil || s.err != nil {
		return
	}
	if err := f.stageLocked(ctx, s, false); err != nil {
		return
	}
	kctx, cancel := f.c.own(ctx)
	defer cancel()
	if err := s.st.FetchAll(kctx); err != nil {
		f.c.log.WithError(err).WithFields(f.fields(s)).WithField("op", "unlink").
			Warn("the unlinked file's bytes could not all be kept: reads of the missing ones will fail")
	}
}

// ReadAt reads the file as its open descriptions see it: what was written,
// committed or not. It stages a streaming session (a read of a file being
// written). The count is short at the end of the file.
func (h *Handle) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.readLocked(ctx, h.s, p, off)
}

// ReadAt reads the file through its open write session, so that a reader
// on this mount sees what the writers wrote; ok is false when no session
// is open (the caller reads the object).
func (f *File) ReadAt(ctx context.Context, p []byte, off int64) (n int, ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	if s == nil || f.c.cfg.Stage == nil || (s.orphaned && s.st == nil) {
		return 0, false, nil
	}
	n, err = f.readLocked(ctx, s, p, off)
	return n, true, err
}

func (f *File) readLocked(ctx context.Context, s *session, p []byte, off int64) (int, error) {
	switch {
	case s.err != nil:
		return 0, syscall.EIO
	case s.st == nil && s.orphaned:
		return 0, syscall.EIO
	}
	if err := f.stageLocked(ctx, s, true); err != nil {
		return 0, err
	}
	// The fetch of a missing block runs to its end even when the read is
	// interrupted (a page fault's read is interrupted again and again by
	// the faulting process's signals): the block is kept and the retry
	// finds it, instead of never completing.
	rctx, cancel := f.c.own(ctx)
	defer cancel()
	n, err := s.st.ReadAt(rctx, p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		f.c.log.WithError(err).WithFields(f.fields(s)).WithField("op", "read").Error("reading the staged file failed")
		return n, syscall.EIO
	}
	return n, nil
}

// Truncate sets the size of the file through this description (ftruncate).
func (h *Handle) Truncate(ctx context.Context, size int64) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return h.f.truncateLocked(ctx, h.s, size)
}

func (f *File) truncateLocked(ctx context.Context, s *session, size int64) error {
	switch {
	case s.err != nil:
		return syscall.EIO
	case s.st == nil && s.up != nil && s.up.Size() == size:
		return nil
	case s.st == nil && s.up == nil && s.published != nil && s.published.Size == size:
		return nil
	}
	if s.st == nil && s.orphaned {
		f.size.Store(size)
		return nil
	}
	if err := f.stageLocked(ctx, s, true); err != nil {
		return err
	}
	if err := s.st.Truncate(size); err != nil {
		f.failLocked(ctx, s, "truncate", err)
		return syscall.EIO
	}
	f.size.Store(size)
	f.mtime.Store(time.Now().UnixNano())
	f.setDirtyLocked(s)
	return nil
}

// Truncate sets the size of the file by name (truncate(2)): through the
// open session when there is one, else in a session of its own committed
// at once. existing is as for OpenWrite.
func (f *File) Truncate(ctx context.Context, key string, size int64, existing func(trunc bool) Existing) error {
	f.mu.Lock()
	if s := f.s; s != nil && s.err == nil && !s.orphaned && f.c.cfg.Stage != nil {
		defer f.mu.Unlock()
		return f.truncateLocked(ctx, s, size)
	}
	f.mu.Unlock()
	h, err := f.OpenWrite(ctx, 0, key, OpenMode{}, existing)
	if err != nil {
		return err
	}
	err = h.Truncate(ctx, size)
	if err == nil {
		err = h.Fsync(ctx)
	}
	h.Release(ctx)
	return err
}
