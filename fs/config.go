package fs

import (
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// Config is everything a mount needs, built once by cmd/bucketfs from flags
// and passed down; there is no package-level configuration.
type Config struct {
	Client s3client.API
	Bucket string // for messages and logs
	// Prefix limits the mount to keys under it; empty or ending in "/".
	Prefix string

	ReadOnly   bool
	UID, GID   uint32
	FileMode   os.FileMode // permission bits of files without x-amz-meta-mode
	DirMode    os.FileMode // permission bits of directories
	AllowOther bool

	// MetadataTTL is how long a looked-up entry or attribute is trusted
	// without asking S3 again (kernel entry/attr timeout and our caches).
	MetadataTTL time.Duration
	// NegativeTTL is how long a name seen as absent, by a lookup or by a
	// listing, is trusted to stay absent (the kernel's negative entry
	// timeout too), so that another client's new object shows within it.
	// It is at most MetadataTTL.
	NegativeTTL time.Duration
	// ExactAttrs makes a listed object whose metadata this mount has not
	// read show its x-amz-meta-* attributes rather than the listing's view:
	// the first stat of it costs one HeadObject (of a directory, one HEAD of
	// its marker). Without it, a listing's LastModified and the default modes
	// stand until a HEAD happens to read the metadata.
	ExactAttrs bool
	// DirectIO makes reads bypass the kernel's page cache: every read()
	// reaches the read handle whole (up to 1 MiB) and nothing is kept
	// between opens. Without it, reads go through the page cache, which is
	// kept across opens while the object's ETag is unchanged and dropped
	// when it changes (one version in it at a time), so a re-read of an
	// unchanged file costs no request at all.
	DirectIO bool
	// ReadAhead is the largest read-ahead window of a sequential reader.
	ReadAhead int64
	// ReadMemory is the one budget for the blocks held by every read
	// handle together (read-ahead and random reads' blocks). When it is
	// spent, readers fetch fewer blocks ahead, down to none, and serve each
	// read with one GET of the bytes asked: memory stays bounded and no
	// read waits for memory.
	ReadMemory int64
	// CacheMemory is the budget of the data cache: whole blocks of
	// objects read sequentially, kept by key, ETag and block, so that a
	// re-read of an unchanged object costs no GET. Zero (or less) turns it
	// off: filling it copies every whole block read, garbage the collector
	// must keep up with, and the cache itself adds up to CacheMemory.
	CacheMemory int64

	// MaxRenameObjects caps how many objects one directory rename may move;
	// a larger one answers EXDEV, on which mv copies and deletes instead.
	MaxRenameObjects int
	// MultipartCopyThreshold is the object size above which a rename copies
	// with a parallel multipart copy (at most 5 GiB, S3's CopyObject limit).
	MultipartCopyThreshold int64
	// ContentTypes are rules for the Content-Type of new objects, tried in
	// order before Go's MIME tables (content_type.go).
	ContentTypes []ContentTypeRule

	// Upload configures streaming writes.
	Upload uploader.Config

	// CacheDir is where files edited in place are staged (stage package),
	// and where streaming parts too large for memory are spilled; created
	// 0700 when missing. Empty: DefaultCacheDir.
	CacheDir string
	// CacheMaxSize bounds the bytes staged at once; a write that does not
	// fit answers ENOSPC (0: DefaultCacheMaxSize).
	CacheMaxSize int64

	Log *logrus.Logger
	// FUSEDebug logs every FUSE request (very verbose).
	FUSEDebug bool
	// ObserveOp, when set, is called after each FUSE operation is answered
	// with its name (lowercase, as go-fuse names it: lookup, getattr,
	// read, ...), how long it took and its errno (0 for success). It must
	// not block: metrics count with it.
	ObserveOp func(op string, took time.Duration, errno syscall.Errno)
}

// Defaults for Config fields left zero.
const (
	DefaultMetadataTTL = 5 * time.Second
	DefaultNegativeTTL = time.Second
	DefaultReadAhead   = 64 << 20
	DefaultReadMemory  = 256 << 20
	// DefaultMaxRenameObjects bounds a directory rename.
	DefaultMaxRenameObjects = 10000
	// DefaultCacheMaxSize bounds the stage (CacheMaxSize).
	DefaultCacheMaxSize = 10 << 30
)

// DefaultCacheDir is the stage's directory when none is given: bucketfs
// under the user's cache directory ($XDG_CACHE_HOME, else ~/.cache), or
// under the system's temporary directory when there is no home.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "bucketfs")
	}
	return filepath.Join(os.TempDir(), "bucketfs-cache")
}
