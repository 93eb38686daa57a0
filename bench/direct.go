package main

// The ceiling: aws-sdk-go-v2 used directly, without bucketfs. This file is
// the one exception to "only s3client imports the SDK": a ceiling measured
// through bucketfs's own S3 layer would hide that layer's costs.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// directClient moves data with the SDK alone, using the mount's part size,
// upload concurrency, read block size and read-ahead concurrency, and the
// same checksum settings as bucketfs (CRC32C on every PutObject and part).
type directClient struct {
	s3          *s3.Client
	partSize    int64
	concurrency int   // parts in flight, over all uploads
	blockSize   int64 // ranged-GET size of a download
	readers     int   // ranged GETs in flight in a download
}

// newDirectClient builds a client for endpoint (the proxy, or MinIO itself
// for setup) with connection settings like bucketfs's.
func newDirectClient(ctx context.Context, endpoint string, c benchConfig) (*directClient, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, "")))
	if err != nil {
		return nil, fmt.Errorf("loading the SDK configuration: %w", err)
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		MaxConnsPerHost:     64,
		IdleConnTimeout:     90 * time.Second,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     64 << 10,
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
		o.HTTPClient = &http.Client{Transport: transport}
	})
	readers := int(c.ReadAhead / c.ReadBlock)
	if readers < 1 {
		readers = 1
	}
	return &directClient{s3: client, partSize: c.PartSize, concurrency: c.UploadConcurrency, blockSize: c.ReadBlock, readers: readers}, nil
}

// partSlots bounds the parts in flight (over every upload sharing it) and
// recycles their buffers: taking a slot takes its buffer.
type partSlots struct {
	ch   chan []byte
	size int64
}

func (d *directClient) newPartSlots() *partSlots {
	s := &partSlots{ch: make(chan []byte, d.concurrency), size: d.partSize}
	for i := 0; i < d.concurrency; i++ {
		s.ch <- nil
	}
	return s
}

func (s *partSlots) take(ctx context.Context) ([]byte, error) {
	select {
	case b := <-s.ch:
		if b == nil {
			b = make([]byte, s.size)
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *partSlots) give(b []byte) { s.ch <- b }

// upload writes size bytes of src to key as a multipart upload with the
// parts sent in parallel (as many as slots allow), and returns its ETag.
func (d *directClient) upload(ctx context.Context, slots *partSlots, bucket, key string, src io.ReaderAt, size int64) (string, error) {
	created, err := d.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &bucket, Key: &key, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	})
	if err != nil {
		return "", fmt.Errorf("CreateMultipartUpload %s: %w", key, err)
	}
	id := created.UploadId
	nparts := int((size + d.partSize - 1) / d.partSize)
	parts := make([]types.CompletedPart, nparts)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; failed.Store(true) })
	}
	for i := 0; i < nparts && !failed.Load(); i++ {
		buf, err := slots.take(ctx)
		if err != nil {
			fail(err)
			break
		}
		off := int64(i) * d.partSize
		n := min(d.partSize, size-off)
		wg.Add(1)
		go func(i int, buf []byte) {
			defer wg.Done()
			defer slots.give(buf)
			body := buf[:n]
			if _, err := src.ReadAt(body, off); err != nil && !errors.Is(err, io.EOF) {
				fail(fmt.Errorf("reading part %d of the source: %w", i+1, err))
				return
			}
			out, err := d.s3.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &bucket, Key: &key, UploadId: id, PartNumber: aws.Int32(int32(i + 1)),
				Body: bytes.NewReader(body), ContentLength: aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			})
			if err != nil {
				fail(fmt.Errorf("UploadPart %d of %s: %w", i+1, key, err))
				return
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C}
		}(i, buf)
	}
	wg.Wait()
	if firstErr != nil {
		_, _ = d.s3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id})
		return "", firstErr
	}
	sort.Slice(parts, func(a, b int) bool { return *parts[a].PartNumber < *parts[b].PartNumber })
	done, err := d.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		_, _ = d.s3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id})
		return "", fmt.Errorf("CompleteMultipartUpload %s: %w", key, err)
	}
	return aws.ToString(done.ETag), nil
}

// download reads key (size bytes) with ranged GETs of blockSize, readers
// at a time, and returns the bytes received. The data is discarded.
func (d *directClient) download(ctx context.Context, bucket, key string, size int64) (int64, error) {
	blocks := (size + d.blockSize - 1) / d.blockSize
	var next, total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, d.readers)
	for w := 0; w < d.readers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, d.blockSize)
			for {
				i := next.Add(1) - 1
				if i >= blocks {
					return
				}
				off := i * d.blockSize
				n := min(d.blockSize, size-off)
				if err := d.getRange(ctx, bucket, key, off, buf[:n]); err != nil {
					errs <- err
					return
				}
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return total.Load(), err
	}
	return total.Load(), nil
}

// getRange fills buf from key at off with one ranged GET.
func (d *directClient) getRange(ctx context.Context, bucket, key string, off int64, buf []byte) error {
	out, err := d.s3.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &bucket, Key: &key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(buf))-1)),
	})
	if err != nil {
		return fmt.Errorf("GetObject %s at %d: %w", key, off, err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return fmt.Errorf("reading %s at %d: %w", key, off, err)
	}
	return nil
}

// put writes a small object with one PutObject, CRC32C as bucketfs does.
func (d *directClient) put(ctx context.Context, bucket, key string, body []byte) error {
	_, err := d.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	})
	if err != nil {
		return fmt.Errorf("PutObject %s: %w", key, err)
	}
	return nil
}

// list pages through ListObjectsV2 of prefix (delimiter "" for a
// recursive listing) and returns the objects and prefixes seen.
func (d *directClient) list(ctx context.Context, bucket, prefix, delimiter string) (int, error) {
	in := &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix), MaxKeys: aws.Int32(1000)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	n := 0
	for {
		out, err := d.s3.ListObjectsV2(ctx, in)
		if err != nil {
			return n, fmt.Errorf("ListObjectsV2 %s: %w", prefix, err)
		}
		n += len(out.Contents) + len(out.CommonPrefixes)
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}
