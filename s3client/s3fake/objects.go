package s3fake

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/bucketfs/bucketfs/s3client"
)

// HeadBucket implements s3client.API: the bucket always exists.
func (f *Fake) HeadBucket(ctx context.Context) error {
	const op = OpHeadBucket
	fault, err := f.begin(ctx, op, "")
	if err != nil {
		return err
	}
	return end(op, "", fault, nil)
}

// Head implements s3client.API. A missing key is NotFound (404): HEAD
// answers have no body, hence no NoSuchKey.
func (f *Fake) Head(ctx context.Context, key string) (*s3client.ObjectInfo, error) {
	const op = OpHeadObject
	if err := checkEmpty(op, key, key); err != nil {
		return nil, err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return nil, err
	}
	info, err := f.head(op, key)
	if err := end(op, key, fault, err); err != nil {
		return nil, err
	}
	return info, nil
}

func (f *Fake) head(op, key string) (*s3client.ObjectInfo, error) {
	if err := checkLength(op, key, key); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[key]
	if o == nil {
		return nil, APIError(op, key, "NotFound", 404)
	}
	info := o.info(key)
	info.Metadata = maps.Clone(o.meta)
	info.Headers = o.headersOut()
	return info, nil
}

// GetRange implements s3client.API. Like the real client, a length of 0
// makes no request. A range that ends past the end of the object is cut
// there; one that starts at or past the end of a non-empty object is
// InvalidRange (416); any range of an empty object reads nothing. A
// negative offset is refused without a request (S3 would ignore the
// malformed Range header and send the whole object).
func (f *Fake) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	const op = OpGetObject
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err := checkEmpty(op, key, key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, invalidInput(op, key, fmt.Sprintf("negative offset %d", offset))
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return nil, err
	}
	data, err := f.getRange(op, key, offset, length, ifMatch)
	if err := end(op, key, fault, err); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// getRange returns the bytes of a GetRange; they are shared with the stored
// object and must not be modified.
func (f *Fake) getRange(op, key string, offset, length int64, ifMatch string) ([]byte, error) {
	if err := checkLength(op, key, key); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[key]
	switch {
	case o == nil:
		return nil, APIError(op, key, "NoSuchKey", 404)
	case ifMatch != "" && ifMatch != o.etag:
		// Preconditions are evaluated before the range.
		return nil, APIError(op, key, "PreconditionFailed", 412)
	}
	size := int64(len(o.data))
	if size == 0 {
		return nil, nil
	}
	if offset >= size {
		return nil, APIError(op, key, "InvalidRange", 416)
	}
	stop := size
	if length > 0 && length < size-offset {
		stop = offset + length
	}
	return o.data[offset:stop:stop], nil
}

// Put implements s3client.API. The body is read from its start, as the real
// client rewinds it; it must hold exactly size bytes. With
// opts.IfNoneMatch, an existing key fails the write with PreconditionFailed
// (412), atomically with the write.
func (f *Fake) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts s3client.PutOptions) (string, error) {
	const op = OpPutObject
	if err := checkEmpty(op, key, key); err != nil {
		return "", err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return "", err
	}
	etag, err := f.put(op, key, body, size, opts)
	if err := end(op, key, fault, err); err != nil {
		return "", err
	}
	return etag, nil
}

func (f *Fake) put(op, key string, body io.ReadSeeker, size int64, opts s3client.PutOptions) (string, error) {
	if err := checkLength(op, key, key); err != nil {
		return "", err
	}
	if err := checkMetadata(op, key, opts.Metadata); err != nil {
		return "", err
	}
	data, err := readBody(op, key, body, size, true)
	if err != nil {
		return "", err
	}
	sum := md5.Sum(data)
	o := &object{
		data:    data,
		md5:     sum,
		etag:    quoteMD5(sum),
		meta:    lowerKeys(opts.Metadata),
		headers: written(opts.Headers),
		tags:    cloneTags(opts.Tags),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if opts.IfNoneMatch && f.objects[key] != nil {
		return "", APIError(op, key, "PreconditionFailed", 412)
	}
	o.lastModified = f.now()
	f.store(key, o)
	return o.etag, nil
}

// readBody reads a request body of size bytes (from its start when rewind
// is set) into a new slice, failing as the SDK or S3 would when the body
// does not hold exactly size bytes.
func readBody(op, key string, body io.ReadSeeker, size int64, rewind bool) ([]byte, error) {
	switch {
	case size < 0:
		return nil, APIError(op, key, "MissingContentLength", 411)
	case size > MaxPartSize:
		return nil, APIError(op, key, "EntityTooLarge", 400)
	case body == nil:
		if size > 0 {
			return nil, APIError(op, key, "IncompleteBody", 400)
		}
		return []byte{}, nil
	}
	if rewind {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return nil, &s3client.Error{Op: op, Key: key, Err: fmt.Errorf("rewinding the body: %w", err)}
		}
	}
	data, err := io.ReadAll(io.LimitReader(body, size+1))
	switch {
	case err != nil:
		return nil, &s3client.Error{Op: op, Key: key, Err: fmt.Errorf("reading the body: %w", err)}
	case int64(len(data)) < size:
		return nil, APIError(op, key, "IncompleteBody", 400)
	case int64(len(data)) > size:
		// The HTTP client refuses to send more than Content-Length.
		return nil, &s3client.Error{Op: op, Key: key, Err: fmt.Errorf("s3fake: body longer than its size %d", size)}
	}
	return data, nil
}

