// Package uploader streams one object's bytes to S3 while they are being
// written: a multipart upload whose parts are sent in the background, or one
// PutObject for a file smaller than a part.
//
// Ownership and bounds:
//   - An Uploader is shared by every file of a mount. It owns the memory
//     limiter (one budget for all part buffers, memory_limiter.go) and the
//     semaphore bounding parts in flight over all uploads.
//   - An Upload is owned by one file handle: Write, Complete and Abort are
//     called by one goroutine at a time. Each full part is handed to a
//     goroutine of its own that uploads it and ends; Complete waits for them.
//   - A part reserves its whole size from the budget before it is filled, so
//     memory never exceeds the budget and writers wait (backpressure) when it
//     is spent. Parts larger than a quarter of the budget (the schedule in
//     part_size.go reaches them above about 56 GiB) are staged in a spill file
//     instead: memory stays bounded, and the part can still be retried.
//   - A part's bytes are kept until its upload succeeded: the SDK retries
//     throttling, 5xx, timeouts and resets from the same buffer.
package uploader

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
)

// Errors an Upload returns; callers test them with errors.Is.
var (
	// ErrUploadFailed marks every write after a part failed for good.
	ErrUploadFailed = errors.New("upload failed")
	// ErrTooLarge is a write past S3's 5 TiB object limit.
	ErrTooLarge = errors.New("object would exceed 5 TiB")
	// ErrKeyFixed is a SetKey after the upload reached S3.
	ErrKeyFixed = errors.New("upload already started under its key")
)

// Uploader creates the uploads of one mount and bounds them together.
type Uploader struct {
	client   s3client.API
	cfg      Config
	memory   *memoryLimiter
	inFlight chan struct{} // one token per part being uploaded
	log      *logrus.Logger
}

// New validates cfg, fills its defaults and returns an Uploader.
func New(client s3client.API, cfg Config) (*Uploader, error) {
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.CompleteTimeout == 0 {
		cfg.CompleteTimeout = 15 * time.Minute
	}
	if cfg.SpillDir == "" {
		cfg.SpillDir = os.TempDir()
	}
	if cfg.Log == nil {
		cfg.Log = logrus.New()
		cfg.Log.SetOutput(io.Discard)
	}
	switch {
	case cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize:
		return nil, fmt.Errorf("part size %d is outside S3's 5 MiB to 5 GiB", cfg.PartSize)
	case cfg.MemoryLimit < cfg.PartSize:
		return nil, fmt.Errorf("upload memory %d is smaller than one part (%d)", cfg.MemoryLimit, cfg.PartSize)
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("upload concurrency must be at least 1")
	}
	return &Uploader{
		client:   client,
		cfg:      cfg,
		memory:   newMemoryLimiter(cfg.MemoryLimit),
		inFlight: make(chan struct{}, cfg.Concurrency),
		log:      cfg.Log,
	}, nil
}

// Close releases the pooled part memory. Uploads must be finished first.
func (u *Uploader) Close() error {
	if r := u.memory.reserved(); r != 0 {
		return fmt.Errorf("closing the uploader with %d bytes of parts still reserved", r)
	}
	u.memory.drop()
	return nil
}

// maxMemoryPart is the largest part held in memory; larger ones spill.
func (u *Uploader) maxMemoryPart() int64 { return u.cfg.MemoryLimit / 4 }

// Result describes a completed upload.
type Result struct {
	ETag      string
	Size      int64
	Parts     int  // parts uploaded; 0 for a PutObject
	Multipart bool // false when one PutObject wrote the object
}

// Upload is one object's streaming upload.
type Upload struct {
	u *Uploader

	// Owned by the writing goroutine (the caller serialises Write,
	// Complete and Abort).
	cur        *partBuffer // the part being filled
	nextNumber int32       // number of the next part to start
	done       bool        // Complete or Abort ran

	size atomic.Int64 // bytes accepted; read from any goroutine

	mu       sync.Mutex               // guards the fields below
	key      string                   // destination; fixed once the upload reached S3
	opts     s3client.PutOptions      // metadata etc.; fixed likewise
	uploadID string                   // set by CreateMultipartUpload
	parts    []s3client.CompletedPart // by part number - 1
	err      error                    // the first permanent failure
	running  sync.WaitGroup           // part uploads in flight
}

// Start begins an upload to key. Nothing is sent until a part is full or
// Complete is called.
func (u *Uploader) Start(key string, opts s3client.PutOptions) *Upload {
	return &Upload{u: u, key: key, opts: opts, nextNumber: 1}
}

// Key returns the upload's destination.
func (up *Upload) Key() string {
	up.mu.Lock()
	defer up.mu.Unlock()
	return up.key
}

// Size returns the bytes accepted so far.
func (up *Upload) Size() int64 { return up.size.Load() }

