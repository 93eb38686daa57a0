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

// maxKeyLen is S3's limit on a key, in bytes.
const maxKeyLen = 1024

var (
	_ gofs.NodeMknoder = (*dirNode)(nil)
	_ gofs.NodeLinker  = (*dirNode)(nil)
)

// newEntryOwner returns the owner of an entry the caller of ctx makes in d:
// the caller's uid and gid, the directory's gid when it has S_ISGID (and
// then, for a directory, sgid is true: it inherits the bit), as on a disk.
func (d *dirNode) newEntryOwner(ctx context.Context) (uid, gid uint32, sgid bool) {
	uid, gid = d.b.cfg.UID, d.b.cfg.GID
	if c, ok := fuse.FromContext(ctx); ok {
		uid, gid = c.Uid, c.Gid
	}
	da := d.dirAttr()
	var out fuse.Attr
	da.fill(d.b, &out)
	if out.Mode&syscall.S_ISGID != 0 {
		return uid, out.Gid, true
	}
	return uid, gid, false
}

// checkNewKey answers ENAMETOOLONG for a name over 255 bytes or a key
// (directories count their trailing slash) over S3's 1,024 bytes, and
// EINVAL for a name S3 cannot list (see validName).
func (d *dirNode) checkNewKey(name string, isDir bool) syscall.Errno {
	if errno := checkName(name); errno != 0 {
		return errno
	}
	n := len(d.key(name))
	if isDir {
		n++
	}
	if n > maxKeyLen {
		return syscall.ENAMETOOLONG
	}
	return 0
}

// entriesChanged records that an entry of d was made, removed or renamed
// through this mount: the directory's mtime and ctime become now. An
// explicit directory (one with a marker) writes them to its marker after
// attrDelay, so that a burst of changes, and the utimes tar and rsync send
// when they are done with a directory, cost one PUT; an implicit directory
// and the bucket's root keep them for the mount's lifetime.
func (d *dirNode) entriesChanged() {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attr.mtime, d.attr.mtimeSet, d.attr.ctime = now, true, now
	if d.attr.marker && d.prefix != "" && !d.b.cfg.ReadOnly {
		d.schedulePendingLocked()
	}
}

// schedulePendingLocked (d.mu held) writes the directory's attributes to
// its marker after attrDelay, unless another change comes first.
func (d *dirNode) schedulePendingLocked() {
	d.pending = true
	if d.pendingTimer != nil {
		d.pendingTimer.Stop()
	}
	d.pendingTimer = time.AfterFunc(attrDelay, func() { _ = d.applyPending(context.Background()) })
	d.b.addPending(d)
}

// Mknod implements gofs.NodeMknoder: a regular file, FIFO, socket or device
// node is an empty object whose x-amz-meta-mode holds its type and whose
// x-amz-meta-rdev holds a device's number, as s3fs stores them. The kernel
// lets only a process with CAP_MKNOD make devices. The node is written only
// if the name is free (If-None-Match), like mkdir.
func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly || d.b.draining.Load() {
		return nil, syscall.EROFS
	}
	if errno := d.checkNewKey(name, false); errno != 0 {
		return nil, errno
	}
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	case 0:
		mode |= syscall.S_IFREG
	default:
		return nil, syscall.EINVAL
	}
	if d.writerChild(name) != nil {
		return nil, syscall.EEXIST
	}
	if _, errno := d.resolve(ctx, name); errno == 0 {
		return nil, syscall.EEXIST
	} else if errno != syscall.ENOENT {
		return nil, errno
	}
	uid, gid, _ := d.newEntryOwner(ctx)
	a := created(mode&(syscall.S_IFMT|07777), uid, gid)
	if t := mode & syscall.S_IFMT; t == syscall.S_IFCHR || t == syscall.S_IFBLK {
		a.rdev = dev
	}
	a.fromHead = true
	a.meta = a.withMeta()
	key := d.key(name)
	etag, err := d.b.client.Put(ctx, key, bytes.NewReader(nil), 0, s3client.PutOptions{IfNoneMatch: true, Metadata: a.meta})
	if err != nil {
		if errors.Is(err, s3client.ErrPreconditionFailed) {
			return nil, syscall.EEXIST
		}
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "mknod", "key": key, "code": s3client.Code(err)}).Warn("mknod failed")
		return nil, core.Errno(err)
	}
	a.etag = etag
	d.b.noteExclusiveWrite()
	d.b.remember(key, a)
	d.listingPut(name, &a)
	d.entriesChanged()
	return d.childInode(ctx, name, a, out), 0
}

