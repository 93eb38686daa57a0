package fs

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
)

// fileNode is a regular file or a symbolic link: one object key.
type fileNode struct {
	gofs.Inode
	b *bucketFS

	mu     sync.Mutex   // guards every field below
	key    string       // the object's key
	attr   entryAttr    // the object's attributes as last seen, pending changes applied
	attrAt time.Time    // when attr was last confirmed by S3 or set by us
	writer *writeHandle // the handle streaming an upload of this file, nil when none
	// pending is true when attr holds mode, owner or time changes that are
	// not yet in S3: a rename carries them in its copy, else applyPending
	// does a self-copy after attrDelay (or at unmount).
	pending      bool
	pendingTimer *time.Timer
	target       string // a symlink's target, once read
}

var (
	_ gofs.NodeGetattrer  = (*fileNode)(nil)
	_ gofs.NodeOpener     = (*fileNode)(nil)
	_ gofs.NodeSetattrer  = (*fileNode)(nil)
	_ gofs.NodeReadlinker = (*fileNode)(nil)
)

// attrDelay is how long an attribute change on a closed file waits for a
// rename to carry it (rsync renames right after chmod and utimes) before it
// costs a copy of its own.
const attrDelay = 2 * time.Second

// setAttr records what S3 says of the object and returns the attributes the
// file now has. A listing (no metadata) of an unchanged object keeps what a
// HEAD or our own write learned, and pending changes are never overwritten
// by S3's older view.
func (f *fileNode) setAttr(a entryAttr) entryAttr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending || (!a.fromHead && f.attr.fromHead && f.attr.describes(a)) {
		if f.attr.modified.IsZero() && !a.fromHead && f.attr.etag == a.etag {
			f.attr.modified = a.modified // learned from the listing
		}
		f.attrAt = time.Now()
		return f.attr
	}
	f.attr, f.attrAt = a, time.Now()
	return f.attr
}

func (f *fileNode) writing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writer != nil
}

func (f *fileNode) currentKey() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.key
}

// currentAttr returns the attributes to show: those of the open upload
// (its size so far) while the file is being written.
func (f *fileNode) currentAttr() (entryAttr, time.Time, *writeHandle) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.attr
	if f.writer != nil {
		a.size = f.writer.upload().Size()
		if !a.mtimeSet {
			a.mtime = f.writer.mtime()
		}
	}
	return a, f.attrAt, f.writer
}

func (f *fileNode) fillEntry(out *fuse.EntryOut) syscall.Errno {
	a, _, _ := f.currentAttr()
	a.fill(f.b, &out.Attr)
	return 0
}

// Getattr implements gofs.NodeGetattrer. Attributes older than MetadataTTL
// (or, with ExactAttrs, known only from a listing) are read again with one
// HeadObject.
func (f *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, at, w := f.currentAttr()
	f.mu.Lock()
	stale := w == nil && !f.pending && (time.Since(at) >= f.b.cfg.MetadataTTL || f.b.cfg.ExactAttrs && !a.fromHead)
	key := f.key
	f.mu.Unlock()
	if stale {
		info, err := f.b.client.Head(ctx, key)
		if err != nil {
			return toErrno(err)
		}
		h := attrFromObject(info.Size, info.LastModified, info.ETag, info.Metadata, true)
		h.contentType = info.ContentType
		f.setAttr(h)
		a, _, _ = f.currentAttr()
	}
	a.fill(f.b, &out.Attr)
	return 0
}

