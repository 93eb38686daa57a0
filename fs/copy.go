package fs

import (
	"context"
	"math"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/core"
)

var _ gofs.NodeCopyFileRanger = (*fileNode)(nil)

// CopyFileRange implements gofs.NodeCopyFileRanger (copy_file_range, which
// cp uses): a whole file copied into a file just opened for writing is
// copied on the server (core.Handle.CopyFrom), the version the source's
// descriptor pinned, without its bytes passing through the mount. Anything
// else answers EOPNOTSUPP, on which the kernel copies by reading and
// writing (cp's next call, at the end of the source, comes to that and
// reads nothing).
func (f *fileNode) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode,
	fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	r, ok := fhIn.(*readHandle)
	w, wok := fhOut.(*writeHandle)
	if !ok || !wok || flags != 0 || offIn != 0 || offOut != 0 || w.node == f {
		return 0, syscall.EOPNOTSUPP
	}
	r.mu.Lock()
	src := core.CopySource{Key: f.currentKey(), ETag: r.etag, Size: r.size}
	usable := !r.viaSession && !r.changed && !f.writing()
	r.mu.Unlock()
	if !usable || src.Size <= 0 || uint64(src.Size) > length || src.Size > math.MaxUint32 {
		return 0, syscall.EOPNOTSUPP
	}
	handled, err := w.h.CopyFrom(uninterruptible(ctx), src)
	switch {
	case err != nil:
		return 0, core.Errno(err)
	case !handled:
		return 0, syscall.EOPNOTSUPP
	}
	return uint32(src.Size), 0
}
