package s3client

import (
	"context"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// storageClassStandard is the class S3 gives an object written without one,
// and leaves out of a HEAD.
const storageClassStandard = "STANDARD"

// headersOut are an object's headers as a write sends them: h's, and the
// mount's storage class and encryption where h names none.
type headersOut struct {
	contentType, cacheControl, contentEncoding, contentDisposition, contentLanguage *string
	storageClass                                                                    types.StorageClass
	sse                                                                             types.ServerSideEncryption
	kmsKeyID                                                                        *string
	// expires is sent as it came (withExpires): the SDK's field is a time,
	// which would reformat it or lose one it cannot parse.
	expires string
}

// headersOut resolves h against the mount's write options.
func (c *Client) headersOut(h ObjectHeaders) headersOut {
	out := headersOut{
		contentType:        optional(h.ContentType),
		cacheControl:       optional(h.CacheControl),
		contentEncoding:    optional(h.ContentEncoding),
		contentDisposition: optional(h.ContentDisposition),
		contentLanguage:    optional(h.ContentLanguage),
		storageClass:       c.w.storageClass,
		sse:                c.w.sse,
		kmsKeyID:           c.w.kmsKeyID,
		expires:            h.Expires,
	}
	switch {
	case h.StorageClass == storageClassStandard && c.w.storageClass == "":
		// What S3 gives anyway: no header, as before headers were kept.
	case h.StorageClass != "":
		out.storageClass = types.StorageClass(h.StorageClass)
	}
	if h.SSE != "" {
		out.sse, out.kmsKeyID = types.ServerSideEncryption(h.SSE), optional(h.SSEKMSKeyID)
	}
	return out
}

// withExpires sends the Expires header exactly as expires holds it; none
// when it is empty.
func withExpires(expires string) []func(*s3.Options) {
	if expires == "" {
		return nil
	}
	return []func(*s3.Options){s3.WithAPIOptions(smithyhttp.SetHeaderValue("Expires", expires))}
}

// headersIn reads a HEAD's answer.
func headersIn(out *s3.HeadObjectOutput) ObjectHeaders {
	h := ObjectHeaders{
		ContentType:        aws.ToString(out.ContentType),
		CacheControl:       aws.ToString(out.CacheControl),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		Expires:            aws.ToString(out.ExpiresString),
		StorageClass:       string(out.StorageClass),
		SSE:                string(out.ServerSideEncryption),
		SSEKMSKeyID:        aws.ToString(out.SSEKMSKeyId),
		TagCount:           aws.ToInt32(out.TagCount),
	}
	if h.StorageClass == "" {
		h.StorageClass = storageClassStandard
	}
	return h
}

// tagging encodes tags as x-amz-tagging wants them (a URL query); nil for none.
func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	q := url.Values{}
	for k, v := range tags {
		q.Set(k, v)
	}
	return aws.String(q.Encode())
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// Tags implements API.
func (c *Client) Tags(ctx context.Context, key string) (map[string]string, error) {
	ctx, cancel := c.small(ctx)
	defer cancel()
	out, err := c.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &c.bucket, Key: &key, RequestPayer: c.w.payer})
	if err != nil {
		return nil, wrapError("GetObjectTagging", key, err)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}
