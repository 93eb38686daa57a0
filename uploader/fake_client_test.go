package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/bucketfs/bucketfs/s3client"
)

// fakeClient is an in-memory s3client.API for tests that need many uploads
// or exact control, without MinIO. It keeps objects and multipart uploads
// in maps and counts requests by operation.
type fakeClient struct {
	mu      sync.Mutex // guards every field below
	objects map[string][]byte
	uploads map[string]*fakeUpload // by upload ID
	counts  map[string]int
	nextID  int
	// createErr, when set, is CreateMultipartUpload's answer.
	createErr error
}

type fakeUpload struct {
	key   string
	parts map[int32][]byte
}

var _ s3client.API = (*fakeClient)(nil)

func newFakeClient() *fakeClient {
	return &fakeClient{objects: map[string][]byte{}, uploads: map[string]*fakeUpload{}, counts: map[string]int{}}
}

func fakeETag(b []byte) string { return fmt.Sprintf(`"%x"`, md5.Sum(b)) }

func fakeError(op, key, code string, status int) error {
	return &s3client.Error{Op: op, Key: key, Code: code, Status: status}
}

// count records a request (mu held).
func (c *fakeClient) count(op string) { c.counts[op]++ }

// Count returns the requests of op so far.
func (c *fakeClient) Count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// object returns a copy of key's bytes and whether it exists.
func (c *fakeClient) object(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.objects[key]
	return append([]byte(nil), b...), ok
}

func (c *fakeClient) HeadBucket(ctx context.Context) error { return nil }
func (c *fakeClient) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*s3client.ListPage, error) {
	return &s3client.ListPage{}, nil
}

func (c *fakeClient) Head(ctx context.Context, key string) (*s3client.ObjectInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("HeadObject")
	b, ok := c.objects[key]
	if !ok {
		return nil, fakeError("HeadObject", key, "NotFound", 404)
	}
	return &s3client.ObjectInfo{Key: key, Size: int64(len(b)), ETag: fakeETag(b)}, nil
}

func (c *fakeClient) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("GetObject")
	b, ok := c.objects[key]
	switch {
	case !ok:
		return nil, fakeError("GetObject", key, "NoSuchKey", 404)
	case ifMatch != "" && ifMatch != fakeETag(b):
		return nil, fakeError("GetObject", key, "PreconditionFailed", 412)
	case offset > int64(len(b)):
		return nil, fakeError("GetObject", key, "InvalidRange", 416)
	}
	end := int64(len(b))
	if length >= 0 {
		end = min(end, offset+length)
	}
	return io.NopCloser(bytes.NewReader(append([]byte(nil), b[offset:end]...))), nil
}

func (c *fakeClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts s3client.PutOptions) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	if int64(len(b)) != size {
		return "", fmt.Errorf("fake Put %q: body of %d bytes, size %d", key, len(b), size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("PutObject")
	c.objects[key] = b
	return fakeETag(b), nil
}

func (c *fakeClient) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("CreateMultipartUpload")
	if c.createErr != nil {
		return "", c.createErr
	}
	c.nextID++
	id := fmt.Sprintf("upload-%d", c.nextID)
	c.uploads[id] = &fakeUpload{key: key, parts: map[int32][]byte{}}
	return id, nil
}

func (c *fakeClient) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (s3client.CompletedPart, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return s3client.CompletedPart{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("UploadPart")
	up, ok := c.uploads[uploadID]
	if !ok {
		return s3client.CompletedPart{}, fakeError("UploadPart", key, "NoSuchUpload", 404)
	}
	up.parts[number] = b
	return s3client.CompletedPart{Number: number, ETag: fakeETag(b), Size: int64(len(b))}, nil
}

func (c *fakeClient) UploadPartCopy(ctx context.Context, src, srcETag, key, uploadID string, number int32, first, last int64) (s3client.CompletedPart, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("UploadPartCopy")
	up, ok := c.uploads[uploadID]
	b, found := c.objects[src]
	switch {
	case !ok:
		return s3client.CompletedPart{}, fakeError("UploadPartCopy", key, "NoSuchUpload", 404)
	case !found:
		return s3client.CompletedPart{}, fakeError("UploadPartCopy", key, "NoSuchKey", 404)
	case srcETag != "" && srcETag != fakeETag(b):
		return s3client.CompletedPart{}, fakeError("UploadPartCopy", key, "PreconditionFailed", 412)
	case first < 0 || last >= int64(len(b)) || first > last:
		return s3client.CompletedPart{}, fakeError("UploadPartCopy", key, "InvalidRange", 416)
	}
	part := append([]byte(nil), b[first:last+1]...)
	up.parts[number] = part
	return s3client.CompletedPart{Number: number, ETag: fakeETag(part), Size: int64(len(part))}, nil
}

func (c *fakeClient) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.CompletedPart, opts s3client.PutOptions) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("CompleteMultipartUpload")
	up, ok := c.uploads[uploadID]
	if !ok {
		return "", fakeError("CompleteMultipartUpload", key, "NoSuchUpload", 404)
	}
	var obj []byte
	for i, p := range parts {
		b, ok := up.parts[p.Number]
		switch {
		case !ok || fakeETag(b) != p.ETag:
			return "", fakeError("CompleteMultipartUpload", key, "InvalidPart", 400)
		case i > 0 && p.Number <= parts[i-1].Number:
			return "", fakeError("CompleteMultipartUpload", key, "InvalidPartOrder", 400)
		case i < len(parts)-1 && len(b) < MinPartSize:
			return "", fakeError("CompleteMultipartUpload", key, "EntityTooSmall", 400)
		}
		obj = append(obj, b...)
	}
	delete(c.uploads, uploadID)
	c.objects[key] = obj
	etag, _ := multipartETag(parts)
	return etag, nil
}

func (c *fakeClient) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("AbortMultipartUpload")
	if _, ok := c.uploads[uploadID]; !ok {
		return fakeError("AbortMultipartUpload", key, "NoSuchUpload", 404)
	}
	delete(c.uploads, uploadID)
	return nil
}

func (c *fakeClient) ListMultipartUploads(ctx context.Context, prefix string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.uploads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func (c *fakeClient) Copy(ctx context.Context, src, dst string, opts s3client.CopyOptions) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("CopyObject")
	b, ok := c.objects[src]
	if !ok {
		return "", fakeError("CopyObject", src, "NoSuchKey", 404)
	}
	c.objects[dst] = append([]byte(nil), b...)
	return fakeETag(b), nil
}

func (c *fakeClient) Tags(ctx context.Context, key string) (map[string]string, error) {
	return map[string]string{}, nil
}

func (c *fakeClient) Delete(ctx context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count("DeleteObject")
	delete(c.objects, key)
	return nil
}

func (c *fakeClient) DeleteMany(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := c.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
