package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
)

// Range is the byte range [Off, End) of an object.
type Range struct{ Off, End int64 }

// Layout describes an object to compose.
type Layout struct {
	Size int64       // the new object's size
	Data io.ReaderAt // reads any range of the new object (the stage fetches what it lacks; it may be slow)
	Base Base        // an existing object (Key, ETag, Size) the new one shares bytes with; zero: none
	Same []Range     // ascending, disjoint ranges where the new object equals Base at the same offsets (within Base.Size and Size)
}

// Compose writes the object described by l at key and returns its version.
//
// The bytes l.Same shares with l.Base are copied on the server
// (UploadPartCopy, conditioned on l.Base.ETag), the others read from
// l.Data and uploaded, in the parts planCompose chooses: appending 1 MiB
// to a 1 GiB object sends 1 MiB. An object under 5 MiB, or one with
// nothing worth copying that fits one part, is one PutObject of l.Data;
// one that is l.Base unchanged is one CopyObject (not with IfNoneMatch).
// Data is read through io.SectionReaders, never buffered here: memory does
// not grow with the object, and the SDK can seek back to retry a part.
//
// The parts run concurrently, sharing the Uploader's bound on parts in
// flight with the streaming uploads (Config.Concurrency). The first
// failure stops the others; the multipart upload is then aborted, on a
// context of its own if ctx ended, and the error returned, wrapped with
// the key, the part and S3's error code: a base changed since its ETag
// was taken is s3client.ErrPreconditionFailed. Nothing is published
// unless every part succeeded. ctx cancels the parts; once they are all
// done, CompleteMultipartUpload runs on a context of its own bounded by
// Config.CompleteTimeout, so that its outcome is known, and a retried
// Complete that meets NoSuchUpload accepts the object only if it is the
// one composed (as Upload.Complete does).
//
// The copies make the result consistent with l.Base.ETag, not exclusive:
// a change to Base after the last copy and before Complete is replaced by
// the composed object, as a PutObject would replace it.
func (u *Uploader) Compose(ctx context.Context, key string, opts s3client.PutOptions, l Layout) (Result, error) {
	if l.Data == nil && l.Size > 0 {
		return Result{}, fmt.Errorf("composing %q: %w: no data", key, errLayout)
	}
	plan, err := planCompose(l, u.cfg.PartSize)
	if err != nil {
		return Result{}, fmt.Errorf("composing %q: %w", key, err)
	}
	if copiesWhole(l) && !opts.IfNoneMatch {
		return u.composeCopy(ctx, key, opts, l)
	}
	if plan.put() {
		return u.composePut(ctx, key, opts, l)
	}
	return u.composeMultipart(ctx, key, opts, l, plan.parts)
}

// holdToken takes one of the Uploader's concurrency tokens (Config.
// Concurrency, shared with the streaming uploads' parts) for a request
// that writes a whole object; the caller gives it back (<-u.inFlight).
func (u *Uploader) holdToken(ctx context.Context, key string) error {
	select {
	case u.inFlight <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("composing %q: %w", key, ctx.Err())
	}
}

// composePut writes the whole object with one PutObject, holding a
// concurrency token like a part.
func (u *Uploader) composePut(ctx context.Context, key string, opts s3client.PutOptions, l Layout) (Result, error) {
	if err := u.holdToken(ctx, key); err != nil {
		return Result{}, err
	}
	defer func() { <-u.inFlight }()
	var body io.ReadSeeker = strings.NewReader("")
	if l.Size > 0 {
		body = io.NewSectionReader(l.Data, 0, l.Size)
	}
	etag, err := u.client.Put(ctx, key, body, l.Size, opts)
	if err != nil {
		u.logError(logrus.Fields{"key": key}, err, "PutObject", "composing the object failed", 0)
		return Result{}, fmt.Errorf("composing %q in one PutObject of %d bytes (S3 code %q): %w", key, l.Size, s3client.Code(err), err)
	}
	u.log.WithFields(logrus.Fields{"key": key, "op": "PutObject", "sent": l.Size}).Debug("object composed")
	return Result{ETag: etag, Size: l.Size, Sent: l.Size}, nil
}

