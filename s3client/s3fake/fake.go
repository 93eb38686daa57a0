// Package s3fake is an in-memory S3 bucket that implements s3client.API, for
// fast unit and concurrent model tests of the filesystem core (with -race).
//
// It is faithful wherever bucketfs relies on S3's behaviour: ETags (quoted
// MD5, multipart "-N"), error codes and statuses (so errors.Is with the
// s3client sentinels works as with the real client), listing order and
// pagination, the multipart contract (part order, exact ETags, 5 MiB minimum
// for every part but the last, NoSuchUpload once an upload is completed or
// aborted) and conditional requests. MinIO stays the judge of the real
// contract: the e2e and s3client tests run against it.
//
// A Fake is safe for concurrent use, starts no goroutine, and behaves
// deterministically apart from LastModified, which follows the clock (see
// SetClock). Faults are injected per request with SetHook.
package s3fake

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
)

// Operation names, as S3 names them; they label request counts, hook calls
// and the Op of every error.
const (
	OpHeadBucket              = "HeadBucket"
	OpListObjectsV2           = "ListObjectsV2"
	OpHeadObject              = "HeadObject"
	OpGetObject               = "GetObject"
	OpPutObject               = "PutObject"
	OpCreateMultipartUpload   = "CreateMultipartUpload"
	OpUploadPart              = "UploadPart"
	OpCompleteMultipartUpload = "CompleteMultipartUpload"
	OpAbortMultipartUpload    = "AbortMultipartUpload"
	OpListMultipartUploads    = "ListMultipartUploads"
	OpCopyObject              = "CopyObject"
	OpUploadPartCopy          = "UploadPartCopy"
	OpDeleteObject            = "DeleteObject"
	OpDeleteObjects           = "DeleteObjects"
	OpGetObjectTagging        = "GetObjectTagging"
)

// S3's limits, as the fake enforces them.
const (
	// MinPartSize is the smallest size of every part of a multipart upload but the last.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part (and the largest single PutObject).
	MaxPartSize = 5 << 30
	// MaxParts is the highest part number.
	MaxParts = 10000
	// MaxKeyLength is the longest key, in bytes.
	MaxKeyLength = 1024
	// MaxMetadataSize bounds the user metadata: the bytes of all keys and values.
	MaxMetadataSize = 2 << 10
	// MaxDeleteKeys bounds the keys of one DeleteObjects.
	MaxDeleteKeys = 1000
	// DefaultContentType is the Content-Type of an object written without one.
	DefaultContentType = "application/octet-stream"
)

// Fault is what happens to one request, as decided by the hook.
//
// Delay, then Gate, are waited for before the request is applied; both give
// up when the request's context ends, failing the request with an
// *s3client.Error (Status 0) that wraps ctx.Err(), as a cancelled HTTP
// request does. Err then fails the request without applying it.
//
// LoseAnswer applies the request and then fails it with InternalError (HTTP
// 500), as if the answer was lost on the way back. Through s3client.API this
// is how both a lost answer (connection reset after S3 acted) and S3's
// "200 OK with an <Error> body" look once the SDK's retries end: the SDK
// turns the latter into a retryable 500, and a retried request that then
// meets the new state (a retried CompleteMultipartUpload meeting
// NoSuchUpload although the object exists) is what the caller must handle.
// A caller that retries after a LoseAnswer meets that state here too.
type Fault struct {
	Delay      time.Duration
	Gate       <-chan struct{} // the request waits until it is closed
	Err        error           // an *s3client.Error (see APIError) or any error, which is wrapped in one
	LoseAnswer bool
}

// Fake is an in-memory S3 bucket implementing s3client.API. Create it with New.
type Fake struct {
	// mu guards every field below. It is never held while waiting (Delay,
	// Gate), while calling the hook, or while reading a request body; it is
	// held while copying or hashing in-memory data, which never blocks.
	mu      sync.Mutex
	objects map[string]*object // by key
	sorted  []string           // the keys of objects, in ascending byte order
	uploads map[string]*upload // in-progress multipart uploads, by upload ID
	counts  map[string]int     // requests by operation
	hook    func(op, key string) Fault
	clock   func() time.Time
	// uploadSeq numbers uploads: it makes IDs unique and orders them.
	uploadSeq int64
}

// object is one stored object. Its fields are never modified once stored (a
// new version is a new object), so data may be shared with readers.
type object struct {
	data         []byte
	md5          [md5.Size]byte // of data, for CopyObject's ETag
	etag         string
	lastModified time.Time
	meta         map[string]string // lower-case keys, never nil
	headers      s3client.ObjectHeaders
	tags         map[string]string // never nil
}

// upload is one in-progress multipart upload.
type upload struct {
	id      string
	key     string
	seq     int64
	meta    map[string]string
	headers s3client.ObjectHeaders
	tags    map[string]string
	parts   map[int32]part
}

// part is one uploaded part; data is never modified once stored.
type part struct {
	data []byte
	md5  [md5.Size]byte
	etag string
}

var _ s3client.API = (*Fake)(nil)

