package fs

import (
	"context"
	"syscall"
	"time"

	"sync"
	"sync/atomic"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// writeHandle streams one file's writes into its upload. It owns the
// upload: only this handle writes, completes or aborts it.
//
// Which FLUSH completes the upload: the kernel sends one FLUSH per close of
// every descriptor, dup'd and inherited ones included. The flush from the
// process that last wrote completes the upload; flushes from other
// processes closing their copies do nothing. A flush before any write
// publishes the empty file but keeps the handle open, because tools such as
// dd dup2 a fresh descriptor and close the original before writing: a later
// write starts a new upload that replaces the empty object. fsync completes
// the upload too. Once completed, further writes on the handle fail with
// EIO. RELEASE completes an upload no flush completed (it cannot report an
// error, so that is logged).
type writeHandle struct {
	node *fileNode
	// up is the handle's upload. It is replaced once: when a flush before
	// any write published an empty file and writes follow (see Flush).
	up atomic.Pointer[uploader.Upload]

	mu        sync.Mutex // guards everything below; held across a write into the upload
	grew      *sync.Cond // on mu; broadcast when the size grows, for out-of-order writes
	writerPid uint32     // the process that wrote last; 0 before any write
	writerTid uint32     // the thread that wrote last, to skip looking up its process again
	finished  bool       // completed or aborted
	finishErr error      // the completion's result, returned to later flushes
	lastWrite time.Time  // for mtime while writing
	// emptyPublished is true when a flush before any write completed an
	// empty object and no write has come since. Written with mu held; read
	// without it by a rename (which holds the node's lock, taken after mu).
	emptyPublished atomic.Bool
}

var (
	_ gofs.FileWriter    = (*writeHandle)(nil)
	_ gofs.FileFlusher   = (*writeHandle)(nil)
	_ gofs.FileFsyncer   = (*writeHandle)(nil)
	_ gofs.FileReleaser  = (*writeHandle)(nil)
	_ gofs.FileReader    = (*writeHandle)(nil)
	_ gofs.FileGetattrer = (*writeHandle)(nil)
)

// outOfOrderWait bounds how long a write past the end waits for the writes
// before it (the kernel may deliver a handle's writes out of order) before
// the gap is taken as a hole and filled with zeros.
const outOfOrderWait = 2 * time.Second

func newWriteHandle(n *fileNode, up *uploader.Upload) *writeHandle {
	h := &writeHandle{node: n, lastWrite: time.Now()}
	h.up.Store(up)
	h.grew = sync.NewCond(&h.mu)
	return h
}

// upload returns the handle's current upload; safe from any goroutine.
func (h *writeHandle) upload() *uploader.Upload { return h.up.Load() }

func (h *writeHandle) mtime() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastWrite
}

func (h *writeHandle) fields() logrus.Fields {
	return logrus.Fields{"key": h.upload().Key()}
}

// Write implements gofs.FileWriter: appends at the end of the upload.
func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		return 0, syscall.EIO
	}
	if h.emptyPublished.Load() {
		// Writes after an early flush (dd dup2s its output and closes the
		// original first): a new upload replaces the empty object, at the
		// file's current name (a rename may have moved it meanwhile).
		h.up.Store(h.node.b.up.Start(h.node.currentKey(), h.node.uploadOptions(false)))
		h.emptyPublished.Store(false)
	}
	if err := h.upload().Err(); err != nil {
		return 0, syscall.EIO
	}
	if off > h.upload().Size() {
		h.waitFor(off)
	}
	size := h.upload().Size()
	switch {
	case off < size:
		// A rewrite of data already streamed: S3 objects cannot be
		// patched while their upload streams.
		return 0, syscall.ENOTSUP
	case off > size:
		if errno := h.fillZeros(ctx, off-size); errno != 0 {
			return 0, errno
		}
	}
	n, err := h.upload().Write(ctx, data)
	if c, ok := fuse.FromContext(ctx); ok && c.Pid != h.writerTid {
		h.writerTid, h.writerPid = c.Pid, processOf(c.Pid)
	}
	h.lastWrite = time.Now()
	h.grew.Broadcast()
	if err != nil {
		h.node.b.log.WithError(err).WithFields(h.fields()).WithField("op", "write").Warn("write failed")
		return uint32(n), toErrno(err)
	}
	return uint32(n), 0
}

// waitFor waits (mu held) until the upload reaches off or outOfOrderWait passes.
func (h *writeHandle) waitFor(off int64) {
	deadline := time.Now().Add(outOfOrderWait)
	timer := time.AfterFunc(outOfOrderWait, func() {
		h.mu.Lock()
		h.grew.Broadcast()
		h.mu.Unlock()
	})
	defer timer.Stop()
	for h.upload().Size() < off && time.Now().Before(deadline) && !h.finished {
		h.grew.Wait()
	}
}

var zeros = make([]byte, 1<<20)

func (h *writeHandle) fillZeros(ctx context.Context, n int64) syscall.Errno {
	for n > 0 {
		chunk := int64(len(zeros))
		if n < chunk {
			chunk = n
		}
		if _, err := h.upload().Write(ctx, zeros[:chunk]); err != nil {
			return toErrno(err)
		}
		n -= chunk
	}
	return 0
}

