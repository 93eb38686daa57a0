package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestCreateMultipartFailurePublishesNothing: when CreateMultipartUpload
// fails for good (retries exhausted), the writes fail, Complete returns the
// failure, no PutObject is sent, and the object the upload would have
// replaced is unchanged.
func TestCreateMultipartFailurePublishesNothing(t *testing.T) {
	tb := newTestBed(t)
	u := newUploader(t, tb.client, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	old := []byte("the old object, which must survive")
	if _, err := tb.direct.Put(context.Background(), "precious", bytes.NewReader(old), int64(len(old)), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rule := tb.faults.Add(s3test.Rule{Op: "CreateMultipartUpload", Fault: s3test.Fault{Status: 500, Code: "InternalError"}})
	up := u.Start("precious", s3client.PutOptions{})
	ctx := context.Background()
	chunk := randomData(60, 1<<20)
	var werr error
	written := 0
	for i := 0; i < 40; i++ {
		n, err := up.Write(ctx, chunk)
		written += n
		if err != nil && werr == nil {
			werr = err
		}
	}
	if !errors.Is(werr, ErrUploadFailed) || s3client.Code(werr) != "InternalError" {
		t.Fatalf("writes after CreateMultipartUpload failed: %v; want ErrUploadFailed with the S3 code", werr)
	}
	if written >= 40<<20 {
		t.Fatal("all 40 MiB were accepted")
	}
	if _, err := up.Write(ctx, chunk); !errors.Is(err, ErrUploadFailed) {
		t.Fatalf("a write after the failure: %v", err)
	}
	_, err := up.Complete(ctx)
	if err == nil || s3client.Code(err) != "InternalError" || !errors.Is(err, up.Err()) {
		t.Fatalf("Complete: %v; want the upload's permanent error (%v)", err, up.Err())
	}
	if n := tb.faults.Count("PutObject"); n != 0 {
		t.Fatalf("%d PutObject requests after the failure: %v", n, tb.faults.Ops())
	}
	if tb.faults.Hits(rule) != 3 {
		t.Fatalf("CreateMultipartUpload tried %d times, want 3 (once, then the SDK's retries; no second upload)", tb.faults.Hits(rule))
	}
	tb.checkObject(t, "precious", old)
	tb.checkNoUploads(t)
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestFailedSmallUploadPublishesNothing: a permanent failure before any
// multipart upload exists (here a failed part write to the spill file is
// simulated by failing the upload) makes Complete fail without a PutObject.
func TestFailedSmallUploadPublishesNothing(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	up := u.Start("small", s3client.PutOptions{})
	writeAll(t, up, []byte("abc"), 3)
	cause := errors.New("injected permanent failure")
	up.fail(cause)
	if _, err := up.Complete(context.Background()); !errors.Is(err, cause) {
		t.Fatalf("Complete of a failed upload: %v, want %v", err, cause)
	}
	if c.Count("PutObject") != 0 {
		t.Fatal("a failed upload was published")
	}
	if _, ok := c.object("small"); ok {
		t.Fatal("an object appeared")
	}
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestUploadStateRaceFree: Key, SetKey, SetMetadata, Size and Err from
// other goroutines while the owner writes, completes and aborts, small
// files (no multipart upload: SetKey reads the completion state) and large
// (run with -race).
func TestUploadStateRaceFree(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: 32 << 20})
	for i, tc := range []struct {
		finish string
		size   int
	}{{"complete", 3}, {"abort", 3}, {"complete", 2*MinPartSize + 5}, {"abort", 2*MinPartSize + 5}} {
		finish := tc.finish
		up := u.Start(fmt.Sprintf("raced/%d", i), s3client.PutOptions{})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = up.Key()
				_ = up.SetKey(up.Key())
				up.SetMetadata(map[string]string{"mode": "33188"})
				_, _ = up.Size(), up.Err()
			}
		}()
		writeAll(t, up, randomData(61, tc.size), 1<<20)
		var err error
		if finish == "complete" {
			_, err = up.Complete(context.Background())
		} else {
			err = up.Abort(context.Background())
		}
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("%s: %v", finish, err)
		}
		if up.SetKey("elsewhere") == nil || up.SetMetadata(nil) {
			t.Fatalf("%s: the key or metadata changed after the upload finished", finish)
		}
	}
}
