package fs

import (
	"fmt"
	"log"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
)

// Server is a live bucketfs mount.
type Server struct {
	srv        *fuse.Server
	b          *bucketFS
	mountpoint string
}

// Mount mounts the bucket of cfg at mountpoint and returns once the kernel
// mount is live. The caller must Unmount it and may Wait for it to end.
func Mount(mountpoint string, cfg Config) (*Server, error) {
	// The kernel's read-ahead is found by the mount table's name for the
	// mount (a relative mountpoint left it at 128 KiB).
	mountpoint = MountPath(mountpoint)
	b, err := newBucketFS(cfg)
	if err != nil {
		return nil, err
	}
	ttl, negativeTTL := b.cfg.MetadataTTL, b.cfg.NegativeTTL
	root := &dirNode{b: b, prefix: b.cfg.Prefix}
	opts := &gofs.Options{
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &negativeTTL,
		UID:             b.cfg.UID,
		GID:             b.cfg.GID,
		// The root is inode 1, as on other filesystems (find, du and
		// tar compare inode numbers).
		RootStableAttr: &gofs.StableAttr{Ino: fuse.FUSE_ROOT_ID},
		// Mode 0 is a mode (open(O_CREAT, 0), chmod 0): go-fuse would
		// show 0644 instead.
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:       "bucketfs:" + b.cfg.Bucket,
			Name:         "bucketfs",
			DirectMount:  true,
			AllowOther:   b.cfg.AllowOther,
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			Debug:        b.cfg.FUSEDebug,
			// O_TRUNC arrives with OPEN instead of a separate truncate, so
			// an overwrite replaces the object only when its upload completes.
			// With --direct-io, read handles use direct I/O; the kernel
			// still allows mmap of them (Linux 6.6 and later).
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC | fuse.CAP_DIRECT_IO_ALLOW_MMAP,
			// The page cache is dropped by ETag (fileNode.pageCacheOpen),
			// not when an mtime or size the kernel sees changes: a HEAD's
			// LastModified has whole seconds where a listing's has
			// milliseconds, and an unchanged object would lose its pages
			// at every revalidation.
			DisabledCapabilities: fuse.CAP_AUTO_INVAL_DATA,
			// The kernel checks every access against the modes and
			// owners we report, with the caller's uid, gid and groups
			// (read, write, search, sticky directories, who may chmod,
			// chown and set times), and clears SUID/SGID where POSIX says.
			Options: []string{"default_permissions"},
			// Reads answer from memory (ReadResultData): splicing cannot
			// help them, and go-fuse would try, and log, on every read
			// larger than a pipe.
			DisableSplice: true,
			Logger:        log.New(b.log.WriterLevel(logrus.DebugLevel), "", 0),
		},
	}
	if b.cfg.ReadOnly {
		// The kernel then refuses every change with EROFS before it reaches us.
		opts.MountOptions.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	}
	srv, err := mountObserved(mountpoint, root, opts, b.cfg.ObserveOp)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	if !b.cfg.DirectIO {
		if err := setKernelReadAhead(mountpoint, kernelReadAhead); err != nil {
			b.log.WithError(err).WithField("mountpoint", mountpoint).Info("the kernel's read-ahead stays at 128 KiB: reads through the page cache arrive in 128 KiB pieces")
		}
	}
	b.log.WithFields(logrus.Fields{"bucket": b.cfg.Bucket, "prefix": b.cfg.Prefix, "mountpoint": mountpoint}).Info("mounted")
	return &Server{srv: srv, b: b, mountpoint: mountpoint}, nil
}

// Wait blocks until the mount ends (unmounted by us or by umount), then
// releases the mount's resources.
func (s *Server) Wait() {
	s.srv.Wait()
	s.b.close()
}

// Unmount unmounts, retrying briefly while the mount is busy.
func (s *Server) Unmount() error {
	var err error
	for i := 0; i < 10; i++ {
		if err = s.srv.Unmount(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("unmounting %s: %w", s.mountpoint, err)
}
