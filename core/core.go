package core

import (
	"context"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/stage"
	"github.com/bucketfs/bucketfs/uploader"
)

// Config is what a Core needs; built once per mount by the filesystem layer.
type Config struct {
	Client   s3client.API
	Uploader *uploader.Uploader
	// Copy copies an object on the server and returns the new ETag (the
	// filesystem's copy, multipart above 5 GiB); nil: Client.Copy.
	Copy func(ctx context.Context, src, dst string, size int64, opts s3client.CopyOptions) (string, error)
	// WriterWait bounds how long an open waits for another write session of
	// the same file to end (its RELEASE usually follows its last close by
	// microseconds) before it answers EBUSY (0: DefaultWriterWait).
	WriterWait time.Duration
	// OutOfOrderWait bounds how long a write past the end waits for the
	// writes before it (the kernel may deliver them out of order) before
	// the gap is taken as a hole and filled with zeros (0:
	// DefaultOutOfOrderWait). Only without a Stage: with one, such a write
	// stages the file at once and the gap is a hole of the stage.
	OutOfOrderWait time.Duration
	// RequestTimeout bounds the small S3 calls of a rename or unlink of a
	// file being written (0: DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Stage holds the files edited in place (appends, writes before the
	// end, truncations, reads while writing: stage.go); nil: such edits
	// answer ENOTSUP and a second writer waits, then EBUSY, as when only
	// streaming was possible.
	Stage *stage.Dir
	Log   *logrus.Logger
}

// Defaults for Config fields left zero.
const (
	DefaultWriterWait     = 2 * time.Second
	DefaultOutOfOrderWait = 2 * time.Second
	DefaultRequestTimeout = 2 * time.Minute
)

// Core is the write side of one mount: it creates Files.
type Core struct {
	cfg Config
	log *logrus.Logger
}

// New fills cfg's defaults and returns a Core.
func New(cfg Config) *Core {
	if cfg.WriterWait == 0 {
		cfg.WriterWait = DefaultWriterWait
	}
	if cfg.OutOfOrderWait == 0 {
		cfg.OutOfOrderWait = DefaultOutOfOrderWait
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Log == nil {
		cfg.Log = logrus.New()
		cfg.Log.SetOutput(io.Discard)
	}
	if cfg.Copy == nil {
		client := cfg.Client
		cfg.Copy = func(ctx context.Context, src, dst string, size int64, opts s3client.CopyOptions) (string, error) {
			return client.Copy(ctx, src, dst, opts)
		}
	}
	return &Core{cfg: cfg, log: cfg.Log}
}

// own gives an S3 call of a commit, rename or unlink a context of its own:
// FUSE interrupts cancel request contexts, and a half-done commit must not
// be cut short by one (the uploader bounds Complete itself).
func (c *Core) own(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
}