// Setattr implements gofs.NodeSetattrer.
//   - size: truncating to the current size is a no-op; truncating a closed
//     file to zero writes an empty object keeping its metadata; other sizes
//     answer ENOTSUP (S3 objects cannot be cut or extended in place).
//   - mode, uid, gid, mtime: on a file being written they go into its upload
//     when it has not reached S3 yet; otherwise they are pending (see
//     fileNode.pending) and stat shows them at once.
func (f *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if f.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	a, _, w := f.currentAttr()
	if sz, ok := in.GetSize(); ok && int64(sz) != a.size {
		if sz != 0 || w != nil {
			return syscall.ENOTSUP
		}
		if errno := f.truncateToZero(ctx); errno != 0 {
			return errno
		}
	}
	f.mu.Lock()
	changed := applySetAttr(&f.attr, in)
	if f.attr.mode&syscall.S_IFMT == 0 {
		f.attr.mode |= syscall.S_IFREG
	}
	if changed {
		if f.writer != nil && f.writer.upload().SetMetadata(f.attr.withMeta()) {
			changed = false // it rides in the upload
		} else {
			f.markPendingLocked()
		}
	}
	a = f.attr
	f.mu.Unlock()
	if w := f.writerHandle(); w != nil {
		a, _, _ = f.currentAttr()
	}
	a.fill(f.b, &out.Attr)
	f.b.remember(f.currentKey(), a)
	return 0
}

func (f *fileNode) writerHandle() *writeHandle {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writer
}

// markPendingLocked (f.mu held) schedules the self-copy of pending changes.
// While the file is being written they are applied when its upload completes.
func (f *fileNode) markPendingLocked() {
	f.pending = true
	if f.writer != nil {
		return
	}
	if f.pendingTimer != nil {
		f.pendingTimer.Stop()
	}
	f.pendingTimer = time.AfterFunc(attrDelay, func() { f.applyPending(context.Background()) })
	f.b.addPending(f)
}

// takePending (f.mu held) clears the pending state and returns the
// metadata to write, for a rename that carries it in its copy.
func (f *fileNode) takePendingLocked() (map[string]string, bool) {
	if !f.pending {
		return nil, false
	}
	f.pending = false
	if f.pendingTimer != nil {
		f.pendingTimer.Stop()
		f.pendingTimer = nil
	}
	f.b.removePending(f)
	return f.attr.withMeta(), true
}

// applyPending writes pending attribute changes with one self-copy
// (metadata REPLACE). The object's other metadata is kept: it is known from
// our own write or a HEAD, else one HEAD reads it first.
func (f *fileNode) applyPending(ctx context.Context) error {
	f.mu.Lock()
	if !f.pending || f.writer != nil {
		f.mu.Unlock()
		return nil
	}
	key, a := f.key, f.attr
	f.mu.Unlock()
	if !a.fromHead {
		info, err := f.b.client.Head(ctx, key)
		if err != nil {
			f.b.log.WithError(err).WithFields(logrus.Fields{"op": "setattr", "key": key}).Error("attribute change not applied")
			return err
		}
		a.meta, a.contentType = info.Metadata, info.ContentType
	}
	f.mu.Lock()
	meta, ok := f.takePendingLocked()
	f.mu.Unlock()
	if !ok {
		return nil // a rename carried it meanwhile
	}
	for k, v := range a.meta {
		if _, set := meta[k]; !set {
			meta[k] = v
		}
	}
	etag, err := f.b.copyObject(ctx, key, key, a.size, s3client.CopyOptions{ReplaceMetadata: meta, ContentType: a.contentType})
	if err != nil {
		f.b.log.WithError(err).WithFields(logrus.Fields{"op": "setattr", "key": key, "code": s3client.Code(err)}).Error("attribute change not applied")
		return err
	}
	f.mu.Lock()
	f.attr.meta, f.attr.fromHead = meta, true
	f.attr.etag, f.attr.modified = etag, time.Time{} // a new version
	f.attrAt = time.Now()
	f.mu.Unlock()
	return nil
}