// New returns an empty bucket whose clock is time.Now.
func New() *Fake {
	return &Fake{
		objects: map[string]*object{},
		uploads: map[string]*upload{},
		counts:  map[string]int{},
		clock:   time.Now,
	}
}

// SetHook installs h, which decides the Fault of every request from its
// operation and key (the key of the error it would return: the destination
// of a copy, the prefix of a listing, the first key of a DeleteObjects, ""
// for HeadBucket). A nil h removes the hook. h runs without the fake's lock
// held, possibly on many goroutines at once.
func (f *Fake) SetHook(h func(op, key string) Fault) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

// SetClock makes now the source of LastModified, which S3 keeps to the
// second: times are truncated to the second and kept in UTC.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	f.clock = now
	f.mu.Unlock()
}

// Count returns the number of requests of op made so far, failed or not, as
// s3client.RequestCounter counts them (a GetRange of length 0, an empty
// DeleteMany or a request the SDK refuses to send, such as one with an empty
// key, makes none).
func (f *Fake) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Counts returns a copy of the request counts by operation.
func (f *Fake) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// ResetCounts sets every request count to zero.
func (f *Fake) ResetCounts() {
	f.mu.Lock()
	f.counts = map[string]int{}
	f.mu.Unlock()
}

// Object returns a copy of key's content and attributes, without making a
// request; ok is false when there is no such object.
func (f *Fake) Object(key string) (data []byte, info *s3client.ObjectInfo, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[key]
	if o == nil {
		return nil, nil, false
	}
	info = o.info(key)
	info.Metadata = maps.Clone(o.meta)
	info.Headers = o.headersOut()
	return slices.Clone(o.data), info, true
}

// Keys returns the keys of all objects, in ascending order.
func (f *Fake) Keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sorted)
}

// Uploads returns the IDs of the multipart uploads in progress, oldest first.
func (f *Fake) Uploads() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ups := slices.Collect(maps.Values(f.uploads))
	slices.SortFunc(ups, func(a, b *upload) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(ups))
	for i, u := range ups {
		ids[i] = u.id
	}
	return ids
}

