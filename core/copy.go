package core

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/stage"
)

// CopySource is the object a file is made a copy of: one version, whole.
type CopySource struct {
	Key  string
	ETag string // the version the reader pinned: the copy is conditioned on it
	Size int64
}

// CopyFrom makes the file, opened for writing and not written yet, a copy
// of src (copy_file_range of a whole file: cp) without reading it: the
// session is staged on src as its base, every byte of it unchanged, so the
// commit (the same rule: the opener's close, fsync, the last release)
// composes the object on the server from src, conditioned on src.ETag, with
// the file's metadata as it is then (cp -p sets it before close). Reads,
// writes and truncations after it work on the stage as in any edit.
//
// It makes no S3 request. It reports false, with nothing done, when the
// session is not in that state (something written, staged, committed,
// failed, detached) or there is no stage: the caller then copies the bytes
// itself.
func (h *Handle) CopyFrom(ctx context.Context, src CopySource) bool {
	f, s := h.f, h.s
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.c.cfg.Stage == nil, f.s != s, s.err != nil, s.orphaned, s.st != nil, s.published != nil,
		s.up == nil || s.up.Size() != 0, src.Size <= 0, src.ETag == "":
		return false
	}
	st, err := f.c.cfg.Stage.Create(s.key, stage.Base{Key: src.Key, ETag: src.ETag, Size: src.Size}, f.c.fetch)
	if err != nil {
		f.c.log.WithError(err).WithFields(f.fields(s)).WithField("op", "copy").Warn("the copy could not be staged; its bytes are copied instead")
		return false
	}
	_ = s.up.Abort(ctx) // empty: nothing on the server
	s.up = nil
	f.upload.Store(nil)
	s.st, s.copied = st, true
	f.size.Store(src.Size)
	f.mtime.Store(time.Now().UnixNano())
	f.setDirtyLocked(s)
	f.c.log.WithFields(f.fields(s)).WithFields(logrus.Fields{"op": "copy", "source": src.Key, "size": src.Size}).Debug("the file is a copy, composed on the server at its commit")
	return true
}