// Link implements gofs.NodeLinker: S3 has no hard links (a second key is a
// copy that would drift from the first), so link(2) answers EOPNOTSUPP;
// cp -l, ln and git fall back or say so.
func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// legacyFolderSuffix ends the key of an empty object that older tools
// (s3fs before 1.8x, the AWS console of old, Hadoop's S3 connectors) wrote
// as a directory's marker: "dir_$folder$" is the directory "dir".
const legacyFolderSuffix = "_$folder$"

// legacyDirObject says whether a HEAD's answer is a directory as older
// s3fs wrote them: an empty object without the trailing slash, of Content-
// Type application/x-directory.
func legacyDirObject(info *s3client.ObjectInfo) bool {
	return info.Size == 0 && strings.HasPrefix(info.Headers.ContentType, "application/x-directory")
}

// legacyDirListed says whether known (a HEAD's) is a directory as older
// s3fs wrote them of which listed is the listing's view: an empty object.
func legacyDirListed(known, listed entryAttr) bool {
	return known.isDir && !listed.isDir && listed.size == 0 && known.etag != "" && known.etag == listed.etag
}

// dropSetIDOnWrite clears SUID, and SGID with group execute, when a process
// other than root writes: the kernel does it for writes through the page
// cache, but a direct-I/O write only carries FUSE_WRITE_KILL_SUIDGID,
// which go-fuse does not hand on. The change is an attribute change (it
// rides in the upload) and the kernel is told to read the mode again.
func (f *fileNode) dropSetIDOnWrite() {
	f.mu.Lock()
	mode := f.attr.mode
	kill := mode&syscall.S_ISUID != 0 || mode&(syscall.S_ISGID|syscall.S_IXGRP) == syscall.S_ISGID|syscall.S_IXGRP
	if !kill {
		f.mu.Unlock()
		return
	}
	f.attr.mode &^= syscall.S_ISUID
	if mode&syscall.S_IXGRP != 0 {
		f.attr.mode &^= syscall.S_ISGID
	}
	f.attr.changed()
	if !f.file.SetMetadata(f.attr.withMeta()) {
		f.markPendingLocked()
	}
	f.mu.Unlock()
	if f.StableAttr().Ino != 0 {
		// Not from this goroutine: the kernel may hold the inode's lock
		// while it waits for this write.
		go f.NotifyContent(-1, 0)
	}
}

// pinMtimeLocked (f.mu held) stores the mtime shown in the metadata before
// an attribute change of a closed file is written: otherwise the self-copy's
// LastModified would become the file's mtime. While the file is written its
// mtime is the last write's, and stays free.
func (f *fileNode) pinMtimeLocked() {
	if !f.attr.mtimeSet && !f.attr.mtime.IsZero() && !f.writing() {
		f.attr.mtimeSet = true
	}
}

// uninterruptible keeps ctx's values (the caller) but not its cancellation,
// for the operations that change the bucket: unlink, mkdir, rmdir, symlink,
// mknod, rename, setattr and xattr changes. go-fuse cancels a request's
// context when the kernel passes on an interrupt, and the kernel does so for
// any signal the caller handles, fatal or not: a Go program's runtime
// signals its own threads (SIGURG) all the time. Cut short, such a change
// answered EINTR, which unlink(2) or rename(2) callers do not retry, and
// could have half happened in S3. They run to their end instead, bounded by
// the S3 client's timeouts and retries; a fatal signal does not wait for
// them (the kernel ends the caller at once).
func uninterruptible(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}
