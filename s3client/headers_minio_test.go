package s3client_test

import (
	"bytes"
	"context"
	"maps"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestCopyKeepsHeadersOnMinIO: with the headers of its source's HEAD, a
// copy that replaces the metadata, a copy that copies it (all but Expires,
// on MinIO) and a multipart upload carrying them keep the Content-*
// headers, Expires, storage class and SSE-KMS key; CopyObject copies the tags (TaggingDirective COPY), a
// multipart upload takes those it is given. Without them a REPLACE copy
// loses the headers and any copy becomes STANDARD: what the mount avoids.
func TestCopyKeepsHeadersOnMinIO(t *testing.T) {
	srv := s3test.StartMinIOWithKMS(t)
	_, c := srv.Bucket(t)
	ctx := context.Background()
	src := s3client.ObjectHeaders{ContentType: "text/html", CacheControl: "max-age=60", ContentEncoding: "gzip",
		ContentDisposition: `attachment; filename="a.html"`, ContentLanguage: "fr", Expires: "Thu, 01 Jan 2037 00:00:00 GMT",
		StorageClass: "REDUCED_REDUNDANCY", SSE: s3client.SSEKMS, SSEKMSKeyID: s3test.KMSKeyName}
	tags := map[string]string{"team": "web", "tier": "gold"}
	meta := map[string]string{"owner": "web"}
	if _, err := c.Put(ctx, "src", bytes.NewReader([]byte("<p>hi</p>")), 9, s3client.PutOptions{Metadata: meta, Headers: src, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Head(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	headed := info.Headers
	if headed.TagCount != 2 || headed.SSE != s3client.SSEKMS || headed.SSEKMSKeyID == "" {
		t.Fatalf("HEAD of the source: %+v", headed)
	}
	check := func(key string, want s3client.ObjectHeaders, wantMeta map[string]string, wantTags map[string]string) {
		t.Helper()
		info, err := c.Head(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w := want
		w.TagCount = int32(len(wantTags))
		if info.Headers != w || !maps.Equal(info.Metadata, wantMeta) {
			t.Errorf("%s: headers %+v, metadata %v; want %+v, %v", key, info.Headers, info.Metadata, w, wantMeta)
		}
		if got, err := c.Tags(ctx, key); err != nil || !maps.Equal(got, wantTags) {
			t.Errorf("%s: tags %v, %v; want %v", key, got, err, wantTags)
		}
	}

	if _, err := c.Copy(ctx, "src", "replaced", s3client.CopyOptions{ReplaceMetadata: map[string]string{"mode": "33188"}, Headers: &headed}); err != nil {
		t.Fatal(err)
	}
	check("replaced", headed, map[string]string{"mode": "33188"}, tags)
	if _, err := c.Copy(ctx, "src", "copied", s3client.CopyOptions{Headers: &headed}); err != nil {
		t.Fatal(err)
	}
	// MinIO drops Expires from a copy that copies the metadata (S3 keeps
	// it): the mount's copies all replace it.
	noExpires := headed
	noExpires.Expires = ""
	check("copied", noExpires, meta, tags)
	if _, err := c.Copy(ctx, "src", "src", s3client.CopyOptions{ReplaceMetadata: meta, Headers: &headed}); err != nil {
		t.Fatal(err)
	}
	check("src", headed, meta, tags)

	id, err := c.CreateMultipartUpload(ctx, "multipart", s3client.PutOptions{Metadata: meta, Headers: headed, Tags: tags, CopiedParts: true})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPartCopy(ctx, "src", "", "multipart", id, 1, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, "multipart", id, []s3client.CompletedPart{part}, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	check("multipart", headed, meta, tags)

	// What S3 does to a copy given nothing: the reason for all the above.
	if _, err := c.Copy(ctx, "src", "bare", s3client.CopyOptions{ReplaceMetadata: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	bare, err := c.Head(ctx, "bare")
	if err != nil {
		t.Fatal(err)
	}
	if bare.Headers.CacheControl != "" || bare.Headers.StorageClass != "STANDARD" || bare.Headers.SSE == s3client.SSEKMS {
		t.Errorf("a bare REPLACE copy kept %+v: the test no longer shows why headers are sent", bare.Headers)
	}
}
