package fs

import (
	"bytes"
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

var _ gofs.NodeSetattrer = (*dirNode)(nil)

// Setattr implements gofs.NodeSetattrer for directories: mode, owner and
// mtime are kept in the "dir/" marker's metadata (s3fs's layout), written
// after attrDelay so that cp -a's chown, chmod and utimes cost one PUT. The
// bucket's root has no marker: its attributes live for the mount only.
func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	// The marker's other metadata (owner, mode, xattrs) must be known
	// before it is written again.
	if err := d.loadMarkerAttr(ctx); err != nil {
		return core.Errno(err)
	}
	d.mu.Lock()
	if !d.attrKnown && d.attr.mode == 0 {
		d.attr.mode = syscall.S_IFDIR | uint32(d.b.cfg.DirMode.Perm())
	}
	changed := applySetAttr(&d.attr, in)
	d.attr.mode |= syscall.S_IFDIR
	d.attrKnown = true
	if changed && d.prefix != "" {
		d.schedulePendingLocked()
	}
	d.mu.Unlock()
	d.dirAttr().fill(d.b, &out.Attr)
	return 0
}

// applyPending writes the directory's attributes into its marker (creating
// one for an implicit directory).
func (d *dirNode) applyPending(ctx context.Context) error {
	d.mu.Lock()
	if !d.pending {
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	if err := d.loadMarkerAttr(ctx); err != nil {
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "setattr", "key": d.currentPrefix(), "code": s3client.Code(err)}).Error("directory attribute change not applied")
		return err
	}
	d.mu.Lock()
	if !d.pending {
		d.mu.Unlock()
		return nil
	}
	d.pending = false
	if d.pendingTimer != nil {
		d.pendingTimer.Stop()
		d.pendingTimer = nil
	}
	key, meta := d.prefix, d.attr.withMeta()
	d.mu.Unlock()
	d.b.removePending(d)
	if _, err := d.b.client.Put(ctx, key, bytes.NewReader(nil), 0, s3client.PutOptions{Metadata: meta}); err != nil {
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "setattr", "key": key, "code": s3client.Code(err)}).Error("directory attribute change not applied")
		return err
	}
	d.mu.Lock()
	d.attr.marker = true
	d.mu.Unlock()
	return nil
}

// applySetAttr applies a SETATTR's mode, owner and times to a and says
// whether anything changed. The file type bits of a.mode are kept. Any
// change makes ctime now; atime changes only here (no write per read, as
// with noatime).
func applySetAttr(a *entryAttr, in *fuse.SetAttrIn) bool {
	changed := false
	if m, ok := in.GetMode(); ok {
		a.mode = a.mode&syscall.S_IFMT | m&07777
		changed = true
	}
	if uid, ok := in.GetUID(); ok {
		a.uid, changed = int64(uid), true
	}
	if gid, ok := in.GetGID(); ok {
		a.gid, changed = int64(gid), true
	}
	now := time.Now()
	if mt, ok := in.GetMTime(); ok {
		a.mtime, a.mtimeSet, changed = mt, true, true
	} else if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		a.mtime, a.mtimeSet, changed = now, true, true
	}
	if at, ok := in.GetATime(); ok {
		a.atime, changed = at, true
	} else if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
		a.atime, changed = now, true
	}
	if changed {
		a.ctime = now
	}
	return changed
}
