// Package uploader streams one object's bytes to S3 while they are being
// written: a multipart upload whose parts are sent in the background, or one
// PutObject for a file smaller than a part. An upload may start from an
// existing object (Seed), so that a completed file can be appended to.
// Compose (compose.go) writes a whole object at once from a Layout: the
// ranges it shares with an existing object are copied on the server, the
// others read from a ReaderAt; it commits a file staged on local disk.
//
// Ownership and bounds:
//   - An Uploader is shared by every file of a mount. It owns the memory
//     limiter (one budget for all part buffers, memory_limiter.go) and the
//     semaphore bounding parts in flight over all uploads.
//   - An Upload is owned by one file handle: Seed, Write, Complete and Abort
//     are called by one goroutine at a time. Each full part is handed to a
//     goroutine of its own that uploads it and ends; Complete and Abort wait
//     for them.
//   - Memory grows with the data, not with the files open: a part is a list
//     of chunks, and the budget is reserved chunk by chunk as it fills. An
//     upload's first part starts with a 4 KiB chunk and doubles up to 1 MiB
//     (a 1-byte file holds 4 KiB); later parts take 1 MiB chunks, which are
//     pooled. Reserved and pooled bytes together stay within the budget.
//   - A write reserves all the memory it needs before it copies a byte, so
//     it is taken whole or not at all: when its context ends while it
//     waits, or when no memory was released for Config.MemoryWait (writers
//     holding half-filled parts waiting for each other, ErrNoMemory), it
//     returns having taken nothing, and a retry at the same offset works.
//     A full part keeps its reservation until it is uploaded.
//   - Parts after the first that are larger than a quarter of the budget
//     (the schedule in part_size.go reaches them above about 56 GiB) are
//     staged in a spill file instead: memory stays bounded, the part can
//     still be retried, and a writer never waits for memory its own full
//     part holds. The first part is always in memory (the budget holds at
//     least one part).
//   - A part's bytes are kept until its upload succeeded: the SDK retries
//     throttling, 5xx, timeouts and resets from the same buffer.
//   - After a permanent failure nothing is published: writes fail, Complete
//     returns the failure and aborts what exists on S3.
//   - Compose runs on its caller's goroutine; each of its parts runs on a
//     goroutine of its own, started only once it holds a token of the
//     semaphore, and Compose returns after they all ended. It reserves no
//     part memory: the SDK reads each part from the caller's ReaderAt.
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
	// ErrNoMemory is a write that found the memory budget spent and saw no
	// memory released for Config.MemoryWait: the writers holding it are
	// waiting for each other, each with a half-filled part. The write took
	// no byte and the upload stays usable; the filesystem answers ENOBUFS.
	ErrNoMemory = errors.New("upload memory spent and none released")
)

// maxSegment bounds the bytes a write reserves at once: a longer write is
// taken in segments, each whole or not at all. At most one part long, a
// segment spans at most two parts, and any FUSE write (1 MiB at most) is
// one segment.
const maxSegment = MinPartSize

