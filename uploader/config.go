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
	// SpillBound, when set, is charged the size of each spilled part before
	// its file is created and released when the part is freed (the stage's
	// --cache-max-size covers spills too); a refused charge fails the write
	// taking nothing, with the bound's error.
	SpillBound SpillBound
	// CompleteTimeout bounds one CompleteMultipartUpload attempt (0: 15 minutes).
	CompleteTimeout time.Duration
	// Log receives structured logs; nil: a logger that discards.
	Log *logrus.Logger
}

// SpillBound bounds the disk that spilled parts take.
type SpillBound interface {
	Charge(n int64) error
	Release(n int64)
}

// Defaults for Config fields left zero.
const (
	DefaultPartSize    = 8 << 20
	DefaultMemoryLimit = 512 << 20
	DefaultMemoryWait  = 30 * time.Second
	DefaultConcurrency = 16
)
