package s3client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/sirupsen/logrus"
)

// Config says how to reach the bucket. Credentials are not part of it: they
// come from the SDK's default chain (environment, shared files, profile, SSO,
// instance metadata).
type Config struct {
	Bucket         string
	Endpoint       string // custom endpoint URL; empty for AWS
	Region         string // empty: from the environment or profile, else us-east-1
	Profile        string // shared-config profile; empty for the default
	ForcePathStyle bool
	// MaxAttempts bounds the attempts of each request, retries included
	// (0: DefaultMaxAttempts). Retries wait as backoff says (retry.go).
	MaxAttempts int
	// RequestTimeout bounds every wait for S3 (0: DefaultRequestTimeout):
	// the answer's headers after the request was sent, and the whole of a
	// small call (HEAD, LIST, DELETE, CopyObject, Create/Abort multipart
	// upload), retries included; a GetObject gets it until its headers.
	// It is also the connect timeout, at most 10 s, and the idle timeout's
	// default, at least 15 s.
	RequestTimeout time.Duration
	// RetryBaseDelay and RetryMaxDelay shape the backoff between attempts
	// (0: DefaultRetryBaseDelay, DefaultRetryMaxDelay).
	RetryBaseDelay, RetryMaxDelay time.Duration
	// IdleTimeout closes a connection on which no byte moved either way for this
	// long, so that a dead peer is detected even during a minutes-long
	// CompleteMultipartUpload (S3 sends whitespace while it works), and a
	// body that stops arriving fails its read. 0: RequestTimeout, at least 15 s.
	IdleTimeout time.Duration
	// ConnectTimeout bounds dialing (0: RequestTimeout, at most 10s).
	ConnectTimeout time.Duration
	// MaxConnsPerHost bounds open connections to the endpoint (0: 64).
	MaxConnsPerHost int
	// WrapTransport, when set, wraps the HTTP transport; tests use it to inject
	// faults and latency.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Counter, when set, counts requests by operation.
	Counter *RequestCounter
	// Metrics, when set, receives the Prometheus metrics of every request
	// (metrics.go).
	Metrics *Metrics
	// DebugLog, when set, receives one debug entry per attempt of every
	// request (operation, key, attempt, status, bytes, latency, request
	// ID), never a header or a signature.
	DebugLog logrus.FieldLogger

	// CABundle is a PEM file of the CAs to trust instead of the system's;
	// empty: the SDK's (AWS_CA_BUNDLE, the profile's ca_bundle), else the system's.
	CABundle string
	// InsecureSkipVerify accepts any server certificate (--no-verify-ssl).
	InsecureSkipVerify bool
	// SSE is the server-side encryption of new objects and copies
	// (SSEKMS, SSEAES256; empty: the bucket's default), SSEKMSKeyID its
	// KMS key (SSEKMS only; empty: the account's aws/s3 key).
	SSE, SSEKMSKeyID string
	// StorageClass of new objects and copies (empty: the bucket's default).
	StorageClass string
	// RequesterPays makes every object and listing request accept the
	// charges of a requester-pays bucket (x-amz-request-payer).
	RequesterPays bool
	// Anonymous sends unsigned requests (public buckets), with no credentials.
	Anonymous bool
	// Checksum is the checksum of uploaded bodies: ChecksumCRC32C (empty),
	// ChecksumCRC64NVME or ChecksumNone.
	Checksum string
}

// Client is the S3 implementation of API for one bucket.
type Client struct {
	s3     *s3.Client
	bucket string
	// timeout is Config.RequestTimeout: the bound of small calls.
	timeout time.Duration
	// w holds the AWS options every request carries where it applies.
	w writeOptions
	// noConditional is set once the server answered a conditional write
	// (If-None-Match: *) with NotImplemented; later exclusive writes use a
	// HEAD check instead (see exclusive).
	noConditional atomic.Bool
}