// copiesWhole says whether l is its base unchanged (a file copied whole, or
// staged and not changed): one CopyObject, up to 5 GiB.
func copiesWhole(l Layout) bool {
	runs := mergeRuns(l.Same)
	return l.Size > 0 && l.Size <= MaxPartSize && l.Base.ETag != "" && l.Base.Size == l.Size &&
		len(runs) == 1 && runs[0] == Range{Off: 0, End: l.Size}
}

// composeCopy writes a layout that is its base unchanged with one
// CopyObject, conditioned on the base's ETag, holding a concurrency token
// like a part. The copy gets opts' metadata and headers and keeps the
// base's tags. Not with opts.IfNoneMatch: not every S3 store honours
// CopyObject's If-None-Match (MinIO ignores it); the multipart upload's
// Complete carries it instead.
func (u *Uploader) composeCopy(ctx context.Context, key string, opts s3client.PutOptions, l Layout) (Result, error) {
	if err := u.holdToken(ctx, key); err != nil {
		return Result{}, err
	}
	defer func() { <-u.inFlight }()
	meta := opts.Metadata
	if meta == nil {
		meta = map[string]string{} // REPLACE: the new object's, not the base's
	}
	headers := opts.Headers
	etag, err := u.client.Copy(ctx, l.Base.Key, key, s3client.CopyOptions{ReplaceMetadata: meta, Headers: &headers, SourceETag: l.Base.ETag})
	if err != nil {
		u.logError(logrus.Fields{"key": key, "source": l.Base.Key}, err, "CopyObject", "composing the object failed", 0)
		return Result{}, fmt.Errorf("composing %q as a copy of %q (ETag %s, S3 code %q): %w", key, l.Base.Key, l.Base.ETag, s3client.Code(err), err)
	}
	u.log.WithFields(logrus.Fields{"key": key, "op": "CopyObject", "source": l.Base.Key, "copied": l.Size}).Debug("object composed")
	return Result{ETag: etag, Size: l.Size, Copied: l.Size}, nil
}

// composeMultipart creates a multipart upload, fills it with parts and
// completes it; any failure aborts it.
func (u *Uploader) composeMultipart(ctx context.Context, key string, opts s3client.PutOptions, l Layout, plan []composePart) (Result, error) {
	res := Result{Size: l.Size, Parts: len(plan), Multipart: true}
	for _, p := range plan {
		if p.copied {
			res.Copied += p.size()
		} else {
			res.Sent += p.size()
		}
	}
	// An upload that receives copies names no checksum algorithm (MinIO
	// refuses copies into a CRC32C upload; see PutOptions.CopiedParts).
	opts.CopiedParts = opts.CopiedParts || res.Copied > 0
	id, err := u.client.CreateMultipartUpload(ctx, key, opts)
	if err != nil {
		u.logError(logrus.Fields{"key": key}, err, "CreateMultipartUpload", "creating the upload of a composed object failed", 0)
		return Result{}, fmt.Errorf("composing %q: creating the multipart upload (S3 code %q): %w", key, s3client.Code(err), err)
	}
	fields := func() logrus.Fields { return logrus.Fields{"key": key, "upload_id": id} }
	u.log.WithFields(fields()).WithFields(logrus.Fields{"op": "CreateMultipartUpload", "parts": len(plan), "sent": res.Sent, "copied": res.Copied}).
		Debug("composing an object")

	parts, err := u.composeParts(ctx, key, id, l, plan)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("composing %q: %w", key, ctx.Err())
	}
	if err != nil {
		u.abortComposed(ctx, key, id)
		return Result{}, err
	}
	if opts.CopiedParts {
		// The upload has no checksum algorithm: Complete must name none.
		for i := range parts {
			parts[i].ChecksumCRC32C = ""
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.cfg.CompleteTimeout)
	defer cancel()
	etag, err := u.client.CompleteMultipartUpload(cctx, key, id, parts, opts)
	if errors.Is(err, s3client.ErrNoSuchUpload) {
		// An earlier attempt may have succeeded and its answer been lost.
		etag, err = u.verify(cctx, key, l.Size, parts, err, fields())
	}
	if err != nil {
		u.logError(fields(), err, "CompleteMultipartUpload", "completing the upload of a composed object failed", 0)
		u.abortComposed(ctx, key, id)
		return Result{}, fmt.Errorf("composing %q: completing the multipart upload (S3 code %q): %w", key, s3client.Code(err), err)
	}
	u.log.WithFields(fields()).WithFields(logrus.Fields{"op": "CompleteMultipartUpload", "parts": len(parts)}).Debug("object composed")
	res.ETag = etag
	return res, nil
}

