package fs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

var (
	_ gofs.NodeMkdirer  = (*dirNode)(nil)
	_ gofs.NodeRmdirer  = (*dirNode)(nil)
	_ gofs.NodeUnlinker = (*dirNode)(nil)
)

func checkName(name string) syscall.Errno {
	if len(name) > 255 {
		return syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return syscall.EINVAL
	}
	return 0
}

// Create implements gofs.NodeCreater: a new file is an upload that starts
// now and becomes the object when it completes. O_EXCL makes the upload
// conditional (If-None-Match: *), so two mounts racing to create one name
// cannot both succeed.
func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if d.b.cfg.ReadOnly || d.b.draining.Load() {
		return nil, nil, 0, syscall.EROFS
	}
	if errno := d.checkNewKey(name, false); errno != 0 {
		return nil, nil, 0, errno
	}
	if d.writerChild(name) != nil {
		return nil, nil, 0, syscall.EBUSY
	}
	key := d.key(name)
	fn := newFileNode(d.b, key)
	uid, gid, _ := d.newEntryOwner(ctx)
	// mtime and ctime are S3's LastModified once the upload completes
	// (a multipart upload's metadata leaves before the last write).
	fn.attr = entryAttr{mode: syscall.S_IFREG | mode&07777, uid: int64(uid), gid: int64(gid), mtime: time.Now()}
	fn.attrAt = time.Now()
	h, err := fn.file.OpenWrite(ctx, callerProcess(ctx), key, core.OpenMode{Create: true, Truncate: true, Exclusive: flags&syscall.O_EXCL != 0}, nil)
	if err != nil {
		return nil, nil, 0, core.Errno(err)
	}
	d.b.addWriter(key, fn)
	d.entriesChanged()
	fn.fillEntry(out)
	ch := d.NewInode(ctx, fn, gofs.StableAttr{Mode: syscall.S_IFREG})
	return ch, &writeHandle{node: fn, h: h}, writeOpenFlags(flags), 0
}

// Unlink implements gofs.NodeUnlinker with one DeleteObject.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	key := d.key(name)
	if ch := d.writerChild(name); ch != nil {
		// Being written: POSIX-like, the name goes now and the writer's
		// later writes and closes go nowhere (core.File.Detach). Whatever
		// its session published, or the object it was replacing, is deleted.
		fn := ch.Operations().(*fileNode)
		fn.file.Detach(ctx)
		d.b.removeWriter(key, fn)
		if err := d.b.client.Delete(ctx, key); err != nil {
			d.b.log.WithError(err).WithFields(logrus.Fields{"op": "unlink", "key": key}).Warn("delete failed")
			return core.Errno(err)
		}
		d.dropPending(name)
		d.b.forget(key)
		d.listingPut(name, nil)
		d.entriesChanged()
		return 0
	}
	a, errno := d.resolve(ctx, name)
	if errno != 0 {
		return errno
	}
	if a.isDir {
		return syscall.EISDIR
	}
	if err := d.b.client.Delete(ctx, key); err != nil {
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "unlink", "key": key}).Warn("delete failed")
		return core.Errno(err)
	}
	d.dropPending(name)
	d.b.forget(key)
	d.listingPut(name, nil)
	d.entriesChanged()
	return 0
}

// dropPending discards the attribute changes not yet written of the child
// name, which was just removed or replaced: written later, they would
// recreate a removed directory's marker, or put an old file's metadata on a
// new object of the same name.
func (d *dirNode) dropPending(name string) {
	ch := d.GetChild(name)
	if ch == nil {
		return
	}
	switch n := ch.Operations().(type) {
	case *fileNode:
		n.mu.Lock()
		n.takePendingLocked()
		n.mu.Unlock()
	case *dirNode:
		n.mu.Lock()
		n.pending = false
		if n.pendingTimer != nil {
			n.pendingTimer.Stop()
			n.pendingTimer = nil
		}
		n.mu.Unlock()
		d.b.removePending(n)
	}
}