// ConditionalWrites says whether exclusive writes are made by the server
// (If-None-Match: *, race-free between clients) rather than by a HEAD check
// just before the write (which two clients racing within a request's time
// can both pass). It turns false once the server refused a conditional write.
func (c *Client) ConditionalWrites() bool { return !c.noConditional.Load() }

// exclusive runs write, an exclusive write of key: conditional when the
// server supports it; where it answers NotImplemented, once a HEAD found no
// object, without the condition.
func (c *Client) exclusive(ctx context.Context, op, key string, write func(conditional bool) error) error {
	if c.ConditionalWrites() {
		err := write(true)
		if !errors.Is(err, ErrNotImplemented) {
			return err
		}
		c.noConditional.Store(true)
	}
	switch _, err := c.Head(ctx, key); {
	case err == nil:
		return wrapError(op, key, ErrPreconditionFailed)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	return write(false)
}

var _ API = (*Client)(nil)

// withDefaults fills the zero fields of cfg's retry and timeout policy.
func (cfg Config) withDefaults() Config {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = max(cfg.RequestTimeout, minIdleTimeout)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = min(cfg.RequestTimeout, 10*time.Second)
	}
	if cfg.MaxConnsPerHost <= 0 {
		cfg.MaxConnsPerHost = 64
	}
	return cfg
}

// New builds a Client from cfg and the default credential chain.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	w, err := resolveWriteOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	tc, err := tlsConfig(cfg, awsCfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	tr := newTransport(cfg)
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	var rt http.RoundTripper = tr
	if cfg.Metrics != nil {
		// Innermost, so that only bytes that reached the network count.
		rt = cfg.Metrics.transport(rt)
	}
	if cfg.WrapTransport != nil {
		rt = cfg.WrapTransport(rt)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		if cfg.Anonymous {
			o.Credentials = aws.AnonymousCredentials{}
		}
		if w.checksum == "" {
			// Else the SDK adds a CRC32 to every upload of its own accord.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			// And asks for the response's on every GET (x-amz-checksum-mode).
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		// A multipart object has no whole-object checksum to validate a
		// ranged GET against; the SDK would warn on every such read.
		o.DisableLogOutputChecksumValidationSkipped = true
		o.HTTPClient = &http.Client{Transport: rt}
		o.Retryer = newRetryer(cfg)
		if cfg.Counter != nil {
			o.APIOptions = append(o.APIOptions, cfg.Counter.middleware)
		}
		if cfg.Metrics != nil {
			o.APIOptions = append(o.APIOptions, cfg.Metrics.middleware)
		}
		if cfg.DebugLog != nil {
			o.APIOptions = append(o.APIOptions, requestLogger{log: cfg.DebugLog}.middleware)
		}
	})
	return &Client{s3: client, bucket: cfg.Bucket, timeout: cfg.RequestTimeout, w: w}, nil
}

// small bounds a small call, retries included, by the request timeout:
// a hung or vanished endpoint fails it instead of holding a stat or an ls.
func (c *Client) small(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// newTransport is the HTTP transport with every wait bounded: dialing
// (ConnectTimeout), TLS, the answer's headers (RequestTimeout, counted
// from the end of the request body) and any silence on the connection
// (IdleTimeout, through idleTimeoutConn).
func newTransport(cfg Config) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	idle := cfg.IdleTimeout
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleTimeoutConn{Conn: c, timeout: idle}, nil
		},
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          cfg.MaxConnsPerHost,
		MaxIdleConnsPerHost:   cfg.MaxConnsPerHost,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ExpectContinueTimeout: time.Second,
		// S3 and MinIO send CompleteMultipartUpload's headers at once and
		// keep-alive whitespace after them, so no request legitimately
		// waits longer than this for its headers.
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ReadBufferSize:        64 << 10,
		WriteBufferSize:       64 << 10,
	}
}

