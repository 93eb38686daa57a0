package s3client

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ListMultipartUploadsFunc calls fn with the key, upload ID and initiation
// time of every incomplete multipart upload under prefix, page by page; it
// stops at fn's first error and returns it. (bucketfs cleanup uses it to
// abort only uploads older than a bound.)
func (c *Client) ListMultipartUploadsFunc(ctx context.Context, prefix string, fn func(key, uploadID string, initiated time.Time) error) error {
	in := &s3.ListMultipartUploadsInput{Bucket: &c.bucket}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	for {
		out, err := c.s3.ListMultipartUploads(ctx, in)
		if err != nil {
			return wrapError("ListMultipartUploads", prefix, err)
		}
		for _, u := range out.Uploads {
			if err := fn(aws.ToString(u.Key), aws.ToString(u.UploadId), aws.ToTime(u.Initiated)); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}
