package fs

import (
	"context"
	"maps"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

var _ gofs.NodeRenamer = (*dirNode)(nil)

// Linux renameat2 flags.
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
)

// renameConcurrency bounds the copies and deletes of one directory rename.
const renameConcurrency = 16

// Rename implements gofs.NodeRenamer.
//
// A file is a server-side copy then a delete; the source is deleted only
// after the copy succeeded, so a failed rename loses nothing. A pending
// attribute change rides in that copy (metadata REPLACE). A file still being
// written is not copied: its upload's destination moves.
//
// A directory moves every object under its prefix: copies first (bounded
// concurrency), deletes only after all succeeded; more than MaxRenameObjects
// objects answers EXDEV, on which mv falls back to copy and delete.
func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	if flags&renameExchange != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EXDEV
	}
	src, dst := d.key(name), np.key(newName)
	if src == dst {
		return 0
	}
	var srcAttr entryAttr
	child := d.GetChild(name)
	isDir := false
	if child != nil {
		_, isDir = child.Operations().(*dirNode)
	}
	if errno := np.checkNewKey(newName, isDir); errno != 0 {
		return errno
	}
	if fn, ok := nodeAsFile(child); ok {
		srcAttr, _, _ = fn.currentAttr()
	} else {
		a, errno := d.resolve(ctx, name)
		if errno != 0 {
			return errno
		}
		srcAttr = a
	}
	dstAttr, errno := np.resolve(ctx, newName)
	dstExists := errno == 0
	if errno != 0 && errno != syscall.ENOENT {
		return errno
	}
	dstWriter := np.writerChild(newName)
	if dstWriter != nil {
		dstExists = true
		dstAttr = entryAttr{}
	}
	if dstExists && flags&renameNoReplace != 0 {
		return syscall.EEXIST
	}
	if dstWriter != nil && !srcAttr.isDir {
		// The name being written is replaced: its writer's later closes
		// must not bring its data back under it (core.File.Detach).
		dfn := dstWriter.Operations().(*fileNode)
		dfn.file.Detach(ctx)
		b := np.b
		b.removeWriter(dst, dfn)
	}
	if srcAttr.isDir {
		if isDir {
			dn := child.Operations().(*dirNode)
			dn.mu.Lock()
			dn.attr.changed() // kept for the mount's lifetime
			dn.mu.Unlock()
		}
		errno = d.renameDir(ctx, child, src, dst, dstExists, dstAttr)
	} else {
		if dstExists && dstAttr.isDir {
			return syscall.EISDIR
		}
		if fn, ok := nodeAsFile(child); ok {
			// The moved file's ctime changes: a pending change, which
			// the rename's copy carries.
			fn.mu.Lock()
			fn.attr.changed()
			fn.pinMtimeLocked()
			fn.markPendingLocked()
			fn.mu.Unlock()
			srcAttr, _, _ = fn.currentAttr()
		}
		errno = d.renameFile(ctx, child, src, dst, srcAttr)
	}
	if errno == 0 {
		if dstExists {
			// The replaced file's or directory's unwritten attribute
			// changes must not land on what replaces it. (go-fuse moves
			// the source's inode into newName only after we return.)
			np.dropPending(newName)
		}
		d.listingPut(name, nil)
		d.entriesChanged()
		if np != d {
			np.entriesChanged()
		}
		if srcAttr.isDir {
			np.dropListing()
		} else {
			moved := srcAttr
			if fn, ok := nodeAsFile(child); ok {
				moved, _, _ = fn.currentAttr()
			}
			np.listingPut(newName, &moved)
		}
	}
	return errno
}

func nodeAsFile(ch *gofs.Inode) (*fileNode, bool) {
	if ch == nil {
		return nil, false
	}
	fn, ok := ch.Operations().(*fileNode)
	return fn, ok
}

