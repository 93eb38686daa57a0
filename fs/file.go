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

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

// fileNode is a regular file or a symbolic link: one object key.
type fileNode struct {
	gofs.Inode
	b *bucketFS

	// file is the file's write state (sessions, commits): the core decides
	// and this node only translates. Set at creation, never changed.
	file *core.File

	// mu guards every field below. Lock order (core/doc.go): taken after
	// core.File's lock (the core's hooks take it), so nothing here calls
	// into f.file while holding it except the non-waiting SetMetadata,
	// Writing and Dirty.
	mu     sync.Mutex
	key    string    // the object's key
	attr   entryAttr // the object's attributes as last seen, pending changes applied
	attrAt time.Time // when attr was last confirmed by S3 or set by us
	// pending is true when attr holds mode, owner or time changes that are
	// not yet in S3: a rename carries them in its copy, else applyPending
	// does a self-copy after attrDelay (or at unmount).
	pending      bool
	pendingTimer *time.Timer
	// pendingGen counts the attribute changes left pending; carriedGen is
	// its value when uploadOptions last gave the file's attributes to an
	// upload or a compose. A commit of that upload carries every change up
	// to carriedGen, so committed clears pending when nothing came after.
	pendingGen, carriedGen uint64
	target                 string // a symlink's target, once read
	// cached is the ETag of the version whose pages the kernel's page
	// cache may hold for this file, "" for none (read.go, pageCacheOpen).
	cached string
	// metaCopyFrom and metaCopyTo are the ETags before and after this
	// mount's last self-copy of the object (an attribute change): the
	// bytes are the same, so readers of the one may read the other.
	metaCopyFrom, metaCopyTo string
}

var (
	_ gofs.NodeGetattrer  = (*fileNode)(nil)
	_ gofs.NodeOpener     = (*fileNode)(nil)
	_ gofs.NodeSetattrer  = (*fileNode)(nil)
	_ gofs.NodeReadlinker = (*fileNode)(nil)
)

// newFileNode returns a file node for key whose write state reports to it.
func newFileNode(b *bucketFS, key string) *fileNode {
	f := &fileNode{b: b, key: key}
	f.file = b.core.NewFile(core.Hooks{
		Options:   func() s3client.PutOptions { return f.uploadOptions() },
		Committed: f.committed,
		Failed:    f.failed,
	})
	return f
}

// committed records a version a write session published (core hook).
func (f *fileNode) committed(v core.Version) {
	f.mu.Lock()
	f.attr.size = v.Size
	f.attr.etag, f.attr.modified = v.ETag, time.Time{}
	f.versionSeenLocked(v.ETag)
	if !f.attr.mtimeSet {
		// The last write's time, as stat showed while the file was
		// open: the commit itself does not move mtime (S3's
		// LastModified takes over once a HEAD reads it).
		f.attr.mtime = v.Written
		if f.attr.mtime.IsZero() {
			f.attr.mtime = time.Now()
		}
	}
	f.attr.meta = f.attr.withMeta()
	f.attr.fromHead = true
	f.attrAt = time.Now()
	switch {
	case f.pending && f.carriedGen == f.pendingGen:
		// The commit's upload took the attributes after the last change
		// (a staged commit, cp -p's copy): nothing is left to copy.
		f.clearPendingLocked()
	case f.pending:
		f.schedulePendingLocked()
	}
	a := f.attr
	f.mu.Unlock()
	f.b.remember(v.Key, a)
	parentListingPut(&f.Inode, &a)
}

// failed forgets what a failed write session showed (core hook): the next
// stat asks S3, and the kernel is told to forget the name, which may not
// exist at all when the file was new.
func (f *fileNode) failed(key string, err error) {
	f.b.forget(key)
	f.mu.Lock()
	f.attrAt = time.Time{}
	f.mu.Unlock()
	// Not from this goroutine: the kernel may hold locks while it waits
	// for the request that failed.
	go func() {
		if name, parent := f.Parent(); parent != nil {
			parent.NotifyEntry(name)
		}
	}()
}

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
	if a.etag != "" {
		f.versionSeenLocked(a.etag)
	}
	return f.attr
}

// writing says whether a write session of the file is open.
func (f *fileNode) writing() bool {
	_, _, ok := f.file.Writing()
	return ok
}

func (f *fileNode) currentKey() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.key
}

// currentAttr returns the attributes to show: while the file is being
// written, its size so far. It never waits for S3 (the session's size and
// mtime are atomics): stat during a slow close answers at once.
func (f *fileNode) currentAttr() (a entryAttr, at time.Time, writing bool) {
	size, mtime, writing := f.file.Writing()
	f.mu.Lock()
	a, at = f.attr, f.attrAt
	f.mu.Unlock()
	if writing {
		a.size = size
		if !a.mtimeSet && !mtime.IsZero() {
			a.mtime = mtime
		}
	}
	return a, at, writing
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
	stale := !w && !f.pending && (time.Since(at) >= f.b.cfg.MetadataTTL || f.b.cfg.ExactAttrs && !a.fromHead)
	key := f.key
	f.mu.Unlock()
	if stale {
		info, err := f.b.client.Head(ctx, key)
		if err != nil {
			return core.Errno(err)
		}
		f.setAttr(attrFromHead(info))
		a, _, _ = f.currentAttr()
	}
	a.fill(f.b, &out.Attr)
	return 0
}

