package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// toErrno is the one mapping from errors to errno in bucketfs. go-fuse's
// fs.ToErrno turns unknown errors into ENOSYS; everything goes through here
// instead, and anything not recognised is EIO.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, s3client.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, s3client.ErrAccessDenied):
		return syscall.EACCES
	case errors.Is(err, s3client.ErrPreconditionFailed):
		return syscall.EEXIST
	case errors.Is(err, uploader.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}