// Read implements gofs.FileReader: a file's bytes cannot be read back
// while its upload streams (documented in README).
func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// Getattr implements gofs.FileGetattrer: the size written so far.
func (h *writeHandle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.node.Getattr(ctx, nil, out)
}

// Flush implements gofs.FileFlusher (see the type's comment for which flush completes).
func (h *writeHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		return toErrno(h.finishErr)
	}
	if h.writerPid == 0 {
		// No write yet: publish the (empty) file so that close() of an empty
		// file tells the truth, but keep the handle open for writes that a
		// dup'd descriptor may still send.
		if h.emptyPublished.Load() {
			return 0
		}
		if errno := toErrno(h.finish(ctx)); errno != 0 {
			return errno
		}
		h.finished = false
		h.emptyPublished.Store(true)
		h.node.mu.Lock()
		h.node.writer = h
		key := h.node.key
		h.node.mu.Unlock()
		h.node.b.addWriter(key, h.node)
		return 0
	}
	if c, ok := fuse.FromContext(ctx); ok && processOf(c.Pid) != h.writerPid {
		return 0 // another process closed its copy of the descriptor
	}
	return toErrno(h.finish(ctx))
}

// Fsync implements gofs.FileFsyncer: completes the upload, so the file is
// durable in S3 when fsync returns.
func (h *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished || h.emptyPublished.Load() {
		return toErrno(h.finishErr)
	}
	return toErrno(h.finish(ctx))
}

// Release implements gofs.FileReleaser.
func (h *writeHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.emptyPublished.Load() {
		h.finished = true
		h.node.mu.Lock()
		if h.node.writer == h {
			h.node.writer = nil
		}
		key := h.node.key
		h.node.mu.Unlock()
		h.node.b.removeWriter(key, h.node)
		return 0
	}
	if !h.finished {
		if err := h.finish(ctx); err != nil {
			h.node.b.log.WithError(err).WithFields(h.fields()).WithField("op", "release").Error("upload completed at release failed")
		}
	}
	return 0
}

// finish completes the upload (mu held) and publishes the result. A rename
// that came after the upload's key was fixed moves the object now (one
// server-side copy and a delete); attribute changes that came too late for
// the upload's metadata become pending.
func (h *writeHandle) finish(ctx context.Context) error {
	h.finished = true
	h.grew.Broadcast()
	res, err := h.upload().Complete(ctx)
	n := h.node
	b := n.b
	uploadKey := h.upload().Key()
	n.mu.Lock()
	if n.writer == h {
		n.writer = nil
	}
	nodeKey := n.key
	if err == nil {
		n.attr.size = res.Size
		n.attr.etag, n.attr.modified = res.ETag, time.Time{}
		if !n.attr.mtimeSet {
			n.attr.mtime = time.Now()
		}
		n.attr.meta = n.attr.withMeta()
		n.attr.fromHead = true
		n.attrAt = time.Now()
	}
	a := n.attr
	n.mu.Unlock()
	b.removeWriter(uploadKey, n)
	b.removeWriter(nodeKey, n)
	if err == nil && nodeKey != uploadKey {
		var etag string
		if etag, err = h.moveCompleted(ctx, uploadKey, nodeKey, a); err == nil {
			n.mu.Lock()
			n.attr.etag = etag
			a = n.attr
			n.mu.Unlock()
		}
	}
	h.finishErr = err
	if err != nil {
		if errno := toErrno(err); errno == syscall.EFBIG || errno == syscall.EEXIST {
			return errno
		}
		b.log.WithError(err).WithFields(h.fields()).WithField("op", "close").Error("upload failed; the file was not written")
		b.forget(nodeKey)
		n.mu.Lock()
		n.attrAt = time.Time{} // stale: the next getattr asks S3
		n.mu.Unlock()
		// Make the kernel forget the name. Not from this goroutine: the
		// kernel may hold locks while it waits for this request.
		go func() {
			if name, parent := n.Parent(); parent != nil {
				parent.NotifyEntry(name)
			}
		}()
		return syscall.EIO
	}
	n.mu.Lock()
	if n.pending {
		n.markPendingLocked()
	}
	n.mu.Unlock()
	b.remember(nodeKey, a)
	parentListingPut(&n.Inode, &a)
	return nil
}

// moveCompleted moves a just-completed object to the key its file was
// renamed to while it was being written, with its current attributes.
func (h *writeHandle) moveCompleted(ctx context.Context, from, to string, a entryAttr) (string, error) {
	b := h.node.b
	ctx = context.WithoutCancel(ctx)
	h.node.mu.Lock()
	meta, _ := h.node.takePendingLocked()
	h.node.mu.Unlock()
	opts := s3client.CopyOptions{}
	if meta != nil {
		opts = s3client.CopyOptions{ReplaceMetadata: meta, ContentType: a.contentType}
	}
	etag, err := b.copyObject(ctx, from, to, a.size, opts)
	if err != nil {
		return "", err
	}
	if err := b.client.Delete(ctx, from); err != nil {
		return "", err
	}
	b.forget(from)
	return etag, nil
}