// idleTimeoutConn fails a connection on which nothing moved for timeout:
// every read or write pushes both deadlines forward, so a slow but live
// transfer never trips it and a dead peer always does.
type idleTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleTimeoutConn) extend() {
	_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
}

func (c *idleTimeoutConn) Read(p []byte) (int, error) {
	c.extend()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.extend()
	}
	return n, err
}

func (c *idleTimeoutConn) Write(p []byte) (int, error) {
	c.extend()
	return c.Conn.Write(p)
}

func metaOut(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// HeadBucket implements API.
func (c *Client) HeadBucket(ctx context.Context) error {
	ctx, cancel := c.small(ctx)
	defer cancel()
	_, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &c.bucket})
	return wrapError("HeadBucket", c.bucket, err)
}

// List implements API.
func (c *Client) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*ListPage, error) {
	ctx, cancel := c.small(ctx)
	defer cancel()
	// Keys come url-encoded: XML 1.0 cannot carry some characters a key may
	// hold (U+0001), and one such key would otherwise fail the whole page.
	in := &s3.ListObjectsV2Input{Bucket: &c.bucket, Prefix: aws.String(prefix), EncodingType: types.EncodingTypeUrl, RequestPayer: c.w.payer}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	if maxKeys > 0 {
		in.MaxKeys = aws.Int32(maxKeys)
	}
	out, err := c.s3.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, wrapError("ListObjectsV2", prefix, err)
	}
	// A server that ignores EncodingType says so by not echoing it; its
	// keys are then plain text and must not be decoded.
	decode := func(s string) (string, error) { return s, nil }
	if out.EncodingType == types.EncodingTypeUrl {
		decode = decodeListedKey
	}
	page := &ListPage{Objects: make([]ObjectInfo, 0, len(out.Contents))}
	for _, o := range out.Contents {
		key, err := decode(aws.ToString(o.Key))
		if err != nil {
			return nil, wrapError("ListObjectsV2", prefix, err)
		}
		page.Objects = append(page.Objects, ObjectInfo{
			Key:          key,
			Size:         aws.ToInt64(o.Size),
			ETag:         aws.ToString(o.ETag),
			LastModified: aws.ToTime(o.LastModified),
		})
	}
	for _, p := range out.CommonPrefixes {
		cp, err := decode(aws.ToString(p.Prefix))
		if err != nil {
			return nil, wrapError("ListObjectsV2", prefix, err)
		}
		page.CommonPrefixes = append(page.CommonPrefixes, cp)
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextToken = aws.ToString(out.NextContinuationToken)
		if page.NextToken == "" {
			return nil, wrapError("ListObjectsV2", prefix, errors.New("truncated listing without a continuation token"))
		}
	}
	return page, nil
}

// decodeListedKey reads a key of a listing made with EncodingType=url. S3
// encodes as HTML forms do (a space may arrive as "+", a plus always as
// "%2B"), so form decoding is the inverse.
func decodeListedKey(s string) (string, error) {
	key, err := url.QueryUnescape(s)
	if err != nil {
		return "", fmt.Errorf("listed key %q is not url-encoded: %w", s, err)
	}
	return key, nil
}

// Head implements API.
func (c *Client) Head(ctx context.Context, key string) (*ObjectInfo, error) {
	ctx, cancel := c.small(ctx)
	defer cancel()
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &c.bucket, Key: &key, RequestPayer: c.w.payer})
	if err != nil {
		return nil, wrapError("HeadObject", key, err)
	}
	meta := make(map[string]string, len(out.Metadata))
	for k, v := range out.Metadata {
		meta[strings.ToLower(k)] = v
	}
	return &ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		Metadata:     meta,
		Headers:      headersIn(out),
	}, nil
}

// GetRange implements API.
func (c *Client) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &c.bucket, Key: &key, RequestPayer: c.w.payer}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case length < 0 && offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	case length == 0:
		return io.NopCloser(strings.NewReader("")), nil
	}
	return c.getObject(ctx, key, in, offset)
}