func (d *dirNode) renameFile(ctx context.Context, child *gofs.Inode, src, dst string, a entryAttr) syscall.Errno {
	b := d.b
	fn, _ := nodeAsFile(child)
	if fn != nil {
		// Open for writing: the core moves the session (and what it
		// published, carrying pending attribute changes as a closed file's
		// rename does: rsync renames before its RELEASE arrives).
		fn.mu.Lock()
		meta, carried := fn.takePendingLocked()
		attr := fn.attr
		fn.mu.Unlock()
		// Without its headers (a file not yet committed) the copy, if
		// any, reads them itself (copyObject).
		sessionOpts := s3client.CopyOptions{}
		if carried {
			sessionOpts.ReplaceMetadata = meta
		}
		if attr.fromHead {
			sessionOpts = b.renameCopyOptions(src, dst, attr, sessionOpts.ReplaceMetadata)
		}
		handled, moved, err := fn.file.Rename(ctx, dst, sessionOpts)
		if carried && (err != nil || !handled || moved == nil) {
			// Not carried: pending again (the next commit or rename takes them).
			fn.mu.Lock()
			fn.markPendingLocked()
			fn.mu.Unlock()
		}
		switch {
		case err != nil:
			b.log.WithError(err).WithFields(logrus.Fields{"op": "rename", "key": src, "to": dst, "code": s3client.Code(err)}).Warn("moving a file being written failed")
			return core.Errno(err)
		case handled:
			fn.mu.Lock()
			fn.key = dst
			if moved != nil {
				if sessionOpts.ReplaceMetadata != nil {
					fn.attr.meta, fn.attr.fromHead = sessionOpts.ReplaceMetadata, true
				}
				if sessionOpts.Headers != nil {
					fn.attr.headers = *sessionOpts.Headers
				}
				fn.attr.etag, fn.attr.modified = moved.ETag, time.Time{}
			}
			a = fn.attr
			fn.mu.Unlock()
			b.removeWriter(src, fn)
			b.addWriter(dst, fn)
			b.forget(src)
			if moved != nil {
				b.remember(dst, a)
			}
			return 0
		}
		fn.mu.Lock()
		meta, carried = fn.takePendingLocked()
		fn.mu.Unlock()
		if !carried {
			meta = nil
		}
		if !a.fromHead {
			info, err := b.client.Head(ctx, src)
			if err != nil {
				return core.Errno(err)
			}
			a.meta, a.headers, a.size = info.Metadata, info.Headers, info.Size
		}
		opts := b.renameCopyOptions(src, dst, a, meta)
		etag, errno := b.moveObject(ctx, src, dst, a.size, opts)
		if errno != 0 {
			if carried {
				fn.mu.Lock()
				fn.markPendingLocked()
				fn.mu.Unlock()
			}
			return errno
		}
		fn.mu.Lock()
		fn.key = dst
		if opts.ReplaceMetadata != nil {
			fn.attr.meta, fn.attr.fromHead = opts.ReplaceMetadata, true
		}
		if fn.attr.fromHead {
			fn.attr.headers = *opts.Headers
		}
		fn.attr.etag, fn.attr.modified = etag, time.Time{} // a new object
		a = fn.attr
		fn.mu.Unlock()
		if fn.writing() {
			// A failed session, open until its release: keep the
			// registry of open writers keyed by the current name.
			b.removeWriter(src, fn)
			b.addWriter(dst, fn)
		}
	} else {
		var opts s3client.CopyOptions // copyObject reads the headers
		if a.fromHead {
			opts = b.renameCopyOptions(src, dst, a, nil)
			a.headers = *opts.Headers
			if opts.ReplaceMetadata != nil {
				a.meta = opts.ReplaceMetadata
			}
		}
		etag, errno := b.moveObject(ctx, src, dst, a.size, opts)
		if errno != 0 {
			return errno
		}
		a.etag, a.modified = etag, time.Time{}
	}
	b.forget(src)
	b.remember(dst, a)
	return 0
}

// renameCopyOptions returns the settings of the copy that moves src, whose
// metadata and headers a holds (fromHead), to dst: the copy keeps the
// headers, except a Content-Type this mount's rules give src's name, which
// becomes the one they give dst's (a file written under a temporary name,
// as rsync and editors do, is typed by its final name; a type set
// otherwise stays). pending, when non-nil, is the metadata with pending
// attribute changes, over a's other keys. The copy replaces the metadata
// (REPLACE) with all of it and sends every header: a copy that copies the
// metadata (COPY) loses Expires on MinIO, and could not retype.
func (b *bucketFS) renameCopyOptions(src, dst string, a entryAttr, pending map[string]string) s3client.CopyOptions {
	h := a.headers
	if h.ContentType == b.contentTypeOf(src) {
		h.ContentType = b.contentTypeOf(dst)
	}
	meta := make(map[string]string, len(a.meta)+len(pending))
	maps.Copy(meta, a.meta)
	maps.Copy(meta, pending)
	return s3client.CopyOptions{ReplaceMetadata: meta, Headers: &h}
}

