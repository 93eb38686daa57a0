package s3client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestCopyConditions: a copy conditioned on its source's ETag fails with
// ErrPreconditionFailed once the source changed, and copies nothing; MinIO
// (the S3 contract) and the fake agree.
func TestCopyConditions(t *testing.T) {
	srv := s3test.StartMinIO(t)
	_, minio := srv.Bucket(t)
	for _, c := range []struct {
		name string
		api  s3client.API
	}{{"minio", minio}, {"fake", s3fake.New()}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			put := func(key, body string) string {
				t.Helper()
				etag, err := c.api.Put(ctx, key, bytes.NewReader([]byte(body)), int64(len(body)), s3client.PutOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return etag
			}
			old := put("src", "old")
			put("src", "new")
			for _, tc := range []struct {
				what    string
				dst     string
				opts    s3client.CopyOptions
				refused bool
			}{
				{"the source's old ETag", "a", s3client.CopyOptions{SourceETag: old}, true},
				{"no condition", "b", s3client.CopyOptions{}, false},
			} {
				_, err := c.api.Copy(ctx, "src", tc.dst, tc.opts)
				if refused := errors.Is(err, s3client.ErrPreconditionFailed); refused != tc.refused || !refused && err != nil {
					t.Errorf("copy with %s: %v; want refused %v", tc.what, err, tc.refused)
				}
			}
			info, err := c.api.Head(ctx, "src")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.api.Copy(ctx, "src", "c", s3client.CopyOptions{SourceETag: info.ETag}); err != nil {
				t.Errorf("copy with the source's current ETag: %v", err)
			}
			if _, err := c.api.Head(ctx, "a"); !errors.Is(err, s3client.ErrNotFound) {
				t.Errorf("HEAD a after a refused copy: %v; want not found", err)
			}
		})
	}
}