// composeParts runs the parts of plan into upload id, each with a
// concurrency token of the Uploader, in order of their numbers, and
// returns them for CompleteMultipartUpload. The first failure cancels the
// parts in flight and starts no more; composeParts returns it once every
// part it started has ended.
func (u *Uploader) composeParts(parent context.Context, key, id string, l Layout, plan []composePart) ([]s3client.CompletedPart, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	done := make([]s3client.CompletedPart, len(plan)) // each part's goroutine writes its own element
	var running sync.WaitGroup
dispatch:
	for i, p := range plan {
		select {
		case u.inFlight <- struct{}{}:
		case <-ctx.Done():
			break dispatch
		}
		if ctx.Err() != nil {
			// Both were ready and select took the token.
			<-u.inFlight
			break
		}
		running.Add(1)
		go func() {
			defer running.Done()
			defer func() { <-u.inFlight }()
			cp, err := u.composePart(ctx, key, id, int32(i+1), p, l)
			if err != nil {
				cancel(err) // only the first cause is kept
				return
			}
			done[i] = cp
		}()
	}
	running.Wait()
	err := context.Cause(ctx)
	if err != nil && err == context.Cause(parent) {
		err = fmt.Errorf("composing %q: %w", key, err) // the caller gave up first
	}
	if err != nil {
		return nil, err
	}
	return done, nil
}

// composePart copies or uploads part number of upload id.
func (u *Uploader) composePart(ctx context.Context, key, id string, number int32, p composePart, l Layout) (s3client.CompletedPart, error) {
	var (
		cp  s3client.CompletedPart
		err error
		op  = "UploadPart"
	)
	if p.copied {
		op = "UploadPartCopy"
		cp, err = u.client.UploadPartCopy(ctx, l.Base.Key, l.Base.ETag, key, id, number, p.off, p.end-1)
	} else {
		cp, err = u.client.UploadPart(ctx, key, id, number, io.NewSectionReader(l.Data, p.off, p.size()), p.size())
	}
	if err != nil {
		if ctx.Err() == nil { // else another part failed first, or the caller gave up
			u.logError(logrus.Fields{"key": key, "upload_id": id}, err, op, "a part of a composed object failed", number)
		}
		what := fmt.Sprintf("uploading bytes %d-%d", p.off, p.end-1)
		if p.copied {
			what = fmt.Sprintf("copying bytes %d-%d of %q (ETag %s)", p.off, p.end-1, l.Base.Key, l.Base.ETag)
		}
		return cp, fmt.Errorf("composing %q: %s into part %d (S3 code %q): %w", key, what, number, s3client.Code(err), err)
	}
	return cp, nil
}

// abortComposed aborts upload id of key, on a context of its own: ctx may
// be the one that ended. A failure is logged: the parts are left behind
// for the bucket's lifecycle rule or bucketfs cleanup.
func (u *Uploader) abortComposed(ctx context.Context, key, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	f := logrus.Fields{"key": key, "upload_id": id}
	if err := u.client.AbortMultipartUpload(actx, key, id); err != nil && !errors.Is(err, s3client.ErrNoSuchUpload) {
		u.logError(f, err, "AbortMultipartUpload", "aborting the upload of a composed object failed; its parts are left behind", 0)
		return
	}
	f["op"] = "AbortMultipartUpload"
	u.log.WithFields(f).Info("upload of a composed object aborted")
}