// moveObject copies src to dst, then deletes src, and returns the new
// object's ETag.
func (b *bucketFS) moveObject(ctx context.Context, src, dst string, size int64, opts s3client.CopyOptions) (string, syscall.Errno) {
	etag, err := b.copyObject(ctx, src, dst, size, opts)
	if err != nil {
		b.log.WithError(err).WithFields(logrus.Fields{"op": "rename", "key": src, "to": dst, "code": s3client.Code(err)}).Warn("copy failed; nothing was moved")
		return "", core.Errno(err)
	}
	if err := b.client.Delete(ctx, src); err != nil {
		b.log.WithError(err).WithFields(logrus.Fields{"op": "rename", "key": src, "to": dst}).Warn("copied, but deleting the source failed")
		return "", core.Errno(err)
	}
	return etag, 0
}

func (d *dirNode) renameDir(ctx context.Context, child *gofs.Inode, src, dst string, dstExists bool, dstAttr entryAttr) syscall.Errno {
	b := d.b
	srcPrefix, dstPrefix := src+"/", dst+"/"
	if strings.HasPrefix(dstPrefix, srcPrefix) {
		return syscall.EINVAL // into itself
	}
	if dstExists {
		if !dstAttr.isDir {
			return syscall.ENOTDIR
		}
		page, err := b.client.List(ctx, dstPrefix, "", "", 2)
		if err != nil {
			return core.Errno(err)
		}
		for _, o := range page.Objects {
			if o.Key != dstPrefix {
				return syscall.ENOTEMPTY
			}
		}
	}
	if b.hasWritersUnder(srcPrefix) {
		return syscall.EBUSY
	}
	var objs []s3client.ObjectInfo
	token := ""
	for {
		page, err := b.client.List(ctx, srcPrefix, "", token, 1000)
		if err != nil {
			return core.Errno(err)
		}
		objs = append(objs, page.Objects...)
		if len(objs) > b.cfg.MaxRenameObjects {
			return syscall.EXDEV
		}
		if page.NextToken == "" {
			break
		}
		token = page.NextToken
	}
	// Copy everything first.
	copied := make([]string, 0, len(objs))
	var mu sync.Mutex // guards copied and firstErr
	var firstErr error
	forEach(len(objs), renameConcurrency, func(i int) {
		o := objs[i]
		to := dstPrefix + strings.TrimPrefix(o.Key, srcPrefix)
		_, err := b.copyObject(ctx, o.Key, to, o.Size, s3client.CopyOptions{})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		copied = append(copied, to)
	})
	if firstErr != nil {
		b.log.WithError(firstErr).WithFields(logrus.Fields{"op": "rename", "key": srcPrefix, "to": dstPrefix}).Warn("directory rename failed while copying; removing the copies")
		_ = b.deleteKeys(context.WithoutCancel(ctx), copied)
		return core.Errno(firstErr)
	}
	old := make([]string, len(objs))
	for i, o := range objs {
		old[i] = o.Key
	}
	if err := b.deleteKeys(ctx, old); err != nil {
		return core.Errno(err)
	}
	if child != nil {
		if cd, ok := child.Operations().(*dirNode); ok {
			cd.rekey(srcPrefix, dstPrefix)
		}
	}
	b.lookups.Clear()
	return 0
}

// rekey moves a directory's in-memory subtree from one prefix to another.
func (d *dirNode) rekey(from, to string) {
	d.mu.Lock()
	d.prefix = to + strings.TrimPrefix(d.prefix, from)
	d.listing = nil
	d.mu.Unlock()
	for _, ch := range d.Children() {
		switch n := ch.Operations().(type) {
		case *dirNode:
			n.rekey(from, to)
		case *fileNode:
			n.mu.Lock()
			n.key = to + strings.TrimPrefix(n.key, from)
			n.mu.Unlock()
		}
	}
}

// deleteKeys deletes keys in batches of 1,000.
func (b *bucketFS) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := b.client.DeleteMany(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// forEach runs f(0..n-1), at most limit at once, and returns when all
// have returned; each call runs in a goroutine of its own.
func forEach(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}(i)
	}
	wg.Wait()
}
