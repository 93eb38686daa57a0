package core

import (
	"context"
	"errors"
	"syscall"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// Errno is the one mapping from errors to errno in bucketfs; the FUSE layer
// answers every request through it (go-fuse's own ToErrno would turn an
// unknown error into ENOSYS). Anything not recognised is EIO. ENOENT means a
// missing key only: a missing bucket or multipart upload is EIO.
//
// Upload outcomes do not come here: a session that failed answers EIO
// whatever S3 said (see file.go).
func Errno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, s3client.ErrNoSuchBucket), errors.Is(err, s3client.ErrNoSuchUpload):
		return syscall.EIO
	case errors.Is(err, s3client.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, s3client.ErrAccessDenied):
		return syscall.EACCES
	case errors.Is(err, s3client.ErrPreconditionFailed):
		return syscall.EEXIST
	case errors.Is(err, uploader.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, uploader.ErrNoMemory):
		return syscall.ENOBUFS
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}
