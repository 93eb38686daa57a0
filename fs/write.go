package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/core"
)

// writeHandle is the FUSE side of one open file description for writing:
// it translates requests into calls on its core.Handle, which decides
// which close commits (core/doc.go) and answers with core.Errno.
type writeHandle struct {
	node *fileNode
	h    *core.Handle
}

var (
	_ gofs.FileWriter    = (*writeHandle)(nil)
	_ gofs.FileFlusher   = (*writeHandle)(nil)
	_ gofs.FileFsyncer   = (*writeHandle)(nil)
	_ gofs.FileReleaser  = (*writeHandle)(nil)
	_ gofs.FileReader    = (*writeHandle)(nil)
	_ gofs.FileGetattrer = (*writeHandle)(nil)
)

// callerProcess returns the process (not the thread) of a request's caller;
// 0 when the daemon cannot see it (another pid namespace).
func callerProcess(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok && c.Pid != 0 {
		return processOf(c.Pid)
	}
	return 0
}

// Write implements gofs.FileWriter. go-fuse reuses data after we return;
// the uploader copies it into its buffers before that.
func (w *writeHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if c, ok := fuse.FromContext(ctx); ok && c.Uid != 0 {
		w.node.dropSetIDOnWrite()
	}
	n, err := w.h.Write(ctx, off, data)
	return uint32(n), core.Errno(err)
}

// Read implements gofs.FileReader: the file as written, committed or not
// (a streaming file is staged for it: core/stage.go).
func (w *writeHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := w.h.ReadAt(ctx, dest, off)
	if err != nil {
		return nil, core.Errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Getattr implements gofs.FileGetattrer: the size written so far.
func (w *writeHandle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return w.node.Getattr(ctx, nil, out)
}

// Flush implements gofs.FileFlusher: one close() of a descriptor.
func (w *writeHandle) Flush(ctx context.Context) syscall.Errno {
	return core.Errno(w.h.Flush(ctx, callerProcess(ctx)))
}

// Fsync implements gofs.FileFsyncer: commits and reports.
func (w *writeHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return core.Errno(w.h.Fsync(ctx))
}

// Release implements gofs.FileReleaser: the last close of the description.
func (w *writeHandle) Release(ctx context.Context) syscall.Errno {
	w.h.Release(ctx)
	w.node.b.removeWriter(w.node.currentKey(), w.node)
	n := w.node
	n.mu.Lock()
	if n.pending {
		n.schedulePendingLocked() // held back while the session was open (applyPending)
	}
	n.mu.Unlock()
	return 0
}