// Mkdir implements gofs.NodeMkdirer: a "name/" marker object, written only
// if none exists (If-None-Match), after checking that no file or directory
// has the name. Two mounts racing on one mkdir cannot both succeed.
func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := d.checkNewKey(name, true); errno != 0 {
		return nil, errno
	}
	key := d.key(name)
	if _, errno := d.resolve(ctx, name); errno == 0 {
		return nil, syscall.EEXIST
	} else if errno != syscall.ENOENT {
		return nil, errno
	}
	uid, gid, sgid := d.newEntryOwner(ctx)
	if sgid {
		mode |= syscall.S_ISGID
	}
	a := created(syscall.S_IFDIR|mode&07777, uid, gid)
	a.isDir, a.marker, a.fromHead = true, true, true
	_, err := d.b.client.Put(ctx, key+"/", bytes.NewReader(nil), 0, s3client.PutOptions{IfNoneMatch: true, Metadata: a.withMeta()})
	if err != nil {
		if errors.Is(err, s3client.ErrPreconditionFailed) {
			return nil, syscall.EEXIST
		}
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "mkdir", "key": key + "/"}).Warn("mkdir failed")
		return nil, core.Errno(err)
	}
	d.b.noteExclusiveWrite()
	d.b.remember(key, a)
	d.listingPut(name, &a)
	d.entriesChanged()
	ch := d.childInode(ctx, name, a, out)
	if nd, ok := ch.Operations().(*dirNode); ok {
		nd.setEmptyListing()
	}
	return ch, 0
}

// Rmdir implements gofs.NodeRmdirer: refuses a non-empty directory (one
// LIST of at most two keys), then deletes the marker.
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	key := d.key(name)
	prefix := key + "/"
	page, err := d.b.client.List(ctx, prefix, "", "", 2)
	if err != nil {
		return core.Errno(err)
	}
	hasMarker := false
	for _, o := range page.Objects {
		if o.Key != prefix {
			return syscall.ENOTEMPTY
		}
		hasMarker = true
	}
	if len(page.CommonPrefixes) > 0 || len(d.b.writersUnder(prefix)) > 0 {
		return syscall.ENOTEMPTY
	}
	if !hasMarker {
		// An implicit directory with nothing under it does not exist (or a
		// file has the name), unless older tools marked it: "dir" of type
		// application/x-directory, or "dir_$folder$".
		legacy := ""
		if info, err := d.b.client.Head(ctx, key); err == nil {
			if !legacyDirObject(info) {
				return syscall.ENOTDIR
			}
			legacy = key
		} else if _, err := d.b.client.Head(ctx, key+legacyFolderSuffix); err == nil {
			legacy = key + legacyFolderSuffix
		}
		if legacy == "" {
			d.b.forget(key)
			return syscall.ENOENT
		}
		prefix = legacy
	}
	if err := d.b.client.Delete(ctx, prefix); err != nil {
		return core.Errno(err)
	}
	d.dropPending(name)
	d.b.forget(key)
	d.listingPut(name, nil)
	d.entriesChanged()
	return 0
}

var _ gofs.NodeSymlinker = (*dirNode)(nil)

// Symlink implements gofs.NodeSymlinker: an object whose body is the target
// and whose x-amz-meta-mode marks a link, as s3fs stores them.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := d.checkNewKey(name, false); errno != 0 {
		return nil, errno
	}
	key := d.key(name)
	if _, errno := d.resolve(ctx, name); errno == 0 {
		return nil, syscall.EEXIST
	}
	uid, gid, _ := d.newEntryOwner(ctx)
	a := created(syscall.S_IFLNK|0o777, uid, gid)
	a.size, a.fromHead = int64(len(target)), true
	a.meta = a.withMeta()
	etag, err := d.b.client.Put(ctx, key, strings.NewReader(target), int64(len(target)), s3client.PutOptions{Metadata: a.meta})
	if err != nil {
		return nil, core.Errno(err)
	}
	a.etag = etag
	d.b.noteExclusiveWrite()
	d.b.remember(key, a)
	d.listingPut(name, &a)
	d.entriesChanged()
	ch := d.childInode(ctx, name, a, out)
	if fn, ok := nodeAsFile(ch); ok {
		fn.mu.Lock()
		fn.target = target
		fn.mu.Unlock()
	}
	return ch, 0
}