// Copy implements s3client.API. The copy gets a new LastModified and an
// ETag that is the MD5 of its content, even when src is a multipart object.
// With opts.ReplaceMetadata nil, metadata and the Content-* headers are
// copied and a copy of an object onto itself is refused (InvalidRequest,
// 400), as S3 refuses a copy that changes nothing; with it, they are
// opts.Headers'. Either way, as in S3, the storage class and encryption are
// opts.Headers' (STANDARD and none without), and the tags are copied.
// A source that is not opts.SourceETag's version fails it with
// PreconditionFailed (412), as in S3.
func (f *Fake) Copy(ctx context.Context, src, dst string, opts s3client.CopyOptions) (string, error) {
	const op = OpCopyObject
	if err := checkEmpty(op, dst, src, dst); err != nil {
		return "", err
	}
	fault, err := f.begin(ctx, op, dst)
	if err != nil {
		return "", err
	}
	etag, err := f.copy(op, src, dst, opts)
	if err := end(op, dst, fault, err); err != nil {
		return "", err
	}
	return etag, nil
}

func (f *Fake) copy(op, src, dst string, opts s3client.CopyOptions) (string, error) {
	if err := checkLength(op, dst, src, dst); err != nil {
		return "", err
	}
	if err := checkMetadata(op, dst, opts.ReplaceMetadata); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.objects[src]
	switch {
	case s == nil:
		return "", APIError(op, dst, "NoSuchKey", 404)
	case opts.SourceETag != "" && opts.SourceETag != s.etag:
		return "", APIError(op, dst, "PreconditionFailed", 412)
	case src == dst && opts.ReplaceMetadata == nil:
		e := APIError(op, dst, "InvalidRequest", 400).(*s3client.Error)
		e.Message = "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
		return "", e
	}
	o := &object{
		data:         s.data,
		md5:          s.md5,
		etag:         quoteMD5(s.md5),
		lastModified: f.now(),
		meta:         s.meta,
		headers:      s.headers,
		tags:         s.tags,
	}
	var sent s3client.ObjectHeaders
	if opts.Headers != nil {
		sent = *opts.Headers
	}
	if opts.ReplaceMetadata != nil {
		o.meta = lowerKeys(opts.ReplaceMetadata)
		o.headers = sent
	}
	o.headers.StorageClass, o.headers.SSE, o.headers.SSEKMSKeyID = sent.StorageClass, sent.SSE, sent.SSEKMSKeyID
	o.headers = written(o.headers)
	f.store(dst, o)
	return o.etag, nil
}

// Delete implements s3client.API; deleting a missing key succeeds.
func (f *Fake) Delete(ctx context.Context, key string) error {
	const op = OpDeleteObject
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
		f.remove(key)
		f.mu.Unlock()
	}
	return end(op, key, fault, err)
}

// DeleteMany implements s3client.API. Like the real client, no keys make no
// request; more than 1,000 are refused (MalformedXML, 400) and delete
// nothing; a key S3 cannot delete fails the call, the others are deleted.
func (f *Fake) DeleteMany(ctx context.Context, keys []string) error {
	const op = OpDeleteObjects
	if len(keys) == 0 {
		return nil
	}
	if err := checkEmpty(op, keys[0], keys...); err != nil {
		return err
	}
	fault, err := f.begin(ctx, op, keys[0])
	if err != nil {
		return err
	}
	if len(keys) > MaxDeleteKeys {
		err = APIError(op, keys[0], "MalformedXML", 400)
	} else {
		f.mu.Lock()
		for _, k := range keys {
			if len(k) > MaxKeyLength {
				// A key S3 could not delete is reported in the answer's
				// <Error> list, which carries no HTTP status.
				if err == nil {
					err = &s3client.Error{Op: op, Key: k, Code: "KeyTooLongError", Message: message("KeyTooLongError")}
				}
				continue
			}
			f.remove(k)
		}
		f.mu.Unlock()
	}
	return end(op, keys[0], fault, err)
}
