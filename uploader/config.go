package uploader

import (
	"time"

	"github.com/sirupsen/logrus"
)

// Config configures the streaming uploads of one mount.
type Config struct {
	// PartSize is the size of the first parts (5 MiB to 5 GiB; 0: DefaultPartSize).
	// Later parts grow on the schedule in part_size.go.
	PartSize int64
	// MemoryLimit bounds the part buffers of every open file together
	// (0: DefaultMemoryLimit). Writers wait when it is spent.
	MemoryLimit int64
	// MemoryWait is how long a writer waits for memory while none is
	// released before it gives up with ErrNoMemory (0: DefaultMemoryWait).
	// The wait restarts at every release, so writers behind slow but
	// progressing uploads keep waiting; only writers that hold half-filled
	// parts and wait for each other give up.
	MemoryWait time.Duration
	// Concurrency bounds the parts in flight over all uploads (0: DefaultConcurrency).
	Concurrency int
	// SpillDir is where parts too large to hold in memory are staged
	// (empty: os.TempDir()).
	SpillDir string
	// CompleteTimeout bounds one CompleteMultipartUpload attempt (0: 15 minutes).
	CompleteTimeout time.Duration
	// Log receives structured logs; nil: a logger that discards.
	Log *logrus.Logger
}

// Defaults for Config fields left zero.
const (
	DefaultPartSize    = 8 << 20
	DefaultMemoryLimit = 512 << 20
	DefaultMemoryWait  = 30 * time.Second
	DefaultConcurrency = 16
)