// Uploader creates the uploads of one mount and bounds them together.
type Uploader struct {
	client   s3client.API
	cfg      Config
	memory   *memoryLimiter
	inFlight chan struct{} // one token per part being uploaded or copied
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
	if cfg.MemoryWait == 0 {
		cfg.MemoryWait = DefaultMemoryWait
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
	case cfg.MemoryWait < 0:
		return nil, fmt.Errorf("upload memory wait %v is negative", cfg.MemoryWait)
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

// maxMemoryPart is the largest part after the first held in memory;
// larger ones spill. A quarter of the budget lets several parts be in
// flight, and a full part plus the next write's chunks always fit, so a
// writer never waits for memory that only its own part holds.
func (u *Uploader) maxMemoryPart() int64 { return u.cfg.MemoryLimit / 4 }

// Result describes a completed upload.
type Result struct {
	ETag      string
	Size      int64
	Parts     int  // parts uploaded or copied; 0 for a PutObject or a CopyObject
	Multipart bool // false when one PutObject (or Compose's one CopyObject) wrote the object
	// Sent counts the bytes uploaded (PutObject, UploadPart), each once
	// however often the SDK retried it; Copied the bytes copied on the
	// server (UploadPartCopy, CopyObject). Sent+Copied is Size.
	Sent, Copied int64
}

// Upload is one object's streaming upload.
type Upload struct {
	u *Uploader

	// Owned by the writing goroutine (the caller serialises Seed, Write,
	// Complete and Abort).
	cur        *partBuffer // the part being filled
	nextNumber int32       // number of the next part to start

	size atomic.Int64 // bytes accepted; read from any goroutine

	// mu guards the fields below. No other lock is taken while it is held,
	// and it is never held across an S3 request or a wait for memory.
	mu       sync.Mutex
	key      string              // destination; fixed once the upload reached S3
	opts     s3client.PutOptions // metadata etc.; fixed likewise
	uploadID string              // set by CreateMultipartUpload
	// copied says the multipart upload holds server-side copies (Seed): it
	// was created without a checksum algorithm, so Complete names none.
	copied bool
	parts  []s3client.CompletedPart // by part number - 1
	err    error                    // the first permanent failure
	done   bool                     // Complete or Abort ran
	// sent and copiedBytes count the bytes of the recorded parts that
	// were uploaded and copied (Result.Sent, Result.Copied).
	sent, copiedBytes int64

	running sync.WaitGroup // part uploads in flight: Add by the writer, Wait by Complete and Abort
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

// Size returns the bytes accepted so far, a seeded base included.
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
	// The condition (O_EXCL) was about the name the file was created
	// under; a rename replaces whatever the new name holds.
	up.opts.IfNoneMatch = false
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

// writable returns why the upload takes no more bytes, if it does not.
func (up *Upload) writable() error {
	up.mu.Lock()
	defer up.mu.Unlock()
	switch {
	case up.done:
		return fmt.Errorf("%w: write to %q after completion", ErrUploadFailed, up.key)
	case up.err != nil:
		return fmt.Errorf("%w: %w", ErrUploadFailed, up.err)
	}
	return nil
}

// Write appends p. It reserves the memory p needs before taking any byte
// of it, so a write of up to 5 MiB (any FUSE write) is taken whole or not
// at all; a longer p is taken in 5 MiB segments, and the count says how
// many bytes were. While the budget is spent Write waits; it returns
// having taken nothing when ctx ends (an error wrapping ctx.Err()) or when
// no memory was released for Config.MemoryWait (ErrNoMemory). After a part
// failed for good it fails at once, wrapping ErrUploadFailed.
func (up *Upload) Write(ctx context.Context, p []byte) (int, error) {
	if err := up.writable(); err != nil {
		return 0, err
	}
	if up.Size()+int64(len(p)) > MaxObjectSize {
		return 0, ErrTooLarge
	}
	written := 0
	for written < len(p) {
		n, err := up.writeSegment(ctx, p[written:min(len(p), written+maxSegment)])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// writeSegment takes p (at most maxSegment bytes) whole, or nothing when
// memory cannot be had: the rest of the current part, then a new part.
func (up *Upload) writeSegment(ctx context.Context, p []byte) (int, error) {
	cur, intoCur := up.cur, 0
	var need int64
	if cur != nil {
		intoCur = int(min(int64(len(p)), cur.capacity-cur.size))
		need = cur.growth(int64(intoCur))
	}
	var next *partBuffer
	if len(p) > intoCur {
		var err error
		if next, err = up.newPart(); err != nil {
			return 0, err
		}
		need += next.growth(int64(len(p) - intoCur))
	}
	if err := up.reserve(ctx, need, "write"); err != nil {
		return 0, err
	}
	// Every byte of p has room now; what is not used (a failure midway)
	// goes back.
	unused := need
	defer func() {
		if unused != 0 {
			up.u.memory.release(unused, nil)
		}
	}()
	if next != nil && next.onDisk {
		if err := up.openSpill(next); err != nil {
			return 0, err // nothing taken; the upload stays as it was
		}
	}
	written := 0
	if intoCur > 0 {
		n, err := up.fill(ctx, cur, p[:intoCur], &unused)
		written += n
		if err != nil {
			if next != nil {
				next.release()
			}
			return written, err
		}
	}
	if next == nil {
		return written, nil
	}
	up.cur = next
	up.nextNumber++
	n, err := up.fill(ctx, next, p[written:], &unused)
	return written + n, err
}

// fill writes p into part, whose room and memory the caller ensured, and
// sends the part once it is full.
func (up *Upload) fill(ctx context.Context, part *partBuffer, p []byte, unused *int64) (int, error) {
	before := part.reserved
	n, err := part.write(p)
	*unused -= part.reserved - before
	up.size.Add(int64(n))
	if err != nil {
		up.fail(err)
		return n, fmt.Errorf("%w: %w", ErrUploadFailed, err)
	}
	if part.full() {
		up.cur = nil
		if err := up.send(ctx, part); err != nil {
			return n, fmt.Errorf("%w: %w", ErrUploadFailed, err)
		}
	}
	return n, nil
}

// reserve takes n bytes of the memory budget for op, waiting as the
// package comment says.
func (up *Upload) reserve(ctx context.Context, n int64, op string) error {
	err := up.u.memory.reserve(ctx, n, up.u.cfg.MemoryWait)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoMemory):
		up.u.log.WithFields(up.fields()).WithFields(logrus.Fields{"op": op, "bytes": n}).
			Warnf("no upload memory released for %v; the writers holding it wait for each other", up.u.cfg.MemoryWait)
		return fmt.Errorf("%w: %d bytes for %q, none released in %v", ErrNoMemory, n, up.Key(), up.u.cfg.MemoryWait)
	}
	return fmt.Errorf("%s %q: %w", op, up.Key(), err)
}

// newPart returns the buffer of the next part, without memory or a spill
// file yet; the caller numbers it in when it uses it.
func (up *Upload) newPart() (*partBuffer, error) {
	if up.nextNumber > MaxParts {
		return nil, ErrTooLarge
	}
	size := partSize(up.u.cfg.PartSize, int(up.nextNumber))
	b := &partBuffer{number: up.nextNumber, capacity: size, limiter: up.u.memory}
	if up.nextNumber == 1 {
		// The first part may be all the file has: it grows from small, and
		// it is held in memory even when larger than maxMemoryPart (New
		// checked that it fits the budget): no part of its own upload holds
		// memory before it, so a lone writer never waits for itself.
		b.firstChunk = firstChunkSize
	} else {
		b.onDisk = size > up.u.maxMemoryPart()
	}
	return b, nil
}

// openSpill creates the spill file of a part staged on disk.
func (up *Upload) openSpill(b *partBuffer) error {
	bound := up.u.cfg.SpillBound
	if bound != nil {
		if err := bound.Charge(b.capacity); err != nil {
			return fmt.Errorf("spilling part %d of %q (%d bytes): %w", b.number, up.Key(), b.capacity, err)
		}
	}
	f, err := os.CreateTemp(up.u.cfg.SpillDir, "bucketfs-part-*")
	if err != nil {
		if bound != nil {
			bound.Release(b.capacity)
		}
		return fmt.Errorf("creating a spill file for part %d of %q: %w", b.number, up.Key(), err)
	}
	b.spill, b.bound = f, bound
	return nil
}

// createMultipart creates the multipart upload unless it exists, and
// returns its ID. copied asks for an upload that takes server-side copies.
func (up *Upload) createMultipart(ctx context.Context, copied bool) (string, error) {
	up.mu.Lock()
	id, key, opts := up.uploadID, up.key, up.opts
	up.mu.Unlock()
	if id != "" {
		return id, nil
	}
	opts.CopiedParts = opts.CopiedParts || copied
	id, err := up.u.client.CreateMultipartUpload(ctx, key, opts)
	if err != nil {
		up.fail(err)
		up.logError(err, "CreateMultipartUpload", "creating the multipart upload failed", 0)
		return "", err
	}
	up.mu.Lock()
	up.uploadID, up.copied = id, opts.CopiedParts
	up.mu.Unlock()
	up.u.log.WithFields(up.fields()).WithField("op", "CreateMultipartUpload").Debug("multipart upload created")
	return id, nil
}

// send starts uploading a full part in the background, creating the
// multipart upload first if needed. It waits for a concurrency token. The
// part's requests run on a context that FUSE interrupts do not cancel.
func (up *Upload) send(ctx context.Context, part *partBuffer) error {
	ctx = context.WithoutCancel(ctx)
	id, err := up.createMultipart(ctx, false)
	if err != nil {
		part.release()
		return err
	}
	up.u.inFlight <- struct{}{}
	up.running.Add(1)
	go up.uploadPart(ctx, up.Key(), id, part)
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
		up.logError(err, "UploadPart", "part upload failed", part.number)
		return
	}
	up.record(cp, part.size, false)
}

// record keeps a finished part of size bytes for CompleteMultipartUpload;
// copied says it was copied on the server rather than uploaded.
func (up *Upload) record(cp s3client.CompletedPart, size int64, copied bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	for len(up.parts) < int(cp.Number) {
		up.parts = append(up.parts, s3client.CompletedPart{})
	}
	up.parts[cp.Number-1] = cp
	if copied {
		up.copiedBytes += size
	} else {
		up.sent += size
	}
}

func (up *Upload) logError(err error, op, msg string, part int32) {
	up.u.logError(up.fields(), err, op, msg, part)
}

// logError logs a failed S3 request of op with the fields f (key,
// upload_id), the S3 error code and request ID, and the part number if any.
func (u *Uploader) logError(f logrus.Fields, err error, op, msg string, part int32) {
	f["op"] = op
	f["code"] = s3client.Code(err)
	f["request_id"] = s3client.RequestID(err)
	if part > 0 {
		f["part"] = part
	}
	u.log.WithFields(f).WithError(err).Error(msg)
}

// Complete sends what is left and makes the object: one PutObject when no
// part was sent yet, else the last part and CompleteMultipartUpload with the
// parts in ascending order. It runs on a context of its own (FUSE interrupts
// cancel request contexts) bounded by Config.CompleteTimeout. An upload that
// failed publishes nothing: Complete returns its permanent error and aborts
// what exists on S3, so no parts are left behind.
func (up *Upload) Complete(ctx context.Context) (Result, error) {
	up.mu.Lock()
	if up.done {
		up.mu.Unlock()
		return Result{}, fmt.Errorf("%w: %q completed twice", ErrUploadFailed, up.Key())
	}
	up.done = true
	id, key, opts, failed := up.uploadID, up.key, up.opts, up.err
	up.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), up.u.cfg.CompleteTimeout)
	defer cancel()

	if failed != nil {
		up.abort(ctx)
		return Result{}, failed
	}
	if id == "" {
		return up.put(ctx, key, opts)
	}
	if part := up.cur; part != nil {
		up.cur = nil
		if part.size == 0 {
			part.release()
		} else if err := up.send(ctx, part); err != nil {
			up.abort(ctx)
			return Result{}, err
		}
	}
	up.running.Wait()
	if err := up.Err(); err != nil {
		up.abort(ctx)
		return Result{}, err
	}
	up.mu.Lock()
	parts := append([]s3client.CompletedPart(nil), up.parts...)
	copied, sent, copiedBytes := up.copied, up.sent, up.copiedBytes
	up.mu.Unlock()
	if copied {
		// The upload was created without a checksum algorithm: its parts
		// were verified when uploaded, but Complete must name no checksum.
		for i := range parts {
			parts[i].ChecksumCRC32C = ""
		}
	}
	etag, err := up.u.client.CompleteMultipartUpload(ctx, key, id, parts, opts)
	if errors.Is(err, s3client.ErrNoSuchUpload) {
		// An earlier attempt may have succeeded and its answer been lost:
		// the upload is gone then. Accept only the object we uploaded.
		etag, err = up.u.verify(ctx, key, up.Size(), parts, err, up.fields())
	}
	if err != nil {
		up.fail(err)
		up.logError(err, "CompleteMultipartUpload", "completing the multipart upload failed", 0)
		up.abort(ctx)
		return Result{}, err
	}
	up.u.log.WithFields(up.fields()).WithFields(logrus.Fields{"op": "CompleteMultipartUpload", "parts": len(parts)}).Debug("multipart upload completed")
	return Result{ETag: etag, Size: up.Size(), Parts: len(parts), Multipart: true, Sent: sent, Copied: copiedBytes}, nil
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
		up.logError(err, "PutObject", "PutObject failed", 0)
		return Result{}, err
	}
	return Result{ETag: etag, Size: size, Sent: size}, nil
}

