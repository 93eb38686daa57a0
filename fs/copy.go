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
// GNU cp 9 uses): a whole file copied into a file just opened for writing
// is copied on the server at the destination's commit (core.Handle.CopyFrom),
// the version the source's descriptor pinned while it is still the file's.
// Anything else answers EOPNOTSUPP, on which the kernel copies by reading
// and writing. (cp's next call, at the end of the source, the kernel
// answers itself.)
func (f *fileNode) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode,
	fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	r, ok := fhIn.(*readHandle)
	w, wok := fhOut.(*writeHandle)
	if !ok || !wok || flags != 0 || offIn != 0 || offOut != 0 || w.node == f {
		return 0, syscall.EOPNOTSUPP
	}
	// A self-copy writing a pending attribute change of the source could
	// land between this copy and its commit and change the ETag it is
	// conditioned on: write it first (nothing to do when none is pending).
	if err := f.applyPending(uninterruptible(ctx)); err != nil {
		return 0, syscall.EOPNOTSUPP
	}
	r.mu.Lock()
	pinned, size, usable := r.etag, r.size, !r.viaSession && !r.changed
	r.mu.Unlock()
	// The version pinned must still be the file's (a writer may have
	// committed since the open, or this mount's chmod copied it: same
	// bytes, new ETag); the copy is conditioned on the current ETag.
	a, _, writing := f.currentAttr()
	if to, ok := f.sameBytesAs(pinned); ok {
		pinned = to
	}
	if !usable || writing || a.etag == "" || a.etag != pinned || a.size != size ||
		size <= 0 || uint64(size) > length || size > math.MaxUint32 {
		return 0, syscall.EOPNOTSUPP
	}
	src := core.CopySource{Key: f.currentKey(), ETag: a.etag, Size: size}
	if !w.h.CopyFrom(ctx, src) {
		return 0, syscall.EOPNOTSUPP
	}
	return uint32(src.Size), 0
}
