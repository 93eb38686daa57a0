package uploader

import (
	"context"
	"fmt"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
)

// Base is an existing object an upload starts from (see Upload.Seed).
type Base struct {
	Key  string // the object's key
	ETag string // the version to start from, as S3 sent it; S3 refuses a changed object
	Size int64  // the object's size in bytes
}

// Seed starts the upload from base, so that the object it completes is
// base's bytes followed by the bytes written: a completed file reopened
// for appending keeps its bytes without sending them again. It must be
// called before the first Write.
//
// A base of at least MinPartSize is copied on the server: Seed creates the
// multipart upload and copies base into as few parts as S3 allows (5 GiB
// each), conditioned on base.ETag; written parts follow them. A smaller
// base is read (conditioned likewise) into the first part's buffer,
// reserving memory as a write does, so a small result is still one
// PutObject. A failure fails the upload (Err, and Complete, return it;
// nothing is published; what Seed created on S3 is aborted) and is
// returned wrapped with the key and S3's error code; a changed base is
// s3client.ErrPreconditionFailed.
func (up *Upload) Seed(ctx context.Context, base Base) error {
	up.mu.Lock()
	started := up.done || up.err != nil || up.uploadID != ""
	key := up.key
	up.mu.Unlock()
	if started || up.cur != nil || up.nextNumber != 1 || up.Size() != 0 {
		return fmt.Errorf("seeding %q from %q: the upload has started", key, base.Key)
	}
	var err error
	switch {
	case base.Size < 0 || base.Size > MaxObjectSize:
		err = fmt.Errorf("base size %d is outside 0 to 5 TiB", base.Size)
	case base.Size == 0:
		return nil
	case base.Size < MinPartSize:
		err = up.seedBuffer(ctx, base)
	default:
		err = up.seedCopy(ctx, base)
	}
	if err != nil {
		err = fmt.Errorf("seeding %q from %q (ETag %s, S3 code %q): %w", key, base.Key, base.ETag, s3client.Code(err), err)
		up.fail(err)
		up.logError(err, "Seed", "seeding the upload from an existing object failed", 0)
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		up.abort(actx)
		return err
	}
	up.size.Store(base.Size)
	return nil
}

// seedBuffer reads a base smaller than a part into the first part.
func (up *Upload) seedBuffer(ctx context.Context, base Base) error {
	part, err := up.newPart()
	if err != nil {
		return err
	}
	need := part.growth(base.Size)
	if err := up.reserve(ctx, need, "seed"); err != nil {
		return err
	}
	// part.release gives back what its chunks took; the rest goes here.
	unused := need
	defer func() {
		if unused != 0 {
			up.u.memory.release(unused, nil)
		}
	}()
	if part.onDisk {
		if err := up.openSpill(part); err != nil {
			return err
		}
	}
	body, err := up.u.client.GetRange(ctx, base.Key, 0, base.Size, base.ETag)
	if err != nil {
		part.release()
		return err
	}
	defer body.Close()
	err = part.readFrom(body, base.Size)
	unused -= part.reserved
	if err != nil {
		part.release()
		return fmt.Errorf("reading %d bytes of %q: %w", base.Size, base.Key, err)
	}
	up.cur = part
	up.nextNumber++
	return nil
}

// seedCopy creates the multipart upload and copies base into its first
// parts (baseRanges).
func (up *Upload) seedCopy(ctx context.Context, base Base) error {
	id, err := up.createMultipart(ctx, true)
	if err != nil {
		return err
	}
	key := up.Key()
	ranges := baseRanges(base.Size)
	for i, r := range ranges {
		select {
		case up.u.inFlight <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		cp, err := up.u.client.UploadPartCopy(ctx, base.Key, base.ETag, key, id, int32(i+1), r[0], r[1])
		<-up.u.inFlight
		if err != nil {
			return fmt.Errorf("copying bytes %d-%d into part %d: %w", r[0], r[1], i+1, err)
		}
		up.record(cp, r[1]-r[0]+1, true)
	}
	up.nextNumber = int32(len(ranges)) + 1
	return nil
}

// baseRanges cuts a base of size bytes (at least MinPartSize) into the
// byte ranges [first, last] of as few parts as S3 allows, of equal size:
// one part up to 5 GiB, else parts between 2.5 and 5 GiB.
func baseRanges(size int64) [][2]int64 {
	n := (size + MaxPartSize - 1) / MaxPartSize
	ranges := make([][2]int64, n)
	for i := range n {
		ranges[i] = [2]int64{size * i / n, size*(i+1)/n - 1}
	}
	return ranges
}
