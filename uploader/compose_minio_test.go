package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// composedETag is the multipart ETag S3 gives the object of plan's parts
// of data: the MD5 of the parts' MD5s, copied ones included.
func composedETag(t *testing.T, plan composePlan, data []byte) string {
	t.Helper()
	var parts []s3client.CompletedPart
	for _, p := range plan.parts {
		parts = append(parts, s3client.CompletedPart{ETag: fmt.Sprintf(`"%x"`, md5.Sum(data[p.off:p.end]))})
	}
	etag, ok := multipartETag(parts)
	if !ok {
		t.Fatal("no multipart ETag")
	}
	return etag
}

// TestComposeOnMinIO: composed objects on a real server hold the edited
// bytes and the multipart ETag of their parts, copied and uploaded alike
// (a copied short last part included, and a CRC32C upload without
// copies); a base changed while its parts are copied is refused with 412
// and stays as the other writer left it; a 200 with an <Error> body fails
// Compose and publishes nothing.
func TestComposeOnMinIO(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20, Concurrency: 4})
	ctx := context.Background()

	for _, tc := range []struct {
		name            string
		baseSize, size  int64
		writes          []edit
		copies, uploads int
	}{
		{"4 KiB overwritten in the middle", 20 << 20, 20 << 20, []edit{{10 << 20, 4 << 10}}, 2, 1},
		{"a short last part copied", 12 << 20, 12 << 20, []edit{{6 << 20, 4 << 10}}, 2, 1},
		{"appended", 16 << 20, 17 << 20, []edit{{16 << 20, 1 << 20}}, 1, 1},
		{"truncated", 16 << 20, 9 << 20, nil, 1, 0},
		{"rewritten (no copy, CRC32C parts)", 16 << 20, 25 << 20, []edit{{0, 25 << 20}}, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "composed/" + strings.ReplaceAll(tc.name, " ", "-")
			old := noise(120, int(tc.baseSize))
			base := tb.putBase(t, key, old)
			want, same := edited(old, tc.size, 121, tc.writes...)
			l := Layout{Size: tc.size, Data: newStage(want), Base: base, Same: same}
			plan, err := planCompose(l, u.cfg.PartSize)
			if err != nil {
				t.Fatal(err)
			}
			copies, uploads := tb.faults.Count("UploadPartCopy"), tb.faults.Count("UploadPart")
			res, err := u.Compose(ctx, key, s3client.PutOptions{Metadata: map[string]string{"mode": "33188"}}, l)
			if err != nil {
				t.Fatal(err)
			}
			tb.checkObject(t, key, want)
			info, err := tb.direct.Head(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if etag := composedETag(t, plan, want); res.ETag != etag || info.ETag != etag {
				t.Fatalf("ETag %s, object's %s, want %s", res.ETag, info.ETag, etag)
			}
			if info.Metadata["mode"] != "33188" {
				t.Fatalf("metadata %v", info.Metadata)
			}
			copies, uploads = tb.faults.Count("UploadPartCopy")-copies, tb.faults.Count("UploadPart")-uploads
			if copies != tc.copies || uploads != tc.uploads || res.Parts != tc.copies+tc.uploads {
				t.Fatalf("%d copies and %d uploads (%+v), want %d and %d", copies, uploads, res, tc.copies, tc.uploads)
			}
			if res.Sent+res.Copied != tc.size || res.Sent != sentBytes(plan.parts) {
				t.Fatalf("sent %d, copied %d", res.Sent, res.Copied)
			}
			tb.checkNoUploads(t)
		})
	}

	t.Run("a base changed while it is copied", func(t *testing.T) {
		old, theirs := noise(122, 30<<20), noise(123, 30<<20)
		base := tb.putBase(t, "moving", old)
		want, same := edited(old, 30<<20, 124, edit{10 << 20, 4 << 10})
		var once sync.Once
		var putErr error
		tb.faults.Add(s3test.Rule{Op: "UploadPartCopy", Match: func(*http.Request) bool {
			// Before the first copy reaches the server, another writer
			// replaces the object.
			once.Do(func() {
				_, putErr = tb.direct.Put(context.Background(), "moving", bytes.NewReader(theirs), int64(len(theirs)), s3client.PutOptions{})
			})
			return false
		}})
		defer tb.faults.Clear()
		_, err := u.Compose(ctx, "moving", s3client.PutOptions{}, Layout{Size: int64(len(want)), Data: newStage(want), Base: base, Same: same})
		var s3err *s3client.Error
		if !errors.Is(err, s3client.ErrPreconditionFailed) || !errors.As(err, &s3err) || s3err.Status != http.StatusPreconditionFailed {
			t.Fatalf("Compose from a replaced base: %v; want a 412", err)
		}
		if putErr != nil {
			t.Fatalf("the other writer's PutObject: %v", putErr)
		}
		tb.checkObject(t, "moving", theirs)
		tb.checkNoUploads(t)
	})

	t.Run("a 200 with an error body", func(t *testing.T) {
		old := noise(125, 20<<20)
		base := tb.putBase(t, "erring", old)
		want, same := edited(old, 20<<20, 126, edit{10 << 20, 4 << 10})
		rule := tb.faults.Add(s3test.Rule{Op: "UploadPartCopy", Fault: s3test.Fault{
			AfterSend: true, Body: "\n  \n" + s3test.ErrorBody("InternalError", "We encountered an internal error. Please try again."),
		}})
		defer tb.faults.Clear()
		_, err := u.Compose(ctx, "erring", s3client.PutOptions{}, Layout{Size: int64(len(want)), Data: newStage(want), Base: base, Same: same})
		if s3client.Code(err) != "InternalError" || tb.faults.Hits(rule) < 3 {
			t.Fatalf("Compose with every copy answered 200 <Error>: %v (%d faults)", err, tb.faults.Hits(rule))
		}
		tb.checkObject(t, "erring", old)
		tb.checkNoUploads(t)
	})
}