// getObject runs a GetObject whose wait for the answer's headers is bounded
// by the request timeout, retries included, while its body, read later,
// is bounded by its progress (objectBody): a context deadline would cut a
// long read. A ranged GET's answer must start at offset.
func (c *Client) getObject(ctx context.Context, key string, in *s3.GetObjectInput, offset int64) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	var expired atomic.Bool
	timer := time.AfterFunc(c.timeout, func() { expired.Store(true); cancel() })
	out, err := c.s3.GetObject(ctx, in)
	if !timer.Stop() && err == nil {
		// The bound expired as the answer came: its body is cut already.
		out.Body.Close()
		err = context.DeadlineExceeded
	}
	if err == nil && in.Range != nil {
		if err = checkContentRange(aws.ToString(out.ContentRange), offset); err != nil {
			out.Body.Close()
		}
	}
	if err != nil {
		cancel()
		if expired.Load() {
			// A cancellation would read as an interrupted call (EINTR).
			err = fmt.Errorf("no answer within the request timeout (%s): %w", c.timeout, context.DeadlineExceeded)
		}
		return nil, wrapError("GetObject", key, err)
	}
	return &objectBody{body: out.Body, cancel: cancel, key: key, window: c.timeout}, nil
}

// checkContentRange refuses the answer to a ranged GET whose body does not
// start at offset: a server that ignores ranges answers 200 with the whole
// object, and its first bytes would be handed out as those at offset.
// Without a Content-Range, a body that starts at 0 is the one asked for.
func checkContentRange(contentRange string, offset int64) error {
	if contentRange == "" {
		if offset == 0 {
			return nil
		}
		return fmt.Errorf("the server ignored the range from byte %d: its answer has no Content-Range", offset)
	}
	var first, last int64
	if _, err := fmt.Sscanf(contentRange, "bytes %d-%d/", &first, &last); err != nil || first != offset || last < first {
		return fmt.Errorf("the server answered the range from byte %d with Content-Range %q", offset, contentRange)
	}
	return nil
}

// stallBytes is the least a GetObject body must bring per request timeout
// spent waiting for it (time inside Read, so that a slow caller is never
// taken for a slow server): a body that trickles slower, such as a server
// answering byte by byte, fails instead of holding a read for hours. At
// the default 30s it is about 2 KiB/s; a body that stops altogether is
// ended by the idle timeout.
const stallBytes = 64 << 10

// errStalled is the failure of a body that brought too little (stallBytes).
var errStalled = errors.New("the answer's body arrives too slowly")

// objectBody is a GetObject's body whose read errors are *Error, like
// every other error of the package (a reset connection is an S3 failure,
// not the caller's ECONNRESET), that fails when it trickles (stallBytes),
// and whose Close releases the request. Read is not safe for concurrent use.
type objectBody struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	key    string
	// window is the wait over which the body must bring stallBytes;
	// waited and got are the wait and the bytes of the current one.
	window, waited time.Duration
	got            int64
	err            error // the stall, returned by every later Read
}

func (b *objectBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	start := time.Now()
	n, err := b.body.Read(p)
	b.waited += time.Since(start)
	b.got += int64(n)
	if err != nil {
		if err != io.EOF {
			err = wrapError("GetObject", b.key, err)
		}
		return n, err
	}
	if b.waited >= b.window {
		if b.got < stallBytes {
			b.err = wrapError("GetObject", b.key, fmt.Errorf("%w: %d bytes in %s of waiting, fewer than %d: %w",
				errStalled, b.got, b.waited.Round(time.Millisecond), stallBytes, context.DeadlineExceeded))
			b.cancel() // closes the connection: the rest is not read
			return n, b.err
		}
		b.waited, b.got = 0, 0
	}
	return n, nil
}

func (b *objectBody) Close() error {
	err := b.body.Close()
	b.cancel()
	return err
}

