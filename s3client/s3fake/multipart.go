package s3fake

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bucketfs/bucketfs/s3client"
)

// CreateMultipartUpload implements s3client.API. The upload's ID is unique
// for the life of the Fake; the object's metadata and Content-Type are taken
// from opts now, its IfNoneMatch only at completion.
func (f *Fake) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	const op = OpCreateMultipartUpload
	if err := checkEmpty(op, key, key); err != nil {
		return "", err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return "", err
	}
	id, err := f.createUpload(op, key, opts)
	if err := end(op, key, fault, err); err != nil {
		return "", err
	}
	return id, nil
}

func (f *Fake) createUpload(op, key string, opts s3client.PutOptions) (string, error) {
	if err := checkLength(op, key, key); err != nil {
		return "", err
	}
	if err := checkMetadata(op, key, opts.Metadata); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploadSeq++
	u := &upload{
		id:      fmt.Sprintf("fake-upload-%08d", f.uploadSeq),
		key:     key,
		seq:     f.uploadSeq,
		meta:    lowerKeys(opts.Metadata),
		headers: written(opts.Headers),
		tags:    cloneTags(opts.Tags),
		parts:   map[int32]part{},
	}
	f.uploads[u.id] = u
	return u.id, nil
}

// UploadPart implements s3client.API. The body is read from where it
// stands and must hold exactly size bytes; the part's ETag is its quoted
// MD5, and it has no CRC32C checksum. A part uploaded again under the same
// number replaces the earlier one.
func (f *Fake) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (s3client.CompletedPart, error) {
	const op = OpUploadPart
	if err := checkEmpty(op, key, key); err != nil {
		return s3client.CompletedPart{}, err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return s3client.CompletedPart{}, err
	}
	etag, err := f.uploadPart(op, key, uploadID, number, body, size)
	if err := end(op, key, fault, err); err != nil {
		return s3client.CompletedPart{}, err
	}
	return s3client.CompletedPart{Number: number, ETag: etag, Size: size}, nil
}

func (f *Fake) uploadPart(op, key, uploadID string, number int32, body io.ReadSeeker, size int64) (string, error) {
	if err := checkLength(op, key, key); err != nil {
		return "", err
	}
	if err := checkPartNumber(op, key, number); err != nil {
		return "", err
	}
	data, err := readBody(op, key, body, size, false)
	if err != nil {
		return "", err
	}
	p := part{data: data, md5: md5.Sum(data)}
	p.etag = quoteMD5(p.md5)
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(op, key, uploadID)
	if err != nil {
		return "", err
	}
	u.parts[number] = p
	return p.etag, nil
}

// UploadPartCopy implements s3client.API: bytes [first, last] of src become
// part number of the upload. A srcETag other than src's fails the copy with
// PreconditionFailed (412); a missing src is NoSuchKey (404); a range that
// is empty or not inside src is InvalidRange (416).
func (f *Fake) UploadPartCopy(ctx context.Context, src, srcETag, key, uploadID string, number int32, first, last int64) (s3client.CompletedPart, error) {
	const op = OpUploadPartCopy
	if err := checkEmpty(op, key, src, key); err != nil {
		return s3client.CompletedPart{}, err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return s3client.CompletedPart{}, err
	}
	etag, err := f.uploadPartCopy(op, src, srcETag, key, uploadID, number, first, last)
	if err := end(op, key, fault, err); err != nil {
		return s3client.CompletedPart{}, err
	}
	return s3client.CompletedPart{Number: number, ETag: etag, Size: last - first + 1}, nil
}

func (f *Fake) uploadPartCopy(op, src, srcETag, key, uploadID string, number int32, first, last int64) (string, error) {
	if err := checkLength(op, key, src, key); err != nil {
		return "", err
	}
	if err := checkPartNumber(op, key, number); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(op, key, uploadID)
	if err != nil {
		return "", err
	}
	s := f.objects[src]
	switch {
	case s == nil:
		return "", APIError(op, key, "NoSuchKey", 404)
	case srcETag != "" && srcETag != s.etag:
		return "", APIError(op, key, "PreconditionFailed", 412)
	case first < 0 || last < first || last >= int64(len(s.data)):
		return "", APIError(op, key, "InvalidRange", 416)
	}
	data := s.data[first : last+1 : last+1]
	p := part{data: data, md5: md5.Sum(data)}
	p.etag = quoteMD5(p.md5)
	u.parts[number] = p
	return p.etag, nil
}