// Err returns the upload's permanent failure, if any.
func (up *Upload) Err() error {
	up.mu.Lock()
	defer up.mu.Unlock()
	return up.err
}

// SetKey changes the destination while nothing has reached S3.
func (up *Upload) SetKey(key string) error {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.uploadID != "" || up.done {
		return ErrKeyFixed
	}
	up.key = key
	return nil
}

// SetMetadata replaces the object's metadata and reports whether it will
// be written: it cannot once the multipart upload was created.
func (up *Upload) SetMetadata(m map[string]string) bool {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.uploadID != "" || up.done {
		return false
	}
	up.opts.Metadata = m
	return true
}

func (up *Upload) fields() logrus.Fields {
	up.mu.Lock()
	defer up.mu.Unlock()
	return logrus.Fields{"key": up.key, "upload_id": up.uploadID}
}

func (up *Upload) fail(err error) {
	up.mu.Lock()
	if up.err == nil {
		up.err = err
	}
	up.mu.Unlock()
}

// Write appends p. It blocks while the memory budget is spent, and fails at
// once (wrapping ErrUploadFailed) after a part failed for good.
func (up *Upload) Write(ctx context.Context, p []byte) (int, error) {
	if up.done {
		return 0, fmt.Errorf("%w: write after completion", ErrUploadFailed)
	}
	if err := up.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUploadFailed, err)
	}
	if up.Size()+int64(len(p)) > MaxObjectSize {
		return 0, ErrTooLarge
	}
	written := 0
	for written < len(p) {
		if up.cur == nil {
			part, err := up.newPart(ctx)
			if err != nil {
				return written, err
			}
			up.cur = part
		}
		n, err := up.cur.write(p[written:])
		written += n
		up.size.Add(int64(n))
		if err != nil {
			up.fail(err)
			return written, fmt.Errorf("%w: %w", ErrUploadFailed, err)
		}
		if up.cur.full() {
			part := up.cur
			up.cur = nil
			if err := up.send(part); err != nil {
				return written, fmt.Errorf("%w: %w", ErrUploadFailed, err)
			}
		}
	}
	return written, nil
}

// newPart reserves and returns the buffer of the next part.
func (up *Upload) newPart(ctx context.Context) (*partBuffer, error) {
	if up.nextNumber > MaxParts {
		return nil, ErrTooLarge
	}
	size := partSize(up.u.cfg.PartSize, int(up.nextNumber))
	b := &partBuffer{number: up.nextNumber, capacity: size, limiter: up.u.memory}
	if size > up.u.maxMemoryPart() {
		f, err := os.CreateTemp(up.u.cfg.SpillDir, "bucketfs-part-*")
		if err != nil {
			return nil, fmt.Errorf("creating a spill file for part %d: %w", up.nextNumber, err)
		}
		b.spill = f
	} else {
		if err := up.u.memory.reserve(ctx, size); err != nil {
			return nil, err
		}
		b.reserved = size
	}
	up.nextNumber++
	return b, nil
}

// send starts uploading a part in the background, creating the multipart
// upload first if needed. It waits for a concurrency token.
func (up *Upload) send(part *partBuffer) error {
	ctx := context.Background()
	up.mu.Lock()
	id, key, opts := up.uploadID, up.key, up.opts
	up.mu.Unlock()
	if id == "" {
		var err error
		id, err = up.u.client.CreateMultipartUpload(ctx, key, opts)
		if err != nil {
			part.release()
			up.fail(err)
			up.logError(err, "creating the multipart upload failed", 0)
			return err
		}
		up.mu.Lock()
		up.uploadID = id
		up.mu.Unlock()
		up.u.log.WithFields(up.fields()).Debug("multipart upload created")
	}
	up.u.inFlight <- struct{}{}
	up.running.Add(1)
	go up.uploadPart(ctx, key, id, part)
	return nil
}

// uploadPart runs on a goroutine of its own: it uploads one part (the SDK
// retries transient failures from the same buffer), records it, and frees it.
func (up *Upload) uploadPart(ctx context.Context, key, id string, part *partBuffer) {
	defer up.running.Done()
	defer func() { <-up.u.inFlight }()
	defer part.release()
	if up.Err() != nil {
		return // the upload failed already: don't pay for more parts
	}
	cp, err := up.u.client.UploadPart(ctx, key, id, part.number, part.reader(), part.size)
	if err != nil {
		up.fail(err)
		up.logError(err, "part upload failed", part.number)
		return
	}
	up.mu.Lock()
	for len(up.parts) < int(part.number) {
		up.parts = append(up.parts, s3client.CompletedPart{})
	}
	up.parts[part.number-1] = cp
	up.mu.Unlock()
}

func (up *Upload) logError(err error, msg string, part int32) {
	f := up.fields()
	f["code"] = s3client.Code(err)
	f["request_id"] = s3client.RequestID(err)
	if part > 0 {
		f["part"] = part
	}
	up.u.log.WithFields(f).WithError(err).Error(msg)
}

