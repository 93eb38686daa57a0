package fs

import (
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// mountObserved is gofs.Mount with every FUSE operation reported to
// observe (nil: none). go-fuse's server has no per-operation hook, so the
// raw filesystem it serves is wrapped.
func mountObserved(mountpoint string, root gofs.InodeEmbedder, opts *gofs.Options,
	observe func(string, time.Duration, syscall.Errno)) (*fuse.Server, error) {
	if observe == nil {
		return gofs.Mount(mountpoint, root, opts)
	}
	raw := observedFS{RawFileSystem: gofs.NewNodeFS(root, opts), observe: observe}
	srv, err := fuse.NewServer(raw, mountpoint, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	return srv, nil
}

// observedFS reports the operations bucketfs serves; the others (xattrs,
// locks, ioctl, ...) pass through uncounted.
type observedFS struct {
	fuse.RawFileSystem
	observe func(string, time.Duration, syscall.Errno)
}

func (o observedFS) done(op string, start time.Time, st fuse.Status) {
	o.observe(op, time.Since(start), syscall.Errno(st))
}

func (o observedFS) Lookup(c <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Lookup(c, h, name, out)
	o.done("lookup", start, st)
	return st
}

func (o observedFS) GetAttr(c <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.GetAttr(c, in, out)
	o.done("getattr", start, st)
	return st
}

func (o observedFS) SetAttr(c <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetAttr(c, in, out)
	o.done("setattr", start, st)
	return st
}

func (o observedFS) Mkdir(c <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Mkdir(c, in, name, out)
	o.done("mkdir", start, st)
	return st
}

func (o observedFS) Unlink(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Unlink(c, h, name)
	o.done("unlink", start, st)
	return st
}

func (o observedFS) Rmdir(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Rmdir(c, h, name)
	o.done("rmdir", start, st)
	return st
}

func (o observedFS) Rename(c <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Rename(c, in, oldName, newName)
	o.done("rename", start, st)
	return st
}

func (o observedFS) Create(c <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Create(c, in, name, out)
	o.done("create", start, st)
	return st
}

func (o observedFS) Open(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Open(c, in, out)
	o.done("open", start, st)
	return st
}

func (o observedFS) Read(c <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	r, st := o.RawFileSystem.Read(c, in, buf)
	o.done("read", start, st)
	return r, st
}

func (o observedFS) Write(c <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Write(c, in, data)
	o.done("write", start, st)
	return n, st
}

func (o observedFS) Writev(c <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Writev(c, in, data)
	o.done("write", start, st)
	return n, st
}

func (o observedFS) Flush(c <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Flush(c, in)
	o.done("flush", start, st)
	return st
}

func (o observedFS) Fsync(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Fsync(c, in)
	o.done("fsync", start, st)
	return st
}

func (o observedFS) Release(c <-chan struct{}, in *fuse.ReleaseIn) {
	start := time.Now()
	o.RawFileSystem.Release(c, in)
	o.done("release", start, fuse.OK)
}

func (o observedFS) OpenDir(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.OpenDir(c, in, out)
	o.done("opendir", start, st)
	return st
}

func (o observedFS) ReadDir(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.ReadDir(c, in, out)
	o.done("readdir", start, st)
	return st
}

func (o observedFS) ReadDirPlus(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.ReadDirPlus(c, in, out)
	o.done("readdirplus", start, st)
	return st
}

func (o observedFS) StatFs(c <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.StatFs(c, h, out)
	o.done("statfs", start, st)
	return st
}