// verify checks, after NoSuchUpload, that key holds the object of size
// bytes made of parts: its size and its multipart ETag (the MD5 of the
// parts' MD5s, "-N"). f are the upload's log fields.
func (u *Uploader) verify(ctx context.Context, key string, size int64, parts []s3client.CompletedPart, cause error, f logrus.Fields) (string, error) {
	want, ok := multipartETag(parts)
	if !ok {
		return "", cause
	}
	info, err := u.client.Head(ctx, key)
	if err != nil {
		return "", fmt.Errorf("%w (and the object cannot be checked: %v)", cause, err)
	}
	if info.Size != size || info.ETag != want {
		return "", fmt.Errorf("%w: the object at %q (size %d, ETag %s) is not ours (size %d, ETag %s)", cause, key, info.Size, info.ETag, size, want)
	}
	u.log.WithFields(f).Info("CompleteMultipartUpload was retried after it succeeded; the object is verified")
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
	up.mu.Lock()
	if up.done {
		up.mu.Unlock()
		return nil
	}
	up.done = true
	if up.err == nil {
		up.err = errors.New("aborted")
	}
	up.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return up.abort(ctx)
}

// abort waits for parts in flight, frees the buffers and aborts the
// multipart upload on S3, if there is one.
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
		up.logError(err, "AbortMultipartUpload", "aborting the upload failed; its parts are left behind", 0)
		return fmt.Errorf("aborting the upload of %q (S3 code %s): %w", key, s3client.Code(err), err)
	}
	up.mu.Lock()
	up.uploadID = "" // gone: a later abort has nothing to do
	up.mu.Unlock()
	up.u.log.WithFields(logrus.Fields{"key": key, "upload_id": id, "op": "AbortMultipartUpload"}).Info("upload aborted")
	return nil
}

// MemoryInUse returns the bytes of part memory reserved now.
func (u *Uploader) MemoryInUse() int64 { return u.memory.reserved() }

// MemoryLimit returns the part memory budget (Config.MemoryLimit).
func (u *Uploader) MemoryLimit() int64 { return u.cfg.MemoryLimit }

// PartsInFlight returns the parts being uploaded or copied now.
func (u *Uploader) PartsInFlight() int { return len(u.inFlight) }