// Setattr implements gofs.NodeSetattrer.
//   - size: truncating a closed file to its size is a no-op, to zero writes
//     an empty object keeping its metadata; any other truncation goes
//     through the core, which stages the file (core/stage.go) and, for a
//     truncate(2) of a closed file, commits at once.
//   - mode, uid, gid, mtime: on a file being written they go into its upload
//     when it has not reached S3 yet; otherwise they are pending (see
//     fileNode.pending) and stat shows them at once.
func (f *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	if f.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	a, _, w := f.currentAttr()
	if sz, ok := in.GetSize(); ok && (int64(sz) != a.size || w) {
		var err error
		switch wh, _ := fh.(*writeHandle); {
		case wh != nil:
			err = wh.h.Truncate(ctx, int64(sz)) // ftruncate
		case sz == 0 && !w:
			if errno := f.truncateToZero(ctx); errno != 0 {
				return errno
			}
		default:
			err = f.file.Truncate(ctx, f.currentKey(), int64(sz), f.existing)
		}
		if err != nil {
			return core.Errno(err)
		}
	}
	f.mu.Lock()
	changed := applySetAttr(&f.attr, in)
	if f.attr.mode&syscall.S_IFMT == 0 {
		f.attr.mode |= syscall.S_IFREG
	}
	if changed {
		f.pinMtimeLocked()
		if f.file.SetMetadata(f.attr.withMeta()) {
			changed = false // it rides in the upload
		} else {
			f.markPendingLocked()
		}
	}
	f.mu.Unlock()
	a, _, _ = f.currentAttr()
	a.fill(f.b, &out.Attr)
	f.b.remember(f.currentKey(), a)
	return 0
}

// markPendingLocked (f.mu held) records an attribute change not in S3 and
// schedules the self-copy that writes it.
func (f *fileNode) markPendingLocked() {
	f.pending = true
	f.pendingGen++
	f.schedulePendingLocked()
}

// schedulePendingLocked (f.mu held) schedules the self-copy of pending
// changes. While the file holds unwritten bytes it waits: the commit hook
// (or the write handle's release) calls this again.
func (f *fileNode) schedulePendingLocked() {
	if f.file.Dirty() {
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
	f.pinMtimeLocked() // the copy that writes them changes LastModified
	f.clearPendingLocked()
	return f.attr.withMeta(), true
}

// clearPendingLocked (f.mu held): the pending changes are in S3.
func (f *fileNode) clearPendingLocked() {
	f.pending = false
	if f.pendingTimer != nil {
		f.pendingTimer.Stop()
		f.pendingTimer = nil
	}
	f.b.removePending(f)
}

// applyPending writes pending attribute changes with one self-copy
// (metadata REPLACE). The object's other metadata is kept: it is known from
// our own write or a HEAD, else one HEAD reads it first.
func (f *fileNode) applyPending(ctx context.Context) error {
	f.mu.Lock()
	if !f.pending || f.writing() {
		// While a write session is open, a self-copy would change the
		// ETag its next write reopens from: the changes stay pending until
		// the session's commit carries them or its release (writeHandle.
		// Release) schedules them again.
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
		a.meta, a.headers = info.Metadata, info.Headers
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
	etag, err := f.b.copyObject(ctx, key, key, a.size, s3client.CopyOptions{ReplaceMetadata: meta, Headers: &a.headers})
	if err != nil {
		f.b.log.WithError(err).WithFields(logrus.Fields{"op": "setattr", "key": key, "code": s3client.Code(err)}).Error("attribute change not applied")
		return err
	}
	f.mu.Lock()
	f.attr.meta, f.attr.fromHead = meta, true
	f.attr.etag, f.attr.modified = etag, time.Time{} // a new version, of the same bytes
	f.attrAt = time.Now()
	if a.etag != "" && etag != a.etag {
		// Open handles of the old version may go on reading the new one,
		// and the kernel's pages of it stay (sameBytesAs).
		f.metaCopyFrom, f.metaCopyTo = a.etag, etag
		if f.cached == a.etag {
			f.cached = etag
		}
	}
	f.mu.Unlock()
	return nil
}

// sameBytesAs returns the version that holds the bytes of version etag
// under other metadata: the one this mount's last attribute change of the
// file made with a self-copy; ok is false when there is none.
func (f *fileNode) sameBytesAs(etag string) (to string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if etag == "" || etag != f.metaCopyFrom {
		return "", false
	}
	return f.metaCopyTo, true
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
			return core.Errno(err)
		}
		a.meta, a.headers = info.Metadata, info.Headers
	}
	a.mtimeSet, a.ctime = false, time.Time{} // LastModified: the truncation's
	meta := a.withMeta()
	etag, err := f.b.client.Put(ctx, key, bytes.NewReader(nil), 0, s3client.PutOptions{Metadata: meta, Headers: a.headers})
	if err != nil {
		return core.Errno(err)
	}
	f.mu.Lock()
	f.attr.size, f.attr.etag, f.attr.meta, f.attr.fromHead = 0, etag, meta, true
	f.attr.modified = time.Time{}
	f.attr.mtime, f.attr.mtimeSet, f.attr.ctime = time.Now(), false, time.Time{}
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
		return nil, core.Errno(err)
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
// sequential one is served from read-ahead blocks with fewer round trips. A
// read waits (bounded) until what this mount wrote is in S3. Writing opens
// a write session of the core (core.File.OpenWrite decides who may).
func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		return f.openRead(ctx) // read.go: one version of the object per open
	}
	if f.b.cfg.ReadOnly || f.b.draining.Load() {
		return nil, 0, syscall.EROFS
	}
	f.mu.Lock()
	key := f.key
	f.mu.Unlock()
	h, err := f.file.OpenWrite(ctx, callerProcess(ctx), key, core.OpenMode{Truncate: flags&syscall.O_TRUNC != 0}, f.existing)
	if err != nil {
		return nil, 0, core.Errno(err)
	}
	f.b.addWriter(key, f)
	return &writeHandle{node: f, h: h}, writeOpenFlags(flags), 0
}

