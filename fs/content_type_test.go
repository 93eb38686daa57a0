package fs

import (
	"context"
	"io"
	"maps"
	"strings"
	"syscall"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

func TestParseContentTypeRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ContentTypeRule
		err  string
	}{
		{in: ".log=text/plain", want: ContentTypeRule{".log", "text/plain"}},
		{in: "*.gz=application/gzip", want: ContentTypeRule{"*.gz", "application/gzip"}},
		{in: "README*=text/markdown; charset=utf-8", want: ContentTypeRule{"README*", "text/markdown; charset=utf-8"}},
		{in: ".log", err: "PATTERN=TYPE"},
		{in: "=text/plain", err: "PATTERN=TYPE"},
		{in: ".log=", err: "PATTERN=TYPE"},
		{in: "logs/*.txt=text/plain", err: "base name"},
		{in: "[a-=text/plain", err: "syntax error in pattern"},
		{in: ".x=not a type", err: "content type"},
	} {
		got, err := ParseContentTypeRule(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v; want an error with %q", tc.in, err, tc.err)
		}
	}
}

// TestContentTypeOf: rules first (first match wins, extensions without
// regard to case, globs on the base name), then the MIME tables, then
// application/octet-stream.
func TestContentTypeOf(t *testing.T) {
	rules := []ContentTypeRule{{".log", "text/plain"}, {"*.gz", "application/gzip"}, {"*.tar.gz", "application/x-tar"},
		{".png", "image/x-mine"}}
	for key, want := range map[string]string{
		"a/app.log":      "text/plain",
		"a/APP.LOG":      "text/plain",
		"a/b.tar.gz":     "application/gzip", // the first match wins
		"a/pic.png":      "image/x-mine",     // over the MIME tables
		"a/gz/plain":     defaultContentType, // the base name only
		"a/page.html":    "text/html; charset=utf-8",
		"a/.hidden":      defaultContentType,
		"a/no-extension": defaultContentType,
	} {
		if got := contentTypeOf(rules, key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if got := contentTypeOf(nil, "x.png"); got != "image/png" {
		t.Errorf("x.png without rules: %q", got)
	}
}

// TestNewFileTyped: the upload of a new file is typed by its name, and the
// type is recorded for the copies a rename or chmod makes later; a file
// whose headers a HEAD read keeps them.
func TestNewFileTyped(t *testing.T) {
	fake := s3fake.New()
	b := newTestFS(t, fake, func(c *Config) { c.ContentTypes = []ContentTypeRule{{".log", "text/x-log"}} })
	for key, want := range map[string]string{"d/a.png": "image/png", "d/b.log": "text/x-log", "d/c": defaultContentType} {
		f := newFileNode(b, key)
		if got := f.uploadOptions().Headers.ContentType; got != want {
			t.Errorf("%s: Content-Type %q, want %q", key, got, want)
		}
		if f.attr.headers.ContentType != want {
			t.Errorf("%s: recorded %+v", key, f.attr.headers)
		}
	}
	kept := s3client.ObjectHeaders{ContentType: "text/html", CacheControl: "no-cache", StorageClass: "REDUCED_REDUNDANCY"}
	if _, err := fake.Put(context.Background(), "d/page.png", strings.NewReader("x"), 1, s3client.PutOptions{Headers: kept}); err != nil {
		t.Fatal(err)
	}
	if got := lookedUp(t, b, "d/page.png").uploadOptions().Headers; got != kept {
		t.Errorf("rewrite of an object read by HEAD: headers %+v, want %+v", got, kept)
	}
}

// TestRenameRetypes: a rename keeps the Content-Type unless it is the one
// the mount's rules give the old name (a temporary name), which becomes the
// new name's; the copy replaces the metadata with all of it, pending
// changes over it.
func TestRenameRetypes(t *testing.T) {
	b := newTestFS(t, s3fake.New(), nil)
	meta := map[string]string{"mode": "33188", "x": "y"}
	for _, tc := range []struct {
		name, src, dst, contentType string
		pending                     map[string]string
		want                        string
		replace                     map[string]string
	}{
		{"temporary name", "d/.page.html.Xy12Ab", "d/page.html", defaultContentType, nil, "text/html; charset=utf-8", meta},
		{"typed by name", "d/a.html", "d/a.txt", "text/html; charset=utf-8", nil, "text/plain; charset=utf-8", meta},
		{"set otherwise", "d/a.html", "d/a.txt", "text/html", nil, "text/html", meta},
		{"same extension", "d/a.png", "e/b.png", "image/png", nil, "image/png", meta},
		{"pending changes ride", "d/a", "d/b", "text/html", map[string]string{"mode": "33261"}, "text/html",
			map[string]string{"mode": "33261", "x": "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := entryAttr{fromHead: true, meta: meta, headers: s3client.ObjectHeaders{ContentType: tc.contentType, CacheControl: "max-age=1"}}
			opts := b.renameCopyOptions(tc.src, tc.dst, a, tc.pending)
			if opts.Headers == nil || opts.Headers.ContentType != tc.want || opts.Headers.CacheControl != "max-age=1" {
				t.Fatalf("headers %+v, want Content-Type %q", opts.Headers, tc.want)
			}
			if !maps.Equal(opts.ReplaceMetadata, tc.replace) {
				t.Fatalf("replace metadata %v, want %v", opts.ReplaceMetadata, tc.replace)
			}
		})
	}
}

// TestCopiesKeepHeaders: the self-copy of a chmod, a copy whose source the
// mount has not read (one HEAD) and a multipart copy (one HEAD, one
// GetObjectTagging, the tags set on the new upload) keep the source's
// headers, metadata and tags; tags that cannot be read are left out with
// a warning, and the copy goes on.
func TestCopiesKeepHeaders(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.New()
	b := newTestFS(t, fake, func(c *Config) { c.MultipartCopyThreshold = 6 << 20 })
	headers := s3client.ObjectHeaders{ContentType: "text/html", CacheControl: "max-age=60", ContentEncoding: "gzip",
		ContentDisposition: "inline", ContentLanguage: "fr", Expires: "Thu, 01 Jan 2037 00:00:00 GMT",
		StorageClass: "REDUCED_REDUNDANCY", SSE: s3client.SSEKMS, SSEKMSKeyID: "key-1"}
	tags := map[string]string{"team": "web"}
	put := func(key string, size int) {
		t.Helper()
		if _, err := fake.Put(ctx, key, strings.NewReader(strings.Repeat("x", size)), int64(size),
			s3client.PutOptions{Metadata: map[string]string{"owner": "web"}, Headers: headers, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	want := headers
	want.TagCount = 1
	check := func(key string, meta map[string]string) {
		t.Helper()
		_, info, ok := fake.Object(key)
		if !ok {
			t.Fatalf("%s: missing", key)
		}
		if info.Headers != want || !maps.Equal(info.Metadata, meta) {
			t.Fatalf("%s: headers %+v, metadata %v; want %+v, %v", key, info.Headers, info.Metadata, want, meta)
		}
		if got, _ := fake.Tags(ctx, key); !maps.Equal(got, tags) {
			t.Fatalf("%s: tags %v", key, got)
		}
	}

	t.Run("chmod", func(t *testing.T) {
		put("chmod", 10)
		f := lookedUp(t, b, "chmod")
		fake.ResetCounts()
		f.mu.Lock()
		f.attr.mode = syscall.S_IFREG | 0o600
		f.pending = true
		f.mu.Unlock()
		if err := f.applyPending(ctx); err != nil {
			t.Fatal(err)
		}
		if c := fake.Counts(); c[s3fake.OpHeadObject] != 0 || c[s3fake.OpCopyObject] != 1 || len(c) != 1 {
			t.Fatalf("requests %v; want one CopyObject", c)
		}
		// The copy pins the mtime shown (its LastModified would move it).
		_, info, _ := fake.Object("chmod")
		if info.Metadata[metaMtime] == "" {
			t.Fatalf("the self-copy dropped the mtime: %v", info.Metadata)
		}
		check("chmod", map[string]string{"owner": "web", "mode": "33152", metaMtime: info.Metadata[metaMtime]})
	})
	t.Run("copy of an unread source", func(t *testing.T) {
		put("small", 10)
		fake.ResetCounts()
		if _, err := b.copyObject(ctx, "small", "small-copy", 10, s3client.CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		if c := fake.Counts(); c[s3fake.OpHeadObject] != 1 || c[s3fake.OpCopyObject] != 1 || len(c) != 2 {
			t.Fatalf("requests %v; want one HeadObject, one CopyObject", c)
		}
		check("small-copy", map[string]string{"owner": "web"})
	})
	t.Run("multipart copy", func(t *testing.T) {
		put("big", 7<<20)
		fake.ResetCounts()
		if _, err := b.copyObject(ctx, "big", "big-copy", 7<<20, s3client.CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		if c := fake.Counts(); c[s3fake.OpHeadObject] != 1 || c[s3fake.OpGetObjectTagging] != 1 || c[s3fake.OpUploadPartCopy] != 1 {
			t.Fatalf("requests %v; want one HeadObject, one GetObjectTagging, one UploadPartCopy", c)
		}
		check("big-copy", map[string]string{"owner": "web"})
	})
	t.Run("multipart copy, tags denied", func(t *testing.T) {
		fake.SetHook(func(op, key string) s3fake.Fault {
			if op == s3fake.OpGetObjectTagging {
				return s3fake.Fault{Err: s3fake.APIError(op, key, "AccessDenied", 403)}
			}
			return s3fake.Fault{}
		})
		defer fake.SetHook(nil)
		var log strings.Builder
		b.log.SetOutput(&log)
		defer b.log.SetOutput(io.Discard)
		if _, err := b.copyObject(ctx, "big", "big-untagged", 7<<20, s3client.CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		_, info, _ := fake.Object("big-untagged")
		if info.Headers.TagCount != 0 || info.Headers.ContentType != "text/html" || info.Headers.StorageClass != "REDUCED_REDUNDANCY" {
			t.Fatalf("headers %+v", info.Headers)
		}
		if !strings.Contains(log.String(), "code=AccessDenied") || !strings.Contains(log.String(), "key=big") {
			t.Fatalf("no warning naming the key and code: %q", log.String())
		}
	})
}