// SetObject stores an object without making a request, as a PutObject
// would (ETag, LastModified, metadata keys in lower case, the default
// Content-Type); it is how tests seed a bucket.
func (f *Fake) SetObject(key string, data []byte, meta map[string]string) {
	data = slices.Clone(data)
	sum := md5.Sum(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store(key, &object{
		data:         data,
		md5:          sum,
		etag:         quoteMD5(sum),
		lastModified: f.now(),
		meta:         lowerKeys(meta),
		headers:      written(s3client.ObjectHeaders{}),
		tags:         map[string]string{},
	})
}

// APIError returns the error S3 would answer with: an *s3client.Error of
// code and HTTP status, for op on key, with S3's message for the codes the
// fake itself returns. Tests pass it as Fault.Err. The code "EmptyResult"
// wraps s3client.ErrEmptyResult, as the real client does.
func APIError(op, key, code string, status int) error {
	e := &s3client.Error{Op: op, Key: key, Code: code, Status: status, Message: message(code)}
	if code == "EmptyResult" {
		e.Err = s3client.ErrEmptyResult
	}
	return e
}

// message returns S3's message for the codes the fake returns.
func message(code string) string {
	switch code {
	case "NoSuchKey":
		return "The specified key does not exist."
	case "NoSuchUpload":
		return "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."
	case "PreconditionFailed":
		return "At least one of the pre-conditions you specified did not hold"
	case "InvalidRange":
		return "The requested range is not satisfiable"
	case "InvalidPart":
		return "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
	case "InvalidPartOrder":
		return "The list of parts was not in ascending order. The parts list must be specified in order by part number."
	case "EntityTooSmall":
		return "Your proposed upload is smaller than the minimum allowed object size."
	case "EntityTooLarge":
		return "Your proposed upload exceeds the maximum allowed object size."
	case "InternalError":
		return "We encountered an internal error. Please try again."
	case "KeyTooLongError":
		return "Your key is too long"
	case "MetadataTooLarge":
		return "Your metadata headers exceed the maximum allowed metadata size."
	case "MalformedXML":
		return "The XML you provided was not well-formed or did not validate against our published schema"
	case "IncompleteBody":
		return "You did not provide the number of bytes specified by the Content-Length HTTP header"
	case "MissingContentLength":
		return "You must provide the Content-Length HTTP header."
	}
	return ""
}

// begin counts a request of op on key, asks the hook for its fault, and
// waits as the fault says. A non-nil error fails the request unapplied.
func (f *Fake) begin(ctx context.Context, op, key string) (Fault, error) {
	f.mu.Lock()
	f.counts[op]++
	hook := f.hook
	f.mu.Unlock()

	var fault Fault
	if hook != nil {
		fault = hook(op, key)
	}
	if err := ctx.Err(); err != nil {
		return fault, &s3client.Error{Op: op, Key: key, Err: err}
	}
	if fault.Delay > 0 {
		timer := time.NewTimer(fault.Delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
	if fault.Gate != nil {
		select {
		case <-fault.Gate:
		case <-ctx.Done():
		}
	}
	// A context that ended while waiting wins, whatever else happened.
	if err := ctx.Err(); err != nil {
		return fault, &s3client.Error{Op: op, Key: key, Err: err}
	}
	if fault.Err != nil {
		return fault, injected(op, key, fault.Err)
	}
	return fault, nil
}

// end returns the answer to a request begun with fault: err, unless the
// fault loses the answer.
func end(op, key string, fault Fault, err error) error {
	if fault.LoseAnswer {
		return APIError(op, key, "InternalError", 500)
	}
	return err
}

// injected turns a hook's error into the request's *s3client.Error, filling
// in an empty Op or Key (on a copy: the hook's value may be shared).
func injected(op, key string, err error) error {
	var e *s3client.Error
	if errors.As(err, &e) {
		if e.Op != "" && e.Key != "" {
			return err
		}
		c := *e
		if c.Op == "" {
			c.Op = op
		}
		if c.Key == "" {
			c.Key = key
		}
		return &c
	}
	return &s3client.Error{Op: op, Key: key, Err: err}
}

// invalidInput is the SDK's refusal of a request it does not send (a
// missing required parameter): an error without a status, and no request.
func invalidInput(op, key, what string) error {
	return &s3client.Error{Op: op, Key: key, Err: fmt.Errorf("s3fake: invalid input: %s", what)}
}

// checkEmpty refuses an empty key as the SDK does, before any request.
func checkEmpty(op, key string, keys ...string) error {
	for _, k := range keys {
		if k == "" {
			return invalidInput(op, key, "empty key")
		}
	}
	return nil
}

// checkLength refuses a key longer than S3 allows.
func checkLength(op, key string, keys ...string) error {
	for _, k := range keys {
		if len(k) > MaxKeyLength {
			return APIError(op, key, "KeyTooLongError", 400)
		}
	}
	return nil
}

// checkMetadata refuses user metadata larger than S3 allows.
func checkMetadata(op, key string, meta map[string]string) error {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	if n > MaxMetadataSize {
		return APIError(op, key, "MetadataTooLarge", 400)
	}
	return nil
}

// now returns the time of a write, as S3 keeps it. Call with f.mu held.
func (f *Fake) now() time.Time {
	return f.clock().UTC().Truncate(time.Second)
}

// store makes o the object of key. Call with f.mu held.
func (f *Fake) store(key string, o *object) {
	if _, ok := f.objects[key]; !ok {
		i, _ := slices.BinarySearch(f.sorted, key)
		f.sorted = slices.Insert(f.sorted, i, key)
	}
	f.objects[key] = o
}

// remove deletes the object of key, if any. Call with f.mu held.
func (f *Fake) remove(key string) {
	if _, ok := f.objects[key]; !ok {
		return
	}
	delete(f.objects, key)
	if i, found := slices.BinarySearch(f.sorted, key); found {
		f.sorted = slices.Delete(f.sorted, i, i+1)
	}
}

// info returns o's attributes as a listing shows them (no metadata).
func (o *object) info(key string) *s3client.ObjectInfo {
	return &s3client.ObjectInfo{
		Key:          key,
		Size:         int64(len(o.data)),
		ETag:         o.etag,
		LastModified: o.lastModified,
	}
}

// lowerKeys returns a copy of meta with its keys in lower case, as S3
// returns them; never nil.
func lowerKeys(meta map[string]string) map[string]string {
	out := make(map[string]string, len(meta))
	for k, v := range meta {
		out[strings.ToLower(k)] = v
	}
	return out
}

// written returns the headers S3 stores for a write that sent h: the
// default Content-Type and STANDARD where h names none. The fake has no
// mount defaults: an empty SSE stays empty (no encryption).
func written(h s3client.ObjectHeaders) s3client.ObjectHeaders {
	if h.ContentType == "" {
		h.ContentType = DefaultContentType
	}
	if h.StorageClass == "" {
		h.StorageClass = "STANDARD"
	}
	h.TagCount = 0 // counted from the tags
	return h
}

// headersOut returns o's headers as a HEAD answers them.
func (o *object) headersOut() s3client.ObjectHeaders {
	h := o.headers
	h.TagCount = int32(len(o.tags))
	return h
}

// Tags implements s3client.API.
func (f *Fake) Tags(ctx context.Context, key string) (map[string]string, error) {
	const op = OpGetObjectTagging
	if err := checkEmpty(op, key, key); err != nil {
		return nil, err
	}
	fault, err := f.begin(ctx, op, key)
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	err = checkLength(op, key, key)
	if err == nil {
		f.mu.Lock()
		if o := f.objects[key]; o != nil {
			tags = maps.Clone(o.tags)
		} else {
			err = APIError(op, key, "NoSuchKey", 404)
		}
		f.mu.Unlock()
	}
	if err := end(op, key, fault, err); err != nil {
		return nil, err
	}
	return tags, nil
}

// quoteMD5 returns sum as an ETag: quoted lower-case hex.
func quoteMD5(sum [md5.Size]byte) string {
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// cloneTags returns a copy of tags; never nil.
func cloneTags(tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags))
	maps.Copy(out, tags)
	return out
}