// Put implements API.
func (c *Client) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts PutOptions) (string, error) {
	h := c.headersOut(opts.Headers)
	in := &s3.PutObjectInput{
		Bucket:               &c.bucket,
		Key:                  &key,
		Body:                 body,
		ContentLength:        aws.Int64(size),
		Metadata:             metaOut(opts.Metadata),
		ChecksumAlgorithm:    c.w.checksum,
		ContentType:          h.contentType,
		CacheControl:         h.cacheControl,
		ContentEncoding:      h.contentEncoding,
		ContentDisposition:   h.contentDisposition,
		ContentLanguage:      h.contentLanguage,
		ServerSideEncryption: h.sse,
		SSEKMSKeyId:          h.kmsKeyID,
		StorageClass:         h.storageClass,
		Tagging:              tagging(opts.Tags),
		RequestPayer:         c.w.payer,
	}
	put := func(conditional bool) (string, error) {
		in.IfNoneMatch = nil
		if conditional {
			in.IfNoneMatch = aws.String("*")
		}
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return "", wrapError("PutObject", key, err)
		}
		out, err := c.s3.PutObject(ctx, in, withExpires(h.expires)...)
		if err != nil {
			return "", wrapError("PutObject", key, err)
		}
		return aws.ToString(out.ETag), nil
	}
	if !opts.IfNoneMatch {
		return put(false)
	}
	var etag string
	err := c.exclusive(ctx, "PutObject", key, func(conditional bool) (err error) {
		etag, err = put(conditional)
		return err
	})
	return etag, err
}

// CreateMultipartUpload implements API.
func (c *Client) CreateMultipartUpload(ctx context.Context, key string, opts PutOptions) (string, error) {
	ctx, cancel := c.small(ctx)
	defer cancel()
	h := c.headersOut(opts.Headers)
	in := &s3.CreateMultipartUploadInput{
		Bucket:               &c.bucket,
		Key:                  &key,
		Metadata:             metaOut(opts.Metadata),
		ChecksumAlgorithm:    c.w.checksum,
		ContentType:          h.contentType,
		CacheControl:         h.cacheControl,
		ContentEncoding:      h.contentEncoding,
		ContentDisposition:   h.contentDisposition,
		ContentLanguage:      h.contentLanguage,
		ServerSideEncryption: h.sse,
		SSEKMSKeyId:          h.kmsKeyID,
		StorageClass:         h.storageClass,
		Tagging:              tagging(opts.Tags),
		RequestPayer:         c.w.payer,
	}
	if opts.CopiedParts {
		in.ChecksumAlgorithm = ""
	}
	out, err := c.s3.CreateMultipartUpload(ctx, in, withExpires(h.expires)...)
	if err != nil {
		return "", wrapError("CreateMultipartUpload", key, err)
	}
	if aws.ToString(out.UploadId) == "" {
		return "", wrapError("CreateMultipartUpload", key, ErrEmptyResult)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart implements API. The part carries a CRC32C checksum that S3
// verifies, so a part corrupted on the way is refused, not stored.
func (c *Client) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (CompletedPart, error) {
	out, err := c.s3.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:            &c.bucket,
		Key:               &key,
		UploadId:          &uploadID,
		PartNumber:        aws.Int32(number),
		Body:              body,
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: c.w.checksum,
		RequestPayer:      c.w.payer,
	})
	if err != nil {
		return CompletedPart{}, wrapError("UploadPart", key, err)
	}
	if aws.ToString(out.ETag) == "" {
		return CompletedPart{}, wrapError("UploadPart", key, ErrEmptyResult)
	}
	return CompletedPart{Number: number, ETag: aws.ToString(out.ETag), ChecksumCRC32C: aws.ToString(out.ChecksumCRC32C),
		ChecksumCRC64NVME: aws.ToString(out.ChecksumCRC64NVME), Size: size}, nil
}

