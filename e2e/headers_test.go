package e2e

import (
	"bytes"
	"context"
	"maps"
	"os"
	"strings"
	"testing"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestCopiesKeepHeaders: objects another client wrote with Content-Type,
// Cache-Control, Content-Encoding, Content-Disposition, Expires, user
// metadata, storage class, an SSE-KMS key and tags keep all of them through
// the mount's chmod (its self-copy, written at unmount), a file rename, a
// directory rename and the rename of an object above the multipart copy
// threshold; new files are typed by name, --content-type rules first, and a
// file written under a temporary name is typed by its final one.
func TestCopiesKeepHeaders(t *testing.T) {
	srv := s3test.StartMinIOWithKMS(t)
	bucket, _ := srv.Bucket(t)
	m := mountBucket(t, srv, bucket, func(c *bfs.Config) {
		c.MultipartCopyThreshold = 5 << 20
		c.ContentTypes = []bfs.ContentTypeRule{{Pattern: ".log", ContentType: "text/x-log"}}
	})
	ctx := context.Background()
	headers := s3client.ObjectHeaders{ContentType: "text/html", CacheControl: "max-age=60", ContentEncoding: "gzip",
		ContentDisposition: "inline", ContentLanguage: "fr", Expires: "Thu, 01 Jan 2037 00:00:00 GMT",
		StorageClass: "REDUCED_REDUNDANCY", SSE: s3client.SSEKMS, SSEKMSKeyID: s3test.KMSKeyName}
	meta := map[string]string{"owner": "web"}
	tags := map[string]string{"team": "web"}
	seed := map[string]int{"chmod.html": 100, "moved.html": 100, "dir/inner.html": 100, "big.bin": 6 << 20}
	for key, size := range seed {
		if _, err := m.Client.Put(ctx, key, bytes.NewReader(randomBytes(1, size)), int64(size),
			s3client.PutOptions{Metadata: meta, Headers: headers, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := m.Client.Head(ctx, "chmod.html")
	if err != nil {
		t.Fatal(err)
	}
	want := info.Headers // as MinIO names the key
	m.Counter.Reset()

	if err := os.Chmod(m.Path("chmod.html"), 0o600); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"moved.html": "moved-to.html", "dir": "renamed-dir", "big.bin": "big-to.bin"} {
		if err := os.Rename(m.Path(from), m.Path(to)); err != nil {
			t.Fatalf("rename %s: %v", from, err)
		}
	}
	for name, data := range map[string]string{"new.txt": "text", "new.png": "\x89PNG", "app.log": "log", ".page.html.Xa81Qz": "<p>"} {
		if err := os.WriteFile(m.Path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(m.Path(".page.html.Xa81Qz"), m.Path("page.html")); err != nil {
		t.Fatal(err)
	}
	m.Unmount(t) // writes the chmod's pending self-copy
	counts := m.Counter.Snapshot()
	t.Logf("requests: %v", counts)
	if counts["GetObjectTagging"] != 1 {
		t.Errorf("%d GetObjectTagging, want 1 (the multipart copy's)", counts["GetObjectTagging"])
	}

	for key, wantMeta := range map[string]map[string]string{
		"chmod.html": {"owner": "web", "mode": "33152"}, "moved-to.html": meta, "renamed-dir/inner.html": meta, "big-to.bin": meta,
	} {
		info, err := m.Client.Head(ctx, key)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		for k, v := range wantMeta {
			if info.Metadata[k] != v {
				t.Errorf("%s: metadata %v, want %s=%s", key, info.Metadata, k, v)
			}
		}
		if info.Headers != want {
			t.Errorf("%s: headers %+v\n want %+v", key, info.Headers, want)
		}
		if got, err := m.Client.Tags(ctx, key); err != nil || !maps.Equal(got, tags) {
			t.Errorf("%s: tags %v, %v", key, got, err)
		}
	}
	for key, wantType := range map[string]string{"new.txt": "text/plain", "new.png": "image/png", "app.log": "text/x-log", "page.html": "text/html"} {
		info, err := m.Client.Head(ctx, key)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if got := info.Headers.ContentType; got != wantType && !strings.HasPrefix(got, wantType+";") {
			t.Errorf("%s: Content-Type %q, want %s", key, got, wantType)
		}
	}
}