// CompleteMultipartUpload implements s3client.API. The parts must be in
// ascending order of number (InvalidPartOrder), each with the ETag its
// upload returned, quotes included (InvalidPart), every one but the last at
// least MinPartSize (EntityTooSmall); with opts.IfNoneMatch, an existing
// key is PreconditionFailed (412). A refused completion leaves the upload
// as it was; a completed upload is gone, and its ID is NoSuchUpload (404)
// from then on. Parts uploaded but not listed are discarded.
func (f *Fake) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.CompletedPart, opts s3client.PutOptions) (string, error) {
	const op = OpCompleteMultipartUpload
	if err := checkEmpty(op, key, key); err != nil {
		return "", err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return "", err
	}
	etag, err := f.complete(op, key, uploadID, parts, opts)
	if err := end(op, key, fault, err); err != nil {
		return "", err
	}
	return etag, nil
}

func (f *Fake) complete(op, key, uploadID string, parts []s3client.CompletedPart, opts s3client.PutOptions) (string, error) {
	if err := checkLength(op, key, key); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(op, key, uploadID)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", APIError(op, key, "MalformedXML", 400)
	}
	for i := 1; i < len(parts); i++ {
		if parts[i].Number <= parts[i-1].Number {
			return "", APIError(op, key, "InvalidPartOrder", 400)
		}
	}
	size := 0
	for i, cp := range parts {
		p, ok := u.parts[cp.Number]
		if !ok || p.etag != cp.ETag {
			return "", APIError(op, key, "InvalidPart", 400)
		}
		if i < len(parts)-1 && len(p.data) < MinPartSize {
			return "", APIError(op, key, "EntityTooSmall", 400)
		}
		size += len(p.data)
	}
	if opts.IfNoneMatch && f.objects[key] != nil {
		return "", APIError(op, key, "PreconditionFailed", 412)
	}

	data := make([]byte, 0, size)
	sums := make([]byte, 0, len(parts)*md5.Size)
	for _, cp := range parts {
		p := u.parts[cp.Number]
		data = append(data, p.data...)
		sums = append(sums, p.md5[:]...)
	}
	sumOfSums := md5.Sum(sums)
	o := &object{
		data:         data,
		md5:          md5.Sum(data),
		etag:         fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sumOfSums[:]), len(parts)),
		lastModified: f.now(),
		meta:         u.meta,
		headers:      u.headers,
		tags:         u.tags,
	}
	f.store(key, o)
	delete(f.uploads, uploadID)
	return o.etag, nil
}

// AbortMultipartUpload implements s3client.API: the upload and its parts
// are gone, and its ID is NoSuchUpload (404) from then on.
func (f *Fake) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	const op = OpAbortMultipartUpload
	if err := checkEmpty(op, key, key); err != nil {
		return err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return err
	}
	err = checkLength(op, key, key)
	if err == nil {
		f.mu.Lock()
		if _, err = f.upload(op, key, uploadID); err == nil {
			delete(f.uploads, uploadID)
		}
		f.mu.Unlock()
	}
	return end(op, key, fault, err)
}

// ListMultipartUploads implements s3client.API: the IDs of the uploads in
// progress whose key starts with prefix, by key, then oldest first.
func (f *Fake) ListMultipartUploads(ctx context.Context, prefix string) ([]string, error) {
	const op = OpListMultipartUploads
	fault, err := f.begin(ctx, op, prefix)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	var ups []*upload
	for _, u := range f.uploads {
		if strings.HasPrefix(u.key, prefix) {
			ups = append(ups, u)
		}
	}
	f.mu.Unlock()
	if err := end(op, prefix, fault, nil); err != nil {
		return nil, err
	}
	slices.SortFunc(ups, func(a, b *upload) int {
		return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.seq, b.seq))
	})
	var ids []string
	for _, u := range ups {
		ids = append(ids, u.id)
	}
	return ids, nil
}

// upload returns the upload of uploadID, which must be in progress for key
// (S3 scopes an upload ID to its key). Call with f.mu held.
func (f *Fake) upload(op, key, uploadID string) (*upload, error) {
	u := f.uploads[uploadID]
	if u == nil || u.key != key {
		return nil, APIError(op, key, "NoSuchUpload", 404)
	}
	return u, nil
}

// checkPartNumber refuses a part number outside 1..MaxParts.
func checkPartNumber(op, key string, number int32) error {
	if number < 1 || number > MaxParts {
		e := APIError(op, key, "InvalidArgument", 400).(*s3client.Error)
		e.Message = "Part number must be an integer between 1 and 10000, inclusive"
		return e
	}
	return nil
}
