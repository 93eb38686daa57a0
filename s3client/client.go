// Package s3client is bucketfs's one door to S3: the only package that imports
// the SDK's service/s3. It offers the few operations the filesystem needs,
// decides what each S3 error means (see errors.go), counts requests by
// operation, and lets tests replace the HTTP transport to inject faults.
package s3client

import (
	"context"
	"io"
	"time"
)

// ObjectInfo describes one object, from a listing or a HeadObject.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // as S3 sent it, quotes included
	LastModified time.Time
	// Metadata holds user metadata (x-amz-meta-*), keys in lower case without
	// the prefix. Listings do not carry it: it is nil for listed objects.
	Metadata map[string]string
	// Headers are the object's system headers (HeadObject only).
	Headers ObjectHeaders
}

// ObjectHeaders are what an object carries besides its bytes and user
// metadata that a copy must keep for the copy to be served, billed and
// encrypted as the original was.
type ObjectHeaders struct {
	ContentType        string
	CacheControl       string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	// Expires is the Expires header as S3 sent it, sent back unchanged.
	Expires string
	// StorageClass is the object's storage class; Head names STANDARD,
	// which S3 leaves out. Empty in a write: the mount's
	// Config.StorageClass, else the bucket's default.
	StorageClass string
	// SSE is the server-side encryption (SSEKMS, SSEAES256) and
	// SSEKMSKeyID its KMS key. Empty in a write: the mount's Config.SSE
	// and SSEKMSKeyID, else the bucket's default.
	SSE, SSEKMSKeyID string
	// TagCount is how many tags the object has (x-amz-tagging-count;
	// Head only): Tags reads them.
	TagCount int32
}

// ListPage is one page of a delimited ListObjectsV2.
type ListPage struct {
	Objects        []ObjectInfo
	CommonPrefixes []string // full prefixes, ending in the delimiter
	// NextToken continues the listing; empty when this is the last page.
	NextToken string
}

// PutOptions are the settings of a new object (PutObject or a multipart upload).
type PutOptions struct {
	Metadata map[string]string // user metadata, without the x-amz-meta- prefix
	Headers  ObjectHeaders     // TagCount is not sent: Tags are
	// Tags are the new object's tags (x-amz-tagging); nil for none.
	Tags map[string]string
	// IfNoneMatch makes the write conditional: it fails with ErrPreconditionFailed
	// when an object of that key exists.
	IfNoneMatch bool
	// CopiedParts marks a multipart upload whose parts are copied on the
	// server (UploadPartCopy): S3 computes their checksums, so the upload
	// names no client checksum algorithm.
	CopiedParts bool
}

// CompletedPart is one uploaded part of a multipart upload.
type CompletedPart struct {
	Number         int32
	ETag           string // exactly as UploadPart returned it
	ChecksumCRC32C string // as UploadPart returned it; empty when none
	// ChecksumCRC64NVME is UploadPart's with --checksum crc64nvme; empty
	// when none (and always for UploadPartCopy).
	ChecksumCRC64NVME string
	Size              int64
}

// CopyOptions are the settings of a server-side copy.
type CopyOptions struct {
	// ReplaceMetadata, when non-nil, replaces the object's metadata (directive
	// REPLACE); when nil, the metadata is copied (directive COPY). Tags are
	// copied either way (TaggingDirective COPY).
	ReplaceMetadata map[string]string
	// Headers, when non-nil, are the source's (from its HEAD), which the
	// copy keeps: with REPLACE S3 would drop the Content-* headers and
	// Expires unless they are sent, and with either directive the copy
	// would take STANDARD and the bucket's default encryption. nil: the
	// copy gets the mount's storage class and encryption, and with REPLACE
	// no system header.
	Headers *ObjectHeaders
	// SourceETag, when non-empty, conditions the copy on that version of
	// the source (x-amz-copy-source-if-match): ErrPreconditionFailed when
	// it changed.
	SourceETag string
}

// API is the set of S3 operations bucketfs uses. *Client implements it; tests
// may wrap it. Every method takes a context and returns errors that wrap *Error.
type API interface {
	// HeadBucket checks that the bucket exists and is accessible.
	HeadBucket(ctx context.Context) error
	// List returns one page of keys under prefix, grouped by delimiter ("" for none).
	List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*ListPage, error)
	// Head returns an object's attributes and metadata.
	Head(ctx context.Context, key string) (*ObjectInfo, error)
	// GetRange returns length bytes of key from offset (length < 0: to the
	// end). A non-empty ifMatch (an ETag) makes it fail with
	// ErrPreconditionFailed when the object is no longer that version.
	GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error)
	// Put writes a whole object in one request and returns its ETag.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (string, error)
	// CreateMultipartUpload starts a multipart upload and returns its ID.
	CreateMultipartUpload(ctx context.Context, key string, opts PutOptions) (string, error)
	// UploadPart uploads one part (body must be seekable for retries and checksums).
	UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (CompletedPart, error)
	// CompleteMultipartUpload assembles the parts (ascending numbers) and returns the object's ETag.
	CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []CompletedPart, opts PutOptions) (string, error)
	// AbortMultipartUpload discards an upload and its parts.
	AbortMultipartUpload(ctx context.Context, key, uploadID string) error
	// ListMultipartUploads lists the upload IDs in progress under prefix.
	ListMultipartUploads(ctx context.Context, prefix string) ([]string, error)
	// Copy copies src to dst on the server (up to 5 GiB).
	Copy(ctx context.Context, src, dst string, opts CopyOptions) (string, error)
	// UploadPartCopy copies bytes [first, last] of src into part number of an
	// upload. A non-empty srcETag conditions the copy on that version of src
	// (x-amz-copy-source-if-match): ErrPreconditionFailed when it changed.
	UploadPartCopy(ctx context.Context, src, srcETag, key, uploadID string, number int32, first, last int64) (CompletedPart, error)
	// Tags returns an object's tags (GetObjectTagging); empty, never nil,
	// for none.
	Tags(ctx context.Context, key string) (map[string]string, error)
	// Delete removes a key; deleting a missing key succeeds, as in S3.
	Delete(ctx context.Context, key string) error
	// DeleteMany removes up to 1,000 keys in one request.
	DeleteMany(ctx context.Context, keys []string) error
}