// truncateToZero replaces a closed file's object with an empty one, keeping
// its metadata.
func (f *fileNode) truncateToZero(ctx context.Context) syscall.Errno {
	f.mu.Lock()
	key, a := f.key, f.attr
	f.mu.Unlock()
	if !a.fromHead {
		info, err := f.b.client.Head(ctx, key)
		if err != nil {
			return toErrno(err)
		}
		a.meta, a.contentType = info.Metadata, info.ContentType
	}
	meta := a.withMeta()
	etag, err := f.b.client.Put(ctx, key, bytes.NewReader(nil), 0, s3client.PutOptions{Metadata: meta, ContentType: a.contentType})
	if err != nil {
		return toErrno(err)
	}
	f.mu.Lock()
	f.attr.size, f.attr.etag, f.attr.meta, f.attr.fromHead = 0, etag, meta, true
	f.attr.modified = time.Time{}
	if f.pending {
		f.takePendingLocked() // the new object carries them
	}
	f.attrAt = time.Now()
	f.mu.Unlock()
	return 0
}

// Readlink implements gofs.NodeReadlinker: a symlink's target is its
// object's body, as s3fs stores it.
func (f *fileNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	f.mu.Lock()
	key, target, mode := f.key, f.target, f.attr.mode
	f.mu.Unlock()
	if mode&syscall.S_IFMT != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	if target != "" {
		return []byte(target), 0
	}
	rc, err := f.b.client.GetRange(ctx, key, 0, -1, "")
	if err != nil {
		return nil, toErrno(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return nil, syscall.EIO
	}
	f.mu.Lock()
	f.target = string(b)
	f.mu.Unlock()
	return b, 0
}

// Open implements gofs.NodeOpener. Reading opens a read-ahead handle with
// direct I/O: each read() reaches the handle whole (up to 1 MiB) instead of
// as the page cache's 128 KiB pieces, so a random read is one GET and a
// sequential one is served from read-ahead blocks with fewer round trips.
// Writing starts a streaming upload that replaces the object when it
// completes; it needs O_TRUNC (or an empty file), because S3 objects cannot
// be changed in place.
func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	a, _, w := f.currentAttr()
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		if w != nil {
			return nil, 0, syscall.EBUSY
		}
		return newReadHandle(f.b, f.currentKey(), a.size), fuse.FOPEN_DIRECT_IO, 0
	}
	if f.b.cfg.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	if w != nil {
		return nil, 0, syscall.EBUSY
	}
	if flags&syscall.O_TRUNC == 0 && a.size > 0 {
		return nil, 0, syscall.ENOTSUP
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attr.mode == 0 {
		f.attr.mode = syscall.S_IFREG | uint32(f.b.cfg.FileMode.Perm())
	}
	h := f.startWriteLocked(ctx, false)
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// uploadOptions returns the settings of a new upload of this file: its
// attributes as metadata.
func (f *fileNode) uploadOptions(exclusive bool) s3client.PutOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.uploadOptionsLocked(exclusive)
}

func (f *fileNode) uploadOptionsLocked(exclusive bool) s3client.PutOptions {
	meta := f.attr.withMeta()
	if f.attr.mode == 0 {
		meta[metaMode] = strconv.FormatUint(uint64(syscall.S_IFREG|uint32(f.b.cfg.FileMode.Perm())), 10)
	}
	return s3client.PutOptions{Metadata: meta, ContentType: f.attr.contentType, IfNoneMatch: exclusive}
}

// startWriteLocked (f.mu held) begins an upload of this file with its
// attributes as metadata, and makes it the file's writer.
func (f *fileNode) startWriteLocked(ctx context.Context, exclusive bool) *writeHandle {
	// New content: its mtime is the upload's, unless a utimes sets one.
	f.attr.mtimeSet = false
	delete(f.attr.meta, metaMtime)
	f.pending = false // the new object will carry the attributes
	if f.pendingTimer != nil {
		f.pendingTimer.Stop()
		f.pendingTimer = nil
	}
	f.b.removePending(f)
	up := f.b.up.Start(f.key, f.uploadOptionsLocked(exclusive))
	h := newWriteHandle(f, up)
	f.writer = h
	f.b.addWriter(f.key, f)
	f.b.log.WithFields(logrus.Fields{"op": "open-write", "key": f.key}).Debug("upload started")
	return h
}