// CompleteMultipartUpload implements API. A 200 answer whose body is an
// <Error> (possibly after keep-alive whitespace) is an error (the SDK turns it
// into one), and so is a 2xx answer without a result.
func (c *Client) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []CompletedPart, opts PutOptions) (string, error) {
	cps := make([]types.CompletedPart, len(parts))
	// Parts copied on the server have no CRC64NVME: an upload holding
	// them names none (see PutOptions.CopiedParts).
	allCRC64 := true
	for _, p := range parts {
		allCRC64 = allCRC64 && p.ChecksumCRC64NVME != ""
	}
	for i, p := range parts {
		cps[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
		if p.ChecksumCRC32C != "" {
			cps[i].ChecksumCRC32C = aws.String(p.ChecksumCRC32C)
		}
		if allCRC64 {
			cps[i].ChecksumCRC64NVME = aws.String(p.ChecksumCRC64NVME)
		}
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          &c.bucket,
		Key:             &key,
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cps},
		RequestPayer:    c.w.payer,
	}
	complete := func(conditional bool) (string, error) {
		in.IfNoneMatch = nil
		if conditional {
			in.IfNoneMatch = aws.String("*")
		}
		out, err := c.s3.CompleteMultipartUpload(ctx, in)
		if err != nil {
			return "", wrapError("CompleteMultipartUpload", key, err)
		}
		if aws.ToString(out.ETag) == "" && aws.ToString(out.Key) == "" {
			return "", wrapError("CompleteMultipartUpload", key, ErrEmptyResult)
		}
		return aws.ToString(out.ETag), nil
	}
	if !opts.IfNoneMatch {
		return complete(false)
	}
	var etag string
	err := c.exclusive(ctx, "CompleteMultipartUpload", key, func(conditional bool) (err error) {
		etag, err = complete(conditional)
		return err
	})
	return etag, err
}

// AbortMultipartUpload implements API.
func (c *Client) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	ctx, cancel := c.small(ctx)
	defer cancel()
	_, err := c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &c.bucket, Key: &key, UploadId: &uploadID, RequestPayer: c.w.payer})
	return wrapError("AbortMultipartUpload", key, err)
}