// Complete sends what is left and makes the object: one PutObject when no
// part was sent yet, else the last part and CompleteMultipartUpload with the
// parts in ascending order. It runs on a context of its own (FUSE interrupts
// cancel request contexts) bounded by Config.CompleteTimeout. A failed
// upload is aborted, so no parts are left behind.
func (up *Upload) Complete(ctx context.Context) (Result, error) {
	if up.done {
		return Result{}, fmt.Errorf("%w: completed twice", ErrUploadFailed)
	}
	up.done = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), up.u.cfg.CompleteTimeout)
	defer cancel()

	up.mu.Lock()
	id, key, opts := up.uploadID, up.key, up.opts
	up.mu.Unlock()
	if id == "" {
		return up.put(ctx, key, opts)
	}
	if up.cur != nil && up.cur.size > 0 {
		part := up.cur
		up.cur = nil
		if err := up.send(part); err != nil {
			up.abort(ctx)
			return Result{}, err
		}
	} else if up.cur != nil {
		up.cur.release()
		up.cur = nil
	}
	up.running.Wait()
	if err := up.Err(); err != nil {
		up.abort(ctx)
		return Result{}, err
	}
	up.mu.Lock()
	parts := append([]s3client.CompletedPart(nil), up.parts...)
	up.mu.Unlock()
	etag, err := up.u.client.CompleteMultipartUpload(ctx, key, id, parts, opts)
	if errors.Is(err, s3client.ErrNoSuchUpload) {
		// An earlier attempt may have succeeded and its answer been lost:
		// the upload is gone then. Accept only the object we uploaded.
		etag, err = up.verify(ctx, key, parts, err)
	}
	if err != nil {
		up.logError(err, "completing the multipart upload failed", 0)
		up.abort(ctx)
		return Result{}, err
	}
	up.u.log.WithFields(up.fields()).WithField("parts", len(parts)).Debug("multipart upload completed")
	return Result{ETag: etag, Size: up.Size(), Parts: len(parts), Multipart: true}, nil
}

// put writes a file smaller than one part with one PutObject.
func (up *Upload) put(ctx context.Context, key string, opts s3client.PutOptions) (Result, error) {
	var body io.ReadSeeker = strings.NewReader("")
	var size int64
	if up.cur != nil {
		body, size = up.cur.reader(), up.cur.size
		defer func() { up.cur.release(); up.cur = nil }()
	}
	etag, err := up.u.client.Put(ctx, key, body, size, opts)
	if err != nil {
		up.fail(err)
		up.logError(err, "PutObject failed", 0)
		return Result{}, err
	}
	return Result{ETag: etag, Size: size}, nil
}

// verify checks, after NoSuchUpload, that key holds the object made of parts:
// its size and its multipart ETag (the MD5 of the parts' MD5s, "-N").
func (up *Upload) verify(ctx context.Context, key string, parts []s3client.CompletedPart, cause error) (string, error) {
	want, ok := multipartETag(parts)
	if !ok {
		return "", cause
	}
	info, err := up.u.client.Head(ctx, key)
	if err != nil {
		return "", fmt.Errorf("%w (and the object cannot be checked: %v)", cause, err)
	}
	if info.Size != up.Size() || info.ETag != want {
		return "", fmt.Errorf("%w: the object at %q (size %d, ETag %s) is not ours (size %d, ETag %s)", cause, key, info.Size, info.ETag, up.Size(), want)
	}
	up.u.log.WithFields(up.fields()).Info("CompleteMultipartUpload was retried after it succeeded; the object is verified")
	return info.ETag, nil
}

// multipartETag computes S3's ETag of an object made of parts. Part ETags
// that are not MD5s (SSE-KMS) cannot be combined: ok is false then.
func multipartETag(parts []s3client.CompletedPart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return "", false
		}
		h.Write(sum)
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(h.Sum(nil)), len(parts)), true
}

// Abort discards the upload and frees its buffers.
func (up *Upload) Abort(ctx context.Context) error {
	if up.done {
		return nil
	}
	up.done = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	up.fail(errors.New("aborted"))
	return up.abort(ctx)
}

// abort waits for parts in flight, frees the buffers and aborts the
// multipart upload on S3.
func (up *Upload) abort(ctx context.Context) error {
	if up.cur != nil {
		up.cur.release()
		up.cur = nil
	}
	up.running.Wait()
	up.mu.Lock()
	id, key := up.uploadID, up.key
	up.mu.Unlock()
	if id == "" {
		return nil
	}
	if err := up.u.client.AbortMultipartUpload(context.WithoutCancel(ctx), key, id); err != nil && !errors.Is(err, s3client.ErrNoSuchUpload) {
		up.logError(err, "aborting the upload failed; its parts are left behind", 0)
		return err
	}
	up.u.log.WithFields(up.fields()).Info("upload aborted")
	return nil
}