// writeOpenFlags returns the open flags of a write handle. One opened
// write-only streams with direct I/O: each write() reaches the daemon whole
// (cp, tar, rsync, shells). One opened O_RDWR uses the page cache, write-
// through: programs that read what they write (sqlite, git, mmap of a file
// being written: the kernel refuses a shared mapping of a direct-I/O file)
// get cached reads and mmap; the cache is dropped at each open.
func writeOpenFlags(flags uint32) uint32 {
	if flags&syscall.O_ACCMODE == syscall.O_RDWR {
		return 0
	}
	return fuse.FOPEN_DIRECT_IO
}

// existing tells the core what S3 holds at the file's key as far as this
// node knows: an object it looked up or committed has an ETag; a file
// created here and never committed has none. Called with core.File's lock
// held. A write session's mtime is the upload's unless a utimes sets one;
// an O_TRUNC open starts new content, and pending attribute changes ride in it.
func (f *fileNode) existing(trunc bool) core.Existing {
	f.mu.Lock()
	if !trunc && f.attr.size > 0 && f.attr.etag != "" && (!f.attr.fromHead || time.Since(f.attrAt) >= openRevalidateAfter) {
		// An edit in place starts from this version and its commit keeps
		// its metadata: both must be the object's own, not a listing's or
		// an old lookup's.
		f.mu.Unlock()
		if _, err := f.headVersion(context.Background()); err != nil {
			f.b.log.WithError(err).WithFields(logrus.Fields{"op": "open-write", "key": f.currentKey()}).Debug("no HEAD before an edit in place")
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.attr.mode == 0 {
		f.attr.mode = syscall.S_IFREG | uint32(f.b.cfg.FileMode.Perm())
	}
	ex := core.Existing{Exists: f.attr.etag != "", Size: f.attr.size, ETag: f.attr.etag}
	// Writing changes mtime and ctime: the commit's LastModified is both,
	// unless a utimes during the session sets mtime (tar, rsync, cp -p).
	f.attr.mtimeSet, f.attr.ctime = false, time.Time{}
	if trunc || ex.Size == 0 {
		f.pending = false // the new object will carry the attributes
		if f.pendingTimer != nil {
			f.pendingTimer.Stop()
			f.pendingTimer = nil
		}
		f.b.removePending(f)
	}
	return ex
}

// uploadOptions returns the settings of a new upload of this file (a
// streaming or a staged commit): its attributes as metadata, and the
// headers of the object it replaces, as the mount read them; a file whose
// headers the mount does not know (a new one, or one only listed) is typed
// from its name, and the headers it gets are recorded for the copies a
// rename or chmod makes later. Called with core.File's lock held.
func (f *fileNode) uploadOptions() s3client.PutOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.carriedGen = f.pendingGen
	meta := f.attr.withMeta()
	if f.attr.mode == 0 {
		meta[metaMode] = strconv.FormatUint(uint64(syscall.S_IFREG|uint32(f.b.cfg.FileMode.Perm())), 10)
	}
	if !f.attr.fromHead || f.attr.headers.ContentType == "" {
		f.attr.headers = s3client.ObjectHeaders{ContentType: f.b.contentTypeOf(f.key)}
	}
	return s3client.PutOptions{Metadata: meta, Headers: f.attr.headers}
}