// ListMultipartUploads implements API.
func (c *Client) ListMultipartUploads(ctx context.Context, prefix string) ([]string, error) {
	var ids []string
	in := &s3.ListMultipartUploadsInput{Bucket: &c.bucket, Prefix: aws.String(prefix), RequestPayer: c.w.payer}
	for {
		pageCtx, cancel := c.small(ctx)
		out, err := c.s3.ListMultipartUploads(pageCtx, in)
		cancel()
		if err != nil {
			return nil, wrapError("ListMultipartUploads", prefix, err)
		}
		for _, u := range out.Uploads {
			ids = append(ids, aws.ToString(u.UploadId))
		}
		if !aws.ToBool(out.IsTruncated) {
			return ids, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Copy implements API.
func (c *Client) Copy(ctx context.Context, src, dst string, opts CopyOptions) (string, error) {
	// A server-side copy moves up to 5 GiB (S3 sends its headers early and
	// whitespace while it copies): four request timeouts, not one.
	ctx, cancel := context.WithTimeout(ctx, 4*c.timeout)
	defer cancel()
	var srcHeaders ObjectHeaders
	if opts.Headers != nil {
		srcHeaders = *opts.Headers
	}
	h := c.headersOut(srcHeaders)
	in := &s3.CopyObjectInput{
		Bucket:     &c.bucket,
		Key:        &dst,
		CopySource: aws.String(c.bucket + "/" + escapeCopySource(src)),
		// Without these S3 gives the copy STANDARD and the bucket's
		// default encryption, whatever the source's were.
		ServerSideEncryption: h.sse,
		SSEKMSKeyId:          h.kmsKeyID,
		StorageClass:         h.storageClass,
		RequestPayer:         c.w.payer,
	}
	if opts.SourceETag != "" {
		in.CopySourceIfMatch = aws.String(opts.SourceETag)
	}
	if opts.ReplaceMetadata != nil {
		// REPLACE replaces the system headers too: those not sent are lost.
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = opts.ReplaceMetadata
		in.ContentType, in.CacheControl, in.ContentEncoding = h.contentType, h.cacheControl, h.contentEncoding
		in.ContentDisposition, in.ContentLanguage = h.contentDisposition, h.contentLanguage
	}
	var expires []func(*s3.Options)
	if in.MetadataDirective == types.MetadataDirectiveReplace {
		expires = withExpires(h.expires)
	}
	out, err := c.s3.CopyObject(ctx, in, expires...)
	if err != nil {
		return "", wrapError("CopyObject", dst, err)
	}
	// Like CompleteMultipartUpload, CopyObject may answer 200 with an error
	// in the body; the SDK reports those, and a missing result is one too.
	if out.CopyObjectResult == nil {
		return "", wrapError("CopyObject", dst, ErrEmptyResult)
	}
	return aws.ToString(out.CopyObjectResult.ETag), nil
}

// Delete implements API.
func (c *Client) Delete(ctx context.Context, key string) error {
	ctx, cancel := c.small(ctx)
	defer cancel()
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &c.bucket, Key: &key, RequestPayer: c.w.payer})
	return wrapError("DeleteObject", key, err)
}

// escapeCopySource URL-encodes a key for x-amz-copy-source, keeping slashes.
func escapeCopySource(key string) string {
	var b strings.Builder
	for _, seg := range strings.Split(key, "/") {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(urlPathEscape(seg))
	}
	return b.String()
}

// CreateBucket creates the client's bucket. bucketfs itself never creates
// buckets; the test bed and `make demo` do.
func (c *Client) CreateBucket(ctx context.Context) error {
	ctx, cancel := c.small(ctx)
	defer cancel()
	_, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &c.bucket})
	return wrapError("CreateBucket", c.bucket, err)
}

// UploadPartCopy implements API.
func (c *Client) UploadPartCopy(ctx context.Context, src, srcETag, key, uploadID string, number int32, first, last int64) (CompletedPart, error) {
	var ifMatch *string
	if srcETag != "" {
		ifMatch = aws.String(srcETag)
	}
	out, err := c.s3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		CopySourceIfMatch: ifMatch,
		Bucket:            &c.bucket,
		Key:               &key,
		UploadId:          &uploadID,
		PartNumber:        aws.Int32(number),
		CopySource:        aws.String(c.bucket + "/" + escapeCopySource(src)),
		CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
		RequestPayer:      c.w.payer,
	})
	if err != nil {
		return CompletedPart{}, wrapError("UploadPartCopy", key, err)
	}
	if out.CopyPartResult == nil || aws.ToString(out.CopyPartResult.ETag) == "" {
		return CompletedPart{}, wrapError("UploadPartCopy", key, ErrEmptyResult)
	}
	return CompletedPart{Number: number, ETag: aws.ToString(out.CopyPartResult.ETag),
		ChecksumCRC32C: aws.ToString(out.CopyPartResult.ChecksumCRC32C), Size: last - first + 1}, nil
}

// DeleteMany implements API. A key S3 could not delete fails the call.
func (c *Client) DeleteMany(ctx context.Context, keys []string) error {
	ctx, cancel := c.small(ctx)
	defer cancel()
	if len(keys) == 0 {
		return nil
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		objs[i] = types.ObjectIdentifier{Key: aws.String(keys[i])}
	}
	out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &c.bucket,
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		// DeleteObjects requires a checksum of its body: with
		// ChecksumNone the SDK adds its default (CRC32).
		ChecksumAlgorithm: c.w.checksum,
		RequestPayer:      c.w.payer,
	})
	if err != nil {
		return wrapError("DeleteObjects", keys[0], err)
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		return &Error{Op: "DeleteObjects", Key: aws.ToString(e.Key), Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}
	}
	return nil
}
